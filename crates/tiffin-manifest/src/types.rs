//! Types shared by the authoring file (`tiffin.toml`) and the packed manifest (`tiffin.json`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Element type of a tensor, e.g. `"f32"` for 32-bit floats.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 16-bit IEEE 754 floating point (half precision).
    F16,
    /// 32-bit IEEE 754 floating point; what most models take.
    F32,
    /// 64-bit IEEE 754 floating point.
    F64,
    /// 8-bit signed integer.
    I8,
    /// 16-bit signed integer.
    I16,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer; what classifiers usually return as labels.
    I64,
    /// 8-bit unsigned integer, e.g. image pixels.
    U8,
    /// 16-bit unsigned integer.
    U16,
    /// 32-bit unsigned integer.
    U32,
    /// 64-bit unsigned integer.
    U64,
    /// Boolean.
    Bool,
    /// UTF-8 string of any length.
    String,
}

impl DType {
    /// Every dtype, in declaration order.
    pub const ALL: [DType; 13] = [
        DType::F16,
        DType::F32,
        DType::F64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::Bool,
        DType::String,
    ];

    /// The name used in `tiffin.toml` and `tiffin.json`, e.g. `"f32"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DType::F16 => "f16",
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::Bool => "bool",
            DType::String => "string",
        }
    }

    /// The name of this dtype in the KServe / Open Inference Protocol v2, e.g. `"FP32"`.
    pub fn v2_name(&self) -> &'static str {
        match self {
            DType::F16 => "FP16",
            DType::F32 => "FP32",
            DType::F64 => "FP64",
            DType::I8 => "INT8",
            DType::I16 => "INT16",
            DType::I32 => "INT32",
            DType::I64 => "INT64",
            DType::U8 => "UINT8",
            DType::U16 => "UINT16",
            DType::U32 => "UINT32",
            DType::U64 => "UINT64",
            DType::Bool => "BOOL",
            DType::String => "BYTES",
        }
    }

    /// Size of one element in bytes, or `None` for strings, whose elements vary in size.
    pub fn size_of(&self) -> Option<usize> {
        match self {
            DType::I8 | DType::U8 | DType::Bool => Some(1),
            DType::F16 | DType::I16 | DType::U16 => Some(2),
            DType::F32 | DType::I32 | DType::U32 => Some(4),
            DType::F64 | DType::I64 | DType::U64 => Some(8),
            DType::String => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DType::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| Error::UnknownDType {
                found: s.to_owned(),
            })
    }
}

/// One dimension of a tensor shape: a fixed size such as `30`, or the name of a
/// dimension whose size varies between calls, such as `"batch"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size, at least 1, e.g. `30` for thirty feature columns.
    Fixed(#[schemars(range(min = 1))] u64),
    /// A dynamic dimension, named by an identifier (letters, digits and `_`, not
    /// starting with a digit), e.g. `"batch"`. Tensors that use the same name share its size.
    Named(#[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))] String),
}

impl Dim {
    /// The name of a dynamic dimension, or `None` for a fixed one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Dim::Fixed(_) => None,
            Dim::Named(name) => Some(name),
        }
    }

    /// The size of a fixed dimension, or `None` for a dynamic one.
    pub fn fixed(&self) -> Option<u64> {
        match self {
            Dim::Fixed(size) => Some(*size),
            Dim::Named(_) => None,
        }
    }
}

// Written by hand rather than derived from `untagged`, whose error ("data did not match
// any variant of untagged enum Dim") names neither the bad value nor the fix.
impl<'de> Deserialize<'de> for Dim {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DimVisitor;

        impl serde::de::Visitor<'_> for DimVisitor {
            type Value = Dim;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a dim: a size of at least 1 such as 30, or a dim name such as \"batch\"",
                )
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dim, E> {
                Ok(Dim::Fixed(v))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dim, E> {
                u64::try_from(v)
                    .map(Dim::Fixed)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dim, E> {
                Ok(Dim::Named(v.to_owned()))
            }
        }

        deserializer.deserialize_any(DimVisitor)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(size) => write!(f, "{size}"),
            Dim::Named(name) => f.write_str(name),
        }
    }
}

/// One input or output tensor of the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// The name the model gives this tensor, e.g. `"X"` or `"label"`.
    pub name: String,
    /// Element type, e.g. `"f32"`.
    pub dtype: DType,
    /// Dimensions, outermost first; each is a fixed size or the name of a dynamic
    /// dimension, e.g. `["batch", 30]`. An empty list means a scalar.
    pub shape: Vec<Dim>,
    /// Names of the columns of the last dimension, one per column, e.g.
    /// `["mean radius", "mean texture"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_names: Option<Vec<String>>,
    /// Names of the classes a classifier output stands for, in the model's class order,
    /// e.g. `["malignant", "benign"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_labels: Option<Vec<String>>,
    /// What the tensor holds, for people reading the package, e.g. "predicted class".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The model's inputs and outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Input tensors, in the order the model takes them; at least one.
    pub inputs: Vec<TensorSpec>,
    /// Output tensors, in the order the model returns them; at least one.
    pub outputs: Vec<TensorSpec>,
}

impl Signature {
    /// The input called `name`, if there is one.
    pub fn input(&self, name: &str) -> Option<&TensorSpec> {
        self.inputs.iter().find(|t| t.name == name)
    }

    /// The output called `name`, if there is one.
    pub fn output(&self, name: &str) -> Option<&TensorSpec> {
        self.outputs.iter().find(|t| t.name == name)
    }

    /// The names of all dynamic dimensions used by any input or output.
    pub fn dynamic_dims(&self) -> BTreeSet<&str> {
        self.inputs
            .iter()
            .chain(&self.outputs)
            .flat_map(|t| &t.shape)
            .filter_map(Dim::name)
            .collect()
    }
}

/// What a file of the package is for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    /// The model itself, or one file of a model folder.
    Model,
    /// A description of the model's inputs and outputs in another format.
    Signature,
    /// The model card: a document that says what the model is for and how it was made.
    ModelCard,
    /// An example input or output, used to check the model runs as expected.
    Example,
    /// A description of the environment the model was trained in, e.g. `requirements.txt`.
    Environment,
    /// Any other file shipped with the model.
    #[default]
    Extra,
}

/// File format of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    /// An ONNX model, e.g. `model.onnx`.
    Onnx,
    /// An NNEF model: a folder, or a `.nnef.tar`, `.nnef.tgz` or `.nnef.tar.gz` archive.
    Nnef,
}

impl fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelFormat::Onnx => "onnx",
            ModelFormat::Nnef => "nnef",
        })
    }
}

/// Infers the model format from the model's path as written in `tiffin.toml`.
///
/// `.onnx` is ONNX; `.nnef.tar`, `.nnef.tgz`, `.nnef.tar.gz` and folders are NNEF. A
/// folder is recognised by its name alone, without looking at the disk: either it ends
/// in `/` (`path = "model/"`) or in `.nnef` (`path = "model.nnef"`).
pub fn infer_format(path: &str) -> Result<ModelFormat, Error> {
    let lower = path.to_ascii_lowercase();
    let nnef_suffixes = [".nnef.tar", ".nnef.tgz", ".nnef.tar.gz", ".nnef", ".nnef/"];
    if lower.ends_with(".onnx") {
        Ok(ModelFormat::Onnx)
    } else if lower.ends_with('/') || nnef_suffixes.iter().any(|s| lower.ends_with(s)) {
        Ok(ModelFormat::Nnef)
    } else {
        Err(Error::UnknownModelFormat {
            path: path.to_owned(),
        })
    }
}

/// The framework the model was trained with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    /// Name of the framework, e.g. `"scikit-learn"` or `"pytorch"`.
    pub name: String,
    /// Version of the framework, e.g. `"1.5.2"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl std::fmt::Display for Framework {
    /// The name and, when known, the version: `scikit-learn 1.8.0`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{} {version}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Where the model came from, so that it can be traced back and retrained.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// The source repository of the training code, e.g. `"https://github.com/acme/churn"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The git commit of the training code: 7 to 64 hex characters, e.g. the output of
    /// `git rev-parse HEAD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{7,64}$"))]
    pub commit: Option<String>,
    /// A reference to the training data, in any form, e.g.
    /// `"s3://bucket/churn-2024-05.parquet"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// What the model needs from the software that runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// Versions of the `tract` runtime that can run the model, as a semver requirement,
    /// e.g. `">=0.23, <0.24"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub tract: Option<semver::VersionReq>,
    /// Pinned Python requirements the model was trained with, for the record, e.g.
    /// `["scikit-learn==1.5.2"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub python: Vec<String>,
    /// The named dims tract cannot type the graph with as symbols, so it types and optimizes
    /// the model for each combination of their sizes on its first call (cached, least recently
    /// used out), e.g. `["batch", "seq"]` for a legacy torch export of a transformer. Found and
    /// written by `tiffin init` and `tiffin pack`, which replace what tiffin.toml says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_shape_dims: Vec<String>,
    /// The engines the model was checked on when packed, its golden examples' outputs made
    /// with the first: `"tract"` or `"ort"` (ONNX Runtime), e.g. `["ort"]` for a model tract
    /// mis-runs. Written by `tiffin pack` (`--runtime`), which replaces what tiffin.toml says;
    /// empty in packages made before it was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checked_on: Vec<String>,
}

/// How `tiffin serve` runs the model: dynamic batching and input checks. Each setting may be
/// overridden on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Serving {
    /// Merge concurrent requests into one model run of at most this many rows, e.g. `64`.
    /// Batching needs every input and output to share a named first dim (the batch); absent
    /// or 1 turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_size: Option<u32>,
    /// How long a request may wait for others to join its batch, in microseconds, e.g. `500`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_us: Option<u64>,
    /// How many plans tract keeps, each typed and optimized for one combination of dynamic dim
    /// sizes (a batch size, or a batch and sequence length for the dims in
    /// `runtime.per_shape_dims`), least recently used out, e.g. `16` for a text model that sees
    /// many lengths. Absent: 8. 0 runs every call on the plan that takes any size, where there
    /// is one; a model typed per shape always keeps at least one plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_cache: Option<u32>,
    /// Accept NaN and infinite values in float inputs (models that treat NaN as a missing
    /// value, such as tree ensembles); by default a request holding one is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_non_finite: bool,
}

impl Serving {
    /// True when nothing is set, so that `tiffin.json` leaves the section out.
    pub fn is_default(&self) -> bool {
        *self == Serving::default()
    }
}

/// What the model needs from the machine that runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// CPU features the model needs, e.g. `["avx2"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_features: Vec<String>,
    /// Whether the model needs a GPU.
    #[serde(default)]
    pub gpu: bool,
    /// Memory the model needs to run, in mebibytes, e.g. `512`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_memory_mb: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_names_round_trip_through_from_str_and_serde() {
        for dtype in DType::ALL {
            assert_eq!(dtype.as_str().parse::<DType>().unwrap(), dtype);
            let json = serde_json::to_string(&dtype).unwrap();
            assert_eq!(json, format!("\"{dtype}\""));
        }
    }

    #[test]
    fn dtype_from_str_rejects_unknown_names_and_lists_the_known_ones() {
        let err = "float".parse::<DType>().unwrap_err().to_string();
        assert!(err.contains("unknown dtype `float`"), "{err}");
        assert!(err.contains("f32"), "{err}");
    }

    #[test]
    fn dtype_v2_names_and_sizes() {
        assert_eq!(DType::F32.v2_name(), "FP32");
        assert_eq!(DType::U16.v2_name(), "UINT16");
        assert_eq!(DType::String.v2_name(), "BYTES");
        assert_eq!(DType::F16.size_of(), Some(2));
        assert_eq!(DType::I64.size_of(), Some(8));
        assert_eq!(DType::Bool.size_of(), Some(1));
        assert_eq!(DType::String.size_of(), None);
    }

    #[test]
    fn dims_parse_from_numbers_and_strings_and_display_as_written() {
        let dims: Vec<Dim> = serde_json::from_str(r#"["batch", 30]"#).unwrap();
        assert_eq!(dims, [Dim::Named("batch".into()), Dim::Fixed(30)]);
        assert_eq!(dims[0].to_string(), "batch");
        assert_eq!(dims[1].to_string(), "30");
        assert_eq!(serde_json::to_string(&dims).unwrap(), r#"["batch",30]"#);
    }

    #[test]
    fn dims_refuse_negative_and_fractional_sizes_with_the_value_and_the_fix() {
        let err = serde_json::from_str::<Dim>("-3").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid value: integer `-3`, expected a dim: a size of at least 1 such as 30, \
             or a dim name such as \"batch\" at line 1 column 2"
        );
        let err = serde_json::from_str::<Dim>("2.5").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid type: floating point `2.5`, expected a dim"),
            "{err}"
        );
    }

    #[test]
    fn infer_format_from_extension() {
        assert_eq!(infer_format("model.onnx").unwrap(), ModelFormat::Onnx);
        assert_eq!(infer_format("sub/Model.ONNX").unwrap(), ModelFormat::Onnx);
        for nnef in [
            "m.nnef.tar",
            "m.nnef.tgz",
            "m.nnef.tar.gz",
            "m.nnef",
            "model/",
        ] {
            assert_eq!(infer_format(nnef).unwrap(), ModelFormat::Nnef, "{nnef}");
        }
        let err = infer_format("model.pt").unwrap_err().to_string();
        assert!(err.contains("`model.pt`"), "{err}");
    }

    #[test]
    fn signature_lookups() {
        let tensor = |name: &str, shape: Vec<Dim>| TensorSpec {
            name: name.into(),
            dtype: DType::F32,
            shape,
            feature_names: None,
            class_labels: None,
            description: None,
        };
        let sig = Signature {
            inputs: vec![tensor("X", vec![Dim::Named("batch".into()), Dim::Fixed(3)])],
            outputs: vec![tensor(
                "y",
                vec![Dim::Named("batch".into()), Dim::Named("k".into())],
            )],
        };
        assert_eq!(sig.input("X").unwrap().name, "X");
        assert!(sig.input("y").is_none());
        assert_eq!(sig.output("y").unwrap().name, "y");
        assert_eq!(
            sig.dynamic_dims().into_iter().collect::<Vec<_>>(),
            ["batch", "k"]
        );
    }
}
