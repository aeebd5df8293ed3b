//! The Euclidean family: FAISS/Milvus `L2` (squared distance) and annoy's `euclidean` (the
//! distance itself). Every backend ranks both by the squared distance; only the reported value
//! differs.

use crate::kernels;

/// Squared Euclidean distance (the SIMD kernel; its summation order is faiss's).
#[inline]
pub fn squared(a: &[f32], b: &[f32]) -> f32 {
    kernels::l2sq(a, b)
}

/// The reported Euclidean distance of a squared one; rounding can leave a squared distance
/// slightly negative, which reads as 0.
#[inline]
pub fn from_squared(d: f32) -> f32 {
    d.max(0.0).sqrt()
}

/// Euclidean distance.
#[inline]
pub fn distance(a: &[f32], b: &[f32]) -> f32 {
    from_squared(squared(a, b))
}
