//! Retrieval evaluation: Torch-RecHub's `topk_metrics` with its defects fixed, and the exact
//! baseline an approximate index is judged against.

pub mod metrics;

pub use metrics::{topk_metrics, MetricsAtK, TopkMetrics};

use crate::error::Result;
use crate::metric::{cosine, Metric};
use crate::vectors::VectorsView;
use crate::Neighbors;

/// Exact top-k under any metric an index may report: L2 and Euclidean rank by squared L2, IP and
/// dot by inner product, cosine and angular by inner product of L2-normalised vectors (all on the
/// GEMM engine); Manhattan and Hamming by a plain scan. The returned ids are row numbers; scores
/// are in the engine's convention (squared L2, inner product / cosine similarity, L1, bit count).
pub fn exact_neighbors(
    items: VectorsView<'_>,
    queries: VectorsView<'_>,
    metric: Metric,
    k: usize,
) -> Result<Neighbors> {
    match metric {
        Metric::L2 | Metric::Euclidean => crate::exact_knn(items, queries, Metric::L2, k),
        Metric::InnerProduct | Metric::Dot => {
            crate::exact_knn(items, queries, Metric::InnerProduct, k)
        }
        Metric::Cosine | Metric::Angular => {
            let ni = cosine::normalized(items);
            let nq = cosine::normalized(queries);
            crate::exact_knn(ni.view(), nq.view(), Metric::InnerProduct, k)
        }
        Metric::Manhattan | Metric::Hamming => Ok(brute_force(items, queries, metric, k)),
    }
}

/// Exact top-k by a plain scan for the metrics without a GEMM form (L1; Hamming on bits > 0.5,
/// as annoy packs them). Parallel over queries; ties to the lower id.
fn brute_force(
    items: VectorsView<'_>,
    queries: VectorsView<'_>,
    metric: Metric,
    k: usize,
) -> Neighbors {
    use crate::kernels::topk::{TieOrder, TopK};
    use rayon::prelude::*;
    let rows: Vec<&[f32]> = queries.iter().collect();
    let heaps: Vec<Vec<(f32, i64)>> = rows
        .par_iter()
        .map(|q| {
            let mut h = TopK::new(k, TieOrder::LowIdFirst);
            for (i, x) in items.iter().enumerate() {
                h.push(metric.score(q, x), i as i64);
            }
            h.into_sorted()
        })
        .collect();
    let nq = rows.len();
    let mut ids = vec![-1i64; nq * k];
    let mut distances = vec![metric.padding(); nq * k];
    for (qi, h) in heaps.into_iter().enumerate() {
        for (j, (d, id)) in h.into_iter().enumerate() {
            ids[qi * k + j] = id;
            distances[qi * k + j] = d;
        }
    }
    Neighbors {
        ids,
        distances,
        n_queries: nq,
        k,
        metric,
    }
}

/// recall@k of `approx` against `exact` (share of the exact top-k ids the approximation found;
/// -1 padding never counts).
pub fn recall_against(approx: &Neighbors, exact: &Neighbors, k: usize) -> f64 {
    let rows = approx.n_queries.min(exact.n_queries);
    if rows == 0 || k == 0 {
        return 0.0;
    }
    let mut hit = 0usize;
    let mut total = 0usize;
    for q in 0..rows {
        let want: Vec<i64> = exact
            .ids_row(q)
            .iter()
            .take(k)
            .copied()
            .filter(|&i| i >= 0)
            .collect();
        total += want.len();
        hit += approx
            .ids_row(q)
            .iter()
            .take(k)
            .filter(|i| **i >= 0 && want.contains(i))
            .count();
    }
    if total == 0 {
        0.0
    } else {
        hit as f64 / total as f64
    }
}
