//! libFuzzer target `oci_reference`: see `tiffin_fuzz::oci_reference`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiffin_fuzz::oci_reference(data));
