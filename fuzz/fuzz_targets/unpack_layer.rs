//! Fuzz target: image::fuzzing::unpack_in_temp_dir, a layer unpacked into a
//! fresh temp dir that it must not leave (the same entry as the corpus
//! regression test image/tests/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = image::fuzzing::unpack_in_temp_dir(data);
});
