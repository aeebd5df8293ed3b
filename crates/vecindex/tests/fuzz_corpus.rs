//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`: seeds from the test fixtures and
//! every input a fuzzing run found interesting, crashes included once fixed) through the same
//! entry points the fuzz targets call. Runs on stable in the normal test command; `scripts/fuzz.sh`
//! does the fuzzing itself.

mod common;

#[test]
fn every_corpus_input_is_handled_without_a_panic() {
    let root = common::workspace().join("fuzz").join("corpus");
    for (name, target) in vecindex::fuzzing::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (the corpus is committed)", dir.display()))
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: empty corpus", dir.display());
        for f in &files {
            // A fuzzing run beside this test may have just replaced an input: skip a vanished one.
            let bytes = match std::fs::read(f) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("{}: {e}", f.display()),
            };
            let outcome = std::panic::catch_unwind(|| target(&bytes));
            assert!(outcome.is_ok(), "{name}: {} panicked", f.display());
        }
        eprintln!("{name}: {} inputs replayed", files.len());
    }
}
