//! libFuzzer target `pickle_scan`: see `tiffin_fuzz::pickle_scan`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiffin_fuzz::pickle_scan(data));
