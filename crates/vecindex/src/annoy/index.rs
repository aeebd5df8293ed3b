//! An annoy index: build from vectors (preprocess per metric, trees, annoy bytes) and query.

use super::build::{build_trees, HalfRows, Items, DEFAULT_SEED};
use super::forest::AnnoyForest;
use super::layout::NodeLayout;
use super::{search, writer};
use crate::annoy::arith;
use crate::metric::Metric;
use crate::vectors::VectorsView;
use crate::Result;

/// Build settings.
#[derive(Debug, Clone, Copy)]
pub struct BuildParams {
    /// Trees to build; `None` = annoy's -1 (until tree nodes reach the item count).
    pub n_trees: Option<usize>,
    /// Threads that build trees; with a fixed tree count the trees built depend on it (0 counts as
    /// 1).
    pub threads: usize,
    /// Seed of annoy's Kiss64 generator; build thread `t` uses `seed + t`.
    pub seed: u64,
    /// Decide most sides from binary16 copies of the rows (same trees, less memory traffic;
    /// see `build::HalfRows`). Off only to compare against the plain f32 pass.
    pub half_pass: bool,
}

impl Default for BuildParams {
    fn default() -> Self {
        BuildParams {
            n_trees: Some(10),
            threads: 1,
            seed: DEFAULT_SEED,
            half_pass: true,
        }
    }
}

/// Builds annoy file bytes for items `0..rows` (row i is item i) and opens them as a forest.
pub fn build(
    x: VectorsView<'_>,
    metric: Metric,
    p: BuildParams,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<AnnoyForest> {
    let f = x.dim();
    let n = x.rows();
    let layout = NodeLayout::new(metric, f)?;
    // Squared norms for the cosine-like metrics (angular stores them in its nodes, so they are
    // summed in annoy's order; both use them in two-means).
    let norms: Vec<f32> = if matches!(metric, Metric::Angular | Metric::Dot) {
        use rayon::prelude::*;
        x.as_slice()
            .par_chunks(f.max(1))
            .map(|r| arith::dot(r, r))
            .collect()
    } else {
        Vec::new()
    };
    let dot_factors = if metric == Metric::Dot {
        arith::dot_factors(&norms)
    } else {
        vec![0.0; n]
    };
    let bits: Vec<u64> = if metric == Metric::Hamming {
        let mut w = vec![0u64; n * layout.words];
        for (row, words) in x.iter().zip(w.chunks_exact_mut(layout.words)) {
            crate::metric::hamming::pack_bits(row, words);
        }
        w
    } else {
        Vec::new()
    };
    let half = if p.half_pass && metric != Metric::Hamming {
        HalfRows::new(
            x.as_slice(),
            f,
            (!norms.is_empty()).then_some(&norms[..]),
            p.threads,
        )
    } else {
        None
    };
    let items = Items {
        layout,
        n_items: n,
        v: x.as_slice(),
        bits: &bits,
        norms: &norms,
        dot_factors: &dot_factors,
        half: None,
        estimates: true,
    };
    let with_half = Items {
        half: half.as_ref(),
        ..items
    };
    let trees = build_trees(&with_half, p.n_trees, p.threads, p.seed, progress);
    let scratch = half.map(HalfRows::into_buffer).unwrap_or_default();
    let (words, len) = writer::write(&items, &trees, p.threads, scratch);
    AnnoyForest::from_words(words, len, f, metric, "built forest")
}

/// Queries whose tree walks are interleaved on one thread: 8 measured ~10% faster than one at
/// a time on 100k-200k item forests (`examples/annoy_timing`), more gave nothing further.
const QUERY_GROUP: usize = 8;

/// Top-k for every query row in parallel: (ids, annoy distances), unpadded per row.
pub fn query_all(
    forest: &AnnoyForest,
    queries: VectorsView<'_>,
    k: usize,
    search_k: Option<usize>,
) -> Vec<Vec<(i64, f32)>> {
    use rayon::prelude::*;
    let rows: Vec<&[f32]> = queries.iter().collect();
    // Queries walk the trees in interleaved groups (see `search::nns_batch`), as long as that
    // leaves every thread some groups.
    let group = rows
        .len()
        .div_ceil(rayon::current_num_threads())
        .clamp(1, QUERY_GROUP);
    rows.par_chunks(group)
        .flat_map_iter(|qs| search::nns_batch(forest, qs, k, search_k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_pass_builds_the_same_file_bytes() {
        let x = crate::synth::gaussian(5000, 48, 11);
        let far: Vec<f32> = x.as_slice().iter().map(|v| 200.0 + 0.05 * v).collect();
        let far = VectorsView::new(&far, 48).unwrap();
        for metric in [
            Metric::Angular,
            Metric::Euclidean,
            Metric::Manhattan,
            Metric::Dot,
        ] {
            for (data, threads) in [(x.view(), 1), (x.view(), 2), (far, 1)] {
                let p = BuildParams {
                    n_trees: Some(4),
                    threads,
                    ..BuildParams::default()
                };
                let with = build(data, metric, p, &|_, _| {}).unwrap();
                let p = BuildParams {
                    half_pass: false,
                    ..p
                };
                let without = build(data, metric, p, &|_, _| {}).unwrap();
                assert!(
                    with.as_bytes() == without.as_bytes(),
                    "{metric:?} threads={threads}"
                );
            }
        }
    }
}
