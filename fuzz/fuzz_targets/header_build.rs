//! cargo-fuzz target: see `seqshield_fuzz::header_build`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqshield_fuzz::header_build(data));
