//! k-means as faiss's `IndexIVF::train` runs it (docs/algorithms.md): subsample with
//! `rand_perm(seed)`, initialise from `rand_perm(seed + 1)`, `niter` rounds of assign (exact k=1
//! search, ties to the lowest centroid) and f32 means accumulated in point order, faiss's
//! empty-cluster split, spherical renormalisation for inner product, early stop on an unchanged
//! objective. The point order and f32 arithmetic are kept so centroids come out bit-identical.

use super::rng::{rand_perm, FaissRng};
use crate::error::{Error, Result};
use crate::exact::ExactSearch;
use crate::kernels;
use crate::kernels::faiss_order::fvec_distance;
use crate::kernels::faiss_order::pq::{has_nearest_l2_fast, nearest_l2_fast, transpose_centroids};
use crate::metric::Metric;
use crate::vectors::VectorsView;
use rayon::prelude::*;

/// Clustering settings (faiss's IVF defaults).
#[derive(Debug, Clone, Copy)]
pub struct KMeansParams {
    /// Assign-and-update rounds; fewer when the objective stops changing.
    pub niter: usize,
    /// Seed of the subsampling permutation; `seed + 1` picks the initial centroids.
    pub seed: i64,
    /// Training points used per centroid; a larger set is subsampled to `k` times this.
    pub max_points_per_centroid: usize,
    /// Renormalise the centroids to unit length after each update (for inner product).
    pub spherical: bool,
}

impl KMeansParams {
    /// What `IndexIVF` uses: 10 iterations, seed 1234, 256 points per centroid, spherical for IP.
    pub fn ivf(metric: Metric) -> Self {
        KMeansParams {
            niter: 10,
            seed: 1234,
            max_points_per_centroid: 256,
            spherical: metric == Metric::InnerProduct,
        }
    }
}

fn renorm(c: &mut [f32], d: usize) {
    for row in c.chunks_exact_mut(d) {
        let nr = fvec_distance(row, row, false);
        if nr > 0.0 {
            let inv = 1.0 / nr.sqrt();
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

/// Below this many values (points × d) faiss assigns points with its direct kernels, whose
/// arithmetic `fvec_distance` reproduces; above it, with sgemm (ours: GEMM, equal up to
/// near-ties).
const DIRECT_LIMIT: usize = 128_000;

/// Dimensions up to this are assigned with `nearest_l2_fast` past the direct threshold.
const LANE_MAX_D: usize = 16;

/// Nearest centroid of every row of `x` and its distance, as faiss assigns: below its sgemm
/// threshold with its direct kernels (the first best wins), above it with our GEMM search
/// (equal up to near-ties) or, for small d on AVX-512, with a lane kernel that beats a GEMM of
/// inner dimension d. Used by k-means and by IVF adds.
pub(crate) fn nearest_centroids(
    x: VectorsView<'_>,
    cent: &[f32],
    metric: Metric,
) -> (Vec<usize>, Vec<f32>) {
    let (n, d) = (x.rows(), x.dim());
    let mut assign = vec![0usize; n];
    let mut dist = vec![0f32; n];
    // Below 8 values its FMA chain is faiss's direct arithmetic (exact at any n); up to 16,
    // only past the threshold, where faiss itself uses sgemm.
    let fast = (d < 8 || d <= LANE_MAX_D && n * d >= DIRECT_LIMIT)
        && metric == Metric::L2
        && has_nearest_l2_fast();
    let ct = if fast {
        transpose_centroids(cent, d)
    } else {
        Vec::new()
    };
    let k = cent.len() / d;
    if fast {
        // Small d (PQ sub-spaces): 16 centroids per AVX-512 step beat a GEMM of inner
        // dimension d and the pairwise kernel.
        assign
            .par_chunks_mut(256)
            .zip(dist.par_chunks_mut(256))
            .enumerate()
            .for_each(|(c, (a, o))| {
                for (i, (a, o)) in a.iter_mut().zip(o.iter_mut()).enumerate() {
                    (*a, *o) = nearest_l2_fast(x.row(c * 256 + i), &ct, k).expect("AVX-512");
                }
            });
    } else if n * d < DIRECT_LIMIT {
        assign_direct(x, cent, metric, &mut assign, &mut dist);
    } else {
        let norms = if metric == Metric::L2 {
            kernels::row_norms(cent, d)
        } else {
            Vec::new()
        };
        let res = ExactSearch::new(cent, d, &norms, metric).search(x, 1);
        for (a, &id) in assign.iter_mut().zip(&res.ids) {
            *a = id.max(0) as usize;
        }
        dist.copy_from_slice(&res.distances);
    }
    (assign, dist)
}

/// Nearest centroid of every point with faiss's direct kernels: the first best wins.
fn assign_direct(
    xs: VectorsView<'_>,
    cent: &[f32],
    metric: Metric,
    assign: &mut [usize],
    dist: &mut [f32],
) {
    let d = xs.dim();
    let l2 = metric == Metric::L2;
    assign
        .par_iter_mut()
        .zip(dist.par_iter_mut())
        .enumerate()
        .for_each(|(i, (a, out))| {
            let x = xs.row(i);
            let (mut best, mut best_id) = (metric.padding(), 0usize);
            for (j, c) in cent.chunks_exact(d).enumerate() {
                let v = fvec_distance(x, c, l2);
                if metric.better(v, best) {
                    best = v;
                    best_id = j;
                }
            }
            *a = best_id;
            *out = best;
        });
}

/// Trains `k` centroids on `x`; `progress(iteration, niter)` is called after each iteration.
pub fn kmeans(
    x: VectorsView<'_>,
    k: usize,
    metric: Metric,
    p: KMeansParams,
    progress: &dyn Fn(u64, u64),
) -> Result<Vec<f32>> {
    let d = x.dim();
    let n = x.rows();
    if n < k {
        return Err(Error::invalid(format!(
            "IVF training needs at least as many vectors as lists: got {n} vectors for nlists={k}; \
             use fewer lists (about 4·sqrt(n) = {} here) or more data",
            ((4.0 * (n as f64).sqrt()) as usize).max(1)
        )));
    }
    x.check_finite("training")?;
    // Subsample.
    let sub: Vec<f32>;
    let mut xs = x;
    if n > k * p.max_points_per_centroid {
        let perm = rand_perm(n, p.seed);
        let m = k * p.max_points_per_centroid;
        sub = perm[..m]
            .iter()
            .flat_map(|&i| x.row(i).iter().copied())
            .collect();
        xs = VectorsView::new(&sub, d)?;
    }
    let n = xs.rows();
    if n == k {
        return Ok(xs.as_slice().to_vec());
    }
    let perm = rand_perm(n, p.seed + 1);
    let mut cent: Vec<f32> = perm[..k]
        .iter()
        .flat_map(|&i| xs.row(i).iter().copied())
        .collect();
    if p.spherical {
        renorm(&mut cent, d);
    }
    let mut prev_obj: Option<f32> = None;
    let mut assign: Vec<usize>;
    let mut dist: Vec<f32>;
    for it in 0..p.niter {
        // Assign: exact k=1 search of the points over the current centroids.
        (assign, dist) = nearest_centroids(xs, &cent, metric);
        let mut obj = 0f32;
        for &v in &dist {
            obj += v;
        }
        // Means in point order, f32: threads split the centroids (not the points), so every
        // centroid still sums its points in point order — the bit-identical result, in parallel.
        let mut newc = vec![0f32; k * d];
        let mut h = vec![0f32; k];
        let per = k.div_ceil(rayon::current_num_threads()).max(1);
        newc.par_chunks_mut(per * d)
            .zip(h.par_chunks_mut(per))
            .enumerate()
            .for_each(|(part, (cs, hs))| {
                let c0 = part * per;
                let c1 = c0 + hs.len();
                for (&c, row) in assign.iter().zip(xs.iter()) {
                    if c >= c0 && c < c1 {
                        let local = c - c0;
                        for (a, b) in cs[local * d..(local + 1) * d].iter_mut().zip(row) {
                            *a += *b;
                        }
                        hs[local] += 1.0;
                    }
                }
                for (cent, &count) in cs.chunks_exact_mut(d).zip(hs.iter()) {
                    if count != 0.0 {
                        let inv = 1.0f32 / count;
                        cent.iter_mut().for_each(|v| *v *= inv);
                    }
                }
            });
        split_empty_clusters(&mut newc, &mut h, d, n);
        if p.spherical {
            renorm(&mut newc, d);
        }
        cent = newc;
        progress(it as u64 + 1, p.niter as u64);
        if it > 0 && prev_obj == Some(obj) {
            break;
        }
        prev_obj = Some(obj);
    }
    Ok(cent)
}

/// faiss's `split_clusters`: every empty cluster takes a copy of a donor picked with probability
/// (size − 1)/(n − k), perturbed by ±1/1024 in opposite directions, and half its points.
fn split_empty_clusters(cent: &mut [f32], h: &mut [f32], d: usize, n: usize) {
    let k = h.len();
    if !h.contains(&0.0) {
        return;
    }
    let mut rng = FaissRng::new(1234);
    let eps = 1.0f32 / 1024.0;
    for ci in 0..k {
        if h[ci] != 0.0 {
            continue;
        }
        let mut cj = 0usize;
        let mut found = false;
        for _ in 0..10 * k {
            let p = ((h[cj] as f64 - 1.0) / (n - k) as f32 as f64) as f32;
            let r = rng.rand_float();
            if r < p {
                found = true;
                break;
            }
            cj = (cj + 1) % k;
        }
        if !found {
            cj = (0..k).fold(0, |best, c| if h[c] > h[best] { c } else { best });
        }
        let donor: Vec<f32> = cent[cj * d..(cj + 1) * d].to_vec();
        cent[ci * d..(ci + 1) * d].copy_from_slice(&donor);
        for j in 0..d {
            if j % 2 == 0 {
                cent[ci * d + j] *= 1.0 + eps;
                cent[cj * d + j] *= 1.0 - eps;
            } else {
                cent[ci * d + j] *= 1.0 - eps;
                cent[cj * d + j] *= 1.0 + eps;
            }
        }
        h[ci] = h[cj] / 2.0;
        h[cj] -= h[ci];
    }
}
