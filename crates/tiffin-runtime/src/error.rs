//! The runtime's errors: loading a model, checking its signature against the graph, checking the
//! inputs of a call, running it and converting it to NNEF. Each message names the tensor, the
//! position and what was expected, and never echoes tensor data.

use std::fmt;

use tiffin_manifest::{DType, Dim, ModelFormat};

/// Why a model could not be loaded, run or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model file (or folder) could not be read or parsed as the declared format.
    #[error("cannot read the {format} model: {reason}")]
    Parse {
        /// The format it was read as.
        format: ModelFormat,
        /// What tract reported.
        reason: String,
    },
    /// The source does not fit the format, e.g. an ONNX model given as a folder.
    #[error("{0}")]
    Source(String),
    /// The graph uses operators that neither tract nor tiffin implements.
    #[error(
        "the model uses {} that tract 0.23 and tiffin do not implement: {}; export the model without {} or with operators tract supports",
        if ops.len() == 1 { "an operator" } else { "operators" },
        ops.join(", "),
        if ops.len() == 1 { "it" } else { "them" }
    )]
    UnsupportedOperators {
        /// Operator names, each with the first node that uses it, e.g. `ZipMap (node ZipMap)`.
        ops: Vec<String>,
    },
    /// The declared signature does not match the graph.
    #[error("the declared signature does not match the model: {}", SignatureProblems(.0))]
    Signature(Vec<SignatureProblem>),
    /// tract could not work out the types and shapes of the graph from the declared inputs.
    #[error("cannot type the model's graph from the declared inputs: {reason}")]
    Typing {
        /// What tract reported.
        reason: String,
    },
    /// tract could not optimize the typed graph into a plan.
    #[error("cannot optimize the model: {reason}")]
    Optimize {
        /// What tract reported.
        reason: String,
    },
    /// A call gave the wrong number of input tensors.
    #[error("the model takes {expected} input{} ({}), but {found} {} given", plural(*.expected), names.join(", "), if *.found == 1 { "was" } else { "were" })]
    InputCount {
        /// Inputs the signature declares.
        expected: usize,
        /// Tensors given.
        found: usize,
        /// The declared input names, in order.
        names: Vec<String>,
    },
    /// An input tensor has the wrong dtype; tiffin never casts silently.
    #[error(
        "input `{name}` (position {position}) must be {expected}, but a {found} tensor was given; convert it to {expected} first"
    )]
    InputDType {
        /// The input's name.
        name: String,
        /// Its position among the inputs, from 0.
        position: usize,
        /// The declared dtype.
        expected: DType,
        /// The dtype given.
        found: DType,
    },
    /// An input tensor has the wrong number of dimensions.
    #[error("input `{name}` (position {position}) must have {} dimension{} {}, but a tensor of shape {found:?} was given", expected.len(), plural(expected.len()), DimList(expected))]
    InputRank {
        /// The input's name.
        name: String,
        /// Its position among the inputs, from 0.
        position: usize,
        /// The declared shape.
        expected: Vec<Dim>,
        /// The shape given.
        found: Vec<usize>,
    },
    /// A fixed dimension of an input has the wrong size.
    #[error(
        "input `{name}` (position {position}) must have size {expected} on axis {axis} (shape {}), but a tensor of shape {found:?} was given",
        DimList(shape)
    )]
    InputDim {
        /// The input's name.
        name: String,
        /// Its position among the inputs, from 0.
        position: usize,
        /// The axis, from 0.
        axis: usize,
        /// The declared size.
        expected: u64,
        /// The declared shape.
        shape: Vec<Dim>,
        /// The shape given.
        found: Vec<usize>,
    },
    /// Two inputs give different sizes to the same named dimension.
    #[error(
        "dimension `{dim}` is {first_size} in input `{first}` (axis {first_axis}) but {size} in input `{name}` (axis {axis}); inputs that share a dimension name must agree on its size"
    )]
    InconsistentDim {
        /// The dimension's name, e.g. `batch`.
        dim: String,
        /// The input that set its size first.
        first: String,
        /// The axis of `first`.
        first_axis: usize,
        /// The size `first` gave it.
        first_size: usize,
        /// The input that disagrees.
        name: String,
        /// The axis of `name`.
        axis: usize,
        /// The size `name` gave it.
        size: usize,
    },
    /// An input has a dimension of size 0 and the model cannot return an empty answer for it.
    #[error(
        "input `{name}` has size 0 on axis {axis} (`{dim}`) and the model's outputs would not all be empty; send at least one element on that axis"
    )]
    EmptyInput {
        /// The input's name.
        name: String,
        /// The axis, from 0.
        axis: usize,
        /// The dimension as declared, e.g. `batch`.
        dim: Dim,
    },
    /// [`Model::prepare`](crate::Model::prepare) was given sizes that do not name the model's
    /// dims.
    #[error("{0}")]
    PrepareSizes(String),
    /// tract failed while running the model.
    #[error("the model failed while running: {reason}")]
    Run {
        /// What tract reported.
        reason: String,
    },
    /// tract panicked, and the panic was caught: a graph or inputs outside what tract handles
    /// (a division by zero in its kernels for an image too small for text_direction's
    /// convolutions, for one), never a reason to take the server or the CLI down.
    #[error(
        "tract panicked while {stage} the model ({message}); the model or these inputs are outside what tract handles"
    )]
    Panicked {
        /// What tiffin was doing: `loading`, `optimizing` (a plan for one size), `running`,
        /// `converting`, `reading` or `checking` the graph.
        stage: &'static str,
        /// The panic's message.
        message: String,
    },
    /// An output of the model could not be returned as declared.
    #[error("output `{name}`: {reason}")]
    Output {
        /// The output's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The model cannot be written as NNEF.
    #[error("cannot convert the model to NNEF: {reason}")]
    Nnef {
        /// What went wrong, naming the operator when one has no NNEF form.
        reason: String,
    },
    /// The ONNX Runtime library could not be loaded from the path given.
    #[error(
        "cannot load ONNX Runtime from {}: {reason}; give the path of libonnxruntime.so (version 1.17 or later; `pip install onnxruntime` has it in onnxruntime/capi/) with --ort-lib or TIFFIN_ORT_LIB",
        path.display()
    )]
    OrtLibrary {
        /// The library path that was given.
        path: std::path::PathBuf,
        /// What the loader reported.
        reason: String,
    },
    /// The runtime asked for cannot run this model, or is not built into this tiffin.
    #[error("{0}")]
    RuntimeUnavailable(String),
}

impl Error {
    /// True when the error is the caller's inputs' fault (count, dtype, rank, sizes, an empty
    /// batch the model cannot answer) rather than the model's or tiffin's: a server answers
    /// these with 400 and the rest with 500.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            Error::InputCount { .. }
                | Error::InputDType { .. }
                | Error::InputRank { .. }
                | Error::InputDim { .. }
                | Error::InconsistentDim { .. }
                | Error::EmptyInput { .. }
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `[batch, 30]`, as a shape is written in `tiffin.toml` but without quotes.
pub(crate) struct DimList<'a>(pub(crate) &'a [Dim]);

impl fmt::Display for DimList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (ix, d) in self.0.iter().enumerate() {
            if ix > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

struct SignatureProblems<'a>(&'a [SignatureProblem]);

impl fmt::Display for SignatureProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (ix, p) in self.0.iter().enumerate() {
            if ix > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Whether a tensor is an input or an output of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorKind {
    /// An input.
    Input,
    /// An output.
    Output,
}

impl fmt::Display for TensorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TensorKind::Input => "input",
            TensorKind::Output => "output",
        })
    }
}

/// One disagreement between a declared signature and what the graph says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// A declared tensor the graph does not have.
    #[error(
        "{kind} `{name}` is declared but the graph has no such {kind}; the graph's {kind}s are {}",
        quoted(graph)
    )]
    Missing {
        /// Input or output.
        kind: TensorKind,
        /// The declared name.
        name: String,
        /// The graph's names for that kind, in graph order.
        graph: Vec<String>,
    },
    /// A graph tensor the signature does not declare.
    #[error(
        "the graph has {kind} `{name}`, which the signature does not declare; add it to the signature's {kind}s"
    )]
    Undeclared {
        /// Input or output.
        kind: TensorKind,
        /// The graph's name.
        name: String,
    },
    /// The declared dtype differs from the graph's.
    #[error(
        "{kind} `{name}` is declared {declared}, but the graph's is {graph}; declare it as {graph}"
    )]
    DType {
        /// Input or output.
        kind: TensorKind,
        /// The tensor's name.
        name: String,
        /// The declared dtype.
        declared: DType,
        /// The graph's dtype, as tiffin names it (or tract's name when tiffin has none).
        graph: String,
    },
    /// The declared number of dimensions differs from the graph's.
    #[error(
        "{kind} `{name}` is declared with shape {} but the graph's shape is {graph}",
        DimList(declared)
    )]
    Rank {
        /// Input or output.
        kind: TensorKind,
        /// The tensor's name.
        name: String,
        /// The declared shape.
        declared: Vec<Dim>,
        /// The graph's shape, as tract writes it.
        graph: String,
    },
    /// One declared dimension disagrees with the graph's.
    #[error(
        "{kind} `{name}` axis {axis} is declared `{declared}` but the graph's is `{graph}`{}",
        dim_hint(declared, graph)
    )]
    Dim {
        /// Input or output.
        kind: TensorKind,
        /// The tensor's name.
        name: String,
        /// The axis, from 0.
        axis: usize,
        /// The declared dim.
        declared: Dim,
        /// The graph's dim, as tract writes it.
        graph: String,
    },
    /// The same declared dimension name stands for two different graph dimensions.
    #[error(
        "dimension `{dim}` is `{first_graph}` in the graph at {first_kind} `{first}` axis {first_axis} but `{graph}` at {kind} `{name}` axis {axis}; give them different names"
    )]
    DimConflict {
        /// The declared dimension name.
        dim: String,
        /// Where it first appears.
        first_kind: TensorKind,
        /// The tensor it first appears on.
        first: String,
        /// The axis there.
        first_axis: usize,
        /// The graph's dim there.
        first_graph: String,
        /// Where it disagrees.
        kind: TensorKind,
        /// The tensor it disagrees on.
        name: String,
        /// The axis there.
        axis: usize,
        /// The graph's dim there.
        graph: String,
    },
    /// Two declared dimension names stand for the same graph dimension.
    #[error(
        "{kind} `{name}` axis {axis} is declared `{declared}` but the graph gives it the same dimension `{graph}` as {first_kind} `{first}` axis {first_axis}, declared `{first_declared}`; use one name for both"
    )]
    DimSplit {
        /// The graph's dimension.
        graph: String,
        /// The tensor where the first name was declared.
        first_kind: TensorKind,
        /// Its name.
        first: String,
        /// Its axis.
        first_axis: usize,
        /// The first declared name.
        first_declared: String,
        /// The tensor where the second name was declared.
        kind: TensorKind,
        /// Its name.
        name: String,
        /// Its axis.
        axis: usize,
        /// The second declared name.
        declared: String,
    },
    /// The declared class labels disagree with the classes the graph's classifier carries.
    #[error("output `{name}` declares {} class label{} but the graph's classifier has {} ({}){}", declared.len(), plural(declared.len()), graph.len(), quoted(graph), if declared.len() == graph.len() { "; string labels must be the graph's, in its order" } else { "" })]
    ClassLabels {
        /// The output's name.
        name: String,
        /// The declared labels.
        declared: Vec<String>,
        /// The graph's labels.
        graph: Vec<String>,
    },
}

fn quoted(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn dim_hint(declared: &Dim, graph: &str) -> &'static str {
    match (declared, graph.parse::<u64>()) {
        (Dim::Named(_), Ok(_)) => "; the graph fixes this size, declare it as that number",
        (Dim::Fixed(_), Ok(_)) => "; declare the graph's size",
        (Dim::Fixed(_), Err(_)) => "; the graph's size varies, declare it by a name",
        (Dim::Named(_), Err(_)) => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_tensor_and_the_fix() {
        let e = Error::InputCount {
            expected: 3,
            found: 1,
            names: vec!["input".into(), "h".into(), "c".into()],
        };
        assert_eq!(
            e.to_string(),
            "the model takes 3 inputs (input, h, c), but 1 was given"
        );
        let e = Error::InputRank {
            name: "X".into(),
            position: 0,
            expected: vec![Dim::Named("batch".into()), Dim::Fixed(30)],
            found: vec![30],
        };
        assert_eq!(
            e.to_string(),
            "input `X` (position 0) must have 2 dimensions [batch, 30], but a tensor of shape [30] was given"
        );
        let p = SignatureProblem::Dim {
            kind: TensorKind::Input,
            name: "X".into(),
            axis: 1,
            declared: Dim::Named("features".into()),
            graph: "30".into(),
        };
        assert_eq!(
            p.to_string(),
            "input `X` axis 1 is declared `features` but the graph's is `30`; the graph fixes this size, declare it as that number"
        );
        let e = Error::Signature(vec![
            p,
            SignatureProblem::Undeclared {
                kind: TensorKind::Output,
                name: "probabilities".into(),
            },
        ]);
        assert!(e.to_string().ends_with("; the graph has output `probabilities`, which the signature does not declare; add it to the signature's outputs"), "{e}");
        let e = Error::UnsupportedOperators {
            ops: vec!["ZipMap (node ZipMap)".into()],
        };
        assert_eq!(
            e.to_string(),
            "the model uses an operator that tract 0.23 and tiffin do not implement: ZipMap (node ZipMap); export the model without it or with operators tract supports"
        );
    }
}
