//! libFuzzer target `authoring_toml`: see `tiffin_fuzz::authoring_toml`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiffin_fuzz::authoring_toml(data));
