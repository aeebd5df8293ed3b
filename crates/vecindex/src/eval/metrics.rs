//! `topk_metrics`: NDCG, MRR, Recall, Precision and hit rate at several k.
//!
//! Meanings follow Torch-RecHub's `topk_metrics` (docs/algorithms.md), with its defects fixed:
//! * a repeated prediction scores only at its first position (the original counted every copy,
//!   which can push Recall and NDCG above 1); repeated truth items count once;
//! * id -1 (an empty result slot) is never a hit;
//! * prediction lists shorter than k are fine (missing positions are misses);
//! * users whose truth list is empty are left out of every average (the original kept them in
//!   the denominator), and the number left out is reported;
//! * k = 0 is an error (the original divided by zero);
//! * "Hit" is reported both ways, clearly named: `hit_rate` (share of users with at least one hit,
//!   the usual meaning) and `pooled_recall` (the original's Hit: total hits ÷ total truth items).

use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::HashSet;

/// The metrics at one k, averaged over the evaluated users.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricsAtK {
    /// The cutoff: only each user's first `k` predictions count.
    pub k: usize,
    /// Mean NDCG@k with binary relevance, in [0, 1]; larger is better.
    pub ndcg: f64,
    /// Mean reciprocal rank of the first hit within `k` (0 without one), in [0, 1]; larger is
    /// better.
    pub mrr: f64,
    /// Mean share of each user's truth items found in the top `k`, in [0, 1]; larger is better.
    pub recall: f64,
    /// Mean of hits ÷ `k` per user (short prediction lists are not favoured), in [0, 1]; larger is
    /// better.
    pub precision: f64,
    /// Share of users with at least one hit in the top `k`, in [0, 1]; larger is better.
    pub hit_rate: f64,
    /// Total hits ÷ total truth items over all users (the original's "Hit"); 0 when there is no
    /// truth.
    pub pooled_recall: f64,
}

/// Metrics at every requested k.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopkMetrics {
    /// The metrics at each requested k, in the order the ks were given.
    pub at: Vec<MetricsAtK>,
    /// Users averaged over.
    pub users: usize,
    /// Users left out because their truth list was empty.
    pub users_without_truth: usize,
}

impl TopkMetrics {
    /// The original's output: for each of NDCG, MRR, Recall, Hit, Precision, strings like
    /// `"NDCG@10: 0.1234"` (values rounded to 4 places, printed like Python's `str(round(x, 4))`).
    /// "Hit" is the original's pooled recall.
    pub fn legacy_strings(&self) -> Vec<(&'static str, Vec<String>)> {
        let f = |name: &str, get: &dyn Fn(&MetricsAtK) -> f64| -> Vec<String> {
            self.at
                .iter()
                .map(|m| format!("{name}@{}: {}", m.k, py_round4(get(m))))
                .collect()
        };
        vec![
            ("NDCG", f("NDCG", &|m| m.ndcg)),
            ("MRR", f("MRR", &|m| m.mrr)),
            ("Recall", f("Recall", &|m| m.recall)),
            ("Hit", f("Hit", &|m| m.pooled_recall)),
            ("Precision", f("Precision", &|m| m.precision)),
        ]
    }

    /// The metrics at `k`, if it was requested.
    pub fn get(&self, k: usize) -> Option<&MetricsAtK> {
        self.at.iter().find(|m| m.k == k)
    }
}

/// `str(round(x, 4))` as Python prints it: shortest repr of the rounded value, `0.0` not `0`.
fn py_round4(x: f64) -> String {
    let r: f64 = format!("{x:.4}").parse().unwrap_or(x);
    let s = format!("{r}");
    if s.contains('.') || s.contains('e') || !r.is_finite() {
        s
    } else {
        format!("{s}.0")
    }
}

/// Computes the metrics. `truth[u]` and `pred[u]` are user `u`'s relevant items and ranked
/// predictions (best first); both lists have one entry per user.
pub fn topk_metrics(truth: &[Vec<i64>], pred: &[Vec<i64>], ks: &[usize]) -> Result<TopkMetrics> {
    if truth.len() != pred.len() {
        return Err(Error::invalid(format!(
            "{} users have truth but {} have predictions; give one prediction list per user",
            truth.len(),
            pred.len()
        )));
    }
    if ks.is_empty() {
        return Err(Error::invalid("give at least one k"));
    }
    if ks.contains(&0) {
        return Err(Error::invalid("k must be at least 1"));
    }
    let evaluated: Vec<(HashSet<i64>, &Vec<i64>)> = truth
        .iter()
        .zip(pred)
        .filter(|(t, _)| !t.is_empty())
        .map(|(t, p)| (t.iter().copied().collect(), p))
        .collect();
    let users = evaluated.len();
    let users_without_truth = truth.len() - users;
    let mut at = Vec::with_capacity(ks.len());
    for &k in ks {
        let (mut ndcg, mut mrr, mut recall, mut precision, mut hits_users) =
            (0.0, 0.0, 0.0, 0.0, 0usize);
        let (mut hits_total, mut truth_total) = (0usize, 0usize);
        for (t, p) in &evaluated {
            let mut seen = HashSet::new();
            let (mut h, mut dcg, mut rr) = (0usize, 0.0f64, 0.0f64);
            for (j, item) in p.iter().take(k).enumerate() {
                // First occurrence only; -1 (empty slot) is never relevant.
                if *item == -1 || !seen.insert(*item) || !t.contains(item) {
                    continue;
                }
                h += 1;
                dcg += 1.0 / ((j + 2) as f64).log2();
                if rr == 0.0 {
                    rr = 1.0 / (j + 1) as f64;
                }
            }
            let idcg: f64 = (0..k.min(t.len()))
                .map(|j| 1.0 / ((j + 2) as f64).log2())
                .sum();
            ndcg += dcg / idcg;
            mrr += rr;
            recall += h as f64 / t.len() as f64;
            precision += h as f64 / k as f64;
            hits_users += usize::from(h > 0);
            hits_total += h;
            truth_total += t.len();
        }
        let n = users.max(1) as f64;
        at.push(MetricsAtK {
            k,
            ndcg: ndcg / n,
            mrr: mrr / n,
            recall: recall / n,
            precision: precision / n,
            hit_rate: hits_users as f64 / n,
            pooled_recall: if truth_total == 0 {
                0.0
            } else {
                hits_total as f64 / truth_total as f64
            },
        });
    }
    Ok(TopkMetrics {
        at,
        users,
        users_without_truth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    /// Torch-RecHub's own self-check (metric.py `__main__`), at k = 2.
    #[test]
    fn original_self_check() {
        let pred = vec![vec![0, 1], vec![0, 1], vec![2, 3]];
        let truth = vec![vec![1, 2], vec![0, 1, 2], vec![2, 3]];
        let m = topk_metrics(&truth, &pred, &[1, 2]).unwrap();
        let k2 = m.get(2).unwrap();
        assert!(close(k2.ndcg, 0.7956), "{}", k2.ndcg);
        assert!(close(k2.mrr, 0.8333), "{}", k2.mrr);
        assert!(close(k2.recall, 0.7222), "{}", k2.recall);
        assert!(close(k2.precision, 0.8333), "{}", k2.precision);
        assert!(close(k2.pooled_recall, 5.0 / 7.0), "{}", k2.pooled_recall);
        assert_eq!(k2.hit_rate, 1.0);
        let legacy = m.legacy_strings();
        assert_eq!(legacy[0].1[1], "NDCG@2: 0.7956");
        assert_eq!(legacy[3].1[1], "Hit@2: 0.7143");
        assert_eq!(m.users, 3);
    }

    #[test]
    fn hand_computed_case() {
        // One user, truth {5, 9}, predictions [9, 1, 5]: hits at ranks 1 and 3.
        let m = topk_metrics(&[vec![5, 9]], &[vec![9, 1, 5]], &[1, 3]).unwrap();
        let k1 = m.get(1).unwrap();
        assert_eq!(
            (k1.recall, k1.precision, k1.mrr, k1.ndcg),
            (0.5, 1.0, 1.0, 1.0)
        );
        let k3 = m.get(3).unwrap();
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!(close(k3.ndcg, dcg / idcg));
        assert!(close(k3.precision, 2.0 / 3.0));
        assert_eq!(k3.recall, 1.0);
    }

    #[test]
    fn defects_of_the_original_are_fixed() {
        // Duplicates count once: T = [a], P = [a, a] gives NDCG 1, not 1.63; recall 1, not 2.
        let m = topk_metrics(&[vec![7]], &[vec![7, 7]], &[2]).unwrap();
        let k = m.get(2).unwrap();
        assert_eq!((k.ndcg, k.recall), (1.0, 1.0));
        assert_eq!(k.precision, 0.5);
        // Short lists and -1 padding are fine and never hit.
        let m = topk_metrics(&[vec![-1, 3]], &[vec![-1]], &[5]).unwrap();
        assert_eq!(m.get(5).unwrap().recall, 0.0);
        // Users without truth are excluded and counted.
        let m = topk_metrics(&[vec![], vec![1]], &[vec![1], vec![1]], &[1]).unwrap();
        assert_eq!((m.users, m.users_without_truth), (1, 1));
        assert_eq!(m.get(1).unwrap().hit_rate, 1.0);
        // Errors.
        assert!(topk_metrics(&[vec![1]], &[vec![1]], &[0]).is_err());
        assert!(topk_metrics(&[vec![1]], &[], &[1]).is_err());
        assert!(topk_metrics(&[vec![1]], &[vec![1]], &[]).is_err());
        assert_eq!(py_round4(0.0), "0.0");
        assert_eq!(py_round4(0.5), "0.5");
        assert_eq!(py_round4(0.123456), "0.1235");
    }
}
