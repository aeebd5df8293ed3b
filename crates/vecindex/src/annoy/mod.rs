//! Annoy 1.17.3-compatible forests (file layout: docs/file-formats.md; build and search:
//! docs/algorithms.md).
//!
//! Builds forests with annoy's algorithm (two-means splits, Kiss64, the balance checks; the same
//! trees as annoy with one thread), writes annoy's file format, reads annoy files (read-only mmap,
//! validated before use) and answers queries with annoy's own search: a best-first priority queue
//! over all trees until `search_k` candidates, de-duplication and exact re-ranking.

// The public face is `backend` (the builder and indexer) and annoy's metric names below; the
// rest is crate-internal (what the tests need is re-exported by `crate::internals`).
pub(crate) mod arith;
pub mod backend;
pub(crate) mod build;
pub(crate) mod forest;
pub(crate) mod index;
pub(crate) mod layout;
pub(crate) mod search;
pub(crate) mod writer;

pub use layout::{parse_metric, METRICS, METRIC_NAMES};
