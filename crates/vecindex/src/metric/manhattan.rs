//! Manhattan (L1) distance, annoy's `manhattan`: smaller first.

/// L1 distance, summed in component order (annoy's order).
#[inline]
pub fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}
