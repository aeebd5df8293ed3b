#![no_main]
// The body lives in the library (vecindex::fuzzing) so tests/fuzz_corpus.rs replays the corpus.
libfuzzer_sys::fuzz_target!(|data: &[u8]| vecindex::fuzzing::annoy_sidecar(data));
