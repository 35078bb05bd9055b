//! Fuzz target: supervisor::fuzzing::manifest (the same entry as the corpus
//! regression test supervisor/tests/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = supervisor::fuzzing::manifest(data);
});
