//! ONNX to NNEF conversion for `tiffin convert`: the decluttered graph, typed with the package
//! signature, written by tract's deterministic tar writer after its node names are made
//! deterministic too.

use std::collections::HashSet;

use tiffin_manifest::{ModelFormat, Signature};
use tract_onnx::prelude::*;

use crate::error::Error;
use crate::graph::{
    ModelSource, STAGE_DECLUTTERED, STAGE_PROPERTY, Typed, confront, nnef_framework, parse, reason,
};

/// Converts an ONNX model to an NNEF archive (an uncompressed tar), typed with `signature`: its
/// named dims become the NNEF graph's symbols. The graph is saved decluttered, the form tract
/// writes NNEF from; the same model and signature always give the same bytes.
///
/// Fails with [`Error::Nnef`], naming the operator, when an operator has no NNEF form.
pub fn to_nnef(source: &ModelSource, signature: &Signature) -> Result<Vec<u8>, Error> {
    crate::model::guarded("converting", || to_nnef_unguarded(source, signature))
}

fn to_nnef_unguarded(source: &ModelSource, signature: &Signature) -> Result<Vec<u8>, Error> {
    let parsed = parse(source, ModelFormat::Onnx)?;
    let Typed { model, .. } = match confront(&parsed, signature) {
        Ok(typed) => typed,
        Err(e) if crate::graph::may_type_per_shape(&parsed, signature, &e) => {
            return Err(Error::Nnef {
                reason: format!(
                    "tract cannot type this graph with its named dims as symbols (it runs the \
                     model per shape) and an NNEF graph is typed once for every size; keep this \
                     model as ONNX ({e})"
                ),
            });
        }
        Err(e) => return Err(e),
    };
    let mut model = parsed.declutter(model)?;
    model.properties.insert(
        STAGE_PROPERTY.into(),
        rctensor0(STAGE_DECLUTTERED.to_owned()),
    );
    canonical_names(&mut model).map_err(|e| Error::Nnef { reason: reason(&e) })?;
    nnef_framework()
        .write_to_tar_with_config(&model, Vec::new(), false, true)
        .map_err(|e| Error::Nnef {
            reason: explain(&e),
        })
}

/// Renames the nodes tract made while decluttering so that the names no longer depend on the
/// order its passes ran in: tract names a new node `BASE.N` with the first free `N`, and which
/// node gets which `N` varies from run to run (silero's graph shows it). Here every node but the
/// inputs, in evaluation order, gets its name without the `.N` suffix, or with the first free
/// one. Only inputs and outputs are part of the signature, and outputs are named by their labels,
/// which stay.
fn canonical_names(model: &mut TypedModel) -> TractResult<()> {
    let inputs: HashSet<usize> = model.inputs.iter().map(|o| o.node).collect();
    let mut used: HashSet<String> = inputs
        .iter()
        .map(|&id| model.node(id).name.clone())
        .collect();
    for id in model.eval_order()? {
        if inputs.contains(&id) {
            continue;
        }
        let name = &model.node(id).name;
        let base = match name.rsplit_once('.') {
            Some((base, n))
                if !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                base
            }
            _ => name.as_str(),
        }
        .to_owned();
        let mut candidate = base.clone();
        let mut n = 1;
        while used.contains(&candidate) {
            candidate = format!("{base}.{n}");
            n += 1;
        }
        used.insert(candidate.clone());
        model.rename_node(id, &candidate)?;
    }
    Ok(())
}

/// tract's error, with the operator named plainly when it has no NNEF form. tract names the node
/// as `#ID "NAME" OP` in the graph it serializes (a copy it rewrites, so the id is not ours).
fn explain(e: &TractError) -> String {
    const NO_SERIALIZER: &str = "No serializer found for node #";
    let text = format!("{e:#}");
    let node = text.find(NO_SERIALIZER).and_then(|at| {
        let rest = &text[at + NO_SERIALIZER.len()..];
        let rest = rest
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .strip_prefix(" \"")?;
        let (name, rest) = rest.split_once("\" ")?;
        let op = rest.split(": ").next().unwrap_or(rest).trim();
        Some((name.to_owned(), op.to_owned()))
    });
    match node {
        Some((name, op)) => format!(
            "operator {op} (node `{name}`) has no NNEF form in tract 0.23 or tiffin; keep this model as ONNX"
        ),
        None => reason(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loading skips decluttering only for graphs written by the tract version tiffin runs; this
    /// checks tiffin knows that version as tract's NNEF writer records it.
    #[test]
    fn operators_without_nnef_form_are_named() {
        let e = TractError::msg(
            "No serializer found for node #24 \"ArrayFeatureExtractor\" ArrayFeatureExtractor",
        )
        .context("translating node #24 \"ArrayFeatureExtractor\" ArrayFeatureExtractor");
        assert_eq!(
            explain(&e),
            "operator ArrayFeatureExtractor (node `ArrayFeatureExtractor`) has no NNEF form in tract 0.23 or tiffin; keep this model as ONNX"
        );
        assert_eq!(explain(&TractError::msg("disk full")), "disk full");
    }

    #[test]
    fn tract_version_is_the_one_the_writer_records() {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([2])).unwrap();
        model.select_output_outlets(&[x]).unwrap();
        let tar = nnef_framework().write_to_tar(&model, Vec::new()).unwrap();
        let read = nnef_framework().model_for_read(&mut &tar[..]).unwrap();
        let version = read.properties["tract_nnef_ser_version"]
            .as_plain_ram()
            .unwrap()
            .to_scalar::<String>()
            .unwrap()
            .clone();
        assert_eq!(version, crate::graph::TRACT_VERSION);
    }
}
