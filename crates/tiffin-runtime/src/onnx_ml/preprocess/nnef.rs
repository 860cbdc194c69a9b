//! NNEF forms of the preprocessing operators tiffin computes itself, so that a model using them
//! can be written as NNEF (`tiffin convert`) and read back: one primitive per operator in the
//! registry `tiffin_onnx_ml`. Tables travel as NNEF tensors, so floats keep their exact bits;
//! lists of strings travel as their UTF-8 bytes and lengths, because tract 0.23 writes string
//! tensor files but cannot read them back ("String doesn't implement num_traits::Zero"). The
//! node's ONNX name travels too, for the errors the operator may raise when it runs.
//! (`Scaler` is made of tract's own operators, which NNEF knows; `ZipMap` leaves none behind.)

use tract_nnef::internal::{
    IntoAst, ModelBuilder, Parameter, RValue, Registry, ResolvedInvocation, TypeName, string,
};
use tract_onnx::prelude::{Arc, DatumType, Tensor, TractResult, TypedNode, tensor1};

use super::common::{Site, values};

/// The registry id, also the prefix of every primitive's name.
pub(crate) const REGISTRY: &str = "tiffin_onnx_ml";

/// The NNEF registry of these operators, to add to tract's NNEF framework both to write and to
/// read models that use them.
pub(crate) fn registry() -> Registry {
    let mut registry = Registry::new(REGISTRY);
    register(&mut registry);
    registry
}

/// Adds these operators' NNEF forms to `registry`.
pub(crate) fn register(registry: &mut Registry) {
    super::array_feature_extractor::register_nnef(registry);
    super::binarizer::register_nnef(registry);
    super::imputer::register_nnef(registry);
    super::label_encoder::register_nnef(registry);
    super::linear_classifier::register_nnef(registry);
    super::normalizer::register_nnef(registry);
    super::one_hot_encoder::register_nnef(registry);
}

/// The primitive's full name.
pub(super) fn primitive(name: &str) -> String {
    format!("{REGISTRY}_{name}")
}

/// A tensor parameter.
pub(super) fn tensor_param(name: &str) -> Parameter {
    TypeName::Scalar.tensor().named(name)
}

/// A string parameter.
pub(super) fn string_param(name: &str) -> Parameter {
    TypeName::String.named(name)
}

/// The parameter that carries the node's ONNX name.
pub(super) fn node_param() -> Parameter {
    string_param("node")
}

/// The node's ONNX name, as a named argument.
pub(super) fn node_arg(site: &Site) -> (&'static str, RValue) {
    ("node", string(&site.node))
}

/// A constant of the node, written beside the graph as an NNEF tensor file.
pub(super) fn konst(
    ast: &mut IntoAst,
    node: &TypedNode,
    what: &str,
    tensor: Tensor,
) -> TractResult<Arc<RValue>> {
    ast.konst_variable(format!("{}.{what}", node.name), &Arc::new(tensor))
}

/// The input wired to the invocation's argument `name`.
pub(super) fn input(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
    name: &str,
) -> TractResult<tract_onnx::prelude::OutletId> {
    invocation.named_arg_as(builder, name)
}

/// The site of a loaded operator: `op` and the node name the archive carries.
pub(super) fn site(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
    op: &'static str,
) -> TractResult<Site> {
    Ok(Site {
        op,
        node: invocation.named_arg_as(builder, "node")?,
    })
}

/// A tensor argument.
pub(super) fn tensor(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
    name: &str,
) -> TractResult<Arc<Tensor>> {
    invocation.named_arg_as(builder, name)
}

/// The two parameters of a list: its values, and the lengths of its strings when it holds some.
pub(super) fn list_params(name: &str) -> [Parameter; 2] {
    [tensor_param(name), tensor_param(&format!("{name}_lengths"))]
}

/// Writes a list of numbers as it is, and a list of strings as its UTF-8 bytes (U8) with the
/// lengths (I64) beside: the named arguments for [`list_params`].
pub(super) fn list_args(
    ast: &mut IntoAst,
    node: &TypedNode,
    name: &str,
    list: Tensor,
) -> TractResult<[(String, RValue); 2]> {
    let (data, lengths) = if list.datum_type() == DatumType::String {
        let strings = values::<String>(&list)?;
        let bytes: Vec<u8> = strings.iter().flat_map(|s| s.bytes()).collect();
        let lengths: Vec<i64> = strings.iter().map(|s| s.len() as i64).collect();
        (tensor1(&bytes), tensor1(&lengths))
    } else {
        (list, tensor1::<i64>(&[]))
    };
    let data = konst(ast, node, name, data)?;
    let lengths_name = format!("{name}_lengths");
    let lengths = konst(ast, node, &lengths_name, lengths)?;
    Ok([
        (name.to_string(), (*data).clone()),
        (lengths_name, (*lengths).clone()),
    ])
}

/// Reads a list written by [`list_args`] back, checking that the lengths fit the bytes.
pub(super) fn list_arg(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
    site: &Site,
    name: &str,
) -> TractResult<Tensor> {
    let data = tensor(builder, invocation, name)?;
    if data.datum_type() != DatumType::U8 {
        return Ok(data.as_ref().clone());
    }
    let lengths = tensor(builder, invocation, &format!("{name}_lengths"))?;
    let bytes = values::<u8>(&data)?;
    let mut strings = vec![];
    let mut at = 0usize;
    for &len in values::<i64>(&lengths)? {
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| at.checked_add(l))
            .filter(|&e| e <= bytes.len());
        let Some(end) = end else {
            return Err(site
                .attribute(name, "has string lengths that do not fit its bytes")
                .into());
        };
        let s = std::str::from_utf8(&bytes[at..end])
            .map_err(|_| site.attribute(name, "holds a string that is not UTF-8"))?;
        strings.push(s.to_string());
        at = end;
    }
    if at != bytes.len() {
        return Err(site
            .attribute(name, "has bytes beyond its strings' lengths")
            .into());
    }
    Ok(tensor1(&strings))
}

/// The named arguments of an invocation, from owned names.
pub(super) fn named(args: &[(String, RValue)]) -> Vec<(&str, RValue)> {
    args.iter().map(|(n, v)| (n.as_str(), v.clone())).collect()
}
