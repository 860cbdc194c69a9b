//! Parsing `tiffin.toml` and `tiffin.json`, and the canonical JSON form.

use tiffin_manifest::{
    Authoring, DType, Dim, Error, FORMAT_VERSION, FileRole, Manifest, ModelFormat,
};

use crate::{FULL_TOML, full_authoring, full_manifest};

#[test]
fn full_authoring_file_parses_and_is_valid() {
    let a = full_authoring();
    assert_eq!(a.package.name, "breast_cancer");
    assert_eq!(a.package.version, "1.0.0");
    assert_eq!(a.package.model_card.as_deref(), Some("MODEL_CARD.md"));
    assert_eq!(a.model.format, Some(ModelFormat::Onnx));
    assert_eq!(a.model.opset, Some(17));
    assert_eq!(
        a.framework.as_ref().unwrap().version.as_deref(),
        Some("1.5.2")
    );
    assert_eq!(
        a.training.as_ref().unwrap().commit.as_deref(),
        Some("0123abcd4567ef89")
    );
    let tract = a.runtime.tract.as_ref().unwrap();
    assert!(tract.matches(&semver::Version::new(0, 23, 4)));
    assert!(!tract.matches(&semver::Version::new(0, 24, 0)));
    assert_eq!(a.device.min_memory_mb, Some(512));
    let x = a.signature.input("X").unwrap();
    assert_eq!(x.dtype, DType::F32);
    assert_eq!(x.shape, [Dim::Named("batch".into()), Dim::Fixed(3)]);
    assert_eq!(x.feature_names.as_ref().unwrap().len(), 3);
    let label = a.signature.output("label").unwrap();
    assert_eq!(
        label.class_labels.as_ref().unwrap(),
        &["malignant", "benign"]
    );
    assert_eq!(a.files[0].role, FileRole::Environment);
    a.validate().unwrap();
}

#[test]
fn from_authoring_copies_the_fields_and_sorts_the_files() {
    let m = full_manifest();
    assert_eq!(m.format_version, FORMAT_VERSION);
    assert_eq!(m.name, "breast_cancer");
    assert_eq!(m.version, semver::Version::new(1, 0, 0));
    assert_eq!(m.license.as_deref(), Some("Apache-2.0"));
    assert_eq!(m.model.path, "model.onnx");
    assert_eq!(m.model.format, ModelFormat::Onnx);
    assert_eq!(m.signature, full_authoring().signature);
    let paths: Vec<_> = m.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["MODEL_CARD.md", "model.onnx", "requirements.txt"]);
    m.validate().unwrap();
}

#[test]
fn from_authoring_infers_the_format_when_absent() {
    let a = Authoring::from_toml_str(&FULL_TOML.replace("format = \"onnx\"\n", "")).unwrap();
    assert_eq!(a.model.format, None);
    let m = Manifest::from_authoring(
        &a,
        "2024-05-01T12:00:00Z".into(),
        "model.onnx".into(),
        full_manifest().files,
    )
    .unwrap();
    assert_eq!(m.model.format, ModelFormat::Onnx);
}

#[test]
fn from_authoring_refuses_an_invalid_authoring_file() {
    let a =
        Authoring::from_toml_str(&FULL_TOML.replace("version = \"1.0.0\"", "version = \"1.0\""))
            .unwrap();
    let err = Manifest::from_authoring(
        &a,
        "2024-05-01T12:00:00Z".into(),
        "model.onnx".into(),
        vec![],
    )
    .unwrap_err();
    let Error::Invalid(errors) = &err else {
        panic!("expected Error::Invalid, got {err}");
    };
    assert_eq!(errors.0[0].field, "package.version");
}

#[test]
fn canonical_json_round_trips_byte_for_byte() {
    let bytes = full_manifest().to_canonical_json();
    let parsed = Manifest::from_json_slice(&bytes).unwrap();
    assert_eq!(parsed, full_manifest());
    assert_eq!(parsed.to_canonical_json(), bytes);
}

#[test]
fn canonical_json_is_pretty_in_field_order_with_a_trailing_newline() {
    let text = String::from_utf8(full_manifest().to_canonical_json()).unwrap();
    assert!(text.starts_with("{\n  \"format_version\": 1,\n  \"name\": \"breast_cancer\",\n  \"version\": \"1.0.0\",\n"), "{text}");
    assert!(text.ends_with("}\n"), "{text}");
    let order = [
        "\"model\"",
        "\"framework\"",
        "\"training\"",
        "\"runtime\"",
        "\"device\"",
        "\"signature\"",
        "\"files\"",
    ];
    let positions: Vec<_> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(positions.is_sorted(), "{text}");
}

#[test]
fn unknown_field_in_toml_is_named() {
    let toml = FULL_TOML.replace("license = ", "licence = ");
    let err = Authoring::from_toml_str(&toml).unwrap_err().to_string();
    assert!(err.starts_with("TOML parse error"), "{err}");
    assert!(
        err.contains("unknown field `licence`, expected one of"),
        "{err}"
    );
}

#[test]
fn unknown_field_in_a_nested_toml_table_is_named() {
    let toml = FULL_TOML.replace("dtype = \"i64\"", "dtype = \"i64\"\nlabels = [\"a\"]");
    let err = Authoring::from_toml_str(&toml).unwrap_err().to_string();
    assert!(err.contains("unknown field `labels`"), "{err}");
}

#[test]
fn unknown_dtype_in_toml_is_named() {
    let toml = FULL_TOML.replace("dtype = \"f32\"", "dtype = \"float\"");
    let err = Authoring::from_toml_str(&toml).unwrap_err().to_string();
    assert!(err.contains("unknown variant `float`"), "{err}");
}

#[test]
fn unknown_field_in_json_is_named() {
    let text = String::from_utf8(full_manifest().to_canonical_json()).unwrap();
    let text = text.replace("\"tags\":", "\"keywords\": [],\n  \"tags\":");
    let err = Manifest::from_json_slice(text.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `keywords`"), "{err}");
}

#[test]
fn unknown_format_version_is_reported_before_anything_else() {
    // A manifest from a future tiffin may have fields this one does not know; the
    // version error must win so that the user learns to upgrade.
    let text = String::from_utf8(full_manifest().to_canonical_json()).unwrap();
    let text = text
        .replace("\"format_version\": 1", "\"format_version\": 7")
        .replace("\"tags\":", "\"provenance\": {},\n  \"tags\":");
    let err = Manifest::from_json_slice(text.as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported format_version 7: this tiffin reads format 1; upgrade tiffin"
    );
    assert!(matches!(
        err,
        Error::UnsupportedFormatVersion { supported: 1, .. }
    ));
}

#[test]
fn missing_format_version_is_reported() {
    let err = Manifest::from_json_slice(b"{}").unwrap_err().to_string();
    assert!(
        err.starts_with("tiffin.json has no `format_version`"),
        "{err}"
    );
}

#[test]
fn created_may_be_an_unquoted_toml_datetime() {
    let toml = FULL_TOML.replace(
        "created = \"2024-05-01T12:00:00Z\"",
        "created = 2024-05-01T12:00:00Z",
    );
    let a = Authoring::from_toml_str(&toml).unwrap();
    assert_eq!(a.package.created.as_deref(), Some("2024-05-01T12:00:00Z"));
    a.validate().unwrap();

    // A TOML date without a time parses, and validation explains what is missing.
    let toml = FULL_TOML.replace("created = \"2024-05-01T12:00:00Z\"", "created = 2024-05-01");
    let errors = Authoring::from_toml_str(&toml)
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(errors.0[0].field, "package.created");
}

#[test]
fn negative_dim_in_toml_names_the_value_and_what_is_expected() {
    let toml = FULL_TOML.replace("shape = [\"batch\", 3]", "shape = [\"batch\", -3]");
    let err = Authoring::from_toml_str(&toml).unwrap_err().to_string();
    assert!(
        err.contains("invalid value: integer `-3`, expected a dim: a size of at least 1 such as 30, or a dim name such as \"batch\""),
        "{err}"
    );
}
