//! Conversions between tiffin's [`Tensor`] and tract's, at the edge of every model run.

use tract_onnx::prelude::{DatumType, TDim, Tensor as TractTensor, TractResult, tract_ndarray};

use crate::{Tensor, TensorData};

/// tiffin tensor to tract tensor (one copy of the values).
pub(crate) fn to_tract(t: &Tensor) -> TractResult<TractTensor> {
    fn array<T: tract_onnx::prelude::Datum + Clone>(
        shape: &[usize],
        v: &[T],
    ) -> TractResult<TractTensor> {
        Ok(tract_ndarray::ArrayD::from_shape_vec(shape, v.to_vec())?.into())
    }
    let shape = t.shape();
    crate::dispatch_data!(t.data(), v => array(shape, v))
}

/// tract tensor to tiffin tensor. Symbolic dims (`TDim`, which tract may give for integer outputs
/// computed from shapes) are evaluated to i64; other dtypes tiffin does not use are an error.
pub(crate) fn from_tract(t: &TractTensor) -> Result<Tensor, String> {
    fn values<T: tract_onnx::prelude::Datum + Clone>(t: &TractTensor) -> Result<Vec<T>, String> {
        let view = t.to_plain_array_view::<T>().map_err(|e| e.to_string())?;
        Ok(view.iter().cloned().collect())
    }
    let data = match t.datum_type() {
        DatumType::Bool => TensorData::Bool(values(t)?),
        DatumType::U8 => TensorData::U8(values(t)?),
        DatumType::U16 => TensorData::U16(values(t)?),
        DatumType::U32 => TensorData::U32(values(t)?),
        DatumType::U64 => TensorData::U64(values(t)?),
        DatumType::I8 => TensorData::I8(values(t)?),
        DatumType::I16 => TensorData::I16(values(t)?),
        DatumType::I32 => TensorData::I32(values(t)?),
        DatumType::I64 => TensorData::I64(values(t)?),
        DatumType::F16 => TensorData::F16(values(t)?),
        DatumType::F32 => TensorData::F32(values(t)?),
        DatumType::F64 => TensorData::F64(values(t)?),
        DatumType::String => TensorData::String(values(t)?),
        DatumType::TDim => TensorData::I64(
            values::<TDim>(t)?
                .iter()
                .map(|d| {
                    d.to_i64()
                        .map_err(|e| format!("symbolic value {d} in an output: {e}"))
                })
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(format!(
                "the model produced a {other:?} tensor, which tiffin cannot return"
            ));
        }
    };
    Tensor::new(t.shape().to_vec(), data).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_tract() {
        for t in [
            Tensor::new(vec![2, 2], TensorData::F32(vec![1.0, 2.0, 3.0, 4.0])).unwrap(),
            Tensor::new(
                vec![3],
                TensorData::String(vec!["a".into(), "b".into(), "c".into()]),
            )
            .unwrap(),
            Tensor::new(vec![1, 2], TensorData::Bool(vec![true, false])).unwrap(),
        ] {
            assert_eq!(from_tract(&to_tract(&t).unwrap()).unwrap(), t);
        }
        let dims = tract_ndarray::arr1(&[TDim::from(3), TDim::from(4)]).into_dyn();
        let out = from_tract(&dims.into()).unwrap();
        assert_eq!(out.data(), &TensorData::I64(vec![3, 4]));
    }
}
