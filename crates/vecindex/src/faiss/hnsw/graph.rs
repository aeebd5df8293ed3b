//! The HNSW graph storage in faiss's layout: level table, per-vector levels and offsets, neighbour
//! slots, their accessors, and the invariants checked when a graph is loaded.

/// The HNSW graph, in faiss's layout.
#[derive(Debug, Clone)]
pub struct HnswGraph {
    /// Probability of each level being a new node's top level (index = level), from faiss's level
    /// table.
    pub assign_probas: Vec<f64>,
    /// Cumulative neighbour slots per level; `cum[0] = 0`.
    pub cum: Vec<i32>,
    /// Per vector: its level + 1.
    pub levels: Vec<i32>,
    /// Per vector: start of its neighbour slots; `ntotal + 1` entries.
    pub offsets: Vec<u64>,
    /// Neighbour ids, -1 for empty slots (valid ids first in each level's range).
    pub neighbors: Vec<i32>,
    /// The node searches start from (one on the top level); -1 while the graph is empty.
    pub entry_point: i32,
    /// The highest level any node reaches (0-based); -1 while the graph is empty.
    pub max_level: i32,
    /// Build breadth: candidates kept while finding a new node's neighbours.
    pub ef_construction: usize,
    /// Search breadth: candidates kept per query (`k` is used when larger); saved with the graph.
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

    /// Number of nodes, one per stored vector.
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

    pub(super) fn nb_neighbors(&self, level: usize) -> usize {
        (self.cum[level + 1] - self.cum[level]) as usize
    }

    #[inline]
    pub(super) fn range(&self, i: usize, level: usize) -> (usize, usize) {
        let o = self.offsets[i] as usize;
        (
            o + self.cum[level] as usize,
            o + self.cum[level + 1] as usize,
        )
    }

    /// Valid neighbours of `i` at `level` (up to the first -1).
    #[inline]
    pub(super) fn neighbors_of(&self, i: usize, level: usize) -> &[i32] {
        let (b, e) = self.range(i, level);
        let s = &self.neighbors[b..e];
        let n = s.iter().position(|&v| v < 0).unwrap_or(s.len());
        &s[..n]
    }

    /// Asks the CPU to start loading where the lists of `i` start (the first of the two
    /// dependent reads that find a node's neighbours).
    #[inline]
    pub(super) fn prefetch_offset(&self, i: usize) {
        crate::kernels::prefetch(&self.offsets[i..i + 1]);
    }

    /// Asks the CPU to start loading the neighbour list of `i` at `level` (the next node a
    /// search expands is usually known a few hundred nanoseconds before its list is read).
    #[inline]
    pub(super) fn prefetch_neighbors(&self, i: usize, level: usize) {
        let (b, e) = self.range(i, level);
        crate::kernels::prefetch(&self.neighbors[b..e]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faiss::hnsw::HnswIndex;
    use crate::metric::Metric;

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
        h.add(x.view(), &|_, _| {}).unwrap();
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
