//! The annoy backend through the public API, and both-direction compatibility with PyPI annoy.

mod common;

use std::path::Path;
use vecindex::io::npy;
use vecindex::{builder_factory, Config, VectorsView};

fn save_npy(path: &Path, rows: usize, d: usize, data: &[f32]) {
    std::fs::write(path, npy::npy_f32(&[rows, d], data)).unwrap();
}

fn load_npz(path: &Path) -> (Vec<i64>, Vec<f32>) {
    let mut ids = vec![];
    let mut d = vec![];
    for (name, a) in npy::parse_npz(&std::fs::read(path).unwrap(), "npz").unwrap() {
        match (name.as_str(), a.data) {
            ("ids", npy::NpyData::Int(v)) => ids = v,
            ("distances", npy::NpyData::Float(v)) => d = v,
            _ => panic!("unexpected member {name}"),
        }
    }
    (ids, d)
}

/// PyPI annoy builds `base` (one thread, `seed`) and saves it to `out`.
fn annoy_build(
    py: &Path,
    d: usize,
    metric: &str,
    base: &Path,
    trees: usize,
    seed: u64,
    out: &Path,
) {
    common::run_python(
        py,
        "annoy_peer.py",
        &[
            "build",
            &d.to_string(),
            metric,
            base.to_str().unwrap(),
            &trees.to_string(),
            &seed.to_string(),
            out.to_str().unwrap(),
        ],
    );
}

const METRICS: &[&str] = &["angular", "euclidean", "manhattan", "dot", "hamming"];

fn data(metric: &str, n: usize, d: usize, seed: u64) -> Vec<f32> {
    let (v, _) = vecindex::synth::clustered(n, d, 20, seed);
    if metric == "hamming" {
        v.as_slice()
            .iter()
            .map(|&x| if x > 0.0 { 1.0 } else { 0.0 })
            .collect()
    } else {
        v.into_vec()
    }
}

#[test]
fn annoy_reads_our_files_and_we_read_annoys() {
    let Some(py) = common::python("annoy") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (n, nq, d, k) = (1500, 20, 24, 10);
    for &metric in METRICS {
        let base = data(metric, n, d, 1);
        let queries = data(metric, nq, d, 2);
        let (bpath, qpath) = (dir.path().join("b.npy"), dir.path().join("q.npy"));
        save_npy(&bpath, n, d, &base);
        save_npy(&qpath, nq, d, &queries);
        // Ours → annoy: one thread and annoy's seed give annoy's own forest; annoy answers like us.
        let b = builder_factory(
            "annoy",
            &Config::new()
                .set("d", d)
                .set("metric", metric)
                .set("n_trees", 8)
                .set("threads", 1)
                .set("seed", 42)
                .set("searchk", 400),
        )
        .unwrap();
        let ours = b
            .from_embeddings(VectorsView::new(&base, d).unwrap())
            .unwrap();
        let opath = dir.path().join("ours.ann");
        ours.save(&opath).unwrap();
        let out = dir.path().join("annoy.npz");
        let info = common::run_python(
            &py,
            "annoy_peer.py",
            &[
                "search",
                opath.to_str().unwrap(),
                &d.to_string(),
                metric,
                qpath.to_str().unwrap(),
                &k.to_string(),
                "400",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(
            info.split_whitespace().collect::<Vec<_>>(),
            vec![n.to_string(), "8".to_string()],
            "{metric}"
        );
        let (ai, ad) = load_npz(&out);
        let r = ours
            .query(VectorsView::new(&queries, d).unwrap(), k)
            .unwrap();
        assert_eq!(r.ids, ai, "{metric}: annoy's answers on our file");
        for (x, y) in r.distances.iter().zip(&ad) {
            assert!(
                (x - y).abs() <= 1e-4 * y.abs().max(1.0),
                "{metric}: {x} vs {y}"
            );
        }
        // annoy → us: same seed, same data: the same file size (same structure), same answers.
        let apath = dir.path().join("annoy.ann");
        annoy_build(&py, d, metric, &bpath, 8, 42, &apath);
        assert_eq!(
            std::fs::metadata(&apath).unwrap().len(),
            std::fs::metadata(&opath).unwrap().len(),
            "{metric}: file size"
        );
        let theirs = builder_factory(
            "annoy",
            &Config::new()
                .set("d", d)
                .set("metric", metric)
                .set("searchk", 400),
        )
        .unwrap()
        .from_index_file(&apath)
        .unwrap();
        let out2 = dir.path().join("annoy2.npz");
        common::run_python(
            &py,
            "annoy_peer.py",
            &[
                "search",
                apath.to_str().unwrap(),
                &d.to_string(),
                metric,
                qpath.to_str().unwrap(),
                &k.to_string(),
                "400",
                out2.to_str().unwrap(),
            ],
        );
        let (ai2, _) = load_npz(&out2);
        assert_eq!(
            theirs
                .query(VectorsView::new(&queries, d).unwrap(), k)
                .unwrap()
                .ids,
            ai2,
            "{metric}: our answers on annoy's file"
        );
    }
}

/// Where PyPI annoy was compiled for AVX2+FMA (pip builds it with -march=native; x86-64 without
/// AVX-512), our build reproduces its float arithmetic (`annoy::arith`), so one thread
/// and the same seed give annoy's forest byte for byte — on data big enough (20k clustered
/// items, d = 64) that any one-ulp difference in a split would have changed the trees. Other
/// builds of annoy round differently; there only the file size is compared, loosely.
#[test]
fn one_thread_forests_are_byte_identical_to_annoys() {
    let Some(py) = common::python("annoy") else {
        return;
    };
    #[cfg(target_arch = "x86_64")]
    let exact = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && !is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    let exact = false;
    let dir = tempfile::tempdir().unwrap();
    let (n, d) = (20_000, 64);
    let (x, _) = vecindex::synth::clustered(n, d, 200, 5);
    let bpath = dir.path().join("b.npy");
    save_npy(&bpath, n, d, x.as_slice());
    for metric in ["angular", "euclidean", "manhattan", "dot"] {
        let cfg = Config::new()
            .set("d", d)
            .set("metric", metric)
            .set("n_trees", 5)
            .set("threads", 1)
            .set("seed", 42);
        let ours = builder_factory("annoy", &cfg)
            .unwrap()
            .from_embeddings(x.view())
            .unwrap();
        let opath = dir.path().join("ours.ann");
        ours.save(&opath).unwrap();
        let apath = dir.path().join("annoy.ann");
        annoy_build(&py, d, metric, &bpath, 5, 42, &apath);
        let (a, o) = (
            std::fs::read(&apath).unwrap(),
            std::fs::read(&opath).unwrap(),
        );
        if exact {
            let first = a.iter().zip(&o).position(|(x, y)| x != y);
            assert!(
                a.len() == o.len() && first.is_none(),
                "{metric}: annoy {} bytes, ours {}; first difference at byte {first:?}",
                a.len(),
                o.len()
            );
        } else {
            let rel = (a.len() as f64 - o.len() as f64).abs() / a.len() as f64;
            assert!(rel < 0.02, "{metric}: {} vs {} bytes", a.len(), o.len());
        }
    }
}

#[test]
fn sidecar_ids_threads_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d) = (800, 16);
    let base = data("angular", n, d, 5);
    let q = data("angular", 5, d, 6);
    let ids: Vec<i64> = (0..n as i64).map(|i| 1_000_000_007 * i - 3).collect();
    let cfg = Config::new()
        .set("d", d)
        .set("n_trees", 6)
        .set("threads", 2)
        .set("seed", 7);
    let b = builder_factory("annoy", &cfg).unwrap();
    let a = b
        .from_embeddings_with_ids(VectorsView::new(&base, d).unwrap(), &ids)
        .unwrap();
    let p = dir.path().join("x.ann");
    a.save(&p).unwrap();
    assert!(vecindex::annoy::backend::sidecar_path(&p).exists());
    // Deterministic for a (seed, threads): a second build is the same file.
    let a2 = b
        .from_embeddings_with_ids(VectorsView::new(&base, d).unwrap(), &ids)
        .unwrap();
    let p2 = dir.path().join("y.ann");
    a2.save(&p2).unwrap();
    assert!(std::fs::read(&p).unwrap() == std::fs::read(&p2).unwrap());
    // Reopened through the sidecar (no d needed): custom ids come back.
    let re = builder_factory("annoy", &Config::new())
        .unwrap()
        .from_index_file(&p)
        .unwrap();
    let r = re.query(VectorsView::new(&q, d).unwrap(), 5).unwrap();
    assert!(r.ids.iter().all(|i| ids.contains(i)));
    assert_eq!(r, a.query(VectorsView::new(&q, d).unwrap(), 5).unwrap());
    assert_eq!(vecindex::inspect(&p).unwrap().backend, "annoy");
    // k > n pads with -1 and +inf (angular is a distance).
    let r = re.query(VectorsView::new(&q, d).unwrap(), n + 3).unwrap();
    assert_eq!(r.ids_row(0)[n..], [-1, -1, -1]);
    assert!(r.distances_row(0)[n].is_infinite());
    // Errors: wrong d / metric against the sidecar, no d without one, NaN, empty, n_trees 0.
    assert!(builder_factory("annoy", &Config::new().set("d", 17))
        .unwrap()
        .from_index_file(&p)
        .is_err());
    assert!(
        builder_factory("annoy", &Config::new().set("metric", "dot"))
            .unwrap()
            .from_index_file(&p)
            .is_err()
    );
    std::fs::remove_file(vecindex::annoy::backend::sidecar_path(&p)).unwrap();
    let e = builder_factory("annoy", &Config::new())
        .unwrap()
        .from_index_file(&p)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("pass d="), "{e}");
    assert!(builder_factory("annoy", &Config::new().set("d", d))
        .unwrap()
        .from_index_file(&p)
        .is_ok());
    let mut bad = base.clone();
    bad[3] = f32::NAN;
    assert!(b
        .from_embeddings(VectorsView::new(&bad, d).unwrap())
        .is_err());
    assert!(b
        .from_embeddings(VectorsView::new(&[], d).unwrap())
        .is_err());
    assert!(builder_factory("annoy", &Config::new().set("n_trees", 0)).is_err());
    let e = builder_factory("annoy", &Config::new().set("metric", "cosine"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("angular, euclidean, manhattan, dot, hamming"),
        "{e}"
    );
}

/// Recall@10 against the exact cosine top-10 on the real embeddings grows with search_k.
#[test]
fn annoy_recall_on_real_embeddings() {
    for set in common::real_sets() {
        let nq = set.queries.rows().min(200);
        let queries = vecindex::Vectors::new(set.queries.as_slice()[..nq * 384].to_vec(), 384);
        let queries = queries.unwrap();
        let exact = vecindex::eval::exact_neighbors(
            set.base.view(),
            queries.view(),
            vecindex::Metric::Angular,
            10,
        )
        .unwrap();
        let mut idx = builder_factory("annoy", &Config::new().set("d", 384).set("n_trees", 20))
            .unwrap()
            .from_vectors(set.base.clone())
            .unwrap();
        let mut prev = 0.0;
        let mut line = format!("{} annoy angular 20 trees recall@10:", set.name);
        for sk in ["-1", "2000", "20000"] {
            idx.set_param("searchk", sk).unwrap();
            let r = idx.query(queries.view(), 10).unwrap();
            let recall = vecindex::eval::recall_against(&r, &exact, 10);
            line += &format!(" searchk {sk}: {recall:.3}");
            assert!(recall >= prev - 1e-9, "{line}");
            prev = recall;
        }
        println!("{line}");
        assert!(prev >= 0.9, "{line}");
    }
}

/// Recall@10 against exact search on clustered synthetic data (queries from the same mixture,
/// as users near the items they like): it grows with search_k and with the number of trees, and
/// a large search_k finds nearly everything — for the recommender metrics angular and dot, and
/// euclidean.
#[test]
fn annoy_recall_on_clustered_data_grows_with_trees_and_search_k() {
    let (n, nq, d) = (20_000, 200, 32);
    let (all, _) = vecindex::synth::clustered(n + nq, d, 100, 21);
    let (base, queries) = all.as_slice().split_at(n * d);
    let base = VectorsView::new(base, d).unwrap();
    let queries = VectorsView::new(queries, d).unwrap();
    for metric in ["angular", "dot", "euclidean"] {
        let m = vecindex::annoy::parse_metric(metric).unwrap();
        let exact = vecindex::eval::exact_neighbors(base, queries, m, 10).unwrap();
        let mut by_trees = vec![];
        for trees in [5, 25] {
            let cfg = Config::new()
                .set("metric", metric)
                .set("n_trees", trees)
                .set("threads", 2);
            let mut idx = builder_factory("annoy", &cfg)
                .unwrap()
                .from_embeddings(base)
                .unwrap();
            let mut line = format!("{metric} {trees} trees recall@10:");
            let mut prev = 0.0;
            let mut recalls = vec![];
            for sk in ["-1", "1000", "10000", "100000"] {
                idx.set_param("searchk", sk).unwrap();
                let r = idx.query(queries, 10).unwrap();
                let recall = vecindex::eval::recall_against(&r, &exact, 10);
                line += &format!(" searchk {sk}: {recall:.3}");
                assert!(recall >= prev - 0.01, "{line}");
                prev = recall;
                recalls.push(recall);
            }
            println!("{line}");
            // search_k 100000 > n: every item is a candidate, so the exact top-10 (up to ties).
            assert!(prev >= 0.99, "{line}");
            by_trees.push(recalls[0]);
        }
        // searchk -1 is n_trees × k: more trees, more candidates, better recall.
        assert!(by_trees[1] > by_trees[0], "{metric}: {by_trees:?}");
    }
}

/// A NaN stored in an item (one corrupted value in a dot file) never ranks: that item is skipped
/// and every returned score is finite; an item whose score overflows to infinity ranks last.
#[test]
fn non_finite_scores_never_outrank_finite_ones() {
    use vecindex::annoy::parse_metric;
    use vecindex::internals::NodeLayout;
    let (n, d) = (300, 8);
    let items = vecindex::synth::gaussian(n, d, 4);
    let dir = tempfile::tempdir().unwrap();
    for metric in ["dot", "euclidean", "angular"] {
        let b = builder_factory("annoy", &Config::new().set("metric", metric)).unwrap();
        let path = dir.path().join(format!("{metric}.ann"));
        b.from_embeddings(items.view())
            .unwrap()
            .save(&path)
            .unwrap();
        let layout = NodeLayout::new(parse_metric(metric).unwrap(), d).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let set = |bytes: &mut Vec<u8>, item: usize, v: f32| {
            let at = item * layout.size + layout.v;
            bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
        };
        set(&mut bytes, 7, f32::NAN);
        set(&mut bytes, 9, f32::MAX); // |x|² and dot products overflow to infinity
        std::fs::write(&path, &bytes).unwrap();
        // Our sidecar's digest catches the corruption; annoy's own files have no sidecar, and
        // for them the query path must cope.
        let e = b.from_index_file(&path).err().unwrap().to_string();
        assert!(e.contains("does not match its sidecar"), "{e}");
        std::fs::remove_file(dir.path().join(format!("{metric}.ann.vecindex.json"))).unwrap();
        let plain = Config::new().set("metric", metric).set("d", d);
        let mut idx = builder_factory("annoy", &plain)
            .unwrap()
            .from_index_file(&path)
            .unwrap();
        // every item inspected, so the corrupted ones are surely among the candidates
        idx.set_param("searchk", "1000000").unwrap();
        let q = VectorsView::new(&items.as_slice()[..d * 5], d).unwrap();
        let r = idx.query(q, n).unwrap();
        for row in 0..5 {
            let ids = r.ids_row(row);
            let dist = r.distances_row(row);
            assert!(!ids.contains(&7), "{metric}: the NaN item was returned");
            if let Some(p) = ids.iter().position(|&i| i == 9) {
                let finite = dist.iter().filter(|x| x.is_finite()).count();
                assert!(
                    dist[p].is_finite() || p >= finite,
                    "{metric}: inf before finite"
                );
            }
            let first_bad = dist.iter().position(|x| !x.is_finite()).unwrap_or(n);
            assert!(
                dist[first_bad..].iter().all(|x| !x.is_finite()),
                "{metric}: {dist:?}"
            );
            assert!(dist.iter().all(|x| !x.is_nan()), "{metric}: NaN score");
        }
    }
}

/// The forest and its sidecar are one pair: a sidecar from another save is an error on load
/// (never wrong ids), and a save interrupted at any step leaves the old pair or the new one.
#[test]
fn forest_and_sidecar_stay_a_pair() {
    let d = 8;
    let (a, b) = (
        vecindex::synth::gaussian(400, d, 1),
        vecindex::synth::gaussian(300, d, 2),
    );
    let ids_a: Vec<i64> = (0..400).map(|i| 1000 + i).collect();
    let ids_b: Vec<i64> = (0..300).map(|i| 5000 + i).collect();
    let q = vecindex::synth::gaussian(4, d, 3);
    let builder = builder_factory("annoy", &Config::new()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("items.ann");
    let side = dir.path().join("items.ann.vecindex.json");
    let pending = dir.path().join(".items.ann.pending");
    let query = |p: &Path| {
        builder
            .from_index_file(p)
            .map(|i| i.query(q.view(), 5).unwrap().ids)
    };

    let ix_a = builder.from_embeddings_with_ids(a.view(), &ids_a).unwrap();
    ix_a.save(&path).unwrap();
    let want_a = ix_a.query(q.view(), 5).unwrap().ids;
    let (forest_a, side_a) = (std::fs::read(&path).unwrap(), std::fs::read(&side).unwrap());
    let ix_b = builder.from_embeddings_with_ids(b.view(), &ids_b).unwrap();
    let want_b = ix_b.query(q.view(), 5).unwrap().ids;
    ix_b.save(&path).unwrap();
    assert!(!pending.exists());
    assert_eq!(query(&path).unwrap(), want_b);
    let (forest_b, side_b) = (std::fs::read(&path).unwrap(), std::fs::read(&side).unwrap());

    // A mismatched pair (new forest, old sidecar): an error naming the cause.
    std::fs::write(&side, &side_a).unwrap();
    let e = query(&path).err().unwrap().to_string();
    assert!(e.contains("does not match its sidecar"), "{e}");

    // Crash between the commit (new sidecar) and the last rename: the next load finishes it.
    std::fs::write(&path, &forest_a).unwrap();
    std::fs::write(&side, &side_b).unwrap();
    std::fs::write(&pending, &forest_b).unwrap();
    assert_eq!(query(&path).unwrap(), want_b);
    assert!(!pending.exists());
    assert_eq!(std::fs::read(&path).unwrap(), forest_b);

    // Crash before the commit: the old pair stands; the stale pending forest is ignored and
    // replaced by the next save.
    std::fs::write(&path, &forest_a).unwrap();
    std::fs::write(&side, &side_a).unwrap();
    std::fs::write(&pending, &forest_b).unwrap();
    assert_eq!(query(&path).unwrap(), want_a);
    ix_b.save(&path).unwrap();
    assert!(!pending.exists());
    assert_eq!(query(&path).unwrap(), want_b);

    // The first save to a path, interrupted between the commit and the rename: no forest yet,
    // only the pending one, which the load moves into place.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&pending, &forest_b).unwrap();
    assert_eq!(query(&path).unwrap(), want_b);
    assert!(!pending.exists());

    // Sidecar fields that do not fit the forest, or nothing: errors naming the sidecar.
    let text = String::from_utf8(side_b.clone()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (field, value, needle) in [
        ("d", serde_json::json!(1u64 << 40), "d = 1099511627776"),
        ("d", serde_json::json!(0), "d = 0"),
        ("n_items", serde_json::json!(299), "records 299 items"),
        ("version", serde_json::json!(3), "sidecar version 3"),
    ] {
        let mut bad = json.clone();
        bad[field] = value;
        std::fs::write(&side, serde_json::to_vec(&bad).unwrap()).unwrap();
        let e = query(&path).err().unwrap().to_string();
        assert!(
            e.contains(needle) && e.contains("vecindex.json"),
            "{field}: {e}"
        );
    }
}
