//! `LinearClassifier` (ai.onnx.ml), the logistic regression and linear SVM exports of
//! scikit-learn. It replaces tract's own, which refuses string class labels, PROBIT and
//! SOFTMAX_ZERO, and scores the one-coefficient-row binary case differently from onnxruntime.
//!
//! The scores `X · coefficientsᵀ + intercepts` are computed as onnxruntime's f32 GEMM does on
//! x86: each dot product accumulated feature by feature with fused multiply-adds, the intercept
//! added last. Matching its rounding matters: PROBIT near 0.5 and ties between classes turn one
//! unit in the last place of a score into visible differences. Then, as onnxruntime 1.32 does:
//! - one coefficient row and two class labels: the probabilities are `[1 - p, p]` with
//!   `p = logistic(score)` for LOGISTIC and `p = score` for NONE, SOFTMAX and SOFTMAX_ZERO;
//! - one coefficient row and no class labels: labels 0/1 and the single score column, with
//!   PROBIT applied and every other transform ignored;
//! - in both, the label is the second class when the raw score is above 0;
//! - several coefficient rows: the label is the class of the first highest raw score, and the
//!   transform applies to each row of scores.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use tract_nnef::internal::{
    IntoAst, ModelBuilder, RValue, Registry, ResolvedInvocation, TypeName, Value as NnefValue,
    invocation, logical, string,
};

use super::common::{Attrs, MlOpError, Site, concrete_dim, tensor_from, values};
use super::nnef::{
    input, konst, list_arg, list_args, list_params, named, node_arg, node_param, primitive, site,
    string_param, tensor, tensor_param,
};
use super::transform::PostTransform;

const INPUT_TYPES: [DatumType; 4] = [
    DatumType::F32,
    DatumType::F64,
    DatumType::I32,
    DatumType::I64,
];

/// The class labels of a classifier: what its label output holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    fn len(&self) -> usize {
        match self {
            Labels::Ints(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }

    fn datum_type(&self) -> DatumType {
        match self {
            Labels::Ints(_) => DatumType::I64,
            Labels::Strings(_) => DatumType::String,
        }
    }

    /// The label output for the chosen class of each row (every index is below `len`).
    fn pick(&self, shape: &[usize], classes: &[usize]) -> TractResult<Tensor> {
        match self {
            Labels::Ints(v) => tensor_from(shape, classes.iter().map(|&c| v[c]).collect()),
            Labels::Strings(v) => {
                tensor_from(shape, classes.iter().map(|&c| v[c].clone()).collect())
            }
        }
    }
}

#[derive(Debug, Clone)]
struct LinearClassifier {
    site: Site,
    /// Read as onnxruntime reads them: a row-major `[targets, features]` matrix from the start
    /// of the list, `features` being the input's width; values beyond are ignored.
    coefficients: Vec<f32>,
    intercepts: Vec<f32>,
    post: LinearClassifierPost,
}

pub(super) fn build(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new("LinearClassifier", node)?;
    Ok((expand(parse(&attrs)?), vec![]))
}

fn parse(attrs: &Attrs) -> Result<LinearClassifier, MlOpError> {
    let coefficients = attrs.floats("coefficients")?.unwrap_or_default();
    if coefficients.is_empty() {
        return Err(attrs.error("coefficients", "is missing or empty"));
    }
    let intercepts = attrs.floats("intercepts")?.unwrap_or_default();
    if intercepts.is_empty() {
        // onnxruntime takes the number of coefficient rows from the intercepts.
        return Err(attrs.error(
            "intercepts",
            "is missing or empty; give one intercept per coefficient row (zeros if the model has none)",
        ));
    }
    let targets = intercepts.len();
    if coefficients.len() % targets != 0 {
        return Err(attrs.error(
            "coefficients",
            format!(
                "has {} values, not a multiple of the {targets} coefficient rows that `intercepts` defines",
                coefficients.len()
            ),
        ));
    }
    let ints = attrs.ints("classlabels_ints")?.unwrap_or_default();
    let strings = attrs.strings("classlabels_strings")?.unwrap_or_default();
    let (attribute, labels) = match (ints.is_empty(), strings.is_empty()) {
        (false, false) => {
            return Err(attrs.error(
                "classlabels_ints",
                "and `classlabels_strings` are both given; keep only one",
            ));
        }
        (true, false) => ("classlabels_strings", Some(Labels::Strings(strings))),
        (false, true) => ("classlabels_ints", Some(Labels::Ints(ints))),
        (true, true) => ("classlabels_ints", None),
    };
    let post_transform = attrs
        .string("post_transform")?
        .unwrap_or_else(|| "NONE".into());
    let transform = PostTransform::parse(&post_transform)
        .ok_or_else(|| attrs.error("post_transform", PostTransform::expected(&post_transform)))?;
    // multi_class is read for its type only: onnxruntime ignores its value.
    attrs.int("multi_class")?;
    let labelled = labels.is_some();
    let labels = match (targets, labels) {
        (1, None) => Labels::Ints(vec![0, 1]),
        (1, Some(labels)) if labels.len() == 2 => {
            if transform == PostTransform::Probit {
                return Err(attrs.error(
                    "post_transform",
                    "is PROBIT with one coefficient row and two class labels: onnxruntime fills \
                     only half of the probability output then (the rest is uninitialised memory), \
                     so there is no behaviour to match; export two coefficient rows or another transform",
                ));
            }
            labels
        }
        (1, Some(labels)) => {
            return Err(attrs.error(
                attribute,
                format!(
                    "has {} labels; with one coefficient row (binary) it must have exactly 2, or be absent",
                    labels.len()
                ),
            ));
        }
        (_, None) => {
            return Err(attrs.error(
                "classlabels_ints",
                format!("and `classlabels_strings` are both missing; give one label per each of the {targets} classes"),
            ));
        }
        (_, Some(labels)) if labels.len() < targets => {
            return Err(attrs.error(
                attribute,
                format!(
                    "has {} labels but `intercepts` defines {targets} classes",
                    labels.len()
                ),
            ));
        }
        (_, Some(labels)) => labels,
    };
    let binary_columns = targets == 1 && labelled;
    let post = LinearClassifierPost {
        site: attrs.site.clone(),
        labels,
        transform,
        targets,
        binary_columns,
    };
    Ok(LinearClassifier {
        site: attrs.site.clone(),
        coefficients,
        intercepts,
        post,
    })
}

impl LinearClassifier {
    /// The number of probability columns.
    fn columns(&self) -> usize {
        self.post.columns()
    }
}

impl Expansion for LinearClassifier {
    fn name(&self) -> StaticName {
        "LinearClassifier".into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(2)
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 2)?;
        s.equals(&outputs[0].datum_type, self.post.labels.datum_type())?;
        s.equals(&outputs[1].datum_type, DatumType::F32)?;
        s.equals(&outputs[0].rank, 1)?;
        s.equals(&outputs[1].rank, 2)?;
        s.equals(&outputs[1].shape[1], self.columns().to_dim())?;
        s.equals(&outputs[0].shape[0], &outputs[1].shape[0])?;
        s.given(&inputs[0].datum_type, move |_, dt| {
            Ok(self.site.check_dtype("the input", dt, &INPUT_TYPES)?)
        })?;
        s.given(&inputs[0].rank, move |s, rank| {
            self.site.check_rank("the input", rank as usize, 1, 2)?;
            if rank == 2 {
                s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
            } else {
                // onnxruntime reads a vector as one row of features.
                s.equals(&outputs[0].shape[0], 1.to_dim())?;
            }
            Ok(())
        })
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let fact = model.outlet_fact(inputs[0])?.clone();
        self.site
            .check_dtype("the input", fact.datum_type, &INPUT_TYPES)?;
        self.site.check_rank("the input", fact.rank(), 1, 2)?;
        let features = concrete_dim(
            &self.site,
            "the number of features",
            &fact.shape[fact.rank() - 1],
        )?;
        let targets = self.intercepts.len();
        if features * targets > self.coefficients.len() {
            return Err(self
                .site
                .attribute(
                    "coefficients",
                    format!(
                        "has {} values, fewer than the {targets} classes times the input's {features} features",
                        self.coefficients.len()
                    ),
                )
                .into());
        }
        // Extra coefficients are ignored, as onnxruntime does. Stored transposed, [features,
        // targets], so that one pass over a row feeds every class's accumulator.
        let mut weights = vec![0f32; features * targets];
        if features > 0 {
            for (t, row) in self
                .coefficients
                .chunks_exact(features)
                .take(targets)
                .enumerate()
            {
                for (f, &w) in row.iter().enumerate() {
                    weights[f * targets + t] = w;
                }
            }
        }
        let op = LinearClassifierOp {
            weights,
            intercepts: self.intercepts.clone(),
            features,
            post: self.post.clone(),
        };
        model.wire_node(prefix, op, inputs)
    }
}

/// How raw scores become labels and probabilities (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LinearClassifierPost {
    site: Site,
    labels: Labels,
    transform: PostTransform,
    targets: usize,
    /// One coefficient row with two class labels: the probabilities get two columns.
    binary_columns: bool,
}

impl LinearClassifierPost {
    fn columns(&self) -> usize {
        if self.binary_columns { 2 } else { self.targets }
    }

    /// Labels `[rows]` and probabilities `[rows, columns]` from row-major scores.
    fn finish(&self, rows: usize, scores: &[f32]) -> TractResult<(Tensor, Tensor)> {
        let mut chosen = Vec::with_capacity(rows);
        let mut out = Vec::with_capacity(rows * self.columns());
        if self.targets == 1 {
            for &score in scores {
                chosen.push(usize::from(score > 0.0));
                if self.binary_columns {
                    let p = match self.transform {
                        PostTransform::Logistic => PostTransform::logistic(score),
                        _ => score,
                    };
                    out.extend([1.0 - p, p]);
                } else if self.transform == PostTransform::Probit {
                    out.push(PostTransform::probit(score));
                } else {
                    out.push(score);
                }
            }
        } else {
            for row in scores.chunks_exact(self.targets) {
                // The first highest score wins; a NaN never beats anything.
                let mut best = 0;
                for (ix, &s) in row.iter().enumerate().skip(1) {
                    if s > row[best] {
                        best = ix;
                    }
                }
                chosen.push(best);
                let start = out.len();
                out.extend_from_slice(row);
                self.transform.apply(&mut out[start..]);
            }
        }
        let labels = self.labels.pick(&[rows], &chosen)?;
        let probabilities = tensor_from(&[rows, self.columns()], out)?;
        Ok((labels, probabilities))
    }
}

/// The typed operator: scores, then labels and probabilities.
#[derive(Debug, Clone)]
struct LinearClassifierOp {
    /// `[features, targets]`, row-major.
    weights: Vec<f32>,
    intercepts: Vec<f32>,
    features: usize,
    post: LinearClassifierPost,
}

impl PartialEq for LinearClassifierOp {
    fn eq(&self, other: &LinearClassifierOp) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        bits(&self.weights) == bits(&other.weights)
            && bits(&self.intercepts) == bits(&other.intercepts)
            && self.features == other.features
            && self.post == other.post
    }
}

impl Eq for LinearClassifierOp {}

impl LinearClassifierOp {
    /// Scores `[rows, targets]` of f32 rows of `features` values.
    fn scores(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let targets = self.intercepts.len();
        let mut scores = Vec::with_capacity(rows * targets);
        let mut acc = vec![0f32; targets];
        for r in 0..rows {
            acc.iter_mut().for_each(|a| *a = 0.0);
            let row = &x[r * self.features..(r + 1) * self.features];
            for (f, &xf) in row.iter().enumerate() {
                let w = &self.weights[f * targets..(f + 1) * targets];
                for (a, &wt) in acc.iter_mut().zip(w) {
                    *a = xf.mul_add(wt, *a);
                }
            }
            scores.extend(acc.iter().zip(&self.intercepts).map(|(a, b)| a + b));
        }
        scores
    }
}

impl Op for LinearClassifierOp {
    fn name(&self) -> StaticName {
        "LinearClassifier".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} features, {:?}, {} classes",
            self.features,
            self.post.transform,
            self.post.labels.len()
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for LinearClassifierOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let site = &self.post.site;
        site.check_rank("the input", input.rank(), 1, 2)?;
        let shape = input.shape();
        if shape[shape.len() - 1] != self.features {
            return Err(site
                .value(format!(
                    "the input has shape {shape:?}, but the model has {} features",
                    self.features
                ))
                .into());
        }
        let rows = if shape.len() == 2 { shape[0] } else { 1 };
        // onnxruntime casts every input type to f32 before its f32 matrix product.
        let x = match input.datum_type() {
            DatumType::F32 => values::<f32>(&input)?.to_vec(),
            DatumType::F64 => values::<f64>(&input)?.iter().map(|&v| v as f32).collect(),
            DatumType::I32 => values::<i32>(&input)?.iter().map(|&v| v as f32).collect(),
            DatumType::I64 => values::<i64>(&input)?.iter().map(|&v| v as f32).collect(),
            other => {
                return Err(site
                    .unsupported_dtype("the input", other, &INPUT_TYPES)
                    .into());
            }
        };
        let (labels, probabilities) = self.post.finish(rows, &self.scores(&x, rows))?;
        Ok(tvec!(labels.into_tvalue(), probabilities.into_tvalue()))
    }
}

impl TypedOp for LinearClassifierOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = &inputs[0].shape;
        let rows = if shape.rank() == 2 {
            shape[0].clone()
        } else {
            1.to_dim()
        };
        Ok(tvec!(
            self.post
                .labels
                .datum_type()
                .fact(std::slice::from_ref(&rows)),
            DatumType::F32.fact(&[rows, self.post.columns().to_dim()])
        ))
    }

    as_op!();
}

pub(super) fn register_nnef(registry: &mut Registry) {
    registry.register_primitive(
        primitive("linear_classifier"),
        &[
            &[
                tensor_param("input"),
                tensor_param("weights"),
                tensor_param("intercepts"),
            ][..],
            &list_params("labels"),
            &[
                string_param("post_transform"),
                TypeName::Logical.named("binary_columns"),
                node_param(),
            ],
        ]
        .concat(),
        &[
            ("labels", TypeName::Scalar.tensor()),
            ("probabilities", TypeName::Scalar.tensor()),
        ],
        load_nnef,
    );
    registry.register_dumper(dump_nnef);
}

fn transform_name(t: PostTransform) -> &'static str {
    match t {
        PostTransform::None => "NONE",
        PostTransform::Logistic => "LOGISTIC",
        PostTransform::Softmax => "SOFTMAX",
        PostTransform::SoftmaxZero => "SOFTMAX_ZERO",
        PostTransform::Probit => "PROBIT",
    }
}

fn dump_nnef(
    ast: &mut IntoAst,
    node: &TypedNode,
    op: &LinearClassifierOp,
) -> TractResult<Option<Arc<RValue>>> {
    let x = ast.mapping[&node.inputs[0]].clone();
    let targets = op.intercepts.len();
    let weights = tensor1(&op.weights).into_shape(&[op.features, targets])?;
    let weights = konst(ast, node, "weights", weights)?;
    let intercepts = konst(ast, node, "intercepts", tensor1(&op.intercepts))?;
    let labels = match &op.post.labels {
        Labels::Ints(v) => tensor1(v),
        Labels::Strings(v) => tensor1(v),
    };
    let lists = list_args(ast, node, "labels", labels)?;
    let mut args = named(&lists);
    args.extend([
        ("post_transform", string(transform_name(op.post.transform))),
        ("binary_columns", logical(op.post.binary_columns)),
        node_arg(&op.post.site),
    ]);
    Ok(Some(invocation(
        primitive("linear_classifier"),
        &[x, weights, intercepts],
        &args,
    )))
}

fn load_nnef(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
) -> TractResult<NnefValue> {
    let x = input(builder, invocation, "input")?;
    let site = site(builder, invocation, "LinearClassifier")?;
    let weights = tensor(builder, invocation, "weights")?;
    let intercepts = tensor(builder, invocation, "intercepts")?;
    let intercepts = values::<f32>(&intercepts)?.to_vec();
    let targets = intercepts.len();
    let (features, weights) = match weights.shape() {
        [f, t] if *t == targets && targets > 0 => (*f, values::<f32>(&weights)?.to_vec()),
        shape => {
            return Err(site
                .attribute(
                    "weights",
                    format!("have shape {shape:?}, expected [features, {targets}]"),
                )
                .into());
        }
    };
    let labels = list_arg(builder, invocation, &site, "labels")?;
    let labels = match labels.datum_type() {
        DatumType::I64 => Labels::Ints(values::<i64>(&labels)?.to_vec()),
        DatumType::String => Labels::Strings(values::<String>(&labels)?.to_vec()),
        other => {
            return Err(site
                .attribute(
                    "labels",
                    format!("are {other:?}; they must be I64 or String"),
                )
                .into());
        }
    };
    let binary_columns: bool = invocation.named_arg_as(builder, "binary_columns")?;
    let enough = if targets == 1 {
        labels.len() == 2
    } else {
        labels.len() >= targets && !binary_columns
    };
    if !enough {
        return Err(site
            .attribute(
                "labels",
                format!("has {} labels for {targets} coefficient rows", labels.len()),
            )
            .into());
    }
    let name: String = invocation.named_arg_as(builder, "post_transform")?;
    let transform = PostTransform::parse(&name)
        .ok_or_else(|| site.attribute("post_transform", PostTransform::expected(&name)))?;
    let post = LinearClassifierPost {
        site,
        labels,
        transform,
        targets,
        binary_columns,
    };
    builder.wire(
        LinearClassifierOp {
            weights,
            intercepts,
            features,
            post,
        },
        &[x],
    )
}
