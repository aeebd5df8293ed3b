//! FAISS `IndexRefineFlat` (`IxRF`): a base index proposes `⌊k · k_factor⌋` candidates per
//! query and the exact vectors, kept beside it, re-rank them (faiss 1.15.1's arithmetic: the
//! same distances to the last bit). Typically over quantized storage, whose approximate
//! distances pick the candidates and whose exact re-ranking restores the order.

use super::flat::FlatIndex;
use super::FaissIndex;
use crate::error::{Error, Result};
use crate::exact::RawResults;
use crate::kernels::faiss_order::fvec_distance;
use crate::kernels::prefetch;
use crate::kernels::topk::TopK;
use crate::metric::Metric;
use crate::vectors::VectorsView;

/// faiss's default `k_factor`.
pub const DEFAULT_K_FACTOR: f32 = 1.0;

/// A base index and the exact vectors that re-rank its candidates.
#[derive(Debug, Clone)]
pub struct RefineIndex {
    /// The index that proposes candidates (ids are rows of `refine`).
    pub base: FaissIndex,
    /// The exact vectors, row = id.
    pub refine: FlatIndex,
    /// Candidates asked of the base per result wanted, in `[1, 1000]` (stored in the file).
    pub k_factor: f32,
}

impl RefineIndex {
    /// Checks that `base` and `refine` hold the same vectors' worth (count, dimension, metric)
    /// and that `k_factor` is in faiss's range.
    pub fn new(base: FaissIndex, refine: FlatIndex, k_factor: f32) -> Result<Self> {
        check_k_factor(k_factor)?;
        if base.len() != refine.len()
            || base.dim() != refine.dim()
            || base.metric() != refine.metric()
        {
            return Err(Error::invalid(format!(
                "refine index (n={}, d={}, {}) does not match its base (n={}, d={}, {})",
                refine.len(),
                refine.dim(),
                refine.metric(),
                base.len(),
                base.dim(),
                base.metric()
            )));
        }
        Ok(RefineIndex {
            base,
            refine,
            k_factor,
        })
    }

    /// Sets `k_factor` for later queries.
    pub fn set_k_factor(&mut self, k_factor: f32) -> Result<()> {
        check_k_factor(k_factor)?;
        self.k_factor = k_factor;
        Ok(())
    }

    /// Top-k: the base's `⌊k · k_factor⌋` candidates (the product in f32, as faiss), re-ranked
    /// by their exact distances with faiss's heap rules.
    pub fn search(&self, queries: VectorsView<'_>, k: usize) -> Result<RawResults> {
        use rayon::prelude::*;
        let n = self.refine.len();
        // k_factor >= 1 keeps this at least k; more candidates than vectors would only be
        // padding (and a huge k_factor must not allocate for them).
        let kb = ((k as f32 * self.k_factor) as usize).clamp(k, k.max(n));
        let cands = self.base.search_raw(queries, kb)?;
        let metric = self.metric();
        let l2 = metric == Metric::L2;
        let d = self.refine.dim();
        let data = self.refine.data();
        let heaps: Result<Vec<TopK>> = queries
            .as_slice()
            .par_chunks(d)
            .zip(cands.ids.par_chunks(kb.max(1)))
            .map(|(q, ids)| {
                let mut h = TopK::new(k, metric.tie_order());
                let row_of = |id: i64| {
                    usize::try_from(id).ok().filter(|&r| r < n).ok_or_else(|| {
                        Error::invalid(format!(
                            "refine: the base index returned id {id}, outside 0..{n}"
                        ))
                    })
                };
                // The candidates' rows are random reads: start them all before the first
                // distance needs one.
                for &id in ids.iter().filter(|&&id| id >= 0) {
                    let row = row_of(id)?;
                    prefetch(&data[row * d..(row + 1) * d]);
                }
                for &id in ids.iter().filter(|&&id| id >= 0) {
                    let row = row_of(id)?;
                    let dist = fvec_distance(q, &data[row * d..(row + 1) * d], l2);
                    h.push(metric.to_key(dist), id);
                }
                Ok(h)
            })
            .collect();
        Ok(RawResults::from_heaps(heaps?, k, metric))
    }

    /// L2 or inner product (the base's and the refine index's).
    pub fn metric(&self) -> Metric {
        self.refine.metric()
    }

    /// Values per vector.
    pub fn dim(&self) -> usize {
        self.refine.dim()
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.refine.len()
    }

    /// True when no vectors are stored.
    pub fn is_empty(&self) -> bool {
        self.refine.is_empty()
    }
}

/// faiss's reader range for `k_factor`: finite and in `[1, 1000]`.
pub fn check_k_factor(k: f32) -> Result<()> {
    if (1.0..=1000.0).contains(&k) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "k_factor {k} out of valid range [1, 1000]"
        )))
    }
}
