//! HNSW search: distance keys and prefetch over the stored points, the candidate and visited
//! structures, greedy descent, and the single and batch query search.

use super::graph::HnswGraph;
use super::heaps::MinimaxHeap;
use crate::exact::RawResults;
use crate::kernels::{self, topk::TieOrder, topk::TopK};
use crate::metric::Metric;
use crate::vectors::VectorsView;
use crate::{Error, Result};
use rayon::prelude::*;

/// The vectors an HNSW graph links, with the metric's key function.
pub struct Points<'a> {
    /// The vectors, row-major, `dim` values each; row `i` is node `i`.
    pub data: &'a [f32],
    /// Values per vector.
    pub dim: usize,
    /// `L2` or `InnerProduct`: the kernel and the key (see [`Metric::to_key`]).
    pub metric: Metric,
    /// The dispatched kernels, looked up once (a graph walk computes millions of distances).
    dist: fn(&[f32], &[f32]) -> f32,
    dist4: fn(&[f32], [&[f32]; 4]) -> [f32; 4],
}

impl<'a> Points<'a> {
    /// Wraps `data` and looks up the distance kernels for `metric` (L2 or inner product) once.
    pub fn new(data: &'a [f32], dim: usize, metric: Metric) -> Self {
        let k = kernels::kernels();
        let l2 = metric == Metric::L2;
        Points {
            data,
            dim,
            metric,
            dist: if l2 { k.l2sq } else { k.dot },
            dist4: if l2 { k.l2sq_x4 } else { k.dot_x4 },
        }
    }

    #[inline]
    pub(super) fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Key of stored point `i` for query `q` (smaller is better).
    #[inline]
    pub(super) fn key(&self, q: &[f32], i: usize) -> f32 {
        self.metric.to_key((self.dist)(q, self.row(i)))
    }

    /// Keys of the stored points `ids` for query `q`, four at a time, into `out`.
    #[inline]
    pub(super) fn keys(&self, q: &[f32], ids: &[i32], out: &mut Vec<f32>) {
        out.clear();
        let mut c = ids.chunks_exact(4);
        for g in &mut c {
            let r = [
                self.row(g[0] as usize),
                self.row(g[1] as usize),
                self.row(g[2] as usize),
                self.row(g[3] as usize),
            ];
            let d = (self.dist4)(q, r);
            out.extend(d.iter().map(|&x| self.metric.to_key(x)));
        }
        for &v in c.remainder() {
            out.push(self.key(q, v as usize));
        }
    }

    /// Asks the CPU to start loading row `i` (a graph walk's next distances are random reads);
    /// the first 512 bytes only, which measured best for long rows.
    #[inline]
    pub(super) fn prefetch(&self, i: usize) {
        let row = self.row(i);
        crate::kernels::prefetch(&row[..row.len().min(128)]);
    }
}

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

/// A visited set with O(1) reset (versioned bytes, as faiss's VisitedTable).
pub struct Visited {
    marks: Vec<u8>,
    version: u8,
    /// Scratch for the build walk: unvisited neighbours and their keys.
    pub(super) fresh: Vec<i32>,
    pub(super) keys: Vec<f32>,
}

impl Visited {
    /// An empty set for node ids below `n` (it grows when reset for a larger graph).
    pub fn new(n: usize) -> Self {
        Visited {
            marks: vec![0; n],
            version: 1,
            fresh: Vec::new(),
            keys: Vec::new(),
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
pub(super) fn greedy(
    g: &HnswGraph,
    p: &Points<'_>,
    q: &[f32],
    level: usize,
    mut nearest: usize,
    mut dn: f32,
) -> (usize, f32) {
    loop {
        let prev = nearest;
        for &v in g.neighbors_of(nearest, level) {
            let dv = p.key(q, v as usize);
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
    fresh: Vec<i32>,
    keys: Vec<f32>,
}

impl SearchScratch {
    /// Scratch for searching a graph of `n` nodes.
    pub fn new(n: usize) -> Self {
        SearchScratch {
            vis: Visited::new(n),
            fresh: Vec::new(),
            keys: Vec::new(),
        }
    }
}

/// faiss's HNSW search for one query: keys of the `k` best, in a TopK.
pub fn search_one(
    g: &HnswGraph,
    p: &Points<'_>,
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
        (nearest, dn) = greedy(g, p, q, level, nearest, dn);
    }
    let ef = ef_search.max(k);
    let mut heap = MinimaxHeap::new(ef, g.ntotal(), p.metric);
    scratch.vis.reset(g.ntotal());
    heap.push(nearest as i32, dn);
    res.push(dn, nearest as i64);
    scratch.vis.insert(nearest);
    while heap.nvalid > 0 {
        let Some((v0, d0)) = heap.pop_min() else {
            break;
        };
        if heap.count_below(d0) >= ef_search {
            break;
        }
        // Gather the unvisited neighbours and prefetch them all before computing any distance,
        // so the random reads overlap instead of queueing one after another.
        let fresh = &mut scratch.fresh;
        fresh.clear();
        for &v in g.neighbors_of(v0 as usize, 0) {
            if scratch.vis.insert(v as usize) {
                p.prefetch(v as usize);
                fresh.push(v);
            }
        }
        p.keys(q, fresh, &mut scratch.keys);
        for (&v, &dv) in fresh.iter().zip(scratch.keys.iter()) {
            let dv = if dv.is_nan() { f32::INFINITY } else { dv };
            res.push(dv, v as i64);
            heap.push(v, dv);
        }
    }
    res
}

/// Batch search: parallel over queries, a scratch visited table per thread.
pub fn search(
    g: &HnswGraph,
    p: &Points<'_>,
    queries: VectorsView<'_>,
    k: usize,
    ef_search: usize,
    metric: Metric,
) -> Result<RawResults> {
    if ef_search == 0 {
        return Err(Error::invalid("efSearch must be at least 1"));
    }
    let tie = p.metric.tie_order();
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
