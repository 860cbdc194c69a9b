//! The Open Inference Protocol (KServe V2 / Triton), REST: metadata, readiness, a minimal
//! model configuration, and inference with the binary tensor data extension both ways and the
//! classification extension; the other Triton extensions answer 501.
//!
//! The body's format is decided by the `Inference-Header-Content-Length` header, never by
//! Content-Type: widely used clients send no Content-Type, or `application/octet-stream` on
//! pure JSON. Tensors come back as they leave the model (class indices stay indices).

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tiffin_core::examples::ranked;
use tiffin_core::manifest::{DType, Dim, Signature, TensorSpec};
use tiffin_core::payload::shown;
use tiffin_core::runtime::{FlatJson, JsonInto, JsonValues, Tensor, TensorData, ValueError};

use super::{Named, decode_body, encode_answer, json_error, read_body, tagged};
use crate::error::{ApiError, Flavor};
use crate::registry::Served;
use crate::state::AppState;

/// The header that splits a body into its JSON part and its binary tensors.
pub(super) const HEADER_LENGTH: &str = "inference-header-content-length";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{m}", get(model_metadata))
        .route("/v2/models/{m}/versions/{v}", get(model_metadata))
        .route("/v2/models/{m}/ready", get(model_ready))
        .route("/v2/models/{m}/versions/{v}/ready", get(model_ready))
        .route("/v2/models/{m}/config", get(model_config))
        .route("/v2/models/{m}/versions/{v}/config", get(model_config))
        .route("/v2/models/{m}/infer", post(infer))
        .route("/v2/models/{m}/versions/{v}/infer", post(infer))
        // Triton's extensions beyond the core protocol that tiffin does not implement answer
        // 501 naming the extension, so a client learns why rather than seeing a bare 404.
        .route("/v2/repository/index", any(unsupported_repository))
        .route(
            "/v2/repository/models/{m}/{action}",
            any(unsupported_repository),
        )
        .route("/v2/models/stats", any(unsupported_statistics))
        .route("/v2/models/{m}/stats", any(unsupported_statistics))
        .route(
            "/v2/models/{m}/versions/{v}/stats",
            any(unsupported_statistics),
        )
        .route("/v2/trace/setting", any(unsupported_trace))
        .route("/v2/models/{m}/trace/setting", any(unsupported_trace))
        .route("/v2/logging", any(unsupported_logging))
        .route("/v2/systemsharedmemory", any(unsupported_shared_memory))
        .route(
            "/v2/systemsharedmemory/{*rest}",
            any(unsupported_shared_memory),
        )
        .route("/v2/cudasharedmemory", any(unsupported_shared_memory))
        .route(
            "/v2/cudasharedmemory/{*rest}",
            any(unsupported_shared_memory),
        )
}

async fn unsupported_repository() -> ApiError {
    ApiError::not_implemented(
        "the model repository extension is not supported: tiffin serves the packages it was \
         started with; add or replace packages on disk and reload (SIGHUP or POST /admin/reload)",
    )
}

async fn unsupported_statistics() -> ApiError {
    ApiError::not_implemented(
        "the statistics extension is not supported: per-model request counts and latencies are \
         at GET /metrics (Prometheus)",
    )
}

async fn unsupported_trace() -> ApiError {
    ApiError::not_implemented(
        "the trace extension is not supported: every request is logged with its id (set the \
         level with TIFFIN_LOG)",
    )
}

async fn unsupported_logging() -> ApiError {
    ApiError::not_implemented(
        "the logging extension is not supported: set the log level with TIFFIN_LOG at start",
    )
}

async fn unsupported_shared_memory() -> ApiError {
    ApiError::not_implemented(
        "the shared-memory extensions are not supported: send tensors in the body (the binary \
         tensor data extension avoids JSON's cost)",
    )
}

/// V2's name for a dtype.
pub(super) fn datatype(dtype: DType) -> &'static str {
    match dtype {
        DType::Bool => "BOOL",
        DType::U8 => "UINT8",
        DType::U16 => "UINT16",
        DType::U32 => "UINT32",
        DType::U64 => "UINT64",
        DType::I8 => "INT8",
        DType::I16 => "INT16",
        DType::I32 => "INT32",
        DType::I64 => "INT64",
        DType::F16 => "FP16",
        DType::F32 => "FP32",
        DType::F64 => "FP64",
        DType::String => "BYTES",
    }
}

fn dtype_of(datatype: &str) -> Option<DType> {
    Some(match datatype {
        "BOOL" => DType::Bool,
        "UINT8" => DType::U8,
        "UINT16" => DType::U16,
        "UINT32" => DType::U32,
        "UINT64" => DType::U64,
        "INT8" => DType::I8,
        "INT16" => DType::I16,
        "INT32" => DType::I32,
        "INT64" => DType::I64,
        "FP16" => DType::F16,
        "FP32" => DType::F32,
        "FP64" => DType::F64,
        "BYTES" => DType::String,
        _ => return None,
    })
}

/// A declared shape as V2 writes it: `-1` for a dynamic dim.
pub(super) fn v2_shape(shape: &[Dim]) -> Vec<i64> {
    shape
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => *n as i64,
            Dim::Named(_) => -1,
        })
        .collect()
}

fn tensor_metadata(spec: &TensorSpec) -> Value {
    json!({
        "name": spec.name,
        "datatype": datatype(spec.dtype),
        "shape": v2_shape(&spec.shape),
    })
}

async fn server_metadata() -> Response {
    axum::Json(json!({
        "name": "tiffin",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": [
            "binary_tensor_data",
            "classification",
            "model_configuration"
        ],
    }))
    .into_response()
}

async fn live() -> Response {
    axum::Json(json!({ "live": true })).into_response()
}

async fn ready(State(state): State<AppState>) -> Response {
    let ready = state.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(json!({ "ready": ready }))).into_response()
}

async fn model_metadata(
    State(state): State<AppState>,
    Named { served, versioned }: Named,
) -> Response {
    let versions: Vec<String> = if versioned {
        vec![served.version().to_string()]
    } else {
        state
            .registry()
            .versions(served.name())
            .into_iter()
            .flatten()
            .map(|s| s.version().to_string())
            .collect()
    };
    let sig = served.signature();
    let body = json!({
        "name": served.name(),
        "versions": versions,
        "platform": platform(&served),
        "inputs": sig.inputs.iter().map(tensor_metadata).collect::<Vec<_>>(),
        "outputs": sig.outputs.iter().map(tensor_metadata).collect::<Vec<_>>(),
    });
    tagged(&served, Ok(axum::Json(body).into_response()))
}

fn platform(served: &Served) -> String {
    format!("tiffin_{}", served.loaded.manifest.model.format)
}

async fn model_ready(State(state): State<AppState>, Named { served, .. }: Named) -> Response {
    let ready = state.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "name": served.name(), "ready": ready });
    tagged(&served, Ok((status, axum::Json(body)).into_response()))
}

/// Triton's model configuration, the minimum load tools read: with `max_batch_size` 0 the
/// dims are the full shapes, batch dim included.
async fn model_config(Named { served, .. }: Named) -> Response {
    let config_tensor = |spec: &TensorSpec| {
        json!({
            "name": spec.name,
            "data_type": format!("TYPE_{}", match spec.dtype {
                DType::String => "STRING",
                other => datatype(other),
            }),
            "dims": v2_shape(&spec.shape),
        })
    };
    let sig = served.signature();
    let body = json!({
        "name": served.name(),
        "platform": platform(&served),
        "max_batch_size": 0,
        "input": sig.inputs.iter().map(config_tensor).collect::<Vec<_>>(),
        "output": sig.outputs.iter().map(config_tensor).collect::<Vec<_>>(),
    });
    tagged(&served, Ok(axum::Json(body).into_response()))
}

/// An inference request's JSON part. Names borrow from the body when they hold no escapes, as
/// they nearly always do, so reading a request allocates no string for them.
#[derive(Debug, Deserialize)]
struct InferRequest<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(borrow)]
    inputs: Vec<InputTensor<'a>>,
    #[serde(default, borrow)]
    outputs: Option<Vec<RequestedOutput<'a>>>,
}

/// One input of an inference request. Read by hand rather than derived, so that `data` can be
/// read straight into values of the datatype when the request names it first.
#[derive(Debug)]
struct InputTensor<'a> {
    name: Cow<'a, str>,
    shape: Vec<i64>,
    datatype: Cow<'a, str>,
    parameters: Option<Map<String, Value>>,
    data: Option<Data>,
}

/// An input's values. V2 gives the shape apart, so the nesting of `data` (nested or flat, both
/// allowed) carries nothing the shape does not, and its leaves are read flat.
#[derive(Debug)]
enum Data {
    /// Read straight into the datatype named before `data`, as clients write a tensor (name,
    /// shape, datatype, data): reading 784 pixels this way costs a sixth less than reading them
    /// as JSON values and converting those (`cargo bench -p tiffin-runtime --bench json`).
    Typed(Result<TensorData, ValueError>),
    /// Read as JSON values, when `data` comes before the datatype (or the datatype is not one
    /// tiffin knows), to be converted once the datatype is known.
    Leaves(FlatJson),
}

/// A string borrowed from the body when it holds no escapes, as names nearly always do.
#[derive(Deserialize)]
struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for InputTensor<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(InputVisitor(std::marker::PhantomData))
    }
}

struct InputVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for InputVisitor<'a> {
    type Value = InputTensor<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an input tensor: an object with name, shape, datatype and data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<InputTensor<'a>, A::Error> {
        fn once<T, E: serde::de::Error>(
            slot: &mut Option<T>,
            field: &'static str,
            value: T,
        ) -> Result<(), E> {
            match slot.replace(value) {
                Some(_) => Err(E::duplicate_field(field)),
                None => Ok(()),
            }
        }
        let mut name = None;
        let mut shape = None;
        let mut datatype: Option<Cow<'a, str>> = None;
        let mut parameters = None;
        let mut data = None;
        while let Some(Borrowed(key)) = map.next_key::<Borrowed<'de>>()? {
            match &*key {
                "name" => once(&mut name, "name", map.next_value::<Borrowed<'de>>()?.0)?,
                "shape" => once(&mut shape, "shape", map.next_value::<Vec<i64>>()?)?,
                "datatype" => once(
                    &mut datatype,
                    "datatype",
                    map.next_value::<Borrowed<'de>>()?.0,
                )?,
                "parameters" => once(
                    &mut parameters,
                    "parameters",
                    map.next_value::<Option<Map<String, Value>>>()?,
                )?,
                "data" => {
                    // `"data": null` is no data, as it would be for a derived `Option`.
                    let value = match datatype.as_deref().and_then(dtype_of) {
                        Some(dtype) => map.next_value_seed(Maybe(dtype))?.map(Data::Typed),
                        None => map.next_value::<Option<FlatJson>>()?.map(Data::Leaves),
                    };
                    once(&mut data, "data", value)?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(InputTensor {
            name: name.ok_or_else(|| A::Error::missing_field("name"))?,
            shape: shape.ok_or_else(|| A::Error::missing_field("shape"))?,
            datatype: datatype.ok_or_else(|| A::Error::missing_field("datatype"))?,
            parameters: parameters.flatten(),
            data: data.flatten(),
        })
    }
}

/// [`JsonInto`] for a value that may be `null` (then `None`).
struct Maybe(DType);

impl<'de> DeserializeSeed<'de> for Maybe {
    type Value = Option<Result<TensorData, ValueError>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Maybe {
    type Value = Option<Result<TensorData, ValueError>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tensor data or null")
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        JsonInto(self.0).deserialize(d).map(Some)
    }
}

#[derive(Debug, Deserialize)]
struct RequestedOutput<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// Refuses request parameters that ask for what tiffin does not do, rather than ignoring them
/// and answering as if they had been honoured.
fn refuse_unsupported(request: &InferRequest<'_>) -> Result<(), ApiError> {
    let sequence = ["sequence_id", "sequence_start", "sequence_end"]
        .into_iter()
        .find(|key| match param(&request.parameters, key) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Number(n)) => n.as_u64() != Some(0),
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        });
    if let Some(key) = sequence {
        return Err(ApiError::not_implemented(format!(
            "parameter `{key}`: sequence batching is not supported; tiffin serves stateless \
             models, so send each request without sequence parameters"
        )));
    }
    let shared = request
        .inputs
        .iter()
        .map(|i| (&i.name, &i.parameters))
        .chain(
            request
                .outputs
                .iter()
                .flatten()
                .map(|o| (&o.name, &o.parameters)),
        )
        .find(|(_, p)| param(p, "shared_memory_region").is_some());
    if let Some((name, _)) = shared {
        return Err(ApiError::not_implemented(format!(
            "tensor `{name}`: shared-memory regions are not supported; send the tensor in the \
             body"
        )));
    }
    Ok(())
}

fn param<'a>(params: &'a Option<Map<String, Value>>, key: &str) -> Option<&'a Value> {
    params.as_ref().and_then(|p| p.get(key))
}

async fn infer(
    State(state): State<AppState>,
    Named { served, .. }: Named,
    request: Request,
) -> Response {
    // The request taken whole and split, rather than a `HeaderMap` extracted, which would
    // clone every header.
    let (parts, body) = request.into_parts();
    let result = infer_served(&state, &served, &parts.headers, body).await;
    tagged(&served, result)
}

async fn infer_served(
    state: &AppState,
    served: &Arc<Served>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let header_length = match headers.get(HEADER_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("`{HEADER_LENGTH}` must be a byte count"))
                })?,
        ),
    };
    let read = read_body(state, body, Flavor::Plain).await?;
    // What the answer needs of the request (its id, the outputs asked for) comes out of the
    // decoding owned, so that a large body can be decoded on another thread.
    let decode = move |sig: &Signature, bytes: &[u8]| {
        let (request, inputs) = match header_length {
            Some(0) => (None, vec![raw_input(sig, bytes)?]),
            Some(n) if n > bytes.len() => {
                return Err(ApiError::bad_request(format!(
                    "`{HEADER_LENGTH}` is {n}, but the body has only {} bytes",
                    bytes.len()
                )));
            }
            length => {
                let (head, binary) = bytes.split_at(length.unwrap_or(bytes.len()));
                let mut request: InferRequest =
                    serde_json::from_slice(head).map_err(|e| json_error(&e))?;
                refuse_unsupported(&request)?;
                let inputs = decode_inputs(sig, &mut request.inputs, binary)?;
                (Some(request), inputs)
            }
        };
        let wanted = requested_outputs(sig, request.as_ref())?;
        Ok((request.and_then(|r| r.id), wanted, inputs))
    };
    let (id, wanted, inputs) = decode_body(served, read, decode).await?;
    let outputs = state.infer(served, inputs).await?;
    encode_answer(served, outputs, move |served, outputs| {
        encode_response(served, id.as_ref(), &wanted, outputs)
    })
    .await
}

/// The whole body as the raw bytes of a one-input model's input (header length 0): the batch
/// dim is what the byte count makes it, every other dim must be fixed.
fn raw_input(sig: &Signature, bytes: &[u8]) -> Result<Tensor, ApiError> {
    let [spec] = sig.inputs.as_slice() else {
        return Err(ApiError::bad_request(
            "a body of raw bytes only fits a model with one input; send the JSON header",
        ));
    };
    let size = spec.dtype.size_of().ok_or_else(|| {
        ApiError::bad_request(format!(
            "input `{}` holds strings; send the JSON header with binary_data_size",
            spec.name
        ))
    })?;
    // A rank-0 input has no batch dim to take the byte count, so it falls to the error below.
    let fixed: Option<Vec<usize>> = spec.shape.get(1..).and_then(|rest| {
        rest.iter()
            .map(|d| match d {
                Dim::Fixed(n) => Some(*n as usize),
                Dim::Named(_) => None,
            })
            .collect()
    });
    let (Some(Dim::Named(_)), Some(inner)) = (spec.shape.first(), fixed) else {
        return Err(ApiError::bad_request(format!(
            "input `{}` is not a dynamic batch dim followed by fixed dims, so raw bytes do not \
             say its shape; send the JSON header",
            spec.name
        )));
    };
    // Checked: the fixed dims come from the package's manifest, and a row too large to count
    // is a row no body holds.
    let row_bytes = inner.iter().try_fold(size, |n, &d| n.checked_mul(d));
    let Some(row_bytes) = row_bytes.filter(|&n| n > 0 && bytes.len().is_multiple_of(n)) else {
        return Err(ApiError::bad_request(format!(
            "{} bytes is not a whole number of rows of input `{}` ({} each)",
            bytes.len(),
            spec.name,
            row_bytes.map_or_else(
                || "more than 2^64 bytes".to_owned(),
                |n| format!("{n} bytes")
            )
        )));
    };
    let data = TensorData::from_le_bytes(spec.dtype, bytes).map_err(ApiError::bad_request)?;
    let mut shape = vec![bytes.len() / row_bytes];
    shape.extend(inner);
    Tensor::new(shape, data).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The request's inputs in signature order, each checked: a known name, once; the model's
/// datatype; a shape that holds exactly the values given.
fn decode_inputs(
    sig: &Signature,
    inputs: &mut [InputTensor<'_>],
    binary: &[u8],
) -> Result<Vec<Tensor>, ApiError> {
    let names = || {
        sig.inputs
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
    };
    let mut by_name: Vec<Option<Tensor>> = vec![None; sig.inputs.len()];
    let mut offset: usize = 0;
    for input in inputs.iter_mut() {
        let bad =
            |message: String| ApiError::bad_request(format!("input `{}`: {message}", input.name));
        let Some(position) = sig.inputs.iter().position(|s| s.name == input.name) else {
            return Err(ApiError::bad_request(format!(
                "unknown input `{}`; the model's inputs are {:?}",
                shown(&input.name),
                names()
            )));
        };
        if by_name[position].is_some() {
            return Err(bad("given twice".into()));
        }
        let spec = &sig.inputs[position];
        let dtype = dtype_of(&input.datatype)
            .ok_or_else(|| bad(format!("unknown datatype `{}`", shown(&input.datatype))))?;
        if dtype != spec.dtype {
            return Err(bad(format!(
                "datatype {} given, but the model takes {}",
                input.datatype,
                datatype(spec.dtype)
            )));
        }
        let shape = input
            .shape
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<Vec<usize>, _>>()
            .map_err(|_| bad(format!("shape {:?} has a negative dim", input.shape)))?;
        let data = match param(&input.parameters, "binary_data_size") {
            Some(size) => {
                let size = size
                    .as_u64()
                    .and_then(|s| usize::try_from(s).ok())
                    .ok_or_else(|| bad("binary_data_size must be a byte count".into()))?;
                let chunk = offset
                    .checked_add(size)
                    .and_then(|end| binary.get(offset..end))
                    .ok_or_else(|| {
                        bad(format!(
                            "binary_data_size is {size}, but only {} bytes of binary data are left",
                            binary.len() - offset
                        ))
                    })?;
                offset += size;
                if dtype == DType::String {
                    TensorData::String(decode_bytes(chunk).map_err(bad)?)
                } else {
                    TensorData::from_le_bytes(dtype, chunk).map_err(bad)?
                }
            }
            None => {
                let data = input.data.take().ok_or_else(|| {
                    bad("has neither `data` nor a `binary_data_size` parameter".into())
                })?;
                match data {
                    Data::Typed(read) => read,
                    Data::Leaves(leaves) => TensorData::from_json(dtype, &leaves.0),
                }
                .map_err(|e| bad(e.to_string()))?
            }
        };
        by_name[position] = Some(Tensor::new(shape, data).map_err(|e| bad(e.to_string()))?);
    }
    if offset != binary.len() {
        return Err(ApiError::bad_request(format!(
            "{} bytes of binary data follow the JSON header that no input claims",
            binary.len() - offset
        )));
    }
    by_name
        .into_iter()
        .zip(&sig.inputs)
        .map(|(t, spec)| {
            t.ok_or_else(|| {
                ApiError::bad_request(format!(
                    "input `{}` is missing; the model's inputs are {:?}",
                    spec.name,
                    names()
                ))
            })
        })
        .collect()
}

/// BYTES elements in binary: each a little-endian u32 length, then that many bytes (UTF-8,
/// since tiffin's string tensors hold text).
fn decode_bytes(mut chunk: &[u8]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    while !chunk.is_empty() {
        let (len, rest) = chunk
            .split_first_chunk::<4>()
            .ok_or("a BYTES element is cut short")?;
        let len = u32::from_le_bytes(*len) as usize;
        let text = rest.get(..len).ok_or("a BYTES element is cut short")?;
        out.push(
            String::from_utf8(text.to_vec())
                .map_err(|_| format!("BYTES element {} is not UTF-8 text", out.len()))?,
        );
        chunk = &rest[len..];
    }
    Ok(out)
}

fn encode_bytes(values: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// One output to answer with.
#[derive(Debug, Clone, Copy)]
struct Wanted {
    /// Its position in the signature.
    index: usize,
    /// Whether it goes as binary data after the JSON header.
    binary: bool,
    /// The top classes to answer with instead of the tensor (the classification extension).
    classes: Option<usize>,
}

/// Which outputs to answer with, in order, and how.
fn requested_outputs(
    sig: &Signature,
    request: Option<&InferRequest<'_>>,
) -> Result<Vec<Wanted>, ApiError> {
    let all_binary = request
        .and_then(|r| param(&r.parameters, "binary_data_output"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match request.and_then(|r| r.outputs.as_ref()) {
        None => Ok((0..sig.outputs.len())
            .map(|index| Wanted {
                index,
                binary: all_binary,
                classes: None,
            })
            .collect()),
        Some(list) => list
            .iter()
            .map(|o| {
                let ix = sig
                    .outputs
                    .iter()
                    .position(|s| s.name == o.name)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "unknown output `{}`; the model's outputs are {:?}",
                            shown(&o.name),
                            sig.outputs.iter().map(|s| &s.name).collect::<Vec<_>>()
                        ))
                    })?;
                let binary = param(&o.parameters, "binary_data")
                    .and_then(Value::as_bool)
                    .unwrap_or(all_binary);
                let classes = match param(&o.parameters, "classification") {
                    None | Some(Value::Null) => None,
                    Some(k) => Some(
                        k.as_u64()
                            .filter(|&k| k > 0)
                            .and_then(|k| usize::try_from(k).ok())
                            .ok_or_else(|| {
                                ApiError::bad_request(format!(
                                    "output `{}`: classification must be a positive count of \
                                     classes",
                                    o.name
                                ))
                            })?,
                    ),
                };
                if classes.is_some() && sig.outputs[ix].dtype.size_of().is_none() {
                    return Err(ApiError::bad_request(format!(
                        "output `{}` holds strings; classification needs an output of scores",
                        o.name
                    )));
                }
                Ok(Wanted {
                    index: ix,
                    binary,
                    classes,
                })
            })
            .collect(),
    }
}

fn encode_response(
    served: &Served,
    id: Option<&Value>,
    wanted: &[Wanted],
    outputs: &[Tensor],
) -> Result<Response, ApiError> {
    let sig = served.signature();
    let mut binary = Vec::new();
    // Classification answers are made first, so that every output below can borrow its tensor.
    let classified = wanted
        .iter()
        .map(|w| {
            w.classes
                .map(|k| classify(&outputs[w.index], k, &sig.outputs[w.index]))
                .transpose()
        })
        .collect::<Result<Vec<Option<Tensor>>, ApiError>>()?;
    let mut tensors = Vec::with_capacity(wanted.len());
    for (want, classified) in wanted.iter().zip(&classified) {
        let tensor = classified.as_ref().unwrap_or(&outputs[want.index]);
        let mut out = OutputTensor {
            data: None,
            datatype: datatype(tensor.dtype()),
            name: &sig.outputs[want.index].name,
            parameters: None,
            shape: tensor.shape(),
        };
        if want.binary {
            let bytes = match tensor.data() {
                TensorData::String(v) => encode_bytes(v),
                other => other.to_le_bytes().expect("fixed-size dtypes have bytes"),
            };
            out.parameters = Some(BinaryParameters {
                binary_data_size: bytes.len(),
            });
            binary.extend_from_slice(&bytes);
        } else {
            out.data = Some(tensor.data().json());
        }
        tensors.push(out);
    }
    let body = InferResponse {
        id,
        model_name: served.name(),
        model_version: &served.metrics.labels.version,
        outputs: tensors,
    };
    let head = serde_json::to_vec(&body).expect("JSON values serialize");
    if binary.is_empty() {
        return Ok(([(header::CONTENT_TYPE, "application/json")], head).into_response());
    }
    let length = head.len();
    let mut all = head;
    all.extend_from_slice(&binary);
    let mut response = ([(header::CONTENT_TYPE, "application/octet-stream")], all).into_response();
    response
        .headers_mut()
        .insert(HEADER_LENGTH, HeaderValue::from(length));
    Ok(response)
}

/// An inference answer, written straight to JSON. The fields are in the order the earlier
/// `serde_json::Value` form wrote them (sorted), so answers keep their bytes.
#[derive(Serialize)]
struct InferResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
    model_name: &'a str,
    model_version: &'a str,
    outputs: Vec<OutputTensor<'a>>,
}

/// One output of an answer: its values as JSON `data`, or `parameters` saying how many bytes
/// of the binary part are its.
#[derive(Serialize)]
struct OutputTensor<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<JsonValues<'a>>,
    datatype: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinaryParameters>,
    shape: &'a [usize],
}

#[derive(Serialize)]
struct BinaryParameters {
    binary_data_size: usize,
}

/// The classification extension: the `k` highest scores of each row of `scores` (the last axis
/// holds one score per class), highest first, as strings `"score:index"`, with `:label` added
/// when the signature names the classes. Ties keep class order.
fn classify(scores: &Tensor, k: usize, spec: &TensorSpec) -> Result<Tensor, ApiError> {
    let shape = scores.shape();
    let bad = |why: &str| ApiError::bad_request(format!("output `{}`: {why}", spec.name));
    let (rows, classes) = match shape {
        [classes] => (1, *classes),
        [rows, classes] => (*rows, *classes),
        _ => {
            return Err(bad(
                "classification needs scores of shape [classes] or [batch, classes]",
            ));
        }
    };
    let data = scores.data();
    let values: Vec<f64> = match data {
        TensorData::F32(v) => v.iter().map(|x| f64::from(*x)).collect(),
        TensorData::F64(v) => v.clone(),
        TensorData::String(_) | TensorData::Bool(_) => {
            return Err(bad("classification needs an output of numeric scores"));
        }
        other => other
            .to_json()
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect(),
    };
    // Only the k chosen scores are written out.
    let text = |ix: usize| match data {
        TensorData::F32(v) => v[ix].to_string(),
        TensorData::F64(v) => v[ix].to_string(),
        other => serde_json::to_string(&other.json_value(ix)).expect("a value serializes"),
    };
    let labels = spec
        .class_labels
        .as_ref()
        .filter(|labels| labels.len() == classes);
    let k = k.min(classes);
    let mut out = Vec::with_capacity(rows * k);
    for (r, row) in values.chunks(classes.max(1)).take(rows).enumerate() {
        let start = r * classes;
        out.extend(ranked(row, k).into_iter().map(|ix| match labels {
            Some(labels) => format!("{}:{ix}:{}", text(start + ix), labels[ix]),
            None => format!("{}:{ix}", text(start + ix)),
        }));
    }
    let shape = if shape.len() == 1 {
        vec![k]
    } else {
        vec![rows, k]
    };
    Tensor::new(shape, TensorData::String(out)).map_err(|e| ApiError::internal(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_elements_round_trip_and_refuse_truncation() {
        let values = vec!["setosa".to_owned(), String::new(), "é".to_owned()];
        let bytes = encode_bytes(&values);
        assert_eq!(decode_bytes(&bytes).unwrap(), values);
        assert!(decode_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_bytes(&[1, 0]).is_err());
    }

    #[test]
    fn every_dtype_has_a_v2_name_that_reads_back() {
        for dtype in DType::ALL {
            assert_eq!(dtype_of(datatype(dtype)), Some(dtype));
        }
    }
}
