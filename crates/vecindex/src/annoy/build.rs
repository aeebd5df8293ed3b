//! annoy 1.17.3's forest construction (docs/algorithms.md): Kiss64 random numbers, two-means splits per
//! metric, the imbalance checks with their f32 rounding and the random fallback, leaf lists of up
//! to K ids, post-order node allocation, root copies at the end.
//!
//! Trees are built into per-tree buffers and laid out tree after tree, so a build is
//! deterministic for a given (seed, threads) — annoy's own multi-threaded builds interleave
//! nodes and are not. With one thread the layout is annoy's.

use super::layout::{AnnoyMetric, NodeLayout};
use crate::kernels;
// Splits use annoy's own float arithmetic, so that every comparison comes out as in annoy and
// the trees are annoy's (see `kernels::annoy_order`).
use crate::kernels::annoy_order;
use rayon::prelude::*;

/// annoy's Kiss64 generator.
#[derive(Debug, Clone)]
pub struct Kiss64 {
    x: u64,
    y: u64,
    z: u64,
    c: u64,
}

/// annoy's default seed.
pub const DEFAULT_SEED: u64 = 1_234_567_890_987_654_321;

impl Kiss64 {
    pub fn new(seed: u64) -> Self {
        Kiss64 {
            x: seed,
            y: 362_436_362_436_362_436,
            z: 1_066_149_217_761_810,
            c: 123_456_123_456_123_456,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.z = 6_906_969_069u64
            .wrapping_mul(self.z)
            .wrapping_add(1_234_567);
        self.y ^= self.y << 13;
        self.y ^= self.y >> 17;
        self.y ^= self.y << 43;
        let t = (self.x << 58).wrapping_add(self.c);
        self.c = self.x >> 6;
        self.x = self.x.wrapping_add(t);
        self.c = self.c.wrapping_add((self.x < t) as u64);
        self.x.wrapping_add(self.y).wrapping_add(self.z)
    }

    pub fn index(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn flip(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// `a % d` for a fixed divisor `d` > 0 without a division instruction (~40 cycles for u64, and
/// two-means draws 200 indices per node): with m = ⌊(2⁶⁴−1)/d⌋ the quotient estimate
/// ⌊a·m/2⁶⁴⌋ is at most 2 below ⌊a/d⌋, so at most two subtractions finish the exact remainder.
#[derive(Clone, Copy)]
struct Modulus {
    d: u64,
    m: u64,
}

impl Modulus {
    fn new(d: usize) -> Self {
        let d = d.max(1) as u64;
        Modulus { d, m: u64::MAX / d }
    }

    #[inline]
    fn reduce(self, a: u64) -> usize {
        let q = ((a as u128 * self.m as u128) >> 64) as u64;
        let mut r = a - q * self.d;
        if r >= self.d {
            r -= self.d;
        }
        if r >= self.d {
            r -= self.d;
        }
        r as usize
    }
}

/// Items as the build sees them: vectors (or packed bits), squared norms (angular and dot), dot
/// factors.
pub struct Items<'a> {
    pub layout: NodeLayout,
    pub n_items: usize,
    /// Row-major float vectors (float metrics).
    pub v: &'a [f32],
    /// Packed bits (hamming), `layout.words` per item.
    pub bits: &'a [u64],
    pub norms: &'a [f32],
    pub dot_factors: &'a [f32],
    /// Half-precision copies of the float rows, for the first margin pass (see [`HalfRows`]).
    pub half: Option<&'a HalfRows>,
    /// Two-means decides which centroid is closer from fast estimates where their error bound
    /// allows (same trees; see `two_means_estimates`). Off only to compare.
    pub estimates: bool,
}

/// binary16 copies of the float rows and each row's L2 norm.
///
/// The margin pass reads every item of a node, a whole level per tree, and is bound by memory
/// bandwidth. Half the bytes are read when each margin is first computed from these copies; an
/// item whose approximate margin lies within the error bound of zero (~1% of them) is then
/// recomputed in f32 exactly as before, so every item lands on the side the f32 margin gives —
/// the trees are identical, annoy's coin flips included (they only happen for exact zeros,
/// which are always recomputed).
pub struct HalfRows {
    f: usize,
    /// The binary16 values, four per word: the buffer is handed on to become the forest's
    /// node bytes afterwards (pages already faulted in are reused, which on this project's
    /// machines costs more than the encoding).
    words: Vec<u64>,
    /// The first row's word in `words` (rows start on a cache line).
    start: usize,
    len: usize,
    norms: Vec<f32>,
}

/// u64 words per 64-byte cache line.
const LINE_WORDS: usize = 8;

impl HalfRows {
    /// `None` when the CPU cannot convert (no F16C) or a value is beyond binary16's range.
    /// `sq_norms`: the rows' squared norms if already computed. Encoded by up to `threads`
    /// threads.
    pub fn new(v: &[f32], f: usize, sq_norms: Option<&[f32]>, threads: usize) -> Option<HalfRows> {
        let encode = kernels::kernels().f16_encode?;
        // |x| as integer bits orders like |x| (no NaN here), and vectorises.
        let max_bits = v
            .iter()
            .map(|x| x.to_bits() & 0x7fff_ffff)
            .max()
            .unwrap_or(0);
        if f == 0 || max_bits > 65_000f32.to_bits() {
            return None;
        }
        // Rows start on a cache line (when f is a multiple of 32): a node's items are read
        // scattered, and a row straddling one more line costs one more memory access.
        let mut words = vec![0u64; v.len().div_ceil(4) + LINE_WORDS];
        let start = words.as_ptr().align_offset(64).min(LINE_WORDS);
        let rows = &mut bytemuck::cast_slice_mut::<u64, u16>(&mut words[start..])[..v.len()];
        let per_thread = (v.len() / f).div_ceil(threads.max(1)).max(1) * f;
        rows.par_chunks_mut(per_thread)
            .zip(v.par_chunks(per_thread))
            .for_each(|(h, x)| encode(x, h));
        let computed;
        let sq = match sq_norms {
            Some(s) => s,
            None => {
                computed = kernels::row_norms(v, f);
                &computed
            }
        };
        let norms = sq.iter().map(|s| s.max(0.0).sqrt()).collect();
        Some(HalfRows {
            f,
            words,
            start,
            len: v.len(),
            norms,
        })
    }

    fn row(&self, i: usize) -> &[u16] {
        &bytemuck::cast_slice::<u64, u16>(&self.words[self.start..])[..self.len]
            [i * self.f..(i + 1) * self.f]
    }

    /// The storage, for reuse.
    pub fn into_buffer(self) -> Vec<u64> {
        self.words
    }
}

/// Nodes of at most this many items are split with the f32 pass: their rows fit in the core's
/// cache, and reading them in f32 leaves them there for the children's two-means samples
/// (from binary16 copies those samples would all miss).
const HALF_MIN_ITEMS: usize = 1024;

/// Items the half-precision pass leaves undecided, above which a node's subtrees stop using it
/// (1 in 8: data far from the origin relative to its spread, where the pass cannot decide).
const HALF_UNDECIDED_LIMIT: usize = 8;

impl Items<'_> {
    fn row(&self, i: usize) -> &[f32] {
        let f = self.layout.f;
        &self.v[i * f..(i + 1) * f]
    }

    fn bits_of(&self, i: usize) -> &[u64] {
        let w = self.layout.words;
        &self.bits[i * w..(i + 1) * w]
    }
}

/// A child reference while building: an item, or a node of the same tree (local index).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ref {
    Item(i32),
    Local(usize),
}

/// A node of one tree under construction.
#[derive(Debug, Clone)]
pub enum BuildNode {
    Leaf {
        n_descendants: i32,
        ids: Vec<i32>,
    },
    Split {
        n_descendants: i32,
        children: [Ref; 2],
        plane: Vec<f32>,
        a: f32,
        dot_factor: f32,
        bit: u64,
    },
}

/// A split under construction.
#[derive(Clone)]
struct Split {
    v: Vec<f32>,
    a: f32,
    df: f32,
    bit: u64,
}

/// annoy's angular two-means distance from a known dot(p, y); a zero cached norm is recomputed.
fn angular_dist_from(py: f32, pn: f32, p: &[f32], yn: f32, y: &[f32]) -> f32 {
    let pp = if pn != 0.0 {
        pn
    } else {
        annoy_order::dot(p, p)
    };
    let qq = if yn != 0.0 {
        yn
    } else {
        annoy_order::dot(y, y)
    };
    annoy_order::angular_distance(py, pp, qq)
}

/// 2⁻²⁴, the unit roundoff of f32.
const F32_UNIT: f32 = f32::EPSILON / 2.0;

/// annoy's two-means distances from `p` and `q` to the sample `y` (`yy` = dot(y, y) for the
/// cosine metrics), in annoy's exact arithmetic.
fn two_means_distances(metric: AnnoyMetric, p: &[f32], q: &[f32], y: &[f32], yy: f32) -> [f32; 2] {
    match metric {
        AnnoyMetric::Angular => {
            let [a, b] = annoy_order::dot_x2(p, q, y);
            [
                angular_dist_from(a, 0.0, p, yy, y),
                angular_dist_from(b, 0.0, q, yy, y),
            ]
        }
        AnnoyMetric::Dot => annoy_order::dot_x2(p, q, y).map(|x| -x),
        AnnoyMetric::Euclidean => annoy_order::l2sq_x2(p, q, y),
        AnnoyMetric::Manhattan => annoy_order::l1_x2(p, q, y),
        AnnoyMetric::Hamming => unreachable!("hamming has no two-means"),
    }
}

/// The same distances from sums in a faster order, each with a bound on how far it can be from
/// the exact one; `None` when no useful bound holds (a near-zero norm). `cn` = the centroids'
/// squared norms (any order), `gamma` = (d + 16)·2⁻²⁴, which bounds the relative error of any
/// order of a d-term sum against its terms' magnitudes.
///
/// Angular: each cosine estimate (fast or exact) is within 2γ + 4u of the true cosine (the
/// dot within γ·|p||y|, the norms within γ relative, three roundings), so the two distances
/// differ by at most 8γ + 24u; 16γ is used. Dot: the dots differ by at most 2γ·|p||y|; 4γ is
/// used. Euclidean / Manhattan: all terms are non-negative, so within 2γ of the sum; 4γ used.
#[inline]
fn two_means_estimates(
    metric: AnnoyMetric,
    p: &[f32],
    q: &[f32],
    y: &[f32],
    cn: [f32; 2],
    yy: f32,
    gamma: f32,
) -> Option<([f32; 2], [f32; 2])> {
    use annoy_order::{estimate_x2, EST_DOT, EST_L1, EST_L2};
    match metric {
        AnnoyMetric::Angular => {
            let pq = estimate_x2::<EST_DOT>(p, q, y);
            let mut d = [0.0; 2];
            for s in 0..2 {
                let ppqq = cn[s] * yy;
                // Far from zero and from overflow, so the relative bounds hold.
                if !(1e-30..=1e30).contains(&ppqq) {
                    return None;
                }
                d[s] = 2.0 - 2.0 * pq[s] / ppqq.sqrt();
            }
            Some((d, [16.0 * gamma; 2]))
        }
        AnnoyMetric::Dot => {
            let pq = estimate_x2::<EST_DOT>(p, q, y);
            // 4γ·|p|·|y| ≤ 2γ·(|p|² + 1)·|y|: no square root waits on the centroid's norm
            // (|p| stays near 1 here, where the two agree). An infinite or NaN bound never
            // decides, so overflow falls back to the exact path.
            let ny = yy.sqrt();
            let e = cn.map(|n| 2.0 * gamma * (n + 1.0) * ny + f32::MIN_POSITIVE);
            Some((pq.map(|x| -x), e))
        }
        AnnoyMetric::Euclidean => {
            let d = estimate_x2::<EST_L2>(p, q, y);
            Some((d, d.map(|x| 4.0 * gamma * x + f32::MIN_POSITIVE)))
        }
        AnnoyMetric::Manhattan => {
            let d = estimate_x2::<EST_L1>(p, q, y);
            Some((d, d.map(|x| 4.0 * gamma * x + f32::MIN_POSITIVE)))
        }
        AnnoyMetric::Hamming => None,
    }
}

/// annoy's two-means iteration count.
const TWO_MEANS_ITERATIONS: usize = 200;

fn create_split(items: &Items<'_>, indices: &[i32], rng: &mut Kiss64) -> Split {
    let l = items.layout;
    let metric = l.metric;
    if metric == AnnoyMetric::Hamming {
        let dim = 64 * l.words;
        let splits = |pos: usize| {
            let ones = indices
                .iter()
                .filter(|&&i| (items.bits_of(i as usize)[pos / 64] >> (63 - pos % 64)) & 1 == 1)
                .count();
            ones > 0 && ones < indices.len()
        };
        let mut chosen = None;
        for _ in 0..20 {
            let pos = rng.index(dim);
            if splits(pos) {
                chosen = Some(pos);
                break;
            }
        }
        let pos = chosen
            .or_else(|| (0..dim).find(|&p| splits(p)))
            .unwrap_or(dim - 1);
        return Split {
            v: Vec::new(),
            a: 0.0,
            df: 0.0,
            bit: pos as u64,
        };
    }
    let cosine = matches!(metric, AnnoyMetric::Angular | AnnoyMetric::Dot);
    let count = indices.len();
    let i = rng.index(count);
    let mut j = rng.index(count - 1);
    if j >= i {
        j += 1;
    }
    let (ii, jj) = (indices[i] as usize, indices[j] as usize);
    let mut p = items.row(ii).to_vec();
    let mut q = items.row(jj).to_vec();
    let (mut pdf, mut qdf) = (items.dot_factors[ii], items.dot_factors[jj]);
    if metric == AnnoyMetric::Dot {
        // Normalised jointly over (v, dot_factor).
        annoy_order::normalize_with_factor(&mut p, &mut pdf);
        annoy_order::normalize_with_factor(&mut q, &mut qdf);
    } else if cosine {
        annoy_order::normalize(&mut p);
        annoy_order::normalize(&mut q);
    }
    let f = p.len();
    // Both centroids in one buffer, their squared norms and counts in arrays: which
    // one a sample moves is data-dependent and unpredictable, so it is chosen by index rather
    // than by a branch.
    let mut cn = [annoy_order::dot(&p, &p), annoy_order::dot(&q, &q)];
    let gamma = (f as f32 + 16.0) * F32_UNIT;
    let mut c = [p, q].concat();
    let mut cnt = [1i32; 2];
    // The loop draws nothing else from the generator, so the samples can be drawn up front (the
    // same sequence) and their rows prefetched a few iterations ahead.
    let modulus = Modulus::new(count);
    let samples: [usize; TWO_MEANS_ITERATIONS] =
        std::array::from_fn(|_| indices[modulus.reduce(rng.next_u64())] as usize);
    const AHEAD: usize = 16;
    for &k in &samples[..AHEAD] {
        kernels::prefetch(items.row(k));
    }
    for (t, &k) in samples.iter().enumerate() {
        if let Some(&ahead) = samples.get(t + AHEAD) {
            kernels::prefetch(items.row(ahead));
            if cosine {
                // The norm is a second scattered load (the norms array does not stay cached).
                kernels::prefetch(&items.norms[ahead..ahead + 1]);
            }
        }
        let y = items.row(k);
        // annoy divides the sample by its norm; its -ffast-math build multiplies by the
        // reciprocal square root of dot(y, y) (a zero or NaN one skips the sample).
        let yy = if cosine { items.norms[k] } else { 1.0 };
        if yy == 0.0 || yy.is_nan() {
            continue;
        }
        let (p, q) = c.split_at(f);
        // Both centroids' weights and step factors, ready before the comparison decides which
        // one moves (only a select then waits on it, not a divide).
        let weights = cnt.map(|n| n as f32);
        let steps = cnt.map(|n| 1.0 / (n + 1) as f32);
        // Which centroid is closer, from fast estimates when their error bound leaves no doubt,
        // else from annoy's exact arithmetic (see `two_means_distances`).
        let decided = items
            .estimates
            .then(|| two_means_estimates(metric, p, q, y, cn, yy, gamma))
            .flatten()
            .and_then(|(e, err)| {
                let (di, dj) = (weights[0] * e[0], weights[1] * e[1]);
                let bound = weights[0] * err[0]
                    + weights[1] * err[1]
                    + (di.abs() + dj.abs()) * 4.0 * F32_UNIT;
                ((di - dj).abs() > bound).then_some((di, dj))
            });
        let (di, dj) = decided.unwrap_or_else(|| {
            let [ep, eq] = two_means_distances(metric, p, q, y, yy);
            (weights[0] * ep, weights[1] * eq)
        });
        let inv_nrm = if cosine { annoy_order::rsqrt(yy) } else { 1.0 };
        // annoy: the strictly closer centroid moves (neither on a tie or NaN).
        if di < dj || dj < di {
            let s = (dj < di) as usize;
            let centroid = &mut c[s * f..(s + 1) * f];
            // The new squared norm (for the estimates) comes from the same pass.
            cn[s] = annoy_order::mean_step(centroid, y, weights[s], inv_nrm, steps[s]);
            cnt[s] += 1;
        }
    }
    let (p, q) = c.split_at(f);
    let mut n: Vec<f32> = p.iter().zip(q).map(|(a, b)| a - b).collect();
    let mut a = 0.0f32;
    let mut df = 0.0f32;
    match metric {
        AnnoyMetric::Dot => {
            df = pdf - qdf;
            annoy_order::normalize_with_factor(&mut n, &mut df);
        }
        AnnoyMetric::Euclidean | AnnoyMetric::Manhattan => {
            annoy_order::normalize(&mut n);
            for z in 0..n.len() {
                a += -n[z] * (p[z] + q[z]) / 2.0;
            }
        }
        _ => annoy_order::normalize(&mut n),
    }
    Split {
        v: n,
        a,
        df,
        bit: 0,
    }
}

fn margin(items: &Items<'_>, s: &Split, y: usize) -> f32 {
    match items.layout.metric {
        AnnoyMetric::Angular => annoy_order::dot(&s.v, items.row(y)),
        AnnoyMetric::Euclidean | AnnoyMetric::Manhattan => {
            s.a + annoy_order::dot(&s.v, items.row(y))
        }
        AnnoyMetric::Dot => annoy_order::dot(&s.v, items.row(y)) + s.df * s.df,
        AnnoyMetric::Hamming => {
            let pos = s.bit as usize;
            ((items.bits_of(y)[pos / 64] >> (63 - pos % 64)) & 1) as f32
        }
    }
}

/// The constant added to the plane's dot product in a float metric's margin.
fn margin_offset(metric: AnnoyMetric, s: &Split) -> f32 {
    match metric {
        AnnoyMetric::Euclidean | AnnoyMetric::Manhattan => s.a,
        AnnoyMetric::Dot => s.df * s.df,
        AnnoyMetric::Angular | AnnoyMetric::Hamming => 0.0,
    }
}

/// Items in their order, split by side without a branch on the (unpredictable) side: side 0
/// fills the buffer from the front, side 1 from the back (reversed once at the end).
struct TwoSides {
    buf: Vec<i32>,
    left: usize,
    right: usize,
}

impl TwoSides {
    fn new(n: usize) -> Self {
        TwoSides {
            buf: vec![0; n],
            left: 0,
            right: n,
        }
    }

    #[inline]
    fn put(&mut self, j: i32, side: usize) {
        // Both free ends get j; the side's end keeps it (left < right while items remain).
        self.buf[self.left] = j;
        self.buf[self.right - 1] = j;
        self.left += 1 - side;
        self.right -= side;
    }

    /// (items, number on side 0): side 0's items, then side 1's, each in input order.
    fn finish(mut self) -> (Vec<i32>, usize) {
        self.buf[self.left..].reverse();
        (self.buf, self.left)
    }
}

/// Splits `indices` by annoy's side rule against the split, keeping their order, with the coin
/// flips for exact zeros drawn in item order. Float margins are computed four items per kernel
/// call (the f32 values are those one-by-one computation gives up to the sum order); with
/// `half`, from the binary16 rows first (see [`HalfRows`]). Also returns how many items the
/// half-precision pass left undecided.
fn partition(
    items: &Items<'_>,
    s: &Split,
    indices: &[i32],
    half: Option<&HalfRows>,
    rng: &mut Kiss64,
) -> (Vec<i32>, usize, usize) {
    let metric = items.layout.metric;
    let mut sides = TwoSides::new(indices.len());
    if metric == AnnoyMetric::Hamming {
        for &j in indices {
            sides.put(j, side_of(metric, margin(items, s, j as usize), rng));
        }
        let (buf, left) = sides.finish();
        return (buf, left, 0);
    }
    let k = kernels::kernels();
    let offset = margin_offset(metric, s);
    let half = half
        .filter(|_| indices.len() > HALF_MIN_ITEMS)
        .and_then(|h| Some((h, k.dot_x4_f16?)));
    let bound = half.map(|_| HalfBound::new(&s.v));
    let mut undecided = 0;
    // Rows two groups ahead are prefetched: a node's items are scattered over the whole set.
    const AHEAD: usize = 32;
    let mut c = indices.chunks_exact(4);
    let mut next = AHEAD;
    for g in &mut c {
        for &j in indices
            .get(next..(next + 4).min(indices.len()))
            .unwrap_or(&[])
        {
            match half {
                Some((h, _)) => kernels::prefetch(h.row(j as usize)),
                None => kernels::prefetch(items.row(j as usize)),
            }
        }
        next += 4;
        let g: [i32; 4] = [g[0], g[1], g[2], g[3]];
        match (half, bound) {
            (Some((h, dot4h)), Some(b)) => {
                let approx = dot4h(&s.v, g.map(|j| h.row(j as usize)));
                for lane in 0..4 {
                    let j = g[lane];
                    let m = offset + approx[lane];
                    let side = if m.abs() > b.error(h.norms[j as usize]) {
                        (m > 0.0) as usize
                    } else {
                        undecided += 1;
                        // The f32 margin as the plain pass computes it (the same kernel, so
                        // the same bits); the row is loaded once, the copies hit the cache.
                        let row = items.row(j as usize);
                        let e = annoy_order::dot(&s.v, row);
                        side_of(metric, offset + e, rng)
                    };
                    sides.put(j, side);
                }
            }
            _ => {
                let e = annoy_order::dot_x4(&s.v, g.map(|j| items.row(j as usize)));
                for lane in 0..4 {
                    sides.put(g[lane], side_of(metric, offset + e[lane], rng));
                }
            }
        }
    }
    for &j in c.remainder() {
        sides.put(j, side_of(metric, margin(items, s, j as usize), rng));
    }
    let (buf, left) = sides.finish();
    (buf, left, undecided)
}

/// How far a margin computed from binary16 rows can be from the f32 one, for one plane `v`:
/// `rel · ‖x‖ + abs`. Rounding x to binary16 moves each value by at most 2⁻¹¹·|xᵢ| + 2⁻²⁵
/// (subnormals), i.e. the dot by 2⁻¹¹‖v‖‖x‖ + 2⁻²⁵√d‖v‖; each f32 summation (the approximate
/// and the exact one) errs by at most γ = (d+8)·2⁻²⁴ times ‖v‖‖x‖. Twice the sum covers the
/// rounding of the norms, of the offset addition and of this bound itself.
#[derive(Clone, Copy)]
struct HalfBound {
    rel: f32,
    abs: f32,
}

impl HalfBound {
    fn new(v: &[f32]) -> Self {
        let d = v.len() as f64;
        let vn = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        let gamma = (d + 8.0) * 2f64.powi(-24);
        let u16 = 2f64.powi(-11);
        HalfBound {
            rel: (2.0 * vn * (u16 + gamma * (2.0 + u16))) as f32,
            abs: (2.0 * vn * 2f64.powi(-25) * d.sqrt() * (1.0 + gamma)) as f32,
        }
    }

    #[inline]
    fn error(&self, norm: f32) -> f32 {
        self.rel * norm + self.abs
    }
}

/// annoy's side rule: positive margin → 1; an exact zero → a coin flip (hamming: the bit).
fn side_of(metric: AnnoyMetric, m: f32, rng: &mut Kiss64) -> usize {
    if metric == AnnoyMetric::Hamming {
        return m as usize;
    }
    if m != 0.0 {
        (m > 0.0) as usize
    } else {
        rng.flip() as usize
    }
}

/// max(fr, 1 − fr) with annoy's f32 rounding.
fn imbalance(l: usize, r: usize) -> f64 {
    let fr = (l as f64 / (l as f64 + r as f64 + 1e-9)) as f32;
    fr.max(1.0 - fr) as f64
}

/// annoy's `make_tree`, appending this tree's nodes to `out` in post-order.
pub fn make_tree(
    items: &Items<'_>,
    indices: &[i32],
    is_root: bool,
    rng: &mut Kiss64,
    half: Option<&HalfRows>,
    out: &mut Vec<BuildNode>,
) -> Ref {
    let k = items.layout.k;
    let n_items = items.n_items;
    if indices.len() == 1 && !is_root {
        return Ref::Item(indices[0]);
    }
    if indices.len() <= k && (!is_root || n_items <= k || indices.len() == 1) {
        let nd = if is_root {
            n_items as i32
        } else {
            indices.len() as i32
        };
        out.push(BuildNode::Leaf {
            n_descendants: nd,
            ids: indices.to_vec(),
        });
        return Ref::Local(out.len() - 1);
    }
    let mut split;
    let mut half = half;
    let (mut buf, mut left);
    let mut attempt = 0;
    loop {
        split = create_split(items, indices, rng);
        let undecided;
        (buf, left, undecided) = partition(items, &split, indices, half, rng);
        if undecided * HALF_UNDECIDED_LIMIT > indices.len() {
            half = None;
        }
        attempt += 1;
        if imbalance(left, indices.len() - left) < 0.95 || attempt == 3 {
            break;
        }
    }
    while imbalance(left, indices.len() - left) > 0.99 {
        if items.layout.metric == AnnoyMetric::Hamming {
            split.bit = 0;
        } else {
            split.v.iter_mut().for_each(|x| *x = 0.0);
        }
        let mut sides = TwoSides::new(indices.len());
        for &j in indices {
            sides.put(j, rng.flip() as usize);
        }
        (buf, left) = sides.finish();
    }
    let (l, r) = buf.split_at(left);
    let sides = [l, r];
    let flip = (l.len() > r.len()) as usize;
    let mut children = [Ref::Item(0); 2];
    for s in 0..2 {
        let which = s ^ flip;
        children[which] = make_tree(items, sides[which], false, rng, half, out);
    }
    let nd = if is_root {
        n_items as i32
    } else {
        indices.len() as i32
    };
    out.push(BuildNode::Split {
        n_descendants: nd,
        children,
        plane: split.v,
        a: split.a,
        dot_factor: split.df,
        bit: split.bit,
    });
    Ref::Local(out.len() - 1)
}

/// Builds the trees: `n_trees` (> 0) spread over `threads` as annoy does (thread t builds
/// ⌊(q + t) / threads⌋ trees with seed + t), or, for `None`, trees until the tree nodes reach
/// the item count (annoy's -1; built on one RNG stream). Returns each tree's nodes in order.
pub fn build_trees(
    items: &Items<'_>,
    n_trees: Option<usize>,
    threads: usize,
    seed: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Vec<Vec<BuildNode>> {
    let indices: Vec<i32> = (0..items.n_items as i32).collect();
    match n_trees {
        None => {
            let mut rng = Kiss64::new(seed);
            let mut trees = Vec::new();
            let mut n_nodes = items.n_items;
            while n_nodes < 2 * items.n_items {
                let mut nodes = Vec::new();
                make_tree(items, &indices, true, &mut rng, items.half, &mut nodes);
                n_nodes += nodes.len();
                trees.push(nodes);
                progress(n_nodes as u64, 2 * items.n_items as u64);
            }
            trees
        }
        Some(q) => {
            let threads = threads.max(1);
            let done = std::sync::atomic::AtomicU64::new(0);
            let per_thread: Vec<Vec<Vec<BuildNode>>> = (0..threads)
                .into_par_iter()
                .map(|t| {
                    let mut rng = Kiss64::new(seed.wrapping_add(t as u64));
                    let count = (q + t) / threads;
                    (0..count)
                        .map(|_| {
                            let mut nodes = Vec::new();
                            make_tree(items, &indices, true, &mut rng, items.half, &mut nodes);
                            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            progress(d, q as u64);
                            nodes
                        })
                        .collect()
                })
                .collect();
            per_thread.into_iter().flatten().collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kiss64_known_answers() {
        let mut r = Kiss64::new(DEFAULT_SEED);
        assert_eq!(
            [r.next_u64(), r.next_u64(), r.next_u64()],
            [
                8932985056925012148,
                5710300428094272059,
                18342510866933518593
            ]
        );
        let mut r = Kiss64::new(42);
        assert_eq!(
            [r.next_u64(), r.next_u64(), r.next_u64()],
            [
                5680804532875375661,
                421217147685971266,
                15020224898898924438
            ]
        );
        let mut r = Kiss64::new(42);
        assert_eq!([r.index(100), r.index(100), r.index(100)], [61, 66, 38]);
    }

    const FLOAT_METRICS: [AnnoyMetric; 4] = [
        AnnoyMetric::Angular,
        AnnoyMetric::Euclidean,
        AnnoyMetric::Manhattan,
        AnnoyMetric::Dot,
    ];

    /// Float-metric items over `v` (no binary16 copies, estimates on).
    fn float_items<'a>(
        metric: AnnoyMetric,
        d: usize,
        v: &'a [f32],
        norms: &'a [f32],
        dot_factors: &'a [f32],
    ) -> Items<'a> {
        Items {
            layout: NodeLayout::new(metric, d),
            n_items: v.len() / d,
            v,
            bits: &[],
            norms,
            dot_factors,
            half: None,
            estimates: true,
        }
    }

    /// Data sets the half-precision pass must get right: ordinary, far from the origin (the
    /// pass cannot decide), integer-valued with duplicates (exact-zero margins and their coin
    /// flips), binary16 subnormals, values near binary16's largest.
    fn awkward_sets(d: usize) -> Vec<(&'static str, Vec<f32>)> {
        // Subsets of half of them are still above HALF_MIN_ITEMS.
        let g = crate::synth::gaussian(3000, d, 7).into_vec();
        let mut r = crate::synth::Rng::new(3);
        vec![
            ("gaussian", g.clone()),
            ("offset", g.iter().map(|x| 300.0 + 0.01 * x).collect()),
            (
                "integers",
                (0..g.len()).map(|_| r.below(5) as f32 - 2.0).collect(),
            ),
            ("tiny", g.iter().map(|x| 2e-6 * x).collect()),
            (
                "zero rows",
                g.chunks(d)
                    .enumerate()
                    .flat_map(|(i, row)| row.iter().map(move |x| if i % 3 == 0 { 0.0 } else { *x }))
                    .collect(),
            ),
            (
                "large",
                g.iter().map(|x| (9000.0 * x).clamp(-6e4, 6e4)).collect(),
            ),
        ]
    }

    #[test]
    fn half_precision_partition_equals_the_f32_one() {
        let Some(_) = kernels::kernels().dot_x4_f16 else {
            eprintln!("no F16C on this CPU: nothing to compare");
            return;
        };
        for d in [37usize, 64] {
            for (name, v) in awkward_sets(d) {
                let n = v.len() / d;
                let sq = kernels::row_norms(&v, d);
                let half = HalfRows::new(&v, d, None, 1).expect("in range");
                for metric in FLOAT_METRICS {
                    let dfs = vec![0.5f32; n];
                    let items = float_items(metric, d, &v, &sq, &dfs);
                    let all: Vec<i32> = (0..n as i32).collect();
                    let (mut undecided, mut zeros, mut seen) = (0, 0, 0);
                    for trial in 0..20u64 {
                        let mut rng = Kiss64::new(trial);
                        // Splits of random subsets, as at every level of a tree.
                        let subset: Vec<i32> = all
                            .iter()
                            .copied()
                            .filter(|_| rng.flip() || trial == 0)
                            .collect();
                        let split = create_split(&items, &subset, &mut rng);
                        let (mut r1, mut r2) = (rng.clone(), rng.clone());
                        let exact = partition(&items, &split, &subset, None, &mut r1);
                        let fast = partition(&items, &split, &subset, Some(&half), &mut r2);
                        assert_eq!(
                            (&exact.0, exact.1),
                            (&fast.0, fast.1),
                            "{name} d={d} {metric:?}"
                        );
                        assert_eq!(r1.next_u64(), r2.next_u64(), "same coin flips");
                        undecided += fast.2;
                        seen += subset.len();
                        zeros += subset
                            .iter()
                            .filter(|&&j| margin(&items, &split, j as usize) == 0.0)
                            .count();
                    }
                    eprintln!(
                        "{name} d={d} {metric:?}: {undecided} undecided, {zeros} exact zeros"
                    );
                    if name == "gaussian" || name == "large" {
                        // The pass decides nearly everything on ordinary data.
                        assert!(
                            undecided * 50 < seen,
                            "{name} {metric:?}: {undecided}/{seen}"
                        );
                    }
                    if name == "zero rows" && metric == AnnoyMetric::Angular {
                        assert!(zeros > 1000, "coin flips exercised: {zeros}");
                    }
                }
            }
        }
    }

    /// Two-means from the fast estimates (falling back to annoy's arithmetic only where their
    /// error bound leaves doubt) moves the same centroids as annoy's arithmetic alone: the same
    /// split planes bit for bit and the same random draws, on data full of near-ties (offset),
    /// exact ties (integers), tiny and large values and zero vectors.
    #[test]
    fn estimated_two_means_gives_the_exact_splits() {
        for d in [37usize, 64] {
            for (name, v) in awkward_sets(d) {
                let n = v.len() / d;
                let sq: Vec<f32> = v.chunks(d).map(|r| annoy_order::dot(r, r)).collect();
                let dfs = annoy_order::dot_factors(&sq);
                for metric in FLOAT_METRICS {
                    let fast = float_items(metric, d, &v, &sq, &dfs);
                    let exact = Items {
                        estimates: false,
                        ..fast
                    };
                    for trial in 0..30u64 {
                        let mut rng = Kiss64::new(trial);
                        let subset: Vec<i32> =
                            (0..n as i32).filter(|_| rng.flip() || trial == 0).collect();
                        let (mut r1, mut r2) = (rng.clone(), rng.clone());
                        let a = create_split(&exact, &subset, &mut r1);
                        let b = create_split(&fast, &subset, &mut r2);
                        let bits = |s: &Split| {
                            let mut b: Vec<u32> = s.v.iter().map(|x| x.to_bits()).collect();
                            b.extend([s.a.to_bits(), s.df.to_bits()]);
                            b
                        };
                        assert_eq!(bits(&a), bits(&b), "{name} d={d} {metric:?} trial {trial}");
                        assert_eq!(r1.next_u64(), r2.next_u64(), "same draws");
                    }
                }
            }
        }
    }

    #[test]
    fn half_rows_refuse_values_beyond_binary16() {
        if kernels::kernels().f16_encode.is_none() {
            return;
        }
        assert!(HalfRows::new(&[1.0, 70_000.0], 2, None, 1).is_none());
        assert!(HalfRows::new(&[1.0, -65_000.0], 2, None, 2).is_some());
    }

    #[test]
    fn modulus_equals_the_remainder_operator() {
        let mut r = Kiss64::new(9);
        let mut divisors: Vec<usize> = vec![1, 2, 3, 7, 64, 100, 1000, 65_537, u32::MAX as usize];
        divisors.extend((0..200).map(|_| 1 + (r.next_u64() >> (r.next_u64() % 64)) as usize));
        for d in divisors {
            let m = Modulus::new(d);
            let mut xs: Vec<u64> = vec![0, 1, u64::MAX, u64::MAX - 1, d as u64, d as u64 - 1];
            xs.extend((0..2000).map(|_| r.next_u64()));
            xs.extend((0..50).map(|k| u64::MAX - k * (d as u64)));
            for a in xs {
                assert_eq!(m.reduce(a), (a % d as u64) as usize, "{a} % {d}");
            }
        }
    }

    #[test]
    fn imbalance_uses_f32_rounding() {
        assert!(imbalance(57, 3) < 0.95);
        assert!(imbalance(99, 1) > 0.99);
    }
}
