//! The committed JSON Schemas in docs/schema must match the types.

use std::path::PathBuf;

/// Renders a schema the way it is committed: pretty JSON and a trailing newline.
fn render(schema: &schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema serializes to JSON");
    text.push('\n');
    text
}

#[test]
fn schema_is_up_to_date() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema");
    let update = std::env::var_os("TIFFIN_UPDATE_SCHEMA").is_some_and(|v| v == "1");
    let schemas = [
        (
            "tiffin.toml.schema.json",
            tiffin_manifest::authoring_schema(),
        ),
        (
            "tiffin.json.schema.json",
            tiffin_manifest::manifest_schema(),
        ),
    ];
    for (file, schema) in schemas {
        let path = dir.join(file);
        let expected = render(&schema);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &expected)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == expected,
            "schema out of date: run `cargo xtask schema` ({} differs from the types)",
            path.display()
        );
    }
}

#[test]
fn schemas_describe_fields_and_refuse_unknown_ones() {
    let schema = serde_json::to_value(tiffin_manifest::authoring_schema()).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["$defs"]["Package"]["additionalProperties"], false);
    let name = &schema["$defs"]["Package"]["properties"]["name"];
    assert_eq!(name["pattern"], "^[a-z0-9][a-z0-9._-]{0,63}$");
    assert!(
        name["description"]
            .as_str()
            .unwrap()
            .contains("breast_cancer")
    );

    let schema = serde_json::to_value(tiffin_manifest::manifest_schema()).unwrap();
    assert_eq!(schema["properties"]["format_version"]["const"], 1);
    assert_eq!(schema["properties"]["version"]["type"], "string");
}
