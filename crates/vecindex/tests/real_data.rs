//! Exact search on the real embeddings in ../shared/data against their f64 ground truth.

mod common;

use vecindex::io::{self, npy};
use vecindex::{builder_factory, Config};

#[test]
fn flat_matches_ground_truth_on_real_embeddings() {
    let Some(dir) = common::shared_data() else {
        return;
    };
    let base = io::read_vectors(&dir.join("base.npy"), None).unwrap();
    let queries = io::read_vectors(&dir.join("queries.npy"), None).unwrap();
    for (metric, gt, scores) in [
        ("L2", "gt_l2.npy", "gt_l2_scores.npy"),
        ("IP", "gt_ip.npy", "gt_ip_scores.npy"),
    ] {
        let gt = npy::parse_npy(&std::fs::read(dir.join(gt)).unwrap(), "gt").unwrap();
        let cols = gt.shape[1];
        let npy::NpyData::Int(gt_ids) = gt.data else {
            panic!("gt ids")
        };
        let npy::NpyData::Float(gt_s) =
            npy::parse_npy(&std::fs::read(dir.join(scores)).unwrap(), "s")
                .unwrap()
                .data
        else {
            panic!("scores")
        };
        let idx = builder_factory("faiss", &Config::new().set("metric", metric))
            .unwrap()
            .from_vectors(base.clone())
            .unwrap();
        let k = 10;
        let r = idx.query(queries.view(), k).unwrap();
        let mut same = 0;
        for q in 0..queries.rows() {
            let want = &gt_ids[q * cols..q * cols + k];
            same += r.ids_row(q).iter().filter(|i| want.contains(i)).count();
            for j in 0..k {
                let (got, exp) = (r.distances_row(q)[j], gt_s[q * cols + j]);
                assert!(
                    (got - exp).abs() <= 1e-4 * exp.abs().max(1.0),
                    "{metric} q{q} rank {j}: {got} vs {exp}"
                );
            }
        }
        let recall = same as f64 / (queries.rows() * k) as f64;
        assert!(
            recall >= 0.999,
            "{metric}: recall@10 vs ground truth {recall}"
        );
    }
}

fn recall_at(got: &vecindex::Neighbors, gt: &[i64], cols: usize, k: usize) -> f64 {
    let mut hit = 0;
    for q in 0..got.n_queries {
        let want = &gt[q * cols..q * cols + k];
        hit += got.ids_row(q).iter().filter(|i| want.contains(i)).count();
    }
    hit as f64 / (got.n_queries * k) as f64
}

/// IVF recall@10 against the ground truth grows with nprobe, is exact when every list is probed,
/// and the library's default nprobe is a usable operating point (unlike faiss's 1).
#[test]
fn ivf_recall_on_real_embeddings() {
    let Some(dir) = common::shared_data() else {
        return;
    };
    let base = io::read_vectors(&dir.join("base.npy"), None).unwrap();
    let queries = io::read_vectors(&dir.join("queries.npy"), None).unwrap();
    for (metric, gt) in [("L2", "gt_l2.npy"), ("IP", "gt_ip.npy")] {
        let gt = npy::parse_npy(&std::fs::read(dir.join(gt)).unwrap(), "gt").unwrap();
        let cols = gt.shape[1];
        let npy::NpyData::Int(gt_ids) = gt.data else {
            panic!()
        };
        let b = builder_factory(
            "faiss",
            &Config::new()
                .set("index_type", "IVF")
                .set("metric", metric)
                .set("nlists", 100),
        )
        .unwrap();
        let mut idx = b.from_vectors(base.clone()).unwrap();
        let default_nprobe: usize = idx.info().params["nprobe"].parse().unwrap();
        let r_default = recall_at(&idx.query(queries.view(), 10).unwrap(), &gt_ids, cols, 10);
        let mut line = format!("IVF100 {metric} recall@10:");
        let mut prev = 0.0;
        for nprobe in [1usize, 4, 8, 10, 16, 32, 100] {
            idx.set_param("nprobe", &nprobe.to_string()).unwrap();
            let r = recall_at(&idx.query(queries.view(), 10).unwrap(), &gt_ids, cols, 10);
            line += &format!(" nprobe {nprobe}: {r:.3}");
            assert!(
                r >= prev,
                "{metric}: recall fell from {prev} to {r} at nprobe {nprobe}"
            );
            prev = r;
        }
        println!("{line}; default nprobe {default_nprobe}: {r_default:.3}");
        assert!(
            prev >= 0.999,
            "{metric}: all lists probed must be exact, got {prev}"
        );
        assert!(
            r_default >= 0.85,
            "{metric}: default nprobe {default_nprobe} gives recall {r_default}"
        );
    }
}

/// HNSW (M=32, efConstruction 40, faiss's defaults) reaches recall@10 >= 0.95 at the documented
/// efSearch = 64 on the real embeddings; the default efSearch 16 is a faster, lower-recall point.
#[test]
fn hnsw_recall_on_real_embeddings() {
    let Some(dir) = common::shared_data() else {
        return;
    };
    let base = io::read_vectors(&dir.join("base.npy"), None).unwrap();
    let queries = io::read_vectors(&dir.join("queries.npy"), None).unwrap();
    for (metric, gt, need) in [("L2", "gt_l2.npy", 0.95), ("IP", "gt_ip.npy", 0.95)] {
        let gt = npy::parse_npy(&std::fs::read(dir.join(gt)).unwrap(), "gt").unwrap();
        let cols = gt.shape[1];
        let npy::NpyData::Int(gt_ids) = gt.data else {
            panic!()
        };
        let b = builder_factory(
            "faiss",
            &Config::new()
                .set("index_type", "HNSW")
                .set("metric", metric),
        )
        .unwrap();
        let mut idx = b.from_vectors(base.clone()).unwrap();
        assert_eq!(idx.info().params["efSearch"], "16");
        let r16 = recall_at(&idx.query(queries.view(), 10).unwrap(), &gt_ids, cols, 10);
        idx.set_param("efSearch", "64").unwrap();
        let r64 = recall_at(&idx.query(queries.view(), 10).unwrap(), &gt_ids, cols, 10);
        println!("HNSW32 {metric}: recall@10 efSearch 16 {r16:.3}, 64 {r64:.3}");
        assert!(r64 >= need && r64 >= r16, "{metric}: {r16} {r64}");
    }
}
