//! `OneHotEncoder` (ai.onnx.ml): each input value becomes a row of zeros with a one at its
//! category's position, so the output has one more axis than the input. tract 0.23 has none.
//!
//! As in onnxruntime: numbers are truncated to int64 before the lookup, where NaN, infinities
//! and out-of-range values become the smallest int64 (what x86's conversion gives, so NaN matches
//! no ordinary category, not 0); a category listed twice lights up its last position; an unknown
//! value gives a row of zeros, or an error when `zeros` is 0.

use std::collections::HashMap;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use tract_nnef::internal::{
    IntoAst, ModelBuilder, RValue, Registry, ResolvedInvocation, TypeName, Value as NnefValue,
    invocation, logical,
};

use super::common::{Attrs, MlOpError, Site, tensor_from, values};
use super::nnef::{
    input, list_arg, list_args, list_params, named, node_arg, node_param, primitive, site,
    tensor_param,
};

/// The categories in attribute order, and where each value lights up.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Categories {
    Ints {
        list: Vec<i64>,
        index: HashMap<i64, usize>,
    },
    Strings {
        list: Vec<String>,
        index: HashMap<String, usize>,
    },
}

impl Categories {
    /// Later positions overwrite earlier ones, as onnxruntime's map assignment does.
    fn ints(list: Vec<i64>) -> Categories {
        let index = list.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        Categories::Ints { list, index }
    }

    fn strings(list: Vec<String>) -> Categories {
        let index = list
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        Categories::Strings { list, index }
    }

    fn count(&self) -> usize {
        match self {
            Categories::Ints { list, .. } => list.len(),
            Categories::Strings { list, .. } => list.len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct OneHotEncoder {
    site: Site,
    categories: Categories,
    count: usize,
    /// Unknown values give a row of zeros (else an error).
    zeros: bool,
}

pub(super) fn build(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new("OneHotEncoder", node)?;
    let ints = attrs.ints("cats_int64s")?.unwrap_or_default();
    let strings = attrs.strings("cats_strings")?.unwrap_or_default();
    let categories = match (ints.is_empty(), strings.is_empty()) {
        (false, true) => Categories::ints(ints),
        (true, false) => Categories::strings(strings),
        (true, true) => {
            return Err(attrs
                .error(
                    "cats_int64s",
                    "and `cats_strings` are both missing or empty; give one of them",
                )
                .into());
        }
        (false, false) => {
            return Err(attrs
                .error(
                    "cats_int64s",
                    "and `cats_strings` are both given; keep only one",
                )
                .into());
        }
    };
    let zeros = attrs.int("zeros")?.unwrap_or(1) != 0;
    let count = categories.count();
    Ok((
        expand(OneHotEncoder {
            site: attrs.site,
            categories,
            count,
            zeros,
        }),
        vec![],
    ))
}

/// onnxruntime's `static_cast<int64_t>` of a float on x86: truncation, and the "integer
/// indefinite" value `i64::MIN` for NaN, infinities and values out of range (Rust's `as` would
/// saturate, and map NaN to 0).
fn to_i64(x: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    let t = x.trunc();
    if (-LIMIT..LIMIT).contains(&t) {
        t as i64
    } else {
        i64::MIN
    }
}

impl OneHotEncoder {
    fn check_input(&self, dt: DatumType) -> Result<(), MlOpError> {
        let ok = match self.categories {
            Categories::Strings { .. } => dt == DatumType::String,
            // tract reads ONNX's `Cast(to=INT64)`, which skl2onnx puts before a numeric
            // category column, as a cast to its symbolic integers (TDim).
            Categories::Ints { .. } => {
                matches!(
                    dt,
                    DatumType::I64 | DatumType::TDim | DatumType::F32 | DatumType::F64
                )
            }
        };
        if ok {
            return Ok(());
        }
        let (attribute, takes) = match self.categories {
            Categories::Strings { .. } => ("cats_strings", "String"),
            Categories::Ints { .. } => ("cats_int64s", "I64, F32 or F64"),
        };
        Err(self.site.input(format!(
            "the input is {dt:?}, but with `{attribute}` this operator takes {takes} (onnxruntime \
             would match nothing, or not run)"
        )))
    }

    /// The category position of each value, `None` for unknown ones.
    fn positions(&self, input: &Tensor) -> TractResult<Vec<Option<usize>>> {
        let ints = |keys: &mut dyn Iterator<Item = i64>| -> TractResult<Vec<Option<usize>>> {
            let Categories::Ints { index: map, .. } = &self.categories else {
                return Err(self
                    .site
                    .value("integer input with string categories")
                    .into());
            };
            Ok(keys.map(|k| map.get(&k).copied()).collect())
        };
        match input.datum_type() {
            DatumType::String => {
                let Categories::Strings { index: map, .. } = &self.categories else {
                    return Err(self
                        .site
                        .value("string input with integer categories")
                        .into());
                };
                Ok(values::<String>(input)?
                    .iter()
                    .map(|s| map.get(s).copied())
                    .collect())
            }
            DatumType::I64 => ints(&mut values::<i64>(input)?.iter().copied()),
            DatumType::TDim => {
                let keys = values::<TDim>(input)?
                    .iter()
                    .map(|d| d.to_i64().map_err(|e| self.site.value(e.to_string())))
                    .collect::<Result<Vec<i64>, MlOpError>>()?;
                ints(&mut keys.into_iter())
            }
            DatumType::F32 => ints(&mut values::<f32>(input)?.iter().map(|&x| to_i64(x as f64))),
            DatumType::F64 => ints(&mut values::<f64>(input)?.iter().map(|&x| to_i64(x))),
            other => Err(self
                .site
                .unsupported_dtype("the input", other, &[DatumType::String])
                .into()),
        }
    }

    /// A description of the `index`-th input value, for the unknown-category error.
    fn describe(input: &Tensor, index: usize) -> String {
        let text = |s: Option<String>| s.unwrap_or_else(|| "?".into());
        match input.datum_type() {
            DatumType::String => text(
                values::<String>(input)
                    .ok()
                    .and_then(|v| v.get(index).map(|s| format!("{s:?}"))),
            ),
            DatumType::I64 => text(
                values::<i64>(input)
                    .ok()
                    .and_then(|v| v.get(index).map(|x| x.to_string())),
            ),
            DatumType::TDim => text(
                values::<TDim>(input)
                    .ok()
                    .and_then(|v| v.get(index).map(|x| x.to_string())),
            ),
            DatumType::F32 => text(
                values::<f32>(input)
                    .ok()
                    .and_then(|v| v.get(index).map(|x| x.to_string())),
            ),
            DatumType::F64 => text(
                values::<f64>(input)
                    .ok()
                    .and_then(|v| v.get(index).map(|x| x.to_string())),
            ),
            _ => "?".into(),
        }
    }
}

impl Expansion for OneHotEncoder {
    fn name(&self) -> StaticName {
        "OneHotEncoder".into()
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
        s.equals(&outputs[0].rank, inputs[0].rank.bex() + 1)?;
        s.given(
            &inputs[0].datum_type,
            move |_, dt| Ok(self.check_input(dt)?),
        )?;
        s.given(&inputs[0].rank, move |s, rank| {
            let rank = rank as usize;
            for axis in 0..rank {
                s.equals(&outputs[0].shape[axis], &inputs[0].shape[axis])?;
            }
            s.equals(&outputs[0].shape[rank], self.count.to_dim())
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
        model.wire_node(prefix, self.clone(), inputs)
    }
}

impl Op for OneHotEncoder {
    fn name(&self) -> StaticName {
        "OneHotEncoder".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{} categories", self.count)])
    }

    op_as_typed_op!();
}

impl EvalOp for OneHotEncoder {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let positions = self.positions(&input)?;
        let mut out = vec![0f32; positions.len() * self.count];
        for (i, position) in positions.iter().enumerate() {
            match position {
                Some(p) => out[i * self.count + p] = 1.0,
                None if self.zeros => {}
                None => {
                    return Err(self
                        .site
                        .value(format!(
                            "value {} (at {i}) is not a category, and `zeros` is 0",
                            Self::describe(&input, i)
                        ))
                        .into());
                }
            }
        }
        let mut shape = input.shape().to_vec();
        shape.push(self.count);
        Ok(tvec!(tensor_from(&shape, out)?.into_tvalue()))
    }
}

impl TypedOp for OneHotEncoder {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        shape.push(self.count.to_dim());
        Ok(tvec!(DatumType::F32.fact(&*shape)))
    }

    as_op!();
}

pub(super) fn register_nnef(registry: &mut Registry) {
    registry.register_primitive(
        primitive("one_hot_encoder"),
        &[
            &[tensor_param("input")][..],
            &list_params("categories"),
            &[TypeName::Logical.named("zeros"), node_param()],
        ]
        .concat(),
        &[("output", TypeName::Scalar.tensor())],
        load_nnef,
    );
    registry.register_dumper(dump_nnef);
}

fn dump_nnef(
    ast: &mut IntoAst,
    node: &TypedNode,
    op: &OneHotEncoder,
) -> TractResult<Option<Arc<RValue>>> {
    let x = ast.mapping[&node.inputs[0]].clone();
    let categories = match &op.categories {
        Categories::Ints { list, .. } => tensor1(list),
        Categories::Strings { list, .. } => tensor1(list),
    };
    let lists = list_args(ast, node, "categories", categories)?;
    let mut args = named(&lists);
    args.extend([("zeros", logical(op.zeros)), node_arg(&op.site)]);
    Ok(Some(invocation(primitive("one_hot_encoder"), &[x], &args)))
}

fn load_nnef(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
) -> TractResult<NnefValue> {
    let x = input(builder, invocation, "input")?;
    let site = site(builder, invocation, "OneHotEncoder")?;
    let list = list_arg(builder, invocation, &site, "categories")?;
    let categories = match list.datum_type() {
        DatumType::I64 => Categories::ints(values::<i64>(&list)?.to_vec()),
        DatumType::String => Categories::strings(values::<String>(&list)?.to_vec()),
        other => {
            return Err(site
                .attribute(
                    "categories",
                    format!("are {other:?}; they must be I64 or String"),
                )
                .into());
        }
    };
    let count = categories.count();
    if count == 0 {
        return Err(site.attribute("categories", "are empty").into());
    }
    let zeros = invocation.named_arg_as(builder, "zeros")?;
    builder.wire(
        OneHotEncoder {
            site,
            categories,
            count,
            zeros,
        },
        &[x],
    )
}
