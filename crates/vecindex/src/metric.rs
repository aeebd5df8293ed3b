//! Metrics: what a score means, which direction is better, and what pads a missing result.
//!
//! Every backend reports its metric through this one type, so callers never guess whether the
//! second array of a result holds distances (smaller first) or similarities (larger first).

use serde::{Deserialize, Serialize};

/// The measure a backend ranks by. Each variant documents the value a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    /// Squared Euclidean distance, ascending (FAISS `L2`, Milvus `L2`).
    L2,
    /// Raw inner product, descending (FAISS `IP`, Milvus `IP`).
    InnerProduct,
    /// Cosine similarity, descending (Milvus `COSINE`).
    Cosine,
    /// Annoy's angular distance sqrt(2 − 2·cos), ascending.
    Angular,
    /// Euclidean distance (not squared), ascending (Annoy `euclidean`).
    Euclidean,
    /// L1 distance, ascending (Annoy `manhattan`).
    Manhattan,
    /// Raw dot product, descending (Annoy `dot`).
    Dot,
    /// Number of differing bits, ascending (Annoy `hamming`).
    Hamming,
}

impl Metric {
    /// The name users know it by.
    pub fn name(self) -> &'static str {
        match self {
            Metric::L2 => "L2",
            Metric::InnerProduct => "IP",
            Metric::Cosine => "COSINE",
            Metric::Angular => "angular",
            Metric::Euclidean => "euclidean",
            Metric::Manhattan => "manhattan",
            Metric::Dot => "dot",
            Metric::Hamming => "hamming",
        }
    }

    /// True when larger values are better (similarities), false for distances.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::InnerProduct | Metric::Cosine | Metric::Dot)
    }

    /// The value of an empty result slot: the worst possible score (+inf for distances, -inf for
    /// similarities). Paired with id -1 in every backend.
    pub fn padding(self) -> f32 {
        if self.higher_is_better() {
            f32::NEG_INFINITY
        } else {
            f32::INFINITY
        }
    }

    /// True if `a` ranks strictly better than `b` under this metric.
    pub fn better(self, a: f32, b: f32) -> bool {
        if self.higher_is_better() {
            a > b
        } else {
            a < b
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_the_worst_value() {
        for m in [
            Metric::L2,
            Metric::InnerProduct,
            Metric::Angular,
            Metric::Dot,
        ] {
            let p = m.padding();
            assert!(!m.better(p, 0.0));
            assert!(m.better(0.0, p));
        }
    }
}
