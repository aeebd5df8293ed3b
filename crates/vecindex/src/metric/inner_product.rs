//! The inner-product family: FAISS/Milvus `IP` and annoy's `dot`, both the raw dot product,
//! larger first. (annoy builds its dot trees on vectors extended by one component; that
//! reduction belongs to annoy's split rule and lives in `annoy::arith`.)

use crate::kernels;

/// Inner product (the SIMD kernel).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    kernels::dot(a, b)
}
