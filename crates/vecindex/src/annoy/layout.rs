//! Node layouts of annoy 1.17.3 per metric (docs/file-formats.md).

use crate::error::{Error, Result};
use crate::metric::Metric;

/// The five annoy metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnoyMetric {
    /// sqrt(2 − 2·cos) between the vectors; smaller is closer.
    Angular,
    /// Euclidean distance (not squared); smaller is closer.
    Euclidean,
    /// L1 distance; smaller is closer.
    Manhattan,
    /// Inner product; larger is better.
    Dot,
    /// Differing bits, each component packed as 1 when it is > 0.5; smaller is closer.
    Hamming,
}

impl AnnoyMetric {
    /// annoy's metric names, in the spelling `parse` accepts (case-insensitive) and lists in
    /// errors.
    pub const NAMES: &'static [&'static str] =
        &["angular", "euclidean", "manhattan", "dot", "hamming"];

    /// From annoy's metric name (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "angular" => AnnoyMetric::Angular,
            "euclidean" => AnnoyMetric::Euclidean,
            "manhattan" => AnnoyMetric::Manhattan,
            "dot" => AnnoyMetric::Dot,
            "hamming" => AnnoyMetric::Hamming,
            _ => {
                return Err(Error::InvalidParameter {
                    key: "metric".into(),
                    value: s.into(),
                    reason: format!("valid values: {}", Self::NAMES.join(", ")),
                })
            }
        })
    }

    /// The library-wide metric (what scores mean).
    pub fn metric(self) -> Metric {
        match self {
            AnnoyMetric::Angular => Metric::Angular,
            AnnoyMetric::Euclidean => Metric::Euclidean,
            AnnoyMetric::Manhattan => Metric::Manhattan,
            AnnoyMetric::Dot => Metric::Dot,
            AnnoyMetric::Hamming => Metric::Hamming,
        }
    }
}

/// Byte layout of one node for a metric and dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLayout {
    /// The metric whose node format this is.
    pub metric: AnnoyMetric,
    /// Dimension (bits for hamming).
    pub f: usize,
    /// Node size in bytes.
    pub size: usize,
    /// Offset of `children` (and of leaf-list ids).
    pub children: usize,
    /// Offset of the vector.
    pub v: usize,
    /// Maximum ids in a leaf list.
    pub k: usize,
    /// Number of vector words (f for float metrics, ceil(f/64) u64 words for hamming).
    pub words: usize,
}

impl NodeLayout {
    /// annoy 1.17.3's node layout for `metric` and dimension `f` (in bits for hamming).
    pub fn new(metric: AnnoyMetric, f: usize) -> Self {
        let (children, v, words, word_bytes) = match metric {
            AnnoyMetric::Angular => (4, 12, f, 4),
            AnnoyMetric::Euclidean | AnnoyMetric::Manhattan => (8, 16, f, 4),
            AnnoyMetric::Dot => (4, 16, f, 4),
            AnnoyMetric::Hamming => (4, 16, f.div_ceil(64), 8),
        };
        let size = v + words * word_bytes;
        NodeLayout {
            metric,
            f,
            size,
            children,
            v,
            k: (size - children) / 4,
            words,
        }
    }
}

/// annoy's hamming packing: component j becomes bit j % 64 of word j / 64 when it is > 0.5.
pub fn pack_bits(row: &[f32], words: &mut [u64]) {
    words.iter_mut().for_each(|w| *w = 0);
    for (j, &x) in row.iter().enumerate() {
        if x > 0.5 {
            words[j / 64] |= 1u64 << (j % 64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_spec_table() {
        let a = NodeLayout::new(AnnoyMetric::Angular, 3);
        assert_eq!((a.size, a.k), (24, 5));
        let e = NodeLayout::new(AnnoyMetric::Euclidean, 3);
        assert_eq!((e.size, e.k), (28, 5));
        let d = NodeLayout::new(AnnoyMetric::Dot, 3);
        assert_eq!((d.size, d.k), (28, 6));
        let h = NodeLayout::new(AnnoyMetric::Hamming, 3);
        assert_eq!((h.size, h.k), (24, 5));
        let a8 = NodeLayout::new(AnnoyMetric::Angular, 8);
        assert_eq!((a8.size, a8.children, a8.v, a8.k), (44, 4, 12, 10));
        assert!(AnnoyMetric::parse("cosine")
            .unwrap_err()
            .to_string()
            .contains("angular, euclidean"));
    }
}
