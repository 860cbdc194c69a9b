//! The shared libraries a dynamically linked program needs, found the way its loader finds them,
//! for `tiffin image` of the ONNX Runtime build: that image has no distribution under it, so it
//! carries the loader, the C library and whatever else the binary and `libonnxruntime.so` name.
//!
//! Only what the ELF files say is used (their `PT_INTERP` and `DT_NEEDED` entries, read with
//! goblin); nothing is run, so an image can be assembled from files of another machine's root.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Where glibc's loader looks for a library named without a path on x86_64 Debian and Ubuntu
/// (their multiarch folders first), then the traditional folders. The image has no
/// `/etc/ld.so.cache`, so each library is put in the first of these it was found in on the host,
/// where the loader's built-in search finds it again.
pub const SEARCH_DIRS: &[&str] = &[
    "lib/x86_64-linux-gnu",
    "usr/lib/x86_64-linux-gnu",
    "lib64",
    "usr/lib64",
    "lib",
    "usr/lib",
];

/// At most this many libraries are followed from one set of programs: a real closure has about
/// ten; a loop or a hostile file is stopped here.
const MAX_LIBRARIES: usize = 256;

/// At most this many bytes are read of one ELF file to find its dynamic section
/// (libonnxruntime.so is about 30 MB).
const MAX_ELF_SIZE: u64 = 1 << 30;

/// What an ELF file asks of the dynamic loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dynamic {
    /// The program interpreter (`PT_INTERP`), for an executable linked dynamically.
    pub interpreter: Option<String>,
    /// The libraries it needs (`DT_NEEDED`), in its order.
    pub needed: Vec<String>,
}

impl Dynamic {
    /// Whether the file needs the dynamic loader at all.
    pub fn is_dynamic(&self) -> bool {
        self.interpreter.is_some() || !self.needed.is_empty()
    }
}

/// Reads the dynamic section of the ELF file at `path`.
pub fn dynamic(path: &Path) -> Result<Dynamic> {
    let bad = |reason: String| Error::BadInput {
        path: path.to_owned(),
        reason,
    };
    let size = std::fs::metadata(path).map_err(Error::read(path))?.len();
    if size > MAX_ELF_SIZE {
        return Err(bad(format!(
            "is {size} bytes, over the {MAX_ELF_SIZE} bytes an ELF file for an image may have"
        )));
    }
    let bytes = std::fs::read(path).map_err(Error::read(path))?;
    let elf = goblin::elf::Elf::parse(&bytes).map_err(|e| {
        bad(format!(
            "is not an ELF file tiffin can read ({e}); give a program or library for x86_64 Linux"
        ))
    })?;
    if elf.header.e_machine != goblin::elf::header::EM_X86_64 {
        return Err(bad(format!(
            "is built for {} (ELF machine {}), not x86_64, the one platform tiffin images are for",
            goblin::elf::header::machine_to_str(elf.header.e_machine),
            elf.header.e_machine
        )));
    }
    Ok(Dynamic {
        interpreter: elf.interpreter.map(str::to_owned),
        needed: elf.libraries.iter().map(|s| (*s).to_owned()).collect(),
    })
}

/// One file of the closure: where it goes in the image, and the host file it is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    /// The path in the image, relative to its root (`lib/x86_64-linux-gnu/libc.so.6`).
    pub in_image: String,
    /// The file to copy, symbolic links resolved.
    pub source: PathBuf,
}

/// Every file the `programs` need to load under `root` (normally `/`): the interpreter each
/// names, at that path, and every library they need, directly or through another, from the
/// first of [`SEARCH_DIRS`] that holds it. Sorted by path in the image.
pub fn closure(root: &Path, programs: &[&Path]) -> Result<Vec<SharedFile>> {
    let mut found: BTreeMap<String, SharedFile> = BTreeMap::new();
    // Library names already looked up, with the file that needed them first (for the error).
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut queue: VecDeque<(String, PathBuf)> = VecDeque::new();
    for program in programs {
        let info = dynamic(program)?;
        if let Some(interpreter) = &info.interpreter {
            let relative = interpreter.trim_start_matches('/');
            let host = root.join(relative);
            let source = std::fs::canonicalize(&host).map_err(|e| Error::BadInput {
                path: program.to_path_buf(),
                reason: format!(
                    "names the program interpreter {interpreter}, which {} lacks: {e}",
                    root.display()
                ),
            })?;
            found.insert(
                relative.to_owned(),
                SharedFile {
                    in_image: relative.to_owned(),
                    source,
                },
            );
        }
        for name in info.needed {
            queue.push_back((name, program.to_path_buf()));
        }
    }
    while let Some((name, needed_by)) = queue.pop_front() {
        if seen.contains_key(&name) {
            continue;
        }
        if seen.len() >= MAX_LIBRARIES {
            return Err(Error::BadInput {
                path: needed_by,
                reason: format!(
                    "needs over {MAX_LIBRARIES} shared libraries in all; an image takes at most that many"
                ),
            });
        }
        seen.insert(name.clone(), needed_by.clone());
        if name.contains('/') {
            return Err(Error::BadInput {
                path: needed_by,
                reason: format!(
                    "needs the library {name:?} by a path, which the image cannot reproduce; \
                     link it by name"
                ),
            });
        }
        let Some((dir, host)) = SEARCH_DIRS
            .iter()
            .map(|dir| (dir, root.join(dir).join(&name)))
            .find(|(_, path)| path.is_file())
        else {
            return Err(Error::BadInput {
                path: needed_by,
                reason: format!(
                    "needs the shared library {name}, found in none of {} under {}; install it \
                     (on Debian: `apt-get install` the package `dpkg -S {name}` names elsewhere)",
                    SEARCH_DIRS.join(", "),
                    root.display()
                ),
            });
        };
        let source = std::fs::canonicalize(&host).map_err(Error::read(&host))?;
        for next in dynamic(&source)?.needed {
            queue.push_back((next, host.clone()));
        }
        let in_image = format!("{dir}/{name}");
        found.insert(in_image.clone(), SharedFile { in_image, source });
    }
    Ok(found.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test executable itself is a dynamically linked x86_64 program on every machine these
    /// tests run on (Linux, glibc).
    fn this_program() -> PathBuf {
        std::env::current_exe().unwrap()
    }

    #[test]
    fn a_dynamic_program_names_its_interpreter_and_libraries() {
        let info = dynamic(&this_program()).unwrap();
        assert!(info.is_dynamic());
        assert!(
            info.interpreter
                .as_deref()
                .is_some_and(|i| i.ends_with("ld-linux-x86-64.so.2")),
            "{info:?}"
        );
        assert!(info.needed.iter().any(|n| n == "libc.so.6"), "{info:?}");
    }

    #[test]
    fn the_closure_holds_the_loader_and_the_c_library_with_their_contents() {
        let files = closure(Path::new("/"), &[&this_program()]).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.in_image.as_str()).collect();
        assert!(
            paths.iter().any(|p| p.ends_with("ld-linux-x86-64.so.2")),
            "{paths:?}"
        );
        assert!(paths.iter().any(|p| p.ends_with("/libc.so.6")), "{paths:?}");
        for file in &files {
            assert!(!file.in_image.starts_with('/'), "{file:?}");
            assert!(file.source.is_file(), "{file:?}");
            assert!(
                !file.source.symlink_metadata().unwrap().is_symlink(),
                "{file:?}"
            );
        }
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
    }

    #[test]
    fn a_library_missing_under_the_root_is_named() {
        // An empty root has neither the interpreter nor libc.
        let root = tempfile::tempdir().unwrap();
        let err = closure(root.path(), &[&this_program()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("ld-linux-x86-64.so.2"), "{err}");
        // The interpreter is there, the library is not.
        let info = dynamic(&this_program()).unwrap();
        let interpreter = info.interpreter.unwrap();
        let at = root.path().join(interpreter.trim_start_matches('/'));
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(&at, b"").unwrap();
        let err = closure(root.path(), &[&this_program()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs the shared library lib"), "{err}");
        assert!(err.contains("lib/x86_64-linux-gnu"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_elf_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libonnxruntime.so");
        std::fs::write(&path, b"not an ELF file at all").unwrap();
        let err = dynamic(&path).unwrap_err().to_string();
        assert!(err.contains("libonnxruntime.so"), "{err}");
        assert!(err.contains("not an ELF file"), "{err}");
    }
}
