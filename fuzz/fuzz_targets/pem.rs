//! libFuzzer target `pem`: see `tiffin_fuzz::pem`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiffin_fuzz::pem(data));
