//! Our annoy reader and query path against files and results written by annoy 1.17.3 itself
//! (tests/fixtures/annoy, written by make_fixtures.py there).

mod common;

use serde_json::Value;
use vecindex::annoy::parse_metric;
use vecindex::internals::{annoy_nns, AnnoyForest};
use vecindex::Metric;

fn fixtures() -> Vec<Value> {
    let dir = common::fixtures().join("annoy");
    let mut out: Vec<Value> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension().map(|x| x == "json").unwrap_or(false) && !p.ends_with("manifest.json"))
                .then(|| serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap())
        })
        .collect();
    out.sort_by_key(|f: &Value| f["name"].as_str().unwrap().to_string());
    out
}

fn open(f: &Value) -> AnnoyForest {
    let path = common::fixtures()
        .join("annoy")
        .join(f["index_file"].as_str().unwrap());
    let metric = parse_metric(f["metric"].as_str().unwrap()).unwrap();
    AnnoyForest::open(&path, f["f"].as_u64().unwrap() as usize, metric).unwrap()
}

#[test]
fn loads_like_annoy() {
    let all = fixtures();
    assert!(all.len() >= 30, "{} fixtures", all.len());
    for f in &all {
        let forest = open(f);
        let name = f["name"].as_str().unwrap();
        assert_eq!(
            forest.n_items as u64,
            f["n_items"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            forest.n_nodes as u64,
            f["n_nodes"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            forest.roots.len() as u64,
            f["n_trees_after_load"].as_u64().unwrap(),
            "{name}: trees"
        );
        assert_eq!(
            forest.layout.k as u64,
            f["K"].as_u64().unwrap(),
            "{name}: K"
        );
    }
}

#[test]
fn queries_return_annoys_results() {
    let mut runs = 0;
    for f in fixtures() {
        let name = f["name"].as_str().unwrap();
        let forest = open(&f);
        let dim = f["f"].as_u64().unwrap() as usize;
        let metric = parse_metric(f["metric"].as_str().unwrap()).unwrap();
        // The vectors added, in the order of `ids`.
        let added = common::read_f32(
            &common::fixtures()
                .join("annoy")
                .join(f["vectors_file"].as_str().unwrap()),
        );
        let ids: Vec<u64> = f["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        for q in f["queries"].as_array().unwrap() {
            let vector: Vec<f32> = match q["kind"].as_str().unwrap() {
                "vector" => q["vector"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect(),
                _ => {
                    let item = q["item"].as_u64().unwrap();
                    match ids.iter().rposition(|&i| i == item) {
                        Some(r) => added[r * dim..(r + 1) * dim].to_vec(),
                        None => vec![0.0; dim], // a hole queries with a zero vector
                    }
                }
            };
            for run in q["runs"].as_array().unwrap() {
                let n = run["n"].as_i64().unwrap();
                if n < 0 {
                    continue;
                }
                let sk = run["search_k"].as_i64().unwrap();
                let search_k = if sk < 0 { None } else { Some(sk as usize) };
                let got = annoy_nns(&forest, &vector, n as usize, search_k);
                let want_ids: Vec<i64> = run["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect();
                let want_d: Vec<f32> = run["distances"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect();
                let ids: Vec<i64> = got.iter().map(|x| x.0).collect();
                assert_eq!(
                    ids,
                    want_ids,
                    "{name} {q:?} n={n} search_k={sk}",
                    q = q["kind"]
                );
                for ((_, d), w) in got.iter().zip(&want_d) {
                    let tol = if metric == Metric::Hamming {
                        0.0
                    } else {
                        2e-5 * w.abs().max(1.0)
                    };
                    assert!((d - w).abs() <= tol, "{name}: distance {d} vs {w}");
                }
                runs += 1;
            }
        }
    }
    assert!(runs > 100, "only {runs} runs");
}

#[test]
fn wrong_dimension_or_metric_and_corruption_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    for f in fixtures() {
        let path = common::fixtures()
            .join("annoy")
            .join(f["index_file"].as_str().unwrap());
        let dim = f["f"].as_u64().unwrap() as usize;
        let metric = parse_metric(f["metric"].as_str().unwrap()).unwrap();
        // Another d or metric: an error or (if the sizes happen to fit) a forest that validated;
        // never a panic. Queries on whatever loaded must not panic either.
        for (d2, m2) in [
            (dim + 1, metric),
            (dim.saturating_sub(1).max(1), metric),
            (dim, Metric::Euclidean),
            (dim, Metric::Angular),
            (dim, Metric::Dot),
        ] {
            if (d2, m2) == (dim, metric) {
                continue;
            }
            if let Ok(fr) = AnnoyForest::open(&path, d2, m2) {
                let _ = annoy_nns(&fr, &vec![0.3; d2], 5, None);
            }
        }
        // Random corruption: never a panic or a hang.
        let bytes = std::fs::read(&path).unwrap();
        let p = dir.path().join("bad.ann");
        let mut s = 3u64;
        for _ in 0..60 {
            let mut b = bytes.clone();
            for _ in 0..3 {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let pos = (s >> 33) as usize % b.len();
                b[pos] = (s >> 11) as u8;
            }
            std::fs::write(&p, &b).unwrap();
            if let Ok(fr) = AnnoyForest::open(&p, dim, metric) {
                let _ = annoy_nns(&fr, &vec![0.7; dim], 10, Some(500));
            }
        }
    }
    let p = dir.path().join("empty.ann");
    std::fs::write(&p, b"").unwrap();
    assert!(AnnoyForest::open(&p, 8, Metric::Angular)
        .unwrap_err()
        .to_string()
        .contains("zero"));
    let small = common::fixtures().join("annoy/angular_small.ann");
    let e = AnnoyForest::open(&small, 9, Metric::Angular)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not a multiple of the node size") && e.contains("d = 9"),
        "{e}"
    );
}

/// Built with annoy's seed, tree count and one thread, our forest has annoy's structure: the same
/// n_descendants and children in (nearly) every node — only a float rounding that flips a
/// comparison can make a subtree differ (docs/algorithms.md: annoy's arithmetic depends on the CPU).
#[test]
fn single_thread_builds_reproduce_annoys_structure() {
    use vecindex::internals::{annoy_build as build, AnnoyBuildParams as BuildParams};
    let mut identical = 0;
    let mut total = 0;
    for f in fixtures() {
        let name = f["name"].as_str().unwrap();
        let ids: Vec<u64> = f["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        if ids.iter().enumerate().any(|(i, &id)| id != i as u64)
            || f["n_trees_requested"].as_i64().unwrap() < 1
        {
            continue; // holes / auto trees: not this test
        }
        let dim = f["f"].as_u64().unwrap() as usize;
        let metric = parse_metric(f["metric"].as_str().unwrap()).unwrap();
        let v = common::read_f32(
            &common::fixtures()
                .join("annoy")
                .join(f["vectors_file"].as_str().unwrap()),
        );
        let seed = f["seed"]
            .as_i64()
            .map(|s| s as u64)
            .unwrap_or(vecindex::internals::ANNOY_DEFAULT_SEED);
        let p = BuildParams {
            n_trees: Some(f["n_trees_requested"].as_u64().unwrap() as usize),
            threads: 1,
            seed,
            ..BuildParams::default()
        };
        let ours = build(
            vecindex::VectorsView::new(&v, dim).unwrap(),
            metric,
            p,
            &|_, _| {},
        )
        .unwrap();
        let theirs = open(&f);
        total += 1;
        let same_size = ours.n_nodes == theirs.n_nodes;
        let same = same_size
            && (0..ours.n_nodes).all(|i| {
                ours.n_descendants(i) == theirs.n_descendants(i)
                    && (ours.n_descendants(i) <= 1
                        || (0..2).all(|j| ours.raw_child(i, j) == theirs.raw_child(i, j)))
            });
        if same {
            identical += 1;
        } else {
            eprintln!(
                "{name}: structure differs (nodes {} vs {})",
                ours.n_nodes, theirs.n_nodes
            );
        }
    }
    eprintln!("{identical}/{total} fixtures rebuilt with annoy's exact structure");
    assert!(
        total >= 10 && identical * 10 >= total * 8,
        "{identical}/{total}"
    );
}
