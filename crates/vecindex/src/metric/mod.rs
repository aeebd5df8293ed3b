//! Metrics: what a score means, which direction is better, and what pads a missing result.
//!
//! Every backend reports its metric through this one type, so callers never guess whether the
//! second array of a result holds distances (smaller first) or similarities (larger first). It
//! also owns the conventions every search shares: the sort key (smaller is better) a score maps
//! to and back, the order of equal scores, and the padding of empty slots.
//!
//! One file per metric family holds that family's kernel entry points ([`euclidean`],
//! [`inner_product`], [`cosine`], [`manhattan`], [`hamming`]); [`Metric::score`] dispatches to
//! them and is the reference every search is checked against. Backend-specific arithmetic that
//! must reproduce another library bit for bit (annoy's split rules, faiss's GEMM form) stays
//! with that backend.

pub mod cosine;
pub mod euclidean;
pub mod hamming;
pub mod inner_product;
pub mod manhattan;

use crate::kernels::topk::TieOrder;
use serde::{Deserialize, Serialize};

/// The measure a backend ranks by. Each variant documents the value a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
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

    /// The sort key of a score: smaller is better for every metric (similarities are negated;
    /// negation is exact in f32, so keys convert back without loss).
    #[inline]
    pub fn to_key(self, score: f32) -> f32 {
        if self.higher_is_better() {
            -score
        } else {
            score
        }
    }

    /// The score of a sort key (the inverse of [`Metric::to_key`]).
    #[inline]
    pub fn from_key(self, key: f32) -> f32 {
        self.to_key(key)
    }

    /// How equal scores are ordered: lower id first for distances, higher id first for
    /// similarities (what faiss's heaps do).
    pub fn tie_order(self) -> TieOrder {
        if self.higher_is_better() {
            TieOrder::HighIdFirst
        } else {
            TieOrder::LowIdFirst
        }
    }

    /// Every metric, in declaration order.
    pub const ALL: [Metric; 8] = [
        Metric::L2,
        Metric::InnerProduct,
        Metric::Cosine,
        Metric::Angular,
        Metric::Euclidean,
        Metric::Manhattan,
        Metric::Dot,
        Metric::Hamming,
    ];

    /// The value this metric reports for item row `x` against query row `q` (up to float
    /// summation order): squared L2, Euclidean distance, inner product, cosine similarity,
    /// annoy's angular distance, L1 distance or differing bits.
    pub fn score(self, q: &[f32], x: &[f32]) -> f32 {
        match self {
            Metric::L2 => euclidean::squared(q, x),
            Metric::Euclidean => euclidean::distance(q, x),
            Metric::InnerProduct | Metric::Dot => inner_product::dot(q, x),
            Metric::Cosine => cosine::similarity(q, x),
            Metric::Angular => cosine::angular(q, x),
            Metric::Manhattan => manhattan::distance(q, x),
            Metric::Hamming => hamming::distance(q, x),
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

/// Parses the names users know (`L2`, `IP`, `COSINE`, `angular`, `euclidean`, `manhattan`,
/// `dot`, `hamming`), case-insensitively; `inner_product` is accepted for `IP`.
impl std::str::FromStr for Metric {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Metric> {
        let wanted = s.trim().to_ascii_lowercase().replace(['_', '-'], "");
        if wanted == "innerproduct" {
            return Ok(Metric::InnerProduct);
        }
        Metric::ALL
            .into_iter()
            .find(|m| m.name().to_ascii_lowercase() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                crate::Error::invalid(format!("unknown metric '{s}'; valid: {}", names.join(", ")))
            })
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

    /// Each family's score against a hand computation on one pair of rows.
    #[test]
    fn scores_match_their_definitions() {
        let (q, x) = ([1.0f32, 0.0, 2.0, 0.6], [0.0f32, 3.0, 2.0, 0.2]);
        let l2: f32 = 1.0 + 9.0 + 0.0 + 0.16;
        let dot: f32 = 4.0 + 0.12;
        let cos = dot / ((1.0f32 + 4.0 + 0.36) * (9.0 + 4.0 + 0.04)).sqrt();
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * b.abs().max(1.0);
        for (m, want) in [
            (Metric::L2, l2),
            (Metric::Euclidean, l2.sqrt()),
            (Metric::InnerProduct, dot),
            (Metric::Dot, dot),
            (Metric::Cosine, cos),
            (Metric::Angular, (2.0 - 2.0 * cos).sqrt()),
            (Metric::Manhattan, 1.0 + 3.0 + 0.0 + 0.4),
            // Bits: q = 1,0,1,1 and x = 0,1,1,0.
            (Metric::Hamming, 3.0),
        ] {
            assert!(
                close(m.score(&q, &x), want),
                "{m}: {} vs {want}",
                m.score(&q, &x)
            );
        }
        let mut words = [0u64; 1];
        hamming::pack_bits(&q, &mut words);
        assert_eq!(words[0], 0b1101);
        assert_eq!(cosine::angular(&q, &[0.0; 4]), 2f32.sqrt());
    }

    #[test]
    fn names_parse_back_and_keys_invert() {
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>().unwrap(), m);
            assert_eq!(m.name().to_uppercase().parse::<Metric>().unwrap(), m);
            for s in [0.5f32, -3.25, 0.0] {
                assert_eq!(m.from_key(m.to_key(s)), s);
                // Smaller keys are better scores.
                assert_eq!(m.to_key(s) < m.to_key(1.0), m.better(s, 1.0));
            }
            let tie = m.tie_order();
            assert_eq!(tie == TieOrder::HighIdFirst, m.higher_is_better());
        }
        assert_eq!(
            "inner_product".parse::<Metric>().unwrap(),
            Metric::InnerProduct
        );
        let e = "chebyshev".parse::<Metric>().unwrap_err().to_string();
        assert!(
            e.contains("chebyshev") && e.contains("L2, IP, COSINE"),
            "{e}"
        );
    }
}
