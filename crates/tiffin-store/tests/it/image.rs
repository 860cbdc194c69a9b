//! `tiffin image`: the same inputs give the same image, the layout reads back with every digest
//! right, diff_ids are the uncompressed tars' digests, and bad packages or binaries are refused.

use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use std::io::Read;
use tiffin_store::oci::image::{ImageOptions, ImageTarget, build_image};

use tiffin_testkit::{copy_tree, pack_fixture};

/// A file that reads as a static x86_64 ELF executable: a header and one PT_LOAD program
/// header, no PT_INTERP. Enough for the image's check; it is never run.
fn static_binary(dir: &Path) -> PathBuf {
    let mut bytes = vec![0u8; 64 + 56];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2; // 64-bit
    bytes[5] = 1; // little-endian
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
