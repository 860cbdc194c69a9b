//! Payloads: the JSON forms people and clients send to a model, decoded into tensors in signature
//! order, and outputs encoded back to JSON. Every front end (predict, the server's protocols,
//! golden examples) decodes through here, so they accept and refuse the same things.
//!
//! Accepted forms (all values row-major, nested lists or scalars):
//! - named inputs: `{"X": [[...], ...]}` (the classic tutorial payload) or several names;
//! - one input, bare: `[[...], ...]`;
//! - records with feature names: `[{"mean radius": 17.9, ...}, ...]` for a model with one
//!   tabular input whose signature names its features, or records keyed by input name;
//! - columns: `{"columns": [...], "data": [[...]]}` (pandas' `split` orient) by feature or input name.
//!
//! A value shaped like one row (rank one less than the signature's, which starts with a named
//! dim) is taken as a batch of one.

use serde_json::{Map, Value};
use tiffin_manifest::{Dim, Signature, TensorSpec};
use tiffin_runtime::{Tensor, TensorData, flatten_json};

/// Why a payload could not become the model's inputs. Messages name the input (and the row,
/// feature or position) and what was expected; they never repeat the payload's values at length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PayloadError {
    /// The input concerned, when there is one.
    pub input: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

/// A name the client sent (an input, a feature, a model), as an error message shows it: cut
/// to its first 64 characters, so that an answer never carries back more than a name's worth
/// of what the request held.
pub fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 64;
    match name.char_indices().nth(MAX) {
        None => name.into(),
        Some((end, _)) => format!("{}...", &name[..end]).into(),
    }
}

/// serde's message for a value it could not read, without the value: serde quotes what it
/// was given (`invalid type: string "...", expected usize`), and errors never echo a request's
/// data. Other messages (ours, and serde's about lengths and missing fields) are kept.
pub fn without_echo(message: &str) -> String {
    for kind in [
        "invalid type",
        "invalid value",
        "unknown variant",
        "unknown field",
    ] {
        if let Some(rest) = message.strip_prefix(kind) {
            // The last ", expected" is serde's: the quoted value before it may hold the words
            // too, the list of what was expected after it never does.
            return match rest.rfind(", expected ") {
                Some(at) => format!("{kind}{}", &rest[at..]),
                None => kind.to_owned(),
            };
        }
    }
    message.to_owned()
}

fn err(input: Option<&str>, message: impl Into<String>) -> PayloadError {
    let message = message.into();
    let message = match input {
        Some(name) => format!("input `{name}`: {message}"),
        None => message,
    };
    PayloadError {
        input: input.map(str::to_owned),
        message,
    }
}

fn input_names(sig: &Signature) -> Vec<&str> {
    sig.inputs.iter().map(|i| i.name.as_str()).collect()
}

/// Decodes any accepted form, telling them apart by shape: an object whose keys are input
/// names, a `{"columns", "data"}` object, a list of objects (records), or a bare list.
pub fn decode(sig: &Signature, payload: &Value) -> Result<Vec<Tensor>, PayloadError> {
    match payload {
        Value::Object(map) if map.contains_key("columns") && map.contains_key("data") => {
            let columns = map["columns"]
                .as_array()
                .ok_or_else(|| err(None, "`columns` must be a list of names"))?
                .iter()
                .map(|c| {
                    c.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| err(None, "`columns` must be a list of names"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let rows = map["data"]
                .as_array()
                .ok_or_else(|| err(None, "`data` must be a list of rows"))?;
            decode_columns(sig, &columns, rows)
        }
        Value::Object(map) => decode_named(sig, map),
        Value::Array(rows) if !rows.is_empty() && rows.iter().all(Value::is_object) => {
            decode_records(sig, rows)
        }
        Value::Array(_) => match sig.inputs.as_slice() {
            [only] => Ok(vec![decode_tensor(only, payload)?]),
            _ => Err(err(
                None,
                format!(
                    "a bare list fits a model with one input; this one has {}: send an object keyed by input name {:?}",
                    sig.inputs.len(),
                    input_names(sig)
                ),
            )),
        },
        _ => Err(err(
            None,
            "expected a JSON object keyed by input name, or a list of rows",
        )),
    }
}

/// Decodes `{"NAME": value, ...}`: every input present, no unknown name.
pub fn decode_named(
    sig: &Signature,
    map: &Map<String, Value>,
) -> Result<Vec<Tensor>, PayloadError> {
    if let Some(unknown) = map.keys().find(|k| sig.input(k).is_none()) {
        return Err(err(
            None,
            format!(
                "unknown input `{}`: the model's inputs are {:?}",
                shown(unknown),
                input_names(sig)
            ),
        ));
    }
    sig.inputs
        .iter()
        .map(|spec| match map.get(&spec.name) {
            Some(value) => decode_tensor(spec, value),
            None => Err(err(
                Some(&spec.name),
                format!("missing; the model's inputs are {:?}", input_names(sig)),
            )),
        })
        .collect()
}

/// Decodes records: objects keyed by feature name (one tabular input with feature names), or
/// by input name (each value one row of that input).
pub fn decode_records(sig: &Signature, rows: &[Value]) -> Result<Vec<Tensor>, PayloadError> {
    let first = rows.first().and_then(Value::as_object);
    let by_input = first.is_some_and(|r| r.keys().all(|k| sig.input(k).is_some()));
    if by_input {
        return sig
            .inputs
            .iter()
            .map(|spec| {
                let column = rows
                    .iter()
                    .enumerate()
                    .map(|(i, row)| {
                        row.get(&spec.name).cloned().ok_or_else(|| {
                            err(Some(&spec.name), format!("missing from record {i}"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                decode_tensor(spec, &Value::Array(column))
            })
            .collect();
    }
    let (spec, features) = tabular(sig)?;
    let table = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let row = row
                .as_object()
                .ok_or_else(|| err(Some(&spec.name), format!("record {i} is not an object")))?;
            if let Some(unknown) = row.keys().find(|k| !features.contains(k)) {
                return Err(err(
                    Some(&spec.name),
                    format!("record {i} has unknown feature `{}`", shown(unknown)),
                ));
            }
            features
                .iter()
                .map(|f| {
                    row.get(f).cloned().ok_or_else(|| {
                        err(Some(&spec.name), format!("record {i} lacks feature `{f}`"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(vec![decode_tensor(spec, &Value::Array(table))?])
}

/// Decodes pandas' `split` orient: named columns and rows of values. Columns are the feature
/// names of a single tabular input (in any order), or input names.
pub fn decode_columns(
    sig: &Signature,
    columns: &[String],
    rows: &[Value],
) -> Result<Vec<Tensor>, PayloadError> {
    let records = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let values = row
                .as_array()
                .ok_or_else(|| err(None, format!("row {i} of `data` is not a list")))?;
            if values.len() != columns.len() {
                return Err(err(
                    None,
                    format!(
                        "row {i} has {} values for {} columns",
                        values.len(),
                        columns.len()
                    ),
                ));
            }
            Ok(Value::Object(
                columns
                    .iter()
                    .cloned()
                    .zip(values.iter().cloned())
                    .collect(),
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if records.is_empty() {
        return Err(err(None, "`data` holds no rows"));
    }
    decode_records(sig, &records)
}

/// The single input with feature names that records by feature name fill.
fn tabular(sig: &Signature) -> Result<(&TensorSpec, &[String]), PayloadError> {
    match sig.inputs.as_slice() {
        [only] => match &only.feature_names {
            Some(features) => Ok((only, features)),
            None => Err(err(
                Some(&only.name),
                "records by feature name need feature names in the signature; send {\"NAME\": [[...]]} instead",
            )),
        },
        _ => Err(err(
            None,
            format!("records must be keyed by input name {:?}", input_names(sig)),
        )),
    }
}

/// Decodes one input's value: infers the shape from the nesting, checks it is rectangular,
/// promotes one row to a batch of one, and converts every value to the input's dtype exactly.
pub fn decode_tensor(spec: &TensorSpec, value: &Value) -> Result<Tensor, PayloadError> {
    let name = Some(spec.name.as_str());
    if let Value::Object(fields) = value {
        // The explicit form golden example files use: {"dtype", "shape", "data" | "b64"}.
        if fields.contains_key("shape") && fields.contains_key("dtype") {
            let tensor: Tensor = serde_json::from_value(value.clone())
                .map_err(|e| err(name, without_echo(&e.to_string())))?;
            if tensor.dtype() != spec.dtype {
                return Err(err(
                    name,
                    format!(
                        "expected dtype {}, got {}",
                        spec.dtype.as_str(),
                        tensor.dtype().as_str()
                    ),
                ));
            }
            return Ok(tensor);
        }
    }
    let mut shape = Vec::new();
    let mut probe = value;
    while let Value::Array(items) = probe {
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    // The shape comes from the first item at each level only, so it may promise far more values
    // than the body holds (a few kilobytes of nested lists can claim 10^12): it is checked
    // against every item before anything is sized from it.
    if !rectangular(value, &shape) {
        return Err(err(
            name,
            format!(
                "the nested lists are ragged: every row must have the same length (shape {shape:?} from the first row)"
            ),
        ));
    }
    let mut flat = Vec::with_capacity(shape.iter().product());
    flatten_json(value, &mut flat);
    let batched = matches!(spec.shape.first(), Some(Dim::Named(_)));
    if batched && shape.len() + 1 == spec.shape.len() {
        shape.insert(0, 1);
    }
    if shape.len() != spec.shape.len() {
        return Err(err(
            name,
            format!(
                "expected rank {} (shape {}), got rank {} (shape {shape:?})",
                spec.shape.len(),
                dims(&spec.shape),
                shape.len()
            ),
        ));
    }
    let data = TensorData::from_json(spec.dtype, &flat).map_err(|e| {
        err(
            name,
            format!("at {:?}: {}", unravel(e.index, &shape), e.reason),
        )
    })?;
    Tensor::new(shape, data).map_err(|e| err(name, e.to_string()))
}

fn rectangular(value: &Value, shape: &[usize]) -> bool {
    match (value, shape.split_first()) {
        (Value::Array(items), Some((&n, rest))) => {
            items.len() == n && items.iter().all(|v| rectangular(v, rest))
        }
        (Value::Array(_), None) => false,
        (_, None) => true,
        (_, Some(_)) => false,
    }
}

fn unravel(mut index: usize, shape: &[usize]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    for (slot, &dim) in out.iter_mut().zip(shape).rev() {
        if dim > 0 {
            *slot = index % dim;
            index /= dim;
        }
    }
    out
}

fn dims(shape: &[Dim]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// Encodes outputs as `{"NAME": nested lists}` (names sorted, as in any JSON object serde_json
/// builds). With `map_labels`, an integer output whose signature carries class labels gives the
/// labels instead of the class indices. [`encoded`] writes the same JSON without building it.
pub fn encode(sig: &Signature, outputs: &[Tensor], map_labels: bool) -> Value {
    to_value(&encoded(sig, outputs, map_labels))
}

/// The JSON value of what [`encoded`] writes. Through the text rather than
/// `serde_json::to_value`, which would widen each f32 to the f64 digits of its binary value
/// (0.1 as 0.10000000149011612) instead of keeping its shortest decimal.
fn to_value(encoded: &impl serde::Serialize) -> Value {
    let text = serde_json::to_vec(encoded).expect("encoded outputs serialize");
    serde_json::from_slice(&text).expect("serde_json reads what it wrote")
}

/// What [`encode`] returns, written straight to a serializer (an HTTP answer, say) rather than
/// built as a JSON value first.
pub fn encoded<'a>(sig: &'a Signature, outputs: &'a [Tensor], map_labels: bool) -> Encoded<'a> {
    let mut by_name: Vec<_> = sig
        .outputs
        .iter()
        .zip(outputs)
        .map(|(spec, tensor)| (spec.name.as_str(), encoded_tensor(spec, tensor, map_labels)))
        .collect();
    by_name.sort_by(|a, b| a.0.cmp(b.0));
    Encoded(by_name)
}

/// One output as [`encoded`] writes it: nested lists, with labels mapped as in [`encode`].
pub fn encoded_tensor<'a>(
    spec: &'a TensorSpec,
    tensor: &'a Tensor,
    map_labels: bool,
) -> EncodedTensor<'a> {
    // Only integer outputs hold class indices; probabilities and labels already given as strings
    // stay as they are.
    let integer = !matches!(
        tensor.data(),
        TensorData::F16(_)
            | TensorData::F32(_)
            | TensorData::F64(_)
            | TensorData::String(_)
            | TensorData::Bool(_)
    );
    let labels = spec
        .class_labels
        .as_deref()
        .filter(|_| map_labels && integer);
    EncodedTensor { tensor, labels }
}

/// Outputs by name, serialized as a JSON object. Made by [`encoded`].
#[derive(Debug)]
pub struct Encoded<'a>(Vec<(&'a str, EncodedTensor<'a>)>);

impl serde::Serialize for Encoded<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, tensor)| (name, tensor)))
    }
}

/// One output as nested lists, serialized. Made by [`encoded_tensor`].
#[derive(Debug, Clone, Copy)]
pub struct EncodedTensor<'a> {
    tensor: &'a Tensor,
    /// The class labels to write in place of class indices.
    labels: Option<&'a [String]>,
}

impl serde::Serialize for EncodedTensor<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Nested {
            output: *self,
            shape: self.tensor.shape(),
            offset: 0,
        }
        .serialize(serializer)
    }
}

/// The values of `output` from flat index `offset` on, nested along `shape`.
struct Nested<'a> {
    output: EncodedTensor<'a>,
    shape: &'a [usize],
    offset: usize,
}

impl serde::Serialize for Nested<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let data = self.output.tensor.data();
        let Some((&rows, rest)) = self.shape.split_first() else {
            // A scalar: its one value, or null for none.
            if self.offset >= data.len() {
                return serializer.serialize_unit();
            }
            let label = self
                .output
                .labels
                .zip(class_index(data, self.offset))
                .and_then(|(labels, i)| labels.get(usize::try_from(i).ok()?));
            return match label {
                Some(label) => serializer.serialize_str(label),
                None => data.json_value(self.offset).serialize(serializer),
            };
        };
        let step = rest.iter().product::<usize>();
        serializer.collect_seq((0..rows).map(|row| Nested {
            output: self.output,
            shape: rest,
            offset: self.offset + row * step,
        }))
    }
}

/// The value at `index` as a class index: integer outputs only, and never a negative one.
fn class_index(data: &TensorData, index: usize) -> Option<u64> {
    match data {
        TensorData::U8(v) => Some(u64::from(v[index])),
        TensorData::U16(v) => Some(u64::from(v[index])),
        TensorData::U32(v) => Some(u64::from(v[index])),
        TensorData::U64(v) => Some(v[index]),
        TensorData::I8(v) => u64::try_from(v[index]).ok(),
        TensorData::I16(v) => u64::try_from(v[index]).ok(),
        TensorData::I32(v) => u64::try_from(v[index]).ok(),
        TensorData::I64(v) => u64::try_from(v[index]).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tiffin_manifest::DType;

    fn spec(name: &str, dtype: DType, shape: Vec<Dim>, features: Option<&[&str]>) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dtype,
            shape,
            feature_names: features.map(|f| f.iter().map(|s| s.to_string()).collect()),
            class_labels: None,
            description: None,
        }
    }

    #[test]
    fn errors_of_the_explicit_form_never_quote_the_request() {
        let x = spec("X", DType::F32, vec![Dim::Named("batch".into())], None);
        let secret = "s3cret-value, expected something";
        for value in [
            json!({"dtype": "f32", "shape": [secret], "data": [1.0]}),
            json!({"dtype": secret, "shape": [1], "data": [1.0]}),
            json!({"dtype": "f32", "shape": [1], "b64": secret}),
            json!({"dtype": "f32", "shape": 7, "data": [1.0]}),
        ] {
            let message = decode_tensor(&x, &value).unwrap_err().to_string();
            assert!(!message.contains("s3cret"), "{message}");
            assert!(message.starts_with("input `X`"), "{message}");
        }
        // What was expected is kept.
        let message = decode_tensor(&x, &json!({"dtype": "f32", "shape": ["a"], "data": []}))
            .unwrap_err()
            .to_string();
        assert!(message.contains("invalid type, expected"), "{message}");
    }

    #[test]
    fn names_are_shown_cut_to_64_characters() {
        assert_eq!(shown("X"), "X");
        let long = "é".repeat(100);
        let cut = shown(&long);
        assert_eq!(cut.chars().count(), 67);
        assert!(cut.ends_with("..."));
        let sig = tabular_sig();
        let map = json!({ "y".repeat(100_000): [1.0] });
        let message = decode_named(&sig, map.as_object().unwrap())
            .unwrap_err()
            .to_string();
        assert!(message.len() < 300, "{message}");
    }

    fn tabular_sig() -> Signature {
        let x = spec(
            "X",
            DType::F32,
            vec![Dim::Named("batch".into()), Dim::Fixed(2)],
            Some(&["a", "b"]),
        );
        let mut label = spec("label", DType::I64, vec![Dim::Named("batch".into())], None);
        label.class_labels = Some(vec!["no".into(), "yes".into()]);
        Signature {
            inputs: vec![x],
            outputs: vec![label],
        }
    }

    fn x(rows: usize, data: Vec<f32>) -> Tensor {
        Tensor::new(vec![rows, 2], TensorData::F32(data)).unwrap()
    }

    #[test]
    fn every_form_gives_the_same_tensor() {
        let sig = tabular_sig();
        let want = vec![x(2, vec![1.0, 2.0, 3.0, 4.0])];
        for payload in [
            json!({"X": [[1, 2], [3, 4]]}),
            json!([[1, 2], [3, 4]]),
            json!([{"a": 1, "b": 2}, {"b": 4, "a": 3}]),
            json!([{"X": [1, 2]}, {"X": [3, 4]}]),
            json!({"columns": ["b", "a"], "data": [[2, 1], [4, 3]]}),
        ] {
            assert_eq!(decode(&sig, &payload).unwrap(), want, "{payload}");
        }
        assert_eq!(
            decode(&sig, &json!({"X": [5, 6]})).unwrap(),
            vec![x(1, vec![5.0, 6.0])]
        );
    }

    #[test]
    fn bad_payloads_name_the_input_and_the_place() {
        let sig = tabular_sig();
        let e = |p: Value| decode(&sig, &p).unwrap_err().to_string();
        assert_eq!(
            e(json!({"Y": [[1, 2]]})),
            "unknown input `Y`: the model's inputs are [\"X\"]"
        );
        assert_eq!(
            e(json!({})),
            "input `X`: missing; the model's inputs are [\"X\"]"
        );
        assert_eq!(
            e(json!({"X": [[1, 2], [3, "x"]]})),
            "input `X`: at [1, 1]: a string is not a number, expected f32"
        );
        assert!(
            e(json!({"X": [[1, 2], [3]]})).starts_with("input `X`: the nested lists are ragged")
        );
        assert_eq!(
            e(json!({"X": [[[1, 2]]]})),
            "input `X`: expected rank 2 (shape [batch, 2]), got rank 3 (shape [1, 1, 2])"
        );
        assert_eq!(
            e(json!([{"a": 1}])),
            "input `X`: record 0 lacks feature `b`"
        );
        assert_eq!(
            e(json!([{"a": 1, "b": 2, "c": 3}])),
            "input `X`: record 0 has unknown feature `c`"
        );
        assert_eq!(
            e(json!("hello")),
            "expected a JSON object keyed by input name, or a list of rows"
        );
        assert_eq!(
            e(json!({"columns": ["a", "b"], "data": [[1]]})),
            "row 0 has 1 values for 2 columns"
        );
    }

    #[test]
    fn integers_refuse_nan_and_fractions() {
        let s = spec("ids", DType::I64, vec![Dim::Named("batch".into())], None);
        assert_eq!(
            decode_tensor(&s, &json!([1, 2, 3])).unwrap().data(),
            &TensorData::I64(vec![1, 2, 3])
        );
        let e = decode_tensor(&s, &json!([1, "NaN"]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "input `ids`: at [1]: a string is not a number, expected i64"
        );
        let e = decode_tensor(&s, &json!([1.5])).unwrap_err().to_string();
        assert_eq!(
            e,
            "input `ids`: at [0]: a fractional number is not an integer, expected i64"
        );
    }

    #[test]
    fn outputs_nest_and_map_labels() {
        let sig = tabular_sig();
        let label = Tensor::new(vec![3], TensorData::I64(vec![1, 0, 7])).unwrap();
        assert_eq!(
            encode(&sig, std::slice::from_ref(&label), true),
            json!({"label": ["yes", "no", 7]})
        );
        assert_eq!(encode(&sig, &[label], false), json!({"label": [1, 0, 7]}));
        let probs = spec(
            "p",
            DType::F32,
            vec![Dim::Named("batch".into()), Dim::Fixed(2)],
            None,
        );
        let t = x(2, vec![0.25, 0.75, 1.0, 0.0]);
        assert_eq!(
            to_value(&encoded_tensor(&probs, &t, true)),
            json!([[0.25, 0.75], [1.0, 0.0]])
        );
    }

    #[test]
    fn encoded_writes_shortest_floats_labels_and_every_nesting() {
        let mut sig = tabular_sig();
        let mut probs = spec(
            "p",
            DType::F32,
            vec![Dim::Named("batch".into()), Dim::Fixed(2)],
            None,
        );
        probs.class_labels = Some(vec!["no".into(), "yes".into()]);
        sig.outputs.push(probs);
        let label = Tensor::new(vec![3], TensorData::I64(vec![1, -1, 7])).unwrap();
        let p = Tensor::new(
            vec![3, 2],
            TensorData::F32(vec![0.1, 0.9, f32::NAN, 1.0, 1e-7, 0.000_336_647_03]),
        )
        .unwrap();
        let outputs = [label, p];
        // Labels for the integer output only, names sorted, f32 as its shortest decimal.
        let want = r#"{"label":["yes",-1,7],"p":[[0.1,0.9],["NaN",1.0],[1e-7,0.00033664703]]}"#;
        assert_eq!(
            serde_json::to_string(&encoded(&sig, &outputs, true)).unwrap(),
            want
        );
        assert_eq!(
            encode(&sig, &outputs, true),
            serde_json::from_str::<Value>(want).unwrap()
        );
        let spec = &sig.outputs[1];
        for (shape, data, want) in [
            (vec![], vec![0.5], "0.5"),
            (vec![0, 2], vec![], "[]"),
            (vec![2, 0], vec![], "[[],[]]"),
            (vec![2, 2, 0], vec![], "[[[],[]],[[],[]]]"),
            (vec![1, 2, 1], vec![0.25, 0.75], "[[[0.25],[0.75]]]"),
        ] {
            let t = Tensor::new(shape.clone(), TensorData::F32(data)).unwrap();
            assert_eq!(
                serde_json::to_string(&encoded_tensor(spec, &t, true)).unwrap(),
                want,
                "{shape:?}"
            );
        }
    }
}
