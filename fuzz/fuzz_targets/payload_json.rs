//! libFuzzer target `payload_json`: see `tiffin_fuzz::payload_json`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiffin_fuzz::payload_json(data));
