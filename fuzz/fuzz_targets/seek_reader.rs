//! cargo-fuzz target: see `seqshield_fuzz::seek_reader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqshield_fuzz::seek_reader(data));
