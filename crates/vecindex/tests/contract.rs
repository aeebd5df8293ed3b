//! The contract every backend and index type keeps, run over all of them with one suite: result
//! shapes, order and padding, custom ids, save and reopen, concurrent queries, and bad input.
//! The truth is exact search in f64 (`common::exact_f64`); approximate indexes are held to a
//! recall floor against it, exact ones to the same ids. Milvus cases run when the test server is
//! up (`./scripts/test.sh` starts it; under CI its absence is a failure).

mod common;

use std::sync::Arc;
use vecindex::{builder_factory, Config, Indexer, Metric, Neighbors, Vectors, VectorsView};

struct Case {
    name: &'static str,
    backend: &'static str,
    params: &'static [(&'static str, &'static str)],
    /// Exact search (same ids as the truth, ties aside), else a recall floor.
    exact: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "faiss Flat L2",
        backend: "faiss",
        params: &[],
        exact: true,
    },
    Case {
        name: "faiss Flat IP",
        backend: "faiss",
        params: &[("metric", "IP")],
        exact: true,
    },
    Case {
        name: "faiss HNSW",
        backend: "faiss",
        params: &[("index_type", "HNSW"), ("m", "8"), ("efSearch", "64")],
        exact: false,
    },
    Case {
        name: "faiss IVF (all lists probed)",
        backend: "faiss",
        params: &[("index_type", "IVF"), ("nlists", "4"), ("nprobe", "4")],
        exact: true,
    },
    Case {
        name: "faiss IVF IP",
        backend: "faiss",
        params: &[("index_type", "IVF"), ("nlists", "8"), ("metric", "IP")],
        exact: false,
    },
    Case {
        name: "annoy euclidean",
        backend: "annoy",
        params: &[
            ("metric", "euclidean"),
            ("n_trees", "10"),
            ("searchk", "4000"),
        ],
        exact: false,
    },
    Case {
        name: "annoy dot",
        backend: "annoy",
        params: &[("metric", "dot"), ("n_trees", "10"), ("searchk", "4000")],
        exact: false,
    },
    Case {
        name: "annoy angular",
        backend: "annoy",
        params: &[
            ("metric", "angular"),
            ("n_trees", "10"),
            ("searchk", "4000"),
        ],
        exact: false,
    },
    Case {
        name: "milvus FLAT",
        backend: "milvus",
        params: &[("index_type", "FLAT")],
        exact: true,
    },
    Case {
        name: "milvus HNSW IP",
        backend: "milvus",
        params: &[("index_type", "HNSW"), ("metric", "IP"), ("ef", "64")],
        exact: false,
    },
    Case {
        name: "milvus IVF_FLAT",
        backend: "milvus",
        params: &[("index_type", "IVF_FLAT"), ("nlist", "4"), ("nprobe", "4")],
        exact: true,
    },
];

const N: usize = 400;
const D: usize = 12;
const K: usize = 10;

fn config(case: &Case) -> Option<Config> {
    let mut c = case
        .params
        .iter()
        .fold(Config::new(), |c, (k, v)| c.set(*k, *v));
    if case.backend == "milvus" {
        if !cfg!(feature = "milvus") {
            return None;
        }
        c = c
            .set("uri", common::milvus_uri()?)
            .set("connect_timeout", 20);
    }
    if case.backend == "annoy" {
        c = c.set("d", D);
    }
    Some(c)
}

/// The f64 truth for `metric` (annoy's metrics through their f32-equivalent definitions).
fn truth(items: &Vectors, queries: &Vectors, metric: Metric) -> Vec<i64> {
    match metric {
        Metric::L2 | Metric::Euclidean => common::exact_f64(items, queries, true, K).0,
        Metric::InnerProduct | Metric::Dot => common::exact_f64(items, queries, false, K).0,
        Metric::Angular | Metric::Cosine => {
            let (items, queries) = (common::unit_rows(items), common::unit_rows(queries));
            common::exact_f64(&items, &queries, false, K).0
        }
        other => panic!("no truth for {other:?}"),
    }
}

fn recall(got: &Neighbors, truth: &[i64]) -> f64 {
    let hits: usize = (0..got.n_queries)
        .map(|q| {
            let want = &truth[q * K..(q + 1) * K];
            got.ids_row(q).iter().filter(|i| want.contains(i)).count()
        })
        .sum();
    hits as f64 / (got.n_queries * K) as f64
}

/// Rows sorted best first in the metric's direction, ids in range and distinct, padding last.
fn assert_well_formed(case: &str, r: &Neighbors, metric: Metric, valid: impl Fn(i64) -> bool) {
    assert_eq!(r.ids.len(), r.n_queries * r.k, "{case}");
    assert_eq!(r.distances.len(), r.ids.len(), "{case}");
    for q in 0..r.n_queries {
        let (ids, ds) = (r.ids_row(q), r.distances_row(q));
        let found: Vec<i64> = ids.iter().copied().filter(|&i| i != -1).collect();
        assert!(
            ids[found.len()..].iter().all(|&i| i == -1),
            "{case}: padding only at the end: {ids:?}"
        );
        assert!(ds[found.len()..].iter().all(|&d| d == metric.padding()));
        assert!(found.iter().all(|&i| valid(i)), "{case}: {ids:?}");
        let mut distinct = found.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), found.len(), "{case}: repeated ids {ids:?}");
        for w in ds[..found.len()].windows(2) {
            let ordered = if metric.higher_is_better() {
                w[0] >= w[1]
            } else {
                w[0] <= w[1]
            };
            assert!(ordered, "{case}: row {q} out of order: {ds:?}");
        }
    }
}

/// A saved Milvus collection persists (that is what saving means): drop it, by the name its
/// handle file records.
fn drop_saved_collection(config: &Config, handle: &std::path::Path) {
    #[cfg(feature = "milvus")]
    {
        let h: serde_json::Value = serde_json::from_slice(&std::fs::read(handle).unwrap()).unwrap();
        vecindex::milvus::MilvusBuilder::from_config(config)
            .unwrap()
            .drop_collection(h["collection"].as_str().unwrap())
            .unwrap();
    }
    #[cfg(not(feature = "milvus"))]
    let _ = (config, handle);
}

#[test]
fn every_backend_keeps_the_contract() {
    let items = vecindex::synth::gaussian(N, D, 31);
    let queries = vecindex::synth::gaussian(9, D, 32);
    let tmp = tempfile::tempdir().unwrap();
    let mut ran = Vec::new();
    for case in CASES {
        let Some(config) = config(case) else { continue };
        let name = case.name;
        let b = builder_factory(case.backend, &config).unwrap();
        let idx = b.from_embeddings(items.view()).unwrap();
        let metric = idx.metric();
        assert_eq!((idx.len(), idx.dim()), (N, D), "{name}");
        assert_eq!(idx.info().n, N, "{name}");
        assert_eq!(idx.higher_is_better(), metric.higher_is_better(), "{name}");

        // Shapes, order, and agreement with the exact truth.
        let r = idx.query(queries.view(), K).unwrap();
        assert_eq!((r.n_queries, r.k), (queries.rows(), K), "{name}");
        assert_well_formed(name, &r, metric, |i| (0..N as i64).contains(&i));
        let want = truth(&items, &queries, metric);
        let rec = recall(&r, &want);
        let floor = if case.exact { 0.99 } else { 0.8 };
        assert!(rec >= floor, "{name}: recall@{K} {rec} < {floor}");

        // Zero queries, and a single query that equals its row in the batch.
        let e = idx.query(VectorsView::new(&[], D).unwrap(), K).unwrap();
        assert_eq!((e.n_queries, e.ids.len()), (0, 0), "{name}");
        let one = idx.query(queries.view().slice_rows(2, 3), K).unwrap();
        assert_eq!(one.ids, r.ids_row(2), "{name}");

        // Concurrent queries give the batch's answer.
        let shared: Arc<dyn Indexer> = idx.into();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| shared.query(queries.view(), K).unwrap()))
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap().ids, r.ids, "{name}: concurrent");
            }
        });

        // Save and reopen: the same answers.
        let path = tmp.path().join(format!("{}.index", name.replace(' ', "_")));
        shared.save(&path).unwrap();
        let reopened = b.from_index_file(&path).unwrap();
        let (built, read) = (shared.info(), reopened.info());
        assert_eq!(
            (
                &built.format,
                &built.index_type,
                built.metric,
                built.n,
                built.dim
            ),
            (
                &read.format,
                &read.index_type,
                read.metric,
                read.n,
                read.dim
            ),
            "{name}: what the built index says of itself is what its file says"
        );
        let again = reopened.query(queries.view(), K).unwrap();
        assert_eq!(again.ids, r.ids, "{name}: reopened");
        for (a, b) in again.distances.iter().zip(&r.distances) {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "{name}: {a} vs {b}"
            );
        }

        // Bad input: wrong dimension, NaN, top_k 0 — errors, never panics.
        assert!(reopened
            .query(VectorsView::new(&[0.5; D + 1], D + 1).unwrap(), K)
            .is_err());
        let mut nan = queries.view().row(0).to_vec();
        nan[3] = f32::NAN;
        assert!(reopened
            .query(VectorsView::new(&nan, D).unwrap(), K)
            .is_err());
        assert!(reopened.query(queries.view(), 0).is_err(), "{name}: k=0");

        // Custom ids map through, and repeated ids are refused.
        let ids: Vec<i64> = (0..N as i64).map(|i| 1_000_000 + 7 * i).collect();
        let with_ids = b.from_embeddings_with_ids(items.view(), &ids).unwrap();
        let rid = with_ids.query(queries.view(), K).unwrap();
        assert_well_formed(name, &rid, metric, |i| {
            i >= 1_000_000 && (i - 1_000_000) % 7 == 0 && i < 1_000_000 + 7 * N as i64
        });
        if case.exact {
            let mapped: Vec<i64> = r.ids.iter().map(|&i| 1_000_000 + 7 * i).collect();
            assert_eq!(rid.ids, mapped, "{name}: custom ids");
        }
        let mut repeated = ids.clone();
        repeated[5] = repeated[6];
        assert!(b.from_embeddings_with_ids(items.view(), &repeated).is_err());

        if case.backend == "milvus" {
            drop_saved_collection(&config, &path);
        }

        // Fewer items than k: every item, then padding (IVF cannot train on 3 items).
        if case.params.iter().any(|(k, _)| k.starts_with("nlist")) {
            ran.push(name);
            continue;
        }
        let small = b.from_embeddings(items.view().slice_rows(0, 3)).unwrap();
        let p = small.query(queries.view(), K).unwrap();
        assert_well_formed(name, &p, metric, |i| (0..3).contains(&i));
        for q in 0..p.n_queries {
            let mut got: Vec<i64> = p.ids_row(q)[..3].to_vec();
            got.sort();
            assert_eq!(got, [0, 1, 2], "{name}: small index row {q}");
        }
        ran.push(name);
    }
    eprintln!("contract kept by: {ran:?}");
    assert!(ran.len() >= 8, "{ran:?}");
}
