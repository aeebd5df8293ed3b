//! Tree construction: the items as the build sees them (`Items`), the nodes under construction
//! (`BuildNode`, `Ref`), annoy's `make_tree` with its balance checks and random fallback, and
//! the forest: the tree count rule and the multi-threaded build.

use super::partition::{imbalance, partition, HalfRows, TwoSides};
use super::rng::Kiss64;
use super::split::create_split;
use crate::annoy::layout::NodeLayout;
use crate::metric::Metric;
use rayon::prelude::*;

/// Items as the build sees them: vectors (or packed bits), squared norms (angular and dot), dot
/// factors.
pub struct Items<'a> {
    /// Node layout of the forest being built (metric, dimension, leaf capacity K).
    pub layout: NodeLayout,
    /// Number of items; their ids are `0..n_items`.
    pub n_items: usize,
    /// Row-major float vectors (float metrics).
    pub v: &'a [f32],
    /// Packed bits (hamming), `layout.words` per item.
    pub bits: &'a [u64],
    /// Squared norm of each item for angular and dot; empty for the other metrics.
    pub norms: &'a [f32],
    /// Dot metric: each item's extra component sqrt(M² − |v|²), M the largest norm; zeros
    /// otherwise.
    pub dot_factors: &'a [f32],
    /// Half-precision copies of the float rows, for the first margin pass (see [`HalfRows`]).
    pub half: Option<&'a HalfRows>,
    /// Two-means decides which centroid is closer from fast estimates where their error bound
    /// allows (same trees; see `two_means_estimates`). Off only to compare.
    pub estimates: bool,
}

impl Items<'_> {
    pub(super) fn row(&self, i: usize) -> &[f32] {
        let f = self.layout.f;
        &self.v[i * f..(i + 1) * f]
    }

    pub(super) fn bits_of(&self, i: usize) -> &[u64] {
        let w = self.layout.words;
        &self.bits[i * w..(i + 1) * w]
    }
}

/// A child reference while building: an item, or a node of the same tree (local index).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ref {
    /// A single item, by its id (used in place of a one-item leaf).
    Item(i32),
    /// A node of the same tree, by its index in the tree's node buffer.
    Local(usize),
}

/// A node of one tree under construction.
#[derive(Debug, Clone)]
pub enum BuildNode {
    /// A leaf list of at most K item ids (K from the layout).
    Leaf {
        /// Items below this node (for a root, all items of the forest).
        n_descendants: i32,
        /// The ids of the items in the list.
        ids: Vec<i32>,
    },
    /// An inner node that splits its items by a hyperplane (hamming: by one bit).
    Split {
        /// Items below this node (for a root, all items of the forest).
        n_descendants: i32,
        /// The subtrees for negative (`[0]`) and positive (`[1]`) margins, a zero margin going
        /// either way; hamming: bit clear, bit set.
        children: [Ref; 2],
        /// Normal of the splitting hyperplane, normalised (for dot together with `dot_factor`);
        /// unused for hamming.
        plane: Vec<f32>,
        /// Euclidean and Manhattan: the plane's offset, added to the dot product in the margin; 0
        /// otherwise.
        a: f32,
        /// Dot: the normal's extra component, whose square is added to the margin; 0 otherwise.
        dot_factor: f32,
        /// Hamming: the position of the bit the node tests; 0 for float metrics.
        bit: u64,
    },
}

/// Items the half-precision pass leaves undecided, above which a node's subtrees stop using it
/// (1 in 8: data far from the origin relative to its spread, where the pass cannot decide).
const HALF_UNDECIDED_LIMIT: usize = 8;

/// annoy's `make_tree`, appending this tree's nodes to `out` in post-order.
pub fn make_tree(
    items: &Items<'_>,
    indices: &[i32],
    is_root: bool,
    rng: &mut Kiss64,
    half: Option<&HalfRows>,
    out: &mut Vec<BuildNode>,
) -> Ref {
    let k = items.layout.k;
    let n_items = items.n_items;
    if indices.len() == 1 && !is_root {
        return Ref::Item(indices[0]);
    }
    if indices.len() <= k && (!is_root || n_items <= k || indices.len() == 1) {
        let nd = if is_root {
            n_items as i32
        } else {
            indices.len() as i32
        };
        out.push(BuildNode::Leaf {
            n_descendants: nd,
            ids: indices.to_vec(),
        });
        return Ref::Local(out.len() - 1);
    }
    let mut split;
    let mut half = half;
    let (mut buf, mut left);
    let mut attempt = 0;
    loop {
        split = create_split(items, indices, rng);
        let undecided;
        (buf, left, undecided) = partition(items, &split, indices, half, rng);
        if undecided * HALF_UNDECIDED_LIMIT > indices.len() {
            half = None;
        }
        attempt += 1;
        if imbalance(left, indices.len() - left) < 0.95 || attempt == 3 {
            break;
        }
    }
    while imbalance(left, indices.len() - left) > 0.99 {
        if items.layout.metric == Metric::Hamming {
            split.bit = 0;
        } else {
            split.v.iter_mut().for_each(|x| *x = 0.0);
        }
        let mut sides = TwoSides::new(indices.len());
        for &j in indices {
            sides.put(j, rng.flip() as usize);
        }
        (buf, left) = sides.finish();
    }
    let (l, r) = buf.split_at(left);
    let sides = [l, r];
    let flip = (l.len() > r.len()) as usize;
    let mut children = [Ref::Item(0); 2];
    for s in 0..2 {
        let which = s ^ flip;
        children[which] = make_tree(items, sides[which], false, rng, half, out);
    }
    let nd = if is_root {
        n_items as i32
    } else {
        indices.len() as i32
    };
    out.push(BuildNode::Split {
        n_descendants: nd,
        children,
        plane: split.v,
        a: split.a,
        dot_factor: split.df,
        bit: split.bit,
    });
    Ref::Local(out.len() - 1)
}

/// Builds the trees: `n_trees` (> 0) spread over `threads` as annoy does (thread t builds
/// ⌊(q + t) / threads⌋ trees with seed + t), or, for `None`, trees until the tree nodes reach
/// the item count (annoy's -1; built on one RNG stream). Returns each tree's nodes in order.
pub fn build_trees(
    items: &Items<'_>,
    n_trees: Option<usize>,
    threads: usize,
    seed: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Vec<Vec<BuildNode>> {
    let indices: Vec<i32> = (0..items.n_items as i32).collect();
    match n_trees {
        None => {
            let mut rng = Kiss64::new(seed);
            let mut trees = Vec::new();
            let mut n_nodes = items.n_items;
            while n_nodes < 2 * items.n_items {
                let mut nodes = Vec::new();
                make_tree(items, &indices, true, &mut rng, items.half, &mut nodes);
                n_nodes += nodes.len();
                trees.push(nodes);
                progress(n_nodes as u64, 2 * items.n_items as u64);
            }
            trees
        }
        Some(q) => {
            let threads = threads.max(1);
            let done = std::sync::atomic::AtomicU64::new(0);
            let per_thread: Vec<Vec<Vec<BuildNode>>> = (0..threads)
                .into_par_iter()
                .map(|t| {
                    let mut rng = Kiss64::new(seed.wrapping_add(t as u64));
                    let count = (q + t) / threads;
                    (0..count)
                        .map(|_| {
                            let mut nodes = Vec::new();
                            make_tree(items, &indices, true, &mut rng, items.half, &mut nodes);
                            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            progress(d, q as u64);
                            nodes
                        })
                        .collect()
                })
                .collect();
            per_thread.into_iter().flatten().collect()
        }
    }
}
