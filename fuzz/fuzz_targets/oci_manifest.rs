//! libFuzzer target `oci_manifest`: see `tiffin_fuzz::oci_manifest`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tiffin_fuzz::oci_manifest(data));
