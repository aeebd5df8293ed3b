//! Node layouts of annoy 1.17.3 per metric (docs/file-formats.md).

use crate::error::{Error, Result};
use crate::metric::Metric;

/// annoy's five metrics, in the order their names are listed in errors. annoy files exist
/// only for these; every annoy entry point ([`NodeLayout::new`], and through it builds and
/// opens) refuses the others. The annoy code matches a metric by its family (`L2` beside
/// `Euclidean`, `InnerProduct` beside `Dot`, `Cosine` beside `Angular`: annoy's internal
/// distances are the family's squared L2, negated dot and 2 − 2·cos), so that every match is
/// total without a panic path although the other members never reach it.
pub const METRICS: [Metric; 5] = [
    Metric::Angular,
    Metric::Euclidean,
    Metric::Manhattan,
    Metric::Dot,
    Metric::Hamming,
];

/// annoy's names of [`METRICS`], as `metric=` accepts them (case-insensitive).
pub const METRIC_NAMES: &[&str] = &["angular", "euclidean", "manhattan", "dot", "hamming"];

/// The metric of annoy's name `s` (case-insensitive); other names, including the other
/// backends' metrics, are errors listing annoy's.
pub fn parse_metric(s: &str) -> Result<Metric> {
    s.parse::<Metric>()
        .ok()
        .filter(|m| METRICS.contains(m))
        .ok_or_else(|| Error::InvalidParameter {
            key: "metric".into(),
            value: s.into(),
            reason: format!("valid values: {}", METRIC_NAMES.join(", ")),
        })
}

/// Byte layout of one node for a metric and dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLayout {
    /// The metric whose node format this is.
    pub metric: Metric,
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
    /// annoy 1.17.3's node layout for `metric` and dimension `f` (in bits for hamming); an error
    /// for the metrics annoy does not have.
    pub fn new(metric: Metric, f: usize) -> Result<Self> {
        let (children, v, words, word_bytes) = match metric {
            Metric::Angular => (4, 12, f, 4),
            Metric::Euclidean | Metric::Manhattan => (8, 16, f, 4),
            Metric::Dot => (4, 16, f, 4),
            Metric::Hamming => (4, 16, f.div_ceil(64), 8),
            Metric::L2 | Metric::InnerProduct | Metric::Cosine => {
                return Err(Error::Unsupported(format!(
                    "annoy has no metric {metric}; its metrics: {}",
                    METRIC_NAMES.join(", ")
                )))
            }
        };
        let size = v + words * word_bytes;
        Ok(NodeLayout {
            metric,
            f,
            size,
            children,
            v,
            k: (size - children) / 4,
            words,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_spec_table() {
        let layout = |m, f| NodeLayout::new(m, f).unwrap();
        let a = layout(Metric::Angular, 3);
        assert_eq!((a.size, a.k), (24, 5));
        let e = layout(Metric::Euclidean, 3);
        assert_eq!((e.size, e.k), (28, 5));
        let d = layout(Metric::Dot, 3);
        assert_eq!((d.size, d.k), (28, 6));
        let h = layout(Metric::Hamming, 3);
        assert_eq!((h.size, h.k), (24, 5));
        let a8 = layout(Metric::Angular, 8);
        assert_eq!((a8.size, a8.children, a8.v, a8.k), (44, 4, 12, 10));
        for name in ["cosine", "L2", "chebyshev"] {
            let e = parse_metric(name).unwrap_err().to_string();
            assert!(e.contains("angular, euclidean"), "{e}");
        }
        assert!(NodeLayout::new(Metric::L2, 3).is_err());
        for (m, name) in METRICS.iter().zip(METRIC_NAMES) {
            assert_eq!(parse_metric(&name.to_uppercase()).unwrap(), *m);
            assert_eq!(m.name(), *name);
        }
    }
}
