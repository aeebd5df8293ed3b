//! The SIMD units of faiss's kernels with AVX2 intrinsics (see the parent module).

use super::SqCodec;
use std::arch::x86_64::*;

const SQ8: u8 = 0;
const FP16: u8 = 1;
const FLOAT: u8 = 2;

/// The slices a kind's decode reads: codes, SQ8 ranges, or decoded floats.
#[derive(Clone, Copy)]
struct Src<'a> {
    code: &'a [u8],
    vmin: &'a [f32],
    vdiff: &'a [f32],
    floats: &'a [f32],
}

impl<'a> Src<'a> {
    fn new(codec: SqCodec<'a>, code: &'a [u8], floats: &'a [f32]) -> (u8, Self) {
        let (kind, vmin, vdiff): (u8, &[f32], &[f32]) = match codec {
            SqCodec::Sq8 { vmin, vdiff } => (SQ8, vmin, vdiff),
            SqCodec::Fp16 => (FP16, &[], &[]),
            SqCodec::Float => (FLOAT, &[], &[]),
        };
        (
            kind,
            Src {
                code,
                vmin,
                vdiff,
                floats,
            },
        )
    }
}

/// faiss's tree over 8 lanes: `(h0+h4 + h2+h6) + (h1+h5 + h3+h7)`.
use crate::kernels::x86::hsum as tree8;

/// Components `i..i + 8` as the kernels decode them. Caller guarantees `i + 8 <= d` for
/// the kind's slices and the CPU features of [`distance`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn decode8<const KIND: u8>(s: Src<'_>, i: usize) -> __m256 {
    if KIND == SQ8 {
        let c = _mm_loadl_epi64(s.code.as_ptr().add(i) as *const __m128i);
        let cf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c));
        let u = _mm256_fmadd_ps(
            cf,
            _mm256_set1_ps(1.0f32 / 255.0),
            _mm256_set1_ps(0.5f32 / 255.0),
        );
        _mm256_fmadd_ps(
            u,
            _mm256_loadu_ps(s.vdiff.as_ptr().add(i)),
            _mm256_loadu_ps(s.vmin.as_ptr().add(i)),
        )
    } else if KIND == FP16 {
        _mm256_cvtph_ps(_mm_loadu_si128(s.code.as_ptr().add(2 * i) as *const __m128i))
    } else {
        _mm256_loadu_ps(s.floats.as_ptr().add(i))
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn term<const L2: bool>(acc: __m256, q: &[f32], x: __m256, i: usize) -> __m256 {
    let qv = _mm256_loadu_ps(q.as_ptr().add(i));
    if L2 {
        let t = _mm256_sub_ps(qv, x);
        _mm256_fmadd_ps(t, t, acc)
    } else {
        _mm256_fmadd_ps(qv, x, acc)
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn distance_of<const L2: bool, const KIND: u8>(q: &[f32], s: Src<'_>) -> f32 {
    let d = q.len();
    if d.is_multiple_of(16) {
        let (mut a, mut b) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i < d {
            a = term::<L2>(a, q, decode8::<KIND>(s, i), i);
            b = term::<L2>(b, q, decode8::<KIND>(s, i + 8), i + 8);
            i += 16;
        }
        tree8(_mm256_add_ps(a, b))
    } else {
        let mut a = _mm256_setzero_ps();
        let mut i = 0;
        while i < d {
            a = term::<L2>(a, q, decode8::<KIND>(s, i), i);
            i += 8;
        }
        tree8(a)
    }
}

/// faiss's SQ distance for `q.len()` a multiple of 8. Caller guarantees that multiple,
/// that the codes, ranges or floats hold `q.len()` components, and AVX2 + FMA (+ F16C for
/// fp16 codes; the fp16 loads are the only F16C instructions executed).
#[inline]
pub(super) unsafe fn distance<const L2: bool>(
    q: &[f32],
    codec: SqCodec<'_>,
    code: &[u8],
    floats: &[f32],
) -> f32 {
    let (kind, s) = Src::new(codec, code, floats);
    match kind {
        SQ8 => distance_of::<L2, SQ8>(q, s),
        FP16 => distance_of::<L2, FP16>(q, s),
        _ => distance_of::<L2, FLOAT>(q, s),
    }
}

/// Four codes against one query: the same per-code order as [`distance_of`], four times
/// interleaved so the FMA chains overlap.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn distance4_of<const L2: bool, const KIND: u8>(q: &[f32], s: [Src<'_>; 4]) -> [f32; 4] {
    let d = q.len();
    let mut a = [_mm256_setzero_ps(); 4];
    let mut out = [0.0f32; 4];
    if d.is_multiple_of(16) {
        let mut b = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i < d {
            for j in 0..4 {
                a[j] = term::<L2>(a[j], q, decode8::<KIND>(s[j], i), i);
                b[j] = term::<L2>(b[j], q, decode8::<KIND>(s[j], i + 8), i + 8);
            }
            i += 16;
        }
        for j in 0..4 {
            out[j] = tree8(_mm256_add_ps(a[j], b[j]));
        }
    } else {
        let mut i = 0;
        while i < d {
            for j in 0..4 {
                a[j] = term::<L2>(a[j], q, decode8::<KIND>(s[j], i), i);
            }
            i += 8;
        }
        for j in 0..4 {
            out[j] = tree8(a[j]);
        }
    }
    out
}

/// [`distance`] for four codes of the same codec.
#[inline]
pub(super) unsafe fn distance4<const L2: bool>(
    q: &[f32],
    codec: SqCodec<'_>,
    codes: [&[u8]; 4],
) -> [f32; 4] {
    let src = codes.map(|c| Src::new(codec, c, &[]).1);
    match Src::new(codec, codes[0], &[]).0 {
        SQ8 => distance4_of::<L2, SQ8>(q, src),
        FP16 => distance4_of::<L2, FP16>(q, src),
        _ => distance4_of::<L2, FLOAT>(q, src),
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scan_of<const L2: bool, const KIND: u8>(
    q: &[f32],
    codec: SqCodec<'_>,
    codes: &[u8],
    cs: usize,
    out: &mut [f32],
) {
    let src = |j: usize| Src::new(codec, &codes[j * cs..(j + 1) * cs], &[]).1;
    let n = out.len();
    let mut j = 0;
    while j + 4 <= n {
        let d = distance4_of::<L2, KIND>(q, [src(j), src(j + 1), src(j + 2), src(j + 3)]);
        out[j..j + 4].copy_from_slice(&d);
        j += 4;
    }
    while j < n {
        out[j] = distance_of::<L2, KIND>(q, src(j));
        j += 1;
    }
}

/// Distances of `q` to `out.len()` consecutive codes of `cs` bytes; same guarantees as
/// [`distance`] for every code.
pub(super) unsafe fn scan<const L2: bool>(
    q: &[f32],
    codec: SqCodec<'_>,
    codes: &[u8],
    cs: usize,
    out: &mut [f32],
) {
    match Src::new(codec, &[], &[]).0 {
        SQ8 => scan_of::<L2, SQ8>(q, codec, codes, cs, out),
        FP16 => scan_of::<L2, FP16>(q, codec, codes, cs, out),
        _ => scan_of::<L2, FLOAT>(q, codec, codes, cs, out),
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn decode_of<const KIND: u8>(s: Src<'_>, out: &mut [f32]) {
    let mut i = 0;
    while i + 8 <= out.len() {
        _mm256_storeu_ps(out.as_mut_ptr().add(i), decode8::<KIND>(s, i));
        i += 8;
    }
}

/// Decodes `out.len()` (a multiple of 8) components; same guarantees as [`distance`].
pub(super) unsafe fn decode(codec: SqCodec<'_>, code: &[u8], out: &mut [f32]) {
    let (kind, s) = Src::new(codec, code, &[]);
    match kind {
        SQ8 => decode_of::<SQ8>(s, out),
        FP16 => decode_of::<FP16>(s, out),
        _ => decode_of::<FLOAT>(s, out),
    }
}
