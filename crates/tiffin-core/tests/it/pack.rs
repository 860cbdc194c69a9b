//! Packing every fixture: round trip through verify and inspect, reproducibility, `sha256sum -c`,
//! and the refusals of `pack`.

use std::process::Command;

use tiffin_core::hash::NoProgress;
use tiffin_core::{Error, PackOptions, PackageKind, inspect};

use crate::support::*;

#[test]
fn every_fixture_packs_verifies_and_inspects() {
    for name in fixture_names() {
        let (_out, packed) = pack_fixture(&name);
        for path in [&packed.folder, &packed.archive] {
            let report = verify(path);
            assert!(report.is_ok(), "{name}: {:?}", problems(&report));
            assert_eq!(report.digest, format!("sha256:{}", packed.digest));
            assert_eq!(report.files_checked, packed.manifest.files.len());
            let info = inspect(path).unwrap();
            assert_eq!(info.manifest, packed.manifest, "{name}");
            assert_eq!(info.digest, report.digest);
        }
        assert_eq!(
            tiffin_core::package_kind(&packed.archive).unwrap(),
            PackageKind::Archive
        );
        let first = entries(&packed.archive).into_iter().next().unwrap();
        assert_eq!(
            first.0, "tiffin.json",
            "{name}: the manifest must come first"
        );
    }
}

#[test]
fn packing_twice_gives_identical_bytes_and_digest() {
    let (_a, one) = pack_fixture("breast_cancer");
    let (_b, two) = pack_fixture("breast_cancer");
    assert_eq!(one.digest, two.digest);
    assert_eq!(
        std::fs::read(&one.archive).unwrap(),
        std::fs::read(&two.archive).unwrap()
    );
    assert_eq!(
        one.archive.file_name(),
        Some("breast_cancer-1.0.0.tiffin".as_ref())
    );
    assert!(one.folder.ends_with("breast_cancer/1.0.0"));
}

#[test]
fn archive_entries_are_sorted_owned_by_root_and_stamped_with_created() {
    let (_out, packed) = pack_fixture("breast_cancer");
    let mut tar = tar::Archive::new(std::fs::File::open(&packed.archive).unwrap());
    let created: jiff::Timestamp = packed.manifest.created.parse().unwrap();
    let mut names = Vec::new();
    for entry in tar.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        assert_eq!(
            (h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
            (0o644, 0, 0)
        );
        assert_eq!(h.mtime().unwrap() as i64, created.as_second());
        assert_eq!(h.entry_type(), tar::EntryType::Regular);
        names.push(entry.path().unwrap().to_string_lossy().into_owned());
    }
    let mut rest = names[1..].to_vec();
    rest.sort();
    assert_eq!(names[1..], rest[..]);
    assert!(
        names.contains(&"checksum.txt".to_owned()) && names.contains(&"signature.json".to_owned())
    );
}

#[test]
fn sha256sum_accepts_the_packed_folder() {
    let (_out, packed) = pack_fixture("churn_model");
    let out = Command::new("sha256sum")
        .args(["--check", "--strict", "checksum.txt"])
        .current_dir(&packed.folder)
        .output()
        .expect("sha256sum (coreutils) is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let listed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        listed.lines().count(),
        packed.manifest.files.len() + 1,
        "{listed}"
    );
}

#[test]
fn extracting_the_archive_with_plain_tar_gives_the_folder() {
    let (out, packed) = pack_fixture("iris");
    let dest = out.path().join("extracted");
    std::fs::create_dir(&dest).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&packed.archive)
        .arg("-C")
        .arg(&dest)
        .status()
        .unwrap();
    assert!(status.success());
    for entry in std::fs::read_dir(&packed.folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(dest.join(name)).unwrap(),
            "{name:?}"
        );
    }
    assert!(verify(&dest).is_ok());
}

#[test]
fn packing_the_same_package_again_changes_nothing_and_another_is_refused_unless_forced() {
    let (out, packed) = pack_fixture("iris");
    let before = std::fs::read(&packed.archive).unwrap();
    let options = PackOptions {
        source: fixtures().join("iris"),
        out: Some(out.path().to_owned()),
        force: false,
        examples: None,
        runtime: Default::default(),
    };
    // Packing is deterministic: the same inputs make the same package, which is kept.
    let again = tiffin_core::pack(&options, &NoProgress).unwrap();
    assert_eq!(again.digest, packed.digest);
    assert_eq!(std::fs::read(&packed.archive).unwrap(), before);

    // A pack that stopped between the folder and the archive completes on a rerun.
    std::fs::remove_file(&packed.archive).unwrap();
    let completed = tiffin_core::pack(&options, &NoProgress).unwrap();
    assert_eq!(completed.digest, packed.digest);
    assert_eq!(std::fs::read(&packed.archive).unwrap(), before);

    // Another package at the same name and version is refused, both as folder and archive.
    let source = tempfile::tempdir().unwrap();
    copy_tree(&fixtures().join("iris"), source.path());
    let toml = source.path().join("tiffin.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let text = text.replacen("description = \"", "description = \"Changed. ", 1);
    std::fs::write(&toml, text).unwrap();
    let changed = PackOptions {
        source: source.path().to_owned(),
        ..options
    };
    let err = tiffin_core::pack(&changed, &NoProgress).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("pass --force"), "{err}");
    assert_eq!(std::fs::read(&packed.archive).unwrap(), before);
    std::fs::remove_dir_all(&packed.folder).unwrap();
    let err = tiffin_core::pack(&changed, &NoProgress).unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyExists { path } if *path == packed.archive),
        "{err}"
    );
    assert!(!packed.folder.exists(), "a refused pack left its folder");

    let forced = tiffin_core::pack(
        &PackOptions {
            force: true,
            ..changed
        },
        &NoProgress,
    )
    .unwrap();
    assert_ne!(forced.digest, packed.digest);
    assert!(verify(&forced.folder).is_ok());
    assert!(verify(&forced.archive).is_ok());
    assert_no_leftovers(out.path());
}

#[test]
fn a_forced_pack_swaps_the_folder_whole() {
    let (out, packed) = pack_fixture("iris");
    // A file only the old folder holds shows which folder is in place afterwards.
    std::fs::write(packed.folder.join("old-only.txt"), b"old").unwrap();
    let forced = tiffin_core::pack(
        &PackOptions {
            source: fixtures().join("iris"),
            out: Some(out.path().to_owned()),
            force: true,
            examples: None,
            runtime: Default::default(),
        },
        &NoProgress,
    )
    .unwrap();
    assert!(!forced.folder.join("old-only.txt").exists());
    assert!(verify(&forced.folder).is_ok());
    assert_no_leftovers(out.path());
}

/// Nothing of a staging folder or temporary archive may stay behind, after success or failure.
fn assert_no_leftovers(dir: &std::path::Path) {
    for entry in walkdir::WalkDir::new(dir) {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".tiffin-"), "left behind: {name}");
    }
}

/// An authoring folder in a temp dir: `tiffin.toml` naming `model_file`, plus the given files.
fn authoring(files: &[(&str, &[u8])], extra_toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let toml = std::fs::read_to_string(fixtures().join("iris/tiffin.toml")).unwrap();
    std::fs::write(
        dir.path().join("tiffin.toml"),
        format!("{toml}\n{extra_toml}"),
    )
    .unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

#[test]
fn pickles_are_refused_by_content_and_nothing_is_written() {
    let unsafe_dir = fixtures().join("unsafe");
    for file in [
        "disguised.onnx",
        "model.pkl",
        "model.joblib",
        "model_proto0.pkl",
    ] {
        let bytes = std::fs::read(unsafe_dir.join(file)).unwrap();
        let dir = authoring(&[("model.onnx", &bytes)], "");
        let out = dir.path().join("out");
        let options = PackOptions {
            source: dir.path().to_owned(),
            out: Some(out.clone()),
            force: false,
            examples: None,
            runtime: Default::default(),
        };
        let err = chain(&tiffin_core::pack(&options, &NoProgress).unwrap_err());
        assert!(
            err.contains("refusing") && err.contains("model.onnx") && err.contains("pickle"),
            "{file}: {err}"
        );
        assert!(err.contains("export the model to ONNX"), "{err}");
        assert!(
            !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
            "{file}: wrote {out:?}"
        );
    }
}

#[test]
fn a_pickle_shipped_as_an_extra_file_is_refused_too() {
    let onnx = std::fs::read(fixtures().join("iris/model.onnx")).unwrap();
    let pkl = std::fs::read(fixtures().join("unsafe/model.joblib")).unwrap();
    let dir = authoring(
        &[("model.onnx", &onnx), ("preprocess.bin", &pkl)],
        "[[files]]\npath = \"preprocess.bin\"\n",
    );
    let options = PackOptions {
        source: dir.path().to_owned(),
        out: None,
        force: false,
        examples: None,
        runtime: Default::default(),
    };
    let err = chain(&tiffin_core::pack(&options, &NoProgress).unwrap_err());
    assert!(
        err.contains("preprocess.bin") && err.contains("compressed Python pickle"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn links_and_missing_files_are_refused_with_the_path() {
    let onnx = std::fs::read(fixtures().join("iris/model.onnx")).unwrap();
    let dir = authoring(&[("real.onnx", &onnx)], "");
    std::os::unix::fs::symlink(dir.path().join("real.onnx"), dir.path().join("model.onnx"))
        .unwrap();
    let options = PackOptions {
        source: dir.path().to_owned(),
        out: None,
        force: false,
        examples: None,
        runtime: Default::default(),
    };
    let err = chain(&tiffin_core::pack(&options, &NoProgress).unwrap_err());
    assert!(
        err.contains("model.onnx") && err.contains("symbolic link"),
        "{err}"
    );

    std::fs::remove_file(dir.path().join("model.onnx")).unwrap();
    let err = chain(&tiffin_core::pack(&options, &NoProgress).unwrap_err());
    assert!(
        err.contains("cannot read") && err.contains("model.onnx"),
        "{err}"
    );
    assert_no_leftovers(dir.path());
}

#[test]
fn every_authoring_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let toml = std::fs::read_to_string(fixtures().join("iris/tiffin.toml"))
        .unwrap()
        .replace("version = \"1.0.0\"", "version = \"1.0\"")
        .replace("name = \"iris\"", "name = \"Iris Model\"");
    std::fs::write(dir.path().join("tiffin.toml"), toml).unwrap();
    let options = PackOptions {
        source: dir.path().to_owned(),
        out: None,
        force: false,
        examples: None,
        runtime: Default::default(),
    };
    let err = chain(&tiffin_core::pack(&options, &NoProgress).unwrap_err());
    assert!(
        err.contains("package.version") && err.contains("package.name"),
        "{err}"
    );
    assert!(err.contains("tiffin.toml"), "{err}");
}

#[test]
fn a_folder_without_tiffin_toml_says_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let options = PackOptions {
        source: dir.path().to_owned(),
        out: None,
        force: false,
        examples: None,
        runtime: Default::default(),
    };
    let err = chain(&tiffin_core::pack(&options, &NoProgress).unwrap_err());
    assert!(err.starts_with("no tiffin.toml in "), "{err}");
}
