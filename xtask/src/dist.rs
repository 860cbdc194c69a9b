//! `cargo xtask dist`: the release archives of `tiffin` for x86_64 Linux, reproducible byte for
//! byte, with their checksums and dependency lists (CycloneDX). Two builds are released:
//!
//! - the static one (tract alone), glibc static-pie (`-C target-feature=+crt-static`), which
//!   needs no package beyond the Rust toolchain and runs on any x86_64 Linux;
//! - the ONNX Runtime one (`-ort`): dynamically linked (a static binary cannot load a shared
//!   library), built with the `ort` feature, shipped with `libonnxruntime.so` of the pinned
//!   onnxruntime wheel beside it (where `--runtime ort` looks first) and its licence and notices.
//!
//! `--target` is always given, so that build scripts and proc macros, built for the host, stay
//! dynamic. [`static_binary`] and [`ort_binary`] are the one place each is built. Both builds
//! pass the same `RUSTFLAGS` and share cargo's target folder, so the second compiles only what
//! the `ort` feature changes (the workspace's crates above the runtime, and `ort` itself), not
//! tract, tokio and the rest again: `+crt-static` goes to the final link alone (`cargo rustc
//! ... -- -C target-feature=+crt-static`), where it takes effect. No dependency of this workspace
//! compiles differently under it for this target: the `cc` crate adds `-static` to its
//! compile-only commands, which ignore it, and the `libc` crate reads it only as part of the
//! standard library. Each build's binary is copied out of cargo's output folder, which holds the
//! last one built, to a folder of its own (`target/release-static/`, `target/release-ort/`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

use crate::{onnxruntime, process};

/// The one platform released: the static binary is built for it.
pub(crate) const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Where the archives, checksums and dependency list go, under the target folder.
const DIST_DIR: &str = "dist";

/// The cargo-cyclonedx release the dependency list is made with; pinned so that two machines
/// write the same list.
const CYCLONEDX_VERSION: &str = "0.5.9";

/// Arguments of `cargo xtask dist`.
#[derive(Debug, clap::Args)]
pub(crate) struct DistArgs {
    /// Build a second time from a copy of the source at another path, with its own target
    /// folder, and fail unless both archives and dependency lists are identical byte for byte.
    #[arg(long)]
    pub(crate) check_reproducible: bool,
}

/// The builds released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// Static, tract alone: the default download.
    Static,
    /// Dynamically linked, with ONNX Runtime support and its library.
    Ort,
}

impl Variant {
    /// What the archive's name adds after the target triple.
    fn suffix(self) -> &'static str {
        match self {
            Variant::Static => "",
            Variant::Ort => "-ort",
        }
    }

    /// The cargo features of `tiffin-cli` the build enables.
    fn features(self) -> &'static [&'static str] {
        match self {
            Variant::Static => &[],
            Variant::Ort => &["--features", "ort"],
        }
    }

    /// What `cargo rustc` passes to the final compilation (the link) of the binary alone.
    fn link_args(self) -> &'static [&'static str] {
        match self {
            Variant::Static => &["--", "-C", "target-feature=+crt-static"],
            Variant::Ort => &[],
        }
    }

    /// The folder under the target folder `base` that the build's binary is copied to, out of
    /// cargo's output folder, where the next build of the other variant would replace it.
    fn binary_dir(self, base: &Path) -> PathBuf {
        base.join(match self {
            Variant::Static => "release-static",
            Variant::Ort => "release-ort",
        })
    }

    /// Fails unless `binary` is what this build must be.
    fn check(self, binary: &Path) -> Result<()> {
        match self {
            Variant::Static => check_static(binary),
            Variant::Ort => check_ort(binary),
        }
    }
}

/// Builds the static `tiffin` of this workspace (a no-op for cargo when it is up to date) and
/// returns its path, `target/release-static/tiffin`, checked to be static.
pub(crate) fn static_binary() -> Result<PathBuf> {
    built(Variant::Static)
}

/// Builds the dynamically linked `tiffin` with ONNX Runtime support (a no-op when up to date) and
/// returns its path, `target/release-ort/tiffin`, checked.
pub(crate) fn ort_binary() -> Result<PathBuf> {
    built(Variant::Ort)
}

fn built(variant: Variant) -> Result<PathBuf> {
    let binary = build(process::workspace_root(), &process::target_dir()?, variant)?;
    variant.check(&binary)?;
    Ok(binary)
}

/// ONNX Runtime as the `-ort` archive ships it: the pinned wheel's library and, from the folder
/// above it, the licence and notices that must travel with it.
#[derive(Debug)]
pub(crate) struct OrtFiles {
    /// `libonnxruntime.so.<version>`.
    pub(crate) library: PathBuf,
    /// `LICENSE` and `ThirdPartyNotices.txt`.
    pub(crate) notices: Vec<PathBuf>,
}

impl OrtFiles {
    /// The files of the pinned wheel (installed into its virtualenv when needed).
    pub(crate) fn pinned() -> Result<Self> {
        let library = onnxruntime::library()?;
        let package = library
            .parent()
            .and_then(Path::parent)
            .context("the ONNX Runtime library has no onnxruntime/capi/ folder above it")?;
        let notices: Vec<PathBuf> = ["LICENSE", "ThirdPartyNotices.txt"]
            .iter()
            .map(|name| package.join(name))
            .collect();
        for notice in &notices {
            ensure!(
                notice.is_file(),
                "the onnxruntime wheel has no {}: its licence and notices must ship with the library",
                notice.display()
            );
        }
        Ok(Self { library, notices })
    }
}

/// Runs `cargo xtask dist`.
pub(crate) fn run(args: &DistArgs) -> Result<()> {
    let workspace = process::workspace_root();
    let out = process::target_dir()?.join(DIST_DIR);
    let epoch = commit_time(workspace)?;
    let ort = OrtFiles::pinned()?;
    let mut written = Vec::new();
    for variant in [Variant::Static, Variant::Ort] {
        let binary = built(variant)?;
        let first = package(workspace, &binary, &out, epoch, variant, &ort)?;
        if variant == Variant::Ort {
            check_ort_archive(&first.archive)?;
        }
        if args.check_reproducible {
            let copy = process::target_dir()?.join("dist-check");
            let source = copy_source(workspace, &copy.join("tiffin"))?;
            let binary = build(&source, &copy.join("target"), variant)?;
            variant.check(&binary)?;
            let second = package(&source, &binary, &copy.join("out"), epoch, variant, &ort)?;
            compare(&first, &second)?;
            eprintln!(
                "==> reproducible: {} and {} are identical",
                first.archive.display(),
                second.archive.display()
            );
        }
        written.push(first.archive);
        written.push(first.sbom);
    }
    write_checksums(
        &out,
        &written.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    )?;
    eprintln!("==> wrote {}", out.display());
    Ok(())
}

/// The files one release run wrote.
#[derive(Debug)]
struct Release {
    archive: PathBuf,
    sbom: PathBuf,
}

/// Writes the archive of `binary`, built from `source` as `variant`, and the dependency list into
/// `out`; `epoch` (the commit time) is the time of every archive member. The `-ort` archive also
/// holds `ort`'s files.
fn package(
    source: &Path,
    binary: &Path,
    out: &Path,
    epoch: u64,
    variant: Variant,
    ort: &OrtFiles,
) -> Result<Release> {
    let version = workspace_version(source)?;
    let name = format!("tiffin-{version}-{TARGET}{}", variant.suffix());
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut members = archive_members(source, binary, &name)?;
    if variant == Variant::Ort {
        members.extend(ort_members(ort, &name)?);
    }
    let archive = out.join(format!("{name}.tar.gz"));
    write_atomically(&archive, |file| write_tar_gz(members, epoch, file))?;
    let sbom = out.join(format!("{name}.cdx.json"));
    let list = dependency_list(source, epoch, variant)?;
    write_atomically(&sbom, |file| Ok(file.write_all(&list)?))?;
    Ok(Release { archive, sbom })
}

/// The `RUSTFLAGS` of both release builds of the workspace at `source`: the paths of this
/// machine (the workspace, cargo's home) replaced, so that the binary is the same wherever the
/// source and the registry sources were. They are the same for both builds, which therefore
/// share every dependency's compilation.
fn rustflags(source: &Path, cargo_home: &Path) -> String {
    format!(
        "--remap-path-prefix={}=/build/tiffin --remap-path-prefix={}=/build/cargo",
        source.display(),
        cargo_home.display()
    )
}

/// Cargo's home folder, where the registry sources are: `CARGO_HOME`, else `~/.cargo`.
fn cargo_home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME").context("neither CARGO_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cargo"))
}

/// The release build command of `variant` for the workspace at `source`, into `target`.
///
/// `SOURCE_DATE_EPOCH` is taken out of its environment rather than set to the commit time:
/// nothing in the binary carries a build time (rustc reads no such variable, and the C parts of
/// ring and tract-linalg use no `__DATE__` or `__TIME__`), but the cc crate makes the build
/// scripts that compile C rerun whenever the variable changes, so a commit time would rebuild
/// ring, tract and everything over them after every commit, and a build run by hand (without the
/// variable) would rebuild them again. `--check-reproducible` would catch a dependency that
/// starts stamping the build time.
fn build_command(source: &Path, target: &Path, variant: Variant) -> Result<Command> {
    let mut command = process::cargo();
    command
        .current_dir(source)
        .args([
            "rustc",
            "--release",
            "--locked",
            "--target",
            TARGET,
            "--package",
            "tiffin-cli",
            "--bin",
            "tiffin",
        ])
        .args(variant.features())
        .args(variant.link_args())
        .env("RUSTFLAGS", rustflags(source, &cargo_home()?))
        .env("CARGO_TARGET_DIR", target)
        .env_remove("SOURCE_DATE_EPOCH");
    Ok(command)
}

/// Builds `variant` of the workspace at `source` into the target folder `target` and returns
/// the path of its binary, copied to the variant's own folder there.
fn build(source: &Path, target: &Path, variant: Variant) -> Result<PathBuf> {
    let mut command = build_command(source, target, variant)?;
    process::announce(&process::shown(&command));
    let start = Instant::now();
    process::run(&mut command)?;
    eprintln!(
        "==> release build ({variant:?}) of {} took {}",
        source.display(),
        process::human_duration(start.elapsed())
    );
    let built = target.join(TARGET).join("release").join("tiffin");
    let dir = variant.binary_dir(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let binary = dir.join("tiffin");
    // Copied beside and renamed over the last copy, so that a process still running the old
    // binary keeps it (writing into a running executable fails with "text file busy").
    let partial = dir.join("tiffin.partial");
    std::fs::copy(&built, &partial)
        .with_context(|| format!("cannot copy {} to {}", built.display(), partial.display()))?;
    std::fs::rename(&partial, &binary).with_context(|| {
        format!(
            "cannot rename {} to {}",
            partial.display(),
            binary.display()
        )
    })?;
    Ok(binary)
}

/// Fails unless `binary` is statically linked, as `ldd` and `file` both report it; `file` is
/// installed with apt-get when missing.
pub(crate) fn check_static(binary: &Path) -> Result<()> {
    let ldd = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd")?;
    judge_ldd(binary, &String::from_utf8_lossy(&ldd.stdout))?;
    if process::which("file").is_none() {
        process::apt_install(&["file"], "`file` checks that the release binary is static")?;
    }
    let file = Command::new("file")
        .arg("--brief")
        .arg(binary)
        .output()
        .context("cannot run file")?;
    ensure!(file.status.success(), "`file {}` failed", binary.display());
    judge_file(binary, &String::from_utf8_lossy(&file.stdout))
}

/// The libraries the `-ort` binary may link: glibc's and the compiler runtime's, which every
/// x86_64 Linux has. ONNX Runtime itself is loaded at run time, never linked.
const ORT_LINKED: &[&str] = &[
    "linux-vdso.so.1",
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "ld-linux-x86-64.so.2",
];

/// Fails unless `binary` is the dynamically linked build with ONNX Runtime support: it links
/// nothing beyond [`ORT_LINKED`], and its `--version` names onnxruntime among its engines.
pub(crate) fn check_ort(binary: &Path) -> Result<()> {
    let ldd = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd")?;
    judge_ort_ldd(binary, &String::from_utf8_lossy(&ldd.stdout))?;
    let version = generated(binary, &["--version"])?;
    ensure!(
        String::from_utf8_lossy(&version).contains("onnxruntime"),
        "{} was built without ONNX Runtime support: its --version says {:?}",
        binary.display(),
        String::from_utf8_lossy(&version).trim()
    );
    Ok(())
}

/// `ldd`'s verdict on the `-ort` binary: dynamic, linking only [`ORT_LINKED`].
fn judge_ort_ldd(binary: &Path, output: &str) -> Result<()> {
    let linked: Vec<&str> = output
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    ensure!(
        linked.iter().any(|l| l.ends_with("libc.so.6")),
        "{} should be dynamically linked against glibc, but ldd says: {}",
        binary.display(),
        output.trim()
    );
    let unexpected: Vec<&&str> = linked
        .iter()
        .filter(|l| {
            let name = l.rsplit('/').next().unwrap_or(l);
            !ORT_LINKED.contains(&name)
        })
        .collect();
    ensure!(
        unexpected.is_empty(),
        "{} links {unexpected:?}, beyond glibc and libgcc_s: a user's machine may lack them",
        binary.display()
    );
    Ok(())
}

/// Unpacks the `-ort` archive into a temporary folder and runs what it promises there, with no
/// library path given: `pack --runtime ort` of the iris fixture (its golden outputs made by ONNX
/// Runtime) and `verify --runtime ort` of the result, the library found beside the binary.
fn check_ort_archive(archive: &Path) -> Result<()> {
    let work = process::fresh_dir("tiffin-dist-ort")?;
    let file = std::fs::File::open(archive)
        .with_context(|| format!("cannot open {}", archive.display()))?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(&work)
        .with_context(|| format!("cannot unpack {}", archive.display()))?;
    let folder = std::fs::read_dir(&work)?
        .next()
        .context("the archive holds no folder")??
        .path();
    let tiffin = folder.join("tiffin");
    let fixture = process::workspace_root().join("fixtures").join("iris");
    let run = |args: &[&std::ffi::OsStr]| -> Result<()> {
        let mut command = Command::new(&tiffin);
        command
            .args(args)
            .current_dir(&work)
            .env_remove(onnxruntime::VARIABLE)
            .env_remove("TIFFIN_RUNTIME")
            .env("TIFFIN_HOME", work.join("home"));
        process::announce(&process::shown(&command));
        process::run(&mut command)
    };
    let out = work.join("out");
    run(&[
        "-q".as_ref(),
        "pack".as_ref(),
        fixture.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--runtime".as_ref(),
        "ort".as_ref(),
    ])?;
    let package = std::fs::read_dir(out.join("iris"))
        .context("pack wrote no iris folder")?
        .next()
        .context("pack wrote no iris version")??
        .path();
    run(&[
        "verify".as_ref(),
        package.as_os_str(),
        "--runtime".as_ref(),
        "ort".as_ref(),
    ])?;
    std::fs::remove_dir_all(&work).with_context(|| format!("cannot remove {}", work.display()))?;
    eprintln!(
        "==> {} runs ONNX Runtime from beside its binary",
        archive.display()
    );
    Ok(())
}

/// `ldd`'s verdict: a static binary is "not a dynamic executable" (static) or "statically
/// linked" (glibc's static-pie); anything it lists libraries for is dynamic.
fn judge_ldd(binary: &Path, output: &str) -> Result<()> {
    let output = output.trim();
    if output.contains("not a dynamic executable") || output == "statically linked" {
        return Ok(());
    }
    bail!(
        "{} is dynamically linked (ldd lists {}): build it with \
         RUSTFLAGS='-C target-feature=+crt-static' and --target {TARGET}",
        binary.display(),
        output.lines().map(str::trim).collect::<Vec<_>>().join(", ")
    )
}

/// `file`'s verdict: an ELF executable "statically linked" or "static-pie linked".
fn judge_file(binary: &Path, output: &str) -> Result<()> {
    let output = output.trim();
    ensure!(
        output.starts_with("ELF 64-bit") && output.contains("x86-64"),
        "{} is not an x86-64 ELF executable (file says: {output})",
        binary.display()
    );
    ensure!(
        output.contains("statically linked") || output.contains("static-pie linked"),
        "{} is not statically linked (file says: {output})",
        binary.display()
    );
    Ok(())
}

/// The workspace version, from the root Cargo.toml of `source`.
pub(crate) fn workspace_version(source: &Path) -> Result<String> {
    let path = source.join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let manifest: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
    manifest
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(toml::Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("{} has no workspace.package.version", path.display()))
}

/// The time of the commit checked out at `source`, in seconds since the epoch: the time of every
/// archive member and of the dependency list (its `SOURCE_DATE_EPOCH`).
pub(crate) fn commit_time(source: &Path) -> Result<u64> {
    let output = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(source)
        .output()
        .context("cannot run git")?;
    ensure!(
        output.status.success(),
        "`git log -1 --format=%ct` failed in {}: {}",
        source.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("git printed {text:?} for the commit time"))
}

/// One file of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    /// The path inside the archive, with `/`.
    path: String,
    /// The permission bits: 0o755 for the binary, 0o644 for the rest.
    mode: u32,
    data: Vec<u8>,
}

impl Member {
    fn new(path: String, mode: u32, data: Vec<u8>) -> Self {
        Self { path, mode, data }
    }
}

/// The archive's files, under the folder `name`: the binary, README and licences, completions
/// for bash, zsh and fish and the man page, the last four generated by the binary itself.
fn archive_members(source: &Path, binary: &Path, name: &str) -> Result<Vec<Member>> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mut members = vec![Member::new(format!("{name}/tiffin"), 0o755, read(binary)?)];
    for file in ["README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        members.push(Member::new(
            format!("{name}/{file}"),
            0o644,
            read(&source.join(file))?,
        ));
    }
    for (shell, file) in [
        ("bash", "tiffin.bash"),
        ("zsh", "_tiffin"),
        ("fish", "tiffin.fish"),
    ] {
        members.push(Member::new(
            format!("{name}/completions/{file}"),
            0o644,
            generated(binary, &["completions", shell])?,
        ));
    }
    members.push(Member::new(
        format!("{name}/man/tiffin.1"),
        0o644,
        generated(binary, &["man"])?,
    ));
    Ok(members)
}

/// The `-ort` archive's additions: the library as `libonnxruntime.so` beside the binary (the
/// name `--runtime ort` looks for there) and its notices under `onnxruntime/`.
fn ort_members(ort: &OrtFiles, name: &str) -> Result<Vec<Member>> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mut members = vec![Member::new(
        format!("{name}/libonnxruntime.so"),
        0o755,
        read(&ort.library)?,
    )];
    for notice in &ort.notices {
        let file = notice
            .file_name()
            .context("a notice has no file name")?
            .to_string_lossy();
        members.push(Member::new(
            format!("{name}/onnxruntime/{file}"),
            0o644,
            read(notice)?,
        ));
    }
    Ok(members)
}

/// What `binary ARGS` prints on stdout, failing with its stderr unless it succeeds.
fn generated(binary: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let output = Command::new(binary)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    ensure!(
        output.status.success() && !output.stdout.is_empty(),
        "`tiffin {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(output.stdout)
}

/// Writes `members` as a gzipped tar that depends on nothing but them and `mtime`: entries
/// sorted by path, owner and group 0 without names, every time `mtime`, modes as given, and a
/// gzip header with no time and no file name.
fn write_tar_gz(mut members: Vec<Member>, mtime: u64, out: impl Write) -> Result<()> {
    members.sort_by(|a, b| a.path.cmp(&b.path));
    let gzip = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(out, flate2::Compression::best());
    let mut tar = tar::Builder::new(gzip);
    for member in &members {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(member.data.len() as u64);
        header.set_mode(member.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        tar.append_data(&mut header, &member.path, member.data.as_slice())
            .with_context(|| format!("cannot add {} to the archive", member.path))?;
    }
    tar.into_inner()
        .context("cannot finish the tar")?
        .finish()
        .context("cannot finish the gzip stream")?
        .flush()
        .context("cannot write the archive")?;
    Ok(())
}

/// Writes `path` through a temporary file beside it, renamed into place once complete, so an
/// interrupted run never leaves a half-written file under the final name.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
    let partial = path.with_extension("partial");
    let mut file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    write(&mut file).with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))
}

/// `SHA256SUMS` in `out`, in the format `sha256sum --check` reads: `HEX  NAME` per file.
fn write_checksums(out: &Path, files: &[&Path]) -> Result<()> {
    let mut text = String::new();
    for file in files {
        let data =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let name = file
            .file_name()
            .context("a release file has no name")?
            .to_string_lossy();
        text.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(&data))));
    }
    write_atomically(&out.join("SHA256SUMS"), |file| {
        Ok(file.write_all(text.as_bytes())?)
    })
}

/// The file name cargo-cyclonedx is told to write (it adds `.json`), unlikely to meet a file of
/// anyone's.
const SBOM_FILE: &str = "tiffin-dist-sbom.cdx";

/// The dependency list of `tiffin-cli` for the release target, as CycloneDX 1.5 JSON made by
/// cargo-cyclonedx (installed with `cargo install --locked` when missing). Given
/// `SOURCE_DATE_EPOCH`, it writes that time and no random serial number; the workspace path it
/// puts in the references of our own crates is replaced as the build's `--remap-path-prefix`
/// does, so that the list does not depend on where the source was.
fn dependency_list(source: &Path, epoch: u64, variant: Variant) -> Result<Vec<u8>> {
    ensure_cyclonedx()?;
    let mut command = process::cargo();
    command
        .current_dir(source)
        .args([
            "cyclonedx",
            "--manifest-path",
            "crates/tiffin-cli/Cargo.toml",
            "--format",
            "json",
            "--target",
            TARGET,
            "--spec-version",
            "1.5",
            "--override-filename",
            SBOM_FILE,
        ])
        .args(variant.features())
        .env("SOURCE_DATE_EPOCH", epoch.to_string());
    process::announce(&process::shown(&command));
    let result = process::run(&mut command);
    // It writes one list beside every member's Cargo.toml, whatever the manifest path; only
    // tiffin-cli's is wanted, and none may stay in the source tree.
    let wanted = source
        .join("crates/tiffin-cli")
        .join(format!("{SBOM_FILE}.json"));
    let text = std::fs::read_to_string(&wanted);
    for folder in member_folders(source)? {
        let written = folder.join(format!("{SBOM_FILE}.json"));
        if written.exists() {
            std::fs::remove_file(&written)
                .with_context(|| format!("cannot remove {}", written.display()))?;
        }
    }
    result?;
    let text = text.with_context(|| format!("cargo cyclonedx wrote no {}", wanted.display()))?;
    let text = relocate(&text, source);
    serde_json::from_str::<serde_json::Value>(&text)
        .context("cargo cyclonedx wrote invalid JSON")?;
    Ok(text.into_bytes())
}

/// `text` with the workspace path `source` replaced by the one the build remaps it to.
fn relocate(text: &str, source: &Path) -> String {
    text.replace(&source.display().to_string(), "/build/tiffin")
}

/// The folders of the workspace's members: `crates/*` and `xtask`.
fn member_folders(source: &Path) -> Result<Vec<PathBuf>> {
    let crates = source.join("crates");
    let mut folders = vec![source.join("xtask")];
    for entry in
        std::fs::read_dir(&crates).with_context(|| format!("cannot list {}", crates.display()))?
    {
        folders.push(entry?.path());
    }
    Ok(folders)
}

/// Installs the pinned cargo-cyclonedx unless that version is on `PATH` already.
fn ensure_cyclonedx() -> Result<()> {
    let installed = Command::new("cargo-cyclonedx")
        .args(["cyclonedx", "--version"])
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CYCLONEDX_VERSION)
        });
    if installed {
        return Ok(());
    }
    let mut command = process::cargo();
    command.args([
        "install",
        "--locked",
        "cargo-cyclonedx",
        "--version",
        CYCLONEDX_VERSION,
    ]);
    process::announce(&process::shown(&command));
    let start = Instant::now();
    process::run(&mut command).context("cannot install cargo-cyclonedx (from crates.io)")?;
    eprintln!(
        "==> cargo-cyclonedx installed in {}",
        process::human_duration(start.elapsed())
    );
    Ok(())
}

/// A copy of the workspace's source at `dest`: the files git tracks or would track (so
/// uncommitted edits are built as in the first build), without `target/` and without the
/// repository (the commit time is given to the build). Files of an earlier copy are replaced;
/// the copy's target folder beside it is kept, so a second check is incremental.
fn copy_source(workspace: &Path, dest: &Path) -> Result<PathBuf> {
    if dest.exists() {
        std::fs::remove_dir_all(dest)
            .with_context(|| format!("cannot remove {}", dest.display()))?;
    }
    let output = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(workspace)
        .output()
        .context("cannot run git ls-files")?;
    ensure!(output.status.success(), "git ls-files failed");
    for name in output.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).context("a file name is not UTF-8")?;
        let from = workspace.join(name);
        // A tracked file deleted in the working tree is not part of what the first build saw.
        if !from.exists() {
            continue;
        }
        let to = dest.join(name);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::copy(&from, &to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    Ok(dest.to_path_buf())
}

/// Fails unless both runs wrote the same bytes, naming the first archive member that differs.
fn compare(first: &Release, second: &Release) -> Result<()> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let (a, b) = (read(&first.archive)?, read(&second.archive)?);
    if a != b {
        let member = first_difference(&a, &b)?;
        bail!(
            "the release is not reproducible: {} and {} differ, first in {member}",
            first.archive.display(),
            second.archive.display()
        );
    }
    ensure!(
        read(&first.sbom)? == read(&second.sbom)?,
        "the dependency list is not reproducible: {} and {} differ",
        first.sbom.display(),
        second.sbom.display()
    );
    Ok(())
}

/// A member of a tar as read back: its path, its raw header and its content.
type ReadMember = (String, Vec<u8>, Vec<u8>);

/// The first member (in archive order) whose path, header or content differs between two
/// gzipped tars, or a note that only the compressed bytes do.
fn first_difference(a: &[u8], b: &[u8]) -> Result<String> {
    let entries = |bytes: &[u8]| -> Result<Vec<ReadMember>> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let mut out = Vec::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.display().to_string();
            let header = entry.header().as_bytes().to_vec();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data)?;
            out.push((path, header, data));
        }
        Ok(out)
    };
    let (a, b) = (entries(a)?, entries(b)?);
    for (x, y) in a.iter().zip(&b) {
        if x.0 != y.0 {
            return Ok(format!("the member list ({} against {})", x.0, y.0));
        }
        if x.1 != y.1 {
            return Ok(format!("the tar header of {}", x.0));
        }
        if x.2 != y.2 {
            return Ok(format!("the content of {}", x.0));
        }
    }
    if a.len() != b.len() {
        return Ok(format!(
            "the member count ({} against {})",
            a.len(),
            b.len()
        ));
    }
    Ok("the gzip stream only (the tars are identical)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<Member> {
        vec![
            Member::new("d/tiffin".into(), 0o755, b"\x7fELF binary".to_vec()),
            Member::new("d/README.md".into(), 0o644, b"# tiffin\n".to_vec()),
            Member::new("d/completions/_tiffin".into(), 0o644, b"#compdef".to_vec()),
        ]
    }

    fn tar_gz(members: Vec<Member>, mtime: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_tar_gz(members, mtime, &mut out).unwrap();
        out
    }

    #[test]
    fn the_same_files_give_the_same_bytes_in_any_order() {
        let mut reversed = members();
        reversed.reverse();
        assert_eq!(
            tar_gz(members(), 1_700_000_000),
            tar_gz(reversed, 1_700_000_000)
        );
    }

    #[test]
    fn a_changed_time_or_content_changes_the_bytes() {
        let reference = tar_gz(members(), 1_700_000_000);
        assert_ne!(reference, tar_gz(members(), 1_700_000_001));
        let mut changed = members();
        changed[1].data.push(b'!');
        assert_ne!(reference, tar_gz(changed, 1_700_000_000));
    }

    #[test]
    fn members_are_sorted_with_fixed_metadata() {
        let bytes = tar_gz(members(), 1_700_000_000);
        // The gzip header: no file name flag, no time, OS "unknown".
        assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
        assert_eq!(bytes[9], 255);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            assert_eq!(header.username().unwrap(), Some(""));
            assert_eq!(header.groupname().unwrap(), Some(""));
            assert_eq!(header.mtime().unwrap(), 1_700_000_000);
            let path = entry.path().unwrap().display().to_string();
            let mode = header.mode().unwrap();
            assert_eq!(mode, if path == "d/tiffin" { 0o755 } else { 0o644 });
            seen.push(path);
        }
        assert_eq!(seen, ["d/README.md", "d/completions/_tiffin", "d/tiffin"]);
    }

    #[test]
    fn the_first_differing_member_is_named() {
        let reference = tar_gz(members(), 1_700_000_000);
        let mut changed = members();
        changed[0].data.push(b'!');
        let message = first_difference(&reference, &tar_gz(changed, 1_700_000_000)).unwrap();
        assert_eq!(message, "the tar header of d/tiffin");
        let mut changed = members();
        changed[2].data[0] = b'%';
        let message = first_difference(&reference, &tar_gz(changed, 1_700_000_000)).unwrap();
        assert_eq!(message, "the content of d/completions/_tiffin");
    }

    #[test]
    fn a_dynamic_binary_is_refused() {
        let err = check_static(Path::new("/bin/true")).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("/bin/true is dynamically linked"),
            "{message}"
        );
        assert!(message.contains("libc.so"), "{message}");
    }

    #[test]
    fn static_outputs_are_accepted_and_dynamic_ones_refused() {
        let path = Path::new("tiffin");
        // glibc's ldd on a static-pie binary, and on a non-PIE static one.
        judge_ldd(path, "\tstatically linked\n").unwrap();
        judge_ldd(path, "\tnot a dynamic executable\n").unwrap();
        assert!(
            judge_ldd(
                path,
                "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/libc.so.6\n"
            )
            .is_err()
        );
        judge_file(
            path,
            "ELF 64-bit LSB pie executable, x86-64, version 1 (GNU/Linux), static-pie linked, \
             BuildID[sha1]=0, stripped",
        )
        .unwrap();
        judge_file(
            path,
            "ELF 64-bit LSB executable, x86-64, statically linked, stripped",
        )
        .unwrap();
        let err = judge_file(
            path,
            "ELF 64-bit LSB pie executable, x86-64, dynamically linked, interpreter \
             /lib64/ld-linux-x86-64.so.2, stripped",
        )
        .unwrap_err();
        assert!(err.to_string().contains("not statically linked"), "{err}");
        assert!(judge_file(path, "ASCII text").is_err());
    }

    #[test]
    fn the_workspace_path_is_taken_out_of_the_dependency_list() {
        let text = r#"{"bom-ref": "path+file:///src/tiffin/crates/tiffin-core#0.1.0"}"#;
        assert_eq!(
            relocate(text, Path::new("/src/tiffin")),
            r#"{"bom-ref": "path+file:///build/tiffin/crates/tiffin-core#0.1.0"}"#
        );
    }

    #[test]
    fn the_build_flags_remap_both_paths() {
        let flags = rustflags(Path::new("/src/tiffin"), Path::new("/home/me/.cargo"));
        assert_eq!(
            flags,
            "--remap-path-prefix=/src/tiffin=/build/tiffin \
             --remap-path-prefix=/home/me/.cargo=/build/cargo"
        );
    }

    /// Both builds share the dependencies' compilation: the same `RUSTFLAGS`, the same target
    /// folder; the static one differs in its final link's flags alone, the other in its features.
    #[test]
    fn the_two_builds_differ_in_the_link_and_the_features_alone() {
        let env_of = |variant| {
            let command =
                build_command(Path::new("/src/tiffin"), Path::new("/t"), variant).unwrap();
            let args: Vec<String> = command
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let envs: Vec<(String, Option<String>)> = command
                .get_envs()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.map(|v| v.to_string_lossy().into_owned()),
                    )
                })
                .collect();
            (args, envs)
        };
        let (static_args, static_env) = env_of(Variant::Static);
        let (ort_args, ort_env) = env_of(Variant::Ort);
        assert_eq!(static_env, ort_env);
        let rustflags = static_env
            .iter()
            .find(|(k, _)| k == "RUSTFLAGS")
            .and_then(|(_, v)| v.clone())
            .unwrap();
        assert!(!rustflags.contains("crt-static"), "{rustflags}");
        assert_eq!(
            static_args[static_args.len() - 3..],
            ["--", "-C", "target-feature=+crt-static"]
        );
        assert!(
            !ort_args.iter().any(|a| a.contains("crt-static")),
            "{ort_args:?}"
        );
        assert!(
            ort_args.ends_with(&["--features".into(), "ort".into()]),
            "{ort_args:?}"
        );
        assert_eq!(
            static_args[..static_args.len() - 3],
            ort_args[..ort_args.len() - 2]
        );
    }

    #[test]
    fn the_ort_build_may_link_glibc_alone() {
        let path = Path::new("tiffin");
        let glibc = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\
            \tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        judge_ort_ldd(path, glibc).unwrap();
        let more =
            format!("{glibc}\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f)\n");
        let err = format!("{:#}", judge_ort_ldd(path, &more).unwrap_err());
        assert!(err.contains("libssl.so.3"), "{err}");
        let linked =
            format!("{glibc}\tlibonnxruntime.so.1 => /usr/lib/libonnxruntime.so.1 (0x00007f)\n");
        assert!(judge_ort_ldd(path, &linked).is_err());
        let err = format!(
            "{:#}",
            judge_ort_ldd(path, "\tstatically linked\n").unwrap_err()
        );
        assert!(err.contains("dynamically linked against glibc"), "{err}");
    }
}
