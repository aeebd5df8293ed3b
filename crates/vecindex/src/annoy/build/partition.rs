//! Partitioning a node's items by a split: annoy's side rule with its coin flips, the
//! binary16 row copies (`HalfRows`) and the error bound of the half-precision margin pass, the
//! imbalance measure behind the balance checks.

use super::rng::Kiss64;
use super::split::{margin, margin_offset, Split};
use super::tree::Items;
use crate::annoy::arith;
use crate::kernels;
use crate::metric::Metric;
use rayon::prelude::*;

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

/// Items in their order, split by side without a branch on the (unpredictable) side: side 0
/// fills the buffer from the front, side 1 from the back (reversed once at the end).
pub(super) struct TwoSides {
    buf: Vec<i32>,
    left: usize,
    right: usize,
}

impl TwoSides {
    pub(super) fn new(n: usize) -> Self {
        TwoSides {
            buf: vec![0; n],
            left: 0,
            right: n,
        }
    }

    #[inline]
    pub(super) fn put(&mut self, j: i32, side: usize) {
        // Both free ends get j; the side's end keeps it (left < right while items remain).
        self.buf[self.left] = j;
        self.buf[self.right - 1] = j;
        self.left += 1 - side;
        self.right -= side;
    }

    /// (items, number on side 0): side 0's items, then side 1's, each in input order.
    pub(super) fn finish(mut self) -> (Vec<i32>, usize) {
        self.buf[self.left..].reverse();
        (self.buf, self.left)
    }
}

/// Splits `indices` by annoy's side rule against the split, keeping their order, with the coin
/// flips for exact zeros drawn in item order. Float margins are computed four items per kernel
/// call (the f32 values are those one-by-one computation gives up to the sum order); with
/// `half`, from the binary16 rows first (see [`HalfRows`]). Also returns how many items the
/// half-precision pass left undecided.
pub(super) fn partition(
    items: &Items<'_>,
    s: &Split,
    indices: &[i32],
    half: Option<&HalfRows>,
    rng: &mut Kiss64,
) -> (Vec<i32>, usize, usize) {
    let metric = items.layout.metric;
    let mut sides = TwoSides::new(indices.len());
    if metric == Metric::Hamming {
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
                        let e = arith::dot(&s.v, row);
                        side_of(metric, offset + e, rng)
                    };
                    sides.put(j, side);
                }
            }
            _ => {
                let e = arith::dot_x4(&s.v, g.map(|j| items.row(j as usize)));
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
fn side_of(metric: Metric, m: f32, rng: &mut Kiss64) -> usize {
    if metric == Metric::Hamming {
        return m as usize;
    }
    if m != 0.0 {
        (m > 0.0) as usize
    } else {
        rng.flip() as usize
    }
}

/// max(fr, 1 − fr) with annoy's f32 rounding.
pub(super) fn imbalance(l: usize, r: usize) -> f64 {
    let fr = (l as f64 / (l as f64 + r as f64 + 1e-9)) as f32;
    fr.max(1.0 - fr) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annoy::build::split::create_split;
    use crate::annoy::build::test_data::{awkward_sets, float_items, FLOAT_METRICS};

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
                    if name == "zero rows" && metric == Metric::Angular {
                        assert!(zeros > 1000, "coin flips exercised: {zeros}");
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
    fn imbalance_uses_f32_rounding() {
        assert!(imbalance(57, 3) < 0.95);
        assert!(imbalance(99, 1) > 0.99);
    }
}
