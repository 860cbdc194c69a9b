//! `Imputer` (ai.onnx.ml): replaces one value (often NaN) by a value per feature, scikit-learn's
//! SimpleImputer. tract 0.23 has none. As in onnxruntime, f32 inputs use the float attributes and
//! int64 inputs the integer ones, and a NaN `replaced_value_float` matches every NaN.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use tract_nnef::internal::{
    IntoAst, ModelBuilder, RValue, Registry, ResolvedInvocation, TypeName, Value as NnefValue,
    invocation,
};

use super::common::{Attrs, Site, tensor_from, values};
use super::nnef::{input, konst, node_arg, node_param, primitive, site, tensor, tensor_param};

/// What replaces what, in the input's type.
#[derive(Debug, Clone)]
enum Imputation {
    Floats { imputed: Vec<f32>, replaced: f32 },
    Ints { imputed: Vec<i64>, replaced: i64 },
}

impl PartialEq for Imputation {
    fn eq(&self, other: &Imputation) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        match (self, other) {
            (
                Imputation::Floats {
                    imputed: a,
                    replaced: x,
                },
                Imputation::Floats {
                    imputed: b,
                    replaced: y,
                },
            ) => bits(a) == bits(b) && x.to_bits() == y.to_bits(),
            (
                Imputation::Ints {
                    imputed: a,
                    replaced: x,
                },
                Imputation::Ints {
                    imputed: b,
                    replaced: y,
                },
            ) => a == b && x == y,
            _ => false,
        }
    }
}

impl Eq for Imputation {}

impl Imputation {
    fn len(&self) -> usize {
        match self {
            Imputation::Floats { imputed, .. } => imputed.len(),
            Imputation::Ints { imputed, .. } => imputed.len(),
        }
    }

    fn datum_type(&self) -> DatumType {
        match self {
            Imputation::Floats { .. } => DatumType::F32,
            Imputation::Ints { .. } => DatumType::I64,
        }
    }

    fn attribute(&self) -> &'static str {
        match self {
            Imputation::Floats { .. } => "imputed_value_floats",
            Imputation::Ints { .. } => "imputed_value_int64s",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Imputer {
    site: Site,
    imputation: Imputation,
}

pub(super) fn build(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new("Imputer", node)?;
    let floats = attrs.floats("imputed_value_floats")?.unwrap_or_default();
    let ints = attrs.ints("imputed_value_int64s")?.unwrap_or_default();
    // The replaced values default to 0, the schema's defaults, which onnxruntime applies.
    let replaced_float = attrs.float("replaced_value_float")?.unwrap_or(0.0);
    let replaced_int = attrs.int("replaced_value_int64")?.unwrap_or(0);
    let imputation = match (floats.is_empty(), ints.is_empty()) {
        (false, true) => Imputation::Floats {
            imputed: floats,
            replaced: replaced_float,
        },
        (true, false) => Imputation::Ints {
            imputed: ints,
            replaced: replaced_int,
        },
        (true, true) => {
            return Err(attrs
                .error(
                    "imputed_value_floats",
                    "and `imputed_value_int64s` are both missing or empty; give one of them",
                )
                .into());
        }
        (false, false) => {
            return Err(attrs
                .error(
                    "imputed_value_floats",
                    "and `imputed_value_int64s` are both given; keep only one",
                )
                .into());
        }
    };
    Ok((
        expand(Imputer {
            site: attrs.site,
            imputation,
        }),
        vec![],
    ))
}

impl Imputer {
    /// Checks the input type and, once known, its number of features against the attribute.
    fn check_input(&self, dt: DatumType) -> Result<(), super::common::MlOpError> {
        if dt != self.imputation.datum_type() {
            return Err(self.site.input(format!(
                "the input is {dt:?}, but `{}` imputes {:?} values (onnxruntime's Imputer takes F32 \
                 with the float attributes and I64 with the int64 ones)",
                self.imputation.attribute(),
                self.imputation.datum_type()
            )));
        }
        Ok(())
    }

    fn check_features(&self, features: &TDim) -> Result<(), super::common::MlOpError> {
        let n = self.imputation.len();
        match features.to_usize() {
            // onnxruntime silently uses the first value for every feature when the lengths
            // differ; tiffin refuses such a model instead.
            Ok(f) if n != 1 && n != f => Err(self.site.attribute(
                self.imputation.attribute(),
                format!("has {n} values but the input has {f} features; give one per feature, or one for all"),
            )),
            _ => Ok(()),
        }
    }
}

impl Expansion for Imputer {
    fn name(&self) -> StaticName {
        "Imputer".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, &inputs[0].datum_type)?;
        s.equals(&outputs[0].shape, &inputs[0].shape)?;
        s.given(
            &inputs[0].datum_type,
            move |_, dt| Ok(self.check_input(dt)?),
        )?;
        s.given(&inputs[0].rank, move |s, rank| {
            let rank = rank as usize;
            self.site.check_rank("the input", rank, 1, 2)?;
            if self.imputation.len() > 1 {
                s.equals(&inputs[0].shape[rank - 1], self.imputation.len().to_dim())?;
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
        let fact = model.outlet_fact(inputs[0])?;
        self.check_input(fact.datum_type)?;
        self.site.check_rank("the input", fact.rank(), 1, 2)?;
        self.check_features(&fact.shape[fact.rank() - 1])?;
        model.wire_node(prefix, self.clone(), inputs)
    }
}

/// Replaces in `x` (rows of `width`) what `is_replaced` picks, by `imputed[column]`, or by
/// `imputed[0]` for every column when there is one value.
fn impute<T: Datum + Copy>(
    x: &[T],
    width: usize,
    imputed: &[T],
    is_replaced: impl Fn(T) -> bool,
) -> Vec<T> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            if !is_replaced(v) {
                v
            } else if imputed.len() == width && width > 0 {
                imputed[i % width]
            } else {
                imputed[0]
            }
        })
        .collect()
}

impl Op for Imputer {
    fn name(&self) -> StaticName {
        "Imputer".into()
    }

    op_as_typed_op!();
}

impl EvalOp for Imputer {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        self.check_input(input.datum_type())?;
        let shape = input.shape();
        let width = shape.last().copied().unwrap_or(1);
        self.check_features(&width.to_dim())?;
        let output = match &self.imputation {
            Imputation::Floats { imputed, replaced } => {
                let replaced = *replaced;
                let y = impute(values::<f32>(&input)?, width, imputed, |v| {
                    (v.is_nan() && replaced.is_nan()) || v == replaced
                });
                tensor_from(shape, y)?
            }
            Imputation::Ints { imputed, replaced } => tensor_from(
                shape,
                impute(values::<i64>(&input)?, width, imputed, |v| v == *replaced),
            )?,
        };
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Imputer {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].datum_type.fact(inputs[0].shape.clone())))
    }

    as_op!();
}

pub(super) fn register_nnef(registry: &mut Registry) {
    registry.register_primitive(
        primitive("imputer"),
        &[
            tensor_param("input"),
            tensor_param("imputed"),
            tensor_param("replaced"),
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
    op: &Imputer,
) -> TractResult<Option<Arc<RValue>>> {
    let x = ast.mapping[&node.inputs[0]].clone();
    let (imputed, replaced) = match &op.imputation {
        Imputation::Floats { imputed, replaced } => (tensor1(imputed), tensor0(*replaced)),
        Imputation::Ints { imputed, replaced } => (tensor1(imputed), tensor0(*replaced)),
    };
    let imputed = konst(ast, node, "imputed", imputed)?;
    let replaced = konst(ast, node, "replaced", replaced)?;
    Ok(Some(invocation(
        primitive("imputer"),
        &[x, imputed, replaced],
        &[node_arg(&op.site)],
    )))
}

fn load_nnef(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
) -> TractResult<NnefValue> {
    let x = input(builder, invocation, "input")?;
    let site = site(builder, invocation, "Imputer")?;
    let imputed = tensor(builder, invocation, "imputed")?;
    let replaced = tensor(builder, invocation, "replaced")?;
    let imputation = match (imputed.datum_type(), replaced.datum_type()) {
        (DatumType::F32, DatumType::F32) => Imputation::Floats {
            imputed: values::<f32>(&imputed)?.to_vec(),
            replaced: *replaced.try_as_plain_ram()?.to_scalar::<f32>()?,
        },
        (DatumType::I64, DatumType::I64) => Imputation::Ints {
            imputed: values::<i64>(&imputed)?.to_vec(),
            replaced: *replaced.try_as_plain_ram()?.to_scalar::<i64>()?,
        },
        (a, b) => {
            return Err(site
                .attribute(
                    "imputed",
                    format!("is {a:?} and the replaced value {b:?}; both must be F32 or I64"),
                )
                .into());
        }
    };
    if imputation.len() == 0 {
        return Err(site.attribute("imputed", "is empty").into());
    }
    builder.wire(Imputer { site, imputation }, &[x])
}
