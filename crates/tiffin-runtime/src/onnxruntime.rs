//! The ONNX Runtime engine behind `Runtime::Ort`: onnxruntime loaded at run time from a path
//! (the `ort` crate's `load-dynamic`), one session per model checked against the package
//! signature, and tiffin tensors passed in and out without a copy on the way in.
//!
//! Only built with the `ort` feature. The library is the user's (a system package, or the
//! `onnxruntime` PyPI wheel's `onnxruntime/capi/libonnxruntime.so.1.x`); nothing is downloaded
//! or linked at build time, which keeps the default build static and pure Rust.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, TryLockError};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynValue, TensorElementType, TensorRef, ValueType};
use tiffin_manifest::{DType, Dim, Signature, TensorSpec};
use tract_onnx::pb;

use crate::error::{Error, SignatureProblem, TensorKind};
use crate::graph::ModelSource;
use crate::graph::{GraphDim, GraphTensor, is_identifier, names_problems};
use crate::span::FileSpan;
use crate::tensor::{Tensor, TensorData};

/// The one onnxruntime of this process and the path it came from: a process can load one
/// library, and every later request must name the same one.
static LOADED: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// The environment of the library at `library`, loading it on first use.
fn environment(library: &Path) -> Result<Environment, Error> {
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((path, env)) = loaded.as_ref() {
        if path == library {
            return Ok(env.clone());
        }
        return Err(Error::OrtLibrary {
            path: library.to_owned(),
            reason: format!(
                "this process already runs ONNX Runtime from {}; one library per process",
                path.display()
            ),
        });
    }
    let failed = |reason: String| Error::OrtLibrary {
        path: library.to_owned(),
        reason,
    };
    // `init_from` must succeed before any other call into `ort`: until a library is loaded,
    // every one of them panics.
    let builder = ort::init_from(library).map_err(|e| {
        // The loader's message says only "dlopen failed"; the system's reason is its cause's.
        failed(match &e {
            ort::LoadDynamicError::Dlopen { error, .. } => format!("{e}: {}", chain(error)),
            _ => e.to_string(),
        })
    })?;
    let env = builder
        .with_name("tiffin")
        .with_telemetry(false)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    *loaded = Some((library.to_owned(), env.clone()));
    Ok(env)
}

/// An error's causes, after colons.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let mut source = e.source();
    while let Some(cause) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Sessions behind locks: `Session::run` takes `&mut self` (onnxruntime's execution providers
/// are not all safe to run concurrently), so with one session concurrent calls take turns and
/// each spreads its work over the session's own threads; with several (each a copy of the
/// weights), a call takes a free one and as many run at once.
pub(crate) struct OrtEngine {
    sessions: Vec<Mutex<Session>>,
    /// Where the next call starts looking for a free session, so that calls spread over them.
    next: AtomicUsize,
    /// The session's input names in the signature's order.
    input_names: Vec<String>,
    /// For each declared output, its index among the session's outputs.
    outputs: Vec<usize>,
}

impl fmt::Debug for OrtEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrtEngine")
            .field("inputs", &self.input_names)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl OrtEngine {
    /// Loads `onnx` into `sessions` sessions with `threads` intra-op threads each, and checks
    /// the first against `signature`, reporting every problem at once.
    pub(crate) fn load(
        library: &Path,
        onnx: ModelSource,
        signature: &Signature,
        threads: usize,
        sessions: usize,
    ) -> Result<OrtEngine, Error> {
        let env = environment(library)?;
        // A file is given to ONNX Runtime by its path unless it needs rewriting: read that way,
        // the process never holds the file's bytes beside the session's weights. A range of a
        // file (a model in an archive) is copied to a temporary file first, for the same reason;
        // `copy` keeps that file until the session is made.
        let (onnx, copy) = match onnx {
            ModelSource::File(path) if !file_mentions(&path, ZIPMAP)? => (Given::Path(path), None),
            ModelSource::Span { path, offset, len }
                if !span_mentions(FileSpan::open(&path, offset, len)?, &path, ZIPMAP)? =>
            {
                given_span(&path, offset, len, &std::env::temp_dir())?
            }
            other => (Given::Bytes(without_zipmap(other.into_bytes()?)?), None),
        };
        let session_error = |e: String| Error::Parse {
            format: tiffin_manifest::ModelFormat::Onnx,
            reason: format!("ONNX Runtime: {e}"),
        };
        let builder_error = |e: ort::Error<_>| session_error(e.to_string());
        let builder = Session::builder(&env).map_err(|e| session_error(e.to_string()))?;
        let builder = builder
            .with_intra_threads(threads.max(1))
            .map_err(builder_error)?
            .with_inter_threads(1)
            .map_err(builder_error)?
            // A waiting thread that spins takes a core from the other requests of a server.
            .with_intra_op_spinning(false)
            .map_err(builder_error)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(builder_error)?
            // onnxruntime's own log goes to standard error, beside tiffin's: what fails is
            // returned as an error and reported by tiffin, once.
            .with_log_level(ort::logging::LogLevel::Fatal)
            .map_err(builder_error)?;
        let mut builder = builder;
        let mut commit = || {
            match &onnx {
                Given::Path(path) => builder.commit_from_file(path),
                Given::Bytes(bytes) => builder.commit_from_memory(bytes),
            }
            .map_err(|e| session_error(e.to_string()))
        };
        let session = commit()?;

        let graph_inputs: Vec<GraphTensor> = session.inputs().iter().map(outlet).collect();
        let graph_outputs: Vec<GraphTensor> = session.outputs().iter().map(outlet).collect();
        let mut problems = Vec::new();
        names_problems(
            TensorKind::Input,
            &signature.inputs,
            &graph_inputs,
            &mut problems,
        );
        names_problems(
            TensorKind::Output,
            &signature.outputs,
            &graph_outputs,
            &mut problems,
        );
        compare(
            TensorKind::Input,
            &signature.inputs,
            &graph_inputs,
            &mut problems,
        );
        compare(
            TensorKind::Output,
            &signature.outputs,
            &graph_outputs,
            &mut problems,
        );
        if !problems.is_empty() {
            return Err(Error::Signature(problems));
        }
        let outputs = signature
            .outputs
            .iter()
            .map(|spec| {
                graph_outputs
                    .iter()
                    .position(|g| g.name == spec.name)
                    .unwrap_or_default()
            })
            .collect();
        // The others only once the first has passed the checks: a wrong package costs one load.
        let mut all = vec![Mutex::new(session)];
        for _ in 1..sessions.max(1) {
            all.push(Mutex::new(commit()?));
        }
        // onnxruntime holds its own copies of the weights now; the temporary copy of a range,
        // which every session is made from, goes only after the last one.
        drop((onnx, copy));
        Ok(OrtEngine {
            sessions: all,
            next: AtomicUsize::new(0),
            input_names: signature.inputs.iter().map(|s| s.name.clone()).collect(),
            outputs,
        })
    }

    /// Runs checked inputs (in the signature's order) and returns the declared outputs.
    pub(crate) fn run(
        &self,
        inputs: &[Tensor],
        signature: &Signature,
    ) -> Result<Vec<Tensor>, Error> {
        let run_error = |e: ort::Error| Error::Run {
            reason: format!("ONNX Runtime: {e}"),
        };
        let mut values: Vec<(&str, ort::session::SessionInputValue<'_>)> =
            Vec::with_capacity(inputs.len());
        for (name, t) in self.input_names.iter().zip(inputs) {
            values.push((name.as_str(), to_ort(t).map_err(run_error)?));
        }
        let mut session = self.session();
        let outputs = session.run(values).map_err(run_error)?;
        signature
            .outputs
            .iter()
            .zip(&self.outputs)
            .map(|(spec, &ix)| {
                let value = &outputs[ix];
                from_ort(value, spec.dtype).map_err(|reason| Error::Output {
                    name: spec.name.clone(),
                    reason,
                })
            })
            .collect()
    }
}

impl OrtEngine {
    /// The sessions the model is loaded into.
    pub(crate) fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// A free session if there is one, looking from a place that moves on with every call;
    /// else a wait for the one there.
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        let count = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        for i in 0..count {
            match self.sessions[(start + i) % count].try_lock() {
                Ok(session) => return session,
                // A call that panicked inside onnxruntime left the session as it was.
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.sessions[start]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A tiffin tensor as an onnxruntime value: numbers are borrowed where they lie, strings are
/// copied into onnxruntime's own string tensor.
fn to_ort(t: &Tensor) -> Result<ort::session::SessionInputValue<'_>, ort::Error> {
    let shape: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
    fn view<T: ort::value::PrimitiveTensorElementType + fmt::Debug + Clone + 'static>(
        shape: Vec<i64>,
        v: &[T],
    ) -> Result<ort::session::SessionInputValue<'_>, ort::Error> {
        Ok(TensorRef::from_array_view((shape, v))?.into())
    }
    match t.data() {
        TensorData::Bool(v) => view(shape, v),
        TensorData::U8(v) => view(shape, v),
        TensorData::U16(v) => view(shape, v),
        TensorData::U32(v) => view(shape, v),
        TensorData::U64(v) => view(shape, v),
        TensorData::I8(v) => view(shape, v),
        TensorData::I16(v) => view(shape, v),
        TensorData::I32(v) => view(shape, v),
        TensorData::I64(v) => view(shape, v),
        TensorData::F16(v) => view(shape, v),
        TensorData::F32(v) => view(shape, v),
        TensorData::F64(v) => view(shape, v),
        TensorData::String(v) => {
            Ok(ort::value::Tensor::from_string_array((shape, v.as_slice()))?.into())
        }
    }
}

/// An onnxruntime output as a tiffin tensor of the declared dtype.
fn from_ort(value: &DynValue, declared: DType) -> Result<Tensor, String> {
    fn values<T: ort::value::PrimitiveTensorElementType + Clone>(
        value: &DynValue,
    ) -> Result<(Vec<usize>, Vec<T>), String> {
        let (shape, data) = value.try_extract_tensor::<T>().map_err(|e| e.to_string())?;
        Ok((dims(shape)?, data.to_vec()))
    }
    fn dims(shape: &[i64]) -> Result<Vec<usize>, String> {
        shape
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("onnxruntime gave the size {d}")))
            .collect()
    }
    let ty = match value.dtype() {
        ValueType::Tensor { ty, .. } => *ty,
        other => {
            return Err(format!(
                "onnxruntime returned a {other}, not a tensor; tiffin returns tensors only"
            ));
        }
    };
    let found = dtype_of(ty);
    if found != Some(declared) {
        return Err(format!(
            "the model returned {}, but {declared} is declared",
            found.map_or_else(|| format!("{ty:?}"), |d| d.to_string())
        ));
    }
    let (shape, data) = match declared {
        DType::Bool => values(value).map(|(s, v)| (s, TensorData::Bool(v)))?,
        DType::U8 => values(value).map(|(s, v)| (s, TensorData::U8(v)))?,
        DType::U16 => values(value).map(|(s, v)| (s, TensorData::U16(v)))?,
        DType::U32 => values(value).map(|(s, v)| (s, TensorData::U32(v)))?,
        DType::U64 => values(value).map(|(s, v)| (s, TensorData::U64(v)))?,
        DType::I8 => values(value).map(|(s, v)| (s, TensorData::I8(v)))?,
        DType::I16 => values(value).map(|(s, v)| (s, TensorData::I16(v)))?,
        DType::I32 => values(value).map(|(s, v)| (s, TensorData::I32(v)))?,
        DType::I64 => values(value).map(|(s, v)| (s, TensorData::I64(v)))?,
        DType::F16 => values(value).map(|(s, v)| (s, TensorData::F16(v)))?,
        DType::F32 => values(value).map(|(s, v)| (s, TensorData::F32(v)))?,
        DType::F64 => values(value).map(|(s, v)| (s, TensorData::F64(v)))?,
        DType::String => {
            let (shape, strings) = value.try_extract_strings().map_err(|e| e.to_string())?;
            (dims(shape)?, TensorData::String(strings))
        }
    };
    Tensor::new(shape, data).map_err(|e| e.to_string())
}

fn dtype_of(ty: TensorElementType) -> Option<DType> {
    Some(match ty {
        TensorElementType::Float16 => DType::F16,
        TensorElementType::Float32 => DType::F32,
        TensorElementType::Float64 => DType::F64,
        TensorElementType::Int8 => DType::I8,
        TensorElementType::Int16 => DType::I16,
        TensorElementType::Int32 => DType::I32,
        TensorElementType::Int64 => DType::I64,
        TensorElementType::Uint8 => DType::U8,
        TensorElementType::Uint16 => DType::U16,
        TensorElementType::Uint32 => DType::U32,
        TensorElementType::Uint64 => DType::U64,
        TensorElementType::Bool => DType::Bool,
        TensorElementType::String => DType::String,
        _ => return None,
    })
}

/// A session input or output in the terms the signature checks use.
fn outlet(o: &ort::value::Outlet) -> GraphTensor {
    match o.dtype() {
        ValueType::Tensor {
            ty,
            shape,
            dimension_symbols,
        } => GraphTensor {
            name: o.name().to_owned(),
            dtype: dtype_of(*ty).map(crate::graph::datum_type),
            shape: Some(
                shape
                    .iter()
                    .zip(dimension_symbols.iter())
                    .map(|(&d, symbol)| match d {
                        d if d >= 1 => GraphDim::Fixed(d as u64),
                        _ if is_identifier(symbol) => GraphDim::Named(symbol.clone()),
                        _ if symbol.is_empty() => GraphDim::Unknown("?".into()),
                        _ => GraphDim::Unknown(symbol.clone()),
                    })
                    .collect(),
            ),
        },
        // Sequences and maps: no dtype tiffin can name, which the comparison reports.
        _ => GraphTensor {
            name: o.name().to_owned(),
            dtype: None,
            shape: None,
        },
    }
}

/// Compares the declared tensors with the session's: dtype, rank and each fixed dim. A dim the
/// signature names may be open in the graph (or named otherwise: onnxruntime gives exporters'
/// names); a dim the signature fixes may be open in the graph (the package serves one size).
/// An input dim the graph fixes must be declared with that size.
fn compare(
    kind: TensorKind,
    declared: &[TensorSpec],
    graph: &[GraphTensor],
    out: &mut Vec<SignatureProblem>,
) {
    for spec in declared {
        let Some(g) = graph.iter().find(|g| g.name == spec.name) else {
            continue;
        };
        let Some(dtype) = g.dtype else {
            out.push(SignatureProblem::DType {
                kind,
                name: spec.name.clone(),
                declared: spec.dtype,
                graph: "a sequence or map (not a tensor)".into(),
            });
            continue;
        };
        if crate::graph::dtype_of(dtype) != Some(spec.dtype) {
            out.push(SignatureProblem::DType {
                kind,
                name: spec.name.clone(),
                declared: spec.dtype,
                graph: crate::graph::dtype_of(dtype)
                    .map_or_else(|| format!("{dtype:?}"), |d| d.to_string()),
            });
        }
        let Some(shape) = &g.shape else { continue };
        if shape.len() != spec.shape.len() {
            out.push(SignatureProblem::Rank {
                kind,
                name: spec.name.clone(),
                declared: spec.shape.clone(),
                graph: format!(
                    "[{}]",
                    shape
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
            continue;
        }
        for (axis, (d, g)) in spec.shape.iter().zip(shape).enumerate() {
            let mismatch = match (d, g) {
                (Dim::Fixed(n), GraphDim::Fixed(m)) => n != m,
                // An output's dim the graph declares open may come out of onnxruntime's shape
                // inference as a number (`Range`, `TopK`, `NonMaxSuppression` with constant
                // arguments); an input's must stay open, or a request of another size fails.
                (Dim::Named(_), GraphDim::Fixed(_)) => kind == TensorKind::Input,
                _ => false,
            };
            if mismatch {
                out.push(SignatureProblem::Dim {
                    kind,
                    name: spec.name.clone(),
                    axis,
                    declared: d.clone(),
                    graph: g.to_string(),
                });
            }
        }
    }
}

/// What ONNX Runtime reads a model from.
enum Given {
    /// A file it reads itself.
    Path(PathBuf),
    /// The model's bytes.
    Bytes(Vec<u8>),
}

/// A range of the file at `path` as ONNX Runtime is to read it: a temporary copy in `dir` by its
/// path (with the copy, to keep until the session is made), or, when no copy can be written
/// there (a read-only or full file system), its bytes, at the cost of holding them while the
/// session reads them.
fn given_span(
    path: &Path,
    offset: u64,
    len: u64,
    dir: &Path,
) -> Result<(Given, Option<TempCopy>), Error> {
    match TempCopy::of(path, offset, len, dir) {
        Ok(copy) => Ok((Given::Path(copy.path()), Some(copy))),
        Err(_) => {
            let bytes = ModelSource::Span {
                path: path.to_owned(),
                offset,
                len,
            }
            .into_bytes()?;
            Ok((Given::Bytes(bytes), None))
        }
    }
}

/// A copy of a range of a file in a temporary file, deleted when dropped: ONNX Runtime reads
/// whole files or bytes in memory only, and from bytes a 1 GiB model peaked at over twice its
/// size (the bytes beside the protobuf decoded from them), where from a file it peaks at 1.3x.
/// The copy is in the system's temporary folder (`TMPDIR`) when loading, and costs the model's
/// size on disk while the session is made. On Linux the file has no name (`O_TMPFILE`, or unlinked at once),
/// so that a process killed while loading leaves nothing behind; ONNX Runtime opens it through
/// `/proc/self/fd`.
struct TempCopy {
    #[cfg(target_os = "linux")]
    file: std::fs::File,
    #[cfg(not(target_os = "linux"))]
    file: tempfile::NamedTempFile,
}

impl TempCopy {
    /// Copies `len` bytes of the file at `path` from `offset` into a temporary file in `dir`.
    fn of(path: &Path, offset: u64, len: u64, dir: &Path) -> std::io::Result<TempCopy> {
        use std::io::{Read, Seek, SeekFrom};
        let mut from = std::fs::File::open(path)?;
        from.seek(SeekFrom::Start(offset))?;
        #[cfg(target_os = "linux")]
        let mut file = tempfile::tempfile_in(dir)?;
        #[cfg(not(target_os = "linux"))]
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        // A file's `take` copies within the kernel where it can (`copy_file_range`).
        let copied = std::io::copy(&mut from.take(len), &mut file)?;
        if copied != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ended after {copied} of the model's {len} bytes",
                    path.display()
                ),
            ));
        }
        Ok(TempCopy { file })
    }

    /// The path ONNX Runtime opens the copy by.
    fn path(&self) -> PathBuf {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.file.path().to_owned()
        }
    }
}

/// The operator rewritten for ONNX Runtime, as its name appears in a file.
const ZIPMAP: &[u8] = b"ZipMap";

/// Whether the file holds `needle`, read in blocks (never whole): a large network is only
/// scanned.
fn file_mentions(path: &Path, needle: &[u8]) -> Result<bool, Error> {
    span_mentions(FileSpan::whole(path)?, path, needle)
}

/// Whether the range `span` of the file at `path` holds `needle`, as [`file_mentions`].
fn span_mentions(mut file: FileSpan, path: &Path, needle: &[u8]) -> Result<bool, Error> {
    use std::io::Read;
    let failed = |e: std::io::Error| Error::Source(format!("cannot read {}: {e}", path.display()));
    let finder = memchr::memmem::Finder::new(needle);
    let keep = needle.len().saturating_sub(1);
    let mut buf = vec![0u8; 1 << 20];
    // The last bytes of a block are kept at the start of the next, so that a match across
    // two blocks is found.
    let mut carried = 0;
    loop {
        let n = file.read(&mut buf[carried..]).map_err(failed)?;
        if n == 0 {
            return Ok(false);
        }
        let end = carried + n;
        if finder.find(&buf[..end]).is_some() {
            return Ok(true);
        }
        let tail = keep.min(end);
        buf.copy_within(end - tail..end, 0);
        carried = tail;
    }
}

/// The model with every `ZipMap` (ai.onnx.ml) replaced by an identity on its probability
/// tensor: tiffin returns a classifier's probabilities as the `[N, C]` tensor (the class labels
/// live in the signature), where onnxruntime would return a sequence of maps. The same reading
/// as tiffin's tract operator, so that both runtimes answer alike. Files without the word
/// are passed through untouched (a large network is never decoded here).
fn without_zipmap(bytes: Vec<u8>) -> Result<Vec<u8>, Error> {
    use prost::Message;
    if memchr::memmem::find(&bytes, ZIPMAP).is_none() {
        return Ok(bytes);
    }
    let parse_error = |reason: String| Error::Parse {
        format: tiffin_manifest::ModelFormat::Onnx,
        reason,
    };
    let mut proto = pb::ModelProto::decode(&bytes[..]).map_err(|e| parse_error(e.to_string()))?;
    let Some(graph) = proto.graph.as_mut() else {
        return Err(parse_error("the ONNX file holds no graph".into()));
    };
    let mut replaced: BTreeMap<String, ()> = BTreeMap::new();
    for node in &mut graph.node {
        if node.op_type == "ZipMap" && node.domain == "ai.onnx.ml" {
            node.op_type = "Identity".into();
            node.domain = String::new();
            node.attribute.clear();
            for output in &node.output {
                replaced.insert(output.clone(), ());
            }
        }
    }
    if replaced.is_empty() {
        return Ok(bytes);
    }
    // The probabilities are `[N, C]`, sizes left open. Declared with no shape at all, an output
    // comes out of the session as rank 0 when onnxruntime cannot infer it (a LinearClassifier
    // behind a Normalizer), and the signature's `[batch, C]` would be refused.
    let open = || pb::tensor_shape_proto::Dimension {
        denotation: String::new(),
        value: None,
    };
    for output in &mut graph.output {
        if replaced.contains_key(&output.name) {
            output.r#type = Some(pb::TypeProto {
                denotation: String::new(),
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: pb::tensor_proto::DataType::Float as i32,
                    shape: Some(pb::TensorShapeProto {
                        dim: vec![open(), open()],
                    }),
                })),
            });
        }
    }
    Ok(proto.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ZipMap's output becomes a tensor of rank 2 with open sizes: with no shape, onnxruntime
    /// reports it as rank 0 when it cannot infer the probabilities' shape.
    #[test]
    fn a_zipmap_output_is_declared_as_a_matrix() {
        use prost::Message;
        let path = crate::testutil::fixture("breast_cancer_scaled").join("model.onnx");
        let rewritten = without_zipmap(std::fs::read(path).unwrap()).unwrap();
        let proto = pb::ModelProto::decode(&rewritten[..]).unwrap();
        let graph = proto.graph.unwrap();
        assert!(graph.node.iter().all(|n| n.op_type != "ZipMap"));
        let probabilities = graph
            .output
            .iter()
            .find(|o| o.name == "output_probability")
            .unwrap();
        let Some(pb::type_proto::Value::TensorType(tensor)) =
            probabilities.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            panic!("not a tensor: {probabilities:?}");
        };
        assert_eq!(tensor.elem_type, pb::tensor_proto::DataType::Float as i32);
        let dims = &tensor.shape.as_ref().unwrap().dim;
        assert_eq!(dims.len(), 2);
        assert!(dims.iter().all(|d| d.value.is_none()));
    }

    /// A range is given as a temporary copy holding its bytes, gone once dropped; where no
    /// copy can be written, as its bytes; a range past the end of the file is refused either way.
    #[test]
    fn a_range_is_given_as_a_copy_or_as_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive");
        let inside: Vec<u8> = (0..100u8).collect();
        std::fs::write(&path, [&[1; 50][..], &inside, &[2; 50]].concat()).unwrap();
        let (given, copy) = given_span(&path, 50, 100, dir.path()).unwrap();
        let Given::Path(copied) = given else {
            panic!("no copy was made");
        };
        assert_eq!(std::fs::read(&copied).unwrap(), inside);
        assert!(copy.is_some());
        let names = || -> Vec<std::ffi::OsString> {
            let entries = std::fs::read_dir(dir.path()).unwrap();
            entries.map(|e| e.unwrap().file_name()).collect()
        };
        // On Linux the copy never has a name in the folder; elsewhere it has until dropped.
        if cfg!(target_os = "linux") {
            assert_eq!(names(), ["archive"]);
        }
        drop(copy);
        assert_eq!(names(), ["archive"], "the copy outlived its owner");
        // A file where the folder should be: nothing can be created in it.
        let (given, copy) = given_span(&path, 50, 100, &path).unwrap();
        assert!(copy.is_none());
        let Given::Bytes(bytes) = given else {
            panic!("a copy was made in a file");
        };
        assert_eq!(bytes, inside);
        for dir in [dir.path(), path.as_path()] {
            let Err(Error::Source(e)) = given_span(&path, 150, 100, dir) else {
                panic!("a range past the end was given");
            };
            assert!(e.contains("verify it again"), "{e}");
        }
    }

    /// The word is found wherever it lies, across two blocks too, and not where it is not.
    #[test]
    fn a_file_is_searched_in_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        for at in [0, (1 << 20) - 3, (1 << 20) + 5, 3 << 20] {
            let mut bytes = vec![7u8; (3 << 20) + 100];
            bytes[at..at + ZIPMAP.len()].copy_from_slice(ZIPMAP);
            std::fs::write(&path, &bytes).unwrap();
            assert!(file_mentions(&path, ZIPMAP).unwrap(), "at {at}");
        }
        std::fs::write(&path, b"ZipMa").unwrap();
        assert!(!file_mentions(&path, ZIPMAP).unwrap());
        assert!(file_mentions(&dir.path().join("missing"), ZIPMAP).is_err());
    }
}
