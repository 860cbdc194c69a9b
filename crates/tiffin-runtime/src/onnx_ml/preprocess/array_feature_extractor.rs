//! `ArrayFeatureExtractor` (ai.onnx.ml): picks columns (the last axis) of `X` by the int64
//! indices `Y`. It replaces tract's own, a gather whose output shape follows numpy
//! (`X.shape[..-1] + Y.shape`) where onnxruntime flattens the indices (`X.shape[..-1] + [len(Y)]`)
//! and turns a vector `X` into one row (`[1, len(Y)]`): skl2onnx's MLP label lookup depends on
//! that. As in onnxruntime, an empty `Y` and an index outside `[0, columns)` are errors.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use tract_nnef::internal::{
    IntoAst, ModelBuilder, RValue, Registry, ResolvedInvocation, TypeName, Value as NnefValue,
    invocation,
};

use super::common::{Attrs, MlOpError, Site, tensor_from, values};
use super::nnef::{input, node_arg, node_param, primitive, site, tensor_param};

const INPUT_TYPES: [DatumType; 5] = [
    DatumType::F32,
    DatumType::F64,
    DatumType::I32,
    DatumType::I64,
    DatumType::String,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ArrayFeatureExtractor {
    site: Site,
}

pub(super) fn build(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new("ArrayFeatureExtractor", node)?;
    Ok((expand(ArrayFeatureExtractor { site: attrs.site }), vec![]))
}

impl ArrayFeatureExtractor {
    fn check_types(&self, x: DatumType, y: DatumType) -> Result<(), MlOpError> {
        self.site.check_dtype("the data input X", x, &INPUT_TYPES)?;
        self.site
            .check_dtype("the index input Y", y, &[DatumType::I64])
    }

    /// The output shape: X's with its last axis replaced by the number of indices, a vector X
    /// being read as one row.
    fn output_shape(&self, x: &[TDim], y: &[TDim]) -> Result<TVec<TDim>, MlOpError> {
        self.site
            .check_rank("the data input X", x.len(), 1, usize::MAX)?;
        let count = y.iter().fold(TDim::from(1), |acc, d| acc * d);
        let mut shape: TVec<TDim> = if x.len() == 1 {
            tvec![1.to_dim()]
        } else {
            x[..x.len() - 1].into()
        };
        shape.push(count);
        Ok(shape)
    }

    fn gather<T: Datum + Clone>(&self, x: &Tensor, indices: &[usize]) -> TractResult<Tensor> {
        let data = values::<T>(x)?;
        let width = x.shape().last().copied().unwrap_or(0);
        let mut out = Vec::with_capacity(data.len() / width.max(1) * indices.len());
        if width > 0 {
            for row in data.chunks_exact(width) {
                out.extend(indices.iter().map(|&i| row[i].clone()));
            }
        }
        let rank = x.rank();
        let mut shape: Vec<usize> = if rank == 1 {
            vec![1]
        } else {
            x.shape()[..rank - 1].to_vec()
        };
        shape.push(indices.len());
        tensor_from(&shape, out)
    }
}

impl Expansion for ArrayFeatureExtractor {
    fn name(&self) -> StaticName {
        "ArrayFeatureExtractor".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 2)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, &inputs[0].datum_type)?;
        s.given_2(
            &inputs[0].datum_type,
            &inputs[1].datum_type,
            move |_, x, y| Ok(self.check_types(x, y)?),
        )?;
        s.given(&inputs[0].rank, move |s, rank| {
            let rank = rank as usize;
            self.site
                .check_rank("the data input X", rank, 1, usize::MAX)?;
            s.equals(&outputs[0].rank, rank.max(2) as i64)?;
            if rank == 1 {
                s.equals(&outputs[0].shape[0], 1.to_dim())?;
            }
            for axis in 0..rank.saturating_sub(1) {
                s.equals(&outputs[0].shape[axis], &inputs[0].shape[axis])?;
            }
            Ok(())
        })?;
        s.given_2(&inputs[0].shape, &inputs[1].shape, move |s, x, y| {
            let shape = self.output_shape(&x, &y)?;
            s.equals(&outputs[0].shape, shape)
        })
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let x = model.outlet_fact(inputs[0])?;
        let y = model.outlet_fact(inputs[1])?;
        self.check_types(x.datum_type, y.datum_type)?;
        self.site
            .check_rank("the data input X", x.rank(), 1, usize::MAX)?;
        model.wire_node(prefix, self.clone(), inputs)
    }
}

impl Op for ArrayFeatureExtractor {
    fn name(&self) -> StaticName {
        "ArrayFeatureExtractor".into()
    }

    op_as_typed_op!();
}

impl EvalOp for ArrayFeatureExtractor {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, y) = args_2!(inputs);
        self.check_types(x.datum_type(), y.datum_type())?;
        self.site
            .check_rank("the data input X", x.rank(), 1, usize::MAX)?;
        let width = x.shape().last().copied().unwrap_or(0);
        let raw = values::<i64>(&y)?;
        if raw.is_empty() {
            return Err(self.site.value("the index input Y is empty").into());
        }
        let indices = raw
            .iter()
            .enumerate()
            .map(|(at, &i)| {
                usize::try_from(i)
                    .ok()
                    .filter(|&u| u < width)
                    .ok_or_else(|| {
                        self.site.value(format!(
                            "index Y[{at}] = {i} is outside [0, {width}), the columns of X"
                        ))
                    })
            })
            .collect::<Result<Vec<usize>, MlOpError>>()?;
        let z = match x.datum_type() {
            DatumType::F32 => self.gather::<f32>(&x, &indices)?,
            DatumType::F64 => self.gather::<f64>(&x, &indices)?,
            DatumType::I32 => self.gather::<i32>(&x, &indices)?,
            DatumType::I64 => self.gather::<i64>(&x, &indices)?,
            DatumType::String => self.gather::<String>(&x, &indices)?,
            other => {
                return Err(self
                    .site
                    .unsupported_dtype("the data input X", other, &INPUT_TYPES)
                    .into());
            }
        };
        Ok(tvec!(z.into_tvalue()))
    }
}

impl TypedOp for ArrayFeatureExtractor {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        let y: TVec<TDim> = inputs[1].shape.iter().cloned().collect();
        Ok(tvec!(
            inputs[0].datum_type.fact(&*self.output_shape(&x, &y)?)
        ))
    }

    as_op!();
}

pub(super) fn register_nnef(registry: &mut Registry) {
    registry.register_primitive(
        primitive("array_feature_extractor"),
        &[tensor_param("input"), tensor_param("indices"), node_param()],
        &[("output", TypeName::Scalar.tensor())],
        load_nnef,
    );
    registry.register_dumper(dump_nnef);
}

fn dump_nnef(
    ast: &mut IntoAst,
    node: &TypedNode,
    op: &ArrayFeatureExtractor,
) -> TractResult<Option<Arc<RValue>>> {
    let x = ast.mapping[&node.inputs[0]].clone();
    let y = ast.mapping[&node.inputs[1]].clone();
    Ok(Some(invocation(
        primitive("array_feature_extractor"),
        &[x, y],
        &[node_arg(&op.site)],
    )))
}

fn load_nnef(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
) -> TractResult<NnefValue> {
    let x = input(builder, invocation, "input")?;
    let y = input(builder, invocation, "indices")?;
    let site = site(builder, invocation, "ArrayFeatureExtractor")?;
    builder.wire(ArrayFeatureExtractor { site }, &[x, y])
}
