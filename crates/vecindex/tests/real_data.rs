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
