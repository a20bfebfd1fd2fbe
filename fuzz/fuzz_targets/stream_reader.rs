//! cargo-fuzz target: see `seqshield_fuzz::stream_reader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqshield_fuzz::stream_reader(data));
