//! cargo-fuzz target: see `seqshield_fuzz::header`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqshield_fuzz::header(data));
