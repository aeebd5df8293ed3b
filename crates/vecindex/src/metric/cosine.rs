//! The cosine family: Milvus `COSINE` (the similarity, larger first) and annoy's `angular`
//! (sqrt(2 − 2·cos), smaller first). Both rank exactly as the inner product of unit-length
//! rows, which is how exact search computes them.

use crate::kernels;
use crate::vectors::{Vectors, VectorsView};

/// Cosine similarity; 0 when either row is zero.
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    let norms = kernels::dot(a, a) * kernels::dot(b, b);
    if norms > 0.0 {
        kernels::dot(a, b) / norms.sqrt()
    } else {
        0.0
    }
}

/// annoy's angular distance sqrt(2 − 2·cos) of a cosine (clamped at 0 against rounding).
#[inline]
pub fn angular_from_cosine(cos: f32) -> f32 {
    (2.0 - 2.0 * cos).max(0.0).sqrt()
}

/// annoy's angular distance between two rows (a zero row is at distance sqrt(2) from all).
pub fn angular(a: &[f32], b: &[f32]) -> f32 {
    angular_from_cosine(similarity(a, b))
}

/// Rows scaled to unit length (zero rows stay zero).
pub fn normalized(v: VectorsView<'_>) -> Vectors {
    let mut out = v.as_slice().to_vec();
    for row in out.chunks_exact_mut(v.dim().max(1)) {
        let n = kernels::dot(row, row).sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|x| *x /= n);
        }
    }
    Vectors::new(out, v.dim()).expect("same shape")
}
