//! HNSW search: the candidate and visited structures, greedy descent, and the single and batch query search.

use super::graph::HnswGraph;
use super::heaps::MinimaxHeap;
use super::points::GraphPoints;
use crate::exact::RawResults;
use crate::kernels::{topk::TieOrder, topk::TopK};
use crate::metric::Metric;
use crate::vectors::VectorsView;
use crate::{Error, Result};
use rayon::prelude::*;

/// A total order on (key, id) for heaps (keys are never NaN for validated input).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cand(pub(super) f32, pub(super) i32);
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cand {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
    }
}

/// Nodes about to be measured and, once measured, their keys (scratch reused by every step).
#[derive(Default)]
pub(super) struct KeyBatch {
    pub(super) ids: Vec<i32>,
    pub(super) keys: Vec<f32>,
}

/// A visited set with O(1) reset (versioned bytes, as faiss's VisitedTable).
pub struct Visited {
    marks: Vec<u8>,
    version: u8,
    /// Scratch for the walks: unvisited neighbours and their keys.
    pub(super) batch: KeyBatch,
}

impl Visited {
    /// An empty set for node ids below `n` (it grows when reset for a larger graph).
    pub fn new(n: usize) -> Self {
        Visited {
            marks: vec![0; n],
            version: 1,
            batch: KeyBatch::default(),
        }
    }

    pub(super) fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.version = self.version.wrapping_add(1);
        if self.version == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.version = 1;
        }
    }

    /// Marks `i`; true if it was not marked yet.
    #[inline]
    pub(super) fn insert(&mut self, i: usize) -> bool {
        let m = &mut self.marks[i];
        if *m == self.version {
            false
        } else {
            *m = self.version;
            true
        }
    }
}

/// Greedy descent at one level: move to any strictly closer neighbour until a pass changes nothing.
/// As in faiss, a node's neighbours are measured four at a time (`keys`) and then compared in
/// list order; all of them are prefetched first, since upper-level neighbours are random reads.
pub(super) fn greedy<P: GraphPoints>(
    g: &HnswGraph,
    p: &P,
    q: &[f32],
    level: usize,
    (mut nearest, mut dn): (usize, f32),
    batch: &mut KeyBatch,
) -> (usize, f32) {
    loop {
        let prev = nearest;
        batch.ids.clear();
        for &v in g.neighbors_of(nearest, level) {
            p.prefetch(v as usize);
            batch.ids.push(v);
        }
        p.keys(q, &batch.ids, &mut batch.keys);
        for (&v, &dv) in batch.ids.iter().zip(&batch.keys) {
            if dv < dn {
                nearest = v as usize;
                dn = dv;
            }
        }
        if nearest == prev {
            return (nearest, dn);
        }
    }
}

/// Search state reused across queries on one thread.
pub struct SearchScratch {
    vis: Visited,
}

impl SearchScratch {
    /// Scratch for searching a graph of `n` nodes.
    pub fn new(n: usize) -> Self {
        SearchScratch {
            vis: Visited::new(n),
        }
    }
}

/// faiss's HNSW search for one query: keys of the `k` best, in a TopK.
pub fn search_one<P: GraphPoints>(
    g: &HnswGraph,
    p: &P,
    q: &[f32],
    k: usize,
    ef_search: usize,
    scratch: &mut SearchScratch,
    tie: TieOrder,
) -> TopK {
    let mut res = TopK::new(k, tie);
    if g.entry_point < 0 || g.ntotal() == 0 {
        return res;
    }
    let mut nearest = g.entry_point as usize;
    let mut dn = p.key(q, nearest);
    for level in (1..=g.max_level.max(0) as usize).rev() {
        (nearest, dn) = greedy(g, p, q, level, (nearest, dn), &mut scratch.vis.batch);
    }
    let ef = ef_search.max(k);
    let mut heap = MinimaxHeap::new(ef, g.ntotal(), p.metric());
    scratch.vis.reset(g.ntotal());
    heap.push(nearest as i32, dn);
    res.push(dn, nearest as i64);
    scratch.vis.insert(nearest);
    let mut next = heap.pop_min();
    while let Some((v0, d0)) = next {
        if heap.count_below(d0) >= ef_search {
            break;
        }
        // Gather the unvisited neighbours and prefetch them all before computing any distance,
        // so the random reads overlap instead of queueing one after another.
        let vis = &mut scratch.vis;
        vis.batch.ids.clear();
        for &v in g.neighbors_of(v0 as usize, 0) {
            if vis.insert(v as usize) {
                p.prefetch(v as usize);
                g.prefetch_offset(v as usize);
                vis.batch.ids.push(v);
            }
        }
        // The next node expanded is most often the best one already queued: its list loads
        // while the distances below are computed.
        if let Some(m) = heap.peek_min() {
            g.prefetch_neighbors(m as usize, 0);
        }
        let KeyBatch { ids, keys } = &mut vis.batch;
        p.keys(q, ids, keys);
        for k in keys.iter_mut() {
            if k.is_nan() {
                *k = f32::INFINITY;
            }
        }
        for (&v, &dv) in ids.iter().zip(keys.iter()) {
            heap.push(v, dv);
        }
        // The candidate queue and the results are independent: pick the next node first and
        // start loading its list, then fill the results while it arrives.
        next = heap.pop_min();
        if let Some((v, _)) = next {
            g.prefetch_neighbors(v as usize, 0);
        }
        for (&v, &dv) in ids.iter().zip(keys.iter()) {
            res.push(dv, v as i64);
        }
    }
    res
}

/// Batch search: parallel over queries, a scratch visited table per thread.
pub fn search<P: GraphPoints>(
    g: &HnswGraph,
    p: &P,
    queries: VectorsView<'_>,
    k: usize,
    ef_search: usize,
    metric: Metric,
) -> Result<RawResults> {
    if ef_search == 0 {
        return Err(Error::invalid("efSearch must be at least 1"));
    }
    let tie = p.metric().tie_order();
    let rows: Vec<&[f32]> = queries.iter().collect();
    let heaps: Vec<TopK> = rows
        .par_iter()
        .map_init(
            || SearchScratch::new(g.ntotal()),
            |s, q| search_one(g, p, q, k, ef_search, s, tie),
        )
        .collect();
    Ok(RawResults::from_heaps(heaps, k, metric))
}
