//! Helpers shared by the integration tests: fixtures, seeded data, and the Python peer venv.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Raw little-endian f32 file.
pub fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Deterministic Gaussian-ish data (sum of uniforms), `n × d`.
pub fn gaussian(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n * d)
        .map(|_| ((0..4).map(|_| next()).sum::<f64>() - 2.0) as f32)
        .collect()
}

/// The Python interpreter of the test venv (with faiss-cpu and numpy), if there is one.
/// `VECINDEX_PYTHON` wins; else `<workspace>/.venv/bin/python`. When none is usable, tests skip
/// with a printed notice — unless `CI` or `VECINDEX_REQUIRE_PEERS` is set, where they fail.
pub fn python(module: &str) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("VECINDEX_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::iter::once(workspace().join(".venv/bin/python")))
        .collect();
    for p in candidates {
        let ok = Command::new(&p)
            .args(["-c", &format!("import {module}, numpy")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(p);
        }
    }
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("VECINDEX_REQUIRE_PEERS").is_some();
    assert!(
        !required,
        "no Python with '{module}' found (set VECINDEX_PYTHON or run ./scripts/test.sh, which creates .venv)"
    );
    eprintln!("NOTICE: skipping peer test: no Python with '{module}' (run ./scripts/test.sh to create .venv)");
    None
}

/// Runs a peer script with arguments; panics with its stderr on failure.
pub fn run_python(py: &Path, script: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peer")
        .join(script);
    let out = Command::new(py)
        .arg(&script)
        .args(args)
        .env("OMP_NUM_THREADS", "1")
        .env("OPENBLAS_NUM_THREADS", "1")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{} {:?} failed:\n{}",
        script.display(),
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The shared real-embedding data set, if present (tests skip with a notice otherwise).
pub fn shared_data() -> Option<PathBuf> {
    let p = std::env::var_os("VECINDEX_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/data/debian-desc-all-minilm-l6-v2"));
    if p.join("base.npy").exists() {
        Some(p)
    } else {
        eprintln!("NOTICE: skipping real-data test: {} not found", p.display());
        None
    }
}

/// Compares result rows: ids must match exactly except where the two distances at that rank are
/// within `tol` (a near-tie may swap). Returns the number of rank positions compared.
pub fn assert_same_results(
    got_ids: &[i64],
    got_d: &[f32],
    want_ids: &[i64],
    want_d: &[f32],
    k: usize,
    tol: f32,
) {
    assert_eq!(got_ids.len(), want_ids.len());
    for (row, (gi, wi)) in got_ids.chunks(k).zip(want_ids.chunks(k)).enumerate() {
        let gd = &got_d[row * k..(row + 1) * k];
        let wd = &want_d[row * k..(row + 1) * k];
        for j in 0..k {
            if wi[j] == -1 {
                assert_eq!(gi[j], -1, "row {row} rank {j}: expected padding");
                assert!(
                    gd[j].is_infinite(),
                    "row {row} rank {j}: padding value {}",
                    gd[j]
                );
                continue;
            }
            let scale = 1.0f32.max(wd[j].abs());
            assert!(
                (gd[j] - wd[j]).abs() <= tol * scale,
                "row {row} rank {j}: distance {} vs {}",
                gd[j],
                wd[j]
            );
            if gi[j] != wi[j] {
                // Allowed only for a near-tie: the other id must be in the row with a close value.
                let pos = wi.iter().position(|&x| x == gi[j]);
                let close = pos
                    .map(|p| (wd[p] - gd[j]).abs() <= tol * scale)
                    .unwrap_or(false)
                    || (j + 1 == k && (gd[j] - wd[j]).abs() <= tol * scale);
                assert!(
                    close,
                    "row {row} rank {j}: id {} vs {} (distances {} / {})",
                    gi[j], wi[j], gd[j], wd[j]
                );
            }
        }
    }
}

/// The fixtures faiss wrote (tests/fixtures/faiss/manifest.json), filtered by kind.
pub fn faiss_fixtures(kinds: &[&str]) -> Vec<serde_json::Value> {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("faiss/manifest.json")).unwrap())
            .unwrap();
    m["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| kinds.iter().any(|k| f["kind"] == *k))
        .cloned()
        .collect()
}

/// A fixture's raw f32 matrix (`key` = "base", "queries", "train").
pub fn fixture_f32(f: &serde_json::Value, key: &str) -> Vec<f32> {
    read_f32(
        &fixtures()
            .join("faiss")
            .join(f[key]["file"].as_str().unwrap()),
    )
}

/// A JSON matrix (list of rows) flattened row-major.
pub fn json_rows<T>(v: &serde_json::Value, conv: impl Fn(&serde_json::Value) -> T) -> Vec<T> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(&conv))
        .collect()
}
