//! Conversions between tiffin's [`Tensor`] and tract's, at the edge of every model run.

use tract_onnx::prelude::{DatumType, TDim, Tensor as TractTensor, TractResult, tract_ndarray};

use crate::{Tensor, TensorData};

/// tiffin tensor to tract tensor: one copy of the values, straight into tract's aligned
/// storage (through an ndarray array it took two copies and an iterator over dynamic dims,
/// which for a small request cost more than the copying).
pub(crate) fn to_tract(t: &Tensor) -> TractResult<TractTensor> {
    let shape = t.shape();
    match t.data() {
        TensorData::Bool(v) => TractTensor::from_shape(shape, v),
        TensorData::U8(v) => TractTensor::from_shape(shape, v),
        TensorData::U16(v) => TractTensor::from_shape(shape, v),
        TensorData::U32(v) => TractTensor::from_shape(shape, v),
        TensorData::U64(v) => TractTensor::from_shape(shape, v),
        TensorData::I8(v) => TractTensor::from_shape(shape, v),
        TensorData::I16(v) => TractTensor::from_shape(shape, v),
        TensorData::I32(v) => TractTensor::from_shape(shape, v),
        TensorData::I64(v) => TractTensor::from_shape(shape, v),
        TensorData::F16(v) => TractTensor::from_shape(shape, v),
        TensorData::F32(v) => TractTensor::from_shape(shape, v),
        TensorData::F64(v) => TractTensor::from_shape(shape, v),
        // Strings are not plain bytes: each is cloned into an array tract takes over.
        TensorData::String(v) => {
            Ok(tract_ndarray::ArrayD::from_shape_vec(shape, v.clone())?.into())
        }
    }
}

/// tract tensor to tiffin tensor. Symbolic dims (`TDim`, which tract may give for integer outputs
/// computed from shapes) are evaluated to i64; other dtypes tiffin does not use are an error.
pub(crate) fn from_tract(t: &TractTensor) -> Result<Tensor, String> {
    fn values<T: tract_onnx::prelude::Datum + Clone>(t: &TractTensor) -> Result<Vec<T>, String> {
        // tract's tensors are contiguous and row-major: the values are one slice.
        let plain = t.try_as_plain_ram().map_err(|e| e.to_string())?;
        Ok(plain.as_slice::<T>().map_err(|e| e.to_string())?.to_vec())
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
            Tensor::new(vec![3, 1], TensorData::I64(vec![-1, 0, i64::MAX])).unwrap(),
            Tensor::new(vec![2], TensorData::F64(vec![0.1, f64::MIN_POSITIVE])).unwrap(),
            Tensor::new(vec![1], TensorData::U8(vec![255])).unwrap(),
            Tensor::new(vec![0, 3], TensorData::F32(vec![])).unwrap(),
            Tensor::new(vec![], TensorData::I32(vec![7])).unwrap(),
        ] {
            assert_eq!(from_tract(&to_tract(&t).unwrap()).unwrap(), t);
        }
        let dims = tract_ndarray::arr1(&[TDim::from(3), TDim::from(4)]).into_dyn();
        let out = from_tract(&dims.into()).unwrap();
        assert_eq!(out.data(), &TensorData::I64(vec![3, 4]));
    }
}
