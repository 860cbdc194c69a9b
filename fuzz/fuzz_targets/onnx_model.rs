//! libFuzzer target `onnx_model`: see `tiffin_fuzz::onnx_model`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiffin_fuzz::onnx_model(data));
