//! annoy 1.17.3's float arithmetic, step for step, so that our forests split exactly where
//! annoy's do (a one-ulp difference in a two-means distance or a margin flips a comparison
//! now and then, and from there the tree — and the file size — differ).
//!
//! This is the arithmetic `pip install annoy` compiles on x86-64 with AVX2+FMA (GCC 12, `-O3
//! -ffast-math -march=native`), read from the compiled `annoylib` (docs/algorithms.md says how much it depends on the
//! build):
//! - `dot`: one 8-lane accumulator of separate multiplies and adds, reduced as
//!   `((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))`; a tail of 4 products added one by one, then
//!   fused multiply-adds for the last 1-3 values. (Exact for any dimension in the out-of-line
//!   copy; annoy's inlined copies vectorise the tail differently, so for d % 8 != 0 a rare
//!   split can still differ.)
//! - `1/sqrt(x)` (normalisation, the two-means sample scale) is the CPU's `rsqrtss` estimate
//!   and one Newton step `(x·y·y − 3) · (−0.5·y)` with the first product fused.
//! - the two-means mean update is `(c·count + y·scale) · (1/(count+1))` with `c·count` fused.
//!
//! All of it is elementwise IEEE arithmetic, so the scalar code and its AVX2 instantiation
//! give the same bits (the vectoriser may only widen it, never reorder it).
//!
//! One file (over 500 lines) on purpose: each function is one of annoy's float operation orders,
//! their AVX2 and scalar bodies side by side, and the tests compare them with each other.

/// The per-component term of each of annoy's reductions.
const DOT: u8 = 0;
const L2: u8 = 1;
const L1: u8 = 2;

#[inline(always)]
fn term<const OP: u8>(x: f32, y: f32) -> f32 {
    match OP {
        DOT => x * y,
        L2 => {
            let d = x - y;
            d * d
        }
        _ => (x - y).abs(),
    }
}

/// annoy's `dot<float>`.
#[inline(always)]
fn dot_body(a: &[f32], b: &[f32]) -> f32 {
    reduce_rows_body::<DOT, 1>(b, [a])[0]
}

/// `OP(rows[r], y)` for R rows sharing the loads of `y`, each in annoy's order.
#[inline(always)]
fn reduce_rows_body<const OP: u8, const R: usize>(y: &[f32], rows: [&[f32]; R]) -> [f32; R] {
    let n = y.len();
    let mut out = [0.0f32; R];
    let body = n / 8 * 8;
    if n > 7 {
        let mut acc = [[0.0f32; 8]; R];
        for i in (0..body).step_by(8) {
            let yv: &[f32; 8] = y[i..i + 8].try_into().expect("8 values");
            for (acc, row) in acc.iter_mut().zip(&rows) {
                let xv: &[f32; 8] = row[i..i + 8].try_into().expect("8 values");
                for l in 0..8 {
                    acc[l] += term::<OP>(xv[l], yv[l]);
                }
            }
        }
        for (o, a) in out.iter_mut().zip(&acc) {
            *o += hsum8(a);
        }
    }
    for (o, row) in out.iter_mut().zip(&rows) {
        *o = tail::<OP>(*o, &row[body..], &y[body..]);
    }
    out
}

/// annoy's horizontal sum of an 8-lane register.
#[inline(always)]
fn hsum8(a: &[f32; 8]) -> f32 {
    let m = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (m[0] + m[2]) + (m[1] + m[3])
}

/// The last `n % 8` values: four terms added one by one, then fused multiply-adds (L1: plain
/// adds). This is the out-of-line `dot`'s tail; inlined copies in annoy differ here.
#[inline(always)]
fn tail<const OP: u8>(mut s: f32, a: &[f32], b: &[f32]) -> f32 {
    if OP == L1 {
        for (x, y) in a.iter().zip(b) {
            s += term::<L1>(*x, *y);
        }
        return s;
    }
    let mut i = 0;
    if a.len() >= 4 {
        let t: [f32; 4] = std::array::from_fn(|j| term::<OP>(a[j], b[j]));
        s += t[0];
        s += t[1];
        s += t[2];
        s += t[3];
        i = 4;
    }
    for (x, y) in a[i..].iter().zip(&b[i..]) {
        s = if OP == DOT {
            x.mul_add(*y, s)
        } else {
            let d = x - y;
            d.mul_add(d, s)
        };
    }
    s
}

/// `c[i] = (c[i]·count + y[i]·scale) · step` with the first product fused into the add;
/// returns `dot(c, c)` of the updated row.
#[inline(always)]
fn mean_step_body(c: &mut [f32], y: &[f32], count: f32, scale: f32, step: f32) -> f32 {
    for (a, b) in c.iter_mut().zip(y) {
        *a = a.mul_add(count, b * scale) * step;
    }
    dot_body(c, c)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The same arithmetic with AVX2 registers: one 8-lane accumulator per row, separate
    //! multiply and add, annoy's horizontal sum, then the shared scalar tail.
    use super::{tail, DOT, L2};

    use std::arch::x86_64::*;

    /// annoy's `hsum256_ps_avx`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let x128 = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
        let x64 = _mm_add_ps(x128, _mm_movehl_ps(x128, x128));
        let x32 = _mm_add_ss(x64, _mm_shuffle_ps(x64, x64, 0x55));
        _mm_cvtss_f32(x32)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn term<const OP: u8>(x: __m256, y: __m256) -> __m256 {
        match OP {
            DOT => _mm256_mul_ps(x, y),
            L2 => {
                let d = _mm256_sub_ps(x, y);
                _mm256_mul_ps(d, d)
            }
            _ => _mm256_andnot_ps(_mm256_set1_ps(-0.0), _mm256_sub_ps(x, y)),
        }
    }

    /// Caller guarantees every row has `y.len()` values and AVX2+FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn reduce_rows<const OP: u8, const R: usize>(
        y: &[f32],
        rows: [&[f32]; R],
    ) -> [f32; R] {
        let n = y.len();
        let body = n / 8 * 8;
        let mut out = [0.0f32; R];
        if n > 7 {
            let mut acc = [_mm256_setzero_ps(); R];
            let mut i = 0;
            while i < body {
                // SAFETY (loads): i + 8 <= body <= n, inside `y` and every row.
                let yv = _mm256_loadu_ps(y.as_ptr().add(i));
                for (a, row) in acc.iter_mut().zip(&rows) {
                    *a = _mm256_add_ps(*a, term::<OP>(_mm256_loadu_ps(row.as_ptr().add(i)), yv));
                }
                i += 8;
            }
            for (o, a) in out.iter_mut().zip(acc) {
                *o += hsum(a);
            }
        }
        for (o, row) in out.iter_mut().zip(&rows) {
            *o = tail::<OP>(*o, &row[body..], &y[body..]);
        }
        out
    }

    /// Like `reduce_rows` but in any order: four fused accumulators per row over 32-value
    /// blocks (a short dependency chain), for estimates. Caller guarantees equal lengths and
    /// AVX2+FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn estimate_rows<const OP: u8, const R: usize>(
        y: &[f32],
        rows: [&[f32]; R],
    ) -> [f32; R] {
        let n = y.len();
        let mut acc = [[_mm256_setzero_ps(); 4]; R];
        let step = |a: __m256, x: __m256, y: __m256| match OP {
            DOT => _mm256_fmadd_ps(x, y, a),
            L2 => {
                let d = _mm256_sub_ps(x, y);
                _mm256_fmadd_ps(d, d, a)
            }
            _ => _mm256_add_ps(a, term::<OP>(x, y)),
        };
        let mut i = 0;
        // SAFETY (loads): every load below is at i + 8 * u + 8 <= n, inside `y` and every row.
        while i + 32 <= n {
            for u in 0..4 {
                let yv = _mm256_loadu_ps(y.as_ptr().add(i + 8 * u));
                for (a, row) in acc.iter_mut().zip(&rows) {
                    a[u] = step(a[u], _mm256_loadu_ps(row.as_ptr().add(i + 8 * u)), yv);
                }
            }
            i += 32;
        }
        while i + 8 <= n {
            let yv = _mm256_loadu_ps(y.as_ptr().add(i));
            for (a, row) in acc.iter_mut().zip(&rows) {
                a[0] = step(a[0], _mm256_loadu_ps(row.as_ptr().add(i)), yv);
            }
            i += 8;
        }
        let mut out = [0.0f32; R];
        for ((o, a), row) in out.iter_mut().zip(acc).zip(&rows) {
            *o = hsum(_mm256_add_ps(
                _mm256_add_ps(a[0], a[1]),
                _mm256_add_ps(a[2], a[3]),
            ));
            for (x, v) in row[i..].iter().zip(&y[i..]) {
                *o += super::term::<OP>(*x, *v);
            }
        }
        out
    }

    /// Caller guarantees `c.len() == y.len()` and AVX2+FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn mean_step(
        c: &mut [f32],
        y: &[f32],
        count: f32,
        scale: f32,
        step: f32,
    ) -> f32 {
        let n = y.len();
        let body = n / 8 * 8;
        let (w, s, r) = (
            _mm256_set1_ps(count),
            _mm256_set1_ps(scale),
            _mm256_set1_ps(step),
        );
        // The new row's dot with itself (for estimates: fused, in any order), while its values
        // are in registers; four accumulators, as the next estimate waits on this sum.
        let mut update = |i: usize| {
            // SAFETY (loads/stores): callers pass i + 8 <= body <= n, inside both slices.
            let p = c.as_mut_ptr().add(i);
            let v = _mm256_mul_ps(
                _mm256_fmadd_ps(
                    _mm256_loadu_ps(p),
                    w,
                    _mm256_mul_ps(_mm256_loadu_ps(y.as_ptr().add(i)), s),
                ),
                r,
            );
            _mm256_storeu_ps(p, v);
            v
        };
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= body {
            for (u, a) in acc.iter_mut().enumerate() {
                let v = update(i + 8 * u);
                *a = _mm256_fmadd_ps(v, v, *a);
            }
            i += 32;
        }
        while i < body {
            let v = update(i);
            acc[0] = _mm256_fmadd_ps(v, v, acc[0]);
            i += 8;
        }
        let mut norm = hsum(_mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        ));
        for (a, b) in c[body..].iter_mut().zip(&y[body..]) {
            *a = a.mul_add(count, b * scale) * step;
            norm += *a * *a;
        }
        norm
    }
}

/// The AVX2+FMA kernel set was chosen for this CPU (`VECINDEX_SIMD=scalar` forces the scalar
/// code here too; both give the same bits).
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    crate::kernels::kernels().name != "scalar"
}

#[inline]
fn reduce_rows<const OP: u8, const R: usize>(y: &[f32], rows: [&[f32]; R]) -> [f32; R] {
    assert!(rows.iter().all(|r| r.len() == y.len()));
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 and FMA were detected on this CPU; the body only indexes slices.
        return unsafe { avx2::reduce_rows::<OP, R>(y, rows) };
    }
    reduce_rows_body::<OP, R>(y, rows)
}

/// annoy's inner product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    reduce_rows::<DOT, 1>(b, [a])[0]
}

/// `[dot(p, y), dot(q, y)]`, each exactly as [`dot`], loading `y` once.
#[inline]
pub fn dot_x2(p: &[f32], q: &[f32], y: &[f32]) -> [f32; 2] {
    reduce_rows::<DOT, 2>(y, [p, q])
}

/// `dot(v, r[i])` for four rows, each exactly as [`dot`].
#[inline]
pub fn dot_x4(v: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    reduce_rows::<DOT, 4>(v, r)
}

/// annoy's squared Euclidean distances `[|p − y|², |q − y|²]` (`dot`'s order, on differences).
#[inline]
pub fn l2sq_x2(p: &[f32], q: &[f32], y: &[f32]) -> [f32; 2] {
    reduce_rows::<L2, 2>(y, [p, q])
}

/// annoy's Manhattan distances `[|p − y|₁, |q − y|₁]` (8 lanes, the same reduction).
#[inline]
pub fn l1_x2(p: &[f32], q: &[f32], y: &[f32]) -> [f32; 2] {
    reduce_rows::<L1, 2>(y, [p, q])
}

#[inline]
fn estimate_rows<const OP: u8, const R: usize>(y: &[f32], rows: [&[f32]; R]) -> [f32; R] {
    assert!(rows.iter().all(|r| r.len() == y.len()));
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 and FMA were detected on this CPU; lengths checked above.
        return unsafe { avx2::estimate_rows::<OP, R>(y, rows) };
    }
    reduce_rows_body::<OP, R>(y, rows)
}

/// [`dot_x2`], [`l2sq_x2`] or [`l1_x2`] (by `OP`, one of the `EST_*` kinds) summed in any
/// order, faster: for estimates whose error the caller bounds by `(d + 16)·2⁻²⁴` times the sum
/// of the terms' magnitudes (per sum), falling back to the exact ones where that could matter.
#[inline]
pub fn estimate_x2<const OP: u8>(p: &[f32], q: &[f32], y: &[f32]) -> [f32; 2] {
    estimate_rows::<OP, 2>(y, [p, q])
}

/// Reduction kinds for [`estimate_x2`].
pub const EST_DOT: u8 = DOT;
/// [`estimate_x2`] kind for the squared Euclidean distances `[|p − y|², |q − y|²]`.
pub const EST_L2: u8 = L2;
/// [`estimate_x2`] kind for the Manhattan distances `[|p − y|₁, |q − y|₁]`.
pub const EST_L1: u8 = L1;

/// annoy's two-means step `c = (c·count + y·scale) · step` (exact); returns `dot(c, c)` summed
/// in any order (an estimate's input, see [`estimate_x2`]).
#[inline]
pub fn mean_step(c: &mut [f32], y: &[f32], count: f32, scale: f32, step: f32) -> f32 {
    assert_eq!(c.len(), y.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 and FMA were detected on this CPU; the body only indexes slices.
        return unsafe { avx2::mean_step(c, y, count, scale, step) };
    }
    mean_step_body(c, y, count, scale, step)
}

/// The CPU's reciprocal square root estimate (`rsqrtss`): its bits are the CPU's own, the same
/// ones annoy gets on this machine. `None` off x86-64.
#[inline]
fn rsqrt_estimate(x: f32) -> Option<f32> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_cvtss_f32, _mm_rsqrt_ss, _mm_set_ss};
        // SAFETY: SSE is part of the x86-64 baseline; the intrinsics only touch registers.
        Some(unsafe { _mm_cvtss_f32(_mm_rsqrt_ss(_mm_set_ss(x))) })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = x;
        None
    }
}

/// annoy's `1/sqrt(x)` for x > 0: the estimate refined by one Newton step, as GCC's
/// `-ffast-math` emits it. Elsewhere than x86-64, `1/sqrt(x)`.
#[inline]
pub fn rsqrt(x: f32) -> f32 {
    match rsqrt_estimate(x) {
        Some(y) => (x * y).mul_add(y, -3.0) * (y * -0.5),
        None => 1.0 / x.sqrt(),
    }
}

/// annoy's `normalize`: `v · (1/sqrt(dot(v, v)))` when that dot is positive.
pub fn normalize(v: &mut [f32]) {
    let d = dot(v, v);
    if d > 0.0 {
        let s = rsqrt(d);
        v.iter_mut().for_each(|x| *x *= s);
    }
}

/// annoy's dot-metric `normalize` over `(v, df)` jointly: the norm in f64 from the f32 dot,
/// rounded to f32; `v` is scaled by its f32 reciprocal, `df` divided by it.
pub fn normalize_with_factor(v: &mut [f32], df: &mut f32) {
    let norm = (dot(v, v) as f64 + *df as f64 * *df as f64).sqrt() as f32;
    if norm > 0.0 {
        let s = 1.0 / norm;
        v.iter_mut().for_each(|x| *x *= s);
        *df /= norm;
    }
}

/// annoy's `sqrt` where GCC vectorised it four at a time: `x · rsqrt(x)` with one Newton step,
/// `(y·t − 3) · (−0.5·t)` for `t = x·y` (0 for x = 0).
fn sqrt_by_rsqrt(x: f32) -> f32 {
    if x == 0.0 {
        return 0.0;
    }
    match rsqrt_estimate(x) {
        Some(y) => {
            let t = x * y;
            y.mul_add(t, -3.0) * (t * -0.5)
        }
        None => x.sqrt(),
    }
}

/// annoy's dot-metric preprocessing from the items' squared norms `dot(v, v)`: the
/// `dot_factor` of each item, `sqrt(M² − |v|²)` with `M` the largest norm (0 if negative).
/// `M² − |v|²` is one fused operation; for more than 42 items the square roots of the first
/// `n − n % 4` items are the vectorised `x · rsqrt(x)` form, the rest exact.
pub fn dot_factors(sq_norms: &[f32]) -> Vec<f32> {
    let norms: Vec<f32> = sq_norms
        .iter()
        .map(|&d| if d >= 0.0 { d.sqrt() } else { 0.0 })
        .collect();
    let m = norms.iter().fold(0.0f32, |m, &x| if m > x { m } else { x });
    let m2 = m * m;
    let n = norms.len();
    let vectorised = if n > 42 { n / 4 * 4 } else { 0 };
    norms
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let x = (-v).mul_add(v, m2);
            if x.is_nan() || x < 0.0 {
                0.0
            } else if i < vectorised {
                sqrt_by_rsqrt(x)
            } else {
                x.sqrt()
            }
        })
        .collect()
}

/// annoy's angular two-means distance from squared norms `pp`, `qq` and `pq`: computed in
/// f64 from the f32 `sqrt(pp·qq)` (annoy's `2.0` literals are doubles), rounded to f32.
#[inline]
pub fn angular_distance(pq: f32, pp: f32, qq: f32) -> f32 {
    let ppqq = pp * qq;
    if ppqq > 0.0 {
        (2.0 - (2.0 * pq as f64) / (ppqq.sqrt() as f64)) as f32
    } else {
        2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The order written out by hand, one rounding per operation.
    fn reference_dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let body = n / 8 * 8;
        let mut s = 0.0f32;
        if n > 7 {
            let mut lanes = [0.0f32; 8];
            for i in 0..body {
                let p = a[i] * b[i];
                lanes[i % 8] += p;
            }
            let m: Vec<f32> = (0..4).map(|l| lanes[l] + lanes[l + 4]).collect();
            s += (m[0] + m[2]) + (m[1] + m[3]);
        }
        let mut i = body;
        if n - body >= 4 {
            let p: Vec<f32> = (body..body + 4).map(|j| a[j] * b[j]).collect();
            for x in p {
                s += x;
            }
            i += 4;
        }
        while i < n {
            s = a[i].mul_add(b[i], s);
            i += 1;
        }
        s
    }

    #[test]
    fn dot_follows_annoys_order_for_every_length() {
        for n in 0..70 {
            let (a, b) = (values(n, 1 + n as u32), values(n, 100 + n as u32));
            let want = reference_dot(&a, &b);
            assert_eq!(dot(&a, &b).to_bits(), want.to_bits(), "n={n}");
            assert_eq!(dot_body(&a, &b).to_bits(), want.to_bits(), "scalar n={n}");
            let c = values(n, 7);
            let two = dot_x2(&a, &c, &b);
            assert_eq!(two[0].to_bits(), want.to_bits());
            assert_eq!(two[1].to_bits(), dot(&c, &b).to_bits());
            let four = dot_x4(&b, [&a, &c, &a, &b]);
            assert_eq!(four[0].to_bits(), want.to_bits());
            assert_eq!(four[3].to_bits(), dot(&b, &b).to_bits());
        }
    }

    #[test]
    fn estimates_stay_within_the_documented_bound() {
        for n in 0..100 {
            let (p, q, y) = (values(n, 3), values(n, 4), values(n, 5));
            let gamma = (n as f64 + 16.0) * 2f64.powi(-24);
            let check = |got: [f32; 2], term: &dyn Fn(f32, f32) -> f64, what: &str| {
                for (g, r) in got.iter().zip([&p, &q]) {
                    let exact: f64 = r.iter().zip(&y).map(|(a, b)| term(*a, *b)).sum();
                    let mag: f64 = r.iter().zip(&y).map(|(a, b)| term(*a, *b).abs()).sum();
                    assert!(
                        (*g as f64 - exact).abs() <= gamma * mag + 1e-30,
                        "{what} n={n}: {g} vs {exact}"
                    );
                }
            };
            check(
                estimate_x2::<EST_DOT>(&p, &q, &y),
                &|a, b| a as f64 * b as f64,
                "dot",
            );
            check(
                estimate_x2::<EST_L2>(&p, &q, &y),
                &|a, b| ((a - b) as f64).powi(2),
                "l2",
            );
            check(
                estimate_x2::<EST_L1>(&p, &q, &y),
                &|a, b| ((a - b) as f64).abs(),
                "l1",
            );
        }
    }

    #[test]
    fn mean_step_fuses_the_first_product_and_returns_the_new_norm() {
        for n in [3, 8, 13, 64] {
            let y = values(n, 5);
            let mut c = values(n, 6);
            let want: Vec<f32> = c
                .iter()
                .zip(&y)
                .map(|(a, b)| a.mul_add(3.0, b * 0.7) * 0.25)
                .collect();
            let norm = mean_step(&mut c, &y, 3.0, 0.7, 0.25);
            assert_eq!(c, want);
            let exact = dot(&want, &want);
            assert!((norm - exact).abs() <= 1e-6 * exact, "{norm} vs {exact}");
            let mut c2 = values(n, 6);
            mean_step_body(&mut c2, &y, 3.0, 0.7, 0.25);
            assert_eq!(c2, want);
        }
    }

    #[test]
    fn rsqrt_is_within_float_rounding_of_the_exact_value() {
        for x in [1e-30f32, 0.3, 1.0, 2.0, 85.571, 1e30] {
            let exact = 1.0 / (x as f64).sqrt();
            let rel = ((rsqrt(x) as f64 - exact) / exact).abs();
            assert!(rel < 1e-6, "x={x}: {rel}");
        }
    }

    #[test]
    fn angular_distance_rounds_once_from_f64() {
        let (pq, pp, qq) = (0.3f32, 1.1f32, 0.9f32);
        let want = (2.0 - 2.0 * pq as f64 / ((pp * qq).sqrt() as f64)) as f32;
        assert_eq!(angular_distance(pq, pp, qq), want);
        assert_eq!(angular_distance(1.0, 0.0, 1.0), 2.0);
    }
}
