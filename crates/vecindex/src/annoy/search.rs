//! annoy's query (docs/algorithms.md): best-first over all trees by the smallest margin seen on the path,
//! until `search_k` candidate ids are collected; then de-duplicate and re-rank exactly.

use super::forest::AnnoyForest;
use crate::kernels;
use crate::metric::hamming::{differing_bits, pack_bits};
use crate::metric::{euclidean, manhattan, Metric};
// annoy's one angular distance, for re-ranking as for splitting (its f64-promoted arithmetic).
use super::arith::angular_distance;
use std::collections::BinaryHeap;

/// A heap entry packed in one integer: the priority's rank (order-preserving bits, larger =
/// better) above the node index. Integer order is then exactly annoy's `std::priority_queue` of
/// `pair<float, int>`: larger priority first, ties to the larger node index, -0.0 equal to
/// +0.0 (a zero query makes every margin ±0 and the order falls to node indices) — and a heap
/// of plain u64 compares without branching on floats. Node indices are validated, so >= 0.
type Entry = u64;

#[inline]
fn entry(rank: u32, node: i32) -> Entry {
    (rank as u64) << 32 | node as u32 as u64
}

/// The rank of a float priority: the bits flipped so that unsigned order is float order.
#[inline]
fn float_rank(x: f32) -> u32 {
    let b = (x + 0.0).to_bits(); // -0.0 + 0.0 = +0.0
    if b >> 31 == 1 {
        !b
    } else {
        b | 1 << 31
    }
}

/// Inverse of [`float_rank`].
#[inline]
fn rank_float(r: u32) -> f32 {
    f32::from_bits(if r >> 31 == 1 { r & !(1 << 31) } else { !r })
}

/// `std::min(a, b)`: `b` only if strictly smaller, as C++ does.
#[inline]
fn cmin(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// A prepared query: the vector, its squared norm (angular) or its packed bits (hamming).
pub struct Query {
    v: Vec<f32>,
    norm: f32,
    bits: Vec<u64>,
}

impl Query {
    /// Prepares `q` (of the forest's dimension; not checked) for searching `forest`: a copy, its
    /// squared norm, and its bits for hamming.
    pub fn new(forest: &AnnoyForest, q: &[f32]) -> Self {
        let l = forest.layout;
        let bits = if l.metric == Metric::Hamming {
            let mut w = vec![0u64; l.words];
            pack_bits(q, &mut w);
            w
        } else {
            Vec::new()
        };
        Query {
            v: q.to_vec(),
            norm: kernels::dot(q, q),
            bits,
        }
    }
}

/// Margin of the query against split node `i` (docs/algorithms.md); hamming gives 0 or 1.
fn margin(f: &AnnoyForest, i: usize, q: &Query) -> f32 {
    match f.layout.metric {
        Metric::Angular | Metric::Cosine => kernels::dot(f.vector(i), &q.v),
        Metric::Euclidean | Metric::L2 | Metric::Manhattan => {
            f.plane_offset(i) + kernels::dot(f.vector(i), &q.v)
        }
        Metric::Dot | Metric::InnerProduct => {
            let df = f.dot_factor(i);
            kernels::dot(f.vector(i), &q.v) + df * df
        }
        Metric::Hamming => {
            let pos = f.words(i)[0] as usize;
            let word = q.bits.get(pos / 64).copied().unwrap_or(0);
            ((word >> (63 - pos % 64)) & 1) as f32
        }
    }
}

/// Angular: item `j`'s stored squared norm, recomputed when the file left it 0 (as annoy does).
#[inline]
fn item_norm(f: &AnnoyForest, j: usize) -> f32 {
    let nn = f.norm_field(j);
    if nn == 0.0 {
        let v = f.vector(j);
        kernels::dot(v, v)
    } else {
        nn
    }
}

/// annoy's internal distance of the query to item `j` (smaller is better).
fn distance(f: &AnnoyForest, j: usize, q: &Query) -> f32 {
    match f.layout.metric {
        Metric::Angular | Metric::Cosine => {
            angular_distance(kernels::dot(f.vector(j), &q.v), item_norm(f, j), q.norm)
        }
        Metric::Euclidean | Metric::L2 => euclidean::squared(f.vector(j), &q.v),
        Metric::Manhattan => manhattan::distance(f.vector(j), &q.v),
        Metric::Dot | Metric::InnerProduct => -kernels::dot(f.vector(j), &q.v),
        Metric::Hamming => differing_bits(f.words(j), &q.bits) as f32,
    }
}

/// How many candidates ahead of use their nodes are prefetched: candidates are scattered over
/// the whole file, so without it every distance waits for memory.
const PREFETCH_AHEAD: usize = 8;

thread_local! {
    /// Per-thread "already a candidate" bits, one per item, all clear between queries.
    static SEEN: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The distinct in-range candidate ids in first-seen order, without sorting: a per-thread bit
/// set marks ids and is cleared again afterwards. (annoy's `n_descendants == 1` check happens
/// in `distances`, which reads each node anyway.)
fn distinct_items(f: &AnnoyForest, cands: &[i32]) -> Vec<i32> {
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        let words = f.n_items.div_ceil(64);
        if seen.len() < words {
            seen.resize(words, 0);
        }
        let mut out = Vec::with_capacity(cands.len());
        for &j in cands {
            if j < 0 || j as usize >= f.n_items {
                continue;
            }
            let (w, b) = (j as usize / 64, j as usize % 64);
            if seen[w] >> b & 1 == 0 {
                seen[w] |= 1 << b;
                out.push(j);
            }
        }
        for &j in &out {
            seen[j as usize / 64] &= !(1u64 << (j as usize % 64));
        }
        out
    })
}

/// Distances of all distinct candidates that are items, four per kernel call where the metric
/// allows, with each node prefetched a few candidates ahead.
fn distances(f: &AnnoyForest, cands: &[i32], q: &Query) -> Vec<(f32, i32)> {
    let metric = f.layout.metric;
    let k = kernels::kernels();
    let grouped = matches!(metric, Metric::Euclidean | Metric::Dot | Metric::Angular);
    let mut out = Vec::with_capacity(cands.len());
    let mut group = [0i32; 4];
    let mut filled = 0;
    for &j in cands.iter().take(PREFETCH_AHEAD) {
        f.prefetch_node(j as usize);
    }
    for (t, &j) in cands.iter().enumerate() {
        if let Some(&ahead) = cands.get(t + PREFETCH_AHEAD) {
            f.prefetch_node(ahead as usize);
        }
        if f.n_descendants(j as usize) != 1 {
            continue;
        }
        if !grouped {
            out.push((distance(f, j as usize, q), j));
            continue;
        }
        group[filled] = j;
        filled += 1;
        if filled < 4 {
            continue;
        }
        filled = 0;
        let r = group.map(|g| f.vector(g as usize));
        let d = match metric {
            Metric::Euclidean | Metric::L2 => (k.l2sq_x4)(&q.v, r),
            Metric::Dot | Metric::InnerProduct => (k.dot_x4)(&q.v, r).map(|x| -x),
            _ => {
                let pq = (k.dot_x4)(&q.v, r);
                std::array::from_fn(|i| {
                    angular_distance(pq[i], item_norm(f, group[i] as usize), q.norm)
                })
            }
        };
        out.extend(d.into_iter().zip(group));
    }
    out.extend(
        group[..filled]
            .iter()
            .map(|&j| (distance(f, j as usize, q), j)),
    );
    out
}

/// The value annoy returns for an internal distance.
pub fn normalize(metric: Metric, d: f32) -> f32 {
    match metric {
        Metric::Angular | Metric::Cosine | Metric::Euclidean | Metric::L2 => {
            euclidean::from_squared(d)
        }
        Metric::Manhattan => d.max(0.0),
        Metric::Dot | Metric::InnerProduct => -d,
        Metric::Hamming => d,
    }
}

/// One query's best-first walk over the trees (docs/algorithms.md), resumable one heap pop at a time so
/// that several queries can be interleaved (see [`nns_batch`]).
struct Walk {
    q: Query,
    heap: BinaryHeap<Entry>,
    cands: Vec<i32>,
    search_k: usize,
}

impl Walk {
    fn new(f: &AnnoyForest, q: &[f32], n: usize, search_k: Option<usize>) -> Self {
        // Hamming priorities are integers counted down from the start (annoy: u64::MAX; any
        // start higher than a tree is deep orders the same); the others start at +inf.
        let init = if f.layout.metric == Metric::Hamming {
            u32::MAX
        } else {
            float_rank(f32::INFINITY)
        };
        Walk {
            q: Query::new(f, q),
            heap: f.roots.iter().map(|&r| entry(init, r as i32)).collect(),
            cands: Vec::new(),
            search_k: search_k.unwrap_or(n.saturating_mul(f.roots.len())),
        }
    }

    /// Pops and expands one node; `false` once the walk is complete.
    fn step(&mut self, f: &AnnoyForest) -> bool {
        if self.cands.len() >= self.search_k {
            return false;
        }
        let Some(e) = self.heap.pop() else {
            return false;
        };
        let (rank, i) = ((e >> 32) as u32, e as u32 as usize);
        let nd = f.n_descendants(i) as usize;
        if nd == 1 && i < f.n_items {
            self.cands.push(i as i32);
        } else if nd <= f.layout.k {
            self.cands.extend((0..nd).map(|j| f.raw_child(i, j)));
        } else {
            let m = margin(f, i, &self.q);
            let (c0, c1) = (f.raw_child(i, 0), f.raw_child(i, 1));
            // Start loading the child on the query's side: it keeps the parent's priority and
            // is usually popped soon; the far one often never is (about half of all pushed
            // nodes), and loading it too costs more bandwidth than it saves.
            f.prefetch_node(if m > 0.0 { c1 } else { c0 } as usize);
            if f.layout.metric == Metric::Hamming {
                // Child c costs one for a mismatched bit.
                self.heap
                    .push(entry(rank.saturating_sub((m != 1.0) as u32), c1));
                self.heap
                    .push(entry(rank.saturating_sub((m != 0.0) as u32), c0));
            } else {
                let d = rank_float(rank);
                self.heap.push(entry(float_rank(cmin(d, m)), c1));
                self.heap.push(entry(float_rank(cmin(d, -m)), c0));
            }
        }
        true
    }

    /// De-duplicates the candidates and re-ranks them exactly: the `n` best as (item id,
    /// returned distance), best first.
    fn finish(self, f: &AnnoyForest, n: usize) -> Vec<(i64, f32)> {
        let cands = distinct_items(f, &self.cands);
        let mut scored = distances(f, &cands, &self.q);
        // A corrupted item (NaN in the file) has no rank: skipped, as annoy does. An infinite
        // score (overflow) ranks after every finite one, whichever way the metric sorts.
        scored.retain(|s| !s.0.is_nan());
        let order = |a: &(f32, i32), b: &(f32, i32)| {
            (!a.0.is_finite())
                .cmp(&!b.0.is_finite())
                .then(a.0.total_cmp(&b.0))
                .then(a.1.cmp(&b.1))
        };
        let take = n.min(scored.len());
        if take < scored.len() && take > 0 {
            scored.select_nth_unstable_by(take - 1, order);
        }
        scored.truncate(take);
        scored.sort_by(order);
        scored
            .into_iter()
            .map(|(d, j)| (j as i64, normalize(f.layout.metric, d)))
            .collect()
    }
}

/// The `n` nearest items to `q` inspecting `search_k` candidates (`None`: n × trees, annoy's
/// default), as (item id, returned distance), best first.
pub fn nns(f: &AnnoyForest, q: &[f32], n: usize, search_k: Option<usize>) -> Vec<(i64, f32)> {
    let mut walk = Walk::new(f, q, n, search_k);
    while walk.step(f) {}
    walk.finish(f, n)
}

/// [`nns`] for several queries at once, their walks interleaved one step each in turn: a
/// walk mostly waits for tree nodes to arrive from memory, and while one query's prefetched
/// children load, the others' steps run. Same results as [`nns`] per query.
pub fn nns_batch(
    f: &AnnoyForest,
    qs: &[&[f32]],
    n: usize,
    search_k: Option<usize>,
) -> Vec<Vec<(i64, f32)>> {
    let mut walks: Vec<Walk> = qs.iter().map(|q| Walk::new(f, q, n, search_k)).collect();
    let mut active: Vec<usize> = (0..walks.len()).collect();
    while !active.is_empty() {
        active.retain(|&w| walks[w].step(f));
    }
    walks.into_iter().map(|w| w.finish(f, n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annoy::index::{build, BuildParams};

    #[test]
    fn float_ranks_order_like_floats_with_signed_zeros_equal() {
        let xs = [
            f32::NEG_INFINITY,
            f32::MIN,
            -1.5,
            -f32::MIN_POSITIVE,
            -1e-45,
            -0.0,
            0.0,
            1e-45,
            f32::MIN_POSITIVE,
            0.25,
            f32::MAX,
            f32::INFINITY,
        ];
        for &a in &xs {
            // Round trip (-0.0 comes back as +0.0, which C++'s pair order cannot tell apart).
            assert_eq!(rank_float(float_rank(a)), a + 0.0);
            for &b in &xs {
                assert_eq!(
                    float_rank(a).cmp(&float_rank(b)),
                    a.partial_cmp(&b).unwrap(),
                    "{a} vs {b}"
                );
            }
        }
        // Equal priorities fall to the node index, larger first, as std::priority_queue does.
        let mut heap: BinaryHeap<Entry> = [(0.0, 3), (-0.0, 7), (1.0, 1), (0.0, 5)]
            .iter()
            .map(|&(p, i)| entry(float_rank(p), i))
            .collect();
        let order: Vec<u32> = std::iter::from_fn(|| heap.pop().map(|e| e as u32)).collect();
        assert_eq!(order, [1, 7, 5, 3]);
    }

    #[test]
    fn interleaved_walks_answer_like_single_queries() {
        let x = crate::synth::gaussian(3000, 16, 3);
        let q = crate::synth::gaussian(21, 16, 4);
        let mut rows: Vec<&[f32]> = q.view().iter().collect();
        let zero = [0.0f32; 16];
        rows.push(&zero);
        for metric in [Metric::Angular, Metric::Dot, Metric::Hamming] {
            let p = BuildParams {
                n_trees: Some(6),
                ..BuildParams::default()
            };
            let forest = build(x.view(), metric, p, &|_, _| {}).unwrap();
            for sk in [None, Some(50), Some(2000)] {
                let batch = nns_batch(&forest, &rows, 10, sk);
                for (r, got) in rows.iter().zip(&batch) {
                    assert_eq!(got, &nns(&forest, r, 10, sk), "{metric:?} {sk:?}");
                }
            }
        }
    }
}
