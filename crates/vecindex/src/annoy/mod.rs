//! Annoy 1.17.3-compatible forests (file layout: docs/file-formats.md; build and search:
//! docs/algorithms.md).
//!
//! Builds forests with annoy's algorithm (two-means splits, Kiss64, the balance checks; the same
//! trees as annoy with one thread), writes annoy's file format, reads annoy files (read-only mmap,
//! validated before use) and answers queries with annoy's own search: a best-first priority queue
//! over all trees until `search_k` candidates, de-duplication and exact re-ranking.

// The public face is `backend` (the builder and indexer) and the re-exports below; the rest is
// public only for the tests, examples and benchmarks, hidden from the docs, with no stability
// promise.
#[doc(hidden)]
pub mod arith;
pub mod backend;
#[doc(hidden)]
pub mod build;
#[doc(hidden)]
pub mod forest;
#[doc(hidden)]
pub mod index;
#[doc(hidden)]
pub mod layout;
#[doc(hidden)]
pub mod search;
#[doc(hidden)]
pub mod writer;

pub use forest::AnnoyForest;
pub use layout::{AnnoyMetric, NodeLayout};
