//! libFuzzer target `nnef_model`: see `tiffin_fuzz::nnef_model`.
//!
//! tiffin catches tract's panics (`guarded` in tiffin-runtime) and reports them as errors, which
//! is what this target checks. libfuzzer-sys's panic hook aborts on every panic, caught or not,
//! so it is replaced by a quiet one: a panic tiffin does not catch still unwinds out of the
//! target, and libfuzzer-sys reports that as a crash.

#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| tiffin_fuzz::nnef_model(data)
);
