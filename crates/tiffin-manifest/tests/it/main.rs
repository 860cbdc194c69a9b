//! Integration tests of tiffin-manifest, built as one test binary: parsing, validation and schemas.

mod bounds;
mod parse;
mod schema;
mod validation;

use tiffin_manifest::{Authoring, FileEntry, FileRole, Manifest, ValidationErrors};

/// A complete `tiffin.toml` using every section.
const FULL_TOML: &str = r#"
[package]
name = "breast_cancer"
version = "1.0.0"
description = "Classifies a breast mass as malignant or benign from three measurements."
authors = ["Ada <ada@example.com>"]
license = "Apache-2.0"
created = "2024-05-01T12:00:00Z"
intended_use = "Teaching; not for diagnosis."
model_card = "MODEL_CARD.md"
tags = ["tabular"]

[model]
path = "model.onnx"
format = "onnx"
opset = 17

[framework]
name = "scikit-learn"
version = "1.5.2"

[training]
repository = "https://github.com/acme/breast-cancer"
commit = "0123abcd4567ef89"
data = "s3://bucket/wdbc-2024-05.parquet"

[runtime]
tract = ">=0.23, <0.24"
python = ["scikit-learn==1.5.2"]

[device]
cpu_features = ["avx2"]
gpu = false
min_memory_mb = 512

[signature]
[[signature.inputs]]
name = "X"
dtype = "f32"
shape = ["batch", 3]
feature_names = ["mean radius", "mean texture", "mean perimeter"]
[[signature.outputs]]
name = "label"
dtype = "i64"
shape = ["batch"]
class_labels = ["malignant", "benign"]

[[files]]
path = "requirements.txt"
role = "environment"
"#;

/// The full example, parsed.
fn full_authoring() -> Authoring {
    Authoring::from_toml_str(FULL_TOML).expect("the full example parses")
}

/// A file entry whose digests are made of one repeated hex digit.
fn entry(path: &str, role: FileRole, digit: char) -> FileEntry {
    FileEntry {
        path: path.to_owned(),
        role,
        size: 100,
        sha256: digit.to_string().repeat(64),
        blake3: digit.to_string().repeat(64),
    }
}

/// The manifest the packer would write for the full example.
fn full_manifest() -> Manifest {
    let files = vec![
        entry("requirements.txt", FileRole::Environment, 'c'),
        entry("model.onnx", FileRole::Model, 'a'),
        entry("MODEL_CARD.md", FileRole::ModelCard, 'b'),
    ];
    Manifest::from_authoring(
        &full_authoring(),
        "2024-05-01T12:00:00Z".to_owned(),
        "model.onnx".to_owned(),
        files,
    )
    .expect("the full example is valid")
}

/// The messages reported for `field`, so that a test can compare them exactly.
fn messages(errors: &ValidationErrors, field: &str) -> Vec<String> {
    errors.for_field(field).map(|p| p.message.clone()).collect()
}
