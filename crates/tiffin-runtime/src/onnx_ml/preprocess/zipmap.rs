//! `ZipMap` (ai.onnx.ml), the last node of skl2onnx's default classifier export: it turns the
//! probability tensor `[N, C]` into a sequence of N maps `{class label: probability}`.
//!
//! tiffin does not return maps: its outputs are tensors, and a ZipMap output is represented as
//! the probability tensor itself, f32 `[N, C]` in the attribute's class order, while the class
//! labels live in the package signature (`class_labels`). So this operator is an identity on the
//! float tensor. It still checks what onnxruntime checks: the labels are well formed and as many
//! as the columns.

use std::collections::HashSet;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_core::ops::identity::Identity;

use super::common::{Attrs, Site};

#[derive(Debug, Clone)]
struct ZipMap {
    site: Site,
    classes: usize,
}

pub(super) fn build(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new("ZipMap", node)?;
    let strings = attrs.strings("classlabels_strings")?.unwrap_or_default();
    let ints = attrs.ints("classlabels_int64s")?.unwrap_or_default();
    let (attribute, labels): (&str, Vec<String>) = match (strings.is_empty(), ints.is_empty()) {
        (false, true) => ("classlabels_strings", strings),
        (true, false) => (
            "classlabels_int64s",
            ints.iter().map(|i| i.to_string()).collect(),
        ),
        (true, true) => {
            return Err(attrs
                .error(
                    "classlabels_strings",
                    "and `classlabels_int64s` are both missing; give one of them",
                )
                .into());
        }
        (false, false) => {
            return Err(attrs
                .error(
                    "classlabels_strings",
                    "and `classlabels_int64s` are both given; keep only one",
                )
                .into());
        }
    };
    // onnxruntime builds each map by inserting the labels in turn, so a repeated label keeps
    // only its last column: the tensor tiffin returns could not say which one. Refused.
    let mut seen = HashSet::new();
    if let Some(dup) = labels.iter().find(|l| !seen.insert(l.as_str())) {
        return Err(attrs
            .error(
                attribute,
                format!("repeats the label {dup:?}; every class label must be distinct"),
            )
            .into());
    }
    Ok((
        expand(ZipMap {
            site: attrs.site,
            classes: labels.len(),
        }),
        vec![],
    ))
}

impl Expansion for ZipMap {
    fn name(&self) -> StaticName {
        "ZipMap".into()
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
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&outputs[0].shape[1], self.classes.to_dim())?;
        s.given(&inputs[0].datum_type, move |_, dt| {
            Ok(self.site.check_dtype("the input", dt, &[DatumType::F32])?)
        })?;
        s.given(&inputs[0].rank, move |s, rank| {
            let rank = rank as usize;
            self.site.check_rank("the input", rank, 1, 2)?;
            s.equals(&inputs[0].shape[rank - 1], self.classes.to_dim())?;
            if rank == 2 {
                s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
            } else {
                // One row of probabilities makes one map: a batch of one.
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
            .check_dtype("the input", fact.datum_type, &[DatumType::F32])?;
        self.site.check_rank("the input", fact.rank(), 1, 2)?;
        let columns = &fact.shape[fact.rank() - 1];
        if columns.to_usize().is_ok_and(|c| c != self.classes) {
            return Err(self
                .site
                .input(format!(
                    "the input has {columns} columns but there are {} class labels",
                    self.classes
                ))
                .into());
        }
        if fact.rank() == 1 {
            return model.wire_node(prefix, AxisOp::Add(0), inputs);
        }
        // The probability tensor is the output: see the module documentation.
        model.wire_node(prefix, Identity, inputs)
    }
}
