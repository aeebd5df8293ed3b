//! faiss's `ProductQuantizer`: a vector cut into `m` sub-vectors of `d/m` values, each replaced
//! by the index of its nearest of `2^nbits` centroids (k-means per sub-space), the indexes
//! packed LSB-first. Distances are sums of per-sub-quantizer look-up tables (ADC). Training,
//! encoding and the tables follow faiss 1.15.1's arithmetic (docs/algorithms.md §7).

pub mod format;

use super::kmeans::{kmeans, KMeansParams};
use crate::error::{Error, Result};
use crate::kernels::faiss_order::fvec_distance;
use crate::kernels::faiss_order::pq::{nearest_l2, sub_distances, transpose_centroids, PqShape};
use crate::metric::Metric;
use crate::vectors::VectorsView;

/// The largest `nbits` faiss's reader accepts.
pub const MAX_NBITS: usize = 24;

/// The largest `nbits` vecindex trains (65,536 centroids per sub-space).
pub const MAX_TRAIN_NBITS: usize = 16;

/// A product quantizer: shape and centroids (`(m, ksub, dsub)` row-major).
#[derive(Debug, Clone)]
pub struct ProductQuantizer {
    /// Dimension of the vectors.
    pub d: usize,
    /// Sub-quantizers and bits per index.
    pub shape: PqShape,
    /// `m · ksub · dsub` values once trained, empty before.
    pub centroids: Vec<f32>,
    /// Per sub-quantizer, its centroids transposed for the block kernels.
    transposed: Vec<Vec<f32>>,
}

impl ProductQuantizer {
    /// An untrained quantizer; `d` must be a multiple of `m` and `nbits` in 1..=24.
    pub fn new(d: usize, m: usize, nbits: usize) -> Result<Self> {
        if m == 0 || d == 0 || !d.is_multiple_of(m) {
            return Err(Error::invalid(format!(
                "product quantizer: the dimension {d} must be a multiple of the number of \
                 sub-quantizers (pq_m = {m}); divisors of {d} work"
            )));
        }
        if !(1..=MAX_NBITS).contains(&nbits) {
            return Err(Error::invalid(format!(
                "product quantizer: nbits = {nbits} is outside 1..={MAX_NBITS}"
            )));
        }
        Ok(ProductQuantizer {
            d,
            shape: PqShape { m, nbits },
            centroids: Vec::new(),
            transposed: Vec::new(),
        })
    }

    /// With centroids read from a file (their count checked by the reader).
    pub fn with_centroids(mut self, centroids: Vec<f32>) -> Self {
        self.centroids = centroids;
        self.transposed = self.transpose();
        self
    }

    fn transpose(&self) -> Vec<Vec<f32>> {
        if self.centroids.is_empty() {
            return Vec::new();
        }
        self.centroids
            .chunks_exact(self.ksub() * self.dsub())
            .map(|c| transpose_centroids(c, self.dsub()))
            .collect()
    }

    /// Sub-quantizers.
    pub fn m(&self) -> usize {
        self.shape.m
    }

    /// Values per sub-vector.
    pub fn dsub(&self) -> usize {
        self.d / self.shape.m
    }

    /// Centroids per sub-quantizer.
    pub fn ksub(&self) -> usize {
        self.shape.ksub()
    }

    /// Bytes per code.
    pub fn code_size(&self) -> usize {
        self.shape.code_size()
    }

    /// Centroid `j` of sub-quantizer `sub`.
    pub fn centroid(&self, sub: usize, j: usize) -> &[f32] {
        let ds = self.dsub();
        let at = (sub * self.ksub() + j) * ds;
        &self.centroids[at..at + ds]
    }

    /// faiss's `ProductQuantizer::train`: for each sub-space in turn, k-means with 2^nbits
    /// centroids in L2 (25 iterations, seed 1234, at most 256 points per centroid, never
    /// spherical). `progress(sub, m)` after each sub-space.
    pub fn train(&mut self, x: VectorsView<'_>, progress: &dyn Fn(u64, u64)) -> Result<()> {
        let (n, ds, ksub, m) = (x.rows(), self.dsub(), self.ksub(), self.m());
        if x.dim() != self.d {
            return Err(Error::invalid(format!(
                "product quantizer of dimension {} trained on vectors of dimension {}",
                self.d,
                x.dim()
            )));
        }
        if self.shape.nbits > MAX_TRAIN_NBITS {
            return Err(Error::invalid(format!(
                "product quantizer: training with nbits = {} (more than {MAX_TRAIN_NBITS}) is not supported",
                self.shape.nbits
            )));
        }
        if n < ksub {
            return Err(Error::invalid(format!(
                "product quantizer training needs at least 2^nbits = {ksub} vectors, got {n}; \
                 lower pq_nbits or add data"
            )));
        }
        let params = KMeansParams {
            niter: 25,
            seed: 1234,
            max_points_per_centroid: 256,
            spherical: false,
        };
        let mut centroids = Vec::with_capacity(m * ksub * ds);
        let mut sub = vec![0.0f32; n * ds];
        for s in 0..m {
            for (dst, row) in sub.chunks_exact_mut(ds).zip(x.iter()) {
                dst.copy_from_slice(&row[s * ds..(s + 1) * ds]);
            }
            let c = kmeans(
                VectorsView::new(&sub, ds)?,
                ksub,
                Metric::L2,
                params,
                &|_, _| {},
            )?;
            centroids.extend_from_slice(&c);
            progress(s as u64 + 1, m as u64);
        }
        self.centroids = centroids;
        self.transposed = self.transpose();
        Ok(())
    }

    /// The code of `x` (trained quantizer): per sub-vector, its nearest centroid in L2, the
    /// first on ties (`dist` is scratch of `ksub` values).
    pub fn encode(&self, x: &[f32], code: &mut [u8], dist: &mut Vec<f32>) {
        let (ds, ksub) = (self.dsub(), self.ksub());
        code.fill(0);
        for (s, xs) in x.chunks_exact(ds).enumerate() {
            let best = nearest_l2(xs, &self.transposed[s], ksub, dist);
            self.shape.set(code, s, best);
        }
    }

    /// The look-up table of `x`: `table[sub · ksub + j]` = squared L2 (`l2`) or inner product
    /// between sub-vector `sub` of `x` and centroid `j` of that sub-quantizer.
    pub fn table(&self, x: &[f32], table: &mut [f32], l2: bool) {
        let (ds, ksub) = (self.dsub(), self.ksub());
        for (s, t) in table.chunks_exact_mut(ksub).enumerate() {
            sub_distances(&x[s * ds..(s + 1) * ds], &self.transposed[s], t, l2);
        }
    }

    /// Squared norms of every centroid (`m · ksub`, faiss's `fvec_norms_L2sqr` order).
    pub fn centroid_norms(&self) -> Vec<f32> {
        let ksub = self.ksub();
        let mut out = vec![0.0f32; self.m() * ksub];
        for (s, o) in out.chunks_exact_mut(ksub).enumerate() {
            for (j, v) in o.iter_mut().enumerate() {
                let c = self.centroid(s, j);
                *v = fvec_distance(c, c, false);
            }
        }
        out
    }
}
