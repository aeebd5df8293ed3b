//! FAISS `IndexHNSWFlat`: faiss 1.15.1's deterministic graph build and its bounded-queue search
//! (docs/algorithms.md), so graphs we build from the same data are the graphs
//! faiss builds, and searches over a faiss graph return faiss's ids.
//!
//! Internally every distance is a "key" where smaller is better: squared L2, or the negated inner
//! product.

mod build;
mod graph;
mod heaps;
mod search;

pub use graph::HnswGraph;
pub use search::{search, Points};

use super::flat::FlatIndex;
use super::rng::FaissRng;
use crate::exact::RawResults;
use crate::metric::Metric;
use crate::vectors::VectorsView;
use crate::Result;

/// An `IndexHNSWFlat`: the graph plus the flat storage of the vectors.
#[derive(Debug, Clone)]
pub struct HnswIndex {
    /// The neighbour graph, in faiss's layout.
    pub graph: HnswGraph,
    /// The vectors (node `i` is row `i`) and their metric.
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
            self.storage.metric(),
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
            self.storage.metric(),
        );
        self.graph.add(&points, n0, x.rows(), &mut rng, progress);
        self.level_rng = rng;
    }

    /// Values per stored vector.
    pub fn dim(&self) -> usize {
        self.storage.dim()
    }

    /// Number of stored vectors (graph nodes).
    pub fn len(&self) -> usize {
        self.storage.len()
    }

    /// True when no vectors are stored.
    pub fn is_empty(&self) -> bool {
        self.storage.is_empty()
    }

    /// L2 (squared distance, smaller first) or inner product (larger first).
    pub fn metric(&self) -> Metric {
        self.storage.metric()
    }

    /// Search breadth: candidates kept per query (`k` is used when larger).
    pub fn ef_search(&self) -> usize {
        self.graph.ef_search
    }

    /// Sets the search breadth for later queries without rebuilding; 0 makes searches fail with
    /// `InvalidArgument`.
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
