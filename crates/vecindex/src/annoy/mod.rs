//! Annoy 1.17.3-compatible forests (file layout: docs/file-formats.md; build and search:
//! docs/algorithms.md).
//!
//! Builds forests with annoy's algorithm (two-means splits, Kiss64, the balance checks; the same
//! trees as annoy with one thread), writes annoy's file format, reads annoy files (read-only mmap,
//! validated before use) and answers queries with annoy's own search: a best-first priority queue
//! over all trees until `search_k` candidates, de-duplication and exact re-ranking.

pub mod arith;
pub mod backend;
pub mod build;
pub mod forest;
pub mod index;
pub mod layout;
pub mod search;
pub mod writer;

pub use forest::AnnoyForest;
pub use layout::{AnnoyMetric, NodeLayout};
