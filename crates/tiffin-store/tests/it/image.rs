//! `tiffin image`: the same inputs give the same image, the layout reads back with every digest
//! right, diff_ids are the uncompressed tars' digests, and bad packages or binaries are refused.

use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use std::io::Read;
use tiffin_store::oci::image::{ImageOptions, ImageTarget, OnnxRuntimeFiles, build_image};

use tiffin_testkit::{copy_tree, pack_fixture};

/// A file that reads as a static x86_64 ELF executable: a header and one PT_LOAD program
/// header, no PT_INTERP. Enough for the image's check; it is never run.
fn static_binary(dir: &Path) -> PathBuf {
    let mut bytes = vec![0u8; 64 + 56];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2; // 64-bit
    bytes[5] = 1; // little-endian
    bytes[18..20].copy_from_slice(&62u16.to_le_bytes()); // e_machine: x86_64
    bytes[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    bytes[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    bytes[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
    bytes[64..68].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    bytes.extend_from_slice(&[0x90; 4096]);
    let path = dir.join("tiffin");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn options(packages: Vec<PathBuf>, binary: PathBuf) -> ImageOptions {
    ImageOptions {
        packages,
        binary,
        gzip: true,
        signer: None,
        onnxruntime: None,
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", tiffin_core::hash::sha256(bytes))
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let bytes = std::fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert_eq!(sha256(&bytes), digest, "a blob's name is its digest");
    bytes
}

#[test]
fn the_same_inputs_give_the_same_image_and_the_layout_reads_back() {
    let (_out, packed) = pack_fixture("breast_cancer");
    let dir = tempfile::tempdir().unwrap();
    let binary = static_binary(dir.path());
    let build = |name: &str| {
        let layout = dir.path().join(name);
        let target = ImageTarget::Layout {
            dir: layout.clone(),
            tag: "breast_cancer:1.0.0".into(),
        };
        let report = build_image(
            &options(vec![packed.archive.clone()], binary.clone()),
            &target,
        )
        .unwrap();
        (layout, report)
    };
    let (layout, first) = build("one");
    let (_, second) = build("two");
    assert_eq!(first.digest, second.digest);
    assert_eq!(first.layers.len(), 2);
    // Another package, the same binary: the same first layer, which a push then skips.
    let (_iris_out, iris) = pack_fixture("iris");
    let other = build_image(
        &options(vec![iris.folder.clone()], binary.clone()),
        &ImageTarget::Layout {
            dir: dir.path().join("iris"),
            tag: "iris:1.0.0".into(),
        },
    )
    .unwrap();
    assert_eq!(other.layers[0].digest, first.layers[0].digest);
    assert_ne!(other.digest, first.digest);

    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "breast_cancer:1.0.0"
    );
    assert_eq!(entry["digest"], first.digest.as_str());
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(&layout, entry["digest"].as_str().unwrap())).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"][0], "/usr/bin/tiffin");
    assert_eq!(config["config"]["Cmd"][1], "/models");
    assert_eq!(
        config["config"]["Labels"]["dev.tiffin.package.breast_cancer"],
        format!("sha256:{}", packed.digest)
    );
    let layers = manifest["layers"].as_array().unwrap();
    for (layer, diff_id) in layers
        .iter()
        .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
    {
        let mut tar = Vec::new();
        GzDecoder::new(&blob(&layout, layer["digest"].as_str().unwrap())[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(
            sha256(&tar),
            diff_id.as_str().unwrap(),
            "diff_id is the plain tar's digest"
        );
    }
    // The package layer holds the package folder where `serve /models` finds it.
    let mut tar = Vec::new();
    GzDecoder::new(&blob(&layout, layers[1]["digest"].as_str().unwrap())[..])
        .read_to_end(&mut tar)
        .unwrap();
    let names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"models/breast_cancer/1.0.0/tiffin.json".to_owned()),
        "{names:?}"
    );
}

#[test]
fn a_tampered_package_or_a_dynamic_binary_is_refused_and_nothing_is_written() {
    let (_out, packed) = pack_fixture("breast_cancer");
    let dir = tempfile::tempdir().unwrap();
    let tampered = dir.path().join("tampered");
    copy_tree(&packed.folder, &tampered);
    let model = tampered.join("model.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&model, bytes).unwrap();
    let out = dir.path().join("image");
    let target = ImageTarget::Layout {
        dir: out.clone(),
        tag: "x:1".into(),
    };
    let binary = static_binary(dir.path());
    assert!(build_image(&options(vec![tampered], binary), &target).is_err());
    let me = std::env::current_exe().unwrap();
    let err = build_image(&options(vec![packed.folder.clone()], me), &target)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dynamically linked"), "{err}");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("tiffin-image-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_image_without_packages_is_the_binary_layer_alone() {
    let dir = tempfile::tempdir().unwrap();
    let target = ImageTarget::Archive {
        file: dir.path().join("runtime.tar"),
        tag: "tiffin:0.1.0".into(),
    };
    let report = build_image(&options(Vec::new(), static_binary(dir.path())), &target).unwrap();
    assert_eq!(report.layers.len(), 1);
    let mut archive =
        tar::Archive::new(std::fs::File::open(dir.path().join("runtime.tar")).unwrap());
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in ["index.json", "oci-layout", "manifest.json"] {
        assert!(names.contains(&wanted.to_owned()), "{wanted} in {names:?}");
    }
}

/// The names and modes of a gzipped layer's entries.
fn layer_entries(layout: &Path, digest: &str) -> Vec<(String, u32)> {
    let mut tar = Vec::new();
    GzDecoder::new(&blob(layout, digest)[..])
        .read_to_end(&mut tar)
        .unwrap();
    tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().mode().unwrap(),
            )
        })
        .collect()
}

/// A copy of `from` with `marker` appended: an ELF file reads the same with bytes after its
/// sections, so a copy of the C library with ONNX Runtime's symbol name stands for the library.
fn with_marker(from: &Path, to: &Path, marker: &[u8]) -> PathBuf {
    let mut bytes = std::fs::read(from).unwrap();
    bytes.extend_from_slice(marker);
    std::fs::write(to, bytes).unwrap();
    to.to_owned()
}

#[test]
fn an_image_with_onnx_runtime_carries_the_library_its_notices_and_the_shared_libraries() {
    let (_out, packed) = pack_fixture("iris");
    let dir = tempfile::tempdir().unwrap();
    // The test executable is a dynamically linked x86_64 program; the C library it loads stands
    // for libonnxruntime.so (both are ELF shared objects needing libc's loader).
    let me = std::env::current_exe().unwrap();
    let libc = tiffin_store::oci::libs::closure(Path::new("/"), &[&me])
        .unwrap()
        .into_iter()
        .find(|f| f.in_image.ends_with("/libc.so.6"))
        .unwrap();
    let binary = me.clone();
    let library = with_marker(
        &libc.source,
        &dir.path().join("libonnxruntime.so.1.32.0"),
        b"OrtGetApiBase",
    );
    let notices = dir.path().join("notices");
    std::fs::create_dir(&notices).unwrap();
    std::fs::write(notices.join("LICENSE"), "MIT License").unwrap();
    std::fs::write(notices.join("ThirdPartyNotices.txt"), "notices").unwrap();
    let ort = OnnxRuntimeFiles {
        library: library.clone(),
        notices: vec![
            notices.join("LICENSE"),
            notices.join("ThirdPartyNotices.txt"),
        ],
        root: PathBuf::from("/"),
    };
    let with = |binary: &Path, ort: OnnxRuntimeFiles| ImageOptions {
        onnxruntime: Some(ort),
        ..options(vec![packed.folder.clone()], binary.to_owned())
    };
    let layout = dir.path().join("layout");
    let report = build_image(
        &with(&binary, ort.clone()),
        &ImageTarget::Layout {
            dir: layout.clone(),
            tag: "iris:1.0.0".into(),
        },
    )
    .unwrap();
    let holds: Vec<&str> = report.layers.iter().map(|l| l.holds.as_str()).collect();
    assert_eq!(holds, ["tiffin", "onnxruntime", "iris:1.0.0"]);

    let base = layer_entries(&layout, &report.layers[0].digest);
    let names: Vec<&str> = base.iter().map(|e| e.0.as_str()).collect();
    // Every library the binary needs, as the closure finds it, plus the loader it names.
    for file in tiffin_store::oci::libs::closure(Path::new("/"), &[&binary, &library]).unwrap() {
        assert!(
            names.contains(&file.in_image.as_str()),
            "{file:?} in {names:?}"
        );
    }
    let interpreter = tiffin_store::oci::libs::dynamic(&me)
        .unwrap()
        .interpreter
        .unwrap();
    assert!(
        names.contains(&interpreter.trim_start_matches('/')),
        "{interpreter} in {names:?}"
    );
    assert!(names.contains(&"usr/bin/tiffin"), "{names:?}");
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "entries are sorted");
    // Every parent folder is listed before what it holds.
    for name in &names {
        if let Some((parent, _)) = name.trim_end_matches('/').rsplit_once('/') {
            assert!(names.contains(&format!("{parent}/").as_str()), "{name}");
        }
    }

    let ort_layer = layer_entries(&layout, &report.layers[1].digest);
    let ort_names: Vec<&str> = ort_layer.iter().map(|e| e.0.as_str()).collect();
    for wanted in [
        "usr/lib/onnxruntime/libonnxruntime.so",
        "usr/share/doc/onnxruntime/LICENSE",
        "usr/share/doc/onnxruntime/ThirdPartyNotices.txt",
    ] {
        assert!(ort_names.contains(&wanted), "{wanted} in {ort_names:?}");
    }

    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&blob(
        &layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"TIFFIN_RUNTIME=ort"), "{env:?}");
    assert!(
        env.contains(&"TIFFIN_ORT_LIB=/usr/lib/onnxruntime/libonnxruntime.so"),
        "{env:?}"
    );

    // Refused, each naming the fix, and nothing written: a static binary, a library that is not
    // ONNX Runtime, no notices.
    let target = ImageTarget::Layout {
        dir: dir.path().join("refused"),
        tag: "x:1".into(),
    };
    let refusal = |options: ImageOptions| build_image(&options, &target).unwrap_err().to_string();
    let err = refusal(with(&static_binary(dir.path()), ort.clone()));
    assert!(
        err.contains("statically linked") && err.contains("-ort"),
        "{err}"
    );
    let err = refusal(with(
        &binary,
        OnnxRuntimeFiles {
            library: libc.source.clone(),
            ..ort.clone()
        },
    ));
    assert!(
        err.contains("not ONNX Runtime") && err.contains("--ort-lib"),
        "{err}"
    );
    let err = refusal(with(
        &binary,
        OnnxRuntimeFiles {
            notices: Vec::new(),
            ..ort.clone()
        },
    ));
    assert!(err.contains("--ort-notice"), "{err}");
    assert!(!dir.path().join("refused").exists());
}
