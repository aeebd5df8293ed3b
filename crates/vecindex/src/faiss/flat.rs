//! FAISS `IndexFlat` (L2 / IP): the vectors themselves, searched exactly.

use crate::exact::{ExactSearch, RawResults};
use crate::kernels;
use crate::metric::Metric;
use crate::vectors::VectorsView;

/// Exact index: rows in insertion order plus their squared norms (for the L2 batch path; FAISS
/// recomputes them on every search, we keep them — 4 bytes per row).
#[derive(Debug, Clone)]
pub struct FlatIndex {
    data: Vec<f32>,
    dim: usize,
    metric: Metric,
    norms: Vec<f32>,
}

impl FlatIndex {
    /// Takes ownership of row-major `data` (`dim` values per row). `metric` is L2 or IP.
    pub fn from_parts(data: Vec<f32>, dim: usize, metric: Metric) -> Self {
        assert!(matches!(metric, Metric::L2 | Metric::InnerProduct));
        assert!(dim > 0 && data.len().is_multiple_of(dim));
        let norms = if metric == Metric::L2 {
            kernels::row_norms(&data, dim)
        } else {
            Vec::new()
        };
        FlatIndex {
            data,
            dim,
            metric,
            norms,
        }
    }

    /// Values per stored vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of stored vectors.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// True when no vectors are stored.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// L2 (squared distance, smaller first) or inner product (larger first).
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Appends rows (same dimension, already validated).
    pub fn append(&mut self, rows: &[f32]) {
        self.data.extend_from_slice(rows);
        if self.metric == Metric::L2 {
            self.norms.extend(kernels::row_norms(rows, self.dim));
        }
    }

    /// The stored vectors, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Exact top-k (queries already validated).
    pub fn search(&self, queries: VectorsView<'_>, k: usize) -> RawResults {
        ExactSearch::new(&self.data, self.dim, &self.norms, self.metric).search(queries, k)
    }
}
