//! Fuzz target: `oomgate::fuzz_entry::scenario` (see docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oomgate::fuzz_entry::scenario(data));
