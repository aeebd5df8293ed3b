//! Split planes: annoy's two-means per metric (its exact distances, and the fast estimates with
//! their error bounds that decide where the bound allows), the plane and offset it yields, and
//! each metric's margin against a split.

use super::rng::{Kiss64, Modulus};
use super::tree::Items;
use crate::kernels;
use crate::metric::Metric;
// Splits use annoy's own float arithmetic, so that every comparison comes out as in annoy and
// the trees are annoy's (see `annoy::arith`).
use crate::annoy::arith;

/// A split under construction.
#[derive(Clone)]
pub(super) struct Split {
    pub(super) v: Vec<f32>,
    pub(super) a: f32,
    pub(super) df: f32,
    pub(super) bit: u64,
}

/// annoy's angular two-means distance from a known dot(p, y); a zero cached norm is recomputed.
fn angular_dist_from(py: f32, pn: f32, p: &[f32], yn: f32, y: &[f32]) -> f32 {
    let pp = if pn != 0.0 { pn } else { arith::dot(p, p) };
    let qq = if yn != 0.0 { yn } else { arith::dot(y, y) };
    arith::angular_distance(py, pp, qq)
}

/// 2⁻²⁴, the unit roundoff of f32.
const F32_UNIT: f32 = f32::EPSILON / 2.0;

/// annoy's two-means distances from `p` and `q` to the sample `y` (`yy` = dot(y, y) for the
/// cosine metrics), in annoy's exact arithmetic.
fn two_means_distances(metric: Metric, p: &[f32], q: &[f32], y: &[f32], yy: f32) -> [f32; 2] {
    match metric {
        Metric::Angular | Metric::Cosine => {
            let [a, b] = arith::dot_x2(p, q, y);
            [
                angular_dist_from(a, 0.0, p, yy, y),
                angular_dist_from(b, 0.0, q, yy, y),
            ]
        }
        Metric::Dot | Metric::InnerProduct => arith::dot_x2(p, q, y).map(|x| -x),
        Metric::Euclidean | Metric::L2 => arith::l2sq_x2(p, q, y),
        Metric::Manhattan => arith::l1_x2(p, q, y),
        Metric::Hamming => unreachable!("hamming has no two-means"),
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
    metric: Metric,
    p: &[f32],
    q: &[f32],
    y: &[f32],
    cn: [f32; 2],
    yy: f32,
    gamma: f32,
) -> Option<([f32; 2], [f32; 2])> {
    use arith::{estimate_x2, EST_DOT, EST_L1, EST_L2};
    match metric {
        Metric::Angular | Metric::Cosine => {
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
        Metric::Dot | Metric::InnerProduct => {
            let pq = estimate_x2::<EST_DOT>(p, q, y);
            // 4γ·|p|·|y| ≤ 2γ·(|p|² + 1)·|y|: no square root waits on the centroid's norm
            // (|p| stays near 1 here, where the two agree). An infinite or NaN bound never
            // decides, so overflow falls back to the exact path.
            let ny = yy.sqrt();
            let e = cn.map(|n| 2.0 * gamma * (n + 1.0) * ny + f32::MIN_POSITIVE);
            Some((pq.map(|x| -x), e))
        }
        Metric::Euclidean | Metric::L2 => {
            let d = estimate_x2::<EST_L2>(p, q, y);
            Some((d, d.map(|x| 4.0 * gamma * x + f32::MIN_POSITIVE)))
        }
        Metric::Manhattan => {
            let d = estimate_x2::<EST_L1>(p, q, y);
            Some((d, d.map(|x| 4.0 * gamma * x + f32::MIN_POSITIVE)))
        }
        Metric::Hamming => None,
    }
}

/// annoy's two-means iteration count.
const TWO_MEANS_ITERATIONS: usize = 200;

pub(super) fn create_split(items: &Items<'_>, indices: &[i32], rng: &mut Kiss64) -> Split {
    let l = items.layout;
    let metric = l.metric;
    if metric == Metric::Hamming {
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
    let cosine = matches!(metric, Metric::Angular | Metric::Dot);
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
    if metric == Metric::Dot {
        // Normalised jointly over (v, dot_factor).
        arith::normalize_with_factor(&mut p, &mut pdf);
        arith::normalize_with_factor(&mut q, &mut qdf);
    } else if cosine {
        arith::normalize(&mut p);
        arith::normalize(&mut q);
    }
    let f = p.len();
    // Both centroids in one buffer, their squared norms and counts in arrays: which
    // one a sample moves is data-dependent and unpredictable, so it is chosen by index rather
    // than by a branch.
    let mut cn = [arith::dot(&p, &p), arith::dot(&q, &q)];
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
        let inv_nrm = if cosine { arith::rsqrt(yy) } else { 1.0 };
        // annoy: the strictly closer centroid moves (neither on a tie or NaN).
        if di < dj || dj < di {
            let s = (dj < di) as usize;
            let centroid = &mut c[s * f..(s + 1) * f];
            // The new squared norm (for the estimates) comes from the same pass.
            cn[s] = arith::mean_step(centroid, y, weights[s], inv_nrm, steps[s]);
            cnt[s] += 1;
        }
    }
    let (p, q) = c.split_at(f);
    let mut n: Vec<f32> = p.iter().zip(q).map(|(a, b)| a - b).collect();
    let mut a = 0.0f32;
    let mut df = 0.0f32;
    match metric {
        Metric::Dot | Metric::InnerProduct => {
            df = pdf - qdf;
            arith::normalize_with_factor(&mut n, &mut df);
        }
        Metric::Euclidean | Metric::L2 | Metric::Manhattan => {
            arith::normalize(&mut n);
            for z in 0..n.len() {
                a += -n[z] * (p[z] + q[z]) / 2.0;
            }
        }
        _ => arith::normalize(&mut n),
    }
    Split {
        v: n,
        a,
        df,
        bit: 0,
    }
}

pub(super) fn margin(items: &Items<'_>, s: &Split, y: usize) -> f32 {
    match items.layout.metric {
        Metric::Angular | Metric::Cosine => arith::dot(&s.v, items.row(y)),
        Metric::Euclidean | Metric::L2 | Metric::Manhattan => s.a + arith::dot(&s.v, items.row(y)),
        Metric::Dot | Metric::InnerProduct => arith::dot(&s.v, items.row(y)) + s.df * s.df,
        Metric::Hamming => {
            let pos = s.bit as usize;
            ((items.bits_of(y)[pos / 64] >> (63 - pos % 64)) & 1) as f32
        }
    }
}

/// The constant added to the plane's dot product in a float metric's margin.
pub(super) fn margin_offset(metric: Metric, s: &Split) -> f32 {
    match metric {
        Metric::Euclidean | Metric::L2 | Metric::Manhattan => s.a,
        Metric::Dot | Metric::InnerProduct => s.df * s.df,
        Metric::Angular | Metric::Cosine | Metric::Hamming => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annoy::build::test_data::{awkward_sets, float_items, FLOAT_METRICS};

    /// Two-means from the fast estimates (falling back to annoy's arithmetic only where their
    /// error bound leaves doubt) moves the same centroids as annoy's arithmetic alone: the same
    /// split planes bit for bit and the same random draws, on data full of near-ties (offset),
    /// exact ties (integers), tiny and large values and zero vectors.
    #[test]
    fn estimated_two_means_gives_the_exact_splits() {
        for d in [37usize, 64] {
            for (name, v) in awkward_sets(d) {
                let n = v.len() / d;
                let sq: Vec<f32> = v.chunks(d).map(|r| arith::dot(r, r)).collect();
                let dfs = arith::dot_factors(&sq);
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
}
