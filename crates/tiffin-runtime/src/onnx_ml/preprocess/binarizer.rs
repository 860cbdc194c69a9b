//! `Binarizer` (ai.onnx.ml): 1 where the input is above the threshold, else 0. tract 0.23 has
//! none. As in onnxruntime: f32 only (the only type it implements), the threshold defaults to the
//! schema's 0.0, and a NaN in the input is an error rather than a 0.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use tract_nnef::internal::{
    IntoAst, ModelBuilder, RValue, Registry, ResolvedInvocation, TypeName, Value as NnefValue,
    invocation,
};

use super::common::{Attrs, Site, tensor_from, values};
use super::nnef::{input, konst, node_arg, node_param, primitive, site, tensor, tensor_param};

#[derive(Debug, Clone)]
struct Binarizer {
    site: Site,
    threshold: f32,
}

impl PartialEq for Binarizer {
    fn eq(&self, other: &Binarizer) -> bool {
        self.site == other.site && self.threshold.to_bits() == other.threshold.to_bits()
    }
}

impl Eq for Binarizer {}

pub(super) fn build(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new("Binarizer", node)?;
    let threshold = attrs.float("threshold")?.unwrap_or(0.0);
    Ok((
        expand(Binarizer {
            site: attrs.site,
            threshold,
        }),
        vec![],
    ))
}

impl Expansion for Binarizer {
    fn name(&self) -> StaticName {
        "Binarizer".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, DatumType::F32)?;
        s.equals(&outputs[0].shape, &inputs[0].shape)?;
        s.given(&inputs[0].datum_type, move |_, dt| {
            Ok(self.site.check_dtype("the input", dt, &[DatumType::F32])?)
        })
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        self.site.check_dtype(
            "the input",
            model.outlet_fact(inputs[0])?.datum_type,
            &[DatumType::F32],
        )?;
        model.wire_node(prefix, self.clone(), inputs)
    }
}

impl Op for Binarizer {
    fn name(&self) -> StaticName {
        "Binarizer".into()
    }

    op_as_typed_op!();
}

impl EvalOp for Binarizer {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        self.site
            .check_dtype("the input", input.datum_type(), &[DatumType::F32])?;
        let x = values::<f32>(&input)?;
        if let Some(at) = x.iter().position(|v| v.is_nan()) {
            return Err(self
                .site
                .value(format!(
                    "the input holds NaN (at {at}), which onnxruntime refuses"
                ))
                .into());
        }
        let y: Vec<f32> = x
            .iter()
            .map(|&v| if v > self.threshold { 1.0 } else { 0.0 })
            .collect();
        Ok(tvec!(tensor_from(input.shape(), y)?.into_tvalue()))
    }
}

impl TypedOp for Binarizer {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(DatumType::F32.fact(inputs[0].shape.clone())))
    }

    as_op!();
}

pub(super) fn register_nnef(registry: &mut Registry) {
    registry.register_primitive(
        primitive("binarizer"),
        &[
            tensor_param("input"),
            tensor_param("threshold"),
            node_param(),
        ],
        &[("output", TypeName::Scalar.tensor())],
        load_nnef,
    );
    registry.register_dumper(dump_nnef);
}

fn dump_nnef(
    ast: &mut IntoAst,
    node: &TypedNode,
    op: &Binarizer,
) -> TractResult<Option<Arc<RValue>>> {
    let input = ast.mapping[&node.inputs[0]].clone();
    let threshold = konst(ast, node, "threshold", tensor0(op.threshold))?;
    Ok(Some(invocation(
        primitive("binarizer"),
        &[input, threshold],
        &[node_arg(&op.site)],
    )))
}

fn load_nnef(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
) -> TractResult<NnefValue> {
    let x = input(builder, invocation, "input")?;
    let threshold = *tensor(builder, invocation, "threshold")?
        .try_as_plain_ram()?
        .to_scalar::<f32>()?;
    let site = site(builder, invocation, "Binarizer")?;
    builder.wire(Binarizer { site, threshold }, &[x])
}
