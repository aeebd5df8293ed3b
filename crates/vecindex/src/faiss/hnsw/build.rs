//! HNSW construction: level assignment, the construction-time neighbour search, the neighbour
//! selection heuristic, and faiss 1.15.1's deterministic batched (parallel) add.

use super::graph::HnswGraph;
use super::heaps::StdHeap;
use super::points::GraphPoints;
use super::search::{greedy, Cand, Visited};
use crate::faiss::rng::FaissRng;
use rayon::prelude::*;

/// Reverse-link groups merged per slice in phase B (bounds the memory of the new lists).
const MERGE_CHUNK: usize = 4096;

/// faiss's `search_neighbors_to_add`: best-first search with `ef` results at `level`. Both
/// queues are libstdc++ heaps ordered by key only, as in faiss, so equal keys are kept, dropped
/// and returned exactly where faiss's are. Returns the results heap (top = farthest).
fn search_to_add<P: GraphPoints>(
    g: &HnswGraph,
    p: &P,
    q: &[f32],
    (ep, dep): (usize, f32),
    level: usize,
    ef: usize,
    vis: &mut Visited,
) -> StdHeap<false> {
    vis.reset(g.ntotal());
    let mut cand: StdHeap<true> = StdHeap::new();
    let mut res: StdHeap<false> = StdHeap::new();
    cand.push(Cand(dep, ep as i32));
    res.push(Cand(dep, ep as i32));
    vis.insert(ep);
    while let Some(c) = cand.top() {
        if c.0 > res.top().expect("non-empty").0 {
            break;
        }
        cand.pop();
        // Unvisited neighbours first (prefetched), then their keys four at a time; the decisions
        // below run over them in the same order as one-by-one computation would.
        let mut batch = std::mem::take(&mut vis.batch);
        batch.ids.clear();
        for &v in g.neighbors_of(c.1 as usize, level) {
            if vis.insert(v as usize) {
                p.prefetch(v as usize);
                batch.ids.push(v);
            }
        }
        p.keys(q, &batch.ids, &mut batch.keys);
        for (&v, &dv) in batch.ids.iter().zip(&batch.keys) {
            if res.len() < ef || res.top().expect("non-empty").0 > dv {
                res.push(Cand(dv, v));
                cand.push(Cand(dv, v));
                if res.len() > ef {
                    res.pop();
                }
            }
        }
        vis.batch = batch;
    }
    res
}

/// faiss's neighbour-selection heuristic over candidates in the order given (closest first):
/// keep `v` unless an already-kept `u` is strictly closer to `v` than the base point is; stop
/// at `max_size`.
fn heuristic<P: GraphPoints>(
    p: &P,
    sorted: impl Iterator<Item = Cand>,
    max_size: usize,
) -> Vec<Cand> {
    let mut out: Vec<Cand> = Vec::with_capacity(max_size);
    let mut buf = Vec::new();
    for c in sorted {
        let v = p.node_query(c.1 as usize, &mut buf);
        // Keep v unless some kept u is strictly closer to v than the base point is (NaN: keep).
        let dominated = |u: &Cand| {
            c.0.partial_cmp(&p.key(v, u.1 as usize)) == Some(std::cmp::Ordering::Greater)
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

/// Phase A for one point: its new lists per level (farthest first, -1 padded) against the
/// frozen graph. The hand-over from the search to the heuristic and to the list goes through
/// the same heap round trips as faiss's (`shrink_neighbor_list`), which fixes where equal
/// keys land.
fn forward_links<P: GraphPoints>(
    g: &HnswGraph,
    p: &P,
    pt: usize,
    q: &[f32],
    vis: &mut Visited,
) -> Vec<(usize, Vec<i32>)> {
    let pl = (g.levels[pt] - 1) as usize;
    let mut nearest = g.entry_point as usize;
    let mut dn = p.key(q, nearest);
    let mut level = g.max_level;
    while level > pl as i32 {
        (nearest, dn) = greedy(g, p, q, level as usize, (nearest, dn), &mut vis.batch);
        level -= 1;
    }
    let mut out = Vec::new();
    while level >= 0 {
        let l = level as usize;
        let mut found = search_to_add(g, p, q, (nearest, dn), l, g.ef_construction, vis);
        let nb = g.nb_neighbors(l);
        if found.len() >= nb {
            // Farthest-first pops into a min-heap, whose nearest-first pops feed the heuristic;
            // the kept ones go back into a max-heap in kept order.
            let mut closest_first: StdHeap<true> = StdHeap::new();
            while let Some(c) = found.pop() {
                closest_first.push(c);
            }
            let kept = heuristic(p, std::iter::from_fn(|| closest_first.pop()), nb);
            found = StdHeap::new();
            for c in kept {
                found.push(c);
            }
        }
        let mut list: Vec<i32> = std::iter::from_fn(|| found.pop())
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
fn merge_reverse<P: GraphPoints>(
    g: &HnswGraph,
    p: &P,
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
        let mut buf = Vec::new();
        let dq = p.node_query(dest, &mut buf);
        let mut arr: Vec<Cand> = cands
            .iter()
            .map(|&v| Cand(p.key(dq, v as usize), v))
            .collect();
        arr.sort();
        let headroom = 0.2f32;
        let pruned = ((cap as f32 - cap as f32 * headroom) as usize).max(1);
        cands = heuristic(p, arr.into_iter(), pruned)
            .iter()
            .map(|c| c.1)
            .collect();
    }
    cands.resize(cap, -1);
    cands
}

impl HnswGraph {
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

    /// faiss 1.15.1's deterministic add of points `n0..n0+n` (already in `p`), whose original
    /// float vectors are the rows of `new_rows` (`dim` values each: the queries of their own
    /// insertion, as faiss uses them; for quantized storage they are not the stored codes).
    /// `level_rng` is the index's level generator (seed 12345, not persisted).
    /// `progress(done, n)` after each batch.
    #[allow(clippy::too_many_arguments)]
    pub fn add<P: GraphPoints>(
        &mut self,
        p: &P,
        new_rows: &[f32],
        dim: usize,
        n0: usize,
        n: usize,
        level_rng: &mut FaissRng,
        progress: &dyn Fn(u64, u64),
    ) {
        if n == 0 {
            return;
        }
        let row = |pt: usize| &new_rows[(pt - n0) * dim..(pt - n0 + 1) * dim];
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
                            |vis, &pt| forward_links(g, p, pt, row(pt), vis),
                        )
                        .collect()
                } else {
                    let mut vis = Visited::new(ntotal);
                    batch
                        .iter()
                        .map(|&pt| forward_links(g, p, pt, row(pt), &mut vis))
                        .collect()
                };
                // (dest, level, src): 12 bytes per reverse link (a batch has up to theta × 2M).
                let mut reverse: Vec<(u32, u8, i32)> = Vec::new();
                for (&pt, lists) in batch.iter().zip(fwd) {
                    for (l, list) in lists {
                        let (b, e2) = self.range(pt, l);
                        self.neighbors[b..e2].copy_from_slice(&list);
                        for &v in list.iter().filter(|&&v| v >= 0) {
                            reverse.push((v as u32, l as u8, pt as i32));
                        }
                    }
                }
                // Phase B: merge reverse links per (dest, level), in sorted order. The groups
                // are ranges of the sorted links (most destinations get one link, so a list per
                // group would cost an allocation per link), merged and written a slice at a
                // time: each merge reads only its own destination's list, and the new lists of
                // a whole batch are never all held at once.
                reverse.sort_unstable();
                let mut bounds: Vec<usize> = (0..reverse.len())
                    .filter(|&i| {
                        i == 0
                            || reverse[i].0 != reverse[i - 1].0
                            || reverse[i].1 != reverse[i - 1].1
                    })
                    .collect();
                bounds.push(reverse.len());
                let ngroups = bounds.len() - 1;
                for first in (0..ngroups).step_by(MERGE_CHUNK) {
                    let chunk = first..ngroups.min(first + MERGE_CHUNK);
                    let g: &HnswGraph = self;
                    let merge = |gi: usize| {
                        let links = &reverse[bounds[gi]..bounds[gi + 1]];
                        let (dest, l) = (links[0].0 as usize, links[0].1 as usize);
                        let mut incoming: Vec<i32> = links.iter().map(|r| r.2).collect();
                        (dest, l, merge_reverse(g, p, dest, l, &mut incoming))
                    };
                    let merged: Vec<(usize, usize, Vec<i32>)> = if ngroups > 100 {
                        chunk.into_par_iter().map(merge).collect()
                    } else {
                        chunk.map(merge).collect()
                    };
                    for (dest, l, list) in merged {
                        let (b, e2) = self.range(dest, l);
                        self.neighbors[b..e2].copy_from_slice(&list);
                    }
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
