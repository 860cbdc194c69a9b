//! Tensors at the boundary between tiffin and the runtime: a dtype, a row-major buffer and a shape.
//!
//! This is tiffin's own type rather than tract's so that payload decoding (JSON, the V2 binary
//! extension) and the server do not depend on tract's API; the runtime converts at the edge.

use std::fmt;

use tiffin_manifest::DType;
pub use tract_onnx::prelude::f16;

/// The values of a tensor, row-major, one variant per dtype.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum TensorData {
    Bool(Vec<bool>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F16(Vec<f16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    String(Vec<String>),
}

/// Runs `$body` with `$v` bound to the inner `Vec` of any variant.
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            $crate::TensorData::Bool($v) => $body,
            $crate::TensorData::U8($v) => $body,
            $crate::TensorData::U16($v) => $body,
            $crate::TensorData::U32($v) => $body,
            $crate::TensorData::U64($v) => $body,
            $crate::TensorData::I8($v) => $body,
            $crate::TensorData::I16($v) => $body,
            $crate::TensorData::I32($v) => $body,
            $crate::TensorData::I64($v) => $body,
            $crate::TensorData::F16($v) => $body,
            $crate::TensorData::F32($v) => $body,
            $crate::TensorData::F64($v) => $body,
            $crate::TensorData::String($v) => $body,
        }
    };
}

impl TensorData {
    /// The dtype of the values.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::Bool(_) => DType::Bool,
            TensorData::U8(_) => DType::U8,
            TensorData::U16(_) => DType::U16,
            TensorData::U32(_) => DType::U32,
            TensorData::U64(_) => DType::U64,
            TensorData::I8(_) => DType::I8,
            TensorData::I16(_) => DType::I16,
            TensorData::I32(_) => DType::I32,
            TensorData::I64(_) => DType::I64,
            TensorData::F16(_) => DType::F16,
            TensorData::F32(_) => DType::F32,
            TensorData::F64(_) => DType::F64,
            TensorData::String(_) => DType::String,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        dispatch_data!(self, v => v.len())
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The position of the first NaN or infinite value, for inputs that must be finite.
    pub fn first_non_finite(&self) -> Option<usize> {
        match self {
            TensorData::F16(v) => v.iter().position(|x| !x.is_finite()),
            TensorData::F32(v) => v.iter().position(|x| !x.is_finite()),
            TensorData::F64(v) => v.iter().position(|x| !x.is_finite()),
            _ => None,
        }
    }

    /// The values as little-endian raw bytes, the V2 binary tensor extension's layout (a bool
    /// is one byte); `None` for strings, which have no fixed size.
    pub fn to_le_bytes(&self) -> Option<Vec<u8>> {
        macro_rules! le {
            ($v:expr) => {
                $v.iter().flat_map(|x| x.to_le_bytes()).collect()
            };
        }
        Some(match self {
            TensorData::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
            TensorData::U8(v) => v.clone(),
            TensorData::U16(v) => le!(v),
            TensorData::U32(v) => le!(v),
            TensorData::U64(v) => le!(v),
            TensorData::I8(v) => le!(v),
            TensorData::I16(v) => le!(v),
            TensorData::I32(v) => le!(v),
            TensorData::I64(v) => le!(v),
            TensorData::F16(v) => le!(v),
            TensorData::F32(v) => le!(v),
            TensorData::F64(v) => le!(v),
            TensorData::String(_) => return None,
        })
    }

    /// The values `range` (in values, not bytes) as a new buffer of the same dtype.
    fn slice(&self, range: std::ops::Range<usize>) -> TensorData {
        macro_rules! cut {
            ($variant:ident, $v:expr) => {
                TensorData::$variant($v[range].to_vec())
            };
        }
        match self {
            TensorData::Bool(v) => cut!(Bool, v),
            TensorData::U8(v) => cut!(U8, v),
            TensorData::U16(v) => cut!(U16, v),
            TensorData::U32(v) => cut!(U32, v),
            TensorData::U64(v) => cut!(U64, v),
            TensorData::I8(v) => cut!(I8, v),
            TensorData::I16(v) => cut!(I16, v),
            TensorData::I32(v) => cut!(I32, v),
            TensorData::I64(v) => cut!(I64, v),
            TensorData::F16(v) => cut!(F16, v),
            TensorData::F32(v) => cut!(F32, v),
            TensorData::F64(v) => cut!(F64, v),
            TensorData::String(v) => cut!(String, v),
        }
    }

    /// Appends `other`'s values; false (and nothing appended) when the dtypes differ.
    fn append(&mut self, other: &TensorData) -> bool {
        macro_rules! cat {
            ($($variant:ident),*) => {
                match (self, other) {
                    $((TensorData::$variant(a), TensorData::$variant(b)) => {
                        a.extend_from_slice(b);
                        true
                    })*
                    _ => false,
                }
            };
        }
        cat!(
            Bool, U8, U16, U32, U64, I8, I16, I32, I64, F16, F32, F64, String
        )
    }
}

/// A shape and values that agree with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

/// The shape and the number of values of a [`Tensor`] disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match expected {
    Some(n) => format!("shape {shape:?} holds {n} values, but {found} were given"),
    None => format!("shape {shape:?} is too large: its dims multiply past 2^64"),
})]
pub struct ShapeMismatch {
    /// The shape asked for.
    pub shape: Vec<usize>,
    /// The values the shape holds; `None` when its dims (the non-zero ones) multiply past a
    /// `usize`.
    pub expected: Option<usize>,
    /// The values given.
    pub found: usize,
}

impl Tensor {
    /// A tensor of `shape` holding `data`, which must have exactly as many values as the shape.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor, ShapeMismatch> {
        // Checked: a shape from a request could multiply past usize and wrap to the number of
        // values given. Zero dims are left out of the check, so that [0, 2^62, 2^62] is refused
        // too and every product of a tensor's dims taken later fits.
        let expected = shape
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .map(|n| if shape.contains(&0) { 0 } else { n });
        if expected != Some(data.len()) {
            return Err(ShapeMismatch {
                shape,
                expected,
                found: data.len(),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values, row-major.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The dtype of the values.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The shape and the values.
    pub fn into_parts(self) -> (Vec<usize>, TensorData) {
        (self.shape, self.data)
    }

    /// Stacks tensors along their first axis: the tensors of several requests merged into one
    /// batch. They must share the dtype and every other axis; the error says which part differs.
    pub fn concat_rows(parts: &[&Tensor]) -> Result<Tensor, String> {
        let Some((first, rest)) = parts.split_first() else {
            return Err("no tensors to stack".into());
        };
        let Some((_, inner)) = first.shape.split_first() else {
            return Err("a scalar has no rows to stack".into());
        };
        let mut data = first.data.clone();
        let mut rows = first.shape[0];
        for (ix, part) in rest.iter().enumerate() {
            if part.shape.get(1..) != Some(inner) {
                return Err(format!(
                    "part {} has shape {:?}, which does not stack on {:?}",
                    ix + 1,
                    part.shape,
                    first.shape
                ));
            }
            if !data.append(&part.data) {
                return Err(format!(
                    "part {} holds {}, not {}",
                    ix + 1,
                    part.dtype(),
                    first.dtype()
                ));
            }
            rows += part.shape[0];
        }
        let mut shape = first.shape.clone();
        shape[0] = rows;
        Ok(Tensor { shape, data })
    }

    /// Cuts a tensor into consecutive blocks of rows along its first axis, `rows[i]` rows in
    /// block `i`; the inverse of [`Tensor::concat_rows`]. `None` when the counts do not add up
    /// to the tensor's rows.
    pub fn split_rows(&self, rows: &[usize]) -> Option<Vec<Tensor>> {
        let (&total, inner) = self.shape.split_first()?;
        if rows.iter().sum::<usize>() != total {
            return None;
        }
        let row_len: usize = inner.iter().product();
        let mut start = 0;
        Some(
            rows.iter()
                .map(|&n| {
                    let mut shape = self.shape.clone();
                    shape[0] = n;
                    let data = self.data.slice(start * row_len..(start + n) * row_len);
                    start += n;
                    Tensor { shape, data }
                })
                .collect(),
        )
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.dtype().as_str(), self.shape)
    }
}

/// Why a JSON value could not become an element of a tensor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value {index}: {reason}")]
pub struct ValueError {
    /// Position of the value in row-major order.
    pub index: usize,
    /// What is wrong with it and what was expected.
    pub reason: String,
}

impl TensorData {
    /// Converts JSON values (already flattened, row-major) into values of `dtype`, refusing any
    /// value that does not fit exactly: a fraction or an out-of-range number for an integer
    /// dtype, a string for a number, a number for a string. Floats also take the strings `NaN`,
    /// `Infinity` and `-Infinity`, which JSON cannot write as numbers.
    pub fn from_json(dtype: DType, values: &[serde_json::Value]) -> Result<TensorData, ValueError> {
        let mut sink = LeafSink::new(dtype, values.len());
        for value in values {
            sink.push(value);
        }
        sink.finish()
    }

    /// The values of [`TensorData::to_json`], written straight to a serializer rather than built
    /// as JSON values first: a server answering many small requests spends less on each.
    pub fn json(&self) -> JsonValues<'_> {
        JsonValues(self)
    }

    /// The value at flat (row-major) `index`, to serialize as [`TensorData::json`] writes it.
    ///
    /// # Panics
    /// When `index` is not below [`TensorData::len`].
    pub fn json_value(&self, index: usize) -> JsonValue<'_> {
        assert!(index < self.len(), "index {index} of {} values", self.len());
        JsonValue { data: self, index }
    }

    /// The values as JSON, row-major and flat. Non-finite floats become the strings `NaN`,
    /// `Infinity` and `-Infinity` (JSON has no numbers for them), which [`TensorData::from_json`]
    /// reads back.
    pub fn to_json(&self) -> Vec<serde_json::Value> {
        use serde_json::Value;
        fn float(f: f64) -> Value {
            if f.is_finite() {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            } else {
                Value::String(non_finite(f).into())
            }
        }
        match self {
            TensorData::F16(v) => v.iter().map(|x| float(x.to_f64())).collect(),
            // Through the shortest decimal that reads back as the same f32, not through f64,
            // so 0.1f32 is written 0.1 and not 0.10000000149011612.
            TensorData::F32(v) => v
                .iter()
                .map(|x| {
                    if x.is_finite() {
                        float(x.to_string().parse().expect("a float prints"))
                    } else {
                        float(*x as f64)
                    }
                })
                .collect(),
            TensorData::F64(v) => v.iter().map(|x| float(*x)).collect(),
            TensorData::Bool(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::U8(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::U16(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::U32(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::U64(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::I8(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::I16(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::I32(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::I64(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::String(v) => v.iter().map(|x| Value::from(x.as_str())).collect(),
        }
    }

    /// Reads little-endian raw bytes (the V2 binary tensor extension's layout) of a fixed-size dtype.
    pub fn from_le_bytes(dtype: DType, bytes: &[u8]) -> Result<TensorData, String> {
        let size = dtype
            .size_of()
            .ok_or_else(|| format!("{} has no fixed size", dtype.as_str()))?;
        if !bytes.len().is_multiple_of(size) {
            return Err(format!(
                "{} bytes is not a whole number of {} values ({size} bytes each)",
                bytes.len(),
                dtype.as_str()
            ));
        }
        macro_rules! le {
            ($t:ty) => {
                bytes
                    .chunks_exact(size)
                    .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size")))
                    .collect()
            };
        }
        Ok(match dtype {
            DType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
            DType::U8 => TensorData::U8(bytes.to_vec()),
            DType::U16 => TensorData::U16(le!(u16)),
            DType::U32 => TensorData::U32(le!(u32)),
            DType::U64 => TensorData::U64(le!(u64)),
            DType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
            DType::I16 => TensorData::I16(le!(i16)),
            DType::I32 => TensorData::I32(le!(i32)),
            DType::I64 => TensorData::I64(le!(i64)),
            DType::F16 => TensorData::F16(le!(f16)),
            DType::F32 => TensorData::F32(le!(f32)),
            DType::F64 => TensorData::F64(le!(f64)),
            DType::String => unreachable!("size_of is None for strings"),
        })
    }
}

/// Values of one dtype taken from JSON leaves one at a time, by the rules of
/// [`TensorData::from_json`]. The first leaf that does not fit is kept as the error, and the
/// leaves after it are not converted.
struct LeafSink {
    data: TensorData,
    index: usize,
    error: Option<ValueError>,
}

impl LeafSink {
    fn new(dtype: DType, capacity: usize) -> LeafSink {
        let data = match dtype {
            DType::Bool => TensorData::Bool(Vec::with_capacity(capacity)),
            DType::U8 => TensorData::U8(Vec::with_capacity(capacity)),
            DType::U16 => TensorData::U16(Vec::with_capacity(capacity)),
            DType::U32 => TensorData::U32(Vec::with_capacity(capacity)),
            DType::U64 => TensorData::U64(Vec::with_capacity(capacity)),
            DType::I8 => TensorData::I8(Vec::with_capacity(capacity)),
            DType::I16 => TensorData::I16(Vec::with_capacity(capacity)),
            DType::I32 => TensorData::I32(Vec::with_capacity(capacity)),
            DType::I64 => TensorData::I64(Vec::with_capacity(capacity)),
            DType::F16 => TensorData::F16(Vec::with_capacity(capacity)),
            DType::F32 => TensorData::F32(Vec::with_capacity(capacity)),
            DType::F64 => TensorData::F64(Vec::with_capacity(capacity)),
            DType::String => TensorData::String(Vec::with_capacity(capacity)),
        };
        LeafSink {
            data,
            index: 0,
            error: None,
        }
    }

    fn push(&mut self, value: &serde_json::Value) {
        if self.error.is_some() {
            return;
        }
        if let Err(reason) = convert_into(&mut self.data, value) {
            self.error = Some(ValueError {
                index: self.index,
                reason,
            });
        }
        self.index += 1;
    }

    fn finish(self) -> Result<TensorData, ValueError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.data),
        }
    }
}

/// What a JSON value is, for an error: never the value itself, since errors go back to clients
/// and never echo their data.
fn describe(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) if n.is_f64() => "a fractional number".into(),
        Value::Number(_) => "the number".into(),
    }
}

fn int<T: TryFrom<i64> + TryFrom<u64>>(v: &serde_json::Value, name: &str) -> Result<T, String> {
    use serde_json::Value;
    let out_of_range = || format!("{} does not fit in {name}", describe(v));
    match v {
        Value::Number(n) if n.is_i64() => {
            T::try_from(n.as_i64().expect("is_i64")).map_err(|_| out_of_range())
        }
        Value::Number(n) if n.is_u64() => {
            T::try_from(n.as_u64().expect("is_u64")).map_err(|_| out_of_range())
        }
        Value::Number(n) => match n.as_f64() {
            // 3.0 is an integer written as a float (numpy does that); 3.5 is not.
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                T::try_from(f as i64).map_err(|_| out_of_range())
            }
            _ => Err(format!(
                "{} is not an integer, expected {name}",
                describe(v)
            )),
        },
        _ => Err(format!("{} is not a number, expected {name}", describe(v))),
    }
}

fn float(v: &serde_json::Value, name: &str) -> Result<f64, String> {
    use serde_json::Value;
    match v {
        Value::Number(n) => Ok(n.as_f64().expect("serde_json numbers convert to f64")),
        Value::String(s) if s == "NaN" || s == "nan" => Ok(f64::NAN),
        Value::String(s) if s == "Infinity" || s == "inf" => Ok(f64::INFINITY),
        Value::String(s) if s == "-Infinity" || s == "-inf" => Ok(f64::NEG_INFINITY),
        _ => Err(format!("{} is not a number, expected {name}", describe(v))),
    }
}

/// Appends `v` to `data` as a value of its dtype, or says why it does not fit.
fn convert_into(data: &mut TensorData, v: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    match data {
        TensorData::Bool(out) => out.push(match v {
            Value::Bool(b) => *b,
            Value::Number(n) if n.as_u64() == Some(0) => false,
            Value::Number(n) if n.as_u64() == Some(1) => true,
            _ => return Err(format!("{} is not a boolean, expected bool", describe(v))),
        }),
        TensorData::U8(out) => out.push(int(v, "u8")?),
        TensorData::U16(out) => out.push(int(v, "u16")?),
        TensorData::U32(out) => out.push(int(v, "u32")?),
        TensorData::U64(out) => out.push(int(v, "u64")?),
        TensorData::I8(out) => out.push(int(v, "i8")?),
        TensorData::I16(out) => out.push(int(v, "i16")?),
        TensorData::I32(out) => out.push(int(v, "i32")?),
        TensorData::I64(out) => out.push(int(v, "i64")?),
        // A finite number too large for the narrower type would silently become infinite.
        TensorData::F16(out) => {
            let f = float(v, "f16")?;
            let h = f16::from_f64(f);
            if f.is_finite() && !h.is_finite() {
                return Err("the number does not fit in f16".into());
            }
            out.push(h);
        }
        TensorData::F32(out) => {
            let f = float(v, "f32")?;
            if f.is_finite() && !(f as f32).is_finite() {
                return Err("the number does not fit in f32".into());
            }
            out.push(f as f32);
        }
        TensorData::F64(out) => out.push(float(v, "f64")?),
        TensorData::String(out) => match v {
            Value::String(s) => out.push(s.clone()),
            _ => return Err(format!("{} is not a string, expected string", describe(v))),
        },
    }
    Ok(())
}

/// The JSON form of a tensor: `{"dtype": "f32", "shape": [2, 3], "data": [...]}`, the values
/// flat and row-major (nested lists are accepted when reading), or `"b64"` with the base64 of
/// the little-endian bytes instead of `"data"` for large fixed-size tensors. Golden examples and
/// fixture references are stored in this form.
#[derive(serde::Serialize, serde::Deserialize)]
struct TensorJson {
    dtype: DType,
    shape: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b64: Option<String>,
}

/// Flattens nested JSON lists into one row-major list.
pub fn flatten_json(value: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    match value {
        serde_json::Value::Array(items) => items.iter().for_each(|v| flatten_json(v, out)),
        other => out.push(other.clone()),
    }
}

/// A JSON value's leaves in row-major order, read straight from the JSON text: nested lists are
/// walked as they are parsed, so no tree of lists is built only to be flattened and dropped (the
/// same leaves [`flatten_json`] gives, for the V2 protocol's `data`, whose shape comes apart).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlatJson(pub Vec<serde_json::Value>);

impl<'de> serde::Deserialize<'de> for FlatJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<FlatJson, D::Error> {
        let mut leaves = Vec::new();
        serde::de::DeserializeSeed::deserialize(Leaves(&mut leaves), deserializer)?;
        Ok(FlatJson(leaves))
    }
}

/// The values of `dtype` that a JSON value's leaves give, read straight from the JSON text by
/// the rules of [`TensorData::from_json`] (nested lists flattened row-major, as [`FlatJson`]
/// reads them), with no list of JSON values built in between: for a request naming its dtype
/// before its values, as the V2 protocol's clients write it. Malformed JSON is the
/// deserializer's error; a leaf that does not fit the dtype is the `ValueError` inside.
#[derive(Debug, Clone, Copy)]
pub struct JsonInto(pub DType);

impl<'de> serde::de::DeserializeSeed<'de> for JsonInto {
    type Value = Result<TensorData, ValueError>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Result<TensorData, ValueError>, D::Error> {
        let mut sink = LeafSink::new(self.0, 0);
        serde::de::DeserializeSeed::deserialize(Leaves(&mut sink), deserializer)?;
        Ok(sink.finish())
    }
}

/// Where [`Leaves`] puts each leaf it reads.
trait Leaf {
    fn leaf(&mut self, value: serde_json::Value);

    /// A number leaf, which a typed sink may take without making a JSON value of it.
    fn number(&mut self, number: serde_json::Number) {
        self.leaf(serde_json::Value::Number(number));
    }
}

impl Leaf for Vec<serde_json::Value> {
    fn leaf(&mut self, value: serde_json::Value) {
        self.push(value);
    }
}

impl Leaf for LeafSink {
    fn leaf(&mut self, value: serde_json::Value) {
        self.push(&value);
    }

    /// Numbers into a float tensor, most of what tensors in JSON hold, go straight in, by the
    /// same rule as [`convert_into`]'s (a number too large for f32 goes the long way, to be
    /// refused there).
    fn number(&mut self, number: serde_json::Number) {
        if self.error.is_none() {
            let f = number.as_f64().expect("serde_json numbers convert to f64");
            match &mut self.data {
                TensorData::F32(out) if (f as f32).is_finite() => {
                    out.push(f as f32);
                    self.index += 1;
                    return;
                }
                TensorData::F64(out) => {
                    out.push(f);
                    self.index += 1;
                    return;
                }
                _ => {}
            }
        }
        self.push(&serde_json::Value::Number(number));
    }
}

/// Reads one JSON value as a sequence of leaves: a list's items in turn, anything else as one
/// leaf, exactly as `serde_json::Value` would read it.
struct Leaves<'a, L>(&'a mut L);

impl<'de, L: Leaf> serde::de::DeserializeSeed<'de> for Leaves<'_, L> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, L: Leaf> serde::de::Visitor<'de> for Leaves<'_, L> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Leaves(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let value = <serde_json::Value as serde::Deserialize>::deserialize(
            serde::de::value::MapAccessDeserializer::new(map),
        )?;
        self.0.leaf(value);
        Ok(())
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.leaf(serde_json::Value::Bool(v));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.number(v.into());
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.number(v.into());
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // As serde_json::Value reads it: a number JSON cannot hold becomes null.
        match serde_json::Number::from_f64(v) {
            Some(number) => self.0.number(number),
            None => self.0.leaf(serde_json::Value::Null),
        }
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.leaf(serde_json::Value::String(v.to_owned()));
        Ok(())
    }

    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.0.leaf(serde_json::Value::String(v));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.leaf(serde_json::Value::Null);
        Ok(())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
}

impl serde::Serialize for Tensor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        TensorJson {
            dtype: self.dtype(),
            shape: self.shape.clone(),
            data: Some(serde_json::Value::Array(self.data.to_json())),
            b64: None,
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Tensor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Tensor, D::Error> {
        use base64::Engine as _;
        use serde::de::Error as _;
        let wire = TensorJson::deserialize(deserializer)?;
        let data = match (wire.data, wire.b64) {
            (Some(values), None) => {
                let mut flat = Vec::new();
                flatten_json(&values, &mut flat);
                TensorData::from_json(wire.dtype, &flat).map_err(D::Error::custom)?
            }
            (None, Some(b64)) => {
                // base64's message quotes the offending byte: errors never echo data.
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| D::Error::custom("`b64` is not valid standard base64"))?;
                TensorData::from_le_bytes(wire.dtype, &bytes).map_err(D::Error::custom)?
            }
            _ => {
                return Err(D::Error::custom(
                    "a tensor needs exactly one of `data` and `b64`",
                ));
            }
        };
        Tensor::new(wire.shape, data).map_err(D::Error::custom)
    }
}

/// A tensor's values as a flat JSON array, serialized as [`TensorData::to_json`] writes them: f32
/// through its shortest decimal, non-finite floats as the strings `NaN`, `Infinity` and
/// `-Infinity`. Made by [`TensorData::json`].
#[derive(Debug, Clone, Copy)]
pub struct JsonValues<'a>(&'a TensorData);

impl serde::Serialize for JsonValues<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((0..self.0.len()).map(|index| self.0.json_value(index)))
    }
}

/// The string JSON readers take for a non-finite float (JSON has no number for it).
fn non_finite(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// One of a tensor's values as JSON, serialized as in [`JsonValues`]. Made by
/// [`TensorData::json_value`].
#[derive(Debug, Clone, Copy)]
pub struct JsonValue<'a> {
    data: &'a TensorData,
    index: usize,
}

impl serde::Serialize for JsonValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        fn float<S: serde::Serializer>(s: S, f: f64) -> Result<S::Ok, S::Error> {
            if f.is_finite() {
                s.serialize_f64(f)
            } else {
                s.serialize_str(non_finite(f))
            }
        }
        let i = self.index;
        match self.data {
            TensorData::F16(v) => float(s, v[i].to_f64()),
            // serde_json writes an f32 as its shortest decimal, as to_json does.
            TensorData::F32(v) if v[i].is_finite() => s.serialize_f32(v[i]),
            TensorData::F32(v) => s.serialize_str(non_finite(f64::from(v[i]))),
            TensorData::F64(v) => float(s, v[i]),
            TensorData::Bool(v) => s.serialize_bool(v[i]),
            TensorData::U8(v) => s.serialize_u8(v[i]),
            TensorData::U16(v) => s.serialize_u16(v[i]),
            TensorData::U32(v) => s.serialize_u32(v[i]),
            TensorData::U64(v) => s.serialize_u64(v[i]),
            TensorData::I8(v) => s.serialize_i8(v[i]),
            TensorData::I16(v) => s.serialize_i16(v[i]),
            TensorData::I32(v) => s.serialize_i32(v[i]),
            TensorData::I64(v) => s.serialize_i64(v[i]),
            TensorData::String(v) => s.serialize_str(&v[i]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_json_reads_the_leaves_flatten_json_gives() {
        for text in [
            "[[1, 2.5], [-3, 18446744073709551615]]",
            "[[[0.1]], [[1e300]], [[-0.0]]]",
            "[]",
            "[[], []]",
            "7",
            "\"a\"",
            "null",
            "[true, false, null]",
            "[[\"x\", \"y\"], [{\"k\": [1, 2]}, [3]]]",
            "[1, [2, [3, [4]]]]",
        ] {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut expected = Vec::new();
            flatten_json(&value, &mut expected);
            let flat: FlatJson = serde_json::from_str(text).unwrap();
            assert_eq!(flat.0, expected, "{text}");
        }
        assert!(serde_json::from_str::<FlatJson>("[1, 2").is_err());
    }

    #[test]
    fn json_read_into_a_dtype_gives_what_the_flattened_values_give() {
        use serde::de::DeserializeSeed;
        let cases = [
            "[[1, 2.5], [-3, 18446744073709551615]]",
            "[[[0.1]], [[1e300]], [[-0.0]], [-0], [0]]",
            "[]",
            "[[], []]",
            "7",
            "\"a\"",
            "null",
            "[true, false, null]",
            "[[\"x\", \"y,]\"], [{\"k\": [1, 2]}, [3]]]",
            "[1, [2, [3, [4]]]]",
            "[\"NaN\", \"Infinity\", \"-inf\", 1E-5, -2.5e+3, 0.05882352963089943]",
            "[-9223372036854775808, -9223372036854775809, 18446744073709551616, 1e2, 3.0]",
            "[255, 256, -1, 1.5, 65535, 4294967296]",
            "[0, 1, 2]",
            "[\"tab\\t\", \"\\u00e9\", \"\"]",
            "[3.4028235e38, 3.5e38, 1e-400]",
            "[1, \"two\", 3.5, {}]",
        ];
        let dtypes = DType::ALL;
        let mut refused = 0;
        for text in cases {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut flat = Vec::new();
            flatten_json(&value, &mut flat);
            for dtype in dtypes {
                let expected = TensorData::from_json(dtype, &flat);
                let read = JsonInto(dtype)
                    .deserialize(&mut serde_json::Deserializer::from_str(text))
                    .unwrap();
                refused += usize::from(expected.is_err());
                // Debug, so that NaN compares equal to itself.
                assert_eq!(
                    format!("{read:?}"),
                    format!("{expected:?}"),
                    "{text} as {dtype:?}"
                );
            }
        }
        // Both outcomes are exercised: values that fit and values refused, by index.
        assert!(
            refused > 20 && refused < cases.len() * dtypes.len() - 20,
            "{refused}"
        );
        // Malformed JSON is the deserializer's error, not a value's.
        assert!(
            JsonInto(DType::F32)
                .deserialize(&mut serde_json::Deserializer::from_str("[1, 2"))
                .is_err()
        );
    }

    #[test]
    fn rows_stack_and_split_back() {
        let a = Tensor::new(vec![1, 2], TensorData::F32(vec![1.0, 2.0])).unwrap();
        let b = Tensor::new(vec![2, 2], TensorData::F32(vec![3.0, 4.0, 5.0, 6.0])).unwrap();
        let both = Tensor::concat_rows(&[&a, &b]).unwrap();
        assert_eq!(both.shape(), &[3, 2]);
        assert_eq!(both.split_rows(&[1, 2]).unwrap(), vec![a.clone(), b]);
        assert_eq!(both.split_rows(&[1, 1]), None);
        let odd = Tensor::new(vec![1, 3], TensorData::F32(vec![0.0; 3])).unwrap();
        assert!(
            Tensor::concat_rows(&[&a, &odd])
                .unwrap_err()
                .contains("[1, 3]")
        );
        let ints = Tensor::new(vec![1, 2], TensorData::I64(vec![1, 2])).unwrap();
        assert!(
            Tensor::concat_rows(&[&a, &ints])
                .unwrap_err()
                .contains("i64")
        );
        let labels =
            Tensor::new(vec![2], TensorData::String(vec!["a".into(), "b".into()])).unwrap();
        let halves = labels.split_rows(&[1, 1]).unwrap();
        assert_eq!(
            Tensor::concat_rows(&[&halves[0], &halves[1]]).unwrap(),
            labels
        );
    }

    #[test]
    fn raw_bytes_read_back_and_non_finite_values_are_found() {
        for data in [
            TensorData::F32(vec![1.5, -2.0]),
            TensorData::I64(vec![-1, 1 << 40]),
            TensorData::Bool(vec![true, false]),
            TensorData::F16(vec![f16::from_f32(0.5)]),
        ] {
            let bytes = data.to_le_bytes().unwrap();
            assert_eq!(
                TensorData::from_le_bytes(data.dtype(), &bytes).unwrap(),
                data
            );
        }
        assert_eq!(TensorData::String(vec![]).to_le_bytes(), None);
        assert_eq!(
            TensorData::F64(vec![1.0, f64::NAN]).first_non_finite(),
            Some(1)
        );
        assert_eq!(
            TensorData::F32(vec![f32::NEG_INFINITY]).first_non_finite(),
            Some(0)
        );
        assert_eq!(TensorData::F32(vec![1.0]).first_non_finite(), None);
    }

    #[test]
    fn shape_must_match_the_values() {
        let t = Tensor::new(vec![2, 3], TensorData::F32(vec![0.0; 6])).unwrap();
        assert_eq!((t.shape(), t.dtype()), (&[2, 3][..], DType::F32));
        let err = Tensor::new(vec![2, 3], TensorData::I64(vec![1; 5])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape [2, 3] holds 6 values, but 5 were given"
        );
        assert!(Tensor::new(vec![0, 4], TensorData::String(vec![])).is_ok());
        // 2^62 x 4 wraps to 0 in usize: refused, not taken for an empty tensor.
        let wraps = Tensor::new(vec![1 << 62, 4], TensorData::F32(vec![])).unwrap_err();
        assert_eq!(wraps.expected, None);
        assert!(wraps.to_string().contains("multiply past 2^64"), "{wraps}");
        let empty = Tensor::new(vec![0, 1 << 62, 1 << 62], TensorData::F32(vec![])).unwrap_err();
        assert_eq!(empty.expected, None);
    }

    #[test]
    fn json_values_convert_exactly_or_say_why_not() {
        use serde_json::json;
        let ints = TensorData::from_json(DType::I64, &[json!(1), json!(-2), json!(3.0)]).unwrap();
        assert_eq!(ints, TensorData::I64(vec![1, -2, 3]));
        let err = TensorData::from_json(DType::I64, &[json!(1), json!(2.5)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "value 1: a fractional number is not an integer, expected i64"
        );
        let err = TensorData::from_json(DType::U8, &[json!(300)]).unwrap_err();
        assert_eq!(err.to_string(), "value 0: the number does not fit in u8");
        let err = TensorData::from_json(DType::F32, &[json!(1e300)]).unwrap_err();
        assert_eq!(err.to_string(), "value 0: the number does not fit in f32");
        let inf = TensorData::from_json(DType::F32, &[json!("Infinity")]).unwrap();
        assert_eq!(inf, TensorData::F32(vec![f32::INFINITY]));
        let err = TensorData::from_json(DType::F32, &[json!("x")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "value 0: a string is not a number, expected f32"
        );
        let err = TensorData::from_json(DType::I32, &[json!("NaN")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "value 0: a string is not a number, expected i32"
        );
        let floats = TensorData::from_json(DType::F32, &[json!(0.1), json!("NaN")]).unwrap();
        let TensorData::F32(f) = &floats else {
            panic!()
        };
        assert!(f[0] == 0.1 && f[1].is_nan());
        assert_eq!(floats.to_json(), vec![json!(0.1), json!("NaN")]);
    }

    #[test]
    fn json_writes_what_to_json_builds() {
        let cases = [
            TensorData::F32(vec![
                0.1,
                1.0,
                -0.0,
                1e-7,
                3.4e38,
                1e-45,
                0.000_336_647_03,
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
            ]),
            TensorData::F64(vec![0.1, 1.0, 1e-300, 1e300, f64::NAN, f64::NEG_INFINITY]),
            TensorData::F16(vec![f16::from_f32(0.5), f16::from_f32(65504.0)]),
            TensorData::Bool(vec![true, false]),
            TensorData::U8(vec![0, 255]),
            TensorData::U16(vec![65535]),
            TensorData::U32(vec![u32::MAX]),
            TensorData::U64(vec![u64::MAX]),
            TensorData::I8(vec![-128]),
            TensorData::I16(vec![-32768]),
            TensorData::I32(vec![i32::MIN]),
            TensorData::I64(vec![i64::MIN, i64::MAX]),
            TensorData::String(vec!["a \"quoted\" label".into(), String::new()]),
            TensorData::F32(vec![]),
        ];
        for data in cases {
            assert_eq!(
                serde_json::to_string(&data.json()).unwrap(),
                serde_json::to_string(&data.to_json()).unwrap(),
                "{data:?}"
            );
        }
    }

    #[test]
    fn tensor_json_round_trips_and_reads_nested_and_base64() {
        let t = Tensor::new(vec![2, 2], TensorData::F32(vec![1.5, -0.1, 3.0, 4.0])).unwrap();
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(
            text,
            r#"{"dtype":"f32","shape":[2,2],"data":[1.5,-0.1,3.0,4.0]}"#
        );
        assert_eq!(serde_json::from_str::<Tensor>(&text).unwrap(), t);
        let nested: Tensor =
            serde_json::from_str(r#"{"dtype":"f32","shape":[2,2],"data":[[1.5,-0.1],[3,4]]}"#)
                .unwrap();
        assert_eq!(nested, t);
        let b64: Tensor =
            serde_json::from_str(r#"{"dtype":"i32","shape":[2],"b64":"AQAAAP////8="}"#).unwrap();
        assert_eq!(b64.data(), &TensorData::I32(vec![1, -1]));
        let err = serde_json::from_str::<Tensor>(r#"{"dtype":"f32","shape":[3],"data":[1,2]}"#)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("shape [3] holds 3 values, but 2 were given"),
            "{err}"
        );
    }
}
