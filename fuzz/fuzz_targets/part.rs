//! cargo-fuzz target: see `seqshield_fuzz::part`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqshield_fuzz::part(data));
