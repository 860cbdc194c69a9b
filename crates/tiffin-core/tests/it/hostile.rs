//! Hostile archives: path traversal, links, devices, duplicates and lying sizes are refused by
//! name, and verification never writes anything.

use tar::EntryType;
use tiffin_core::ProblemKind;

use crate::support::*;

/// A packed archive's entries as raw bytes, plus `extra` inserted after the manifest.
fn archive_with(extra: Vec<u8>) -> (tempfile::TempDir, std::path::PathBuf) {
    let (out, packed) = pack_fixture("breast_cancer");
    let mut raw: Vec<Vec<u8>> = entries(&packed.archive)
        .into_iter()
        .map(|(name, data)| raw_entry(&name, EntryType::Regular, &data, data.len() as u64))
        .collect();
    raw.insert(1, extra);
    let path = out.path().join("hostile.tiffin");
    write_raw_archive(&path, &raw);
    (out, path)
}

fn only_problem(extra: Vec<u8>) -> (Option<String>, ProblemKind, String) {
    let (out, path) = archive_with(extra);
    let before: Vec<_> = walkdir::WalkDir::new(out.path())
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    let report = verify(&path);
    let after: Vec<_> = walkdir::WalkDir::new(out.path())
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    assert_eq!(before, after, "verify wrote to disk");
    assert_eq!(report.problems.len(), 1, "{:?}", problems(&report));
    let p = report.problems.into_iter().next().unwrap();
    (p.file, p.kind, p.message)
}

#[test]
fn path_traversal_and_absolute_paths_are_refused() {
    for name in [
        "../evil.sh",
        "a/../../evil",
        "/etc/cron.d/evil",
        "./model.onnx",
    ] {
        let (file, kind, message) = only_problem(raw_entry(name, EntryType::Regular, b"x", 1));
        assert_eq!(
            (file.as_deref(), kind),
            (Some(name), ProblemKind::UnsafeEntry),
            "{message}"
        );
        assert!(message.starts_with("path refused: "), "{message}");
    }
}

#[test]
fn links_and_devices_are_refused() {
    for (kind, what) in [
        (EntryType::Symlink, "a symbolic link"),
        (EntryType::Link, "a hard link"),
        (EntryType::Char, "a device file"),
        (EntryType::Block, "a device file"),
        (EntryType::Fifo, "a named pipe"),
    ] {
        let (file, problem, message) = only_problem(raw_entry("model-link", kind, b"", 0));
        assert_eq!(
            (file.as_deref(), problem),
            (Some("model-link"), ProblemKind::UnsafeEntry)
        );
        assert_eq!(
            message,
            format!("is {what}; packages hold regular files only")
        );
    }
}

#[test]
fn a_duplicate_entry_is_refused_even_with_the_right_content() {
    let (_out, packed) = pack_fixture("breast_cancer");
    let model = std::fs::read(packed.folder.join("model.onnx")).unwrap();
    let (file, kind, message) = only_problem(raw_entry(
        "model.onnx",
        EntryType::Regular,
        &model,
        model.len() as u64,
    ));
    assert_eq!(
        (file.as_deref(), kind),
        (Some("model.onnx"), ProblemKind::Duplicate),
        "{message}"
    );
}

#[test]
fn a_huge_declared_size_is_refused_without_reading_it() {
    let (_out, packed) = pack_fixture("breast_cancer");
    let mut raw: Vec<Vec<u8>> = Vec::new();
    for (name, data) in entries(&packed.archive) {
        let declared = if name == "model.onnx" {
            1 << 40
        } else {
            data.len() as u64
        };
        raw.push(raw_entry(&name, EntryType::Regular, &data, declared));
    }
    let path = _out.path().join("huge.tiffin");
    write_raw_archive(&path, &raw);
    let report = verify(&path);
    let first = &report.problems[0];
    assert_eq!(first.file.as_deref(), Some("model.onnx"));
    assert!(
        first
            .message
            .starts_with("is 1099511627776 bytes, the manifest says"),
        "{}",
        first.message
    );
    assert!(!report.is_ok());
}

#[test]
fn an_entry_running_past_the_end_of_the_archive_is_refused_by_name() {
    let (out, packed) = pack_fixture("breast_cancer");
    let listed: Vec<Vec<u8>> = entries(&packed.archive)
        .into_iter()
        .map(|(name, data)| raw_entry(&name, EntryType::Regular, &data, data.len() as u64))
        .collect();
    let runs_past = "runs past the end of the archive";

    // A listed file whose header is whole but whose data the archive cuts off: its data lies
    // past the end, and is not read.
    let mut bytes = listed.concat();
    let last = listed.last().unwrap();
    bytes.truncate(bytes.len() - last.len() + 512 + 10);
    let path = out.path().join("cut-in-data.tiffin");
    std::fs::write(&path, &bytes).unwrap();
    let report = verify(&path);
    assert_eq!(report.problems.len(), 1, "{:?}", problems(&report));
    let cut = &report.problems[0];
    assert_eq!(
        (cut.file.as_deref(), cut.kind),
        (Some("signature.json"), ProblemKind::Truncated)
    );
    assert!(cut.message.contains(runs_past), "{}", cut.message);

    // An unlisted entry at the end declaring a terabyte, then the end marker: refused as an
    // extra file, and as an archive shorter than its headers say.
    let mut raw = listed.clone();
    raw.push(raw_entry("notes.txt", EntryType::Regular, b"abc", 1 << 40));
    let path = out.path().join("huge-at-the-end.tiffin");
    write_raw_archive(&path, &raw);
    let report = verify(&path);
    let kinds: Vec<_> = report
        .problems
        .iter()
        .map(|p| (p.file.as_deref(), p.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (Some("notes.txt"), ProblemKind::Extra),
            (None, ProblemKind::Truncated)
        ],
        "{:?}",
        problems(&report)
    );
    assert!(
        report.problems[1].message.contains(runs_past),
        "{}",
        report.problems[1].message
    );

    // A size whose end does not fit in a u64 (tar's base-256 size field holds one).
    let mut raw = listed.clone();
    raw.push(raw_entry(
        "notes.txt",
        EntryType::Regular,
        b"abc",
        u64::MAX - 100,
    ));
    write_raw_archive(&path, &raw);
    let report = verify(&path);
    let last = report.problems.last().unwrap();
    assert_eq!(last.kind, ProblemKind::Truncated, "{:?}", problems(&report));
    assert!(
        last.message
            .starts_with("the archive ends early or is damaged"),
        "{}",
        last.message
    );
}

#[test]
fn an_archive_whose_first_entry_is_not_the_manifest_is_not_a_package() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.tiffin");
    write_raw_archive(
        &path,
        &[raw_entry("model.onnx", EntryType::Regular, b"abc", 3)],
    );
    let err = tiffin_core::verify(&path, &Default::default(), &tiffin_core::hash::NoProgress)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not a tiffin package: its first entry is `model.onnx`; a tiffin archive is a tar whose first entry is tiffin.json",
            path.display()
        )
    );
    std::fs::write(&path, b"just some text, not a tar at all").unwrap();
    let err = tiffin_core::verify(&path, &Default::default(), &tiffin_core::hash::NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("is not a tiffin package"), "{err}");
}

#[test]
fn a_manifest_declaring_a_huge_size_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.tiffin");
    write_raw_archive(
        &path,
        &[raw_entry("tiffin.json", EntryType::Regular, b"{}", 1 << 30)],
    );
    let err = tiffin_core::verify(&path, &Default::default(), &tiffin_core::hash::NoProgress)
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "declares 1073741824 bytes, more than the bound MAX_MANIFEST_SIZE (67108864) allows"
        ),
        "{err}"
    );
}

#[test]
fn a_checksum_list_past_max_manifest_size_is_refused_without_reading_it_whole() {
    // A sparse checksum.txt of 16 GiB: read whole it would exhaust memory; verify reads one
    // byte past the bound and names it.
    let (out, packed) = pack_fixture("iris");
    let copy = out.path().join("copy");
    copy_tree(&packed.folder, &copy);
    let resize = |len: u64| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(copy.join("checksum.txt"))
            .and_then(|list| list.set_len(len))
            .unwrap();
    };
    resize(16 << 30);
    let report = verify(&copy);
    assert!(
        problems(&report).iter().any(|p| p.contains(
            "checksum.txt: is more than 67108864 bytes, more than the bound MAX_MANIFEST_SIZE allows"
        )),
        "{:?}",
        problems(&report)
    );
    // At the bound the list is read whole (and, being no list, does not match).
    resize(64 << 20);
    let found = problems(&verify(&copy));
    assert!(
        found
            .iter()
            .any(|p| p.contains("checksum.txt: does not match the digests in tiffin.json")),
        "{found:?}"
    );
}

#[test]
fn a_pickle_smuggled_into_a_package_is_named() {
    // Build a package whose manifest honestly lists a pickle, as a hostile packer would: the
    // digests all match, so only the content check can catch it.
    let (out, packed) = pack_fixture("breast_cancer");
    let copy = out.path().join("smuggled");
    copy_tree(&packed.folder, &copy);
    let pickle = std::fs::read(fixtures().join("unsafe/disguised.onnx")).unwrap();
    std::fs::write(copy.join("model.onnx"), &pickle).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("tiffin.json")).unwrap()).unwrap();
    for file in manifest["files"].as_array_mut().unwrap() {
        if file["path"] == "model.onnx" {
            file["size"] = pickle.len().into();
            file["sha256"] = tiffin_core::hash::sha256(&pickle).to_hex().into();
            file["blake3"] = blake3_hex(&pickle).into();
        }
    }
    let mut json = serde_json::to_vec_pretty(&manifest).unwrap();
    json.push(b'\n');
    std::fs::write(copy.join("tiffin.json"), &json).unwrap();
    let report = verify(&copy);
    let unsafe_problems: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::UnsafeFormat)
        .collect();
    assert_eq!(unsafe_problems.len(), 1, "{:?}", problems(&report));
    assert_eq!(unsafe_problems[0].file.as_deref(), Some("model.onnx"));
    assert!(
        unsafe_problems[0]
            .message
            .starts_with("is a Python pickle; loading it runs arbitrary code")
    );
}

fn blake3_hex(bytes: &[u8]) -> String {
    let d = tiffin_core::hash::hash_reader(
        bytes,
        tiffin_core::hash::Algorithms::BLAKE3,
        &tiffin_core::hash::NoProgress,
    )
    .unwrap();
    d.blake3.unwrap().to_hex()
}

/// Found by the `archive` fuzz target: a manifest whose digests are not hex (or whose paths hold
/// a backslash) was reported as invalid, then used to derive checksum.txt, which panicked. Both
/// are now reported, for the archive and for the folder, and nothing panics.
#[test]
fn a_manifest_with_a_digest_that_is_not_hex_is_reported() {
    let (out, packed) = pack_fixture("breast_cancer");
    let digest = &packed.manifest.files[0].sha256;
    let broken = format!("{}=5", &digest[..62]);
    let raw: Vec<Vec<u8>> = entries(&packed.archive)
        .into_iter()
        .map(|(name, data)| {
            let data = if name == "tiffin.json" {
                String::from_utf8(data)
                    .unwrap()
                    .replace(digest.as_str(), &broken)
                    .into_bytes()
            } else {
                data
            };
            raw_entry(&name, EntryType::Regular, &data, data.len() as u64)
        })
        .collect();
    let path = out.path().join("hostile.tiffin");
    write_raw_archive(&path, &raw);
    let folder = packed.folder.join("tiffin.json");
    let text = std::fs::read_to_string(&folder).unwrap();
    std::fs::write(&folder, text.replace(digest.as_str(), &broken)).unwrap();
    for package in [path, packed.folder.clone()] {
        let report = verify(&package);
        let all = problems(&report).join("\n");
        assert!(all.contains("is not a SHA-256 digest"), "{all}");
        assert!(!report.is_ok());
    }
}

#[test]
fn an_archive_of_max_entries_entries_verifies_and_one_more_is_refused() {
    use tiffin_core::layout::MAX_ENTRIES;
    let (out, packed) = pack_fixture("breast_cancer");
    let mut raw: Vec<Vec<u8>> = entries(&packed.archive)
        .into_iter()
        .map(|(name, data)| raw_entry(&name, EntryType::Regular, &data, data.len() as u64))
        .collect();
    // Empty folder entries: 512 bytes each and no problem of their own, so only the count
    // tells the two archives apart.
    let folders = MAX_ENTRIES - raw.len();
    raw.extend((0..folders).map(|i| raw_entry(&format!("d{i:06}"), EntryType::Directory, b"", 0)));
    let path = out.path().join("many.tiffin");
    write_raw_archive(&path, &raw);
    let report = verify(&path);
    assert!(report.is_ok(), "{:?}", problems(&report));

    raw.push(raw_entry("d-last", EntryType::Directory, b"", 0));
    write_raw_archive(&path, &raw);
    let err = tiffin_core::verify(&path, &Default::default(), &tiffin_core::hash::NoProgress)
        .unwrap_err();
    assert!(
        matches!(
            err,
            tiffin_core::Error::TooLarge {
                bound: "MAX_ENTRIES",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(
            "holds more than 200008 entries, more than the bound MAX_ENTRIES (200008) allows"
        ),
        "{err}"
    );
    // Reading files out of it is refused the same way.
    let err = tiffin_core::read_file(&path, "model.onnx").unwrap_err();
    assert!(err.to_string().contains("MAX_ENTRIES (200008)"), "{err}");
}

#[test]
fn an_authoring_file_over_max_manifest_size_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixtures().join("breast_cancer"), dir.path());
    // A sparse file: it claims 64 MiB and one byte without taking the disk or memory.
    let toml = dir.path().join("tiffin.toml");
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&toml)
        .unwrap();
    file.set_len(tiffin_core::layout::MAX_MANIFEST_SIZE + 1)
        .unwrap();
    let err = tiffin_core::layout::read_authoring(&toml).unwrap_err();
    assert!(
        err.to_string()
            .contains("is 67108865 bytes, more than the bound MAX_MANIFEST_SIZE (67108864) allows"),
        "{err}"
    );
}
