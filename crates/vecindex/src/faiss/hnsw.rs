//! FAISS `IndexHNSWFlat`: faiss 1.15.1's deterministic graph build and its bounded-queue search
//! (docs/algorithms.md), so graphs we build from the same data are the graphs
//! faiss builds, and searches over a faiss graph return faiss's ids.
//!
//! Internally every distance is a "key" where smaller is better: squared L2, or the negated inner
//! product.

use super::flat::FlatIndex;
use super::rng::FaissRng;
use crate::exact::RawResults;
use crate::kernels::{self, topk::TieOrder, topk::TopK};
use crate::metric::Metric;
use crate::vectors::VectorsView;
use crate::{Error, Result};
use rayon::prelude::*;
use std::collections::BinaryHeap;

/// The HNSW graph, in faiss's layout.
#[derive(Debug, Clone)]
pub struct HnswGraph {
    pub assign_probas: Vec<f64>,
    /// Cumulative neighbour slots per level; `cum[0] = 0`.
    pub cum: Vec<i32>,
    /// Per vector: its level + 1.
    pub levels: Vec<i32>,
    /// Per vector: start of its neighbour slots; `ntotal + 1` entries.
    pub offsets: Vec<u64>,
    /// Neighbour ids, -1 for empty slots (valid ids first in each level's range).
    pub neighbors: Vec<i32>,
    pub entry_point: i32,
    pub max_level: i32,
    pub ef_construction: usize,
    pub ef_search: usize,
}

/// faiss's level table for `m` (set_default_probas with levelMult = 1/ln m, f32/f64 mix kept).
pub fn default_probas(m: usize) -> (Vec<f64>, Vec<i32>) {
    let level_mult = (1.0 / (m as f64).ln()) as f32;
    let mut probas = Vec::new();
    let mut cum = vec![0i32];
    let mut nn = 0i32;
    let mut level = 0i32;
    loop {
        let a = (-(level as f32) / level_mult) as f64;
        let b = (-1.0f32 / level_mult) as f64;
        let p = (a.exp() * (1.0 - b.exp())) as f32;
        if p < 1e-9 {
            break;
        }
        probas.push(p as f64);
        nn += if level == 0 { 2 * m as i32 } else { m as i32 };
        cum.push(nn);
        level += 1;
    }
    (probas, cum)
}

impl HnswGraph {
    /// An empty graph with faiss's defaults for `m`.
    pub fn new(m: usize, ef_construction: usize, ef_search: usize) -> Self {
        let (assign_probas, cum) = default_probas(m);
        HnswGraph {
            assign_probas,
            cum,
            levels: Vec::new(),
            offsets: vec![0],
            neighbors: Vec::new(),
            entry_point: -1,
            max_level: -1,
            ef_construction,
            ef_search,
        }
    }

    pub fn ntotal(&self) -> usize {
        self.levels.len()
    }

    /// M, recovered from the level table (level 1 has M slots; level 0 has 2M).
    pub fn m(&self) -> usize {
        if self.cum.len() > 1 {
            (self.cum[1] / 2) as usize
        } else {
            0
        }
    }

    fn nb_neighbors(&self, level: usize) -> usize {
        (self.cum[level + 1] - self.cum[level]) as usize
    }

    #[inline]
    fn range(&self, i: usize, level: usize) -> (usize, usize) {
        let o = self.offsets[i] as usize;
        (
            o + self.cum[level] as usize,
            o + self.cum[level + 1] as usize,
        )
    }

    /// Valid neighbours of `i` at `level` (up to the first -1).
    #[inline]
    fn neighbors_of(&self, i: usize, level: usize) -> &[i32] {
        let (b, e) = self.range(i, level);
        let s = &self.neighbors[b..e];
        let n = s.iter().position(|&v| v < 0).unwrap_or(s.len());
        &s[..n]
    }

    fn random_level(&self, rng: &mut FaissRng) -> usize {
        let mut f = rng.rand_float();
        for (level, &p) in self.assign_probas.iter().enumerate() {
            if (f as f64) < p {
                return level;
            }
            f = (f as f64 - p) as f32;
        }
        self.assign_probas.len() - 1
    }

    /// Checks the invariants faiss 1.15's reader checks (`validate_HNSW`), so a corrupted file can
    /// never send a search out of bounds or into a loop.
    pub fn validate(&self, ntotal: usize) -> std::result::Result<(), String> {
        if self.cum.first() != Some(&0) {
            return Err("HNSW cum_nneighbor_per_level must start with 0".into());
        }
        if self.cum.windows(2).any(|w| w[1] < w[0]) {
            return Err("HNSW cum_nneighbor_per_level is not non-decreasing".into());
        }
        if self.assign_probas.len() + 1 != self.cum.len() && !self.cum.is_empty() {
            // faiss writes one more cum entry than probas; tolerate other consistent tables.
        }
        let nlev = self.cum.len() as i32 - 1;
        if self.levels.len() != ntotal {
            return Err(format!(
                "HNSW levels size {} != ntotal {ntotal}",
                self.levels.len()
            ));
        }
        if self.offsets.len() != ntotal + 1 {
            return Err(format!(
                "HNSW offsets size {} != ntotal + 1",
                self.offsets.len()
            ));
        }
        if self.offsets[0] != 0 {
            return Err("HNSW offsets[0] != 0".into());
        }
        for (i, &l) in self.levels.iter().enumerate() {
            if l < 1 || l > nlev {
                return Err(format!("HNSW levels[{i}] = {l} out of range [1, {nlev}]"));
            }
            let want = self.offsets[i] + self.cum[l as usize] as u64;
            if self.offsets[i + 1] != want {
                return Err(format!(
                    "HNSW offsets not increasing by cum_neighbor_per_level at {}: {} + {} != {}",
                    i + 1,
                    self.offsets[i],
                    self.cum[l as usize],
                    self.offsets[i + 1]
                ));
            }
        }
        if self.offsets[ntotal] as usize > self.neighbors.len() {
            return Err("HNSW offsets point past the neighbor array".into());
        }
        for (i, &v) in self.neighbors.iter().enumerate() {
            if v < -1 || v as i64 >= ntotal as i64 {
                return Err(format!(
                    "HNSW neighbors[{i}] = {v} out of range [-1, {ntotal})"
                ));
            }
        }
        // A neighbour at level l must itself reach level l: a search walking level l reads the
        // neighbour's level-l slots, which a lower node does not have (faiss 1.15 crashes here).
        for (i, &li) in self.levels.iter().enumerate() {
            for level in 1..li as usize {
                let (b, e) = self.range(i, level);
                if let Some(&v) = self.neighbors[b..e]
                    .iter()
                    .find(|&&v| v >= 0 && self.levels[v as usize] as usize <= level)
                {
                    return Err(format!(
                        "HNSW node {i} links at level {level} to node {v}, which has only \
                         levels 0..{}",
                        self.levels[v as usize] - 1
                    ));
                }
            }
        }
        if self.max_level >= self.cum.len() as i32 {
            return Err(format!("HNSW max_level {} out of range", self.max_level));
        }
        if self.entry_point < -1 || self.entry_point as i64 >= ntotal as i64 {
            return Err(format!(
                "HNSW entry_point {} out of range [-1, {ntotal})",
                self.entry_point
            ));
        }
        if ntotal > 0 && self.entry_point >= 0 {
            let ep_level = self.levels[self.entry_point as usize] - 1;
            if self.max_level > ep_level {
                return Err(format!(
                    "HNSW max_level {} exceeds the entry point's level {ep_level}",
                    self.max_level
                ));
            }
        }
        if ntotal > 0 && (self.entry_point < 0) != (self.max_level < 0) {
            return Err("HNSW entry_point and max_level disagree about emptiness".into());
        }
        Ok(())
    }
}

/// The vectors an HNSW graph links, with the metric's key function.
pub struct Points<'a> {
    pub data: &'a [f32],
    pub dim: usize,
    pub l2: bool,
    /// The dispatched kernels, looked up once (a graph walk computes millions of distances).
    dist: fn(&[f32], &[f32]) -> f32,
    dist4: fn(&[f32], [&[f32]; 4]) -> [f32; 4],
}

impl<'a> Points<'a> {
    pub fn new(data: &'a [f32], dim: usize, l2: bool) -> Self {
        let k = kernels::kernels();
        Points {
            data,
            dim,
            l2,
            dist: if l2 { k.l2sq } else { k.dot },
            dist4: if l2 { k.l2sq_x4 } else { k.dot_x4 },
        }
    }

    #[inline]
    fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Key of stored point `i` for query `q` (smaller is better).
    #[inline]
    fn key(&self, q: &[f32], i: usize) -> f32 {
        let d = (self.dist)(q, self.row(i));
        if self.l2 {
            d
        } else {
            -d
        }
    }

    /// Keys of the stored points `ids` for query `q`, four at a time, into `out`.
    #[inline]
    fn keys(&self, q: &[f32], ids: &[i32], out: &mut Vec<f32>) {
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
            out.extend(d.iter().map(|&x| if self.l2 { x } else { -x }));
        }
        for &v in c.remainder() {
            out.push(self.key(q, v as usize));
        }
    }

    /// Asks the CPU to start loading row `i` (a graph walk's next distances are random reads);
    /// the first 512 bytes only, which measured best for long rows.
    #[inline]
    fn prefetch(&self, i: usize) {
        let row = self.row(i);
        crate::kernels::prefetch(&row[..row.len().min(128)]);
    }
}

/// A total order on (key, id) for heaps (keys are never NaN for validated input).
#[derive(Clone, Copy, PartialEq)]
struct Cand(f32, i32);
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
    fresh: Vec<i32>,
    keys: Vec<f32>,
}

impl Visited {
    pub fn new(n: usize) -> Self {
        Visited {
            marks: vec![0; n],
            version: 1,
            fresh: Vec::new(),
            keys: Vec::new(),
        }
    }

    fn reset(&mut self, n: usize) {
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
    fn insert(&mut self, i: usize) -> bool {
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
fn greedy(
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

/// faiss's `search_neighbors_to_add`: best-first search with `ef` results at `level`.
fn search_to_add(
    g: &HnswGraph,
    p: &Points<'_>,
    q: &[f32],
    (ep, dep): (usize, f32),
    level: usize,
    ef: usize,
    vis: &mut Visited,
) -> Vec<Cand> {
    vis.reset(g.ntotal());
    let mut cand: BinaryHeap<std::cmp::Reverse<Cand>> = BinaryHeap::new();
    let mut res: BinaryHeap<Cand> = BinaryHeap::new();
    cand.push(std::cmp::Reverse(Cand(dep, ep as i32)));
    res.push(Cand(dep, ep as i32));
    vis.insert(ep);
    while let Some(&std::cmp::Reverse(c)) = cand.peek() {
        if c.0 > res.peek().expect("non-empty").0 {
            break;
        }
        cand.pop();
        // Unvisited neighbours first (prefetched), then their keys four at a time; the decisions
        // below run over them in the same order as one-by-one computation would.
        let mut fresh = std::mem::take(&mut vis.fresh);
        let mut keys = std::mem::take(&mut vis.keys);
        fresh.clear();
        for &v in g.neighbors_of(c.1 as usize, level) {
            if vis.insert(v as usize) {
                p.prefetch(v as usize);
                fresh.push(v);
            }
        }
        p.keys(q, &fresh, &mut keys);
        for (&v, &dv) in fresh.iter().zip(&keys) {
            if res.len() < ef || res.peek().expect("non-empty").0 > dv {
                res.push(Cand(dv, v));
                cand.push(std::cmp::Reverse(Cand(dv, v)));
                if res.len() > ef {
                    res.pop();
                }
            }
        }
        vis.fresh = fresh;
        vis.keys = keys;
    }
    res.into_vec()
}

/// faiss's neighbour-selection heuristic over `items` sorted closest first: keep `v` unless an
/// already-kept `u` is closer to `v` than the base point is; stop at `max_size`.
fn heuristic(p: &Points<'_>, sorted: &[Cand], max_size: usize) -> Vec<Cand> {
    let mut out: Vec<Cand> = Vec::with_capacity(max_size);
    for &c in sorted {
        let vrow = p.row(c.1 as usize);
        // Keep v unless some kept u is strictly closer to v than the base point is (NaN: keep).
        let dominated = |u: &Cand| {
            c.0.partial_cmp(&p.key(vrow, u.1 as usize)) == Some(std::cmp::Ordering::Greater)
        };
        if !out.iter().any(dominated) {
            out.push(c);
            if out.len() >= max_size {
                break;
            }
        }
    }
    out
}

/// Phase A for one point: its new lists per level (farthest first, -1 padded) against the frozen graph.
fn forward_links(
    g: &HnswGraph,
    p: &Points<'_>,
    pt: usize,
    vis: &mut Visited,
) -> Vec<(usize, Vec<i32>)> {
    let q = p.row(pt);
    let pl = (g.levels[pt] - 1) as usize;
    let mut nearest = g.entry_point as usize;
    let mut dn = p.key(q, nearest);
    let mut level = g.max_level;
    while level > pl as i32 {
        (nearest, dn) = greedy(g, p, q, level as usize, nearest, dn);
        level -= 1;
    }
    let mut out = Vec::new();
    while level >= 0 {
        let l = level as usize;
        let mut found = search_to_add(g, p, q, (nearest, dn), l, g.ef_construction, vis);
        found.sort();
        let nb = g.nb_neighbors(l);
        let kept = if found.len() < nb {
            found
        } else {
            heuristic(p, &found, nb)
        };
        let mut list: Vec<i32> = kept
            .iter()
            .rev()
            .map(|c| c.1)
            .filter(|&v| v as usize != pt)
            .collect();
        list.resize(nb, -1);
        out.push((l, list));
        level -= 1;
    }
    out
}

/// Phase B for one (dest, level): dest's list merged with its incoming links, pruned if too long.
fn merge_reverse(
    g: &HnswGraph,
    p: &Points<'_>,
    dest: usize,
    level: usize,
    incoming: &mut Vec<i32>,
) -> Vec<i32> {
    let (b, e) = g.range(dest, level);
    let cap = e - b;
    let mut cands: Vec<i32> = g.neighbors_of(dest, level).to_vec();
    incoming.sort_unstable();
    incoming.dedup();
    for &v in incoming.iter() {
        if v as usize != dest && !cands.contains(&v) {
            cands.push(v);
        }
    }
    if cands.len() > cap {
        let drow = p.row(dest);
        let mut arr: Vec<Cand> = cands
            .iter()
            .map(|&v| Cand(p.key(drow, v as usize), v))
            .collect();
        arr.sort();
        let headroom = 0.2f32;
        let pruned = ((cap as f32 - cap as f32 * headroom) as usize).max(1);
        cands = heuristic(p, &arr, pruned).iter().map(|c| c.1).collect();
    }
    cands.resize(cap, -1);
    cands
}

impl HnswGraph {
    /// faiss 1.15.1's deterministic add of points `n0..n0+n` (already in `p`). `level_rng` is the
    /// index's level generator (seed 12345, not persisted). `progress(done, n)` after each batch.
    pub fn add(
        &mut self,
        p: &Points<'_>,
        n0: usize,
        n: usize,
        level_rng: &mut FaissRng,
        progress: &dyn Fn(u64, u64),
    ) {
        if n == 0 {
            return;
        }
        for _ in 0..n {
            let l = self.random_level(level_rng);
            self.levels.push(l as i32 + 1);
        }
        for i in n0..n0 + n {
            let next = self.offsets[i] + self.cum[self.levels[i] as usize] as u64;
            self.offsets.push(next);
        }
        self.neighbors
            .resize(*self.offsets.last().expect("offsets") as usize, -1);
        // Stable bucket sort by level.
        let nlev = self.levels[n0..]
            .iter()
            .map(|&l| l as usize)
            .max()
            .unwrap_or(1);
        let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); nlev];
        for i in n0..n0 + n {
            buckets[(self.levels[i] - 1) as usize].push(i);
        }
        let ntotal = n0 + n;
        let theta = ((0.02 * ntotal as f64) as usize).max(1);
        let mut rng2 = FaissRng::new(789);
        let mut done_total = 0u64;
        for pl in (0..nlev).rev() {
            let order = &mut buckets[pl];
            if order.is_empty() {
                continue;
            }
            let len = order.len();
            for j in 0..len {
                let r = j + rng2.rand_int((len - j) as u32) as usize;
                order.swap(j, r);
            }
            let order = order.clone();
            let mut raise_ep = false;
            if self.entry_point == -1 {
                self.max_level = pl as i32;
                self.entry_point = order[0] as i32;
            } else if pl as i32 > self.max_level {
                raise_ep = true;
            }
            let mut s = 0;
            while s < len {
                let done = s;
                let e = len.min(s + if done == 0 { 1 } else { done }.min(theta));
                let batch = &order[s..e];
                // Phase A: forward links against the frozen graph (parallel for big batches).
                let g: &HnswGraph = self;
                let fwd: Vec<Vec<(usize, Vec<i32>)>> = if batch.len() > 100 {
                    batch
                        .par_iter()
                        .map_init(
                            || Visited::new(ntotal),
                            |vis, &pt| forward_links(g, p, pt, vis),
                        )
                        .collect()
                } else {
                    let mut vis = Visited::new(ntotal);
                    batch
                        .iter()
                        .map(|&pt| forward_links(g, p, pt, &mut vis))
                        .collect()
                };
                let mut reverse: Vec<(usize, usize, i32)> = Vec::new();
                for (&pt, lists) in batch.iter().zip(fwd) {
                    for (l, list) in lists {
                        let (b, e2) = self.range(pt, l);
                        self.neighbors[b..e2].copy_from_slice(&list);
                        for &v in list.iter().filter(|&&v| v >= 0) {
                            reverse.push((v as usize, l, pt as i32));
                        }
                    }
                }
                // Phase B: merge reverse links per (dest, level), in sorted order.
                reverse.sort_unstable();
                let mut groups: Vec<(usize, usize, Vec<i32>)> = Vec::new();
                for (dest, l, src) in reverse {
                    match groups.last_mut() {
                        Some((d, gl, v)) if *d == dest && *gl == l => v.push(src),
                        _ => groups.push((dest, l, vec![src])),
                    }
                }
                let g: &HnswGraph = self;
                let merged: Vec<Vec<i32>> = if groups.len() > 100 {
                    groups
                        .par_iter_mut()
                        .map(|(dest, l, inc)| merge_reverse(g, p, *dest, *l, inc))
                        .collect()
                } else {
                    groups
                        .iter_mut()
                        .map(|(dest, l, inc)| merge_reverse(g, p, *dest, *l, inc))
                        .collect()
                };
                for ((dest, l, _), list) in groups.iter().zip(merged) {
                    let (b, e2) = self.range(*dest, *l);
                    self.neighbors[b..e2].copy_from_slice(&list);
                }
                s = e;
                if raise_ep {
                    self.max_level = pl as i32;
                    self.entry_point = order[0] as i32;
                    raise_ep = false;
                }
                done_total += batch.len() as u64;
                progress(done_total, n as u64);
            }
        }
    }
}

/// An `IndexHNSWFlat`: the graph plus the flat storage of the vectors.
#[derive(Debug, Clone)]
pub struct HnswIndex {
    pub graph: HnswGraph,
    pub storage: FlatIndex,
    /// The level generator (seed 12345; not saved, so it restarts after a load, as in faiss).
    level_rng: FaissRng,
}

impl HnswIndex {
    /// An empty index.
    pub fn new(
        dim: usize,
        metric: Metric,
        m: usize,
        ef_construction: usize,
        ef_search: usize,
    ) -> Self {
        HnswIndex {
            graph: HnswGraph::new(m, ef_construction, ef_search),
            storage: FlatIndex::from_parts(Vec::new(), dim, metric),
            level_rng: FaissRng::new(12345),
        }
    }

    /// From a graph and storage read from a file (already validated against each other).
    pub fn from_parts(graph: HnswGraph, storage: FlatIndex) -> Self {
        HnswIndex {
            graph,
            storage,
            level_rng: FaissRng::new(12345),
        }
    }

    fn points(&self) -> Points<'_> {
        Points::new(
            self.storage.data(),
            self.storage.dim(),
            self.storage.metric() == Metric::L2,
        )
    }

    /// Adds vectors (faiss's `add`: one deterministic batch build per call).
    pub fn add(&mut self, x: VectorsView<'_>, progress: &dyn Fn(u64, u64)) {
        let n0 = self.storage.len();
        self.storage.append(x.as_slice());
        let mut rng = std::mem::replace(&mut self.level_rng, FaissRng::new(0));
        let points = Points::new(
            self.storage.data(),
            self.storage.dim(),
            self.storage.metric() == Metric::L2,
        );
        self.graph.add(&points, n0, x.rows(), &mut rng, progress);
        self.level_rng = rng;
    }

    pub fn dim(&self) -> usize {
        self.storage.dim()
    }

    pub fn len(&self) -> usize {
        self.storage.len()
    }

    pub fn is_empty(&self) -> bool {
        self.storage.is_empty()
    }

    pub fn metric(&self) -> Metric {
        self.storage.metric()
    }

    pub fn ef_search(&self) -> usize {
        self.graph.ef_search
    }

    pub fn set_ef_search(&mut self, ef: usize) {
        self.graph.ef_search = ef;
    }

    /// Top-k with ef = max(efSearch, k).
    pub fn search(&self, queries: VectorsView<'_>, k: usize) -> Result<RawResults> {
        search(
            &self.graph,
            &self.points(),
            queries,
            k,
            self.graph.ef_search,
            self.metric(),
        )
    }
}

/// faiss's MinimaxHeap: a max-heap of (key, id) with capacity `n`, a min-pop that leaves the
/// popped entry in the array (id -1), and a count of entries better than a threshold.
struct MinimaxHeap {
    n: usize,
    ids: Vec<i32>,
    dis: Vec<f32>,
    /// `dis` with popped entries set to +inf, so the minimum search is a plain vector scan.
    live: Vec<f32>,
    nvalid: usize,
}

impl MinimaxHeap {
    /// A heap of at most `n` entries; memory for `max_items` (no search holds more entries than
    /// the graph has nodes, so an efSearch far beyond n allocates only what can be used).
    fn new(n: usize, max_items: usize) -> Self {
        let cap = n.min(max_items);
        MinimaxHeap {
            n,
            ids: Vec::with_capacity(cap),
            dis: Vec::with_capacity(cap),
            live: Vec::with_capacity(cap),
            nvalid: 0,
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.ids.swap(a, b);
        self.dis.swap(a, b);
        self.live.swap(a, b);
    }

    fn push(&mut self, i: i32, v: f32) {
        if self.ids.len() == self.n {
            if v >= self.dis[0] {
                return;
            }
            if self.ids[0] != -1 {
                self.nvalid -= 1;
            }
            // Pop the max (root), then push.
            let last = self.ids.len() - 1;
            self.swap(0, last);
            self.ids.pop();
            self.dis.pop();
            self.live.pop();
            self.sift_down(0);
        }
        self.ids.push(i);
        self.dis.push(v);
        self.live.push(v);
        let mut c = self.ids.len() - 1;
        while c > 0 {
            let p = (c - 1) / 2;
            if self.dis[c] > self.dis[p] {
                self.swap(c, p);
                c = p;
            } else {
                break;
            }
        }
        self.nvalid += 1;
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.ids.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && self.dis[r] > self.dis[l] {
                r
            } else {
                l
            };
            if self.dis[c] > self.dis[i] {
                self.swap(c, i);
                i = c;
            } else {
                break;
            }
        }
    }

    /// The valid entry with the smallest key (the last one on ties, as faiss scans), invalidated.
    fn pop_min(&mut self) -> Option<(i32, f32)> {
        if self.nvalid == 0 {
            return None;
        }
        // Lane-wise minimum (vectorises), then the last position holding it.
        let mut lanes = [f32::INFINITY; 8];
        let chunks = self.live.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..8 {
                lanes[l] = if c[l] < lanes[l] { c[l] } else { lanes[l] };
            }
        }
        let mut m = lanes
            .iter()
            .copied()
            .fold(f32::INFINITY, |a, b| if b < a { b } else { a });
        for &v in rest {
            if v < m {
                m = v;
            }
        }
        // Valid entries can be +inf (NaN keys are stored as +inf): fall back to the first valid one.
        let b = match self.live.iter().rposition(|&v| v == m && m < f32::INFINITY) {
            Some(b) => b,
            None => self.ids.iter().rposition(|&id| id != -1)?,
        };
        let id = self.ids[b];
        self.ids[b] = -1;
        self.live[b] = f32::INFINITY;
        self.nvalid -= 1;
        Some((id, self.dis[b]))
    }

    fn count_below(&self, t: f32) -> usize {
        self.dis.iter().filter(|&&d| d < t).count()
    }
}

/// Search state reused across queries on one thread.
pub struct SearchScratch {
    vis: Visited,
    fresh: Vec<i32>,
    keys: Vec<f32>,
}

impl SearchScratch {
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
    let mut heap = MinimaxHeap::new(ef, g.ntotal());
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
    let tie = if p.l2 {
        TieOrder::LowIdFirst
    } else {
        TieOrder::HighIdFirst
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_tables_match_faiss() {
        // Level counts and cum for the M values the spec lists.
        for (m, levels) in [(2, 29), (4, 15), (8, 10), (16, 8), (32, 6), (64, 5)] {
            let (p, cum) = default_probas(m);
            assert_eq!(p.len(), levels, "M={m}");
            assert_eq!(cum.len(), levels + 1);
        }
        let (_, cum) = default_probas(32);
        assert_eq!(cum, vec![0, 64, 96, 128, 160, 192, 224]);
    }

    #[test]
    fn upper_level_link_to_a_lower_node_is_rejected() {
        let x = crate::synth::gaussian(3000, 8, 3);
        let mut h = HnswIndex::new(8, Metric::L2, 4, 20, 16);
        h.add(x.view(), &|_, _| {});
        let g = &mut h.graph;
        assert!(g.validate(3000).is_ok());
        let high = (0..3000)
            .find(|&i| g.levels[i] >= 2)
            .expect("a node above level 0");
        let low = (0..3000)
            .find(|&i| g.levels[i] == 1)
            .expect("a level-0-only node");
        let (b, _) = g.range(high, 1);
        g.neighbors[b] = low as i32;
        let e = g.validate(3000).unwrap_err();
        assert!(
            e.contains(&format!("node {high} links at level 1 to node {low}")),
            "{e}"
        );
    }
}
