//! libFuzzer target `signature_bundle`: see `tiffin_fuzz::signature_bundle`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiffin_fuzz::signature_bundle(data));
