//! faiss's 16-lane unit in one AVX-512 register (see the parent module).

use super::SqCodec;
use std::arch::x86_64::*;

/// faiss's tree over 16 lanes: fold to 8 (`l_j + l_{j+8}`), then the 8-lane tree.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn tree16(v: __m512) -> f32 {
    let lo = _mm512_castps512_ps256(v);
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    crate::kernels::x86::hsum(_mm256_add_ps(lo, hi))
}

/// Components `i..i + 16` of a code as the kernels decode them (`FP16`: halves, else SQ8).
/// Caller guarantees `i + 16 <= d` for the code and ranges, and AVX-512F.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn decode16<const FP16: bool>(code: &[u8], vmin: &[f32], vdiff: &[f32], i: usize) -> __m512 {
    if FP16 {
        _mm512_cvtph_ps(_mm256_loadu_si256(
            code.as_ptr().add(2 * i) as *const __m256i
        ))
    } else {
        let c = _mm_loadu_si128(code.as_ptr().add(i) as *const __m128i);
        let cf = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c));
        let u = _mm512_fmadd_ps(
            cf,
            _mm512_set1_ps(1.0f32 / 255.0),
            _mm512_set1_ps(0.5f32 / 255.0),
        );
        _mm512_fmadd_ps(
            u,
            _mm512_loadu_ps(vdiff.as_ptr().add(i)),
            _mm512_loadu_ps(vmin.as_ptr().add(i)),
        )
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn term<const L2: bool>(acc: __m512, q: &[f32], x: __m512, i: usize) -> __m512 {
    let qv = _mm512_loadu_ps(q.as_ptr().add(i));
    if L2 {
        let t = _mm512_sub_ps(qv, x);
        _mm512_fmadd_ps(t, t, acc)
    } else {
        _mm512_fmadd_ps(qv, x, acc)
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn four<const L2: bool, const FP16: bool>(
    q: &[f32],
    codes: [&[u8]; 4],
    vmin: &[f32],
    vdiff: &[f32],
) -> [f32; 4] {
    let mut a = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i < q.len() {
        for t in 0..4 {
            a[t] = term::<L2>(a[t], q, decode16::<FP16>(codes[t], vmin, vdiff, i), i);
        }
        i += 16;
    }
    // A loop, not `map`: a closure would not inherit the target features (no inlining).
    let mut out = [0.0f32; 4];
    for t in 0..4 {
        out[t] = tree16(a[t]);
    }
    out
}

#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn one<const L2: bool, const FP16: bool>(
    q: &[f32],
    code: &[u8],
    vmin: &[f32],
    vdiff: &[f32],
) -> f32 {
    let mut a = _mm512_setzero_ps();
    let mut i = 0;
    while i < q.len() {
        a = term::<L2>(a, q, decode16::<FP16>(code, vmin, vdiff, i), i);
        i += 16;
    }
    tree16(a)
}

#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn scan_of<const L2: bool, const FP16: bool>(
    q: &[f32],
    codes: &[u8],
    cs: usize,
    vmin: &[f32],
    vdiff: &[f32],
    out: &mut [f32],
) {
    let n = out.len();
    let code = |j: usize| &codes[j * cs..(j + 1) * cs];
    let mut j = 0;
    while j + 4 <= n {
        let d = four::<L2, FP16>(
            q,
            [code(j), code(j + 1), code(j + 2), code(j + 3)],
            vmin,
            vdiff,
        );
        out[j..j + 4].copy_from_slice(&d);
        j += 4;
    }
    while j < n {
        out[j] = one::<L2, FP16>(q, code(j), vmin, vdiff);
        j += 1;
    }
}

#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn four_of<const L2: bool, const FP16: bool>(
    q: &[f32],
    codes: [&[u8]; 4],
    vmin: &[f32],
    vdiff: &[f32],
) -> [f32; 4] {
    four::<L2, FP16>(q, codes, vmin, vdiff)
}

#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn one_of<const L2: bool, const FP16: bool>(
    q: &[f32],
    code: &[u8],
    vmin: &[f32],
    vdiff: &[f32],
) -> f32 {
    one::<L2, FP16>(q, code, vmin, vdiff)
}

/// Four codes, as [`scan`] computes each; same guarantees.
pub(super) unsafe fn distance4(
    q: &[f32],
    codec: SqCodec<'_>,
    codes: [&[u8]; 4],
    l2: bool,
) -> [f32; 4] {
    match (codec, l2) {
        (SqCodec::Sq8 { vmin, vdiff }, true) => four_of::<true, false>(q, codes, vmin, vdiff),
        (SqCodec::Sq8 { vmin, vdiff }, false) => four_of::<false, false>(q, codes, vmin, vdiff),
        (_, true) => four_of::<true, true>(q, codes, &[], &[]),
        (_, false) => four_of::<false, true>(q, codes, &[], &[]),
    }
}

/// One code, as [`scan`] computes it; same guarantees.
pub(super) unsafe fn distance(q: &[f32], codec: SqCodec<'_>, code: &[u8], l2: bool) -> f32 {
    match (codec, l2) {
        (SqCodec::Sq8 { vmin, vdiff }, true) => one_of::<true, false>(q, code, vmin, vdiff),
        (SqCodec::Sq8 { vmin, vdiff }, false) => one_of::<false, false>(q, code, vmin, vdiff),
        (_, true) => one_of::<true, true>(q, code, &[], &[]),
        (_, false) => one_of::<false, true>(q, code, &[], &[]),
    }
}

/// Distances of `q` (length a multiple of 16) to `out.len()` consecutive SQ8 or fp16 codes
/// of `cs` bytes. Caller guarantees that length, that every code and the ranges hold
/// `q.len()` components, and AVX-512F + AVX2 + FMA (+ F16C for fp16).
pub(super) unsafe fn scan(
    q: &[f32],
    codec: SqCodec<'_>,
    codes: &[u8],
    cs: usize,
    out: &mut [f32],
    l2: bool,
) {
    match (codec, l2) {
        (SqCodec::Sq8 { vmin, vdiff }, true) => {
            scan_of::<true, false>(q, codes, cs, vmin, vdiff, out)
        }
        (SqCodec::Sq8 { vmin, vdiff }, false) => {
            scan_of::<false, false>(q, codes, cs, vmin, vdiff, out)
        }
        (_, true) => scan_of::<true, true>(q, codes, cs, &[], &[], out),
        (_, false) => scan_of::<false, true>(q, codes, cs, &[], &[], out),
    }
}
