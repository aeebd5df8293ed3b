//! Product-quantizer kernels in faiss 1.15.1's arithmetic: distances from one sub-vector to a
//! block of centroids (every centroid in its own lane, each lane performing exactly the steps
//! of `fvec_L2sqr` / `fvec_inner_product` for one pair, so the bits are faiss's), and the sum of
//! a code's look-up-table entries in faiss's order (16 lanes of sub-quantizers for 8-bit codes
//! with M ≥ 16, sequential otherwise). docs/algorithms.md §7.4 and §7.6 state the orders.

use super::{has_fma, tree8};

/// Centroids per block: the lanes of [`distances_block`].
pub const LANES: usize = 16;

/// The centroids of one sub-quantizer transposed for [`sub_distances`]: block `b`, component
/// `k`, lane `l` at `(b * dsub + k) * LANES + l`, padded with zeros to whole blocks.
pub fn transpose_centroids(centroids: &[f32], dsub: usize) -> Vec<f32> {
    let ksub = centroids.len() / dsub.max(1);
    let blocks = ksub.div_ceil(LANES);
    let mut out = vec![0.0f32; blocks * dsub * LANES];
    for (j, c) in centroids.chunks_exact(dsub).enumerate() {
        let (b, l) = (j / LANES, j % LANES);
        for (k, &v) in c.iter().enumerate() {
            out[(b * dsub + k) * LANES + l] = v;
        }
    }
    out
}

type Block = [f32; LANES];

/// How faiss's `fvec_L2sqr_ny` / `fvec_inner_products_ny` (AVX-512 build) sums one centroid,
/// by sub-vector size and by whether the centroid is in a whole block of 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NyForm {
    /// An FMA chain from the first product (d = 1, and d = 2, 4, 8 in whole 16-blocks).
    Chain,
    /// d = 2 outside whole blocks: `fma(t0, t0, t1²)` (the compiler's contraction).
    Pair,
    /// d = 4 outside whole blocks: rounded products, `(p0 + p2) + (p1 + p3)`.
    Quad,
    /// d = 8 outside whole blocks: `a_i = p_i + p_{i+4}`, then `(a0 + a2) + (a1 + a3)`.
    Oct,
    /// d = 12: `a_i = fma(t_{i+8}, t_{i+8}, fma(t_i, t_i, t_{i+4}²))`, then as `Oct`.
    Twelve,
    /// Any other d: one `fvec_L2sqr` / `fvec_inner_product` per centroid.
    Fvec,
}

fn ny_form(d: usize, whole_block: bool) -> NyForm {
    match d {
        1 => NyForm::Chain,
        2 | 4 | 8 if whole_block => NyForm::Chain,
        2 => NyForm::Pair,
        4 => NyForm::Quad,
        8 => NyForm::Oct,
        12 => NyForm::Twelve,
        _ => NyForm::Fvec,
    }
}

// The lane helpers below use plain loops, no closures: a closure is compiled without the
// caller's target features, and its `mul_add` would become a call to the software `fmaf`.

/// Lane-wise `acc = fma(a, b, acc)` where the pair is (x, c) for IP and (x − c, x − c) for L2.
#[inline(always)]
fn fma_terms<const L2: bool>(x: f32, c: &Block, acc: &mut Block) {
    for l in 0..LANES {
        if L2 {
            let t = x - c[l];
            acc[l] = t.mul_add(t, acc[l]);
        } else {
            acc[l] = x.mul_add(c[l], acc[l]);
        }
    }
}

/// Lane-wise rounded products (`t²` for L2, `x·c` for IP).
#[inline(always)]
fn products<const L2: bool>(x: f32, c: &Block) -> Block {
    let mut p = [0.0; LANES];
    for l in 0..LANES {
        p[l] = if L2 {
            let t = x - c[l];
            t * t
        } else {
            x * c[l]
        };
    }
    p
}

/// Lane-wise `(a0 + a2) + (a1 + a3)`: faiss's 128-bit horizontal sum.
#[inline(always)]
fn hsum4(a: &[Block; 4], out: &mut Block) {
    for l in 0..LANES {
        out[l] = (a[0][l] + a[2][l]) + (a[1][l] + a[3][l]);
    }
}

/// The distances of `x` to the `LANES` centroids of one transposed block, each lane in the
/// arithmetic faiss uses for that centroid (`form`).
#[inline(always)]
fn distances_block<const L2: bool>(x: &[f32], ct: &[f32], form: NyForm, out: &mut Block) {
    let d = x.len();
    let ct = &ct[..d * LANES];
    let col = |k: usize| -> &Block { ct[k * LANES..(k + 1) * LANES].try_into().expect("lanes") };
    let mut a: [Block; 4] = [[0.0; LANES]; 4];
    match form {
        NyForm::Chain => {
            *out = [0.0; LANES];
            for (k, &xk) in x.iter().enumerate() {
                fma_terms::<L2>(xk, col(k), out);
            }
        }
        NyForm::Pair => {
            *out = products::<L2>(x[1], col(1));
            fma_terms::<L2>(x[0], col(0), out);
        }
        NyForm::Quad => {
            for (k, ak) in a.iter_mut().enumerate() {
                *ak = products::<L2>(x[k], col(k));
            }
            hsum4(&a, out);
        }
        NyForm::Oct => {
            for (i, ai) in a.iter_mut().enumerate() {
                let (p, q) = (
                    products::<L2>(x[i], col(i)),
                    products::<L2>(x[i + 4], col(i + 4)),
                );
                for l in 0..LANES {
                    ai[l] = p[l] + q[l];
                }
            }
            hsum4(&a, out);
        }
        NyForm::Twelve => {
            for (i, ai) in a.iter_mut().enumerate() {
                *ai = products::<L2>(x[i + 4], col(i + 4));
                fma_terms::<L2>(x[i], col(i), ai);
                fma_terms::<L2>(x[i + 8], col(i + 8), ai);
            }
            hsum4(&a, out);
        }
        NyForm::Fvec => fvec_block::<L2>(x, ct, out),
    }
}

/// `fvec_L2sqr` / `fvec_inner_product` lane by lane: 16 partial sums over whole 16-blocks,
/// folded to 8, one more 8-block, the tree, then an FMA tail.
#[inline(always)]
fn fvec_block<const L2: bool>(x: &[f32], ct: &[f32], out: &mut Block) {
    let d = x.len();
    let col = |k: usize| -> &Block { ct[k * LANES..(k + 1) * LANES].try_into().expect("lanes") };
    let mut h: [Block; 8] = [[0.0; LANES]; 8];
    let mut i = 0;
    if d >= 16 {
        let mut acc: [Block; 16] = [[0.0; LANES]; 16];
        while i + 16 <= d {
            for (j, a) in acc.iter_mut().enumerate() {
                fma_terms::<L2>(x[i + j], col(i + j), a);
            }
            i += 16;
        }
        for (j, hj) in h.iter_mut().enumerate() {
            for l in 0..LANES {
                hj[l] = acc[j][l] + acc[j + 8][l];
            }
        }
    }
    if i + 8 <= d {
        for (j, hj) in h.iter_mut().enumerate() {
            fma_terms::<L2>(x[i + j], col(i + j), hj);
        }
        i += 8;
    }
    *out = [0.0; LANES];
    if d >= 8 {
        for l in 0..LANES {
            let s = [
                h[0][l] + h[4][l],
                h[1][l] + h[5][l],
                h[2][l] + h[6][l],
                h[3][l] + h[7][l],
            ];
            out[l] = (s[0] + s[2]) + (s[1] + s[3]);
        }
    }
    while i < d {
        fma_terms::<L2>(x[i], col(i), out);
        i += 1;
    }
}

#[inline(always)]
fn sub_distances_portable<const L2: bool>(x: &[f32], ct: &[f32], out: &mut [f32]) {
    let dsub = x.len();
    let whole = out.len() / LANES;
    let mut block: Block = [0.0; LANES];
    for (b, chunk) in out.chunks_mut(LANES).enumerate() {
        let form = ny_form(dsub, b < whole);
        distances_block::<L2>(
            x,
            &ct[b * dsub * LANES..(b + 1) * dsub * LANES],
            form,
            &mut block,
        );
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sub_distances_fma<const L2: bool>(x: &[f32], ct: &[f32], out: &mut [f32]) {
    sub_distances_portable::<L2>(x, ct, out)
}

/// `out` = faiss's `fvec_L2sqr_ny` (`l2`) or `fvec_inner_products_ny` of `x` and the
/// `out.len()` centroids of `ct` (from [`transpose_centroids`] with `dsub = x.len()`), bit for
/// bit: what faiss's PQ tables and encoder compute.
pub fn sub_distances(x: &[f32], ct: &[f32], out: &mut [f32], l2: bool) {
    assert!(ct.len() >= out.len().div_ceil(LANES) * x.len() * LANES);
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: AVX2 and FMA were detected (has_fma), all the target-feature function needs;
        // it reads `ct` within the length asserted above.
        return unsafe {
            if l2 {
                sub_distances_fma::<true>(x, ct, out)
            } else {
                sub_distances_fma::<false>(x, ct, out)
            }
        };
    }
    if l2 {
        sub_distances_portable::<true>(x, ct, out)
    } else {
        sub_distances_portable::<false>(x, ct, out)
    }
}

/// The nearest of the `k` centroids of `ct` (from [`transpose_centroids`] with `dsub =
/// x.len() <= 16`) in squared L2 and that distance, 16 centroids per AVX-512 step; ties to
/// the lowest centroid. The sum is a plain FMA chain over the components: faiss's order for
/// fewer than 8, not beyond, so callers use it where faiss itself does not promise an order
/// (its GEMM assignment). `None` without AVX-512F ([`has_nearest_l2_fast`]).
pub fn nearest_l2_fast(x: &[f32], ct: &[f32], k: usize) -> Option<(usize, f32)> {
    assert!(x.len() <= LANES && ct.len() >= k.div_ceil(LANES) * x.len() * LANES);
    #[cfg(target_arch = "x86_64")]
    if super::has_avx512() {
        // SAFETY: AVX-512F was detected; `ct` holds every block read (asserted above) and x
        // at most 16 components.
        return Some(unsafe { nearest_l2_avx512(x, ct, k) });
    }
    None
}

/// The nearest of the `k` centroids of `ct` in faiss's table arithmetic ([`sub_distances`]),
/// the first on ties; `dist` is scratch. Where that arithmetic is a plain FMA chain (every
/// centroid summed as `Chain`, or d < 8), [`nearest_l2_fast`] computes the same values.
pub fn nearest_l2(x: &[f32], ct: &[f32], k: usize, dist: &mut Vec<f32>) -> usize {
    let d = x.len();
    let chain = (1..=LANES).contains(&d)
        && (d < 8 && d != 2 && d != 4 || k.is_multiple_of(LANES) && matches!(d, 2 | 4 | 8));
    if chain {
        if let Some((j, _)) = nearest_l2_fast(x, ct, k) {
            return j;
        }
    }
    dist.resize(k, 0.0);
    sub_distances(x, ct, dist, true);
    let mut best = 0;
    for (j, &v) in dist.iter().enumerate() {
        if v < dist[best] {
            best = j;
        }
    }
    best
}

/// Whether [`nearest_l2_fast`] runs on this CPU.
pub fn has_nearest_l2_fast() -> bool {
    super::has_avx512()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn nearest_l2_avx512(x: &[f32], ct: &[f32], k: usize) -> (usize, f32) {
    use std::arch::x86_64::*;
    let d = x.len();
    let xs: [__m512; LANES] =
        std::array::from_fn(|i| _mm512_set1_ps(if i < d { x[i] } else { 0.0 }));
    let mut best = _mm512_set1_ps(f32::INFINITY);
    let mut best_idx = _mm512_setzero_si512();
    let mut idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let step = _mm512_set1_epi32(LANES as i32);
    let blocks = k.div_ceil(LANES);
    let p = ct.as_ptr();
    for b in 0..blocks {
        let mut acc = _mm512_setzero_ps();
        for (kk, xk) in xs.iter().enumerate().take(d) {
            let c = _mm512_loadu_ps(p.add((b * d + kk) * LANES));
            let t = _mm512_sub_ps(*xk, c);
            acc = _mm512_fmadd_ps(t, t, acc);
        }
        let valid = (k - b * LANES).min(LANES);
        let lanes: __mmask16 = if valid == LANES {
            0xffff
        } else {
            (1u16 << valid) - 1
        };
        let m = _mm512_mask_cmp_ps_mask::<_CMP_LT_OQ>(lanes, acc, best);
        best = _mm512_mask_mov_ps(best, m, acc);
        best_idx = _mm512_mask_mov_epi32(best_idx, m, idx);
        idx = _mm512_add_epi32(idx, step);
    }
    let v = _mm512_reduce_min_ps(best);
    if v == f32::INFINITY || v.is_nan() {
        return (0, f32::INFINITY);
    }
    let at = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(best, _mm512_set1_ps(v));
    let id = _mm512_mask_reduce_min_epu32(at, best_idx);
    (id as usize, v)
}

/// The shape of a product quantizer's codes: `m` sub-quantizers of `nbits` bits each, packed
/// LSB-first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PqShape {
    /// Sub-quantizers.
    pub m: usize,
    /// Bits per sub-quantizer index.
    pub nbits: usize,
}

impl PqShape {
    /// Centroids per sub-quantizer.
    pub fn ksub(self) -> usize {
        1 << self.nbits
    }

    /// Bytes per code: `ceil(m · nbits / 8)`.
    pub fn code_size(self) -> usize {
        (self.m * self.nbits).div_ceil(8)
    }

    /// Index of sub-quantizer `sub` in `code` (bits `sub·nbits ..` of the little-endian stream).
    #[inline]
    pub fn index(self, code: &[u8], sub: usize) -> usize {
        if self.nbits == 8 {
            return code[sub] as usize;
        }
        let bit = sub * self.nbits;
        let mut v = 0usize;
        let mut got = 0;
        while got < self.nbits {
            let b = bit + got;
            let take = (8 - b % 8).min(self.nbits - got);
            let byte = (code[b / 8] >> (b % 8)) as usize & ((1 << take) - 1);
            v |= byte << got;
            got += take;
        }
        v
    }

    /// Writes `idx[sub]` for every sub-quantizer into `code` (zeroed first).
    #[cfg(test)]
    pub fn pack(self, idx: &[usize], code: &mut [u8]) {
        code.fill(0);
        for (sub, &v) in idx.iter().enumerate() {
            self.set(code, sub, v);
        }
    }

    /// ORs index `v` of sub-quantizer `sub` into `code` (whose bits there are still 0).
    #[inline]
    pub fn set(self, code: &mut [u8], sub: usize, v: usize) {
        let bit = sub * self.nbits;
        let mut put = 0;
        while put < self.nbits {
            let b = bit + put;
            let take = (8 - b % 8).min(self.nbits - put);
            code[b / 8] |= (((v >> put) & ((1 << take) - 1)) << (b % 8)) as u8;
            put += take;
        }
    }

    /// faiss's sum of `table[sub · ksub + index_sub]` over the sub-quantizers: for 8-bit
    /// indexes and m ≥ 16, 16 lanes (lane j takes sub-quantizers j, j+16, ...), folded to 8,
    /// the tree, then the m mod 16 remaining ones in order; otherwise in order from 0.
    #[inline]
    pub fn code_distance(self, table: &[f32], code: &[u8]) -> f32 {
        let ksub = self.ksub();
        if self.nbits == 8 && self.m >= 16 {
            let full = self.m / 16 * 16;
            let mut lane = [0.0f32; 16];
            for b in (0..full).step_by(16) {
                for (j, l) in lane.iter_mut().enumerate() {
                    let sub = b + j;
                    *l += table[sub * ksub + code[sub] as usize];
                }
            }
            let h: [f32; 8] = std::array::from_fn(|j| lane[j] + lane[j + 8]);
            let mut acc = tree8(&h);
            for sub in full..self.m {
                acc += table[sub * ksub + code[sub] as usize];
            }
            acc
        } else {
            let mut acc = 0.0f32;
            for sub in 0..self.m {
                acc += table[sub * ksub + self.index(code, sub)];
            }
            acc
        }
    }

    /// `out[i] = base + code_distance(table, code_i)` for the `out.len()` consecutive codes of
    /// `codes` (`code_size` bytes each).
    pub fn scan(self, table: &[f32], base: f32, codes: &[u8], out: &mut [f32]) {
        let cs = self.code_size();
        assert!(table.len() >= self.m * self.ksub() && codes.len() >= out.len() * cs);
        if self.nbits == 8 && self.m >= 16 {
            // SAFETY: the table holds m·256 values and `codes` out.len() codes of m bytes
            // (asserted above; cs == m for 8 bits).
            unsafe { scan8(self.m, table, base, codes, out) };
            return;
        }
        for (o, code) in out.iter_mut().zip(codes.chunks_exact(cs)) {
            *o = base + self.code_distance(table, code);
        }
    }

    /// [`PqShape::scan`] with the table `p − 2·q` (IVF-PQ's per-list L2 table, written to
    /// `scratch`).
    pub fn scan_minus_twice(
        self,
        p: &[f32],
        q: &[f32],
        base: f32,
        codes: &[u8],
        out: &mut [f32],
        scratch: &mut Vec<f32>,
    ) {
        let n = self.m * self.ksub();
        scratch.resize(n, 0.0);
        sub_twice(&p[..n], &q[..n], scratch);
        self.scan(scratch, base, codes, out);
    }
}

/// [`PqShape::scan`] for 8-bit codes and m ≥ 16, faiss's sums bit for bit: per code, 16 lanes
/// (lane j adds sub-quantizers j, j+16, ... in that order, from 0.0), folded to 8, the tree, then
/// the m mod 16 remaining sub-quantizers in order.
///
/// Scalar look-ups, a block's 16 code bytes read as two `u64`s. On our AVX-512 test machine this
/// ran 1.5× faster than faiss's own form, one 16-lane gather per block (the gathers were the
/// bound, about 100 cycles per 48-byte code), and faster than two or four codes interleaved.
/// Caller guarantees `table.len() >= m · 256` and `codes.len() >= out.len() · m`.
#[allow(clippy::needless_range_loop)] // lane and table row share `j`; the form measured
unsafe fn scan8(m: usize, table: &[f32], base: f32, codes: &[u8], out: &mut [f32]) {
    let full = m / 16;
    let tp = table.as_ptr();
    for (i, o) in out.iter_mut().enumerate() {
        let code = codes.as_ptr().add(i * m);
        let mut lane = [0.0f32; 16];
        for b in 0..full {
            let tb = tp.add(16 * b * 256);
            let lo = u64::from_le((code.add(16 * b) as *const u64).read_unaligned());
            let hi = u64::from_le((code.add(16 * b + 8) as *const u64).read_unaligned());
            for j in 0..8 {
                lane[j] += *tb.add(j * 256 + ((lo >> (8 * j)) & 255) as usize);
            }
            for j in 0..8 {
                lane[8 + j] += *tb.add((8 + j) * 256 + ((hi >> (8 * j)) & 255) as usize);
            }
        }
        let mut h = [0.0f32; 8];
        for j in 0..8 {
            h[j] = lane[j] + lane[j + 8];
        }
        let mut sum = super::tree8(&h);
        for sub in full * 16..m {
            sum += *tp.add(sub * 256 + *code.add(sub) as usize);
        }
        *o = base + sum;
    }
}

/// `out = p − 2·q` element-wise (faiss's `fvec_madd(p, −2, q)`, one rounding each).
pub fn sub_twice(p: &[f32], q: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: AVX2 and FMA were detected; the loop only zips the three slices.
        return unsafe { sub_twice_fma(p, q, out) };
    }
    sub_twice_portable(p, q, out)
}

#[inline(always)]
fn sub_twice_portable(p: &[f32], q: &[f32], out: &mut [f32]) {
    for ((o, &a), &b) in out.iter_mut().zip(p).zip(q) {
        *o = a - 2.0 * b;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sub_twice_fma(p: &[f32], q: &[f32], out: &mut [f32]) {
    sub_twice_portable(p, q, out)
}

#[cfg(test)]
mod tests {
    use super::super::fvec_portable;
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
    }

    /// Where faiss's table kernels are its pairwise ones (sub-vector sizes other than 2, 4, 8
    /// and 12, and 2 and 4 in whole blocks of 16), every lane is the scalar `fvec_L2sqr` /
    /// `fvec_inner_product` of its pair, bit for bit. (The other forms are held to faiss's own
    /// tables by the IVF-PQ fixtures.)
    #[test]
    fn block_distances_are_the_pairwise_kernel() {
        let mut s = 7u64;
        for dsub in [1, 2, 3, 4, 7, 9, 16, 17, 24, 31, 32, 40, 48] {
            for ksub in [2, 16, 37, 256] {
                if matches!(dsub, 2 | 4) && ksub % 16 != 0 {
                    continue;
                }
                let x: Vec<f32> = (0..dsub).map(|_| lcg(&mut s)).collect();
                let c: Vec<f32> = (0..ksub * dsub).map(|_| lcg(&mut s)).collect();
                let ct = transpose_centroids(&c, dsub);
                let mut out = vec![0.0; ksub];
                for l2 in [true, false] {
                    sub_distances(&x, &ct, &mut out, l2);
                    for (j, cj) in c.chunks_exact(dsub).enumerate() {
                        let want = if l2 {
                            fvec_portable::<true>(&x, cj)
                        } else {
                            fvec_portable::<false>(&x, cj)
                        };
                        assert_eq!(out[j].to_bits(), want.to_bits(), "d{dsub} k{ksub} {l2} {j}");
                    }
                }
            }
        }
    }

    #[test]
    fn packing_round_trips_lsb_first() {
        for nbits in 1..=16 {
            let shape = PqShape { m: 7, nbits };
            let idx: Vec<usize> = (0..7)
                .map(|i| (i * 2654435761usize) % shape.ksub())
                .collect();
            let mut code = vec![0u8; shape.code_size()];
            shape.pack(&idx, &mut code);
            let back: Vec<usize> = (0..7).map(|i| shape.index(&code, i)).collect();
            assert_eq!(back, idx, "nbits {nbits}");
        }
        // nbits 2: sub-quantizer 0 in bits 0-1, 1 in bits 2-3 (faiss's layout).
        let mut code = [0u8; 1];
        PqShape { m: 2, nbits: 2 }.pack(&[1, 3], &mut code);
        assert_eq!(code[0], 0b0000_1101);
    }

    /// The four-at-a-time scan equals one code at a time, and the 16-lane order is used.
    #[test]
    fn scan_matches_single_codes() {
        let mut s = 11u64;
        for (m, n) in [(4, 11), (16, 11), (24, 11), (32, 11), (48, 11), (20, 37)] {
            let shape = PqShape { m, nbits: 8 };
            let table: Vec<f32> = (0..m * 256).map(|_| lcg(&mut s) * 1000.0).collect();
            let codes: Vec<u8> = (0..m * n)
                .map(|_| (lcg(&mut s).to_bits() % 256) as u8)
                .collect();
            let mut out = vec![0.0; n];
            shape.scan(&table, 0.5, &codes, &mut out);
            for (i, code) in codes.chunks_exact(m).enumerate() {
                let one = 0.5 + shape.code_distance(&table, code);
                assert_eq!(out[i].to_bits(), one.to_bits());
            }
            if m >= 16 {
                let seq: f32 =
                    (0..m).fold(0.0, |a, sub| a + table[sub * 256 + codes[sub] as usize]);
                let lanes = shape.code_distance(&table, &codes[..m]);
                assert!((seq - lanes).abs() <= 1e-2 * seq.abs().max(1.0));
            }
        }
    }
}
