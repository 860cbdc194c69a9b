//! `Normalizer` (ai.onnx.ml): each row divided by its norm. It replaces tract's own, whose MAX
//! norm divides by the largest absolute value where onnxruntime divides by the largest value
//! (so a row of negative numbers changes sign), and which divides rows of norm 0 by 1e-12 where
//! onnxruntime passes them through. The arithmetic here is onnxruntime's, in f32.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use tract_nnef::internal::{
    IntoAst, ModelBuilder, RValue, Registry, ResolvedInvocation, TypeName, Value as NnefValue,
    invocation, string,
};

use super::common::{Attrs, Site, tensor_from, values};
use super::nnef::{input, node_arg, node_param, primitive, site, string_param, tensor_param};

const INPUT_TYPES: [DatumType; 4] = [
    DatumType::F32,
    DatumType::F64,
    DatumType::I32,
    DatumType::I64,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Norm {
    /// Divide by the row's largest value (signed).
    Max,
    /// Divide by the sum of absolute values.
    L1,
    /// Divide by the square root of the sum of squares.
    L2,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Normalizer {
    site: Site,
    norm: Norm,
}

pub(super) fn build(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new("Normalizer", node)?;
    let norm = match attrs.string("norm")?.as_deref().unwrap_or("MAX") {
        "MAX" => Norm::Max,
        "L1" => Norm::L1,
        "L2" => Norm::L2,
        // onnxruntime is case-sensitive here; so is tiffin, so that a model runs the same on both.
        other => {
            return Err(attrs
                .error("norm", format!("is {other:?}; it must be MAX, L1 or L2"))
                .into());
        }
    };
    Ok((
        expand(Normalizer {
            site: attrs.site,
            norm,
        }),
        vec![],
    ))
}

impl Expansion for Normalizer {
    fn name(&self) -> StaticName {
        "Normalizer".into()
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
            Ok(self.site.check_dtype("the input", dt, &INPUT_TYPES)?)
        })?;
        s.given(&inputs[0].rank, move |_, rank| {
            Ok(self.site.check_rank("the input", rank as usize, 1, 2)?)
        })
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let fact = model.outlet_fact(inputs[0])?;
        self.site
            .check_dtype("the input", fact.datum_type, &INPUT_TYPES)?;
        self.site.check_rank("the input", fact.rank(), 1, 2)?;
        model.wire_node(prefix, self.clone(), inputs)
    }
}

/// An input element as onnxruntime's normalizer sees it: converted to f32, and its absolute
/// value and square computed in the input's own type first.
trait Element: Datum + Copy {
    fn to_f32(self) -> f32;
    fn abs_f32(self) -> f32;
    fn square_f32(self) -> f32;
    fn is_negative(self) -> bool;
}

macro_rules! float_element {
    ($t:ty) => {
        impl Element for $t {
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn abs_f32(self) -> f32 {
                self.abs() as f32
            }
            fn square_f32(self) -> f32 {
                (self * self) as f32
            }
            fn is_negative(self) -> bool {
                self < 0.0
            }
        }
    };
}

macro_rules! int_element {
    ($t:ty) => {
        impl Element for $t {
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn abs_f32(self) -> f32 {
                // C++ overflows on the smallest integer; wrapping gives the same bits.
                self.wrapping_abs() as f32
            }
            fn square_f32(self) -> f32 {
                self.wrapping_mul(self) as f32
            }
            fn is_negative(self) -> bool {
                self < 0
            }
        }
    };
}

float_element!(f32);
float_element!(f64);
int_element!(i32);
int_element!(i64);

impl Normalizer {
    fn normalize<T: Element>(&self, input: &Tensor) -> TractResult<Tensor> {
        let x = values::<T>(input)?;
        let shape = input.shape();
        let width = shape.last().copied().unwrap_or(1);
        let mut out = Vec::with_capacity(x.len());
        if width > 0 {
            for row in x.chunks_exact(width) {
                self.normalize_row(row, &mut out);
            }
        }
        tensor_from(shape, out)
    }

    fn normalize_row<T: Element>(&self, row: &[T], out: &mut Vec<f32>) {
        let start = out.len();
        match self.norm {
            Norm::Max => {
                let max = row.iter().fold(f32::MIN, |m, &x| m.max(x.to_f32()));
                out.extend(row.iter().map(|&x| x.to_f32()));
                if max != 0.0 {
                    out[start..].iter_mut().for_each(|y| *y /= max);
                }
            }
            Norm::L1 => {
                let sum: f32 = row.iter().fold(0.0, |s, &x| s + x.abs_f32());
                out.extend(row.iter().map(|&x| x.to_f32()));
                if sum != 0.0 {
                    out[start..].iter_mut().for_each(|y| *y /= sum);
                }
            }
            Norm::L2 => {
                let sum: f32 = row.iter().fold(0.0, |s, &x| s + x.square_f32());
                if sum != 0.0 {
                    out.extend(row.iter().map(|&x| {
                        let y = (x.square_f32() / sum).sqrt();
                        if x.is_negative() { -y } else { y }
                    }));
                } else {
                    out.extend(row.iter().map(|&x| x.to_f32()));
                }
            }
        }
    }
}

impl Op for Normalizer {
    fn name(&self) -> StaticName {
        "Normalizer".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?}", self.norm)])
    }

    op_as_typed_op!();
}

impl EvalOp for Normalizer {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let output = match input.datum_type() {
            DatumType::F32 => self.normalize::<f32>(&input)?,
            DatumType::F64 => self.normalize::<f64>(&input)?,
            DatumType::I32 => self.normalize::<i32>(&input)?,
            DatumType::I64 => self.normalize::<i64>(&input)?,
            other => {
                return Err(self
                    .site
                    .unsupported_dtype("the input", other, &INPUT_TYPES)
                    .into());
            }
        };
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Normalizer {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(DatumType::F32.fact(inputs[0].shape.clone())))
    }

    as_op!();
}

pub(super) fn register_nnef(registry: &mut Registry) {
    registry.register_primitive(
        primitive("normalizer"),
        &[tensor_param("input"), string_param("norm"), node_param()],
        &[("output", TypeName::Scalar.tensor())],
        load_nnef,
    );
    registry.register_dumper(dump_nnef);
}

fn dump_nnef(
    ast: &mut IntoAst,
    node: &TypedNode,
    op: &Normalizer,
) -> TractResult<Option<Arc<RValue>>> {
    let x = ast.mapping[&node.inputs[0]].clone();
    let norm = match op.norm {
        Norm::Max => "MAX",
        Norm::L1 => "L1",
        Norm::L2 => "L2",
    };
    Ok(Some(invocation(
        primitive("normalizer"),
        &[x],
        &[("norm", string(norm)), node_arg(&op.site)],
    )))
}

fn load_nnef(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
) -> TractResult<NnefValue> {
    let x = input(builder, invocation, "input")?;
    let site = site(builder, invocation, "Normalizer")?;
    let norm = match invocation.named_arg_as::<String>(builder, "norm")?.as_str() {
        "MAX" => Norm::Max,
        "L1" => Norm::L1,
        "L2" => Norm::L2,
        other => {
            return Err(site
                .attribute("norm", format!("is {other:?}; it must be MAX, L1 or L2"))
                .into());
        }
    };
    builder.wire(Normalizer { site, norm }, &[x])
}
