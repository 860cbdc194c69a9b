//! Resource bounds of the two documents, each tested at its value: the input at the bound is
//! accepted and the input just past it is refused with the bound named (see docs/resources.md).

use tiffin_manifest::{
    Authoring, Error, FileRole, FileSpec, MAX_FILES, MAX_PATH_LEN, Manifest, check_relative_path,
};

use crate::{entry, full_authoring, full_manifest, messages};

#[test]
fn a_path_of_max_path_len_bytes_is_accepted_and_one_byte_more_refused() {
    let at = format!("data/{}", "a".repeat(MAX_PATH_LEN - 5));
    assert_eq!(at.len(), MAX_PATH_LEN);
    assert_eq!(check_relative_path(&at), Ok(()));

    let over = format!("{at}b");
    let message = check_relative_path(&over).unwrap_err();
    assert!(
        message.contains("is 4097 bytes long, more than the bound MAX_PATH_LEN (4096) allows"),
        "{message}"
    );
    // The message quotes the head of the path only, never the whole of a long one.
    assert!(message.len() < 300, "{message}");

    // The check applies to every path of a manifest.
    let mut m = full_manifest();
    m.files[0].path = "z".repeat(MAX_PATH_LEN + 1);
    let errors = m.validate().unwrap_err();
    assert!(
        messages(&errors, "files[0].path")
            .iter()
            .any(|m| m.contains("MAX_PATH_LEN (4096)")),
        "{errors}"
    );
}

/// What a files list one past the bound gets.
const TOO_MANY: &str = "100001 files are listed, more than the bound MAX_FILES (100000) allows: \
                        put many small files into a few larger ones (an archive, a table)";

/// The full manifest grown to `count` files with paths `data/NNNNNN`, sorted as packed.
fn manifest_with_files(count: usize) -> Manifest {
    let mut m = full_manifest();
    let extra = count - m.files.len();
    m.files
        .extend((0..extra).map(|i| entry(&format!("data/{i:06}"), FileRole::Extra, 'd')));
    m.files.sort_by(|a, b| a.path.cmp(&b.path));
    m
}

#[test]
fn a_manifest_of_max_files_files_is_valid_and_one_more_is_refused() {
    manifest_with_files(MAX_FILES)
        .validate()
        .expect("MAX_FILES files are accepted");

    let errors = manifest_with_files(MAX_FILES + 1).validate().unwrap_err();
    assert_eq!(messages(&errors, "files"), [TOO_MANY]);
    // One problem for the list, not one per file.
    assert_eq!(errors.0.len(), 1, "{errors}");
}

#[test]
fn an_authoring_file_listing_more_than_max_files_files_is_refused() {
    let mut a: Authoring = full_authoring();
    a.files = (0..=MAX_FILES)
        .map(|i| FileSpec {
            path: format!("data/{i:06}"),
            role: FileRole::Extra,
        })
        .collect();
    let errors = a.validate().unwrap_err();
    assert_eq!(messages(&errors, "files"), [TOO_MANY]);
    a.files.truncate(MAX_FILES);
    a.validate().expect("MAX_FILES files are accepted");
}

/// A manifest whose `name` is `depth` nested JSON arrays: the document itself is one level
/// more.
fn nested_manifest(depth: usize) -> Vec<u8> {
    format!(
        r#"{{"format_version": 1, "name": {}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
    .into_bytes()
}

#[test]
fn json_nesting_is_bounded_by_serde_jsons_recursion_limit_of_128() {
    // 126 arrays in the top-level object: 127 levels, the most serde_json reads (its limit of
    // 128 counts down to zero). The document then fails on its content (a name is a string),
    // not on its depth.
    let err = Manifest::from_json_slice(&nested_manifest(126)).unwrap_err();
    assert!(!err.to_string().contains("recursion limit"), "{err}");
    let err = Manifest::from_json_slice(&nested_manifest(127)).unwrap_err();
    assert!(matches!(err, Error::Json(_)), "{err:?}");
    assert!(
        err.to_string().starts_with("recursion limit exceeded"),
        "{err}"
    );
    // Far deeper input is refused the same way, without exhausting the stack.
    let err = Manifest::from_json_slice(&nested_manifest(1_000_000)).unwrap_err();
    assert!(
        err.to_string().starts_with("recursion limit exceeded"),
        "{err}"
    );
}

#[test]
fn toml_nesting_is_bounded_by_the_toml_crates_recursion_limit_of_80() {
    let nested = |depth: usize| format!("x = {}{}\n", "[".repeat(depth), "]".repeat(depth));
    // 80 nested arrays parse; the file then fails on its content (no field `x`), not its depth.
    let err = Authoring::from_toml_str(&nested(80)).unwrap_err();
    assert!(!err.to_string().contains("recursion"), "{err}");
    assert!(err.to_string().contains("unknown field `x`"), "{err}");
    for depth in [81, 1_000_000] {
        let err = Authoring::from_toml_str(&nested(depth)).unwrap_err();
        assert!(matches!(err, Error::Toml(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains("cannot recurse further; max recursion depth met"),
            "{err}"
        );
    }
}
