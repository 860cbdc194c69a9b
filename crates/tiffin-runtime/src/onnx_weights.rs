//! Reading an ONNX file with its large weights left out of the protobuf: each one is read from
//! the file straight into the tract tensor that holds it, once.
//!
//! Decoding the whole `ModelProto` copies every initializer's `raw_data` out of the file's bytes,
//! and tract-onnx then copies it again into a tensor while the protobuf is alive: a 1 GiB model
//! peaked at over twice its size before typing began. Here the file is walked at the wire level
//! first (a varint and length-delimited walk over `ModelProto.graph` = 7,
//! `GraphProto.initializer` = 5, `TensorProto.raw_data` = 9); each large initializer of the main
//! graph is recorded as a span of the file and dropped from a stripped copy of the bytes, which
//! prost then decodes. The weights are read into tensors from their spans and given to tract as
//! constants where the graph uses them (see `graph::fill_weights`).
//!
//! Anything the walk does not recognise (a malformed or truncated file, a graph field given
//! twice, an initializer with external data or an unusual layout) leaves the file to the plain
//! decode, which then behaves, and fails, exactly as before.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::{DatumType, Tensor};

/// Initializers whose `raw_data` is at least this long are read straight into tensors; smaller
/// ones stay in the protobuf, where the extra copy costs little.
pub(crate) const MIN_STRIPPED: u64 = 1 << 20;

/// The most bytes of fields other than `raw_data` a taken-apart initializer may have (its name,
/// dims, dtype): one with more (a large `float_data`) stays in the protobuf whole.
const MAX_HEADER: usize = 64 << 10;

/// `ModelProto.graph`.
const MODEL_GRAPH: u64 = 7;
/// `GraphProto.initializer`.
const GRAPH_INITIALIZER: u64 = 5;
/// `TensorProto.raw_data`.
const TENSOR_RAW_DATA: u64 = 9;

const WIRE_VARINT: u64 = 0;
const WIRE_FIXED64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_FIXED32: u64 = 5;

/// An initializer of the main graph, read from the file into a tensor.
#[derive(Debug, Clone)]
pub(crate) struct Weight {
    /// The initializer's name, which the graph's nodes use it by.
    pub(crate) name: String,
    pub(crate) tensor: Arc<Tensor>,
}

/// An ONNX model as parsed: the protobuf without its large initializers, and those as tensors.
#[derive(Debug, Clone)]
pub(crate) struct OnnxModel {
    pub(crate) proto: pb::ModelProto,
    /// The initializers taken out of `proto`; they belong to its main graph.
    pub(crate) weights: Vec<Weight>,
}

impl OnnxModel {
    /// The names of every initializer of the main graph, the ones left in the protobuf and the
    /// ones read into tensors.
    pub(crate) fn initializer_names(&self) -> HashSet<&str> {
        let kept = self.proto.graph.iter().flat_map(|g| &g.initializer);
        kept.map(|t| t.name.as_str())
            .chain(self.weights.iter().map(|w| w.name.as_str()))
            .collect()
    }

    /// The bytes of the initializers of the main graph.
    pub(crate) fn initializer_bytes(&self) -> usize {
        let kept: usize = self.proto.graph.as_ref().map_or(0, |g| {
            g.initializer
                .iter()
                .map(|t| {
                    t.raw_data.len()
                        + 4 * (t.float_data.len() + t.int32_data.len())
                        + 8 * (t.double_data.len() + t.int64_data.len() + t.uint64_data.len())
                })
                .sum()
        });
        kept + self
            .weights
            .iter()
            .map(|w| w.tensor.len() * w.tensor.datum_type().size_of())
            .sum::<usize>()
    }
}

/// Why a read of the stripped model failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The stripped protobuf did not decode.
    Decode(prost::DecodeError),
    /// Reading the file failed, or it ended inside a weight.
    Io(io::Error),
}

/// Where one large initializer lies in the file, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    name: String,
    dtype: DatumType,
    shape: Vec<usize>,
    /// Where its `raw_data` starts in the file, and how long it is.
    offset: u64,
    len: u64,
}

/// What the walk found: the graph field, the initializers to leave out of it, and their data.
#[derive(Debug, Default)]
struct Plan {
    /// The `ModelProto.graph` field: where its key starts, where its content starts and ends.
    graph: Option<(u64, u64, u64)>,
    /// The initializer fields to leave out of the graph, key to end of value, in file order.
    dropped: Vec<(u64, u64)>,
    spans: Vec<Span>,
}

/// Reads an ONNX model from `reader` (`len` bytes long) with every initializer of at least
/// `min` bytes of `raw_data` read into a tensor instead of the protobuf. `None` when there is no
/// such initializer, or the file is not laid out as the walk expects: the caller then decodes it
/// whole, as tract would.
pub(crate) fn read_stripped<R: Read + Seek>(
    reader: R,
    len: u64,
    min: u64,
) -> Result<Option<OnnxModel>, ReadError> {
    let mut wire = Wire {
        reader: BufReader::with_capacity(64 << 10, reader),
        pos: 0,
    };
    // From the start, wherever the reader was left.
    wire.seek_to(0).map_err(ReadError::Io)?;
    // A file the walk cannot follow is left to prost, whose error then names the problem.
    let Ok(plan) = plan(&mut wire, len, min) else {
        return Ok(None);
    };
    let Some(graph) = plan.graph.filter(|_| !plan.spans.is_empty()) else {
        return Ok(None);
    };
    let bytes = stripped_bytes(&mut wire, len, graph, &plan.dropped).map_err(ReadError::Io)?;
    let proto = pb::ModelProto::decode(&bytes[..]).map_err(ReadError::Decode)?;
    drop(bytes);
    // tract keeps the last of initializers that share a name; rather than mimic that, such a
    // file is read the plain way.
    let mut names: HashSet<&str> = HashSet::new();
    let kept = proto.graph.iter().flat_map(|g| &g.initializer);
    let all = kept
        .map(|t| t.name.as_str())
        .chain(plan.spans.iter().map(|s| s.name.as_str()));
    for name in all {
        if !names.insert(name) {
            return Ok(None);
        }
    }
    let mut weights = Vec::with_capacity(plan.spans.len());
    for span in &plan.spans {
        let tensor = read_weight(&mut wire.reader, span).map_err(ReadError::Io)?;
        weights.push(Weight {
            name: span.name.clone(),
            tensor: Arc::new(tensor),
        });
    }
    Ok(Some(OnnxModel { proto, weights }))
}

/// The walk gave up: the bytes are not what it expects (or could not be read).
struct Unfollowed;

impl From<io::Error> for Unfollowed {
    fn from(_: io::Error) -> Unfollowed {
        Unfollowed
    }
}

/// A buffered reader that knows its position, for walking protobuf fields.
struct Wire<R> {
    reader: BufReader<R>,
    pos: u64,
}

impl<R: Read + Seek> Wire<R> {
    fn byte(&mut self) -> Result<u8, Unfollowed> {
        let buf = self.reader.fill_buf()?;
        let &b = buf.first().ok_or(Unfollowed)?;
        self.reader.consume(1);
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, Unfollowed> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Unfollowed)
    }

    /// Skips `n` bytes, which must end at or before `end`.
    fn skip(&mut self, n: u64, end: u64) -> Result<(), Unfollowed> {
        let to = self.pos.checked_add(n).filter(|&to| to <= end);
        let to = to.ok_or(Unfollowed)?;
        let step = i64::try_from(n).map_err(|_| Unfollowed)?;
        self.reader.seek_relative(step)?;
        self.pos = to;
        Ok(())
    }

    /// Reads `n` bytes, which must end at or before `end`, onto `out`.
    fn take(&mut self, n: u64, end: u64, out: &mut Vec<u8>) -> Result<(), Unfollowed> {
        if self.pos.checked_add(n).is_none_or(|to| to > end) {
            return Err(Unfollowed);
        }
        let read = (&mut self.reader).take(n).read_to_end(out)?;
        if read as u64 != n {
            return Err(Unfollowed);
        }
        self.pos += n;
        Ok(())
    }

    /// A field's key: its number and wire type.
    fn key(&mut self) -> Result<(u64, u64), Unfollowed> {
        let key = self.varint()?;
        Ok((key >> 3, key & 7))
    }

    /// Skips the value of a field of this wire type, which must end at or before `end`.
    fn skip_value(&mut self, wire: u64, end: u64) -> Result<(), Unfollowed> {
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => self.skip(8, end),
            WIRE_FIXED32 => self.skip(4, end),
            WIRE_LEN => {
                let n = self.varint()?;
                self.skip(n, end)
            }
            // Groups (3, 4) are long deprecated, and 6 and 7 do not exist.
            _ => Err(Unfollowed),
        }
    }

    /// Copies the value of a field of this wire type onto `out`, with its key (`key`, already
    /// read) in front; `false`, with nothing copied, when `out` would then pass `max` bytes.
    fn copy_field(
        &mut self,
        key: (u64, u64),
        end: u64,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<bool, Unfollowed> {
        // A key, a varint value or a length is at most 10 bytes.
        let room = |n: u64| (out.len() as u64).saturating_add(n) <= max as u64;
        let fixed = |n: u64, wire: &mut Self, out: &mut Vec<u8>| {
            put_varint(out, key.0 << 3 | key.1);
            wire.take(n, end, out)
        };
        match key.1 {
            WIRE_VARINT if room(20) => {
                let v = self.varint()?;
                put_varint(out, key.0 << 3 | key.1);
                put_varint(out, v);
            }
            WIRE_FIXED64 if room(18) => fixed(8, self, out)?,
            WIRE_FIXED32 if room(14) => fixed(4, self, out)?,
            WIRE_LEN => {
                let n = self.varint()?;
                if !room(n.saturating_add(20)) {
                    return Ok(false);
                }
                put_varint(out, key.0 << 3 | key.1);
                put_varint(out, n);
                self.take(n, end, out)?;
            }
            WIRE_VARINT | WIRE_FIXED64 | WIRE_FIXED32 => return Ok(false),
            _ => return Err(Unfollowed),
        }
        Ok(true)
    }

    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.reader.seek(SeekFrom::Start(pos))?;
        self.pos = pos;
        Ok(())
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Walks the top level of the `ModelProto` and its graph.
fn plan<R: Read + Seek>(wire: &mut Wire<R>, len: u64, min: u64) -> Result<Plan, Unfollowed> {
    let mut plan = Plan::default();
    while wire.pos < len {
        let start = wire.pos;
        let (field, kind) = wire.key()?;
        if field == MODEL_GRAPH && kind == WIRE_LEN {
            // prost merges a repeated message field; the walk does not.
            if plan.graph.is_some() {
                return Err(Unfollowed);
            }
            let n = wire.varint()?;
            let content = wire.pos;
            let end = content.checked_add(n).filter(|&e| e <= len);
            let end = end.ok_or(Unfollowed)?;
            walk_graph(wire, end, min, &mut plan)?;
            plan.graph = Some((start, content, end));
        } else {
            wire.skip_value(kind, len)?;
        }
    }
    Ok(plan)
}

/// Walks the fields of the main graph, which ends at `end`, recording the large initializers.
fn walk_graph<R: Read + Seek>(
    wire: &mut Wire<R>,
    end: u64,
    min: u64,
    plan: &mut Plan,
) -> Result<(), Unfollowed> {
    while wire.pos < end {
        let start = wire.pos;
        let (field, kind) = wire.key()?;
        if field != GRAPH_INITIALIZER || kind != WIRE_LEN {
            wire.skip_value(kind, end)?;
            continue;
        }
        let n = wire.varint()?;
        let content = wire.pos;
        let tensor_end = content.checked_add(n).filter(|&e| e <= end);
        let tensor_end = tensor_end.ok_or(Unfollowed)?;
        if n >= min
            && let Some(span) = walk_tensor(wire, tensor_end, min)?
        {
            plan.dropped.push((start, tensor_end));
            plan.spans.push(span);
        }
        // A small initializer, or one kept whole, stays in the graph: skipped (by a relative
        // seek, which keeps the reader's buffer when it can).
        wire.skip(tensor_end - wire.pos, tensor_end)?;
    }
    if wire.pos == end {
        Ok(())
    } else {
        Err(Unfollowed)
    }
}

/// Walks one `TensorProto` ending at `end`: its span when its data is `raw_data` of at least
/// `min` bytes that tract reads as plain bytes, `None` when it is to stay in the protobuf.
fn walk_tensor<R: Read + Seek>(
    wire: &mut Wire<R>,
    end: u64,
    min: u64,
) -> Result<Option<Span>, Unfollowed> {
    // Every field but `raw_data`, re-encoded, for prost to decode; bounded, since a tensor
    // whose other fields are large (`float_data`) is not one to take apart.
    let mut header = Vec::new();
    let mut raw = None;
    while wire.pos < end {
        let key = wire.key()?;
        if key == (TENSOR_RAW_DATA, WIRE_LEN) {
            let n = wire.varint()?;
            if raw.is_some() {
                return Ok(None);
            }
            raw = Some((wire.pos, n));
            wire.skip(n, end)?;
        } else {
            // Checked before the field is read, so that a large one is never copied here.
            if !wire.copy_field(key, end, &mut header, MAX_HEADER)? {
                return Ok(None);
            }
        }
    }
    let Some((offset, len)) = raw.filter(|&(_, n)| n >= min) else {
        return Ok(None);
    };
    let Ok(tensor) = pb::TensorProto::decode(&header[..]) else {
        return Ok(None);
    };
    let external = tensor.data_location.is_some_and(|l| l != 0) || !tensor.external_data.is_empty();
    let Some(dtype) = raw_dtype(tensor.data_type) else {
        return Ok(None);
    };
    let Ok(shape) = tensor
        .dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<usize>, _>>()
    else {
        return Ok(None);
    };
    let size = shape
        .iter()
        .try_fold(dtype.size_of(), |acc, &d| acc.checked_mul(d));
    // Anything tract would read otherwise, or refuse, is left for it to do so.
    if external || tensor.name.is_empty() || size.is_none_or(|s| s as u64 != len) {
        return Ok(None);
    }
    Ok(Some(Span {
        name: tensor.name,
        dtype,
        shape,
        offset,
        len,
    }))
}

/// The dtypes tract-onnx reads from `raw_data` as their bytes, by ONNX data type. Booleans are
/// left out (tract maps each byte to 0 or 1), as are the types tract does not read at all.
fn raw_dtype(data_type: i32) -> Option<DatumType> {
    use pb::tensor_proto::DataType;
    Some(match DataType::try_from(data_type).ok()? {
        DataType::Uint8 => DatumType::U8,
        DataType::Uint16 => DatumType::U16,
        DataType::Uint32 => DatumType::U32,
        DataType::Uint64 => DatumType::U64,
        DataType::Int8 => DatumType::I8,
        DataType::Int16 => DatumType::I16,
        DataType::Int32 => DatumType::I32,
        DataType::Int64 => DatumType::I64,
        DataType::Float16 => DatumType::F16,
        DataType::Float => DatumType::F32,
        DataType::Double => DatumType::F64,
        _ => return None,
    })
}

/// The file's bytes without the dropped initializers, the graph's length rewritten.
fn stripped_bytes<R: Read + Seek>(
    wire: &mut Wire<R>,
    len: u64,
    (key, content, end): (u64, u64, u64),
    dropped: &[(u64, u64)],
) -> io::Result<Vec<u8>> {
    let removed: u64 = dropped.iter().map(|(a, b)| b - a).sum();
    let graph_len = end - content - removed;
    let mut out = Vec::with_capacity(usize::try_from(len - removed).unwrap_or(0));
    copy_range(wire, 0, key, &mut out)?;
    put_varint(&mut out, MODEL_GRAPH << 3 | WIRE_LEN);
    put_varint(&mut out, graph_len);
    let mut from = content;
    for &(a, b) in dropped {
        copy_range(wire, from, a, &mut out)?;
        from = b;
    }
    copy_range(wire, from, end, &mut out)?;
    copy_range(wire, end, len, &mut out)?;
    Ok(out)
}

fn copy_range<R: Read + Seek>(
    wire: &mut Wire<R>,
    from: u64,
    to: u64,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    wire.seek_to(from)?;
    let n = to - from;
    let read = (&mut wire.reader).take(n).read_to_end(out)?;
    if read as u64 != n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file ended early (was it changed while read?)",
        ));
    }
    Ok(())
}

/// Reads one weight from its span straight into a tensor's memory. The bytes are taken as they
/// are, as tract-onnx takes `raw_data` (ONNX stores them little-endian).
fn read_weight<R: Read + Seek>(reader: &mut BufReader<R>, span: &Span) -> io::Result<Tensor> {
    let mut tensor = Tensor::zero_dt(span.dtype, &span.shape)
        .map_err(|e| io::Error::other(format!("initializer `{}`: {e}", span.name)))?;
    reader.seek(SeekFrom::Start(span.offset))?;
    reader.read_exact(tensor.as_bytes_mut()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "initializer `{}` ({} bytes at offset {}): {e}",
                span.name, span.len, span.offset
            ),
        )
    })?;
    Ok(tensor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::tensor_proto::DataType;
    use std::io::Cursor;

    /// The size from which the tests take initializers apart.
    const MIN: u64 = 1024;

    fn raw(name: &str, dims: &[i64], data_type: DataType, raw_data: Vec<u8>) -> pb::TensorProto {
        pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: data_type as i32,
            raw_data,
            ..Default::default()
        }
    }

    /// `n` float32 values 0, 1, 2, ... as `raw_data`.
    fn floats(n: usize) -> Vec<u8> {
        (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
    }

    fn model(initializer: Vec<pb::TensorProto>, node: Vec<pb::NodeProto>) -> pb::ModelProto {
        pb::ModelProto {
            ir_version: 8,
            producer_name: "tiffin tests".into(),
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            metadata_props: vec![pb::StringStringEntryProto {
                key: "k".into(),
                value: "v".into(),
            }],
            graph: Some(pb::GraphProto {
                name: "g".into(),
                node,
                initializer,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn read(bytes: &[u8]) -> Option<OnnxModel> {
        read_stripped(Cursor::new(bytes), bytes.len() as u64, MIN).unwrap()
    }

    /// The protobuf with the weights put back as the initializers they were, sorted by name.
    fn reassembled(model: &OnnxModel) -> pb::ModelProto {
        let mut proto = model.proto.clone();
        let graph = proto.graph.as_mut().unwrap();
        for w in &model.weights {
            let onnx_type = match w.tensor.datum_type() {
                DatumType::F32 => DataType::Float,
                DatumType::I64 => DataType::Int64,
                other => panic!("no test uses {other:?}"),
            };
            let dims = w
                .tensor
                .shape()
                .iter()
                .map(|&d| d as i64)
                .collect::<Vec<_>>();
            graph
                .initializer
                .push(raw(&w.name, &dims, onnx_type, w.tensor.as_bytes().to_vec()));
        }
        graph.initializer.sort_by(|a, b| a.name.cmp(&b.name));
        proto
    }

    fn sorted(mut proto: pb::ModelProto) -> pb::ModelProto {
        let graph = proto.graph.as_mut().unwrap();
        graph.initializer.sort_by(|a, b| a.name.cmp(&b.name));
        proto
    }

    /// Large initializers leave the protobuf for tensors holding the same values; everything
    /// else (small initializers, fields before and after the graph) is decoded as it was.
    #[test]
    fn large_initializers_become_tensors() {
        let original = model(
            vec![
                raw("a", &[16, 16], DataType::Float, floats(256)),
                raw("small", &[2], DataType::Float, floats(2)),
                raw("b", &[300], DataType::Int64, vec![7; 2400]),
            ],
            Vec::new(),
        );
        let bytes = original.encode_to_vec();
        let stripped = read(&bytes).expect("two initializers to take apart");
        let names: Vec<&str> = stripped.weights.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let kept = &stripped.proto.graph.as_ref().unwrap().initializer;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].name, "small");
        let a = &stripped.weights[0].tensor;
        assert_eq!(a.shape(), &[16, 16]);
        assert_eq!(a.as_bytes()[255 * 4..], 255f32.to_le_bytes());
        assert_eq!(reassembled(&stripped), sorted(original.clone()));
        let whole = OnnxModel {
            proto: original,
            weights: Vec::new(),
        };
        assert_eq!(stripped.initializer_bytes(), whole.initializer_bytes());
        assert_eq!(stripped.initializer_names(), whole.initializer_names());
    }

    /// A file on disk reads as its bytes do.
    #[test]
    fn files_read_as_their_bytes() {
        let bytes = model(
            vec![raw("w", &[32, 32], DataType::Float, floats(1024))],
            Vec::new(),
        )
        .encode_to_vec();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        let from_file = read_stripped(file, bytes.len() as u64, MIN)
            .unwrap()
            .unwrap();
        let from_bytes = read(&bytes).unwrap();
        assert_eq!(from_file.proto, from_bytes.proto);
        assert_eq!(from_file.weights[0].tensor, from_bytes.weights[0].tensor);
    }

    /// Initializers tract reads some other way, or refuses, stay in the protobuf for it to do
    /// so: booleans, external data, values not in `raw_data`, a size that does not match the
    /// dims, negative dims, no name, `raw_data` given twice; and one with a large field besides.
    #[test]
    fn initializers_tract_reads_otherwise_stay() {
        let big = floats(1024);
        let mut external = raw("external", &[1024], DataType::Float, big.clone());
        external.data_location = Some(pb::tensor_proto::DataLocation::External as i32);
        let mut listed = raw("listed", &[1024], DataType::Float, big.clone());
        listed.external_data = vec![pb::StringStringEntryProto {
            key: "location".into(),
            value: "w.bin".into(),
        }];
        let float_data = pb::TensorProto {
            name: "float_data".into(),
            dims: vec![1024],
            data_type: DataType::Float as i32,
            float_data: vec![1.0; 1024],
            ..Default::default()
        };
        // Other fields larger than a header may be (tract would read `raw_data` here, but
        // the walk never copies a large field to find out).
        let mut both = raw("both", &[1024], DataType::Float, big.clone());
        both.float_data = vec![0.5; MAX_HEADER / 4 + 1];
        let initializers = vec![
            both,
            raw("bool", &[4096], DataType::Bool, vec![1; 4096]),
            external,
            listed,
            float_data,
            raw("short", &[1025], DataType::Float, big.clone()),
            raw("negative", &[-1024], DataType::Float, big.clone()),
            raw("", &[1024], DataType::Float, big.clone()),
            raw("string", &[1024], DataType::String, big.clone()),
        ];
        for t in initializers {
            let name = t.name.clone();
            let bytes = model(vec![t], Vec::new()).encode_to_vec();
            assert!(read(&bytes).is_none(), "{name} was taken apart");
        }
        // `raw_data` twice: prost keeps the last, so the walk leaves the tensor to it.
        let mut bytes = model(
            vec![raw("twice", &[1024], DataType::Float, big.clone())],
            Vec::new(),
        )
        .encode_to_vec();
        let mut twice = Vec::new();
        put_varint(&mut twice, TENSOR_RAW_DATA << 3 | WIRE_LEN);
        put_varint(&mut twice, big.len() as u64);
        twice.extend_from_slice(&big);
        let graph = pb::GraphProto {
            name: "g".into(),
            initializer: vec![raw("twice", &[1024], DataType::Float, big)],
            ..Default::default()
        };
        let mut tensor = graph.initializer[0].encode_to_vec();
        tensor.extend_from_slice(&twice);
        let mut graph_bytes = Vec::new();
        put_varint(&mut graph_bytes, GRAPH_INITIALIZER << 3 | WIRE_LEN);
        put_varint(&mut graph_bytes, tensor.len() as u64);
        graph_bytes.extend_from_slice(&tensor);
        bytes.clear();
        put_varint(&mut bytes, MODEL_GRAPH << 3 | WIRE_LEN);
        put_varint(&mut bytes, graph_bytes.len() as u64);
        bytes.extend_from_slice(&graph_bytes);
        assert!(pb::ModelProto::decode(&bytes[..]).is_ok());
        assert!(
            read(&bytes).is_none(),
            "a tensor with raw_data twice was taken apart"
        );
    }

    /// Only the main graph's initializers are taken apart: a subgraph's (an `If` branch's)
    /// travel inside its node, untouched.
    #[test]
    fn subgraph_initializers_stay() {
        let branch = pb::GraphProto {
            name: "then".into(),
            initializer: vec![raw("inner", &[1024], DataType::Float, floats(1024))],
            ..Default::default()
        };
        let node = pb::NodeProto {
            op_type: "If".into(),
            input: vec!["cond".into()],
            output: vec!["y".into()],
            attribute: vec![pb::AttributeProto {
                name: "then_branch".into(),
                r#type: pb::attribute_proto::AttributeType::Graph as i32,
                g: Some(branch),
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = model(Vec::new(), vec![node.clone()]).encode_to_vec();
        assert!(read(&bytes).is_none());
        let outer = raw("outer", &[1024], DataType::Float, floats(1024));
        let bytes = model(vec![outer], vec![node.clone()]).encode_to_vec();
        let stripped = read(&bytes).unwrap();
        assert_eq!(stripped.weights.len(), 1);
        assert_eq!(stripped.proto.graph.unwrap().node, vec![node]);
    }

    /// Initializers that share a name are left to tract, which keeps one of them.
    #[test]
    fn shared_names_are_read_whole() {
        for other in [floats(1024), floats(2)] {
            let bytes = model(
                vec![
                    raw("w", &[1024], DataType::Float, floats(1024)),
                    raw("w", &[other.len() as i64 / 4], DataType::Float, other),
                ],
                Vec::new(),
            )
            .encode_to_vec();
            assert!(read(&bytes).is_none());
        }
    }

    /// A file cut anywhere never panics the walk: it is left to prost (`None`), refused, or,
    /// cut where a field ends, read as prost reads it.
    #[test]
    fn cut_files_are_refused_or_read_as_prost_reads_them() {
        let bytes = model(
            vec![
                raw("a", &[16, 16], DataType::Float, floats(256)),
                raw("small", &[2], DataType::Float, floats(2)),
                raw("b", &[512], DataType::Float, floats(512)),
            ],
            vec![pb::NodeProto {
                op_type: "Add".into(),
                input: vec!["a".into(), "b".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
        )
        .encode_to_vec();
        let mut taken_apart = 0;
        for cut in 0..bytes.len() {
            let cut = &bytes[..cut];
            let whole = pb::ModelProto::decode(cut);
            match read_stripped(Cursor::new(cut), cut.len() as u64, MIN) {
                Ok(Some(stripped)) => {
                    taken_apart += 1;
                    let whole = whole.expect("prost refuses what the walk read");
                    assert_eq!(reassembled(&stripped), sorted(whole));
                }
                Ok(None) => {}
                Err(ReadError::Decode(_)) => assert!(whole.is_err()),
                Err(ReadError::Io(e)) => panic!("a cut slice failed to read: {e}"),
            }
        }
        assert!(taken_apart > 0);
    }
}
