//! libFuzzer target `checksums`: see `tiffin_fuzz::checksums`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiffin_fuzz::checksums(data));
