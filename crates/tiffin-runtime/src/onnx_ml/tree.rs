//! ONNX-ML `TreeEnsembleClassifier` and `TreeEnsembleRegressor` for tract-onnx, replacing
//! tract's own classifier (which fails on skl2onnx's binary gradient boosting models, labels
//! binary random forests wrongly and is slow) with tiffin's evaluator and onnxruntime's output
//! semantics.
//!
//! tract's operator table is keyed by op type alone (the domain is not looked at), so
//! registering under the two names replaces tract's builder; the builders themselves accept only
//! the `ai.onnx.ml` domain. A node becomes an inference-time [`Expansion`] that checks shapes
//! with a symbolic batch, then wires one typed operator computing every output at once.
//!
//! The typed operator has no NNEF form yet, so `tiffin convert` refuses tree models by operator
//! name (tract's own classifier had one); running them from ONNX is unaffected.

mod forest;
mod post;
mod spec;

use std::fmt;
use std::sync::Arc;

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use forest::{Forest, Outputs};
use post::Label;
use spec::{Labels, Spec, Which};

/// Adds both operators to tract-onnx's table, replacing tract's `TreeEnsembleClassifier`.
pub(crate) fn register(ops: &mut OnnxOpRegister) {
    ops.insert("TreeEnsembleClassifier", build_classifier);
    ops.insert("TreeEnsembleRegressor", build_regressor);
}

fn build_classifier(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    build(ctx, node, Which::Classifier)
}

fn build_regressor(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    build(ctx, node, Which::Regressor)
}

fn build(
    ctx: &ParsingContext,
    node: &NodeProto,
    which: Which,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let load = |t: &tract_onnx::pb::TensorProto| -> Result<Vec<f64>, String> {
        let tensor = ctx.load_tensor(t).map_err(|e| format!("{e:#}"))?;
        tensor_values(&tensor)
    };
    let spec = spec::parse(node, which, &load)?;
    Ok((
        expand(TreeEnsemble {
            spec: Arc::new(spec),
        }),
        vec![],
    ))
}

/// The values of a float or double tensor attribute (`*_as_tensor`), whatever its shape.
fn tensor_values(tensor: &Tensor) -> Result<Vec<f64>, String> {
    match tensor.datum_type() {
        DatumType::F32 | DatumType::F64 => {
            let t = tensor.cast_to::<f64>().map_err(|e| format!("{e:#}"))?;
            let plain = t.try_as_plain_ram().map_err(|e| format!("{e:#}"))?;
            Ok(plain
                .as_slice::<f64>()
                .map_err(|e| format!("{e:#}"))?
                .to_vec())
        }
        dt => Err(format!(
            "a tensor of {dt:?}; expected float or double values"
        )),
    }
}

/// A short description for tract's model dumps (the forest itself is too large to print).
fn describe(spec: &Spec) -> String {
    format!(
        "{} trees, {} branch nodes, {} leaves, depth {}, {} outputs, post {:?}",
        spec.n_trees(),
        spec.n_internal,
        spec.n_leaves(),
        spec.max_depth,
        spec.n_outputs,
        spec.post
    )
}

/// Refuses an input the trees cannot read: not a matrix, or narrower than the highest feature.
fn check_input(spec: &Spec, rank: usize, width: Option<usize>) -> TractResult<()> {
    let op = spec.which.op_name();
    if rank != 2 {
        bail!("{op}: the input has rank {rank}; tree ensembles take a matrix [rows, features]");
    }
    if let (Some(width), Some(max)) = (width, spec.max_feature)
        && max as usize >= width
    {
        bail!(
            "{op}: `nodes_featureids` reads feature {max} but the input has {width} features per row; \
             the model expects at least {} features",
            max as usize + 1
        );
    }
    Ok(())
}

/// The inference-time form of both operators: shape rules, then [`TreeEnsembleOp`].
#[derive(Clone)]
struct TreeEnsemble {
    spec: Arc<Spec>,
}

impl fmt::Debug for TreeEnsemble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.spec.which.op_name(), describe(&self.spec))
    }
}

impl Expansion for TreeEnsemble {
    fn name(&self) -> StaticName {
        self.spec.which.op_name().into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![describe(&self.spec)])
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(match self.spec.which {
            Which::Classifier => 2,
            Which::Regressor => 1,
        })
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, self.nboutputs()?)?;
        let op = self.spec.which.op_name();
        s.equals(&inputs[0].rank, 2)?;
        s.given(&inputs[0].datum_type, move |_, dt| {
            if matches!(
                dt,
                DatumType::F32 | DatumType::F64 | DatumType::I32 | DatumType::I64
            ) {
                Ok(())
            } else {
                bail!("{op}: the input is {dt:?}; tree ensembles take f32, f64, i32 or i64")
            }
        })?;
        let spec = self.spec.clone();
        s.given(&inputs[0].shape[1], move |_, width| {
            match width.to_usize() {
                Ok(width) => check_input(&spec, 2, Some(width)),
                Err(_) => Ok(()),
            }
        })?;
        let scores = outputs.len() - 1;
        s.equals(&outputs[scores].datum_type, DatumType::F32)?;
        s.equals(&outputs[scores].rank, 2)?;
        s.equals(&outputs[scores].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[scores].shape[1], self.spec.n_outputs.to_dim())?;
        if let Some(labels) = &self.spec.labels {
            s.equals(&outputs[0].datum_type, label_type(labels))?;
            s.equals(&outputs[0].rank, 1)?;
            s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        }
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let [source] = inputs else {
            bail!(
                "{}: expected one input, got {}",
                self.spec.which.op_name(),
                inputs.len()
            );
        };
        let fact = model.outlet_fact(*source)?.clone();
        check_input(
            &self.spec,
            fact.rank(),
            fact.shape.get(1).and_then(|d| d.to_usize().ok()),
        )?;
        let (input, forest) = match fact.datum_type {
            DatumType::F32 => (*source, Compiled::F32(Arc::new(Forest::new(&self.spec)))),
            DatumType::F64 => (*source, Compiled::F64(Arc::new(Forest::new(&self.spec)))),
            // onnxruntime compares integer features with f32 thresholds, which converts them
            // to f32: casting first gives the same comparisons.
            DatumType::I32 | DatumType::I64 => {
                let cast = tract_onnx::tract_core::ops::cast::cast(DatumType::F32);
                let cast = model.wire_node(format!("{prefix}.cast"), cast, &[*source])?[0];
                (cast, Compiled::F32(Arc::new(Forest::new(&self.spec))))
            }
            dt => bail!(
                "{}: the input is {dt:?}; tree ensembles take f32, f64, i32 or i64",
                self.spec.which.op_name()
            ),
        };
        model.wire_node(
            prefix,
            TreeEnsembleOp {
                spec: self.spec.clone(),
                forest,
            },
            &[input],
        )
    }
}

fn label_type(labels: &Labels) -> DatumType {
    match labels {
        Labels::Int(_) => DatumType::I64,
        Labels::Str(_) => DatumType::String,
    }
}

/// The forest compiled for the input's float type.
#[derive(Clone)]
enum Compiled {
    F32(Arc<Forest<f32>>),
    F64(Arc<Forest<f64>>),
}

/// The typed operator: rows in, every output of the ONNX node out.
#[derive(Clone)]
struct TreeEnsembleOp {
    spec: Arc<Spec>,
    forest: Compiled,
}

impl fmt::Debug for TreeEnsembleOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.forest {
            Compiled::F32(_) => "f32",
            Compiled::F64(_) => "f64",
        };
        write!(
            f,
            "{}<{t}>({})",
            self.spec.which.op_name(),
            describe(&self.spec)
        )
    }
}

/// Two operators are the same when they share the same parsed node; comparing whole forests
/// would cost more than it could save.
impl PartialEq for TreeEnsembleOp {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.spec, &other.spec)
            && match (&self.forest, &other.forest) {
                (Compiled::F32(a), Compiled::F32(b)) => Arc::ptr_eq(a, b),
                (Compiled::F64(a), Compiled::F64(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for TreeEnsembleOp {}

impl Op for TreeEnsembleOp {
    fn name(&self) -> StaticName {
        self.spec.which.op_name().into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![describe(&self.spec)])
    }

    fn as_typed(&self) -> Option<&dyn TypedOp> {
        Some(self)
    }
}

impl EvalOp for TreeEnsembleOp {
    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let [input] = inputs.as_slice() else {
            bail!(
                "{}: expected one input, got {}",
                self.spec.which.op_name(),
                inputs.len()
            );
        };
        let shape = input.shape();
        check_input(&self.spec, shape.len(), shape.get(1).copied())?;
        let (rows, width) = (shape[0], shape[1]);
        let plain = input.try_as_plain_ram()?;
        let out = match &self.forest {
            Compiled::F32(f) => f.eval(&self.spec, plain.as_slice::<f32>()?, rows, width),
            Compiled::F64(f) => f.eval(&self.spec, plain.as_slice::<f64>()?, rows, width),
        };
        self.outputs(out, rows)
    }

    fn eval_out_of_plan(&self, inputs: TVec<TValue>) -> TractResult<Option<TVec<TValue>>> {
        Ok(Some(self.eval(&EvalContext::out_of_plan(), inputs)?))
    }
}

impl TreeEnsembleOp {
    fn outputs(&self, out: Outputs, rows: usize) -> TractResult<TVec<TValue>> {
        let scores = Tensor::from_shape(&[rows, self.spec.n_outputs], &out.scores)?.into_tvalue();
        let Some(labels) = &self.spec.labels else {
            return Ok(tvec!(scores));
        };
        let index = |l: &Label| match *l {
            Label::Class(i) => i,
            Label::Literal(v) => v as usize,
        };
        let labels = match labels {
            Labels::Int(classes) => {
                let values: Vec<i64> = out
                    .labels
                    .iter()
                    .map(|l| match *l {
                        Label::Class(i) => classes.get(i).copied().unwrap_or_default(),
                        Label::Literal(v) => v,
                    })
                    .collect();
                Tensor::from_shape(&[rows], &values)?
            }
            Labels::Str(classes) => {
                let values: Vec<String> = out
                    .labels
                    .iter()
                    .map(|l| classes.get(index(l)).cloned().unwrap_or_default())
                    .collect();
                tract_ndarray::ArrayD::from_shape_vec(vec![rows], values)?.into()
            }
        };
        Ok(tvec!(labels.into_tvalue(), scores))
    }
}

impl TypedOp for TreeEnsembleOp {
    fn as_op(&self) -> &dyn Op {
        self
    }

    fn as_op_mut(&mut self) -> &mut dyn Op {
        self
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let [input] = inputs else {
            bail!(
                "{}: expected one input, got {}",
                self.spec.which.op_name(),
                inputs.len()
            );
        };
        check_input(
            &self.spec,
            input.rank(),
            input.shape.get(1).and_then(|d| d.to_usize().ok()),
        )?;
        let rows = input.shape[0].clone();
        let scores = TypedFact::dt_shape(
            DatumType::F32,
            tvec!(rows.clone(), self.spec.n_outputs.to_dim()),
        );
        Ok(match &self.spec.labels {
            Some(labels) => tvec!(TypedFact::dt_shape(label_type(labels), tvec!(rows)), scores),
            None => tvec!(scores),
        })
    }
}

#[cfg(test)]
mod tests;
