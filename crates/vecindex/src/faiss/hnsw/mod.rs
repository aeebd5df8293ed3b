//! FAISS `IndexHNSWFlat` and `IndexHNSWSQ`: faiss 1.15.1's deterministic graph build and its
//! bounded-queue search (docs/algorithms.md), so graphs we build from the same data are the
//! graphs faiss builds, and searches over a faiss graph return faiss's ids. The graph code is
//! generic over the storage's distances ([`GraphPoints`]).

mod build;
mod graph;
mod heaps;
mod points;
mod search;

pub use graph::HnswGraph;
pub use points::{GraphPoints, Points, SqPoints};
pub use search::search;

use super::flat::FlatIndex;
use super::rng::FaissRng;
use super::sq::{QType, SqIndex};
use crate::exact::RawResults;
use crate::metric::Metric;
use crate::vectors::VectorsView;
use crate::{Error, Result};

/// The vectors an HNSW graph links.
#[derive(Debug, Clone)]
pub enum HnswStorage {
    /// Exact f32 rows (`IndexHNSWFlat`, file record `IHNf`).
    Flat(FlatIndex),
    /// Scalar-quantized codes (`IndexHNSWSQ`, file record `IHNs`).
    Sq(SqIndex),
}

impl HnswStorage {
    /// Values per vector.
    pub fn dim(&self) -> usize {
        match self {
            HnswStorage::Flat(f) => f.dim(),
            HnswStorage::Sq(s) => s.dim(),
        }
    }

    /// Number of stored vectors.
    pub fn len(&self) -> usize {
        match self {
            HnswStorage::Flat(f) => f.len(),
            HnswStorage::Sq(s) => s.len(),
        }
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// L2 or inner product.
    pub fn metric(&self) -> Metric {
        match self {
            HnswStorage::Flat(f) => f.metric(),
            HnswStorage::Sq(s) => s.metric(),
        }
    }
}

/// An HNSW index: the graph plus the storage of the vectors.
#[derive(Debug, Clone)]
pub struct HnswIndex {
    /// The neighbour graph, in faiss's layout.
    pub graph: HnswGraph,
    /// The vectors (node `i` is row `i`) and their metric.
    pub storage: HnswStorage,
    /// The level generator (seed 12345; not saved, so it restarts after a load, as in faiss).
    level_rng: FaissRng,
}

impl HnswIndex {
    /// An empty index over flat storage.
    pub fn new(
        dim: usize,
        metric: Metric,
        m: usize,
        ef_construction: usize,
        ef_search: usize,
    ) -> Self {
        Self::from_parts(
            HnswGraph::new(m, ef_construction, ef_search),
            HnswStorage::Flat(FlatIndex::from_parts(Vec::new(), dim, metric)),
        )
    }

    /// An empty index over scalar-quantized storage (untrained unless `qtype` needs no
    /// training).
    pub fn new_sq(
        qtype: QType,
        dim: usize,
        metric: Metric,
        m: usize,
        ef_construction: usize,
        ef_search: usize,
    ) -> Self {
        Self::from_parts(
            HnswGraph::new(m, ef_construction, ef_search),
            HnswStorage::Sq(SqIndex::new(qtype, dim, metric)),
        )
    }

    /// From a graph and storage read from a file (already validated against each other).
    pub fn from_parts(graph: HnswGraph, storage: HnswStorage) -> Self {
        HnswIndex {
            graph,
            storage,
            level_rng: FaissRng::new(12345),
        }
    }

    /// Trains the storage's quantizer on `x` (a no-op for flat storage).
    pub fn train(&mut self, x: VectorsView<'_>) -> Result<()> {
        match &mut self.storage {
            HnswStorage::Flat(_) => Ok(()),
            HnswStorage::Sq(s) => s.train(x),
        }
    }

    /// Adds vectors (faiss's `add`: the storage first, then one deterministic batch build per
    /// call); quantized storage must be trained.
    pub fn add(&mut self, x: VectorsView<'_>, progress: &dyn Fn(u64, u64)) -> Result<()> {
        let n0 = self.storage.len();
        let mut rng = std::mem::replace(&mut self.level_rng, FaissRng::new(0));
        let (dim, n) = (x.dim(), x.rows());
        match &mut self.storage {
            HnswStorage::Flat(f) => {
                f.append(x.as_slice());
                let points = Points::new(f.data(), f.dim(), f.metric());
                let new_rows = &f.data()[n0 * dim..];
                self.graph
                    .add(&points, new_rows, dim, n0, n, &mut rng, progress);
            }
            HnswStorage::Sq(s) => {
                if let Err(e) = s.add(x) {
                    self.level_rng = rng;
                    return Err(e);
                }
                let points = SqPoints { index: s };
                self.graph
                    .add(&points, x.as_slice(), dim, n0, n, &mut rng, progress);
            }
        }
        self.level_rng = rng;
        Ok(())
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
        let (g, ef, metric) = (&self.graph, self.graph.ef_search, self.metric());
        match &self.storage {
            HnswStorage::Flat(f) => {
                let points = Points::new(f.data(), f.dim(), metric);
                search(g, &points, queries, k, ef, metric)
            }
            HnswStorage::Sq(s) => {
                if !s.sq.is_trained() {
                    return Err(Error::invalid(
                        "this HNSW index was saved with an untrained quantizer: nothing to search",
                    ));
                }
                search(g, &SqPoints { index: s }, queries, k, ef, metric)
            }
        }
    }
}
