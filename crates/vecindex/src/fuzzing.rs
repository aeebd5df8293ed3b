//! Entry points for the fuzz targets (`fuzz/`) and for the test that replays their committed
//! corpus (`tests/fuzz_corpus.rs`). Each takes arbitrary bytes, feeds them to a reader the way a
//! user's file would arrive (through a file and the public API), queries whatever loads, and must
//! return normally: every bad input is an `Err`, never a panic, an abort or a hang.
//!
//! Not a stable API (hidden from the docs).

use crate::{builder_factory, Config, Indexer, Neighbors, VectorsView};
use std::path::PathBuf;

/// A fuzz target's body: arbitrary bytes in, returns normally.
pub type Target = fn(&[u8]);

/// The readers that have a target, by name (the corpus folder names).
pub const TARGETS: &[(&str, Target)] = &[
    ("faiss_file", faiss_file),
    ("annoy_file", annoy_file),
    ("annoy_sidecar", annoy_sidecar),
    ("npy", npy),
    ("safetensors", safetensors),
    ("fvecs", fvecs),
    ("milvus_handle", milvus_handle),
    ("config", config),
];

/// A scratch path for this process and thread, with the given name suffix.
fn scratch(suffix: &str) -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    std::env::temp_dir().join(format!(
        "vecindex-fuzz-{}-{thread}{suffix}",
        std::process::id()
    ))
}

/// Queries an opened index with a few vectors and sizes, including k beyond its size.
fn exercise(index: &dyn Indexer) {
    let d = index.dim();
    if d == 0 || d > 1 << 16 {
        return;
    }
    let mut q = vec![0.0f32; 3 * d];
    for (i, v) in q.iter_mut().enumerate() {
        *v = ((i * 7919) % 13) as f32 - 6.0;
    }
    let view = VectorsView::new(&q, d).expect("3 rows of d");
    for k in [1, 10, index.len().saturating_add(3).min(1 << 12)] {
        if let Ok(r) = index.query(view, k) {
            check_shape(&r, 3, k);
        }
    }
    let _ = index.info();
}

fn check_shape(r: &Neighbors, n: usize, k: usize) {
    assert_eq!(r.ids.len(), n * k, "result shape");
    assert_eq!(r.distances.len(), n * k, "result shape");
}

/// A faiss index file (any type, with or without an id map).
pub fn faiss_file(bytes: &[u8]) {
    let path = scratch(".index");
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    if let Ok(b) = builder_factory("faiss", &Config::new()) {
        if let Ok(index) = b.from_index_file(&path) {
            exercise(index.as_ref());
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// An annoy forest without a sidecar: the first byte picks the metric, the second the dimension
/// (1..=64); the rest is the file.
pub fn annoy_file(bytes: &[u8]) {
    let [m, d, rest @ ..] = bytes else { return };
    let metric = ["angular", "euclidean", "manhattan", "dot", "hamming"][*m as usize % 5];
    let d = 1 + *d as usize % 64;
    let path = scratch(".ann");
    if std::fs::write(&path, rest).is_err() {
        return;
    }
    let config = Config::new().set("metric", metric).set("d", d);
    if let Ok(b) = builder_factory("annoy", &config) {
        if let Ok(index) = b.from_index_file(&path) {
            exercise(index.as_ref());
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// A small valid forest (built once per process, kept in memory) with the input as its
/// sidecar; both files are removed after each input.
pub fn annoy_sidecar(bytes: &[u8]) {
    static FOREST: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let path = scratch(".sc.ann");
    let side = crate::annoy::backend::sidecar_path(&path);
    let b = builder_factory("annoy", &Config::new().set("n_trees", 2)).expect("annoy");
    let forest = FOREST.get_or_init(|| {
        let items = crate::synth::gaussian(50, 4, 1);
        let index = b
            .from_embeddings(items.view())
            .expect("a small forest builds");
        index.save(&path).expect("saved");
        std::fs::read(&path).expect("read back")
    });
    if std::fs::write(&path, forest).is_ok() && std::fs::write(&side, bytes).is_ok() {
        if let Ok(index) = b.from_index_file(&path) {
            exercise(index.as_ref());
        }
    }
    let _ = std::fs::remove_file(&side);
    let _ = std::fs::remove_file(&path);
}

/// A `.npy` file read as embeddings and as ids, and the same bytes as a `.npz`.
pub fn npy(bytes: &[u8]) {
    if let Ok(a) = crate::io::npy::parse_npy(bytes, "fuzz.npy") {
        let _ = a.into_vectors("fuzz.npy");
    }
    if let Ok(a) = crate::io::npy::parse_npy(bytes, "fuzz.npy") {
        let _ = a.into_ids("fuzz.npy");
    }
    let _ = crate::io::npy::parse_npz(bytes, "fuzz.npz");
}

/// A `.safetensors` file read as embeddings.
pub fn safetensors(bytes: &[u8]) {
    let path = scratch(".safetensors");
    if std::fs::write(&path, bytes).is_ok() {
        let _ = crate::io::read_vectors(&path, None);
    }
    let _ = std::fs::remove_file(&path);
}

/// A `.fvecs` file.
pub fn fvecs(bytes: &[u8]) {
    let _ = crate::io::parse_fvecs(bytes, "fuzz.fvecs");
}

/// A Milvus handle file, described without contacting any server.
pub fn milvus_handle(bytes: &[u8]) {
    let path = scratch(".milvus.json");
    if std::fs::write(&path, bytes).is_ok() {
        let _ = crate::inspect(&path);
    }
    let _ = std::fs::remove_file(&path);
}

/// `key=value` lines given to every backend's factory (no index is built).
pub fn config(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(config) = Config::parse(text.lines().filter(|l| !l.is_empty())) else {
        return;
    };
    for backend in [
        "faiss",
        "annoy",
        "milvus",
        text.lines().next().unwrap_or(""),
    ] {
        let _ = builder_factory(backend, &config);
        let _ = crate::build_only_params(backend, &config);
    }
}
