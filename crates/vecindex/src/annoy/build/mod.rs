//! annoy 1.17.3's forest construction (docs/algorithms.md): Kiss64 random numbers, two-means splits per
//! metric, the imbalance checks with their f32 rounding and the random fallback, leaf lists of up
//! to K ids, post-order node allocation, root copies at the end.
//!
//! Trees are built into per-tree buffers and laid out tree after tree, so a build is
//! deterministic for a given (seed, threads) — annoy's own multi-threaded builds interleave
//! nodes and are not. With one thread the layout is annoy's.

//! Split by stage: `rng` (Kiss64), `split` (two-means and split planes), `partition` (sides,
//! binary16 margin pass, balance measure), `tree` (`make_tree` and the forest).

mod partition;
mod rng;
mod split;
mod tree;

pub use partition::HalfRows;
pub use rng::DEFAULT_SEED;
pub use tree::{build_trees, BuildNode, Items, Ref};

/// Test data shared by the unit tests of `split` and `partition`.
#[cfg(test)]
mod test_data {
    use super::Items;
    use crate::annoy::layout::NodeLayout;
    use crate::metric::Metric;

    pub(super) const FLOAT_METRICS: [Metric; 4] = [
        Metric::Angular,
        Metric::Euclidean,
        Metric::Manhattan,
        Metric::Dot,
    ];

    /// Float-metric items over `v` (no binary16 copies, estimates on).
    pub(super) fn float_items<'a>(
        metric: Metric,
        d: usize,
        v: &'a [f32],
        norms: &'a [f32],
        dot_factors: &'a [f32],
    ) -> Items<'a> {
        Items {
            layout: NodeLayout::new(metric, d).unwrap(),
            n_items: v.len() / d,
            v,
            bits: &[],
            norms,
            dot_factors,
            half: None,
            estimates: true,
        }
    }

    /// Data sets the half-precision pass must get right: ordinary, far from the origin (the
    /// pass cannot decide), integer-valued with duplicates (exact-zero margins and their coin
    /// flips), binary16 subnormals, values near binary16's largest.
    pub(super) fn awkward_sets(d: usize) -> Vec<(&'static str, Vec<f32>)> {
        // Subsets of half of them are still above HALF_MIN_ITEMS.
        let g = crate::synth::gaussian(3000, d, 7).into_vec();
        let mut r = crate::synth::Rng::new(3);
        vec![
            ("gaussian", g.clone()),
            ("offset", g.iter().map(|x| 300.0 + 0.01 * x).collect()),
            (
                "integers",
                (0..g.len()).map(|_| r.below(5) as f32 - 2.0).collect(),
            ),
            ("tiny", g.iter().map(|x| 2e-6 * x).collect()),
            (
                "zero rows",
                g.chunks(d)
                    .enumerate()
                    .flat_map(|(i, row)| row.iter().map(move |x| if i % 3 == 0 { 0.0 } else { *x }))
                    .collect(),
            ),
            (
                "large",
                g.iter().map(|x| (9000.0 * x).clamp(-6e4, 6e4)).collect(),
            ),
        ]
    }
}
