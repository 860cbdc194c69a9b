//! libFuzzer target `manifest_json`: see `tiffin_fuzz::manifest_json`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiffin_fuzz::manifest_json(data));
