//! The local store: atomic adds under contention, dedupe across packages, tags, rm, gc, and
//! refusal of damaged blobs and unsafe paths without leaving anything behind.

use std::path::Path;

use tiffin_core::VerifyOptions;
use tiffin_core::hash::{Algorithms, Digest};
use tiffin_store::Store;

use tiffin_testkit::{copy_tree, fixtures, pack_fixture, pack_into};

fn quick() -> VerifyOptions {
    VerifyOptions {
        algorithms: Algorithms::BLAKE3,
        run_model: false,
        ..VerifyOptions::default()
    }
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn two_threads_adding_one_package_leave_one_good_copy() {
    let (out, packed) = pack_fixture("churn_model");
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = [&packed.archive, &packed.folder]
            .into_iter()
            .map(|p| {
                let store = store.clone();
                s.spawn(move || store.add(p, &quick()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results {
        let stored = r.as_ref().unwrap();
        assert_eq!(stored.entry.digest, format!("sha256:{}", packed.digest));
    }
    assert_eq!(count(&home.path().join("packages")), 1);
    assert_eq!(count(&home.path().join("tmp")), 0, "no staging left behind");
    let path = store.resolve("churn_model:1.0.0").unwrap();
    assert!(tiffin_testkit::verify(&path).is_ok());
    drop(out);
}

#[test]
fn identical_files_across_packages_are_stored_once() {
    let work = tempfile::tempdir().unwrap();
    let v2 = work.path().join("churn_v2");
    copy_tree(&fixtures().join("churn_model"), &v2);
    let toml = std::fs::read_to_string(v2.join("tiffin.toml")).unwrap();
    std::fs::write(
        v2.join("tiffin.toml"),
        toml.replacen("version = \"1.0.0\"", "version = \"1.0.1\"", 1),
    )
    .unwrap();
    let out = work.path().join("out");
    let first = pack_into(&fixtures().join("churn_model"), &out);
    let second = pack_into(&v2, &out);
    assert_ne!(first.digest, second.digest);

    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    store.add(&first.folder, &quick()).unwrap();
    let blobs_after_one = count(&home.path().join("blobs/sha256"));
    store.add(&second.archive, &quick()).unwrap();
    let blobs_after_two = count(&home.path().join("blobs/sha256"));
    // Only tiffin.json, checksum.txt and the card (which names the version) differ.
    assert!(
        blobs_after_two < 2 * blobs_after_one,
        "{blobs_after_one} then {blobs_after_two}"
    );
    let model = first
        .manifest
        .files
        .iter()
        .find(|f| f.path == first.manifest.model.path)
        .unwrap();
    let blob = store.blob_path(&Digest::from_hex(&model.sha256).unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&blob).unwrap().nlink(),
            3,
            "one inode, three names"
        );
    }
    assert!(blob.is_file());

    // The newest version answers to the bare name; both to name:version.
    assert_eq!(
        store.find("churn_model").unwrap().to_hex(),
        second.digest.to_hex()
    );
    let listed: Vec<_> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|e| e.tag.unwrap())
        .collect();
    assert_eq!(listed, ["churn_model:1.0.0", "churn_model:1.0.1"]);

    // rm of one version keeps the shared blobs; gc frees only what the other does not use.
    let removed = store.remove("churn_model:1.0.1").unwrap();
    assert_eq!(removed.tags, ["churn_model:1.0.1"]);
    assert_eq!(removed.package, Some(format!("sha256:{}", second.digest)));
    let collected = store.gc().unwrap();
    assert_eq!(collected.blobs, blobs_after_two - blobs_after_one);
    assert_eq!(count(&home.path().join("blobs/sha256")), blobs_after_one);
    assert!(blob.is_file());
    assert!(tiffin_testkit::verify(&store.resolve("churn_model").unwrap()).is_ok());
    // A digest prefix names the package too; a tag that does not exist names what does.
    let hex = first.digest.to_hex();
    assert_eq!(store.find(&hex[..10]).unwrap(), first.digest);
    assert_eq!(store.find(&format!("sha256:{hex}")).unwrap(), first.digest);
    let err = store.find("churn_model:9.9.9").unwrap_err().to_string();
    assert!(err.contains("it holds churn_model:1.0.0"), "{err}");

    // Removing the last tag removes the package; gc then frees everything.
    store.remove("churn_model:1.0.0").unwrap();
    store.gc().unwrap();
    assert_eq!(count(&home.path().join("blobs/sha256")), 0);
    assert_eq!(count(&home.path().join("packages")), 0);
}

#[test]
fn a_blob_with_the_wrong_digest_is_not_stored() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let data = b"the weights";
    let claimed = tiffin_core::hash::sha256(b"other weights");
    let err = store
        .write_blob(&mut &data[..], Some((&claimed, data.len() as u64)), "test")
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("blob sha256:{claimed}")), "{err}");
    assert_eq!(count(&home.path().join("blobs/sha256")), 0);
    assert_eq!(count(&home.path().join("tmp")), 0);

    // Longer than announced: cut off and refused.
    let right = tiffin_core::hash::sha256(data);
    let err = store
        .write_blob(&mut &data[..], Some((&right, 4)), "test")
        .unwrap_err()
        .to_string();
    assert!(err.contains("got 5 bytes"), "{err}");
    assert_eq!(count(&home.path().join("blobs/sha256")), 0);
}

#[test]
fn a_package_that_fails_verification_or_escapes_leaves_no_package() {
    let (_out, packed) = pack_fixture("churn_model");
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let stored = store.add(&packed.folder, &quick()).unwrap();
    store.remove(&stored.entry.digest).unwrap();
    let manifest = store
        .blob_path(&packed.digest)
        .exists()
        .then_some(packed.digest)
        .unwrap();
    let card = tiffin_core::hash::sha256(b"not the card");
    store
        .write_blob(&mut &b"not the card"[..], None, "test")
        .unwrap();
    // The manifest with a card whose content differs: verify refuses it.
    let err = store
        .commit(
            &[
                ("tiffin.json".to_owned(), manifest),
                ("model-card.md".to_owned(), card),
            ],
            &quick(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed verification"), "{err}");
    for bad in ["../evil", "/etc/passwd"] {
        let err = store
            .commit(&[(bad.to_owned(), card)], &quick())
            .unwrap_err()
            .to_string();
        assert!(err.contains(bad), "{err}");
    }
    assert_eq!(count(&home.path().join("packages")), 0);
    assert_eq!(count(&home.path().join("tags")), 0);
    assert_eq!(count(&home.path().join("tmp")), 0);
}

/// The store knows each file's sha256 from its blob's name: a manifest whose sha256 of a file is
/// wrong is refused even when verify checks blake3 alone, and nothing is stored.
#[test]
fn a_manifest_sha256_that_is_not_the_files_is_refused() {
    let (_out, packed) = pack_fixture("iris");
    let folder = &packed.folder;
    let bytes = std::fs::read(folder.join("tiffin.json")).unwrap();
    let mut manifest = tiffin_core::manifest::Manifest::from_json_slice(&bytes).unwrap();
    let file = manifest.files[0].path.clone();
    manifest.files[0].sha256 = "0".repeat(64);
    let json = manifest.to_canonical_json();
    std::fs::write(folder.join("tiffin.json"), &json).unwrap();
    let checksums =
        tiffin_core::layout::checksums(&manifest, &tiffin_core::layout::package_digest(&json));
    std::fs::write(folder.join("checksum.txt"), checksums).unwrap();
    // Consistent enough for a blake3-only verify...
    assert!(
        tiffin_core::verify(folder, &quick(), &tiffin_core::hash::NoProgress)
            .unwrap()
            .is_ok()
    );
    // ...but not for the store.
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let err = format!("{:#}", store.add(folder, &quick()).unwrap_err());
    assert!(
        err.contains(&format!(
            "{file}: content differs from the manifest (sha256"
        )),
        "{err}"
    );
    assert_eq!(count(&home.path().join("packages")), 0);
    assert_eq!(count(&home.path().join("tags")), 0);
}

/// A signed package keeps its signature in the store, even when the same package was stored
/// unsigned first, and a commit with the signer's key checks it; with another key nothing is
/// stored.
#[test]
fn signed_packages_keep_their_signature_and_are_checked_on_commit() {
    use tiffin_core::hash::NoProgress;
    use tiffin_core::{PublicKey, SignOptions, SigningKey, Verifier};
    let keys = fixtures().join("keys");
    let key = SigningKey::from_pem_file(&keys.join("signer.pem")).unwrap();
    let (out, packed) = pack_fixture("churn_model");
    tiffin_core::sign(&packed.archive, &key, &SignOptions::default(), &NoProgress).unwrap();
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    // The package digest does not cover the signature: the unsigned folder is stored first,
    // and the signed archive's signature joins it.
    store.add(&packed.folder, &quick()).unwrap();
    assert!(!store.add(&packed.archive, &quick()).unwrap().new);
    let stored = store.resolve("churn_model:1.0.0").unwrap();
    let signer: Verifier = PublicKey::from_pem_file(&keys.join("signer.pub.pem"))
        .unwrap()
        .into();
    let options = tiffin_core::SignatureOptions {
        bundle: None,
        verify: quick(),
    };
    let report = tiffin_core::verify_signature(&stored, &signer, &options, &NoProgress).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);

    // The same files committed with another key's verifier are refused, and not stored.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_store = Store::open(fresh.path()).unwrap();
    let files: Vec<(String, Digest)> = walkdir::WalkDir::new(&stored)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let name = e.path().strip_prefix(&stored).unwrap();
            let name = name.to_string_lossy().into_owned();
            let bytes = std::fs::read(e.path()).unwrap();
            let digest = fresh_store
                .write_blob(&mut bytes.as_slice(), None, &name)
                .unwrap();
            (name, digest)
        })
        .collect();
    let other: Verifier = PublicKey::from_pem_file(&keys.join("other.pub.pem"))
        .unwrap()
        .into();
    let refused = fresh_store.commit_checked(&files, &quick(), Some(&other));
    assert!(refused.is_err());
    assert_eq!(count(&fresh.path().join("packages")), 0);
    assert!(
        fresh_store
            .commit_checked(&files, &quick(), Some(&signer))
            .is_ok()
    );
    drop(out);
}

#[test]
fn a_removal_stopped_after_its_package_went_is_finished_by_rm_or_gc() {
    let (_out, packed) = pack_fixture("iris");
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let stored = store.add(&packed.folder, &quick()).unwrap();
    store.tag("iris:1.0.0", "iris:prod").unwrap();
    // What a removal killed between its two steps leaves: the package gone, its tags still
    // on disk. Readers pass over those tags.
    std::fs::remove_dir_all(&stored.entry.path).unwrap();
    assert!(store.list().unwrap().is_empty());
    assert!(store.find("iris:1.0.0").is_err());

    // `rm` run again finishes the removal of the tag it names.
    let removed = store.remove("iris:1.0.0").unwrap();
    assert_eq!(removed.tags, ["iris:1.0.0"]);
    assert_eq!(removed.package, None);
    assert!(!home.path().join("tags/iris/1.0.0").exists());
    assert!(
        store.remove("iris:1.0.0").is_err(),
        "nothing is left to remove"
    );

    // gc removes the rest.
    let collected = store.gc().unwrap();
    assert_eq!(collected.tags, 1);
    assert!(!home.path().join("tags/iris").exists());
    assert_eq!(store.gc().unwrap().tags, 0);
}

#[test]
fn rm_takes_the_package_out_before_its_tags() {
    let (_out, packed) = pack_fixture("iris");
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let stored = store.add(&packed.folder, &quick()).unwrap();
    store.tag("iris:1.0.0", "iris:prod").unwrap();
    // Removing one of two tags keeps the package.
    let removed = store.remove("iris:prod").unwrap();
    assert_eq!(removed.tags, ["iris:prod"]);
    assert_eq!(removed.package, None);
    assert!(stored.entry.path.is_dir());
    // Removing by digest removes the package and every tag naming it.
    store.tag("iris:1.0.0", "iris:prod").unwrap();
    let mut removed = store.remove(&stored.entry.digest).unwrap();
    removed.tags.sort();
    assert_eq!(removed.tags, ["iris:1.0.0", "iris:prod"]);
    assert_eq!(
        removed.package.as_deref(),
        Some(stored.entry.digest.as_str())
    );
    assert!(!stored.entry.path.exists());
    assert!(store.list().unwrap().is_empty());
}
