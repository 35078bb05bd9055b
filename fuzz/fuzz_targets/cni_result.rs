//! Fuzz target: supervisor::fuzzing::cni_result (the same entry as the corpus
//! regression test supervisor/tests/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = supervisor::fuzzing::cni_result(data);
});
