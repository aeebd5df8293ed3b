//! Helpers shared by the CLI's end-to-end tests: running the `vecindex` binary, asserting
//! success or a one-line error, and a seeded data set of .npy files in a temp dir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vecindex::io::npy;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vecindex"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run vecindex")
}

pub fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Asserts failure with exit code 1 and a single-line message containing every `needle`.
pub fn fails(args: &[&str], needles: &[&str]) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(1), "{args:?} should fail with 1");
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: '{n}' not in: {err}");
    }
}

pub fn write_npy(path: &Path, rows: usize, d: usize, data: &[f32]) {
    std::fs::write(path, npy::npy_f32(&[rows, d], data)).unwrap();
}

pub fn read_npz(path: &Path) -> (Vec<i64>, Vec<f32>, Vec<usize>) {
    let mut ids = vec![];
    let mut dist = vec![];
    let mut shape = vec![];
    for (name, a) in npy::parse_npz(&std::fs::read(path).unwrap(), "out").unwrap() {
        match (name.as_str(), a.data) {
            ("ids", npy::NpyData::Int(v)) => {
                ids = v;
                shape = a.shape;
            }
            ("distances", npy::NpyData::Float(v)) => dist = v,
            other => panic!("unexpected member {}", other.0),
        }
    }
    (ids, dist, shape)
}

/// `N` items and `NQ` queries of dimension `D`, seeded, also written as items.npy and
/// queries.npy in `dir` (a temp dir removed on drop).
pub struct Data {
    _dir: tempfile::TempDir,
    pub dir: PathBuf,
    pub items: Vec<f32>,
    pub queries: Vec<f32>,
}

pub const N: usize = 500;
pub const NQ: usize = 12;
pub const D: usize = 16;

pub fn data() -> Data {
    let dir = tempfile::tempdir().unwrap();
    let items = vecindex::synth::gaussian(N, D, 1).into_vec();
    let queries = vecindex::synth::gaussian(NQ, D, 2).into_vec();
    write_npy(&dir.path().join("items.npy"), N, D, &items);
    write_npy(&dir.path().join("queries.npy"), NQ, D, &queries);
    Data {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        items,
        queries,
    }
}

/// The path of `name` in the data's dir, as a command-line argument.
pub fn p(d: &Data, name: &str) -> String {
    d.dir.join(name).to_str().unwrap().to_string()
}
