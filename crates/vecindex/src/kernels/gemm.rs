//! The one place that calls the `gemm` crate: `out = A · Bᵀ` for row-major A and B.
//!
//! Kept behind this function so another GEMM (e.g. `matrixmultiply`) can replace it.

/// `out[i * n + j] = <a row i, b row j>` for `a`: m×k and `b`: n×k, both row-major; `out`: m×n.
/// Single-threaded: callers parallelise over tiles themselves.
pub fn a_times_bt(a: &[f32], m: usize, b: &[f32], n: usize, k: usize, out: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= n * k && out.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        out[..m * n].fill(0.0);
        return;
    }
    // SAFETY: the asserts above guarantee every element the strides address is inside its slice:
    // dst is m×n with row stride n; lhs (A) is m×k with row stride k; rhs (Bᵀ, k×n) reads
    // b[j*k + p] for p < k, j < n. `read_dst = false`, so `out` need not be initialised.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            k as isize,
            1,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_naive_product() {
        let (m, n, k) = (5, 7, 13);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 * 0.5).collect();
        let mut out = vec![0.0; m * n];
        super::a_times_bt(&a, m, &b, n, k, &mut out);
        for i in 0..m {
            for j in 0..n {
                let r: f32 = (0..k).map(|p| a[i * k + p] * b[j * k + p]).sum();
                assert!((out[i * n + j] - r).abs() < 1e-3, "{i},{j}");
            }
        }
    }
}
