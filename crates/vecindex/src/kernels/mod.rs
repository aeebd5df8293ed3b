//! Distance kernels, selected once at run time for the CPU we run on.
//!
//! One binary must be fast on any x86-64: the AVX2+FMA versions are compiled with
//! `#[target_feature]` and chosen with `is_x86_feature_detected!` the first time a kernel is used.
//! On this project's Zen 4 machines AVX-512 measured no faster than AVX2 for these load-bound
//! reductions, so AVX2 is the fast path and an unrolled scalar
//! loop (which LLVM vectorises to SSE2 / NEON) is the fallback. Scans dispatch once per call, not
//! once per pair.

mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

pub mod faiss_order;
pub mod gemm;
pub mod topk;

use std::sync::OnceLock;

/// f32 values → IEEE binary16 bits.
pub type F16Encode = fn(&[f32], &mut [u16]);

/// One f32 query against four binary16 rows.
pub type F16DotX4 = fn(&[f32], [&[u16]; 4]) -> [f32; 4];

/// The kernel set chosen for this CPU.
#[derive(Clone, Copy)]
pub struct Kernels {
    /// Which implementation is in use ("avx2+fma" or "scalar").
    pub name: &'static str,
    /// Inner product of two equal-length slices.
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// Squared Euclidean distance of two equal-length slices.
    pub l2sq: fn(&[f32], &[f32]) -> f32,
    /// `out[i] = dot(query, row i of data)`; `data.len() == out.len() * query.len()`.
    pub scan_dot: fn(&[f32], &[f32], &mut [f32]),
    /// `out[i] = l2sq(query, row i of data)`.
    pub scan_l2: fn(&[f32], &[f32], &mut [f32]),
    /// `out[i] = squared norm of row i of data` for rows of `dim` values.
    pub norms: fn(&[f32], usize, &mut [f32]),
    /// Squared L2 from one query to four rows at once (shares the query loads; graph walks).
    pub l2sq_x4: fn(&[f32], [&[f32]; 4]) -> [f32; 4],
    /// Inner products of one query with four rows at once.
    pub dot_x4: fn(&[f32], [&[f32]; 4]) -> [f32; 4],
    /// f32 → IEEE binary16 bits, rounded to nearest even (`src.len() == dst.len()`). `None`
    /// where the CPU has no F16C; callers then stay on f32.
    pub f16_encode: Option<F16Encode>,
    /// Inner products of one f32 query with four binary16 rows (any summation order; the
    /// caller bounds the error).
    pub dot_x4_f16: Option<F16DotX4>,
}

static KERNELS: OnceLock<Kernels> = OnceLock::new();

/// True when the CPU has AVX2 and FMA (checked once; false off x86-64).
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static YES: OnceLock<bool> = OnceLock::new();
        *YES.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The kernels for this CPU. `VECINDEX_SIMD=scalar` in the environment forces the fallback
/// (to compare paths, or to work around a broken CPU flag).
pub fn kernels() -> &'static Kernels {
    KERNELS.get_or_init(|| {
        let forced_scalar = std::env::var("VECINDEX_SIMD")
            .map(|v| v.eq_ignore_ascii_case("scalar"))
            .unwrap_or(false);
        if !forced_scalar {
            #[cfg(target_arch = "x86_64")]
            if let Some(k) = x86::detect() {
                return k;
            }
        }
        scalar::KERNELS
    })
}

/// Inner product through the dispatched kernel.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().dot)(a, b)
}

/// Asks the CPU to start loading `s` into cache (a hint: no effect on results). For rows that
/// are visited in an order the hardware prefetcher cannot guess (a tree node's items, sampled
/// rows), issued a few rows ahead of use it hides most of the memory latency.
#[inline]
pub fn prefetch<T>(s: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        const LINE: usize = 64;
        let p = s.as_ptr() as *const i8;
        let size = std::mem::size_of_val(s);
        let mut i = 0;
        while i < size {
            // SAFETY: a prefetch never faults or changes memory; the address is inside `s`
            // (i < its size in bytes), and SSE is part of the x86-64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(i)) };
            i += LINE;
        }
        // A slice that does not start on a line boundary ends in one more line than the steps
        // above reach (rows of big allocations usually start 16 bytes into a line).
        if size > 0 {
            // SAFETY: as above; size - 1 is the last byte of `s`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(size - 1)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}

/// Squared L2 distance through the dispatched kernel.
#[inline]
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    (kernels().l2sq)(a, b)
}

/// Squared norms of the rows of a row-major matrix.
pub fn row_norms(data: &[f32], dim: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len() / dim.max(1)];
    (kernels().norms)(data, dim, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// f64 reference, independent of any kernel.
    fn ref_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    fn ref_l2(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum()
    }

    fn all_kernels() -> Vec<Kernels> {
        let mut v = vec![scalar::KERNELS];
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = x86::detect() {
            v.push(k);
        }
        v
    }

    #[test]
    fn kernels_match_f64_reference_for_every_length() {
        let mut s = 7u64;
        for k in all_kernels() {
            for dim in 0..80usize {
                let a: Vec<f32> = (0..dim).map(|_| lcg(&mut s)).collect();
                let b: Vec<f32> = (0..dim).map(|_| lcg(&mut s)).collect();
                let tol = 1e-5 * (dim as f64 + 1.0);
                assert!(
                    ((k.dot)(&a, &b) as f64 - ref_dot(&a, &b)).abs() < tol,
                    "{} dot d={dim}",
                    k.name
                );
                assert!(
                    ((k.l2sq)(&a, &b) as f64 - ref_l2(&a, &b)).abs() < tol,
                    "{} l2 d={dim}",
                    k.name
                );
            }
        }
    }

    #[test]
    fn scans_match_pairwise_kernels() {
        let mut s = 11u64;
        for k in all_kernels() {
            for dim in [1usize, 3, 8, 17, 64, 128, 384] {
                let n = 37;
                let q: Vec<f32> = (0..dim).map(|_| lcg(&mut s)).collect();
                let data: Vec<f32> = (0..n * dim).map(|_| lcg(&mut s)).collect();
                let mut out = vec![0.0; n];
                (k.scan_dot)(&q, &data, &mut out);
                for i in 0..n {
                    let r = ref_dot(&q, &data[i * dim..(i + 1) * dim]);
                    assert!(
                        (out[i] as f64 - r).abs() < 1e-4 * dim as f64,
                        "{} scan_dot",
                        k.name
                    );
                }
                (k.scan_l2)(&q, &data, &mut out);
                for i in 0..n {
                    let r = ref_l2(&q, &data[i * dim..(i + 1) * dim]);
                    assert!(
                        (out[i] as f64 - r).abs() < 1e-4 * dim as f64,
                        "{} scan_l2",
                        k.name
                    );
                }
                (k.norms)(&data, dim, &mut out);
                for i in 0..n {
                    let row = &data[i * dim..(i + 1) * dim];
                    assert!((out[i] as f64 - ref_dot(row, row)).abs() < 1e-4 * dim as f64);
                }
            }
        }
    }

    #[test]
    fn x4_kernels_match_single_ones() {
        let mut s = 5u64;
        for k in all_kernels() {
            for dim in [1usize, 7, 8, 16, 33, 128, 384] {
                let q: Vec<f32> = (0..dim).map(|_| lcg(&mut s)).collect();
                let rows: Vec<Vec<f32>> = (0..4)
                    .map(|_| (0..dim).map(|_| lcg(&mut s)).collect())
                    .collect();
                let r = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
                let l = (k.l2sq_x4)(&q, r);
                let d = (k.dot_x4)(&q, r);
                for j in 0..4 {
                    assert!(
                        (l[j] as f64 - ref_l2(&q, r[j])).abs() < 1e-4 * dim as f64,
                        "{} l2 x4",
                        k.name
                    );
                    assert!(
                        (d[j] as f64 - ref_dot(&q, r[j])).abs() < 1e-4 * dim as f64,
                        "{} dot x4",
                        k.name
                    );
                }
            }
        }
    }

    /// IEEE binary16 bits → value, written from the format's definition (independent of F16C).
    fn f16_value(h: u16) -> f64 {
        let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
        let e = ((h >> 10) & 0x1f) as i32;
        let m = (h & 0x3ff) as f64;
        match e {
            0 => sign * m * 2f64.powi(-24),
            31 => f64::NAN,
            _ => sign * (1.0 + m / 1024.0) * 2f64.powi(e - 15),
        }
    }

    #[test]
    fn f16_encoding_rounds_to_nearest_and_the_f16_dot_stays_within_its_bound() {
        let k = kernels();
        let (Some(enc), Some(dot4)) = (k.f16_encode, k.dot_x4_f16) else {
            eprintln!("no F16C on this CPU ({}): nothing to test", k.name);
            return;
        };
        let mut s = 3u64;
        // Values across the normal range, the subnormal range and near the largest finite one.
        let val = |s: &mut u64| {
            let scale = [1.0f32, 1e-3, 3e-6, 1e-8, 2e4, 6.5e4][(lcg(s).abs() * 5.99) as usize];
            lcg(s) * scale
        };
        for dim in [1usize, 5, 8, 15, 16, 23, 128, 385] {
            let q: Vec<f32> = (0..dim).map(|_| lcg(&mut s)).collect();
            let rows: Vec<Vec<f32>> = (0..4)
                .map(|_| (0..dim).map(|_| val(&mut s)).collect())
                .collect();
            let half: Vec<Vec<u16>> = rows
                .iter()
                .map(|r| {
                    let mut h = vec![0u16; dim];
                    enc(r, &mut h);
                    h
                })
                .collect();
            for (r, h) in rows.iter().zip(&half) {
                for (&x, &b) in r.iter().zip(h) {
                    let got = f16_value(b);
                    let err = (got - x as f64).abs();
                    assert!(err <= (x as f64).abs() * 2f64.powi(-11) + 2f64.powi(-25));
                    // Nearest: neither neighbour of the same sign is closer.
                    for nb in [b.wrapping_add(1), b.wrapping_sub(1)] {
                        if nb >> 15 == b >> 15 && (nb & 0x7c00) != 0x7c00 {
                            assert!((f16_value(nb) - x as f64).abs() >= err, "{x} -> {b:#x}");
                        }
                    }
                }
            }
            let got = dot4(&q, [&half[0], &half[1], &half[2], &half[3]]);
            for j in 0..4 {
                let exact: f64 = q
                    .iter()
                    .zip(&half[j])
                    .map(|(&a, &b)| a as f64 * f16_value(b))
                    .sum();
                let mag: f64 = q
                    .iter()
                    .zip(&half[j])
                    .map(|(&a, &b)| (a as f64 * f16_value(b)).abs())
                    .sum();
                let gamma = (dim as f64 + 8.0) * 2f64.powi(-24);
                assert!(
                    (got[j] as f64 - exact).abs() <= gamma * mag,
                    "d={dim} row {j}"
                );
            }
        }
    }

    #[test]
    fn identical_vectors_have_zero_l2() {
        let a: Vec<f32> = (0..100).map(|i| i as f32 * 0.37).collect();
        for k in all_kernels() {
            assert_eq!((k.l2sq)(&a, &a), 0.0);
        }
    }
}
