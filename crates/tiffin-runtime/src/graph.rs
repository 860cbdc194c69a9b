//! Reading a model into tract and confronting it with a declared signature: what the graph says
//! about its inputs and outputs, the input facts made from the signature (named dims become tract
//! symbols), typing, and every disagreement between the two.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use tiffin_manifest::{DType, Dim, ModelFormat, Signature, TensorSpec};
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::{DimFact, ShapeFactoid};

use crate::error::{Error, SignatureProblem, TensorKind};
use crate::onnx_weights::{MIN_STRIPPED, OnnxModel, ReadError, read_stripped};
use crate::span::FileSpan;

/// Where a model's bytes come from.
#[derive(Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// The content of one file: an `.onnx` model, or an NNEF archive (`.nnef.tar`, or gzipped
    /// `.nnef.tgz` / `.nnef.tar.gz`, recognised by its bytes).
    Bytes(Vec<u8>),
    /// An NNEF model unpacked into a folder (`graph.nnef` and its `.dat` files).
    Dir(PathBuf),
    /// One file, read when the model loads: ONNX Runtime reads an ONNX file itself, without the
    /// process holding its bytes (a 1 GiB model then peaks at 1.3x its size, not 2.3x); tract
    /// reads an ONNX file's large weights straight into its tensors, and the rest of the file
    /// (or an NNEF file whole) as with [`ModelSource::Bytes`].
    File(PathBuf),
    /// `len` bytes of a file from `offset`, read when the model loads, as
    /// [`ModelSource::File`] reads a whole file: a model stored in an uncompressed archive
    /// (a tiffin archive's member is one contiguous range of it). Nothing outside the range is
    /// read; a range that passes the end of the file is refused. tract reads an ONNX model's
    /// large weights from the range straight into its tensors; ONNX Runtime, which reads only
    /// whole files or bytes in memory, is given a copy of the range in a temporary file
    /// (deleted when the model has loaded), or its bytes where no temporary file can be made.
    Span {
        /// The file holding the model, e.g. a package archive.
        path: PathBuf,
        /// Where the model's first byte is in the file.
        offset: u64,
        /// The model's length in bytes.
        len: u64,
    },
}

impl ModelSource {
    /// The model's bytes: read from the file for [`ModelSource::File`] and
    /// [`ModelSource::Span`]; an error for a folder.
    pub fn into_bytes(self) -> Result<Vec<u8>, Error> {
        match self {
            ModelSource::Bytes(bytes) => Ok(bytes),
            ModelSource::File(path) => std::fs::read(&path)
                .map_err(|e| Error::Source(format!("cannot read {}: {e}", path.display()))),
            ModelSource::Span { path, offset, len } => {
                let span = FileSpan::open(&path, offset, len)?;
                read_span(span, &path)
            }
            ModelSource::Dir(path) => Err(Error::Source(format!(
                "{} is a folder, not one model file",
                path.display()
            ))),
        }
    }
}

impl fmt::Debug for ModelSource {
    // Written by hand so that a model's bytes never end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            ModelSource::Dir(p) => f.debug_tuple("Dir").field(p).finish(),
            ModelSource::File(p) => f.debug_tuple("File").field(p).finish(),
            ModelSource::Span { path, offset, len } => f
                .debug_struct("Span")
                .field("path", path)
                .field("offset", offset)
                .field("len", len)
                .finish(),
        }
    }
}

/// A model read from its source, before the signature types it.
pub(crate) enum Parsed {
    /// The ONNX protobuf, kept so that it can be turned into a tract model more than once (with
    /// and without the graph's `value_info`) and so that classifier attributes can be read; its
    /// large initializers are kept beside it as tensors (see [`crate::onnx_weights`]).
    Onnx(Box<OnnxModel>),
    /// An NNEF model, typed by its own declarations.
    Nnef(Box<TypedModel>),
}

/// tract's NNEF reader and writer as tiffin uses them: with tract-onnx's operators and tiffin's
/// own (converted ONNX-ML models need them), and with quoted identifiers, so that tensor names
/// such as `save_infer_model/scale_0.tmp_1` survive a round trip unchanged.
///
/// Built once per process: building it parses NNEF's standard library, about 10 ms, which
/// would otherwise be most of the load time of a small model.
pub(crate) fn nnef_framework() -> &'static tract_nnef::framework::Nnef {
    static NNEF: OnceLock<tract_nnef::framework::Nnef> = OnceLock::new();
    NNEF.get_or_init(|| {
        let mut nnef = tract_nnef::nnef()
            .with_onnx()
            .with_registry(crate::onnx_ml::nnef_registry());
        nnef.allow_extended_identifier_syntax(true);
        nnef
    })
}

/// tract's ONNX reader with tiffin's ai.onnx.ml operators registered.
fn onnx_framework() -> tract_onnx::Onnx {
    static ONNX: OnceLock<tract_onnx::Onnx> = OnceLock::new();
    ONNX.get_or_init(|| {
        let mut onnx = tract_onnx::onnx();
        crate::onnx_ml::register(&mut onnx.op_register);
        onnx
    })
    .clone()
}

/// The property tiffin sets on the graphs it writes as NNEF, with the value
/// [`STAGE_DECLUTTERED`]: such a graph, written by this same tract version, is not decluttered
/// again when loaded.
pub(crate) const STAGE_PROPERTY: &str = "tiffin.stage";
/// See [`STAGE_PROPERTY`].
pub(crate) const STAGE_DECLUTTERED: &str = "decluttered";
/// The version of tract this crate is built against (pinned in the workspace), which tract's
/// NNEF writer records as `tract_nnef_ser_version`.
pub(crate) const TRACT_VERSION: &str = "0.23.9";

fn property<'m>(model: &'m TypedModel, key: &str) -> Option<&'m str> {
    let value = model.properties.get(key)?.as_plain_ram()?;
    value.to_scalar::<String>().ok().map(String::as_str)
}

impl Parsed {
    /// Declutters a model typed from this source, unless it is an NNEF graph tiffin already
    /// saved decluttered with this tract version.
    pub(crate) fn declutter(&self, model: TypedModel) -> Result<TypedModel, Error> {
        let done = matches!(self, Parsed::Nnef(_))
            && property(&model, STAGE_PROPERTY) == Some(STAGE_DECLUTTERED)
            && property(&model, "tract_nnef_ser_version") == Some(TRACT_VERSION);
        if done {
            return Ok(model);
        }
        model
            .into_decluttered()
            .map_err(|e| Error::Optimize { reason: reason(&e) })
    }
}

/// A tract error as one line, its causes after colons, cut short so that an error built from a
/// large graph never floods a log.
pub(crate) fn reason(e: &TractError) -> String {
    const MAX: usize = 1500;
    let mut text = format!("{e:#}");
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" [...]");
    }
    text
}

/// Reads a model from its source as `format`.
pub(crate) fn parse(source: &ModelSource, format: ModelFormat) -> Result<Parsed, Error> {
    parse_with(source, format, MIN_STRIPPED)
}

/// [`parse`], reading the ONNX initializers of at least `min` bytes into tensors beside the
/// protobuf (`u64::MAX`: none, the whole file decoded as tract would).
pub(crate) fn parse_with(
    source: &ModelSource,
    format: ModelFormat,
    min: u64,
) -> Result<Parsed, Error> {
    let failed = |e: TractError| Error::Parse {
        format,
        reason: reason(&e),
    };
    match (format, source) {
        (ModelFormat::Onnx, ModelSource::File(path) | ModelSource::Span { path, .. }) => {
            let cannot =
                |e: std::io::Error| Error::Source(format!("cannot read {}: {e}", path.display()));
            let span = match source {
                ModelSource::Span { offset, len, .. } => FileSpan::open(path, *offset, *len)?,
                _ => FileSpan::whole(path)?,
            };
            let len = span.len();
            // The large weights go from the file straight into tensors; a file without any
            // is read whole, as before.
            match read_stripped(span, len, min) {
                Ok(Some(model)) => onnx_parsed(model),
                Ok(None) => {
                    let bytes = source.clone().into_bytes()?;
                    onnx_parsed(decode_onnx(&bytes)?)
                }
                Err(ReadError::Decode(e)) => Err(failed(e.into())),
                Err(ReadError::Io(e)) => Err(cannot(e)),
            }
        }
        (_, ModelSource::File(_) | ModelSource::Span { .. }) => {
            let bytes = source.clone().into_bytes()?;
            parse_with(&ModelSource::Bytes(bytes), format, min)
        }
        (ModelFormat::Onnx, ModelSource::Bytes(bytes)) => {
            let cursor = std::io::Cursor::new(&bytes[..]);
            match read_stripped(cursor, bytes.len() as u64, min) {
                Ok(Some(model)) => onnx_parsed(model),
                Ok(None) => onnx_parsed(decode_onnx(bytes)?),
                Err(ReadError::Decode(e)) => Err(failed(e.into())),
                Err(ReadError::Io(e)) => Err(Error::Parse {
                    format,
                    reason: e.to_string(),
                }),
            }
        }
        (ModelFormat::Onnx, ModelSource::Dir(path)) => Err(Error::Source(format!(
            "an ONNX model is one file, but {} was given as a folder; give the bytes of the .onnx file",
            path.display()
        ))),
        (ModelFormat::Nnef, ModelSource::Bytes(bytes)) => {
            let model = nnef_framework()
                .model_for_read(&mut &bytes[..])
                .map_err(failed)?;
            Ok(Parsed::Nnef(Box::new(model)))
        }
        (ModelFormat::Nnef, ModelSource::Dir(path)) => {
            if !path.is_dir() {
                return Err(Error::Source(format!(
                    "{} is not a folder; an NNEF folder holds graph.nnef and its .dat files",
                    path.display()
                )));
            }
            let model = nnef_framework().model_for_path(path).map_err(failed)?;
            Ok(Parsed::Nnef(Box::new(model)))
        }
    }
}

/// The bytes of a range of the file at `path`, all of them: a range that ends early (the file
/// was cut since it was opened) is refused.
fn read_span(span: FileSpan, path: &std::path::Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let len = span.len();
    // The range was checked against the file's length when opened, so the buffer is sized to
    // what the file holds.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    span.take(len)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Source(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 != len {
        return Err(Error::Source(format!(
            "{} ended after {} of the model's {len} bytes; the file changed since it was verified: verify it again",
            path.display(),
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Decodes a whole ONNX file, its weights inside the protobuf.
fn decode_onnx(bytes: &[u8]) -> Result<OnnxModel, Error> {
    // Decoded from the bytes as they are: tract's `proto_model_for_read` first copies the whole
    // file into a buffer of its own, a third copy of the weights at the peak.
    let proto = <pb::ModelProto as prost::Message>::decode(bytes).map_err(|e| Error::Parse {
        format: ModelFormat::Onnx,
        reason: reason(&e.into()),
    })?;
    Ok(OnnxModel {
        proto,
        weights: Vec::new(),
    })
}

fn onnx_parsed(model: OnnxModel) -> Result<Parsed, Error> {
    if model.proto.graph.is_none() {
        return Err(Error::Parse {
            format: ModelFormat::Onnx,
            reason: "the ONNX file holds no graph".into(),
        });
    }
    Ok(Parsed::Onnx(Box::new(model)))
}

/// One dimension as the graph itself declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GraphDim {
    Fixed(u64),
    /// A symbol, by its name in the graph.
    Named(String),
    /// Left open (`None`, `-1`, `"?"`), or an expression.
    Unknown(String),
}

impl fmt::Display for GraphDim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphDim::Fixed(n) => write!(f, "{n}"),
            GraphDim::Named(s) | GraphDim::Unknown(s) => f.write_str(s),
        }
    }
}

/// An input or output as the graph itself declares it.
#[derive(Debug, Clone)]
pub(crate) struct GraphTensor {
    pub(crate) name: String,
    pub(crate) dtype: Option<DatumType>,
    pub(crate) shape: Option<Vec<GraphDim>>,
}

/// True for the names tiffin accepts as dim names (and tract as symbols).
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn onnx_tensor(info: &pb::ValueInfoProto) -> GraphTensor {
    let tensor = info
        .r#type
        .as_ref()
        .and_then(|t| t.value.as_ref())
        .map(|v| match v {
            pb::type_proto::Value::TensorType(t) => t,
        });
    let dtype = tensor.and_then(|t| {
        let dt = pb::tensor_proto::DataType::try_from(t.elem_type).ok()?;
        DatumType::try_from(dt).ok()
    });
    let shape = tensor.and_then(|t| t.shape.as_ref()).map(|shape| {
        shape
            .dim
            .iter()
            .map(|d| {
                use pb::tensor_shape_proto::dimension::Value;
                match &d.value {
                    Some(Value::DimValue(v)) if *v >= 1 => GraphDim::Fixed(*v as u64),
                    Some(Value::DimValue(v)) => GraphDim::Unknown(v.to_string()),
                    Some(Value::DimParam(p)) if is_identifier(p) => GraphDim::Named(p.clone()),
                    Some(Value::DimParam(p)) => GraphDim::Unknown(p.clone()),
                    None => GraphDim::Unknown("?".into()),
                }
            })
            .collect()
    });
    GraphTensor {
        name: info.name.clone(),
        dtype,
        shape,
    }
}

fn typed_dim(d: &TDim) -> GraphDim {
    match d {
        TDim::Val(v) if *v >= 1 => GraphDim::Fixed(*v as u64),
        TDim::Sym(s) if is_identifier(&s.to_string()) => GraphDim::Named(s.to_string()),
        other => GraphDim::Unknown(other.to_string()),
    }
}

fn typed_tensor(name: String, fact: &TypedFact) -> GraphTensor {
    GraphTensor {
        name,
        dtype: Some(fact.datum_type),
        shape: Some(fact.shape.iter().map(typed_dim).collect()),
    }
}

/// The graph's own inputs and outputs, in graph order.
pub(crate) fn graph_io(parsed: &Parsed) -> Result<(Vec<GraphTensor>, Vec<GraphTensor>), Error> {
    match parsed {
        Parsed::Onnx(onnx) => {
            let graph = onnx.proto.graph.as_ref().ok_or_else(|| Error::Parse {
                format: ModelFormat::Onnx,
                reason: "the ONNX file holds no graph".into(),
            })?;
            // Inputs that an initializer fills are constants, not inputs of the model.
            let initialized = onnx.initializer_names();
            let inputs = graph
                .input
                .iter()
                .filter(|i| !initialized.contains(i.name.as_str()))
                .map(onnx_tensor)
                .collect();
            Ok((inputs, graph.output.iter().map(onnx_tensor).collect()))
        }
        Parsed::Nnef(model) => {
            let io = |outlets: &[OutletId], kind: TensorKind| -> Result<Vec<GraphTensor>, Error> {
                outlets
                    .iter()
                    .map(|&o| {
                        let name = match kind {
                            TensorKind::Input => model.node(o.node).name.clone(),
                            TensorKind::Output => model
                                .outlet_label(o)
                                .map_or_else(|| model.node(o.node).name.clone(), str::to_owned),
                        };
                        let fact = model.outlet_fact(o).map_err(|e| Error::Parse {
                            format: ModelFormat::Nnef,
                            reason: reason(&e),
                        })?;
                        Ok(typed_tensor(name, fact))
                    })
                    .collect()
            };
            Ok((
                io(&model.inputs, TensorKind::Input)?,
                io(&model.outputs, TensorKind::Output)?,
            ))
        }
    }
}

/// tract's dtype for a tiffin dtype.
pub(crate) fn datum_type(dtype: DType) -> DatumType {
    match dtype {
        DType::F16 => DatumType::F16,
        DType::F32 => DatumType::F32,
        DType::F64 => DatumType::F64,
        DType::I8 => DatumType::I8,
        DType::I16 => DatumType::I16,
        DType::I32 => DatumType::I32,
        DType::I64 => DatumType::I64,
        DType::U8 => DatumType::U8,
        DType::U16 => DatumType::U16,
        DType::U32 => DatumType::U32,
        DType::U64 => DatumType::U64,
        DType::Bool => DatumType::Bool,
        DType::String => DatumType::String,
    }
}

/// tiffin's dtype for a tract dtype; shape values (`TDim`) come out as i64.
pub(crate) fn dtype_of(dt: DatumType) -> Option<DType> {
    Some(match dt {
        DatumType::F16 => DType::F16,
        DatumType::F32 => DType::F32,
        DatumType::F64 => DType::F64,
        DatumType::I8 => DType::I8,
        DatumType::I16 => DType::I16,
        DatumType::I32 => DType::I32,
        DatumType::I64 | DatumType::TDim => DType::I64,
        DatumType::U8 => DType::U8,
        DatumType::U16 => DType::U16,
        DatumType::U32 => DType::U32,
        DatumType::U64 => DType::U64,
        DatumType::Bool => DType::Bool,
        DatumType::String => DType::String,
        _ => return None,
    })
}

fn dtype_name(dt: DatumType) -> String {
    dtype_of(dt).map_or_else(|| format!("{dt:?}"), |d| d.as_str().to_owned())
}

/// One dimension of an input fact.
#[derive(Debug, Clone)]
enum FactDim {
    Fixed(u64),
    /// A tract symbol, by name.
    Symbol(String),
    Unknown,
}

/// The fact tract is given for one input, made from the declared signature (or from the graph
/// where the two disagree, so that typing still gets as far as the outputs).
#[derive(Debug, Clone)]
struct InputFact {
    /// The input's name in the graph.
    name: String,
    dtype: DatumType,
    dims: Option<Vec<FactDim>>,
}

impl InputFact {
    fn to_inference(&self, symbols: &SymbolScope) -> InferenceFact {
        let fact = InferenceFact::default().with_datum_type(self.dtype);
        match &self.dims {
            None => fact,
            Some(dims) => fact.with_shape(ShapeFactoid::closed(
                dims.iter()
                    .map(|d| match d {
                        FactDim::Fixed(n) => DimFact::from((*n as i64).to_dim()),
                        FactDim::Symbol(s) => DimFact::from(symbols.sym(s).to_dim()),
                        FactDim::Unknown => DimFact::default(),
                    })
                    .collect(),
            )),
        }
    }
}

/// Where a declared dim name was first seen.
#[derive(Debug, Clone)]
struct Site {
    kind: TensorKind,
    tensor: String,
    axis: usize,
    /// The graph's dim there.
    graph: String,
}

/// The model typed with a declared signature.
pub(crate) struct Typed {
    /// Typed, not yet decluttered (see [`Parsed::declutter`]); inputs and outputs are the
    /// declared ones, in the declared order.
    pub(crate) model: TypedModel,
    /// Each dim name declared on an input, with the tract symbol that stands for it (none when
    /// the graph computes that dim from others).
    pub(crate) symbols: BTreeMap<String, Option<Symbol>>,
}

/// Types `parsed` with `declared` and checks every declared name, dtype and dim against the
/// graph. Returns the typed model, or every problem found at once as [`Error::Signature`].
pub(crate) fn confront(parsed: &Parsed, declared: &Signature) -> Result<Typed, Error> {
    confront_as(parsed, declared, false)
}

/// [`confront`] for a signature whose input dims were concretized to one size each (see
/// [`concretized`]): an output dim declared by a name then comes out as a number, which is
/// not a disagreement.
pub(crate) fn confront_concrete(parsed: &Parsed, declared: &Signature) -> Result<Typed, Error> {
    confront_as(parsed, declared, true)
}

/// The signature with each named dim of `sizes` fixed at its size, on inputs and outputs.
pub(crate) fn concretized(declared: &Signature, sizes: &[(&str, usize)]) -> Signature {
    let fix = |specs: &[TensorSpec]| -> Vec<TensorSpec> {
        specs
            .iter()
            .map(|spec| TensorSpec {
                shape: spec
                    .shape
                    .iter()
                    .map(|d| match d {
                        Dim::Named(name) => sizes
                            .iter()
                            .find(|(n, _)| n == name)
                            .map_or_else(|| d.clone(), |(_, size)| Dim::Fixed(*size as u64)),
                        fixed => fixed.clone(),
                    })
                    .collect(),
                ..spec.clone()
            })
            .collect()
    };
    Signature {
        inputs: fix(&declared.inputs),
        outputs: fix(&declared.outputs),
    }
}

/// Whether tract failed to type `parsed` with symbols where it may succeed with sizes: an ONNX
/// graph, a typing error, and some named dim on the inputs. Legacy torch exports of
/// transformers (a `Flatten` of a `[batch, seq, ...]` tensor) are the common case.
pub(crate) fn may_type_per_shape(parsed: &Parsed, declared: &Signature, e: &Error) -> bool {
    matches!(parsed, Parsed::Onnx(_))
        && matches!(e, Error::Typing { .. })
        && declared
            .inputs
            .iter()
            .any(|i| i.shape.iter().any(|d| matches!(d, Dim::Named(_))))
}

/// The sizes the per-shape check at load types a model with: every named input dim at 1.
pub(crate) fn probe_sizes(declared: &Signature) -> Vec<(&str, usize)> {
    let mut sizes: Vec<(&str, usize)> = Vec::new();
    for spec in &declared.inputs {
        for d in &spec.shape {
            if let Dim::Named(name) = d
                && !sizes.iter().any(|(n, _)| n == name)
            {
                sizes.push((name.as_str(), 1));
            }
        }
    }
    sizes
}

fn confront_as(parsed: &Parsed, declared: &Signature, concrete: bool) -> Result<Typed, Error> {
    let (graph_inputs, graph_outputs) = graph_io(parsed)?;
    let mut problems = Vec::new();
    names_problems(
        TensorKind::Input,
        &declared.inputs,
        &graph_inputs,
        &mut problems,
    );
    names_problems(
        TensorKind::Output,
        &declared.outputs,
        &graph_outputs,
        &mut problems,
    );

    // Inputs: dtype, rank and dims against what the graph declares, choosing a tract symbol for
    // each declared dim name. The graph's own symbol is reused when it has one at that place:
    // graphs (torch's exporter, for one) name inner tensors' dims with it, and another name
    // would fail to unify with them.
    let mut bound: BTreeMap<String, (String, Site)> = BTreeMap::new(); // declared name -> symbol
    let mut owner: HashMap<String, (String, Site)> = HashMap::new(); // symbol -> declared name
    let mut facts = Vec::new();
    let mut undetermined: Vec<(String, Site)> = Vec::new();
    for spec in &declared.inputs {
        let Some(graph) = graph_inputs.iter().find(|g| g.name == spec.name) else {
            continue;
        };
        let want = datum_type(spec.dtype);
        let dtype = match graph.dtype {
            Some(g) if g != want => {
                problems.push(SignatureProblem::DType {
                    kind: TensorKind::Input,
                    name: spec.name.clone(),
                    declared: spec.dtype,
                    graph: dtype_name(g),
                });
                g
            }
            _ => want,
        };
        let graph_dims = match &graph.shape {
            Some(dims) if dims.len() != spec.shape.len() => {
                problems.push(SignatureProblem::Rank {
                    kind: TensorKind::Input,
                    name: spec.name.clone(),
                    declared: spec.shape.clone(),
                    graph: shape_text(dims),
                });
                let dims = dims
                    .iter()
                    .map(|d| match d {
                        GraphDim::Fixed(n) => FactDim::Fixed(*n),
                        GraphDim::Named(s) => FactDim::Symbol(s.clone()),
                        GraphDim::Unknown(_) => FactDim::Unknown,
                    })
                    .collect();
                facts.push(InputFact {
                    name: graph.name.clone(),
                    dtype,
                    dims: Some(dims),
                });
                continue;
            }
            Some(dims) => dims.clone(),
            None => vec![GraphDim::Unknown("?".into()); spec.shape.len()],
        };
        let mut dims = Vec::new();
        for (axis, (d, g)) in spec.shape.iter().zip(&graph_dims).enumerate() {
            let site = Site {
                kind: TensorKind::Input,
                tensor: spec.name.clone(),
                axis,
                graph: g.to_string(),
            };
            let dim_problem = |graph: &GraphDim| SignatureProblem::Dim {
                kind: TensorKind::Input,
                name: spec.name.clone(),
                axis,
                declared: d.clone(),
                graph: graph.to_string(),
            };
            dims.push(match (d, g) {
                (Dim::Fixed(n), GraphDim::Fixed(m)) => {
                    if n != m {
                        problems.push(dim_problem(g));
                    }
                    FactDim::Fixed(*m)
                }
                (Dim::Fixed(n), _) => FactDim::Fixed(*n),
                (Dim::Named(_), GraphDim::Fixed(m)) => {
                    problems.push(dim_problem(g));
                    FactDim::Fixed(*m)
                }
                (Dim::Named(name), _)
                    if parsed_is_nnef(parsed) && !matches!(g, GraphDim::Named(_)) =>
                {
                    // An NNEF input's dim is an expression of other symbols: nothing to bind,
                    // the run-time checks and tract's own keep it consistent.
                    undetermined.push((name.clone(), site));
                    FactDim::Unknown
                }
                (Dim::Named(name), _) => {
                    if let Some((symbol, _)) = bound.get(name) {
                        FactDim::Symbol(symbol.clone())
                    } else {
                        let symbol = match g {
                            GraphDim::Named(s) => s.clone(),
                            _ => name.clone(),
                        };
                        if let Some((other, first)) = owner.get(&symbol) {
                            problems.push(SignatureProblem::DimSplit {
                                graph: symbol.clone(),
                                first_kind: first.kind,
                                first: first.tensor.clone(),
                                first_axis: first.axis,
                                first_declared: other.clone(),
                                kind: TensorKind::Input,
                                name: spec.name.clone(),
                                axis,
                                declared: name.clone(),
                            });
                        } else {
                            owner.insert(symbol.clone(), (name.clone(), site.clone()));
                        }
                        bound.insert(name.clone(), (symbol.clone(), site));
                        FactDim::Symbol(symbol)
                    }
                }
            });
        }
        facts.push(InputFact {
            name: graph.name.clone(),
            dtype,
            dims: Some(dims),
        });
    }

    let output_names: Vec<String> = declared
        .outputs
        .iter()
        .filter(|o| graph_outputs.iter().any(|g| g.name == o.name))
        .map(|o| o.name.clone())
        .collect();
    let model = match type_model(parsed, &facts, &output_names) {
        Ok(model) => model,
        // A wrong signature is the likelier cause of a typing failure: report it.
        Err(Error::Typing { .. }) if !problems.is_empty() => {
            return Err(Error::Signature(problems));
        }
        Err(e) => return Err(e),
    };

    // Outputs: dtype, rank and dims against what tract infers from the declared inputs.
    let mut output_only: BTreeMap<String, (TDim, Site)> = BTreeMap::new();
    for (ix, name) in output_names.iter().enumerate() {
        let Some(spec) = declared.output(name) else {
            continue;
        };
        let fact = model
            .output_fact(ix)
            .map_err(|e| Error::Typing { reason: reason(&e) })?;
        if !dtype_compatible(spec.dtype, fact.datum_type) {
            problems.push(SignatureProblem::DType {
                kind: TensorKind::Output,
                name: name.clone(),
                declared: spec.dtype,
                graph: dtype_name(fact.datum_type),
            });
        }
        if fact.rank() != spec.shape.len() {
            problems.push(SignatureProblem::Rank {
                kind: TensorKind::Output,
                name: name.clone(),
                declared: spec.shape.clone(),
                graph: format!(
                    "[{}]",
                    fact.shape
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
            continue;
        }
        for (axis, (d, g)) in spec.shape.iter().zip(fact.shape.iter()).enumerate() {
            let g = g.clone().simplify();
            let site = Site {
                kind: TensorKind::Output,
                tensor: name.clone(),
                axis,
                graph: g.to_string(),
            };
            let dim_problem = || SignatureProblem::Dim {
                kind: TensorKind::Output,
                name: name.clone(),
                axis,
                declared: d.clone(),
                graph: g.to_string(),
            };
            match d {
                Dim::Fixed(n) => {
                    if g.as_i64() != Some(*n as i64) {
                        problems.push(dim_problem());
                    }
                }
                Dim::Named(_) if concrete && g.as_i64().is_some() => {}
                Dim::Named(_) if g.as_i64().is_some() => problems.push(dim_problem()),
                Dim::Named(dim) => {
                    if let Some((symbol, first)) = bound.get(dim) {
                        if g != TDim::Sym(model.sym(symbol)) {
                            problems.push(conflict(dim, first, &site));
                        }
                    } else if let Some((first_dim, first)) = output_only.get(dim) {
                        // A name only outputs use may alias an input's dim (silero's
                        // `Reshapespeech_probs_dim_0` is `seq_len`); it must stand for one
                        // graph dim wherever it appears.
                        if *first_dim != g {
                            problems.push(conflict(dim, first, &site));
                        }
                    } else {
                        output_only.insert(dim.clone(), (g.clone(), site));
                    }
                }
            }
        }
    }
    if let Parsed::Onnx(onnx) = parsed {
        let labels = onnx_class_labels(&onnx.proto);
        for spec in &declared.outputs {
            let (Some(graph), Some(declared)) = (labels.get(&spec.name), &spec.class_labels) else {
                continue;
            };
            // Integer classes are named by the author; string classes are what the model returns.
            let strings = spec.dtype == DType::String;
            if graph.len() != declared.len() || (strings && graph != declared) {
                problems.push(SignatureProblem::ClassLabels {
                    name: spec.name.clone(),
                    declared: declared.clone(),
                    graph: graph.clone(),
                });
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Signature(problems));
    }
    let mut symbols: BTreeMap<String, Option<Symbol>> = bound
        .into_iter()
        .map(|(name, (symbol, _))| (name, Some(model.sym(&symbol))))
        .collect();
    for (name, _) in undetermined {
        symbols.entry(name).or_insert(None);
    }
    Ok(Typed { model, symbols })
}

fn parsed_is_nnef(parsed: &Parsed) -> bool {
    matches!(parsed, Parsed::Nnef(_))
}

fn conflict(dim: &str, first: &Site, site: &Site) -> SignatureProblem {
    SignatureProblem::DimConflict {
        dim: dim.to_owned(),
        first_kind: first.kind,
        first: first.tensor.clone(),
        first_axis: first.axis,
        first_graph: first.graph.clone(),
        kind: site.kind,
        name: site.tensor.clone(),
        axis: site.axis,
        graph: site.graph.clone(),
    }
}

/// Whether an output tract computes as `graph` can be returned as `declared`: the same dtype,
/// or shape values (`TDim`), which tiffin returns as i64.
fn dtype_compatible(declared: DType, graph: DatumType) -> bool {
    dtype_of(graph) == Some(declared)
}

fn shape_text(dims: &[GraphDim]) -> String {
    format!(
        "[{}]",
        dims.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub(crate) fn names_problems(
    kind: TensorKind,
    declared: &[TensorSpec],
    graph: &[GraphTensor],
    out: &mut Vec<SignatureProblem>,
) {
    let graph_names: Vec<String> = graph.iter().map(|g| g.name.clone()).collect();
    for spec in declared {
        if !graph_names.contains(&spec.name) {
            out.push(SignatureProblem::Missing {
                kind,
                name: spec.name.clone(),
                graph: graph_names.clone(),
            });
        }
    }
    for g in graph {
        if !declared.iter().any(|d| d.name == g.name) {
            out.push(SignatureProblem::Undeclared {
                kind,
                name: g.name.clone(),
            });
        }
    }
}

/// Types the graph with the given input facts (in the order given) and outputs (selected by
/// name, in the order given).
fn type_model(
    parsed: &Parsed,
    facts: &[InputFact],
    outputs: &[String],
) -> Result<TypedModel, Error> {
    match parsed {
        Parsed::Onnx(onnx) => {
            let Err(Error::Typing { reason: first }) = onnx_typed(onnx, facts, outputs, false)
            else {
                return onnx_typed(onnx, facts, outputs, false);
            };
            // Shapes some exporters write into `value_info` use symbols of their own that do
            // not unify with the declared ones; the graph types without them.
            let second = onnx_typed(onnx, facts, outputs, true);
            if !matches!(second, Err(Error::Typing { .. })) {
                return second;
            }
            // Casts of shape values (PaddlePaddle's exporter writes Shape -> Cast(int32) ->
            // Slice -> Cast(int64) -> Reshape) hide a symbolic size from tract, which then
            // cannot type the Reshape; without the casts the sizes stay symbolic.
            if let Some(rewritten) = without_shape_casts(onnx) {
                let third = onnx_typed(&rewritten, facts, outputs, true);
                if !matches!(third, Err(Error::Typing { .. })) {
                    return third;
                }
            }
            Err(Error::Typing { reason: first })
        }
        Parsed::Nnef(model) => {
            let typing = |e: TractError| Error::Typing { reason: reason(&e) };
            let mut model = (**model).clone();
            model
                .set_input_names(facts.iter().map(|f| &f.name))
                .map_err(typing)?;
            let outlets = select_outputs(&model, outputs).map_err(typing)?;
            model.select_output_outlets(&outlets).map_err(typing)?;
            Ok(model)
        }
    }
}

/// A copy of the graph where every integer `Cast` of a shape value (an output of `Shape`,
/// possibly sliced, gathered, squeezed or concatenated) is an `Identity`; `None` when there is
/// no such cast. Shape values are sizes, which every integer type holds, so the graph computes
/// the same sizes; tract then keeps them symbolic instead of needing them as numbers.
fn without_shape_casts(onnx: &OnnxModel) -> Option<OnnxModel> {
    use pb::tensor_proto::DataType;
    const CARRY: [&str; 7] = [
        "Slice",
        "Gather",
        "Squeeze",
        "Unsqueeze",
        "Concat",
        "Cast",
        "Identity",
    ];
    let integer = |to: i64| {
        i32::try_from(to)
            .ok()
            .and_then(|to| DataType::try_from(to).ok())
            .is_some_and(|dt| matches!(dt, DataType::Int32 | DataType::Int64))
    };
    let mut proto = onnx.proto.clone();
    let graph = proto.graph.as_mut()?;
    let mut shape_valued: HashSet<String> = HashSet::new();
    let mut changed = false;
    // Nodes are topologically sorted in a valid ONNX graph, so one pass sees producers first.
    for node in &mut graph.node {
        let from_shape = node.input.first().is_some_and(|i| shape_valued.contains(i));
        let carries =
            node.op_type == "Shape" || (from_shape && CARRY.contains(&node.op_type.as_str()));
        if node.op_type == "Cast" && from_shape {
            let to = node.attribute.iter().find(|a| a.name == "to").map(|a| a.i);
            if to.is_some_and(integer) {
                node.op_type = "Identity".into();
                node.attribute.clear();
                changed = true;
            }
        }
        if carries {
            shape_valued.extend(node.output.iter().cloned());
        }
    }
    changed.then(|| OnnxModel {
        proto,
        weights: onnx.weights.clone(),
    })
}

fn select_outputs<F, O>(model: &Graph<F, O>, names: &[String]) -> TractResult<Vec<OutletId>>
where
    F: Fact + Clone + 'static,
    O: fmt::Debug + fmt::Display + AsRef<dyn Op> + AsMut<dyn Op> + Clone + 'static,
{
    names
        .iter()
        .map(|name| {
            model
                .outputs
                .iter()
                .find(|o| model.outlet_label(**o) == Some(name.as_str()))
                .copied()
                .ok_or_else(|| TractError::msg(format!("the graph has no output `{name}`")))
        })
        .collect()
}

fn onnx_typed(
    onnx: &OnnxModel,
    facts: &[InputFact],
    outputs: &[String],
    ignore_value_info: bool,
) -> Result<TypedModel, Error> {
    let typing = |e: TractError| Error::Typing { reason: reason(&e) };
    let framework = onnx_framework().with_ignore_value_info(ignore_value_info);
    let mut model = onnx_inference(&framework, onnx).map_err(|e| Error::Parse {
        format: ModelFormat::Onnx,
        reason: reason(&e),
    })?;
    unsupported_operators(&model)?;
    model
        .set_input_names(facts.iter().map(|f| &f.name))
        .map_err(typing)?;
    for (ix, fact) in facts.iter().enumerate() {
        let fact = fact.to_inference(&model.symbols);
        model.set_input_fact(ix, fact).map_err(typing)?;
    }
    let outlets = select_outputs(&model, outputs).map_err(typing)?;
    model.select_output_outlets(&outlets).map_err(typing)?;
    model.into_typed().map_err(typing)
}

/// The graph as tract-onnx reads it (what its `model_for_proto_model` returns), with the weights
/// read beside the protobuf put back as constants: tract-onnx sees each as an input no one
/// fills (or as a graph input, when the graph lists it among them), and each such source
/// becomes the constant tract-onnx would have made of the initializer.
fn onnx_inference(framework: &tract_onnx::Onnx, onnx: &OnnxModel) -> TractResult<InferenceModel> {
    let tract_onnx::model::ParseResult {
        mut model,
        unresolved_inputs,
        outlets_by_name,
    } = framework.parse(&onnx.proto, None)?;
    let mut filled = HashSet::new();
    for weight in &onnx.weights {
        // A weight no node reads is left out; one whose name a node's output also takes is
        // shadowed by that output, as it is in tract-onnx.
        let Some(&outlet) = outlets_by_name.get(&weight.name) else {
            continue;
        };
        if !model.inputs.contains(&outlet) {
            continue;
        }
        let fact = TypedFact::try_from(weight.tensor.clone())?;
        let konst = tract_onnx::tract_core::ops::konst::Const::new(weight.tensor.clone())?;
        model.node_mut(outlet.node).op = Box::new(konst);
        model.set_outlet_fact(outlet, fact.into())?;
        model.inputs.retain(|&input| input != outlet);
        filled.insert(weight.name.as_str());
    }
    let unresolved: Vec<&String> = unresolved_inputs
        .iter()
        .filter(|name| !filled.contains(name.as_str()))
        .collect();
    if !unresolved.is_empty() {
        return Err(TractError::msg(format!(
            "Could not resolve inputs at top-level: {unresolved:?}"
        )));
    }
    Ok(model)
}

/// Refuses, up front and by name, the operators tract left unimplemented: otherwise they only
/// fail later, inside typing, with a less direct message.
fn unsupported_operators(model: &InferenceModel) -> Result<(), Error> {
    use tract_onnx::tract_hir::ops::unimpl::UnimplementedOp;
    let mut ops: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for node in model.nodes() {
        if node.op.as_op().downcast_ref::<UnimplementedOp>().is_some() {
            let name = node.op.name();
            let op = name
                .strip_prefix("Unimplemented(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or(&name);
            if seen.insert(op.to_owned()) {
                ops.push(format!("{op} (node {})", node.name));
            }
        }
    }
    if ops.is_empty() {
        Ok(())
    } else {
        Err(Error::UnsupportedOperators { ops })
    }
}

/// The classes of the ONNX-ML classifiers (`classlabels_strings` / `classlabels_int64s` /
/// `classlabels_ints` of `LinearClassifier`, `TreeEnsembleClassifier`, `SVMClassifier`, and of a
/// `ZipMap`) that reach each graph output, through operators that keep the class axis.
pub(crate) fn onnx_class_labels(proto: &pb::ModelProto) -> HashMap<String, Vec<String>> {
    const CLASSIFIERS: [&str; 4] = [
        "LinearClassifier",
        "TreeEnsembleClassifier",
        "SVMClassifier",
        "ZipMap",
    ];
    const PASS_THROUGH: [&str; 6] = [
        "Identity",
        "Cast",
        "Normalizer",
        "Softmax",
        "CastMap",
        "ArgMax",
    ];
    let mut labels = HashMap::new();
    let Some(graph) = &proto.graph else {
        return labels;
    };
    let producer: HashMap<&str, &pb::NodeProto> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    let classes = |node: &pb::NodeProto| -> Option<Vec<String>> {
        node.attribute.iter().find_map(|a| match a.name.as_str() {
            "classlabels_strings" if !a.strings.is_empty() => Some(
                a.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            "classlabels_int64s" | "classlabels_ints" if !a.ints.is_empty() => {
                Some(a.ints.iter().map(|i| i.to_string()).collect())
            }
            _ => None,
        })
    };
    for output in &graph.output {
        let mut name = output.name.as_str();
        // Graphs are acyclic; the bound only guards against a malformed file.
        for _ in 0..graph.node.len().min(64) {
            let Some(node) = producer.get(name) else {
                break;
            };
            if CLASSIFIERS.contains(&node.op_type.as_str()) {
                if let Some(classes) = classes(node) {
                    labels.insert(output.name.clone(), classes);
                }
                break;
            }
            match (
                PASS_THROUGH.contains(&node.op_type.as_str()),
                node.input.first(),
            ) {
                (true, Some(input)) => name = input,
                _ => break,
            }
        }
    }
    labels
}

/// Column names from the ONNX `metadata_props`: `feature_names.INPUT`, or `feature_names` when
/// the model has one input; a JSON list of strings or a comma-separated list.
fn onnx_feature_names(
    proto: &pb::ModelProto,
    input: &str,
    single_input: bool,
) -> Option<Vec<String>> {
    let key = format!("feature_names.{input}");
    let value = proto
        .metadata_props
        .iter()
        .find(|p| p.key == key)
        .or_else(|| {
            proto
                .metadata_props
                .iter()
                .find(|p| single_input && p.key == "feature_names")
        })?;
    let text = value.value.trim();
    if text.starts_with('[') {
        serde_json::from_str::<Vec<String>>(text).ok()
    } else {
        Some(text.split(',').map(|s| s.trim().to_owned()).collect())
    }
}

/// What the graph itself says about its inputs and outputs, as a tiffin signature: names and
/// dtypes, shapes with each dynamic dim named (the graph's own symbol when it is a valid name,
/// else `batch` for the first axis and `INPUT_dimAXIS` for others), class labels of ONNX-ML
/// classifiers, and feature names from the ONNX metadata.
pub fn graph_signature(source: &ModelSource, format: ModelFormat) -> Result<Signature, Error> {
    crate::model::guarded("reading", || graph_signature_unguarded(source, format))
}

fn graph_signature_unguarded(
    source: &ModelSource,
    format: ModelFormat,
) -> Result<Signature, Error> {
    let parsed = parse(source, format)?;
    let (graph_inputs, graph_outputs) = graph_io(&parsed)?;
    let mut inputs = Vec::new();
    for g in &graph_inputs {
        let dtype = g.dtype.and_then(dtype_of).ok_or_else(|| Error::Typing {
            reason: format!(
                "input `{}` has {}, which tiffin does not support",
                g.name,
                g.dtype
                    .map_or("no dtype".into(), |d| format!("dtype {d:?}"))
            ),
        })?;
        let shape = g.shape.as_ref().ok_or_else(|| Error::Typing {
            reason: format!(
                "input `{}` has no shape in the graph; declare its shape in tiffin.toml",
                g.name
            ),
        })?;
        let shape = shape
            .iter()
            .enumerate()
            .map(|(axis, d)| match d {
                GraphDim::Fixed(n) => Dim::Fixed(*n),
                GraphDim::Named(s) => Dim::Named(s.clone()),
                GraphDim::Unknown(_) if axis == 0 => Dim::Named("batch".into()),
                GraphDim::Unknown(_) => Dim::Named(invented(&g.name, axis)),
            })
            .collect();
        let feature_names = match &parsed {
            Parsed::Onnx(onnx) => onnx_feature_names(&onnx.proto, &g.name, graph_inputs.len() == 1),
            Parsed::Nnef(_) => None,
        };
        inputs.push(TensorSpec {
            name: g.name.clone(),
            dtype,
            shape,
            feature_names,
            class_labels: None,
            description: None,
        });
    }
    let facts: Vec<InputFact> = inputs
        .iter()
        .map(|spec| InputFact {
            name: spec.name.clone(),
            dtype: datum_type(spec.dtype),
            dims: Some(
                spec.shape
                    .iter()
                    .map(|d| match d {
                        Dim::Fixed(n) => FactDim::Fixed(*n),
                        Dim::Named(s) => FactDim::Symbol(s.clone()),
                    })
                    .collect(),
            ),
        })
        .collect();
    let output_names: Vec<String> = graph_outputs.iter().map(|g| g.name.clone()).collect();
    let (model, per_shape) = match type_model(&parsed, &facts, &output_names) {
        Ok(model) => (model, false),
        Err(e)
            if may_type_per_shape(
                &parsed,
                &Signature {
                    inputs: inputs.clone(),
                    outputs: Vec::new(),
                },
                &e,
            ) =>
        {
            // tract cannot type the graph with symbols: it must type at a size (every named
            // dim at 1), and the outputs' shapes are then the ones the graph declares.
            let concrete: Vec<InputFact> = facts
                .iter()
                .map(|f| InputFact {
                    dims: f.dims.as_ref().map(|dims| {
                        dims.iter()
                            .map(|d| match d {
                                FactDim::Symbol(_) => FactDim::Fixed(1),
                                other => other.clone(),
                            })
                            .collect()
                    }),
                    ..f.clone()
                })
                .collect();
            match type_model(&parsed, &concrete, &output_names) {
                Ok(model) => (model, true),
                Err(_) => return declared_outputs(&parsed, inputs, &graph_outputs).ok_or(e),
            }
        }
        Err(e) => return declared_outputs(&parsed, inputs, &graph_outputs).ok_or(e),
    };
    let labels = match &parsed {
        Parsed::Onnx(onnx) => onnx_class_labels(&onnx.proto),
        Parsed::Nnef(_) => HashMap::new(),
    };
    let mut outputs = Vec::new();
    for (ix, g) in graph_outputs.iter().enumerate() {
        let fact = model
            .output_fact(ix)
            .map_err(|e| Error::Typing { reason: reason(&e) })?;
        let dtype = dtype_of(fact.datum_type).ok_or_else(|| Error::Typing {
            reason: format!(
                "output `{}` has dtype {:?}, which tiffin does not support",
                g.name, fact.datum_type
            ),
        })?;
        let shape = match (&g.shape, per_shape) {
            // Typed at a size, the model's output dims are numbers: the graph's declarations
            // say which of them vary.
            (Some(declared), true) if declared.len() == fact.rank() => declared
                .iter()
                .enumerate()
                .map(|(axis, d)| match d {
                    GraphDim::Fixed(n) => Dim::Fixed(*n),
                    GraphDim::Named(s) => Dim::Named(s.clone()),
                    GraphDim::Unknown(_) => Dim::Named(invented(&g.name, axis)),
                })
                .collect(),
            (_, true) => (0..fact.rank())
                .map(|axis| Dim::Named(invented(&g.name, axis)))
                .collect(),
            (_, false) => fact
                .shape
                .iter()
                .enumerate()
                .map(|(axis, d)| match typed_dim(&d.clone().simplify()) {
                    GraphDim::Fixed(n) => Dim::Fixed(n),
                    GraphDim::Named(s) => Dim::Named(s),
                    GraphDim::Unknown(_) => match g.shape.as_ref().and_then(|s| s.get(axis)) {
                        Some(GraphDim::Named(s)) => Dim::Named(s.clone()),
                        _ => Dim::Named(invented(&g.name, axis)),
                    },
                })
                .collect(),
        };
        outputs.push(TensorSpec {
            name: g.name.clone(),
            dtype,
            shape,
            feature_names: None,
            class_labels: labels.get(&g.name).cloned(),
            description: None,
        });
    }
    Ok(Signature { inputs, outputs })
}

/// A dim name for an axis the graph leaves unnamed: `NAME_dimAXIS`, with the characters a dim
/// name cannot hold replaced by `_`.
fn invented(tensor: &str, axis: usize) -> String {
    let mut name: String = tensor
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    format!("{name}_dim{axis}")
}

/// The signature with the outputs as the graph declares them, for a graph tract cannot type at
/// all (an operator it lacks, say) but whose outputs are fully declared: another runtime (ONNX
/// Runtime) may run it. `None` when an output's dtype or shape is not declared, or not one
/// tiffin has.
fn declared_outputs(
    parsed: &Parsed,
    inputs: Vec<TensorSpec>,
    graph_outputs: &[GraphTensor],
) -> Option<Signature> {
    let labels = match parsed {
        Parsed::Onnx(onnx) => onnx_class_labels(&onnx.proto),
        Parsed::Nnef(_) => return None,
    };
    let outputs = graph_outputs
        .iter()
        .map(|g| {
            let dtype = g.dtype.and_then(dtype_of)?;
            let shape = g
                .shape
                .as_ref()?
                .iter()
                .enumerate()
                .map(|(axis, d)| match d {
                    GraphDim::Fixed(n) => Dim::Fixed(*n),
                    GraphDim::Named(s) => Dim::Named(s.clone()),
                    GraphDim::Unknown(_) => Dim::Named(invented(&g.name, axis)),
                })
                .collect();
            Some(TensorSpec {
                name: g.name.clone(),
                dtype,
                shape,
                feature_names: None,
                class_labels: labels.get(&g.name).cloned(),
                description: None,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Signature { inputs, outputs })
}

/// Checks the declared signature against the graph and reports every problem at once, as
/// [`Error::Signature`]; other errors say why the graph could not be read or typed at all.
/// Returns the named dims tract must type the model for one size at a time (see
/// [`Model::per_shape_dims`](crate::Model::per_shape_dims)); empty when it types the graph with
/// them as symbols.
pub fn check_signature(
    declared: &Signature,
    source: &ModelSource,
    format: ModelFormat,
) -> Result<Vec<String>, Error> {
    crate::model::guarded("checking", || {
        let parsed = parse(source, format)?;
        match confront(&parsed, declared) {
            Err(e) if may_type_per_shape(&parsed, declared, &e) => {
                let sizes = probe_sizes(declared);
                let probe = concretized(declared, &sizes);
                match confront_concrete(&parsed, &probe) {
                    Ok(_) => Ok(sizes.iter().map(|(n, _)| (*n).to_owned()).collect()),
                    Err(problems @ Error::Signature(_)) => Err(problems),
                    Err(_) => Err(e),
                }
            }
            other => other.map(|_| Vec::new()),
        }
    })
}

/// The operators of a graph, for tools that judge what a model does with its inputs (such as
/// `tiffin doctor`'s preprocessing hints), without typing or optimizing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphOps {
    /// Every operator type of the graph, in graph order, each once, e.g. `["Scaler",
    /// "LinearClassifier"]` (ONNX `op_type`s; tract's operator names for NNEF).
    pub operators: Vec<String>,
    /// For each input, by name, the operators that first read it, looking through the ones that
    /// only change its type or layout (casts, reshapes, identities).
    pub first: BTreeMap<String, Vec<String>>,
}

/// Operators that leave values as they are, so that the operator after them is the one that
/// really reads an input first.
const PASS_THROUGH: &[&str] = &[
    "Cast",
    "CastLike",
    "Identity",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "AxisOp",
];

/// Lists the operators of a model and the first ones that read each input.
pub fn graph_ops(source: &ModelSource, format: ModelFormat) -> Result<GraphOps, Error> {
    crate::model::guarded("reading", || graph_ops_unguarded(source, format))
}

fn graph_ops_unguarded(source: &ModelSource, format: ModelFormat) -> Result<GraphOps, Error> {
    let parsed = parse(source, format)?;
    let (inputs, _) = graph_io(&parsed)?;
    let mut ops = GraphOps::default();
    match &parsed {
        Parsed::Onnx(onnx) => {
            let graph = onnx.proto.graph.as_ref().ok_or_else(|| Error::Parse {
                format,
                reason: "the ONNX file holds no graph".into(),
            })?;
            let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
            for (i, node) in graph.node.iter().enumerate() {
                push_once(&mut ops.operators, &node.op_type);
                for input in &node.input {
                    readers.entry(input.as_str()).or_default().push(i);
                }
            }
            for input in &inputs {
                let mut first = Vec::new();
                let mut seen = HashSet::new();
                let mut tensors = vec![input.name.as_str()];
                while let Some(tensor) = tensors.pop() {
                    for &i in readers.get(tensor).map(Vec::as_slice).unwrap_or_default() {
                        let node = &graph.node[i];
                        if !seen.insert(i) {
                            continue;
                        }
                        if PASS_THROUGH.contains(&node.op_type.as_str()) {
                            tensors.extend(node.output.iter().map(String::as_str));
                        } else {
                            push_once(&mut first, &node.op_type);
                        }
                    }
                }
                ops.first.insert(input.name.clone(), first);
            }
        }
        Parsed::Nnef(model) => {
            for node in model.nodes() {
                push_once(&mut ops.operators, &node.op.name());
            }
            for (&outlet, input) in model.inputs.iter().zip(&inputs) {
                let mut first = Vec::new();
                let mut seen = HashSet::new();
                let mut outlets = vec![outlet];
                while let Some(outlet) = outlets.pop() {
                    for inlet in model.outlet_successors(outlet) {
                        if !seen.insert(inlet.node) {
                            continue;
                        }
                        let node = model.node(inlet.node);
                        let name = node.op.name();
                        if PASS_THROUGH.contains(&name.as_ref()) {
                            outlets.extend(
                                (0..node.outputs.len()).map(|slot| OutletId::new(node.id, slot)),
                            );
                        } else {
                            push_once(&mut first, &name);
                        }
                    }
                }
                ops.first.insert(input.name.clone(), first);
            }
        }
    }
    Ok(ops)
}

fn push_once(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_invented_names() {
        assert!(
            is_identifier("batch")
                && is_identifier("_x1")
                && is_identifier("Reshapespeech_probs_dim_0")
        );
        assert!(
            !is_identifier("?")
                && !is_identifier("1x")
                && !is_identifier("a b")
                && !is_identifier("")
        );
        assert_eq!(
            invented("save_infer_model/scale_0.tmp_1", 1),
            "save_infer_model_scale_0_tmp_1_dim1"
        );
        assert_eq!(invented("0", 2), "_0_dim2");
    }

    #[test]
    fn feature_names_come_from_metadata() {
        let prop = |k: &str, v: &str| pb::StringStringEntryProto {
            key: k.into(),
            value: v.into(),
        };
        let proto = pb::ModelProto {
            metadata_props: vec![
                prop("feature_names", r#"["a b", "c"]"#),
                prop("feature_names.y", "d, e ,f"),
            ],
            ..Default::default()
        };
        assert_eq!(
            onnx_feature_names(&proto, "x", true),
            Some(vec!["a b".into(), "c".into()])
        );
        assert_eq!(onnx_feature_names(&proto, "x", false), None);
        assert_eq!(
            onnx_feature_names(&proto, "y", false),
            Some(vec!["d".into(), "e".into(), "f".into()])
        );
    }

    #[test]
    fn model_bytes_stay_out_of_debug_output() {
        assert_eq!(
            format!("{:?}", ModelSource::Bytes(vec![7; 1000])),
            "Bytes(1000 bytes)"
        );
    }
}
