//! Behaviour of the public API that every backend must keep.

use std::sync::Arc;
use vecindex::{builder_factory, exact_knn, Config, Indexer, Metric, VectorsView};

fn assert_send_sync<T: Send + Sync + ?Sized>() {}

#[test]
fn indexers_are_send_sync_and_query_from_many_threads() {
    assert_send_sync::<dyn Indexer>();
    let d = 32;
    let items = vecindex::synth::gaussian(5000, d, 5);
    let queries = vecindex::synth::gaussian(64, d, 6);
    let idx: Arc<dyn Indexer> = builder_factory("faiss", &Config::new())
        .unwrap()
        .from_vectors(items)
        .unwrap()
        .into();
    let want = idx.query(queries.view(), 10).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let idx = Arc::clone(&idx);
            let q = queries.clone();
            std::thread::spawn(move || {
                // Mix batch and single queries across threads.
                let all = idx.query(q.view(), 10).unwrap();
                let one = idx.query(q.view().slice_rows(t, t + 1), 10).unwrap();
                (all, one)
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let (all, one) = h.join().unwrap();
        assert_eq!(all, want);
        assert_eq!(one.ids, want.ids_row(t));
    }
}

#[test]
fn padding_and_edge_cases_are_uniform() {
    let items = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
    let v = VectorsView::new(&items, 2).unwrap();
    for (m, pad) in [("L2", f32::INFINITY), ("IP", f32::NEG_INFINITY)] {
        let idx = builder_factory("faiss", &Config::new().set("metric", m))
            .unwrap()
            .from_embeddings(v)
            .unwrap();
        let r = idx
            .query(VectorsView::new(&[1.0, 0.0], 2).unwrap(), 5)
            .unwrap();
        assert_eq!((r.n_queries, r.k), (1, 5));
        assert_eq!(&r.ids[3..], &[-1, -1]);
        assert_eq!(&r.distances[3..], &[pad, pad]);
        assert_eq!(idx.metric().padding(), pad);
        // Zero queries: an empty, well-shaped result.
        let e = idx.query(VectorsView::new(&[], 2).unwrap(), 5).unwrap();
        assert_eq!((e.n_queries, e.ids.len()), (0, 0));
        // Bad queries.
        assert!(idx
            .query(VectorsView::new(&[f32::NAN, 0.0], 2).unwrap(), 1)
            .is_err());
        assert!(idx
            .query(VectorsView::new(&[0.0; 3], 3).unwrap(), 1)
            .is_err());
        assert!(idx.query(v, 0).is_err());
    }
    let b = builder_factory("faiss", &Config::new()).unwrap();
    assert!(b
        .from_embeddings(VectorsView::new(&[], 2).unwrap())
        .is_err());
    assert!(b.from_embeddings_with_ids(v, &[1, 2, 1]).is_err());
    assert!(b.from_embeddings_with_ids(v, &[1, 2]).is_err());
    // Milvus is there with the `milvus` feature (the CLI's and the Python package's builds).
    if cfg!(feature = "milvus") {
        assert!(builder_factory("milvus", &Config::new()).is_ok());
        assert_eq!(
            vecindex::available_backends(),
            vec!["faiss", "annoy", "milvus"]
        );
    } else {
        assert!(builder_factory("milvus", &Config::new()).is_err());
        assert_eq!(vecindex::available_backends(), vec!["faiss", "annoy"]);
    }
}

#[test]
fn exact_knn_is_the_flat_result() {
    let items = vecindex::synth::gaussian(300, 8, 1);
    let q = vecindex::synth::gaussian(5, 8, 2);
    let r = exact_knn(items.view(), q.view(), Metric::InnerProduct, 3).unwrap();
    assert_eq!(r.metric, Metric::InnerProduct);
    for i in 0..5 {
        let row = r.distances_row(i);
        assert!(row[0] >= row[1] && row[1] >= row[2]);
    }
}

#[cfg(feature = "ndarray")]
#[test]
fn ndarray_in_and_out() {
    let a = ndarray::Array2::<f32>::from_shape_fn((50, 4), |(i, j)| (i * 4 + j) as f32);
    let idx = builder_factory("faiss", &Config::new())
        .unwrap()
        .from_embeddings(VectorsView::try_from(a.view()).unwrap())
        .unwrap();
    let (ids, dist) = idx
        .query(VectorsView::try_from(a.view()).unwrap(), 2)
        .unwrap()
        .to_ndarray();
    assert_eq!(ids.shape(), &[50, 2]);
    assert_eq!(ids[[7, 0]], 7);
    assert_eq!(dist[[7, 0]], 0.0);
}

#[test]
fn exact_neighbors_for_annoy_metrics_match_annoy_exhaustive_search() {
    // annoy with search_k >= n_items · trees visits every leaf: its answer is exact.
    let items = vecindex::synth::gaussian(400, 12, 3);
    let q = vecindex::synth::gaussian(7, 12, 4);
    for metric in ["manhattan", "hamming", "euclidean", "angular", "dot"] {
        let idx = builder_factory(
            "annoy",
            &Config::new()
                .set("metric", metric)
                .set("n_trees", 3)
                .set("searchk", 400 * 3 * 2),
        )
        .unwrap()
        .from_embeddings(items.view())
        .unwrap();
        let got = idx.query(q.view(), 5).unwrap();
        let exact =
            vecindex::eval::exact_neighbors(items.view(), q.view(), idx.metric(), 5).unwrap();
        if metric == "hamming" {
            // Many ties in bit counts: compare the distances, not the ids.
            for r in 0..7 {
                let mut a = got.distances_row(r).to_vec();
                let b = exact.distances_row(r).to_vec();
                a.sort_by(f32::total_cmp);
                assert_eq!(a, b, "{metric} row {r}");
            }
        } else {
            assert_eq!(got.ids, exact.ids, "{metric}");
        }
    }
}

/// Sizes from users and files are checked before anything is allocated: a huge top_k is an
/// error (not a capacity-overflow panic or an abort), and an efSearch far beyond the index size
/// allocates only what a search can use (and then finds the exact neighbours).
#[test]
fn huge_top_k_and_ef_search_are_safe() {
    let d = 16;
    let items = vecindex::synth::gaussian(2000, d, 8);
    let queries = vecindex::synth::gaussian(3, d, 9);
    let exact = exact_knn(items.view(), queries.view(), Metric::L2, 10).unwrap();
    for config in [
        Config::new(),
        Config::new()
            .set("index_type", "HNSW")
            .set("efSearch", 2147483647),
        Config::new().set("index_type", "IVF").set("nlists", 20),
    ] {
        let idx = builder_factory("faiss", &config)
            .unwrap()
            .from_embeddings(items.view())
            .unwrap();
        for k in [usize::MAX, usize::MAX / 2, 1 << 40, 1_000_000_000] {
            let e = idx.query(queries.view(), k).unwrap_err().to_string();
            assert!(e.contains("results") || e.contains("memory"), "{e}");
        }
        if config.is_empty() || config.entries()[0].1 == "HNSW" {
            assert_eq!(idx.query(queries.view(), 10).unwrap().ids, exact.ids);
        }
    }
    let annoy = builder_factory("annoy", &Config::new())
        .unwrap()
        .from_embeddings(items.view())
        .unwrap();
    assert!(annoy.query(queries.view(), usize::MAX).is_err());
}
