//! `GET /openapi.json`: an OpenAPI 3.1 document built from the signatures being served, so
//! each model's request and response schemas carry its real tensor names, dtypes and shapes.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tiffin_core::manifest::{DType, Dim, TensorSpec};

use super::v2::{datatype, v2_shape};
use crate::registry::{Registry, Served};
use crate::state::AppState;

pub(super) async fn document(State(state): State<AppState>) -> Response {
    axum::Json(build(&state.registry())).into_response()
}

/// The JSON Schema of one tensor's value as nested lists, outermost dim first; fixed dims
/// give exact list lengths.
fn tensor_schema(spec: &TensorSpec, labels_mapped: bool) -> Value {
    let leaf = match spec.dtype {
        DType::F16 | DType::F32 | DType::F64 => json!({ "type": "number" }),
        DType::Bool => json!({ "type": "boolean" }),
        DType::String => json!({ "type": "string" }),
        _ if labels_mapped && spec.class_labels.is_some() => json!({
            "type": "string",
            "enum": spec.class_labels,
        }),
        _ => json!({ "type": "integer" }),
    };
    let mut schema = leaf;
    for dim in spec.shape.iter().rev() {
        schema = match dim {
            Dim::Fixed(n) => {
                json!({ "type": "array", "items": schema, "minItems": n, "maxItems": n })
            }
            Dim::Named(name) => {
                json!({ "type": "array", "items": schema, "description": format!("`{name}` entries") })
            }
        };
    }
    if let Some(d) = &spec.description {
        schema["description"] = json!(d);
    }
    schema
}

fn object_of(specs: &[TensorSpec], labels_mapped: bool) -> Value {
    let properties: Map<String, Value> = specs
        .iter()
        .map(|s| (s.name.clone(), tensor_schema(s, labels_mapped)))
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": specs.iter().map(|s| &s.name).collect::<Vec<_>>(),
        "additionalProperties": false,
    })
}

fn v2_tensor(spec: &TensorSpec, with_data: bool) -> Value {
    let mut properties = json!({
        "name": { "const": spec.name },
        "datatype": { "const": datatype(spec.dtype) },
        "shape": { "type": "array", "items": { "type": "integer", "minimum": 0 }, "description": format!("declared as {:?} (-1: any size)", v2_shape(&spec.shape)) },
        "parameters": { "type": "object" },
    });
    if with_data {
        properties["data"] =
            json!({ "description": "values, row-major, flat or nested", "type": "array" });
    }
    json!({ "type": "object", "properties": properties, "required": ["name"] })
}

fn json_body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn answers(schema: Value) -> Value {
    json!({
        "200": { "description": "the model's outputs", "content": { "application/json": { "schema": schema } } },
        "400": { "description": "the request does not fit the signature", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
        "404": { "description": "no such model or version" },
        "503": { "description": "overloaded or not ready; retry after `Retry-After` seconds" },
    })
}

fn model_paths(paths: &mut Map<String, Value>, served: &Served, only: bool) {
    let sig = served.signature();
    let name = served.name();
    let version = served.version();
    let named = object_of(&sig.inputs, false);
    let outputs = object_of(&sig.outputs, true);
    let predict = json!({
        "post": {
            "summary": format!("{name} {version}: predict (named inputs, records or columns)"),
            "requestBody": json_body(named.clone()),
            "responses": answers(outputs.clone()),
        }
    });
    paths.insert(format!("/models/{name}/predict"), predict.clone());
    paths.insert(
        format!("/models/{name}/versions/{version}/predict"),
        predict.clone(),
    );
    if only {
        paths.insert("/predict".into(), predict);
    }
    let v2_request = json!({
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": { "type": "string" },
            "parameters": { "type": "object" },
            "inputs": { "type": "array", "items": { "oneOf": sig.inputs.iter().map(|s| v2_tensor(s, true)).collect::<Vec<_>>() } },
            "outputs": { "type": "array", "items": { "type": "object", "properties": { "name": { "enum": sig.outputs.iter().map(|s| &s.name).collect::<Vec<_>>() }, "parameters": { "type": "object" } }, "required": ["name"] } },
        },
    });
    let v2_response = json!({
        "type": "object",
        "properties": {
            "model_name": { "const": name },
            "model_version": { "type": "string" },
            "id": { "type": "string" },
            "outputs": { "type": "array", "items": { "oneOf": sig.outputs.iter().map(|s| v2_tensor(s, true)).collect::<Vec<_>>() } },
        },
    });
    let infer = json!({
        "post": {
            "summary": format!("{name} {version}: Open Inference Protocol (KServe V2) inference"),
            "requestBody": json_body(v2_request),
            "responses": answers(v2_response),
        }
    });
    paths.insert(format!("/v2/models/{name}/infer"), infer.clone());
    paths.insert(format!("/v2/models/{name}/versions/{version}/infer"), infer);
    let instances = json!({
        "type": "object",
        "properties": {
            "instances": { "type": "array", "description": "rows: values of the only input, or objects by input name" },
            "inputs": named,
        },
    });
    paths.insert(
        format!("/v1/models/{name}:predict"),
        json!({ "post": {
            "summary": format!("{name}: TF-Serving / KServe V1 predict"),
            "requestBody": json_body(instances),
            "responses": answers(json!({ "type": "object" })),
        }}),
    );
    if only {
        paths.insert(
            "/invocations".into(),
            json!({ "post": {
                "summary": format!("{name}: MLflow scoring (exactly one of inputs, instances, dataframe_split, dataframe_records)"),
                "requestBody": json_body(json!({ "type": "object", "minProperties": 1 })),
                "responses": answers(json!({ "type": "object", "properties": { "predictions": {} }, "required": ["predictions"] })),
            }}),
        );
    }
}

pub(super) fn build(registry: &Registry) -> Value {
    let mut paths = Map::new();
    let only = registry.names().count() == 1;
    // The newest version of each name gives the unversioned paths; older versions add their
    // versioned paths.
    for served in registry.iter() {
        model_paths(&mut paths, served, only);
    }
    for (path, summary) in [
        ("/v2/health/live", "live"),
        (
            "/v2/health/ready",
            "ready: every model loaded and its golden examples passed",
        ),
        ("/health", "health"),
        ("/metrics", "Prometheus metrics"),
    ] {
        paths.insert(path.into(), json!({ "get": { "summary": summary, "responses": { "200": { "description": "yes" }, "503": { "description": "not (yet)" } } } }));
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "tiffin model server", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": { "schemas": { "Error": {
            "type": "object",
            "properties": { "error": { "type": "string" } },
            "required": ["error"],
        } } },
    })
}
