//! faiss 1.15.1's exact f32 summation orders (its AVX-512 build), where our results must be
//! faiss's bits: the scalar-quantizer distance kernels (decoded components accumulated in 16
//! FMA lanes when d is a multiple of 16, in 8 lanes when it is a multiple of 8, sequentially
//! without FMA otherwise) and the float kernels `fvec_L2sqr` / `fvec_inner_product` the refine
//! step uses (16 FMA lanes, a fold to 8, one more 8-block, then an FMA tail). Lanes are summed
//! by a fixed tree. `f32::mul_add` is exact on every target (hardware FMA where detected, a
//! correctly rounded fallback elsewhere). See docs/algorithms.md.
//!
//! The model, the choice of implementation and the public entry points are here (over 500
//! lines with their tests, which hold every form to the model); the AVX2 and AVX-512 forms are
//! in `x86.rs` and `x86_512.rs`.

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
    if d.is_multiple_of(16) {
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
    } else if d.is_multiple_of(8) {
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

/// One term of [`fvec_portable`]'s sums (a fn, not a closure: closures do not take on the
/// caller's target features).
#[inline(always)]
fn fvec_term<const L2: bool>(acc: f32, x: f32, y: f32) -> f32 {
    if L2 {
        let t = x - y;
        t.mul_add(t, acc)
    } else {
        x.mul_add(y, acc)
    }
}

/// faiss's order: 16 lanes, folded to 8, one more block of 8, a tree over the 8, then the tail
/// one by one. Fixed-size chunks keep the lane loop free of bounds checks, so it vectorises.
#[inline(always)]
fn fvec_portable<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    let d = a.len().min(b.len());
    let (a, b) = (&a[..d], &b[..d]);
    let mut lane = [0.0f32; 16];
    let (mut ca, mut cb) = (a.chunks_exact(16), b.chunks_exact(16));
    for (x, y) in (&mut ca).zip(&mut cb) {
        let (x, y): (&[f32; 16], &[f32; 16]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for j in 0..16 {
            lane[j] = fvec_term::<L2>(lane[j], x[j], y[j]);
        }
    }
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut h = [0.0f32; 8];
    for j in 0..8 {
        h[j] = lane[j] + lane[j + 8];
    }
    let mut i = 0;
    if ra.len() >= 8 {
        for j in 0..8 {
            h[j] = fvec_term::<L2>(h[j], ra[j], rb[j]);
        }
        i = 8;
    }
    let mut acc = tree8(&h);
    for (&x, &y) in ra[i..].iter().zip(&rb[i..]) {
        acc = fvec_term::<L2>(acc, x, y);
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

use super::has_avx2_fma as has_fma;

fn has_f16c() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static F16C: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *F16C.get_or_init(|| is_x86_feature_detected!("f16c"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The implementation that runs for `codec` at dimension `d` on this CPU: every one performs
/// the same IEEE operations in the same order (the unit tests hold them to the model).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Unit {
    /// One 16-lane register (`x86_512`): AVX-512F, d a multiple of 16, codes (not floats).
    Avx512,
    /// AVX2 intrinsics (`x86`), d a multiple of 8.
    Avx2,
    /// The portable model compiled with AVX2 + FMA.
    ModelFma,
    /// The portable model (software FMA where the CPU has none).
    Model,
}

fn unit(codec: SqCodec<'_>, d: usize) -> Unit {
    let simd_codec = codec_is_sq8(codec) || has_f16c();
    if has_fma() && simd_codec && d.is_multiple_of(8) {
        if d.is_multiple_of(16) && has_avx512() && !matches!(codec, SqCodec::Float) {
            Unit::Avx512
        } else {
            Unit::Avx2
        }
    } else if has_fma() {
        Unit::ModelFma
    } else {
        Unit::Model
    }
}

/// The ranges of an SQ8 codec cover `d` components.
fn check_ranges(codec: SqCodec<'_>, d: usize) {
    if let SqCodec::Sq8 { vmin, vdiff } = codec {
        assert!(vmin.len() >= d && vdiff.len() >= d);
    }
}

/// One distance; callers checked that `code` (or `floats`) and the ranges hold q.len()
/// components.
fn dispatch(q: &[f32], codec: SqCodec<'_>, code: &[u8], floats: &[f32], l2: bool) -> f32 {
    match unit(codec, q.len()) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `unit` chose this form only after detecting AVX-512F, AVX2, FMA (and F16C
        // for fp16) and for q.len() a multiple of 16; the callers checked the lengths.
        Unit::Avx512 => unsafe { x86_512::distance(q, codec, code, l2) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `unit` detected AVX2, FMA (and F16C for fp16) and q.len() is a multiple of 8;
        // the callers checked the lengths.
        Unit::Avx2 => unsafe {
            if l2 {
                x86::distance::<true>(q, codec, code, floats)
            } else {
                x86::distance::<false>(q, codec, code, floats)
            }
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `unit` detected AVX2 and FMA, all the target-feature function requires; it
        // only reads the slices within q.len() components.
        Unit::ModelFma => unsafe {
            if l2 {
                distance_fma::<true>(q, codec, code, floats)
            } else {
                distance_fma::<false>(q, codec, code, floats)
            }
        },
        _ if l2 => distance_portable::<true>(q, codec, code, floats),
        _ => distance_portable::<false>(q, codec, code, floats),
    }
}

fn codec_is_sq8(codec: SqCodec<'_>) -> bool {
    !matches!(codec, SqCodec::Fp16)
}

/// The SIMD units of faiss's kernels (d a multiple of 8) with AVX2 intrinsics: 16 lanes as two
/// 8-lane registers (lane j and lane j + 8), 8 lanes as one, the same decode and tree. One
/// copy of each loop per code kind (`KIND`), so the inner loops do not branch on it.
#[cfg(target_arch = "x86_64")]
mod x86;

/// faiss's 16-lane unit (d a multiple of 16) in one AVX-512 register: the same lanes, decode
/// and tree as the two-register AVX2 form, twice the width per instruction.
#[cfg(target_arch = "x86_64")]
mod x86_512;

/// Product-quantizer kernels: sub-vector-to-centroid distances lane by lane, code sums.
pub mod pq;

fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AVX512: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVX512.get_or_init(|| {
            is_x86_feature_detected!("avx512f") && std::env::var_os("VECINDEX_NO_AVX512").is_none()
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
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
    assert!(code.len() >= code_len(codec, q.len()) && !matches!(codec, SqCodec::Float));
    check_ranges(codec, q.len());
    dispatch(q, codec, code, &[], l2)
}

/// [`sq_distance`] of four codes (the same bits as four calls).
pub fn sq_distance4(q: &[f32], codec: SqCodec<'_>, codes: [&[u8]; 4], l2: bool) -> [f32; 4] {
    let need = code_len(codec, q.len());
    assert!(codes.iter().all(|c| c.len() >= need) && !matches!(codec, SqCodec::Float));
    check_ranges(codec, q.len());
    match unit(codec, q.len()) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: features and q.len() as `unit` checked; every code and range holds q.len()
        // components (asserted above).
        Unit::Avx512 => unsafe { x86_512::distance4(q, codec, codes, l2) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above for the AVX2 form (q.len() a multiple of 8).
        Unit::Avx2 => unsafe {
            if l2 {
                x86::distance4::<true>(q, codec, codes)
            } else {
                x86::distance4::<false>(q, codec, codes)
            }
        },
        _ => codes.map(|c| dispatch(q, codec, c, &[], l2)),
    }
}

/// [`sq_distance`] of `q` to each of `out.len()` consecutive codes in `codes` (a list's codes,
/// `code_len` bytes each): one call per list, four codes at a time.
pub fn sq_scan(q: &[f32], codec: SqCodec<'_>, codes: &[u8], out: &mut [f32], l2: bool) {
    let cs = code_len(codec, q.len());
    assert!(cs > 0 && codes.len() >= out.len() * cs);
    check_ranges(codec, q.len());
    match unit(codec, q.len()) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: features and q.len() as `unit` checked; the ranges hold q.len() components
        // and `codes` holds out.len() codes of `cs` bytes (asserted above).
        Unit::Avx512 => unsafe { x86_512::scan(q, codec, codes, cs, out, l2) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above for the AVX2 form (q.len() a multiple of 8).
        Unit::Avx2 => unsafe {
            if l2 {
                x86::scan::<true>(q, codec, codes, cs, out)
            } else {
                x86::scan::<false>(q, codec, codes, cs, out)
            }
        },
        _ => {
            for (o, code) in out.iter_mut().zip(codes.chunks_exact(cs)) {
                *o = dispatch(q, codec, code, &[], l2);
            }
        }
    }
}

/// Decodes `code` into `out` the way the kernels see it (for code-to-code distances).
pub fn sq_decode_kernel(codec: SqCodec<'_>, code: &[u8], out: &mut [f32]) {
    let d = out.len();
    assert!(code.len() >= code_len(codec, d) && !matches!(codec, SqCodec::Float));
    check_ranges(codec, d);
    let simd = d.is_multiple_of(8);
    #[cfg(target_arch = "x86_64")]
    if matches!(unit(codec, d), Unit::Avx2 | Unit::Avx512) {
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
                    // The AVX2 form too, whichever form the dispatch picked above.
                    #[cfg(target_arch = "x86_64")]
                    if has_fma() && has_f16c() {
                        // SAFETY: AVX2, FMA and F16C detected; d is a multiple of 8 and the
                        // code and ranges hold d components.
                        let avx2 = unsafe {
                            if l2 {
                                x86::distance::<true>(&q, codec, code, &[])
                            } else {
                                x86::distance::<false>(&q, codec, code, &[])
                            }
                        };
                        assert_eq!(avx2.to_bits(), model.to_bits(), "AVX2 d={d} l2={l2}");
                    }
                }
                // Four different codes (rotations of this one), each as a single call gives.
                let width = code.len() / d;
                let rotated: Vec<Vec<u8>> = (0..4)
                    .map(|j| {
                        let mut c = code.clone();
                        c.rotate_left(j * width);
                        c
                    })
                    .collect();
                let four = sq_distance4(&q, codec, [0, 1, 2, 3].map(|j| &rotated[j][..]), true);
                for (j, c) in rotated.iter().enumerate() {
                    assert_eq!(four[j].to_bits(), sq_distance(&q, codec, c, true).to_bits());
                }
                let all: Vec<u8> = rotated.concat();
                let mut scanned = [0.0f32; 4];
                sq_scan(&q, codec, &all, &mut scanned, true);
                assert_eq!(scanned.map(f32::to_bits), four.map(f32::to_bits));
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
