//! AVX2 + FMA kernels for x86-64, used only after run-time detection.

use super::Kernels;
use std::arch::x86_64::*;

/// The AVX2+FMA kernel set, if this CPU has both features.
pub(super) fn detect() -> Option<Kernels> {
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        let f16c = is_x86_feature_detected!("f16c");
        Some(Kernels {
            name: "avx2+fma",
            dot: dot_entry,
            l2sq: l2sq_entry,
            scan_dot: scan_dot_entry,
            scan_l2: scan_l2_entry,
            norms: norms_entry,
            l2sq_x4: l2sq_x4_entry,
            dot_x4: dot_x4_entry,
            f16_encode: f16c.then_some(f16_encode_entry as super::F16Encode),
            dot_x4_f16: f16c.then_some(dot_x4_f16_entry as super::F16DotX4),
        })
    } else {
        None
    }
}

// The entry points below are only ever stored in a `Kernels` built by `detect()`, i.e. after
// AVX2 and FMA were detected on this CPU; that is what makes calling the
// `#[target_feature]` functions sound.

fn dot_entry(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    // SAFETY: AVX2+FMA detected (see detect()); lengths checked equal above.
    unsafe { dot(a, b) }
}

fn l2sq_entry(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    // SAFETY: AVX2+FMA detected (see detect()); lengths checked equal above.
    unsafe { l2sq(a, b) }
}

fn scan_dot_entry(q: &[f32], data: &[f32], out: &mut [f32]) {
    assert_eq!(data.len(), q.len() * out.len());
    // SAFETY: AVX2+FMA detected (see detect()); every row slice has q.len() values (checked above).
    unsafe { scan_dot(q, data, out) }
}

fn scan_l2_entry(q: &[f32], data: &[f32], out: &mut [f32]) {
    assert_eq!(data.len(), q.len() * out.len());
    // SAFETY: AVX2+FMA detected (see detect()); every row slice has q.len() values (checked above).
    unsafe { scan_l2(q, data, out) }
}

fn norms_entry(data: &[f32], dim: usize, out: &mut [f32]) {
    assert_eq!(data.len(), dim * out.len());
    // SAFETY: AVX2+FMA detected (see detect()); rows have `dim` values (checked above).
    unsafe { norms(data, dim, out) }
}

fn l2sq_x4_entry(q: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    assert!(r.iter().all(|x| x.len() == q.len()));
    // SAFETY: AVX2+FMA detected (see detect()); all four rows have q.len() values (checked above).
    unsafe { x4::<true>(q, r) }
}

fn dot_x4_entry(q: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    assert!(r.iter().all(|x| x.len() == q.len()));
    // SAFETY: AVX2+FMA detected (see detect()); all four rows have q.len() values (checked above).
    unsafe { x4::<false>(q, r) }
}

// Only stored by `detect()` when F16C was detected too.
fn f16_encode_entry(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len());
    // SAFETY: AVX2 and F16C detected (see detect()); lengths checked equal above.
    unsafe { f16_encode(src, dst) }
}

// Only stored by `detect()` when F16C was detected too.
fn dot_x4_f16_entry(q: &[f32], r: [&[u16]; 4]) -> [f32; 4] {
    assert!(r.iter().all(|x| x.len() == q.len()));
    // SAFETY: AVX2, FMA and F16C detected (see detect()); all four rows have q.len() values.
    unsafe { dot_x4_f16(q, r) }
}

/// Caller guarantees equal lengths, AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
unsafe fn f16_encode(src: &[f32], dst: &mut [u16]) {
    let n = src.len();
    let mut i = 0;
    // SAFETY (loads/stores): i + 8 <= n, inside both slices.
    while i + 8 <= n {
        let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(src.as_ptr().add(i)));
        _mm_storeu_si128(dst.as_mut_ptr().add(i) as *mut __m128i, h);
        i += 8;
    }
    if i < n {
        let mut pad = [0.0f32; 8];
        pad[..n - i].copy_from_slice(&src[i..]);
        let mut out = [0u16; 8];
        let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(pad.as_ptr()));
        _mm_storeu_si128(out.as_mut_ptr() as *mut __m128i, h);
        dst[i..].copy_from_slice(&out[..n - i]);
    }
}

/// Eight binary16 values widened to f32; `p` must have 8 readable values.
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn load_f16x8(p: *const u16) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
}

/// `x4::<false>` over binary16 rows. Caller guarantees equal lengths, AVX2, FMA and F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_x4_f16(q: &[f32], r: [&[u16]; 4]) -> [f32; 4] {
    let n = q.len();
    let pq = q.as_ptr();
    let p = [r[0].as_ptr(), r[1].as_ptr(), r[2].as_ptr(), r[3].as_ptr()];
    let mut a = [_mm256_setzero_ps(); 4];
    let mut b = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (loads): i + 16 <= n or i + 8 <= n, inside the query and every row.
    while i + 16 <= n {
        let q0 = _mm256_loadu_ps(pq.add(i));
        let q1 = _mm256_loadu_ps(pq.add(i + 8));
        for j in 0..4 {
            a[j] = _mm256_fmadd_ps(q0, load_f16x8(p[j].add(i)), a[j]);
            b[j] = _mm256_fmadd_ps(q1, load_f16x8(p[j].add(i + 8)), b[j]);
        }
        i += 16;
    }
    while i + 8 <= n {
        let q0 = _mm256_loadu_ps(pq.add(i));
        for j in 0..4 {
            a[j] = _mm256_fmadd_ps(q0, load_f16x8(p[j].add(i)), a[j]);
        }
        i += 8;
    }
    let mut out = [
        hsum(_mm256_add_ps(a[0], b[0])),
        hsum(_mm256_add_ps(a[1], b[1])),
        hsum(_mm256_add_ps(a[2], b[2])),
        hsum(_mm256_add_ps(a[3], b[3])),
    ];
    if i < n {
        for j in 0..4 {
            let mut pad = [0u16; 8];
            pad[..n - i].copy_from_slice(&r[j][i..]);
            let mut wide = [0.0f32; 8];
            _mm256_storeu_ps(wide.as_mut_ptr(), load_f16x8(pad.as_ptr()));
            for (t, w) in wide[..n - i].iter().enumerate() {
                out[j] += q[i + t] * w;
            }
        }
    }
    out
}

/// One query against four rows: each query load feeds four FMAs, and two accumulators per row
/// keep eight independent FMA chains in flight (enough to hide the FMA latency). Caller
/// guarantees equal lengths and AVX2+FMA.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn x4<const L2: bool>(q: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    let n = q.len();
    let pq = q.as_ptr();
    let p = [r[0].as_ptr(), r[1].as_ptr(), r[2].as_ptr(), r[3].as_ptr()];
    let mut a = [_mm256_setzero_ps(); 4];
    let mut b = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (loads): i + 16 <= n or i + 8 <= n, inside the query and every row.
    while i + 16 <= n {
        let q0 = _mm256_loadu_ps(pq.add(i));
        let q1 = _mm256_loadu_ps(pq.add(i + 8));
        for j in 0..4 {
            let x0 = _mm256_loadu_ps(p[j].add(i));
            let x1 = _mm256_loadu_ps(p[j].add(i + 8));
            if L2 {
                let d0 = _mm256_sub_ps(q0, x0);
                let d1 = _mm256_sub_ps(q1, x1);
                a[j] = _mm256_fmadd_ps(d0, d0, a[j]);
                b[j] = _mm256_fmadd_ps(d1, d1, b[j]);
            } else {
                a[j] = _mm256_fmadd_ps(q0, x0, a[j]);
                b[j] = _mm256_fmadd_ps(q1, x1, b[j]);
            }
        }
        i += 16;
    }
    while i + 8 <= n {
        let q0 = _mm256_loadu_ps(pq.add(i));
        for j in 0..4 {
            let x0 = _mm256_loadu_ps(p[j].add(i));
            a[j] = if L2 {
                let d0 = _mm256_sub_ps(q0, x0);
                _mm256_fmadd_ps(d0, d0, a[j])
            } else {
                _mm256_fmadd_ps(q0, x0, a[j])
            };
        }
        i += 8;
    }
    let mut out = [
        hsum(_mm256_add_ps(a[0], b[0])),
        hsum(_mm256_add_ps(a[1], b[1])),
        hsum(_mm256_add_ps(a[2], b[2])),
        hsum(_mm256_add_ps(a[3], b[3])),
    ];
    while i < n {
        for j in 0..4 {
            let x = r[j][i];
            out[j] += if L2 {
                (q[i] - x) * (q[i] - x)
            } else {
                q[i] * x
            };
        }
        i += 1;
    }
    out
}

/// Sum of 8 lanes by a fixed tree, `(v0+v4 + v2+v6) + (v1+v5 + v3+v7)` — also faiss's order
/// (`kernels::faiss_order` relies on it).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn hsum(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
    _mm_cvtss_f32(s)
}

/// Caller guarantees `a.len() == b.len()` and AVX2+FMA.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut acc2 = _mm256_setzero_ps();
    let mut acc3 = _mm256_setzero_ps();
    let mut i = 0;
    // SAFETY (all loads below): i + 32 <= n, or i + 8 <= n, so every 8-lane load is inside both slices.
    while i + 32 <= n {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
        acc1 = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i + 8)),
            _mm256_loadu_ps(pb.add(i + 8)),
            acc1,
        );
        acc2 = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i + 16)),
            _mm256_loadu_ps(pb.add(i + 16)),
            acc2,
        );
        acc3 = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i + 24)),
            _mm256_loadu_ps(pb.add(i + 24)),
            acc3,
        );
        i += 32;
    }
    while i + 8 <= n {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
        i += 8;
    }
    let mut s = hsum(_mm256_add_ps(
        _mm256_add_ps(acc0, acc1),
        _mm256_add_ps(acc2, acc3),
    ));
    while i < n {
        s += a[i] * b[i];
        i += 1;
    }
    s
}

/// Caller guarantees `a.len() == b.len()` and AVX2+FMA.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut acc2 = _mm256_setzero_ps();
    let mut acc3 = _mm256_setzero_ps();
    let mut i = 0;
    // SAFETY (all loads below): i + 32 <= n, or i + 8 <= n, so every 8-lane load is inside both slices.
    while i + 32 <= n {
        let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
        let d1 = _mm256_sub_ps(
            _mm256_loadu_ps(pa.add(i + 8)),
            _mm256_loadu_ps(pb.add(i + 8)),
        );
        let d2 = _mm256_sub_ps(
            _mm256_loadu_ps(pa.add(i + 16)),
            _mm256_loadu_ps(pb.add(i + 16)),
        );
        let d3 = _mm256_sub_ps(
            _mm256_loadu_ps(pa.add(i + 24)),
            _mm256_loadu_ps(pb.add(i + 24)),
        );
        acc0 = _mm256_fmadd_ps(d0, d0, acc0);
        acc1 = _mm256_fmadd_ps(d1, d1, acc1);
        acc2 = _mm256_fmadd_ps(d2, d2, acc2);
        acc3 = _mm256_fmadd_ps(d3, d3, acc3);
        i += 32;
    }
    while i + 8 <= n {
        let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
        acc0 = _mm256_fmadd_ps(d0, d0, acc0);
        i += 8;
    }
    let mut s = hsum(_mm256_add_ps(
        _mm256_add_ps(acc0, acc1),
        _mm256_add_ps(acc2, acc3),
    ));
    while i < n {
        let d = a[i] - b[i];
        s += d * d;
        i += 1;
    }
    s
}

/// Caller guarantees `data.len() == q.len() * out.len()` and AVX2+FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn scan_dot(q: &[f32], data: &[f32], out: &mut [f32]) {
    let dim = q.len();
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    for (o, row) in out.iter_mut().zip(data.chunks_exact(dim)) {
        *o = dot(q, row);
    }
}

/// Caller guarantees `data.len() == q.len() * out.len()` and AVX2+FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn scan_l2(q: &[f32], data: &[f32], out: &mut [f32]) {
    let dim = q.len();
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    for (o, row) in out.iter_mut().zip(data.chunks_exact(dim)) {
        *o = l2sq(q, row);
    }
}

/// Caller guarantees `data.len() == dim * out.len()` and AVX2+FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn norms(data: &[f32], dim: usize, out: &mut [f32]) {
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    for (o, row) in out.iter_mut().zip(data.chunks_exact(dim)) {
        *o = dot(row, row);
    }
}
