//! Fuzz target: supervisor::fuzzing::quantity (the same entry as the corpus
//! regression test supervisor/tests/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = supervisor::fuzzing::quantity(data);
});
