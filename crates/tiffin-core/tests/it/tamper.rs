//! Tampered packages: one flipped byte, a deleted file, an added file or a cut archive must each
//! fail verification, naming the file.

use tiffin_core::ProblemKind;

use crate::support::*;

fn kinds(report: &tiffin_core::Report) -> Vec<(Option<String>, ProblemKind)> {
    report
        .problems
        .iter()
        .map(|p| (p.file.clone(), p.kind))
        .collect()
}

#[test]
fn a_flipped_byte_in_any_file_of_a_folder_is_named() {
    let (out, packed) = pack_fixture("churn_model");
    // Every file, those in subfolders (the golden examples) included.
    let names: Vec<String> = walkdir::WalkDir::new(&packed.folder)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(&packed.folder).unwrap();
            rel.to_string_lossy().replace('\\', "/")
        })
        .collect();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        let copy = out.path().join(format!("flip-{}", name.replace('/', "-")));
        copy_tree(&packed.folder, &copy);
        let target = copy.join(&name);
        let mut bytes = std::fs::read(&target).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&target, bytes).unwrap();
        let report = verify(&copy);
        assert!(!report.is_ok(), "flipping a byte of {name} went unnoticed");
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.file.as_deref() == Some(name.as_str())),
            "{name}: {:?}",
            problems(&report)
        );
    }
}

#[test]
fn a_deleted_or_added_file_is_named() {
    let (out, packed) = pack_fixture("breast_cancer");
    let copy = out.path().join("deleted");
    copy_tree(&packed.folder, &copy);
    std::fs::remove_file(copy.join("model.onnx")).unwrap();
    let report = verify(&copy);
    assert_eq!(
        kinds(&report),
        vec![(Some("model.onnx".into()), ProblemKind::Missing)]
    );

    let copy = out.path().join("added");
    copy_tree(&packed.folder, &copy);
    std::fs::create_dir(copy.join("sub")).unwrap();
    std::fs::write(copy.join("sub/notes.txt"), "hello").unwrap();
    let report = verify(&copy);
    assert_eq!(
        kinds(&report),
        vec![(Some("sub/notes.txt".into()), ProblemKind::Extra)]
    );
    assert_eq!(
        problems(&report),
        ["sub/notes.txt: is in the package but not listed in the manifest"]
    );

    let copy = out.path().join("no-checksums");
    copy_tree(&packed.folder, &copy);
    std::fs::remove_file(copy.join("checksum.txt")).unwrap();
    assert_eq!(
        kinds(&verify(&copy)),
        vec![(Some("checksum.txt".into()), ProblemKind::Missing)]
    );
}

#[test]
fn a_model_swapped_for_another_is_caught_by_digest_not_only_size() {
    let (out, packed) = pack_fixture("iris");
    let copy = out.path().join("swapped");
    copy_tree(&packed.folder, &copy);
    let original = std::fs::read(copy.join("model.onnx")).unwrap();
    let mut same_size = original.clone();
    same_size.reverse();
    std::fs::write(copy.join("model.onnx"), same_size).unwrap();
    let report = verify(&copy);
    let message = &report.problems[0].message;
    assert!(
        message.starts_with("content differs from the manifest (blake3 "),
        "{message}"
    );

    std::fs::write(copy.join("model.onnx"), &original[..10]).unwrap();
    let report = verify(&copy);
    assert_eq!(
        report.problems[0].message,
        format!("is 10 bytes, the manifest says {}", original.len())
    );
}

#[test]
fn a_hand_edited_manifest_is_caught() {
    let (out, packed) = pack_fixture("iris");
    let copy = out.path().join("edited");
    copy_tree(&packed.folder, &copy);
    let json = std::fs::read_to_string(copy.join("tiffin.json")).unwrap();
    // Same content, other spacing: still a change of the package digest, so refused.
    std::fs::write(copy.join("tiffin.json"), json.replace("  ", "    ")).unwrap();
    let report = verify(&copy);
    assert!(
        problems(&report)
            .iter()
            .any(|p| p.contains("canonical form")),
        "{:?}",
        problems(&report)
    );
    // checksum.txt records the old manifest digest, so the manifest itself is named as changed.
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::Changed
                && p.file.as_deref() == Some("tiffin.json")
                && p.message.contains("changed after packing")),
        "{:?}",
        problems(&report)
    );
}

#[test]
fn a_flipped_byte_in_any_archive_entry_is_named() {
    let (out, packed) = pack_fixture("churn_model");
    let bytes = std::fs::read(&packed.archive).unwrap();
    let mut tar = tar::Archive::new(&bytes[..]);
    let spans: Vec<(String, u64, u64)> = tar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.raw_file_position(),
                e.size(),
            )
        })
        .collect();
    for (name, start, size) in spans {
        let mut tampered = bytes.clone();
        tampered[(start + size / 2) as usize] ^= 0x20;
        let path = out
            .path()
            .join(format!("flip-{}.tiffin", name.replace('/', "-")));
        std::fs::write(&path, tampered).unwrap();
        let report = verify(&path);
        assert!(!report.is_ok(), "flipping a byte of {name} went unnoticed");
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.file.as_deref() == Some(name.as_str())),
            "{name}: {:?}",
            problems(&report)
        );
    }
}

#[test]
fn a_large_file_is_hashed_in_place_in_an_archive_with_every_algorithm() {
    use tiffin_core::hash::Algorithms;
    // A file of several blake3 subtrees of 1 MiB and a ragged end, so that the archive's span
    // hashing splits it across threads, next to the fixture's small files.
    let source = tempfile::tempdir().unwrap();
    copy_tree(&fixtures().join("breast_cancer"), source.path());
    let weights: Vec<u8> = (0..(3 << 20) + 4321)
        .map(|i: usize| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(source.path().join("weights.bin"), &weights).unwrap();
    let toml = source.path().join("tiffin.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!("{text}\n[[files]]\npath = \"weights.bin\"\nrole = \"extra\"\n"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let packed = pack_into(source.path(), out.path());
    let (start, size) = {
        let mut tar = tar::Archive::new(std::fs::File::open(&packed.archive).unwrap());
        let entries = tar.entries().unwrap();
        let found = entries
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("weights.bin"))
            .unwrap();
        (found.raw_file_position() as usize, found.size() as usize)
    };
    assert_eq!(size, weights.len());
    let bytes = std::fs::read(&packed.archive).unwrap();
    let check = |path: &std::path::Path, algorithms: Algorithms| {
        let options = tiffin_core::VerifyOptions {
            algorithms,
            run_model: false,
            ..Default::default()
        };
        tiffin_core::verify(path, &options, &tiffin_core::hash::NoProgress).unwrap()
    };
    for algorithms in [Algorithms::BLAKE3, Algorithms::SHA256, Algorithms::BOTH] {
        let folder = check(&packed.folder, algorithms);
        let archive = check(&packed.archive, algorithms);
        assert!(archive.is_ok(), "{:?}", problems(&archive));
        assert_eq!(
            (archive.files_checked, archive.bytes_checked),
            (folder.files_checked, folder.bytes_checked)
        );
        // The first byte, one in the middle of a subtree and the very last byte.
        for at in [0, size / 2 + 3, size - 1] {
            let mut tampered = bytes.clone();
            tampered[start + at] ^= 0x10;
            let path = out.path().join("tampered.tiffin");
            std::fs::write(&path, &tampered).unwrap();
            assert_eq!(
                kinds(&check(&path, algorithms)),
                vec![(Some("weights.bin".into()), ProblemKind::Changed)],
                "{algorithms:?}, byte {at}"
            );
        }
    }
}

#[test]
fn a_truncated_archive_never_verifies() {
    let (out, packed) = pack_fixture("breast_cancer");
    let bytes = std::fs::read(&packed.archive).unwrap();
    let path = out.path().join("cut.tiffin");
    // Cut inside the manifest, at entry boundaries, inside entries and inside the end marker.
    for cut in (0..bytes.len())
        .step_by(337)
        .chain([bytes.len() - 1024, bytes.len() - 512])
    {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        match tiffin_core::verify(&path, &Default::default(), &tiffin_core::hash::NoProgress) {
            Ok(report) => assert!(!report.is_ok(), "cut at {cut} of {} verified", bytes.len()),
            Err(e) => assert!(
                e.to_string().contains("not a tiffin package"),
                "cut at {cut}: {e}"
            ),
        }
    }
}

#[test]
fn an_entry_missing_from_the_archive_is_named() {
    let (out, packed) = pack_fixture("breast_cancer");
    let raw: Vec<Vec<u8>> = entries(&packed.archive)
        .into_iter()
        .filter(|(name, _)| name != "model.onnx")
        .map(|(name, data)| raw_entry(&name, tar::EntryType::Regular, &data, data.len() as u64))
        .collect();
    let path = out.path().join("missing.tiffin");
    write_raw_archive(&path, &raw);
    assert_eq!(
        kinds(&verify(&path)),
        vec![(Some("model.onnx".into()), ProblemKind::Missing)]
    );
}
