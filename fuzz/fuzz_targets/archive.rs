//! libFuzzer target `archive`: see `tiffin_fuzz::archive`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiffin_fuzz::archive(data));
