//! Cross-compatibility with faiss-cpu from the test venv, both directions: faiss reads what we
//! save and answers like we do; we read what faiss saves and answer like faiss does.

mod common;

use std::path::Path;
use vecindex::io::npy;
use vecindex::{builder_factory, Config, VectorsView};

fn save_npy_f32(path: &std::path::Path, rows: usize, d: usize, data: &[f32]) {
    std::fs::write(path, npy::npy_f32(&[rows, d], data)).unwrap();
}

fn load_npz(path: &std::path::Path) -> (Vec<i64>, Vec<f32>) {
    let m = npy::parse_npz(&std::fs::read(path).unwrap(), "npz").unwrap();
    let mut ids = vec![];
    let mut d = vec![];
    for (name, a) in m {
        match (name.as_str(), a.data) {
            ("ids", npy::NpyData::Int(v)) => ids = v,
            ("distances", npy::NpyData::Float(v)) => d = v,
            _ => panic!("unexpected member {name}"),
        }
    }
    (ids, d)
}

/// faiss.read_index(index).search(queries, k) in the venv: (ids, distances, "ntotal d metric").
fn faiss_search(
    py: &Path,
    dir: &Path,
    index: &Path,
    queries: &Path,
    k: usize,
) -> (Vec<i64>, Vec<f32>, String) {
    faiss_search_ef(py, dir, index, queries, k, None)
}

/// [`faiss_search`] with HNSW's efSearch set first (also inside an id map or refine wrapper).
fn faiss_search_ef(
    py: &Path,
    dir: &Path,
    index: &Path,
    queries: &Path,
    k: usize,
    ef: Option<usize>,
) -> (Vec<i64>, Vec<f32>, String) {
    let out = dir.join("faiss.npz");
    let mut args = vec![
        "search".to_string(),
        index.to_str().unwrap().into(),
        queries.to_str().unwrap().into(),
        k.to_string(),
        out.to_str().unwrap().into(),
    ];
    args.extend(ef.map(|e| e.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let info = common::run_python(py, "faiss_peer.py", &args);
    let (ids, d) = load_npz(&out);
    (ids, d, info)
}

const CASES: &[(&str, bool)] = &[("L2", false), ("IP", false), ("L2", true), ("IP", true)];

#[test]
fn faiss_reads_our_flat_files_and_agrees() {
    let Some(py) = common::python("faiss") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (n, nq, d, k) = (3000, 40, 24, 10);
    let base = common::gaussian(n, d, 1);
    let queries = common::gaussian(nq, d, 2);
    let qpath = dir.path().join("q.npy");
    save_npy_f32(&qpath, nq, d, &queries);
    for &(metric, custom_ids) in CASES {
        let b = builder_factory("faiss", &Config::new().set("metric", metric)).unwrap();
        let ids: Vec<i64> = (0..n as i64).map(|i| i * 7919 - 5).collect();
        let items = VectorsView::new(&base, d).unwrap();
        let idx = if custom_ids {
            b.from_embeddings_with_ids(items, &ids).unwrap()
        } else {
            b.from_embeddings(items).unwrap()
        };
        let ipath = dir.path().join("ours.index");
        idx.save(&ipath).unwrap();
        let (fi, fd, info) = faiss_search(&py, dir.path(), &ipath, &qpath, k);
        assert_eq!(
            info.split_whitespace().next(),
            Some(n.to_string().as_str()),
            "faiss ntotal"
        );
        let ours = idx
            .query(VectorsView::new(&queries, d).unwrap(), k)
            .unwrap();
        common::assert_same_results(&ours.ids, &ours.distances, &fi, &fd, k, 1e-4);
    }
}

#[test]
fn ivf_cross_compatibility_both_ways() {
    let Some(py) = common::python("faiss") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (n, nq, d, k, nlist) = (4000, 50, 16, 10, 32);
    let (base, _) = vecindex::synth::clustered(n, d, 40, 9);
    let queries = vecindex::synth::gaussian(nq, d, 10);
    let (bpath, qpath, idpath) = (
        dir.path().join("b.npy"),
        dir.path().join("q.npy"),
        dir.path().join("ids.npy"),
    );
    save_npy_f32(&bpath, n, d, base.as_slice());
    save_npy_f32(&qpath, nq, d, queries.as_slice());
    let ids: Vec<i64> = (0..n as i64).map(|i| i * 11 + 5).collect();
    std::fs::write(&idpath, npy::npy_i64(&[n], &ids)).unwrap();
    for &(metric, custom_ids) in CASES {
        // faiss builds → we load: same centroids and lists, so the same answers at every nprobe.
        let fpath = dir.path().join("faiss_ivf.index");
        let mut args = vec![
            "build".to_string(),
            format!("ivf{nlist}"),
            metric.into(),
            bpath.to_str().unwrap().into(),
        ];
        if custom_ids {
            args.push(idpath.to_str().unwrap().into());
        }
        args.push(fpath.to_str().unwrap().into());
        common::run_python(
            &py,
            "faiss_peer.py",
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let mut idx = builder_factory("faiss", &Config::new().set("index_type", "IVF"))
            .unwrap()
            .from_index_file(&fpath)
            .unwrap();
        assert_eq!(idx.info().params["nprobe"], "4");
        let (fi, fd, _) = faiss_search(&py, dir.path(), &fpath, &qpath, k);
        let ours = idx.query(queries.view(), k).unwrap();
        common::assert_same_results(&ours.ids, &ours.distances, &fi, &fd, k, 1e-4);
        // Our own training on the same data gives (for L2) the very same file.
        let b = builder_factory(
            "faiss",
            &Config::new()
                .set("index_type", "IVF")
                .set("metric", metric)
                .set("nlists", nlist)
                .set("nprobe", 4),
        )
        .unwrap();
        let built = if custom_ids {
            b.from_embeddings_with_ids(base.view(), &ids).unwrap()
        } else {
            b.from_embeddings(base.view()).unwrap()
        };
        let opath = dir.path().join("ours_ivf.index");
        built.save(&opath).unwrap();
        // 4000 × 16 values: below faiss's sgemm threshold, so k-means (L2 and spherical IP)
        // and the list assignment are faiss's arithmetic: the same bytes.
        assert_eq!(
            std::fs::read(&opath).unwrap(),
            std::fs::read(&fpath).unwrap(),
            "{metric} ids={custom_ids}: not byte-identical"
        );
        // faiss loads what we built and answers like we do.
        let (fi, fd, _) = faiss_search(&py, dir.path(), &opath, &qpath, k);
        let ours = built.query(queries.view(), k).unwrap();
        common::assert_same_results(&ours.ids, &ours.distances, &fi, &fd, k, 1e-4);
        idx.set_param("nprobe", "32").unwrap();
        let all = idx.query(queries.view(), k).unwrap();
        let exact = vecindex::exact_knn(base.view(), queries.view(), idx.metric(), k).unwrap();
        if !custom_ids {
            // nprobe = nlist scans everything: exact (up to near-ties between the two formulas).
            common::assert_same_results(
                &all.ids,
                &all.distances,
                &exact.ids,
                &exact.distances,
                k,
                1e-4,
            );
        }
    }
}

#[test]
fn hnsw_cross_compatibility_both_ways() {
    let Some(py) = common::python("faiss") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 6000 points: batches reach theta = 120 > 100, so phase A runs in parallel too.
    let (n, nq, d, k, m) = (6000, 40, 16, 10, 12);
    let (base, _) = vecindex::synth::clustered(n, d, 30, 21);
    let queries = vecindex::synth::gaussian(nq, d, 22);
    let (bpath, qpath, idpath) = (
        dir.path().join("b.npy"),
        dir.path().join("q.npy"),
        dir.path().join("ids.npy"),
    );
    save_npy_f32(&bpath, n, d, base.as_slice());
    save_npy_f32(&qpath, nq, d, queries.as_slice());
    let ids: Vec<i64> = (0..n as i64).map(|i| 3 * i + 1).collect();
    std::fs::write(&idpath, npy::npy_i64(&[n], &ids)).unwrap();
    for &(metric, custom_ids) in CASES {
        // faiss builds (its deterministic build) → identical to ours, byte for byte.
        let fpath = dir.path().join("faiss_hnsw.index");
        let mut args = vec![
            "build".to_string(),
            format!("hnsw{m}"),
            metric.into(),
            bpath.to_str().unwrap().into(),
        ];
        if custom_ids {
            args.push(idpath.to_str().unwrap().into());
        }
        args.push(fpath.to_str().unwrap().into());
        common::run_python(
            &py,
            "faiss_peer.py",
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let b = builder_factory(
            "faiss",
            &Config::new()
                .set("index_type", "HNSW")
                .set("metric", metric)
                .set("m", m),
        )
        .unwrap();
        let ours = if custom_ids {
            b.from_embeddings_with_ids(base.view(), &ids).unwrap()
        } else {
            b.from_embeddings(base.view()).unwrap()
        };
        let opath = dir.path().join("ours_hnsw.index");
        ours.save(&opath).unwrap();
        let (a, bb) = (
            std::fs::read(&opath).unwrap(),
            std::fs::read(&fpath).unwrap(),
        );
        if custom_ids {
            // faiss wrote IxM2 here, we write IxMp: same bytes after the fourcc.
            assert!(
                a[4..] == bb[4..],
                "{metric} ids: graph differs from faiss's"
            );
        } else {
            assert!(a == bb, "{metric}: graph differs from faiss's");
        }
        // Same graph, same search: identical ids at several efSearch.
        for ef in [16usize, 64] {
            let mut t = builder_factory("faiss", &Config::new().set("efSearch", ef))
                .unwrap()
                .from_index_file(&fpath)
                .unwrap();
            let (fi, fd, _) = faiss_search_ef(&py, dir.path(), &fpath, &qpath, k, Some(ef));
            let r = t.query(queries.view(), k).unwrap();
            assert_eq!(r.ids, fi, "{metric} ids={custom_ids} ef={ef}");
            common::assert_same_results(&r.ids, &r.distances, &fi, &fd, k, 1e-5);
            t.set_param("efSearch", "16").unwrap();
        }
    }
}

#[test]
fn we_read_faiss_files_and_agree() {
    let Some(py) = common::python("faiss") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (n, nq, d) = (2500, 30, 40);
    let base = common::gaussian(n, d, 3);
    let queries = common::gaussian(nq, d, 4);
    let bpath = dir.path().join("b.npy");
    let qpath = dir.path().join("q.npy");
    let idpath = dir.path().join("ids.npy");
    save_npy_f32(&bpath, n, d, &base);
    save_npy_f32(&qpath, nq, d, &queries);
    let ids: Vec<i64> = (0..n as i64).map(|i| (i << 33) + 3).collect();
    std::fs::write(&idpath, npy::npy_i64(&[n], &ids)).unwrap();
    for &(metric, custom_ids) in CASES {
        let ipath = dir.path().join("faiss.index");
        let mut args = vec!["build", "flat", metric, bpath.to_str().unwrap()];
        if custom_ids {
            args.push(idpath.to_str().unwrap());
        }
        args.push(ipath.to_str().unwrap());
        common::run_python(&py, "faiss_peer.py", &args);
        let b = builder_factory("faiss", &Config::new()).unwrap();
        let idx = b.from_index_file(&ipath).unwrap();
        assert_eq!(idx.metric().name(), metric);
        assert_eq!(idx.info().custom_ids, custom_ids);
        for k in [1usize, 10, n + 5] {
            let (fi, fd, _) = faiss_search(&py, dir.path(), &ipath, &qpath, k);
            let ours = idx
                .query(VectorsView::new(&queries, d).unwrap(), k)
                .unwrap();
            common::assert_same_results(&ours.ids, &ours.distances, &fi, &fd, k, 1e-4);
        }
        // And what we save from it is the same file faiss wrote.
        let resaved = dir.path().join("resaved.index");
        idx.save(&resaved).unwrap();
        assert_eq!(
            std::fs::read(&resaved).unwrap(),
            std::fs::read(&ipath).unwrap(),
            "{metric} ids={custom_ids}"
        );
    }
}

/// Exact ties everywhere: duplicated rows and small-integer coordinates, so that many distances
/// are equal. The graph faiss builds and the results it returns are still ours, bit for bit
/// (this is where the candidate heaps' tie rules show; docs/algorithms.md).
#[test]
fn hnsw_with_exact_ties_matches_faiss() {
    let Some(py) = common::python("faiss") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 6000 rows: batches reach theta = 120 > 100, so phase A also runs in parallel.
    let (n, nq, d, k, m) = (6000, 40, 6, 10, 8);
    let grid: Vec<f32> = vecindex::synth::gaussian(n / 3, d, 31)
        .as_slice()
        .iter()
        .map(|x| (x * 2.0).round())
        .collect();
    // Each row three times, interleaved, so duplicates are inserted in different batches.
    let mut rows = Vec::with_capacity(n * d);
    for copy in 0..3 {
        for r in grid.chunks(d) {
            rows.extend(r.iter().map(|x| x + (copy as f32) * 0.0));
        }
    }
    let base = vecindex::Vectors::new(rows, d).unwrap();
    let queries: Vec<f32> = vecindex::synth::gaussian(nq, d, 32)
        .as_slice()
        .iter()
        .map(|x| (x * 2.0).round())
        .collect();
    let queries = vecindex::Vectors::new(queries, d).unwrap();
    let (bpath, qpath) = (dir.path().join("b.npy"), dir.path().join("q.npy"));
    save_npy_f32(&bpath, n, d, base.as_slice());
    save_npy_f32(&qpath, nq, d, queries.as_slice());
    for metric in ["L2", "IP"] {
        let fpath = dir.path().join(format!("faiss_{metric}.index"));
        common::run_python(
            &py,
            "faiss_peer.py",
            &[
                "build",
                &format!("hnsw{m}"),
                metric,
                bpath.to_str().unwrap(),
                fpath.to_str().unwrap(),
            ],
        );
        let ours = builder_factory(
            "faiss",
            &Config::new()
                .set("index_type", "HNSW")
                .set("metric", metric)
                .set("m", m),
        )
        .unwrap()
        .from_embeddings(base.view())
        .unwrap();
        let opath = dir.path().join(format!("ours_{metric}.index"));
        ours.save(&opath).unwrap();
        assert!(
            std::fs::read(&opath).unwrap() == std::fs::read(&fpath).unwrap(),
            "{metric}: graph with exact ties differs from faiss's"
        );
        for ef in [16usize, 64] {
            let t = builder_factory("faiss", &Config::new().set("efSearch", ef))
                .unwrap()
                .from_index_file(&fpath)
                .unwrap();
            let (fi, fd, _) = faiss_search_ef(&py, dir.path(), &fpath, &qpath, k, Some(ef));
            let r = t.query(queries.view(), k).unwrap();
            assert_eq!(r.ids, fi, "{metric} ef={ef}: ids differ from faiss's");
            assert_eq!(r.distances, fd, "{metric} ef={ef}");
        }
    }
}

/// Quantized indexes on real sentence embeddings (d = 384, the 16-lane kernel path): faiss
/// builds the same bytes from the same factory string, and faiss searching our file returns
/// our ids and distances bit for bit.
#[test]
fn quantized_indexes_on_real_embeddings_match_faiss() {
    let Some(py) = common::python("faiss") else {
        return;
    };
    let set = &common::real_sets()[0];
    let dir = tempfile::tempdir().unwrap();
    let (bpath, qpath) = (dir.path().join("b.npy"), dir.path().join("q.npy"));
    let (n, d) = (set.base.rows(), set.base.dim());
    save_npy_f32(&bpath, n, d, set.base.as_slice());
    let queries = set.queries.view().slice_rows(0, 50);
    save_npy_f32(&qpath, 50, d, queries.as_slice());
    let k = 10;
    for factory in ["SQ8", "HNSW32,SQ8", "HNSW16,SQfp16,RFlat"] {
        for metric in ["L2", "IP"] {
            let what = format!("{factory} {metric}");
            let ours = builder_factory(
                "faiss",
                &Config::new().set("factory", factory).set("metric", metric),
            )
            .unwrap()
            .from_embeddings(set.base.view())
            .unwrap();
            let opath = dir.path().join("ours.index");
            ours.save(&opath).unwrap();
            let fpath = dir.path().join("faiss.index");
            common::run_python(
                &py,
                "faiss_peer.py",
                &[
                    "factory",
                    factory,
                    metric,
                    bpath.to_str().unwrap(),
                    fpath.to_str().unwrap(),
                ],
            );
            assert!(
                std::fs::read(&opath).unwrap() == std::fs::read(&fpath).unwrap(),
                "{what}: our file differs from faiss's"
            );
            let ef = factory.starts_with("HNSW").then_some(16);
            let (fi, fd, _) = faiss_search_ef(&py, dir.path(), &opath, &qpath, k, ef);
            let r = ours.query(queries, k).unwrap();
            assert_eq!(r.ids, fi, "{what}: ids");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&r.distances), bits(&fd), "{what}: distances");
        }
    }
}

/// IVF-PQ on real sentence embeddings (d = 384; sub-vectors of 4, 8 and 12 values, faiss's
/// special table kernels): on the 2,000-row sample faiss builds the same bytes from an `np`
/// factory string and the same answers from the polysemous one; faiss searching our file
/// returns our ids and distances bit for bit; on the full set (when present) our recall@10 is
/// within 0.01 of faiss's own index at the same nprobe.
#[test]
fn ivf_pq_on_real_embeddings_matches_faiss() {
    let Some(py) = common::python("faiss") else {
        return;
    };
    let sets = common::real_sets();
    let k = 10;
    for set in &sets {
        let dir = tempfile::tempdir().unwrap();
        let (bpath, qpath) = (dir.path().join("b.npy"), dir.path().join("q.npy"));
        let (n, d) = (set.base.rows(), set.base.dim());
        save_npy_f32(&bpath, n, d, set.base.as_slice());
        // Few queries keep faiss's coarse search on its direct (reproducible) path.
        let nq = if set.name == "sample" {
            50
        } else {
            set.queries.rows()
        };
        let queries = set.queries.view().slice_rows(0, nq);
        save_npy_f32(&qpath, nq, d, queries.as_slice());
        let nlist = if set.name == "sample" { 16 } else { 128 };
        // PQ96x4: polysemous (faiss's annealing costs ~1 s per 8-bit sub-quantizer; 4-bit ones
        // are quick), sample only.
        let cases: &[(&str, &str)] = if set.name == "sample" {
            &[("PQ48np", "L2"), ("PQ96x4", "L2"), ("PQ32np", "IP")]
        } else {
            &[("PQ48np", "L2"), ("PQ32np", "IP")]
        };
        for &(pq, metric) in cases {
            let factory = format!("IVF{nlist},{pq}");
            let what = format!("{} {factory} {metric}", set.name);
            let ours = builder_factory(
                "faiss",
                &Config::new()
                    .set("factory", &factory)
                    .set("metric", metric)
                    .set("nprobe", 1),
            )
            .unwrap()
            .from_embeddings(set.base.view())
            .unwrap();
            let opath = dir.path().join("ours.index");
            ours.save(&opath).unwrap();
            let fpath = dir.path().join("faiss.index");
            let args = ["factory", &factory, metric, bpath.to_str().unwrap()];
            let mut args: Vec<&str> = args.to_vec();
            args.push(fpath.to_str().unwrap());
            common::run_python(&py, "faiss_peer.py", &args);
            let r = ours.query(queries, k).unwrap();
            let (fi, fd, _) = faiss_search(&py, dir.path(), &opath, &qpath, k);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            if set.name == "sample" {
                assert_eq!(r.ids, fi, "{what}: faiss on our file, ids");
                assert_eq!(bits(&r.distances), bits(&fd), "{what}: distances");
                let same = std::fs::read(&opath).unwrap() == std::fs::read(&fpath).unwrap();
                assert_eq!(same, pq.ends_with("np"), "{what}: bytes");
                let (ti, td, _) = faiss_search(&py, dir.path(), &fpath, &qpath, k);
                assert_eq!(
                    (r.ids.clone(), bits(&r.distances)),
                    (ti, bits(&td)),
                    "{what}"
                );
                continue;
            }
            // Full set: recall beside faiss's own build at nprobe 1 (what both files store).
            let (ti, _, _) = faiss_search(&py, dir.path(), &fpath, &qpath, k);
            let (truth, _) = set.truth(metric);
            let recall = |ids: &[i64]| {
                let mut hit = 0;
                for q in 0..nq {
                    let t = &truth[q * set.cols..q * set.cols + k];
                    hit += ids[q * k..(q + 1) * k]
                        .iter()
                        .filter(|i| t.contains(i))
                        .count();
                }
                hit as f64 / (nq * k) as f64
            };
            let (ro, rf) = (recall(&r.ids), recall(&ti));
            assert!(
                (ro - rf).abs() <= 0.01,
                "{what}: recall {ro:.4} vs faiss {rf:.4}"
            );
            // 1,000 queries put faiss's coarse search on sgemm: equal ids up to near-ties.
            let same = fi.iter().zip(&r.ids).filter(|(a, b)| a == b).count();
            assert!(
                same * 100 >= fi.len() * 99,
                "{what}: faiss on our file, {same} equal ids"
            );
        }
    }
}
