//! faiss 1.15.1's exact f32 summation orders (its AVX-512 build), where our results must be
//! faiss's bits: the scalar-quantizer distance kernels (decoded components accumulated in 16
//! FMA lanes when d is a multiple of 16, in 8 lanes when it is a multiple of 8, sequentially
//! without FMA otherwise) and the float kernels `fvec_L2sqr` / `fvec_inner_product` the refine
//! step uses (16 FMA lanes, a fold to 8, one more 8-block, then an FMA tail). Lanes are summed
//! by a fixed tree. `f32::mul_add` is exact on every target (hardware FMA where detected, a
//! correctly rounded fallback elsewhere). See docs/algorithms.md.

/// Sum of 8 lanes by faiss's tree: `s_j = h_j + h_{j+4}`, then `(s0 + s2) + (s1 + s3)`.
#[inline(always)]
fn tree8(h: &[f32; 8]) -> f32 {
    let s: [f32; 4] = std::array::from_fn(|j| h[j] + h[j + 4]);
    (s[0] + s[2]) + (s[1] + s[3])
}

/// How stored codes decode inside the distance kernels.
#[derive(Debug, Clone, Copy)]
pub enum SqCodec<'a> {
    /// `QT_8bit` with per-dimension `vmin` and `vdiff`.
    Sq8 {
        /// Range starts.
        vmin: &'a [f32],
        /// Range widths.
        vdiff: &'a [f32],
    },
    /// `QT_fp16` (exact conversion).
    Fp16,
    /// Plain f32 components (an already decoded vector, for code-to-code distances).
    Float,
}

/// Component `j` of `code` as the kernels decode it. SQ8 in the SIMD units (d a multiple of 8):
/// `u = fma(c, f32(1/255), f32(0.5/255))`, `x = fma(u, vdiff, vmin)`; in the scalar unit the
/// reconstruction formula `vmin + f32(((c + 0.5) / 255) · vdiff)`.
#[inline(always)]
fn component<const SIMD: bool>(codec: SqCodec<'_>, code: &[u8], floats: &[f32], j: usize) -> f32 {
    match codec {
        SqCodec::Sq8 { vmin, vdiff } => {
            let c = code[j] as f32;
            if SIMD {
                let u = c.mul_add(1.0f32 / 255.0, 0.5f32 / 255.0);
                u.mul_add(vdiff[j], vmin[j])
            } else {
                vmin[j] + ((c + 0.5) / 255.0) * vdiff[j]
            }
        }
        SqCodec::Fp16 => half_to_f32(u16::from_le_bytes([code[2 * j], code[2 * j + 1]])),
        SqCodec::Float => floats[j],
    }
}

#[inline(always)]
fn distance_portable<const L2: bool>(
    q: &[f32],
    codec: SqCodec<'_>,
    code: &[u8],
    floats: &[f32],
) -> f32 {
    let d = q.len();
    let term = |acc: f32, a: f32, b: f32| {
        if L2 {
            let t = a - b;
            t.mul_add(t, acc)
        } else {
            a.mul_add(b, acc)
        }
    };
    if d % 16 == 0 {
        let mut lane = [0.0f32; 16];
        for b in (0..d).step_by(16) {
            for j in 0..16 {
                lane[j] = term(
                    lane[j],
                    q[b + j],
                    component::<true>(codec, code, floats, b + j),
                );
            }
        }
        let h: [f32; 8] = std::array::from_fn(|j| lane[j] + lane[j + 8]);
        tree8(&h)
    } else if d % 8 == 0 {
        let mut lane = [0.0f32; 8];
        for b in (0..d).step_by(8) {
            for j in 0..8 {
                lane[j] = term(
                    lane[j],
                    q[b + j],
                    component::<true>(codec, code, floats, b + j),
                );
            }
        }
        tree8(&lane)
    } else {
        // Scalar unit: two roundings per term, no FMA.
        let mut acc = 0.0f32;
        for (j, &qj) in q.iter().enumerate() {
            let x = component::<false>(codec, code, floats, j);
            acc = if L2 {
                let t = qj - x;
                acc + t * t
            } else {
                acc + qj * x
            };
        }
        acc
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn distance_fma<const L2: bool>(
    q: &[f32],
    codec: SqCodec<'_>,
    code: &[u8],
    floats: &[f32],
) -> f32 {
    distance_portable::<L2>(q, codec, code, floats)
}

#[inline(always)]
fn fvec_portable<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    let d = a.len().min(b.len());
    let term = |acc: f32, x: f32, y: f32| {
        if L2 {
            let t = x - y;
            t.mul_add(t, acc)
        } else {
            x.mul_add(y, acc)
        }
    };
    let mut lane = [0.0f32; 16];
    let mut i = 0;
    while i + 16 <= d {
        for j in 0..16 {
            lane[j] = term(lane[j], a[i + j], b[i + j]);
        }
        i += 16;
    }
    let mut h: [f32; 8] = std::array::from_fn(|j| lane[j] + lane[j + 8]);
    if i + 8 <= d {
        for j in 0..8 {
            h[j] = term(h[j], a[i + j], b[i + j]);
        }
        i += 8;
    }
    let mut acc = tree8(&h);
    while i < d {
        acc = term(acc, a[i], b[i]);
        i += 1;
    }
    acc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fvec_fma<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    fvec_portable::<L2>(a, b)
}

/// faiss's `fvec_L2sqr` (`l2`) or `fvec_inner_product` of two equal-length rows, bit for bit.
pub fn fvec_distance(a: &[f32], b: &[f32], l2: bool) -> f32 {
    assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: AVX2 and FMA were detected on this CPU (has_fma), which is all the
        // target-feature function requires; it only reads the two equal-length slices.
        return unsafe {
            if l2 {
                fvec_fma::<true>(a, b)
            } else {
                fvec_fma::<false>(a, b)
            }
        };
    }
    if l2 {
        fvec_portable::<true>(a, b)
    } else {
        fvec_portable::<false>(a, b)
    }
}

fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *FMA.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn has_f16c() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static F16C: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *F16C.get_or_init(|| is_x86_feature_detected!("f16c"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn dispatch(q: &[f32], codec: SqCodec<'_>, code: &[u8], floats: &[f32], l2: bool) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_fma() && q.len() % 8 == 0 && (codec_is_sq8(codec) || has_f16c()) {
        // SAFETY: AVX2, FMA (has_fma) and, for fp16 codes, F16C (has_f16c) were detected on
        // this CPU, which is all the target-feature functions require; the callers checked
        // that `code` (or `floats`) and the ranges hold q.len() components.
        return unsafe {
            if l2 {
                x86::distance::<true>(q, codec, code, floats)
            } else {
                x86::distance::<false>(q, codec, code, floats)
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: AVX2 and FMA were detected on this CPU (has_fma), which is all the
        // target-feature function requires; it only reads the slices, in bounds of `q.len()`
        // components (checked by the callers).
        return unsafe {
            if l2 {
                distance_fma::<true>(q, codec, code, floats)
            } else {
                distance_fma::<false>(q, codec, code, floats)
            }
        };
    }
    if l2 {
        distance_portable::<true>(q, codec, code, floats)
    } else {
        distance_portable::<false>(q, codec, code, floats)
    }
}

fn codec_is_sq8(codec: SqCodec<'_>) -> bool {
    !matches!(codec, SqCodec::Fp16)
}

/// The SIMD units of faiss's kernels (d a multiple of 8) with AVX2 intrinsics: 16 lanes as two
/// 8-lane registers (lane j and lane j + 8), 8 lanes as one, the same decode and tree.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::SqCodec;
    use std::arch::x86_64::*;

    /// faiss's tree over 8 lanes: `(h0+h4 + h2+h6) + (h1+h5 + h3+h7)`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tree8(h: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(h);
        let hi = _mm256_extractf128_ps(h, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
        _mm_cvtss_f32(s)
    }

    /// Components `i..i + 8` as the kernels decode them. Caller guarantees `i + 8 <= d` for
    /// the codes (and ranges or floats) and the CPU features of [`distance`].
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn decode8(codec: SqCodec<'_>, code: &[u8], floats: &[f32], i: usize) -> __m256 {
        match codec {
            SqCodec::Sq8 { vmin, vdiff } => {
                let c = _mm_loadl_epi64(code.as_ptr().add(i) as *const __m128i);
                let cf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c));
                let u = _mm256_fmadd_ps(
                    cf,
                    _mm256_set1_ps(1.0f32 / 255.0),
                    _mm256_set1_ps(0.5f32 / 255.0),
                );
                _mm256_fmadd_ps(
                    u,
                    _mm256_loadu_ps(vdiff.as_ptr().add(i)),
                    _mm256_loadu_ps(vmin.as_ptr().add(i)),
                )
            }
            SqCodec::Fp16 => {
                _mm256_cvtph_ps(_mm_loadu_si128(code.as_ptr().add(2 * i) as *const __m128i))
            }
            SqCodec::Float => _mm256_loadu_ps(floats.as_ptr().add(i)),
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

    /// faiss's SQ distance for `q.len()` a multiple of 8. Caller guarantees that multiple,
    /// that the codes, ranges or floats hold `q.len()` components, and AVX2 + FMA (+ F16C for
    /// fp16 codes; the fp16 loads are the only F16C instructions executed).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn distance<const L2: bool>(
        q: &[f32],
        codec: SqCodec<'_>,
        code: &[u8],
        floats: &[f32],
    ) -> f32 {
        let d = q.len();
        if d % 16 == 0 {
            let (mut a, mut b) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut i = 0;
            while i < d {
                a = term::<L2>(a, q, decode8(codec, code, floats, i), i);
                b = term::<L2>(b, q, decode8(codec, code, floats, i + 8), i + 8);
                i += 16;
            }
            tree8(_mm256_add_ps(a, b))
        } else {
            let mut a = _mm256_setzero_ps();
            let mut i = 0;
            while i < d {
                a = term::<L2>(a, q, decode8(codec, code, floats, i), i);
                i += 8;
            }
            tree8(a)
        }
    }

    /// Decodes `out.len()` (a multiple of 8) components; same guarantees as [`distance`].
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn decode(codec: SqCodec<'_>, code: &[u8], out: &mut [f32]) {
        let mut i = 0;
        while i + 8 <= out.len() {
            _mm256_storeu_ps(out.as_mut_ptr().add(i), decode8(codec, code, &[], i));
            i += 8;
        }
    }
}

fn code_len(codec: SqCodec<'_>, d: usize) -> usize {
    match codec {
        SqCodec::Sq8 { .. } => d,
        SqCodec::Fp16 => 2 * d,
        SqCodec::Float => 0,
    }
}

/// faiss's distance between float query `q` and one stored `code`: squared L2 when `l2`,
/// else the inner product, on the kernel-decoded components. `f32::mul_add` is exact on every
/// target (hardware FMA where detected, a correctly rounded fallback elsewhere).
#[inline]
pub fn sq_distance(q: &[f32], codec: SqCodec<'_>, code: &[u8], l2: bool) -> f32 {
    assert!(code.len() >= code_len(codec, q.len()));
    if let SqCodec::Sq8 { vmin, vdiff } = codec {
        assert!(vmin.len() >= q.len() && vdiff.len() >= q.len());
    }
    assert!(!matches!(codec, SqCodec::Float));
    dispatch(q, codec, code, &[], l2)
}

/// Decodes `code` into `out` the way the kernels see it (for code-to-code distances).
pub fn sq_decode_kernel(codec: SqCodec<'_>, code: &[u8], out: &mut [f32]) {
    let d = out.len();
    assert!(code.len() >= code_len(codec, d));
    if let SqCodec::Sq8 { vmin, vdiff } = codec {
        assert!(vmin.len() >= d && vdiff.len() >= d);
    }
    assert!(!matches!(codec, SqCodec::Float));
    let simd = d % 8 == 0;
    #[cfg(target_arch = "x86_64")]
    if simd && has_fma() && (codec_is_sq8(codec) || has_f16c()) {
        // SAFETY: the CPU features were detected (as in `dispatch`); the codes and ranges hold
        // d components (asserted above) and d is a multiple of 8.
        unsafe { x86::decode(codec, code, out) };
        return;
    }
    for (j, o) in out.iter_mut().enumerate() {
        *o = if simd {
            component::<true>(codec, code, &[], j)
        } else {
            component::<false>(codec, code, &[], j)
        };
    }
}

/// faiss's software f32 → half conversion: round to nearest with ties **away from zero** (not
/// IEEE's ties-to-even), overflow to ±inf, NaN → 0x7e00.
pub fn f32_to_half(f: f32) -> u16 {
    let bits = f.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let a = bits & 0x7fff_ffff;
    let h = if a > 0x7f80_0000 {
        0x7e00
    } else if a == 0x7f80_0000 {
        0x7c00
    } else {
        // Drop the low 12 mantissa bits, rebias by 2^-112 (denormals kept), cap below the
        // overflow threshold, then round by adding half a unit of the 13 dropped bits.
        let t = f32::from_bits(a & 0xffff_f000) * f32::from_bits(0x0780_0000);
        let t = t.min(f32::from_bits(0x0f7f_f000));
        ((t.to_bits() + 0x1000) >> 13) as u16
    };
    h | sign
}

/// Exact half → f32 conversion.
pub fn half_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if man == 0 => sign,
        0 => {
            // Subnormal: man · 2^-24, exact in f32.
            let v = man as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        31 => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_conversion_rounds_ties_away_from_zero_and_decodes_exactly() {
        // 1 + 2^-11 lies exactly between two halves: away from zero gives 0x3c01.
        assert_eq!(f32_to_half(1.0 + f32::powi(2.0, -11)), 0x3c01);
        assert_eq!(f32_to_half(-(1.0 + f32::powi(2.0, -11))), 0xbc01);
        assert_eq!(f32_to_half(65520.0), 0x7c00);
        assert_eq!(f32_to_half(f32::NAN), 0x7e00);
        assert_eq!(f32_to_half(f32::NEG_INFINITY), 0xfc00);
        for h in 0u16..=0xffff {
            let exp = (h >> 10) & 0x1f;
            if exp == 31 {
                continue;
            }
            let v = half_to_f32(h);
            // Every finite half converts back to itself (-0 stays -0).
            assert_eq!(f32_to_half(v), h, "{h:#06x} -> {v}");
        }
        assert_eq!(half_to_f32(0x0001), f32::powi(2.0, -24));
        assert_eq!(half_to_f32(0x8001), -f32::powi(2.0, -24));
    }

    /// The dispatched kernel gives the portable model's bits, and both are within rounding
    /// of an f64 sum, for every accumulation width.
    #[test]
    fn dispatched_kernel_is_the_model() {
        let mut s = 7u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for d in [4usize, 8, 12, 16, 24, 32, 48, 384] {
            let q: Vec<f32> = (0..d).map(|_| next()).collect();
            let x: Vec<f32> = (0..d).map(|_| next()).collect();
            for l2 in [true, false] {
                let got = dispatch(&q, SqCodec::Float, &[], &x, l2);
                let model = if l2 {
                    distance_portable::<true>(&q, SqCodec::Float, &[], &x)
                } else {
                    distance_portable::<false>(&q, SqCodec::Float, &[], &x)
                };
                assert_eq!(got.to_bits(), model.to_bits(), "d={d} l2={l2}");
                let exact: f64 = q
                    .iter()
                    .zip(&x)
                    .map(|(a, b)| {
                        if l2 {
                            ((a - b) as f64).powi(2)
                        } else {
                            *a as f64 * *b as f64
                        }
                    })
                    .sum();
                assert!(
                    (got as f64 - exact).abs() < 1e-5 * (1.0 + exact.abs()),
                    "d={d}"
                );
            }
        }
    }

    /// The SIMD kernels give the portable model's bits for SQ8 and fp16 codes at every width,
    /// and decode the same components.
    #[test]
    fn simd_sq_kernels_are_the_model() {
        let mut s = 11u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as u32
        };
        for d in [8usize, 16, 24, 32, 48, 384] {
            let q: Vec<f32> = (0..d).map(|_| next() as f32 / 16_777_216.0 - 0.5).collect();
            let vmin: Vec<f32> = (0..d).map(|_| -(next() as f32 / 16_777_216.0)).collect();
            let vdiff: Vec<f32> = (0..d).map(|_| next() as f32 / 8_388_608.0).collect();
            let sq8: Vec<u8> = (0..d).map(|_| next() as u8).collect();
            let halves: Vec<u8> = (0..d)
                .flat_map(|_| f32_to_half(next() as f32 / 16_777_216.0 - 0.5).to_le_bytes())
                .collect();
            for (codec, code) in [
                (
                    SqCodec::Sq8 {
                        vmin: &vmin,
                        vdiff: &vdiff,
                    },
                    &sq8,
                ),
                (SqCodec::Fp16, &halves),
            ] {
                for l2 in [true, false] {
                    let got = sq_distance(&q, codec, code, l2);
                    let model = if l2 {
                        distance_portable::<true>(&q, codec, code, &[])
                    } else {
                        distance_portable::<false>(&q, codec, code, &[])
                    };
                    assert_eq!(got.to_bits(), model.to_bits(), "d={d} l2={l2} {codec:?}");
                }
                let mut out = vec![0.0f32; d];
                sq_decode_kernel(codec, code, &mut out);
                for (j, &o) in out.iter().enumerate() {
                    assert_eq!(
                        o.to_bits(),
                        component::<true>(codec, code, &[], j).to_bits()
                    );
                }
            }
        }
    }
}
