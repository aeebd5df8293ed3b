//! An annoy index: build from vectors (preprocess per metric, trees, annoy bytes) and query.

use super::build::{build_trees, Items, DEFAULT_SEED};
use super::forest::AnnoyForest;
use super::layout::{AnnoyMetric, NodeLayout};
use super::{search, writer};
use crate::kernels;
use crate::vectors::VectorsView;
use crate::Result;

/// Build settings.
#[derive(Debug, Clone, Copy)]
pub struct BuildParams {
    /// Trees to build; `None` = annoy's -1 (until tree nodes reach the item count).
    pub n_trees: Option<usize>,
    pub threads: usize,
    pub seed: u64,
}

impl Default for BuildParams {
    fn default() -> Self {
        BuildParams {
            n_trees: Some(10),
            threads: 1,
            seed: DEFAULT_SEED,
        }
    }
}

/// Builds annoy file bytes for items `0..rows` (row i is item i) and opens them as a forest.
pub fn build(
    x: VectorsView<'_>,
    metric: AnnoyMetric,
    p: BuildParams,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<AnnoyForest> {
    let f = x.dim();
    let n = x.rows();
    let layout = NodeLayout::new(metric, f);
    let present = vec![true; n];
    // Squared norms for the cosine-like metrics (angular stores them in its nodes; both use
    // them in two-means).
    let norms: Vec<f32> = if matches!(metric, AnnoyMetric::Angular | AnnoyMetric::Dot) {
        kernels::row_norms(x.as_slice(), f)
    } else {
        Vec::new()
    };
    let (dot_factors, dot_max) = if metric == AnnoyMetric::Dot {
        let nr: Vec<f32> = norms.iter().map(|&s| s.max(0.0).sqrt()).collect();
        let m = nr.iter().copied().fold(0.0f32, f32::max);
        let df = nr
            .iter()
            .map(|&v| {
                let d = m.powf(2.0) - v.powf(2.0);
                if d > 0.0 {
                    d.sqrt()
                } else {
                    0.0
                }
            })
            .collect();
        (df, m)
    } else {
        (vec![0.0; n], 0.0)
    };
    let bits: Vec<u64> = if metric == AnnoyMetric::Hamming {
        let mut w = vec![0u64; n * layout.words];
        for (row, words) in x.iter().zip(w.chunks_exact_mut(layout.words)) {
            super::layout::pack_bits(row, words);
        }
        w
    } else {
        Vec::new()
    };
    let items = Items {
        layout,
        n_items: n,
        v: x.as_slice(),
        bits: &bits,
        present: &present,
        norms: &norms,
        dot_factors: &dot_factors,
    };
    let trees = build_trees(&items, p.n_trees, p.threads, p.seed, progress);
    let bytes = writer::write(&items, &trees, dot_max);
    AnnoyForest::from_bytes(&bytes, f, metric, "built forest")
}

/// Top-k for every query row in parallel: (ids, annoy distances), unpadded per row.
pub fn query_all(
    forest: &AnnoyForest,
    queries: VectorsView<'_>,
    k: usize,
    search_k: Option<usize>,
) -> Vec<Vec<(i64, f32)>> {
    use rayon::prelude::*;
    let rows: Vec<&[f32]> = queries.iter().collect();
    rows.par_iter()
        .map(|q| search::nns(forest, q, k, search_k))
        .collect()
}
