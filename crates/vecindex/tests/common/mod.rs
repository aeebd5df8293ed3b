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

/// Real embeddings with their exact top-`cols` neighbours for L2 and inner product.
pub struct RealSet {
    pub name: &'static str,
    pub base: vecindex::Vectors,
    pub queries: vecindex::Vectors,
    /// Per metric ("L2", "IP"): ids and scores, `cols` per query, best first.
    pub truth: Vec<(&'static str, Vec<i64>, Vec<f32>)>,
    pub cols: usize,
}

impl RealSet {
    pub fn truth(&self, metric: &str) -> (&[i64], &[f32]) {
        let (_, ids, scores) = self.truth.iter().find(|t| t.0 == metric).unwrap();
        (ids, scores)
    }
}

/// The committed sample (tests/data/debian-minilm-sample: 2,000 + 200 rows of d=384), its truth
/// computed here in f64; and the full set (20,000 + 1,000 rows, exact top-100 truth files) when
/// present at `VECINDEX_SHARED_DATA` (scripts/test.sh points it at the team's data set). Under
/// CI / VECINDEX_REQUIRE_PEERS a missing full set is a failure, elsewhere a notice.
pub fn real_sets() -> Vec<RealSet> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/debian-minilm-sample");
    let base = vecindex::io::read_vectors(&dir.join("base.npy"), None).unwrap();
    let queries = vecindex::io::read_vectors(&dir.join("queries.npy"), None).unwrap();
    let cols = 100;
    let truth = ["L2", "IP"]
        .into_iter()
        .map(|m| {
            let (ids, scores) = exact_f64(&base, &queries, m == "L2", cols);
            (m, ids, scores)
        })
        .collect();
    let mut sets = vec![RealSet {
        name: "sample",
        base,
        queries,
        truth,
        cols,
    }];
    if let Some(full) = full_real_data() {
        let npy_at = |f: &str| {
            vecindex::io::npy::parse_npy(&std::fs::read(full.join(f)).unwrap(), f).unwrap()
        };
        let mut truth = Vec::new();
        let mut cols = 0;
        for (m, ids, scores) in [
            ("L2", "gt_l2.npy", "gt_l2_scores.npy"),
            ("IP", "gt_ip.npy", "gt_ip_scores.npy"),
        ] {
            let ids = npy_at(ids);
            cols = ids.shape[1];
            let (vecindex::io::npy::NpyData::Int(ids), vecindex::io::npy::NpyData::Float(s)) =
                (ids.data, npy_at(scores).data)
            else {
                panic!(
                    "ground truth files of unexpected types in {}",
                    full.display()
                )
            };
            truth.push((m, ids, s));
        }
        sets.push(RealSet {
            name: "full",
            base: vecindex::io::read_vectors(&full.join("base.npy"), None).unwrap(),
            queries: vecindex::io::read_vectors(&full.join("queries.npy"), None).unwrap(),
            truth,
            cols,
        });
    }
    sets
}

/// The full real-embedding set's directory, if present (see [`real_sets`]).
pub fn full_real_data() -> Option<PathBuf> {
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("VECINDEX_REQUIRE_PEERS").is_some();
    let Some(p) = std::env::var_os("VECINDEX_SHARED_DATA").map(PathBuf::from) else {
        assert!(
            !required,
            "VECINDEX_SHARED_DATA is not set (scripts/test.sh sets it)"
        );
        eprintln!("NOTICE: full real-data set not used: VECINDEX_SHARED_DATA not set");
        return None;
    };
    if p.join("base.npy").exists() {
        Some(p)
    } else {
        assert!(
            !required,
            "the full real-data set is missing at {}",
            p.display()
        );
        eprintln!("NOTICE: full real-data set not found at {}", p.display());
        None
    }
}

/// Rows scaled to unit length (computed here, independent of the library), for cosine truth.
pub fn unit_rows(v: &vecindex::Vectors) -> vecindex::Vectors {
    let mut x = v.as_slice().to_vec();
    for row in x.chunks_mut(v.dim()) {
        let n = row.iter().map(|a| a * a).sum::<f32>().sqrt();
        row.iter_mut().for_each(|a| *a /= n);
    }
    vecindex::Vectors::new(x, v.dim()).unwrap()
}

/// Exact top-`k` by f64 brute force (independent of the library's kernels): L2 squared
/// distances ascending, or inner products descending; ties by id.
pub fn exact_f64(
    base: &vecindex::Vectors,
    queries: &vecindex::Vectors,
    l2: bool,
    k: usize,
) -> (Vec<i64>, Vec<f32>) {
    let (mut ids, mut scores) = (Vec::new(), Vec::new());
    for q in 0..queries.rows() {
        let qv = queries.view().row(q);
        let mut all: Vec<(f64, usize)> = (0..base.rows())
            .map(|i| {
                let s = base.view().row(i).iter().zip(qv).map(|(&a, &b)| {
                    let (a, b) = (a as f64, b as f64);
                    if l2 {
                        (a - b) * (a - b)
                    } else {
                        a * b
                    }
                });
                let s: f64 = s.sum();
                (if l2 { s } else { -s }, i)
            })
            .collect();
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for &(s, i) in all.iter().take(k) {
            ids.push(i as i64);
            scores.push(if l2 { s } else { -s } as f32);
        }
    }
    (ids, scores)
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

/// The Milvus server `./scripts/test.sh` started (`VECINDEX_MILVUS_URI`), or None with a notice
/// outside it; under CI / VECINDEX_REQUIRE_PEERS its absence is a failure (unless --no-milvus).
pub fn milvus_uri() -> Option<String> {
    if let Ok(u) = std::env::var("VECINDEX_MILVUS_URI") {
        return Some(u);
    }
    if std::env::var_os("VECINDEX_NO_MILVUS").is_some() {
        eprintln!("NOTICE: skipping Milvus test: --no-milvus");
        return None;
    }
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("VECINDEX_REQUIRE_PEERS").is_some();
    assert!(
        !required,
        "VECINDEX_MILVUS_URI is not set: run ./scripts/test.sh, which starts Milvus on loopback"
    );
    eprintln!(
        "NOTICE: skipping Milvus test: VECINDEX_MILVUS_URI not set (./scripts/test.sh sets it)"
    );
    None
}
