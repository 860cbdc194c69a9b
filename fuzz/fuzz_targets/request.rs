//! libFuzzer target `request`: see `tiffin_fuzz::request`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiffin_fuzz::request(data));
