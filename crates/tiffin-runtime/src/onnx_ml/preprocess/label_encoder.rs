//! `LabelEncoder` (ai.onnx.ml): maps each input value to another through a table of keys and
//! values, with a default for the rest. tract 0.23 has none. The attributes depend on the
//! ai.onnx.ml opset the model imports, and so does onnxruntime's behaviour:
//! - opset 1: `classes_strings`; a string input becomes its index (the last one when a class is
//!   listed twice, `default_int64` = -1 when unknown), an int64 input becomes the class at that
//!   index (`default_string` = "_Unused" otherwise);
//! - opsets 2 and 3: `keys_*` and `values_*` lists of strings, int64s or floats, the first of
//!   repeated keys winning, defaults `default_string` "_Unused", `default_int64` -1,
//!   `default_float` -0.0; float keys compare as floats (-0.0 finds 0.0, NaN finds nothing);
//! - opset 4 and later: the same, plus `keys_tensor`, `values_tensor` and `default_tensor`, and a
//!   NaN key that NaN inputs find.

use std::collections::HashMap;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::{NodeProto, TensorProto};
use tract_onnx::tract_hir::internal::*;

use tract_nnef::internal::{
    IntoAst, ModelBuilder, RValue, Registry, ResolvedInvocation, TypeName, Value as NnefValue,
    invocation, logical,
};

use super::common::{Attrs, MlOpError, Site, ml_opset, tensor_from, values};
use super::nnef::{
    input, list_arg, list_args, list_params, named, node_arg, node_param, primitive, site,
    tensor_param,
};

/// A list of keys or values, in one of the three types LabelEncoder maps between.
#[derive(Debug, Clone)]
enum List {
    Ints(Vec<i64>),
    Strings(Vec<String>),
    Floats(Vec<f32>),
}

impl List {
    fn len(&self) -> usize {
        match self {
            List::Ints(v) => v.len(),
            List::Strings(v) => v.len(),
            List::Floats(v) => v.len(),
        }
    }

    fn datum_type(&self) -> DatumType {
        match self {
            List::Ints(_) => DatumType::I64,
            List::Strings(_) => DatumType::String,
            List::Floats(_) => DatumType::F32,
        }
    }

    /// Element-wise equality, floats by their bits (the derive would say NaN != NaN).
    fn same(&self, other: &List) -> bool {
        match (self, other) {
            (List::Ints(a), List::Ints(b)) => a == b,
            (List::Strings(a), List::Strings(b)) => a == b,
            (List::Floats(a), List::Floats(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            _ => false,
        }
    }

    /// The value at `index` (below `len`) or `default`, the same variant, for each position.
    fn gather(
        &self,
        positions: &[Option<usize>],
        default: &List,
        shape: &[usize],
    ) -> TractResult<Tensor> {
        fn pick<T: Datum + Clone + Default>(
            v: &[T],
            d: &[T],
            positions: &[Option<usize>],
            shape: &[usize],
        ) -> TractResult<Tensor> {
            let fallback = d.first().cloned().unwrap_or_default();
            tensor_from(
                shape,
                positions
                    .iter()
                    .map(|p| p.map_or_else(|| fallback.clone(), |i| v[i].clone()))
                    .collect(),
            )
        }
        match (self, default) {
            (List::Ints(v), List::Ints(d)) => pick(v, d, positions, shape),
            (List::Strings(v), List::Strings(d)) => pick(v, d, positions, shape),
            (List::Floats(v), List::Floats(d)) => pick(v, d, positions, shape),
            _ => bail!("LabelEncoder values and default of different types"),
        }
    }
}

impl List {
    fn to_tensor(&self) -> Tensor {
        match self {
            List::Ints(v) => tensor1(v),
            List::Strings(v) => tensor1(v),
            List::Floats(v) => tensor1(v),
        }
    }

    fn from_tensor(t: &Tensor) -> TractResult<Option<List>> {
        Ok(match t.datum_type() {
            DatumType::I64 => Some(List::Ints(values::<i64>(t)?.to_vec())),
            DatumType::String => Some(List::Strings(values::<String>(t)?.to_vec())),
            DatumType::F32 => Some(List::Floats(values::<f32>(t)?.to_vec())),
            _ => None,
        })
    }
}

/// A float key as the hash maps see it: -0.0 is 0.0. NaN is kept apart (see [`Lookup`]).
fn float_key(x: f32) -> u32 {
    if x == 0.0 { 0 } else { x.to_bits() }
}

/// From an input value to the position of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lookup {
    Ints(HashMap<i64, usize>),
    Strings(HashMap<String, usize>),
    Floats {
        map: HashMap<u32, usize>,
        /// Where NaN inputs go: the first NaN key from opset 4 on, nowhere before.
        nan: Option<usize>,
    },
}

impl Lookup {
    /// `first_wins`: onnxruntime's opset 2+ tables keep the first of repeated keys (`emplace`),
    /// its opset 1 table the last (assignment).
    fn new(keys: &List, first_wins: bool, nan_matches: bool) -> Lookup {
        fn table<K: std::hash::Hash + Eq>(
            keys: impl Iterator<Item = K>,
            first_wins: bool,
        ) -> HashMap<K, usize> {
            let mut map = HashMap::new();
            for (i, k) in keys.enumerate() {
                if first_wins {
                    map.entry(k).or_insert(i);
                } else {
                    map.insert(k, i);
                }
            }
            map
        }
        match keys {
            List::Ints(k) => Lookup::Ints(table(k.iter().copied(), first_wins)),
            List::Strings(k) => Lookup::Strings(table(k.iter().cloned(), first_wins)),
            List::Floats(k) => Lookup::Floats {
                map: table(
                    k.iter().filter(|x| !x.is_nan()).map(|&x| float_key(x)),
                    first_wins,
                ),
                nan: if nan_matches {
                    k.iter().position(|x| x.is_nan())
                } else {
                    None
                },
            },
        }
    }

    fn datum_type(&self) -> DatumType {
        match self {
            Lookup::Ints(_) => DatumType::I64,
            Lookup::Strings(_) => DatumType::String,
            Lookup::Floats { .. } => DatumType::F32,
        }
    }

    fn positions(&self, input: &Tensor) -> TractResult<Vec<Option<usize>>> {
        Ok(match self {
            Lookup::Ints(map) => values::<i64>(input)?
                .iter()
                .map(|k| map.get(k).copied())
                .collect(),
            Lookup::Strings(map) => values::<String>(input)?
                .iter()
                .map(|k| map.get(k).copied())
                .collect(),
            Lookup::Floats { map, nan } => values::<f32>(input)?
                .iter()
                .map(|&k| {
                    if k.is_nan() {
                        *nan
                    } else {
                        map.get(&float_key(k)).copied()
                    }
                })
                .collect(),
        })
    }
}

/// The mapping, once its direction is known.
#[derive(Debug, Clone)]
struct Table {
    keys: List,
    values: List,
    /// One value, of the values' type.
    default: List,
    /// Repeated keys: the first one wins (opset 2 and later), else the last (opset 1).
    first_wins: bool,
    /// A NaN key matches NaN inputs (opset 4 and later).
    nan_matches: bool,
    lookup: Lookup,
}

impl Table {
    /// Callers guarantee as many keys as values and one default of the values' type.
    fn new(keys: List, values: List, default: List, first_wins: bool, nan_matches: bool) -> Table {
        let lookup = Lookup::new(&keys, first_wins, nan_matches);
        Table {
            keys,
            values,
            default,
            first_wins,
            nan_matches,
            lookup,
        }
    }
}

impl PartialEq for Table {
    fn eq(&self, other: &Table) -> bool {
        self.keys.same(&other.keys)
            && self.values.same(&other.values)
            && self.default.same(&other.default)
            && self.first_wins == other.first_wins
            && self.nan_matches == other.nan_matches
    }
}

impl Eq for Table {}

/// The forms the attributes take.
#[derive(Debug, Clone)]
enum Form {
    /// Opset 1: the direction follows the input type.
    Classes {
        classes: Vec<String>,
        default_int: i64,
        default_string: String,
    },
    /// Opsets 2 and later: one direction, fixed by the attributes.
    Table(Table),
}

#[derive(Debug, Clone)]
struct LabelEncoder {
    site: Site,
    form: Form,
}

pub(super) fn build(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new("LabelEncoder", node)?;
    // Without an ai.onnx.ml import (onnxruntime would refuse the model), the attributes decide.
    let opset = ml_opset(ctx).unwrap_or(if attrs.strings("classes_strings")?.is_some() {
        1
    } else {
        2
    });
    let form = if opset <= 1 {
        parse_classes(&attrs)?
    } else {
        Form::Table(parse_table(ctx, &attrs, opset)?)
    };
    Ok((
        expand(LabelEncoder {
            site: attrs.site,
            form,
        }),
        vec![],
    ))
}

fn parse_classes(attrs: &Attrs) -> Result<Form, MlOpError> {
    let Some(classes) = attrs.strings("classes_strings")? else {
        return Err(attrs.error(
            "classes_strings",
            "is missing; ai.onnx.ml opset 1 LabelEncoder maps between strings and their positions in it \
             (`keys_*`/`values_*` need opset 2)",
        ));
    };
    Ok(Form::Classes {
        classes,
        default_int: attrs.int("default_int64")?.unwrap_or(-1),
        default_string: attrs
            .string("default_string")?
            .unwrap_or_else(|| "_Unused".into()),
    })
}

/// Reads the one list among `{prefix}_strings`, `{prefix}_int64s`, `{prefix}_floats` and, from
/// opset 4, `{prefix}_tensor`.
fn one_list(
    ctx: &ParsingContext,
    attrs: &Attrs,
    prefix: &str,
    opset: i64,
) -> Result<List, MlOpError> {
    let mut found: Vec<(String, List)> = vec![];
    let name = |suffix: &str| format!("{prefix}_{suffix}");
    if let Some(v) = attrs.strings(&name("strings"))? {
        found.push((name("strings"), List::Strings(v)));
    }
    if let Some(v) = attrs.ints(&name("int64s"))? {
        found.push((name("int64s"), List::Ints(v)));
    }
    if let Some(v) = attrs.floats(&name("floats"))? {
        found.push((name("floats"), List::Floats(v)));
    }
    if let Some(t) = attrs.tensor(&name("tensor"))? {
        if opset < 4 {
            return Err(attrs.error(
                &name("tensor"),
                format!("needs ai.onnx.ml opset 4; the model imports {opset}"),
            ));
        }
        found.push((name("tensor"), tensor_list(ctx, attrs, &name("tensor"), t)?));
    }
    match found.len() {
        1 => Ok(found.remove(0).1),
        0 => Err(attrs.error(
            &name("strings"),
            format!(
                "is missing, and so are `{}` and `{}`; give the {prefix} as one of them",
                name("int64s"),
                name("floats")
            ),
        )),
        _ => {
            let names: Vec<String> = found.iter().map(|(n, _)| format!("`{n}`")).collect();
            Err(attrs.error(
                &found[0].0,
                format!(
                    "is given along with {}; keep only one",
                    names[1..].join(", ")
                ),
            ))
        }
    }
}

/// A tensor attribute (opset 4) as a list of one of the three supported types.
fn tensor_list(
    ctx: &ParsingContext,
    attrs: &Attrs,
    attribute: &str,
    t: &TensorProto,
) -> Result<List, MlOpError> {
    let tensor = ctx
        .load_tensor(t)
        .map_err(|e| attrs.error(attribute, format!("is not a readable tensor: {e}")))?;
    let read = |e: TractError| attrs.error(attribute, format!("is not a readable tensor: {e}"));
    Ok(match tensor.datum_type() {
        DatumType::I64 => List::Ints(values::<i64>(&tensor).map_err(read)?.to_vec()),
        DatumType::F32 => List::Floats(values::<f32>(&tensor).map_err(read)?.to_vec()),
        DatumType::String => List::Strings(values::<String>(&tensor).map_err(read)?.to_vec()),
        other => {
            return Err(attrs.error(
                attribute,
                format!("holds {other:?} values; tiffin's LabelEncoder maps strings, int64s and f32 floats"),
            ));
        }
    })
}

fn parse_table(ctx: &ParsingContext, attrs: &Attrs, opset: i64) -> Result<Table, MlOpError> {
    if attrs.strings("classes_strings")?.is_some() {
        return Err(attrs.error(
            "classes_strings",
            format!("belongs to ai.onnx.ml opset 1, but the model imports opset {opset}; use `keys_*` and `values_*`"),
        ));
    }
    let keys = one_list(ctx, attrs, "keys", opset)?;
    let values = one_list(ctx, attrs, "values", opset)?;
    if keys.len() != values.len() {
        return Err(attrs.error(
            "values",
            format!(
                "has {} entries but the keys have {}; give one value per key",
                values.len(),
                keys.len()
            ),
        ));
    }
    let from_tensor = match attrs.tensor("default_tensor")? {
        Some(_) if opset < 4 => {
            return Err(attrs.error(
                "default_tensor",
                format!("needs ai.onnx.ml opset 4; the model imports {opset}"),
            ));
        }
        Some(t) => {
            let list = tensor_list(ctx, attrs, "default_tensor", t)?;
            if list.datum_type() != values.datum_type() || list.len() == 0 {
                return Err(attrs.error(
                    "default_tensor",
                    format!(
                        "must hold one {:?} value, like the values",
                        values.datum_type()
                    ),
                ));
            }
            Some(list)
        }
        None => None,
    };
    let default = match (from_tensor, &values) {
        (Some(list), _) => list,
        (None, List::Ints(_)) => List::Ints(vec![attrs.int("default_int64")?.unwrap_or(-1)]),
        (None, List::Strings(_)) => List::Strings(vec![
            attrs
                .string("default_string")?
                .unwrap_or_else(|| "_Unused".into()),
        ]),
        (None, List::Floats(_)) => {
            List::Floats(vec![attrs.float("default_float")?.unwrap_or(-0.0)])
        }
    };
    Ok(Table::new(keys, values, default, true, opset >= 4))
}

impl LabelEncoder {
    /// The output type for an input type, or why that input does not fit.
    fn output_type(&self, input: DatumType) -> Result<DatumType, MlOpError> {
        match &self.form {
            Form::Classes { .. } => match input {
                DatumType::String => Ok(DatumType::I64),
                DatumType::I64 => Ok(DatumType::String),
                other => Err(self.site.input(format!(
                    "the input is {other:?}, but an opset 1 LabelEncoder takes String (to I64) or I64 (to String)"
                ))),
            },
            Form::Table(table) => {
                let keys = table.lookup.datum_type();
                if input == keys {
                    Ok(table.values.datum_type())
                } else {
                    Err(self.site.input(format!("the input is {input:?}, but the keys are {keys:?}")))
                }
            }
        }
    }

    /// The table for an input type (opset 1 picks its direction here).
    fn table(&self, input: DatumType) -> Result<Table, MlOpError> {
        self.output_type(input)?;
        Ok(match &self.form {
            Form::Table(table) => table.clone(),
            Form::Classes {
                classes,
                default_int,
                ..
            } if input == DatumType::String => Table::new(
                List::Strings(classes.clone()),
                List::Ints((0..classes.len() as i64).collect()),
                List::Ints(vec![*default_int]),
                false,
                false,
            ),
            Form::Classes {
                classes,
                default_string,
                ..
            } => Table::new(
                List::Ints((0..classes.len() as i64).collect()),
                List::Strings(classes.clone()),
                List::Strings(vec![default_string.clone()]),
                false,
                false,
            ),
        })
    }
}

impl Expansion for LabelEncoder {
    fn name(&self) -> StaticName {
        "LabelEncoder".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].shape, &inputs[0].shape)?;
        s.given(&inputs[0].datum_type, move |s, dt| {
            s.equals(&outputs[0].datum_type, self.output_type(dt)?)
        })
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let table = self.table(model.outlet_fact(inputs[0])?.datum_type)?;
        model.wire_node(
            prefix,
            LabelEncoderOp {
                site: self.site.clone(),
                table,
            },
            inputs,
        )
    }
}

/// The typed operator: one table, one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LabelEncoderOp {
    site: Site,
    table: Table,
}

impl Op for LabelEncoderOp {
    fn name(&self) -> StaticName {
        "LabelEncoder".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{:?} to {:?}, {} entries",
            self.table.lookup.datum_type(),
            self.table.values.datum_type(),
            self.table.values.len()
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for LabelEncoderOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let keys = self.table.lookup.datum_type();
        if input.datum_type() != keys {
            return Err(self
                .site
                .value(format!(
                    "the input is {:?}, but the keys are {keys:?}",
                    input.datum_type()
                ))
                .into());
        }
        let positions = self.table.lookup.positions(&input)?;
        let output = self
            .table
            .values
            .gather(&positions, &self.table.default, input.shape())?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for LabelEncoderOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(
            self.table.values.datum_type().fact(inputs[0].shape.clone())
        ))
    }

    as_op!();
}

pub(super) fn register_nnef(registry: &mut Registry) {
    registry.register_primitive(
        primitive("label_encoder"),
        &[
            &[tensor_param("input")][..],
            &list_params("keys"),
            &list_params("values"),
            &list_params("default"),
            &[
                TypeName::Logical.named("first_wins"),
                TypeName::Logical.named("nan_matches"),
                node_param(),
            ],
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
    op: &LabelEncoderOp,
) -> TractResult<Option<Arc<RValue>>> {
    let x = ast.mapping[&node.inputs[0]].clone();
    let table = &op.table;
    let mut lists = vec![];
    for (name, list) in [
        ("keys", &table.keys),
        ("values", &table.values),
        ("default", &table.default),
    ] {
        lists.extend(list_args(ast, node, name, list.to_tensor())?);
    }
    let mut args = named(&lists);
    args.extend([
        ("first_wins", logical(table.first_wins)),
        ("nan_matches", logical(table.nan_matches)),
        node_arg(&op.site),
    ]);
    Ok(Some(invocation(primitive("label_encoder"), &[x], &args)))
}

fn load_nnef(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
) -> TractResult<NnefValue> {
    let x = input(builder, invocation, "input")?;
    let site = site(builder, invocation, "LabelEncoder")?;
    let mut list = |name: &str| -> TractResult<List> {
        let t = list_arg(builder, invocation, &site, name)?;
        let dt = t.datum_type();
        List::from_tensor(&t)?.ok_or_else(|| {
            site.attribute(name, format!("are {dt:?}; they must be I64, String or F32"))
                .into()
        })
    };
    let (keys, values, default) = (list("keys")?, list("values")?, list("default")?);
    if keys.len() != values.len() {
        return Err(site
            .attribute(
                "values",
                format!("has {} entries for {} keys", values.len(), keys.len()),
            )
            .into());
    }
    if default.datum_type() != values.datum_type() || default.len() == 0 {
        return Err(site
            .attribute("default", "must hold one value of the values' type")
            .into());
    }
    let first_wins = invocation.named_arg_as(builder, "first_wins")?;
    let nan_matches = invocation.named_arg_as(builder, "nan_matches")?;
    let table = Table::new(keys, values, default, first_wins, nan_matches);
    builder.wire(LabelEncoderOp { site, table }, &[x])
}
