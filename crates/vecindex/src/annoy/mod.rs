//! Annoy 1.17.3-compatible forests (../shared/specs/annoy-spec.md).
//!
//! This version reads annoy files (read-only mmap, validated before use) and answers queries with
//! annoy's own search: the best-first priority queue over all trees, `search_k` candidates,
//! de-duplication and exact re-ranking. Building forests (and `builder_factory("annoy")`) comes
//! with the builder.

pub mod build;
pub mod forest;
pub mod index;
pub mod layout;
pub mod search;
pub mod writer;

pub use forest::AnnoyForest;
pub use layout::{AnnoyMetric, NodeLayout};
