//! annoy's query (spec §3): best-first over all trees by the smallest margin seen on the path,
//! until `search_k` candidate ids are collected; then de-duplicate and re-rank exactly.

use super::forest::AnnoyForest;
use super::layout::{angular_distance, pack_bits, AnnoyMetric};
use crate::kernels;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A heap entry: larger priority first, ties to the larger node index (std::priority_queue of
/// pairs, as annoy).
#[derive(Clone, Copy, PartialEq)]
struct Entry(f64, i32);
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    /// As C++'s `pair<float, int>` operator<: -0.0 equals +0.0 (a zero query makes every margin
    /// ±0 and the order then falls to node indices). NaN compares equal (validated files have none).
    fn cmp(&self, o: &Self) -> Ordering {
        match self.0.partial_cmp(&o.0) {
            Some(Ordering::Equal) | None => self.1.cmp(&o.1),
            Some(x) => x,
        }
    }
}

/// `std::min(a, b)`: `b` only if strictly smaller (keeps the sign of equal zeros as C++ does).
#[inline]
fn cmin(a: f64, b: f64) -> f64 {
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
    pub fn new(forest: &AnnoyForest, q: &[f32]) -> Self {
        let l = forest.layout;
        let bits = if l.metric == AnnoyMetric::Hamming {
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

/// Margin of the query against split node `i` (spec §2.4); hamming gives 0 or 1.
fn margin(f: &AnnoyForest, i: usize, q: &Query) -> f64 {
    match f.layout.metric {
        AnnoyMetric::Angular => kernels::dot(f.vector(i), &q.v) as f64,
        AnnoyMetric::Euclidean | AnnoyMetric::Manhattan => {
            (f.plane_offset(i) + kernels::dot(f.vector(i), &q.v)) as f64
        }
        AnnoyMetric::Dot => {
            let df = f.dot_factor(i);
            (kernels::dot(f.vector(i), &q.v) + df * df) as f64
        }
        AnnoyMetric::Hamming => {
            let pos = f.words(i)[0] as usize;
            let word = q.bits.get(pos / 64).copied().unwrap_or(0);
            ((word >> (63 - pos % 64)) & 1) as f64
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
        AnnoyMetric::Angular => {
            angular_distance(kernels::dot(f.vector(j), &q.v), item_norm(f, j), q.norm)
        }
        AnnoyMetric::Euclidean => kernels::l2sq(f.vector(j), &q.v),
        AnnoyMetric::Manhattan => f
            .vector(j)
            .iter()
            .zip(&q.v)
            .map(|(a, b)| (a - b).abs())
            .sum(),
        AnnoyMetric::Dot => -kernels::dot(f.vector(j), &q.v),
        AnnoyMetric::Hamming => f
            .words(j)
            .iter()
            .zip(&q.bits)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum::<u32>() as f32,
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
    let grouped = matches!(
        metric,
        AnnoyMetric::Euclidean | AnnoyMetric::Dot | AnnoyMetric::Angular
    );
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
            AnnoyMetric::Euclidean => (k.l2sq_x4)(&q.v, r),
            AnnoyMetric::Dot => (k.dot_x4)(&q.v, r).map(|x| -x),
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
pub fn normalize(metric: AnnoyMetric, d: f32) -> f32 {
    match metric {
        AnnoyMetric::Angular | AnnoyMetric::Euclidean => d.max(0.0).sqrt(),
        AnnoyMetric::Manhattan => d.max(0.0),
        AnnoyMetric::Dot => -d,
        AnnoyMetric::Hamming => d,
    }
}

/// The `n` nearest items to `q` inspecting `search_k` candidates (`None`: n × trees, annoy's
/// default), as (item id, returned distance), best first.
pub fn nns(f: &AnnoyForest, q: &[f32], n: usize, search_k: Option<usize>) -> Vec<(i64, f32)> {
    let q = Query::new(f, q);
    let search_k = search_k.unwrap_or(n.saturating_mul(f.roots.len()));
    let hamming = f.layout.metric == AnnoyMetric::Hamming;
    // Hamming priorities are integers counted down from the start value (annoy: u64::MAX); any
    // start that stays exact in f64 orders the same.
    let init = if hamming {
        (1u64 << 52) as f64
    } else {
        f64::INFINITY
    };
    let mut heap: BinaryHeap<Entry> = f.roots.iter().map(|&r| Entry(init, r as i32)).collect();
    let mut cands: Vec<i32> = Vec::new();
    let k = f.layout.k;
    while cands.len() < search_k {
        let Some(Entry(d, i)) = heap.pop() else { break };
        let i = i as usize;
        let nd = f.n_descendants(i) as usize;
        if nd == 1 && i < f.n_items {
            cands.push(i as i32);
        } else if nd <= k {
            cands.extend((0..nd).map(|j| f.raw_child(i, j)));
        } else {
            let m = margin(f, i, &q);
            let (c0, c1) = (f.raw_child(i, 0), f.raw_child(i, 1));
            // One of the two is usually popped next; start loading both.
            f.prefetch_node(c0 as usize);
            f.prefetch_node(c1 as usize);
            if hamming {
                // Child c costs one for a mismatched bit.
                heap.push(Entry(d - (m != 1.0) as u8 as f64, c1));
                heap.push(Entry(d - (m != 0.0) as u8 as f64, c0));
            } else {
                heap.push(Entry(cmin(d, m), c1));
                heap.push(Entry(cmin(d, -m), c0));
            }
        }
    }
    let cands = distinct_items(f, &cands);
    let mut scored = distances(f, &cands, &q);
    let take = n.min(scored.len());
    if take < scored.len() && take > 0 {
        scored.select_nth_unstable_by(take - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    }
    scored.truncate(take);
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .map(|(d, j)| (j as i64, normalize(f.layout.metric, d)))
        .collect()
}
