//! Validation: one test per class of problem, each checking the message a user sees.

use tiffin_manifest::{
    Authoring, Dim, FileRole, FileSpec, Manifest, TensorSpec, check_relative_path,
};

use crate::{FULL_TOML, entry, full_authoring, full_manifest, messages};

/// Validates an authoring file that is expected to have problems.
fn authoring_errors(a: &Authoring) -> tiffin_manifest::ValidationErrors {
    a.validate()
        .expect_err("the authoring file should be invalid")
}

/// Validates a manifest that is expected to have problems.
fn manifest_errors(m: &Manifest) -> tiffin_manifest::ValidationErrors {
    m.validate().expect_err("the manifest should be invalid")
}

/// A second input like `X`, named `name`, sharing the named last dim `n`.
fn input_with_features(name: &str, features: &[&str]) -> TensorSpec {
    TensorSpec {
        name: name.to_owned(),
        dtype: tiffin_manifest::DType::F32,
        shape: vec![Dim::Named("batch".into()), Dim::Named("n".into())],
        feature_names: Some(features.iter().map(|f| f.to_string()).collect()),
        class_labels: None,
        description: None,
    }
}

#[test]
fn package_name_must_match_the_pattern() {
    let mut a = full_authoring();
    a.package.name = "Breast Cancer".into();
    let errors = authoring_errors(&a);
    assert_eq!(
        messages(&errors, "package.name"),
        [
            "`Breast Cancer` is not a valid package name: use 1 to 64 lowercase letters, digits, `.`, `_` or `-`, \
          starting with a letter or digit, e.g. `breast_cancer` (the name is used in folder names, archive names \
          and OCI references)"
        ]
    );

    let mut m = full_manifest();
    m.name = format!("a{}", "b".repeat(64));
    assert_eq!(manifest_errors(&m).0[0].field, "name");
}

#[test]
fn package_version_must_be_semver() {
    let mut a = full_authoring();
    a.package.version = "1.0".into();
    assert_eq!(
        messages(&authoring_errors(&a), "package.version"),
        [
            "`1.0` is not a semantic version (unexpected end of input while parsing minor version number): \
          use MAJOR.MINOR.PATCH, e.g. 1.0.0"
        ]
    );
}

#[test]
fn dim_names_must_be_identifiers() {
    let mut a = full_authoring();
    a.signature.inputs[0].shape[0] = Dim::Named("batch size".into());
    assert_eq!(
        messages(&authoring_errors(&a), "signature.inputs[0].shape[0]"),
        [
            "dim name `batch size` is not an identifier: use letters, digits and `_`, not starting with a digit, \
          e.g. \"batch\""
        ]
    );
}

#[test]
fn fixed_dims_must_be_positive() {
    let mut a = full_authoring();
    a.signature.outputs[0].shape = vec![Dim::Fixed(0)];
    assert_eq!(
        messages(&authoring_errors(&a), "signature.outputs[0].shape[0]"),
        ["a fixed dim must be at least 1: use a dim name such as \"batch\" for a size that varies"]
    );
}

#[test]
fn tensor_names_must_be_unique_among_inputs_and_among_outputs() {
    let mut a = full_authoring();
    a.signature.inputs.push(a.signature.inputs[0].clone());
    a.signature.outputs.push(a.signature.outputs[0].clone());
    let errors = authoring_errors(&a);
    assert_eq!(
        messages(&errors, "signature.inputs[1].name"),
        [
            "input `X` is declared twice (first at signature.inputs[0]): give each input its own name"
        ]
    );
    assert_eq!(
        messages(&errors, "signature.outputs[1].name"),
        [
            "output `label` is declared twice (first at signature.outputs[0]): give each output its own name"
        ]
    );

    // An input and an output may share a name: they live in different namespaces.
    let mut a = full_authoring();
    a.signature.outputs[0].name = "X".into();
    a.validate().unwrap();
}

#[test]
fn feature_names_must_match_a_fixed_last_dim() {
    let mut a = full_authoring();
    a.signature.inputs[0].shape[1] = Dim::Fixed(30);
    assert_eq!(
        messages(&authoring_errors(&a), "signature.inputs[0].feature_names"),
        ["`X` has 3 feature names but its last dim is 30: give exactly one name per column"]
    );
}

#[test]
fn feature_names_on_a_scalar_are_a_problem() {
    let mut a = full_authoring();
    a.signature.inputs[0].shape.clear();
    assert_eq!(
        messages(&authoring_errors(&a), "signature.inputs[0].feature_names"),
        [
            "`X` is a scalar (its shape is empty), so it has no columns to name: remove feature_names"
        ]
    );
}

#[test]
fn a_named_last_dim_must_get_one_size_from_feature_names() {
    let mut a = full_authoring();
    let features_30: Vec<String> = (0..30).map(|i| format!("f{i}")).collect();
    let features_30: Vec<&str> = features_30.iter().map(String::as_str).collect();
    a.signature.inputs = vec![
        input_with_features("X", &features_30),
        input_with_features("Y", &["a", "b", "c", "d"]),
        input_with_features("Z", &features_30),
    ];
    let errors = authoring_errors(&a);
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(
        messages(&errors, "signature.inputs[1].feature_names"),
        [
            "dim `n` would take two sizes: 30 (from X.feature_names) and 4 (from Y.feature_names): give both \
          tensors the same number of feature names, or use different dim names"
        ]
    );
}

#[test]
fn feature_names_must_be_unique() {
    let mut a = full_authoring();
    a.signature.inputs[0].feature_names = Some(vec!["r".into(), "t".into(), "r".into()]);
    assert_eq!(
        messages(&authoring_errors(&a), "signature.inputs[0].feature_names"),
        [
            "feature name `r` appears twice in `X` (positions 0 and 2): each feature name must be unique"
        ]
    );
}

#[test]
fn class_labels_must_be_non_empty_and_unique() {
    let mut a = full_authoring();
    a.signature.outputs[0].class_labels = Some(vec![]);
    assert_eq!(
        messages(&authoring_errors(&a), "signature.outputs[0].class_labels"),
        [
            "class_labels of `label` is empty: list one label per class in the model's class order, or remove \
          class_labels"
        ]
    );

    a.signature.outputs[0].class_labels =
        Some(vec!["benign".into(), "malignant".into(), "benign".into()]);
    assert_eq!(
        messages(&authoring_errors(&a), "signature.outputs[0].class_labels"),
        [
            "class label `benign` appears twice in `label` (positions 0 and 2): each class label must be unique"
        ]
    );
}

#[test]
fn signature_needs_an_input_and_an_output() {
    let mut a = full_authoring();
    a.signature.inputs.clear();
    a.signature.outputs.clear();
    let errors = authoring_errors(&a);
    assert_eq!(
        messages(&errors, "signature.inputs"),
        [
            "the model needs at least one input: add a [[signature.inputs]] table with its name, dtype and shape"
        ]
    );
    assert_eq!(
        messages(&errors, "signature.outputs"),
        [
            "the model needs at least one output: add a [[signature.outputs]] table with its name, dtype and shape"
        ]
    );
}

#[test]
fn a_file_listed_twice_is_a_problem() {
    let mut a = full_authoring();
    a.files.push(FileSpec {
        path: "requirements.txt".into(),
        role: FileRole::Extra,
    });
    assert_eq!(
        messages(&authoring_errors(&a), "files[1].path"),
        ["`requirements.txt` is listed twice (also at files[0].path): list each file once"]
    );

    let mut m = full_manifest();
    m.files.insert(1, m.files[1].clone());
    assert_eq!(
        messages(&manifest_errors(&m), "files[2].path"),
        ["`model.onnx` is listed twice (also at files[1]): list each file once"]
    );
}

#[test]
fn paths_must_be_relative_portable_and_inside_the_package() {
    const FIX: &str = "use a relative path inside the model folder, with `/` between folders, e.g. `data/example.json`";
    let cases = [
        ("/etc/passwd", format!("`/etc/passwd` is absolute: {FIX}")),
        (
            "C:/data/x.csv",
            format!("`C:/data/x.csv` starts with a drive letter: {FIX}"),
        ),
        (
            "data\\x.csv",
            format!("`data\\x.csv` contains a backslash, which is not portable: {FIX}"),
        ),
        (
            "../secret",
            format!("`../secret` contains `..`, which leaves the package: {FIX}"),
        ),
        (
            "data/../../x",
            format!("`data/../../x` contains `..`, which leaves the package: {FIX}"),
        ),
        (
            "data//x.csv",
            format!("`data//x.csv` has an empty component (`//` or a trailing `/`): {FIX}"),
        ),
        ("./x.csv", format!("`./x.csv` has a `.` component: {FIX}")),
        ("", format!("the path is empty: {FIX}")),
        (
            "tiffin.json",
            format!("`tiffin.json` is reserved: the packer writes it; rename your file and {FIX}"),
        ),
        (
            "checksum.txt",
            format!("`checksum.txt` is reserved: the packer writes it; rename your file and {FIX}"),
        ),
    ];
    for (path, expected) in &cases {
        assert_eq!(check_relative_path(path).unwrap_err(), *expected, "{path}");
    }
    for ok in [
        "model.onnx",
        "data/examples/in.json",
        "weights.nnef.tar.gz",
        "docs/tiffin.json",
    ] {
        assert_eq!(check_relative_path(ok), Ok(()), "{ok}");
    }

    // The same check applies to every path of both documents.
    let mut a = full_authoring();
    a.files[0].path = "../requirements.txt".into();
    a.model.path = "/models/model.onnx".into();
    a.package.model_card = Some("C:\\card.md".into());
    let errors = authoring_errors(&a);
    assert_eq!(
        messages(&errors, "files[0].path"),
        [cases[3].1.replace("../secret", "../requirements.txt")]
    );
    assert_eq!(
        messages(&errors, "model.path"),
        [format!("`/models/model.onnx` is absolute: {FIX}")]
    );
    assert_eq!(
        messages(&errors, "package.model_card"),
        [format!("`C:\\card.md` starts with a drive letter: {FIX}")]
    );

    let mut m = full_manifest();
    m.files[2].path = "tiffin.json".into();
    assert_eq!(
        messages(&manifest_errors(&m), "files[2].path"),
        [cases[8].1.clone()]
    );
}

#[test]
fn model_format_must_be_known_or_inferable() {
    let a = Authoring::from_toml_str(&FULL_TOML.replace(
        "path = \"model.onnx\"\nformat = \"onnx\"\nopset = 17",
        "path = \"model.pt\"",
    ))
    .unwrap();
    assert_eq!(
        messages(&authoring_errors(&a), "model.format"),
        [
            "cannot tell the format of model `model.pt` from its name: name it `*.onnx`, `*.nnef.tar`, `*.nnef.tgz`, \
          `*.nnef.tar.gz` or, for an NNEF folder, end it with `/`; or set `format = \"onnx\"` or \
          `format = \"nnef\"` in [model]"
        ]
    );
}

#[test]
fn manifest_model_must_be_among_the_files() {
    let mut m = full_manifest();
    m.model.path = "weights.onnx".into();
    assert_eq!(
        messages(&manifest_errors(&m), "model.path"),
        [
            "`weights.onnx` is not among the files: list the model file in files, or pack the model again"
        ]
    );

    // An NNEF folder is found through the files inside it.
    let mut m = full_manifest();
    m.model.path = "model".into();
    m.files[1].path = "model/graph.nnef".into();
    m.validate().unwrap();
}

#[test]
fn unknown_format_version_is_a_problem() {
    let mut m = full_manifest();
    m.format_version = 7;
    assert_eq!(
        messages(&manifest_errors(&m), "format_version"),
        ["unsupported format_version 7: this tiffin reads format 1; upgrade tiffin"]
    );
}

#[test]
fn license_must_be_an_spdx_expression() {
    let expected = "is not an SPDX license expression: use SPDX ids joined by AND, OR or WITH, e.g. \
                    `MIT OR Apache-2.0`; write `LicenseRef-<name>` for a license of your own or `NOASSERTION` if unknown";
    for bad in [
        "Apache 2.0",
        "MIT and Apache-2.0",
        "MIT OR",
        "(MIT",
        "GPL-2.0-only WITH",
        "MIT/Apache-2.0",
        "",
    ] {
        let mut a = full_authoring();
        a.package.license = Some(bad.into());
        assert_eq!(
            messages(&authoring_errors(&a), "package.license"),
            [format!("`{bad}` {expected}")],
            "{bad}"
        );
    }
    for good in [
        "MIT",
        "MIT OR Apache-2.0",
        "(MIT OR Apache-2.0) AND BSD-3-Clause",
        "GPL-2.0-or-later WITH Classpath-exception-2.0",
        "GPL-2.0+",
        "LicenseRef-acme-internal",
        "NOASSERTION",
    ] {
        let mut a = full_authoring();
        a.package.license = Some(good.into());
        assert_eq!(a.validate(), Ok(()), "{good}");
    }
}

#[test]
fn training_commit_must_be_a_hex_hash() {
    for bad in ["abc12", "not-a-commit", &"a".repeat(65)] {
        let mut a = full_authoring();
        a.training.as_mut().unwrap().commit = Some(bad.to_owned());
        assert_eq!(
            messages(&authoring_errors(&a), "training.commit"),
            [format!(
                "`{bad}` is not a git commit hash: use 7 to 64 hex characters, e.g. the output of `git rev-parse HEAD`"
            )]
        );
    }
    let mut a = full_authoring();
    a.training.as_mut().unwrap().commit = Some("0123abc".into());
    a.validate().unwrap();
}

#[test]
fn created_must_be_rfc3339() {
    for bad in [
        "2024-05-01",
        "2024-05-01T12:00:00",
        "2024-13-01T12:00:00Z",
        "2024-05-01T12:00:00Z[Europe/Paris]",
        "yesterday",
    ] {
        let mut a = full_authoring();
        a.package.created = Some(bad.into());
        assert_eq!(
            messages(&authoring_errors(&a), "package.created"),
            [format!(
                "`{bad}` is not an RFC 3339 timestamp: write a date, a time and an offset, e.g. `2024-05-01T12:00:00Z`"
            )],
            "{bad}"
        );
    }
    for good in [
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.123+02:00",
        "2024-05-01T12:00:00-05:30",
    ] {
        let mut m = full_manifest();
        m.created = good.into();
        assert_eq!(m.validate(), Ok(()), "{good}");
    }
}

#[test]
fn digests_must_be_lowercase_hex() {
    let mut m = full_manifest();
    m.files[0].sha256 = "A".repeat(64);
    m.files[1].blake3 = "abc".into();
    let errors = manifest_errors(&m);
    assert_eq!(
        messages(&errors, "files[0].sha256"),
        [format!(
            "`{}` is not a SHA-256 digest: expected 64 lowercase hex characters; pack the model again so that tiffin computes it",
            "A".repeat(64)
        )]
    );
    assert_eq!(
        messages(&errors, "files[1].blake3"),
        [
            "`abc` is not a BLAKE3 digest: expected 64 lowercase hex characters; pack the model again so that tiffin computes it"
        ]
    );
}

#[test]
fn files_must_be_sorted_by_path() {
    let mut m = full_manifest();
    m.files.swap(1, 2);
    let errors = manifest_errors(&m);
    assert_eq!(
        messages(&errors, "files[2].path"),
        [
            "`model.onnx` comes after `requirements.txt`: files must be sorted by path (byte order); pack the model \
          again so that tiffin writes them in order"
        ]
    );
    assert_eq!(errors.0.len(), 1, "{errors}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut a = full_authoring();
    a.package.name = "Bad Name".into();
    a.package.version = "one".into();
    a.package.license = Some("Apache 2".into());
    a.package.created = Some("today".into());
    a.training.as_mut().unwrap().commit = Some("xyz".into());
    a.signature.inputs[0].shape[1] = Dim::Fixed(0);
    a.signature.outputs[0].class_labels = Some(vec![]);
    a.files.push(FileSpec {
        path: "../x".into(),
        role: FileRole::Extra,
    });
    let errors = authoring_errors(&a);
    let fields: Vec<_> = errors.0.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "package.name",
            "package.version",
            "package.license",
            "package.created",
            "training.commit",
            "signature.inputs[0].shape[1]",
            "signature.inputs[0].feature_names",
            "signature.outputs[0].class_labels",
            "files[1].path",
        ]
    );
    let text = errors.to_string();
    assert_eq!(text.lines().count(), fields.len(), "{text}");
    assert!(
        text.starts_with("- package.name: `Bad Name` is not a valid package name"),
        "{text}"
    );
    assert!(text.lines().all(|l| l.starts_with("- ")), "{text}");

    let mut m = full_manifest();
    m.format_version = 2;
    m.created = "now".into();
    m.files.push(entry("a.txt", FileRole::Extra, 'Z'));
    let fields: Vec<_> = manifest_errors(&m).0.into_iter().map(|p| p.field).collect();
    assert_eq!(
        fields,
        [
            "format_version",
            "created",
            "files[3].path",
            "files[3].sha256",
            "files[3].blake3"
        ]
    );
}

#[test]
fn example_tolerances_must_name_outputs_and_be_sane() {
    use tiffin_manifest::{Compare, ExamplesSpec, Tolerance};
    let mut a = full_authoring();
    let output = a.signature.outputs[0].name.clone();
    let tolerance = [
        ("nope".to_owned(), Tolerance::default()),
        (
            output.clone(),
            Tolerance {
                abs: -1.0,
                compare: Compare::TopK,
                ..Tolerance::default()
            },
        ),
    ];
    a.examples = Some(ExamplesSpec {
        inputs: "../x.json".into(),
        tolerance: tolerance.into_iter().collect(),
        expected: None,
        expected_from: None,
        parity: Default::default(),
    });
    let errors = authoring_errors(&a);
    assert!(
        messages(&errors, "examples.inputs")[0].contains("`..`"),
        "{errors}"
    );
    assert!(
        messages(&errors, "examples.tolerance.nope")[0]
            .starts_with("`nope` is not an output of the signature")
    );
    assert_eq!(
        messages(&errors, &format!("examples.tolerance.{output}.abs")),
        ["-1 is not a tolerance: use a number >= 0"]
    );
    assert_eq!(
        messages(&errors, &format!("examples.tolerance.{output}.k")),
        ["top_k needs k >= 1, e.g. k = 3"]
    );
}

#[test]
fn manifest_examples_must_be_example_files() {
    use tiffin_manifest::Examples;
    let mut m = full_manifest();
    m.examples = Some(Examples {
        inputs: "examples/inputs.json".into(),
        outputs: "examples/outputs.json".into(),
        tolerance: Default::default(),
        parity: None,
    });
    let errors = manifest_errors(&m);
    assert_eq!(
        messages(&errors, "examples.inputs"),
        ["`examples/inputs.json` is not among the files with role example: pack the model again"]
    );
}
