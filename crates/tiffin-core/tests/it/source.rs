//! Where the runtime reads a package's model from: a folder's file by its path, an archive's
//! member as its range of the archive, and anything else as bytes.

use tiffin_core::PackageKind;
use tiffin_core::runtime::ModelSource;

use crate::support::*;

/// An archived model is its member's range of the archive, holding the model file's bytes, and
/// the model loaded from there answers the golden examples as the folder's does.
#[test]
fn an_archived_model_is_read_in_place() {
    let (_out, packed) = pack_fixture("churn_model");
    let model = std::fs::read(fixtures().join("churn_model/model.onnx")).unwrap();
    let manifest = &packed.manifest;
    let folder = tiffin_core::model_source(&packed.folder, PackageKind::Folder, manifest).unwrap();
    assert_eq!(folder, ModelSource::File(packed.folder.join("model.onnx")));
    let archive =
        tiffin_core::model_source(&packed.archive, PackageKind::Archive, manifest).unwrap();
    let ModelSource::Span { path, offset, len } = &archive else {
        panic!("the archived model is {archive:?}");
    };
    assert_eq!(path, &packed.archive);
    assert!(*offset > 0);
    assert_eq!(*len, model.len() as u64);
    assert_eq!(archive.into_bytes().unwrap(), model);
    let options = tiffin_core::runtime::LoadOptions::default();
    for package in [&packed.folder, &packed.archive] {
        let loaded = tiffin_core::load(package, &options).unwrap();
        let drifts = loaded.check_examples().unwrap().unwrap();
        assert!(
            drifts.iter().all(|d| d.passed()),
            "{}: {drifts:?}",
            package.display()
        );
    }
}

/// A member that no longer has the size the manifest records (the archive was rewritten after
/// it was verified) is not read as a range: its bytes are read as they are, and a model cut
/// short then fails to load rather than being read past its end.
#[test]
fn a_member_of_another_size_is_read_as_bytes() {
    let (out, packed) = pack_fixture("churn_model");
    let mut raw = Vec::new();
    for (name, data) in entries(&packed.archive) {
        let data = if name == "model.onnx" {
            data[..data.len() / 2].to_vec()
        } else {
            data
        };
        raw.push(raw_entry(
            &name,
            tar::EntryType::Regular,
            &data,
            data.len() as u64,
        ));
    }
    let rewritten = out.path().join("rewritten.tiffin");
    write_raw_archive(&rewritten, &raw);
    let source =
        tiffin_core::model_source(&rewritten, PackageKind::Archive, &packed.manifest).unwrap();
    let ModelSource::Bytes(bytes) = &source else {
        panic!("the cut model is {source:?}");
    };
    let model = std::fs::metadata(fixtures().join("churn_model/model.onnx")).unwrap();
    assert_eq!(bytes.len() as u64, model.len() / 2);
    let loaded = tiffin_core::runtime::Model::load_owned(
        source,
        packed.manifest.model.format,
        &packed.manifest.signature,
        &tiffin_core::runtime::LoadOptions::default(),
    );
    assert!(loaded.is_err(), "half a model loaded");
}
