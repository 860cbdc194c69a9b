//! `Scaler` (ai.onnx.ml): `(x - offset) * scale` per feature, the StandardScaler of every
//! scikit-learn pipeline. tract 0.23 has no Scaler; this one is wired from tract's own
//! subtraction and multiplication, in onnxruntime's order and types (bit-identical to it on the
//! fixtures), so the optimizer and NNEF see ordinary operators.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_core::ops::{cast::cast, math};

use super::common::{Attrs, Site};

/// The input dtypes onnxruntime implements for Scaler.
const INPUT_TYPES: [DatumType; 4] = [
    DatumType::F32,
    DatumType::F64,
    DatumType::I32,
    DatumType::I64,
];

#[derive(Debug, Clone)]
struct Scaler {
    site: Site,
    offset: Vec<f32>,
    scale: Vec<f32>,
}

pub(super) fn build(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new("Scaler", node)?;
    let scale = attrs.floats("scale")?.unwrap_or_default();
    let offset = attrs.floats("offset")?.unwrap_or_default();
    if scale.is_empty() {
        return Err(attrs
            .error(
                "scale",
                "is missing or empty; give one value per feature, or one for all",
            )
            .into());
    }
    // onnxruntime refuses a missing offset too: both lists must have the same length.
    if offset.len() != scale.len() {
        return Err(attrs
            .error(
                "offset",
                format!(
                    "has {} values but `scale` has {}; give both lists the same length",
                    offset.len(),
                    scale.len()
                ),
            )
            .into());
    }
    Ok((
        expand(Scaler {
            site: attrs.site,
            offset,
            scale,
        }),
        vec![],
    ))
}

impl Scaler {
    /// The number of features the attributes fix, if not one value for all.
    fn features(&self) -> Option<usize> {
        (self.scale.len() > 1).then_some(self.scale.len())
    }
}

impl Expansion for Scaler {
    fn name(&self) -> StaticName {
        "Scaler".into()
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
        s.given(&inputs[0].rank, move |s, rank| {
            let rank = rank as usize;
            self.site.check_rank("the input", rank, 1, 2)?;
            if let Some(features) = self.features() {
                s.equals(&inputs[0].shape[rank - 1], features.to_dim())?;
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
            .check_dtype("the input", fact.datum_type, &INPUT_TYPES)?;
        self.site.check_rank("the input", fact.rank(), 1, 2)?;
        let features = &fact.shape[fact.rank() - 1];
        if let Some(n) = self.features()
            && features.to_usize().is_ok_and(|f| f != n)
        {
            return Err(self
                .site
                .attribute(
                    "scale",
                    format!("has {n} values but the input has {features} features; give one value per feature"),
                )
                .into());
        }
        // The constants get the input's rank so the binary ops broadcast them over the rows.
        let mut shape = tvec![1; fact.rank()];
        shape[fact.rank() - 1] = self.scale.len();
        // onnxruntime computes in the input's type when it is f64 (f32 offsets and scales
        // widened), then casts to f32; integers meet f32 offsets as f32.
        let (x, offset, scale) = if fact.datum_type == DatumType::F64 {
            let widen = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
            (
                inputs[0],
                tensor1(&widen(&self.offset)),
                tensor1(&widen(&self.scale)),
            )
        } else {
            let x = if fact.datum_type == DatumType::F32 {
                inputs[0]
            } else {
                model.wire_node(
                    format!("{prefix}.to_f32"),
                    cast(DatumType::F32),
                    &[inputs[0]],
                )?[0]
            };
            (x, tensor1(&self.offset), tensor1(&self.scale))
        };
        let offset = model.add_const(format!("{prefix}.offset"), offset.into_shape(&shape)?)?;
        let scale = model.add_const(format!("{prefix}.scale"), scale.into_shape(&shape)?)?;
        let centred = model.wire_node(format!("{prefix}.sub"), math::sub(), &[x, offset])?[0];
        let mut y = model.wire_node(format!("{prefix}.mul"), math::mul(), &[centred, scale])?[0];
        if fact.datum_type == DatumType::F64 {
            y = model.wire_node(format!("{prefix}.to_f32"), cast(DatumType::F32), &[y])?[0];
        }
        Ok(tvec!(y))
    }
}
