//! A model read from a range of a file (`ModelSource::Span`, a model inside an archive) loads
//! and answers as the same model given as bytes or as a file, and nothing outside the range is
//! read: a range cut short fails even when the rest of the model follows it in the file.

use std::io::Write;

use tiffin_manifest::ModelFormat;
use tiffin_runtime::{Error, LoadOptions, Model, ModelSource, Tensor};

use crate::common::*;

/// Bytes that are no model, around the model in the test files.
const JUNK: &[u8] = b"\x08\x07\x12\x03junk, not a model\x0a\xff\xff\xff\xff\x0f";

/// A file holding junk, `model`, then `after`; and the range of `model` in it.
fn framed(model: &[u8], after: &[u8]) -> (tempfile::NamedTempFile, u64) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let before = JUNK.repeat(37);
    file.write_all(&before).unwrap();
    file.write_all(model).unwrap();
    file.write_all(after).unwrap();
    file.flush().unwrap();
    (file, before.len() as u64)
}

/// Each source's outputs for the fixture's reference inputs, the first source's being the
/// ones the others must give.
fn agree(name: &str, sources: Vec<ModelSource>, options: &LoadOptions) {
    let r = reference(name);
    let mut first: Option<Vec<Tensor>> = None;
    for source in sources {
        let what = format!("{name} from {source:?}");
        let model = Model::load_owned(source, ModelFormat::Onnx, &signature(name), options)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let outputs = model
            .run(&reference_inputs(&model, &r))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        match &first {
            None => first = Some(outputs),
            Some(want) => {
                for (got, want) in outputs.iter().zip(want) {
                    assert_close(&what, got, want, &SAME_MACHINE);
                }
            }
        }
    }
}

/// The three sources of every fixture's model: bytes, the file, and its range of a file with
/// junk before it and after it.
fn each_fixture(options: &LoadOptions) {
    let names = fixtures();
    assert!(names.len() >= 10, "found only {names:?}");
    for name in names {
        let path = fixture(&name).join("model.onnx");
        let bytes = std::fs::read(&path).unwrap();
        let (file, offset) = framed(&bytes, &JUNK.repeat(11));
        let span = ModelSource::Span {
            path: file.path().to_owned(),
            offset,
            len: bytes.len() as u64,
        };
        let sources = vec![ModelSource::Bytes(bytes), ModelSource::File(path), span];
        agree(&name, sources, options);
    }
}

#[test]
fn every_fixture_reads_alike_from_a_range() {
    each_fixture(&LoadOptions::default());
}

#[cfg(feature = "ort")]
#[test]
fn every_fixture_reads_alike_from_a_range_through_onnx_runtime() {
    each_fixture(&LoadOptions::default().with_runtime(ort_runtime()));
}

/// Every session of a model in several (`serve --ort-sessions 2`) is made from the range's
/// temporary copy, which must last until the last one is made.
#[cfg(feature = "ort")]
#[test]
fn a_range_loads_into_two_onnx_runtime_sessions() {
    let bytes = std::fs::read(fixture("mnist_cnn").join("model.onnx")).unwrap();
    let (file, offset) = framed(&bytes, &JUNK.repeat(11));
    let span = ModelSource::Span {
        path: file.path().to_owned(),
        offset,
        len: bytes.len() as u64,
    };
    let options = LoadOptions::default()
        .with_runtime(ort_runtime())
        .with_sessions(2);
    agree("mnist_cnn", vec![ModelSource::Bytes(bytes), span], &options);
}

/// Ranges that do not hold the whole model are refused, never read past: the model cut short
/// (with the rest of it right after the range in the file), shifted by a byte, or over junk;
/// and a range past the end of the file is refused by its sizes.
fn broken_ranges_are_refused(options: &LoadOptions) {
    // The fixtures' weights are all under 1 MiB, so these ranges are read whole; the unit tests
    // of `model` cut ranges whose weights go straight into tensors.
    for name in ["bert_tiny", "mnist_cnn"] {
        let bytes = std::fs::read(fixture(name).join("model.onnx")).unwrap();
        let (file, offset) = framed(&bytes, JUNK);
        let len = bytes.len() as u64;
        let at = |offset: u64, len: u64| ModelSource::Span {
            path: file.path().to_owned(),
            offset,
            len,
        };
        let junk_len = JUNK.len() as u64;
        let broken = [
            ("cut by one byte", at(offset, len - 1)),
            ("cut in half", at(offset, len / 2)),
            ("cut to its first bytes", at(offset, 10)),
            ("shifted by a byte", at(offset + 1, len)),
            ("over the junk", at(0, offset)),
            ("over the junk after it", at(offset + len, junk_len)),
        ];
        for (what, source) in broken {
            let loaded = Model::load_owned(source, ModelFormat::Onnx, &signature(name), options);
            assert!(loaded.is_err(), "{name}: a range {what} loaded");
        }
        let past = Model::load_owned(
            at(offset, len + junk_len + 1),
            ModelFormat::Onnx,
            &signature(name),
            options,
        );
        let Err(Error::Source(message)) = past else {
            panic!("{name}: a range past the end of the file gave {past:?}");
        };
        assert!(message.contains("verify it again"), "{message}");
    }
}

#[test]
fn broken_ranges_are_refused_by_tract() {
    broken_ranges_are_refused(&LoadOptions::default());
}

#[cfg(feature = "ort")]
#[test]
fn broken_ranges_are_refused_by_onnx_runtime() {
    broken_ranges_are_refused(&LoadOptions::default().with_runtime(ort_runtime()));
}
