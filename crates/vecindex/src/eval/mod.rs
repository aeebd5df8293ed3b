//! Retrieval evaluation: Torch-RecHub's `topk_metrics` with its defects fixed, and the exact
//! baseline an approximate index is judged against.

pub mod metrics;

pub use metrics::{topk_metrics, MetricsAtK, TopkMetrics};

use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::vectors::{Vectors, VectorsView};
use crate::Neighbors;

/// Exact top-k under any metric an index may report, computed with the Flat engine: L2 and
/// Euclidean rank by squared L2; IP and dot by inner product; cosine and angular by inner product of
/// L2-normalised vectors. The returned ids are row numbers; scores are in the Flat engine's
/// convention (squared L2 or inner product / cosine similarity).
pub fn exact_neighbors(
    items: VectorsView<'_>,
    queries: VectorsView<'_>,
    metric: Metric,
    k: usize,
) -> Result<Neighbors> {
    match metric {
        Metric::L2 | Metric::Euclidean => crate::exact_knn(items, queries, Metric::L2, k),
        Metric::InnerProduct | Metric::Dot => crate::exact_knn(items, queries, Metric::InnerProduct, k),
        Metric::Cosine | Metric::Angular => {
            let ni = normalized(items);
            let nq = normalized(queries);
            crate::exact_knn(ni.view(), nq.view(), Metric::InnerProduct, k)
        }
        other => Err(Error::Unsupported(format!(
            "exact search for metric {other} is not available; evaluate with L2, IP, cosine or angular"
        ))),
    }
}

/// Rows scaled to unit length (zero rows stay zero).
pub fn normalized(v: VectorsView<'_>) -> Vectors {
    let mut out = v.as_slice().to_vec();
    for row in out.chunks_exact_mut(v.dim()) {
        let n = crate::kernels::dot(row, row).sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|x| *x /= n);
        }
    }
    Vectors::new(out, v.dim()).expect("same shape")
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
