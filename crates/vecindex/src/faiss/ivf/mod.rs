//! FAISS's IVF indexes: a flat coarse quantizer (k-means centroids) and one inverted list per
//! centroid, of raw vectors (`IndexIVFFlat`, `IwFl`) or of codes of each vector's residual to its
//! centroid: scalar-quantized (`IndexIVFScalarQuantizer`, `IwSq`) or product-quantized
//! (`IndexIVFPQ`, `IwPQ`). Search probes the `nprobe` nearest lists and scans them: exactly
//! (flat_scan.rs), or on the codes with faiss's arithmetic (coded.rs).

mod by_list;
mod coded;
mod flat_scan;

pub use coded::{IvfCodes, IvfPq, ListCodec, ListCodecSpec};
pub use flat_scan::BATCH_MIN_QUERIES;

use super::flat::FlatIndex;
use super::kmeans::{kmeans, nearest_centroids, KMeansParams};
use crate::exact::RawResults;
use crate::kernels::{self, topk::TieOrder};
use crate::metric::Metric;
use crate::vectors::VectorsView;
use crate::{Error, Result};
use rayon::prelude::*;

/// faiss's direct map, kept only so files round-trip byte for byte (vecindex does not use it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirectMap {
    /// The map type: 0 none, 1 array, 2 hashtable (larger values are refused on read).
    pub kind: u8,
    /// The array entries as read, written back unchanged; empty for type 0 and for vecindex's own
    /// builds.
    pub array: Vec<i64>,
    /// The (key, value) pairs of a type-2 map as read, written back unchanged; empty otherwise.
    pub hashtable: Vec<(i64, i64)>,
}

/// An IVF index: the coarse quantizer and its lists, of f32 vectors or of codes.
#[derive(Debug, Clone)]
pub struct IvfIndex {
    pub(crate) dim: usize,
    pub(crate) metric: Metric,
    pub(crate) nprobe: usize,
    /// The coarse quantizer: `nlist` centroids (empty while untrained).
    pub(crate) quantizer: FlatIndex,
    pub(crate) nlist: usize,
    pub(crate) is_trained: bool,
    /// Header count; can exceed the stored vectors (faiss drops vectors it cannot assign).
    pub(crate) ntotal: usize,
    /// Per list, its f32 vectors (empty lists when the index holds codes).
    pub(crate) codes: Vec<Vec<f32>>,
    pub(crate) ids: Vec<Vec<i64>>,
    pub(crate) direct_map: DirectMap,
    /// Squared norms of the list vectors (L2 only), for the batched GEMM scan.
    pub(crate) norms: Vec<Vec<f32>>,
    /// Quantized lists (`IwSq`, `IwPQ`); `None` for raw vectors (`codes` then holds them).
    pub(crate) coded: Option<IvfCodes>,
}

/// Rows an IVF-PQ assigns and encodes together (faiss's `index_ivfpq_add_core_o_bs`).
const PQ_ADD_BLOCK: usize = 32_768;

/// Per-list squared norms for L2 (empty lists for IP).
pub(crate) fn list_norms(codes: &[Vec<f32>], d: usize, metric: Metric) -> Vec<Vec<f32>> {
    codes
        .iter()
        .map(|c| {
            if metric == Metric::L2 {
                kernels::row_norms(c, d)
            } else {
                Vec::new()
            }
        })
        .collect()
}

impl IvfIndex {
    /// Whether the lists hold exactly the ids 0..n (what faiss gives items added without ids;
    /// repeated ids are refused when an index is built or read, so in range means each once).
    pub(crate) fn ids_are_row_numbers(&self) -> bool {
        let n = self.ids.iter().map(Vec::len).sum::<usize>() as i64;
        self.ids.iter().flatten().all(|&id| (0..n).contains(&id))
    }

    /// Trains the quantizer on `train` (k-means, faiss's IVF parameters) and returns an empty index.
    pub fn train(
        train: VectorsView<'_>,
        nlist: usize,
        metric: Metric,
        nprobe: usize,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Self> {
        Self::train_with(train, nlist, metric, nprobe, None, &|_, i, n| {
            progress(i, n)
        })
    }

    /// Like [`IvfIndex::train`], with coded lists when `codec` is given: after the k-means, the
    /// codec is trained on the residuals of (a `rand_perm(n, 1234)` subsample of, as faiss caps
    /// it) the training vectors to their nearest centroids. `progress(stage, done, total)`.
    pub fn train_with(
        train: VectorsView<'_>,
        nlist: usize,
        metric: Metric,
        nprobe: usize,
        codec: Option<ListCodecSpec>,
        progress: &dyn Fn(&str, u64, u64),
    ) -> Result<Self> {
        let d = train.dim();
        let cent = kmeans(train, nlist, metric, KMeansParams::ivf(metric), &|i, n| {
            progress("k-means", i, n)
        })?;
        let quantizer = FlatIndex::from_parts(cent, d, metric);
        let coded = match codec {
            None => None,
            Some(spec) => Some(IvfCodes::train(spec, &quantizer, train, &|i, n| {
                progress("PQ training", i, n)
            })?),
        };
        Ok(IvfIndex {
            dim: d,
            metric,
            nprobe,
            quantizer,
            nlist,
            is_trained: true,
            ntotal: 0,
            codes: vec![Vec::new(); nlist],
            ids: vec![Vec::new(); nlist],
            direct_map: DirectMap::default(),
            norms: vec![Vec::new(); nlist],
            coded,
        })
    }

    /// Adds vectors with the given ids (each to its nearest centroid, in order).
    pub fn add(&mut self, x: VectorsView<'_>, ids: &[i64]) -> Result<()> {
        if !self.is_trained {
            return Err(Error::invalid("IVF index is not trained"));
        }
        // faiss's IVF-PQ assigns and encodes 32,768 rows at a time, the other IVFs a whole add at
        // once (the coarse assignment of a block depends on its size, see `nearest_centroids`).
        let pq = matches!(
            self.coded.as_ref().map(|c| &c.codec),
            Some(ListCodec::Pq(_))
        );
        let block = if pq { PQ_ADD_BLOCK } else { x.rows().max(1) };
        for start in (0..x.rows()).step_by(block) {
            let end = (start + block).min(x.rows());
            self.add_block(x.slice_rows(start, end), &ids[start..end]);
        }
        self.ntotal += x.rows();
        Ok(())
    }

    fn add_block(&mut self, x: VectorsView<'_>, ids: &[i64]) {
        let (assign, _) = nearest_centroids(x, self.quantizer.data(), self.metric);
        // The rows of each list in input order (a counting sort), so that every list is then
        // appended to on its own, lists in parallel: each list's memory is written as one
        // sequential stream instead of a millions-row scatter over all of them.
        let mut start = vec![0usize; self.nlist + 1];
        for &l in &assign {
            start[l + 1] += 1;
        }
        for l in 0..self.nlist {
            start[l + 1] += start[l];
        }
        let mut next = start.clone();
        let mut order = vec![0usize; assign.len()];
        for (i, &l) in assign.iter().enumerate() {
            order[next[l]] = i;
            next[l] += 1;
        }
        let rows_of = |l: usize| &order[start[l]..start[l + 1]];
        if let Some(coded) = &mut self.coded {
            let cs = coded.codec.code_size();
            let codes = coded.encode_rows(&self.quantizer, x, &assign);
            coded
                .codes
                .par_iter_mut()
                .zip(self.ids.par_iter_mut())
                .enumerate()
                .for_each(|(l, (list, list_ids))| {
                    let rows = rows_of(l);
                    grow(list, rows.len() * cs);
                    grow(list_ids, rows.len());
                    for &i in rows {
                        list.extend_from_slice(&codes[i * cs..(i + 1) * cs]);
                        list_ids.push(ids[i]);
                    }
                });
            return;
        }
        let l2 = self.metric == Metric::L2;
        let d = self.dim;
        self.codes
            .par_iter_mut()
            .zip(self.ids.par_iter_mut())
            .zip(self.norms.par_iter_mut())
            .enumerate()
            .for_each(|(l, ((list, list_ids), norms))| {
                let rows = rows_of(l);
                grow(list, rows.len() * d);
                grow(list_ids, rows.len());
                if l2 {
                    grow(norms, rows.len());
                }
                for &i in rows {
                    list.extend_from_slice(x.row(i));
                    list_ids.push(ids[i]);
                    if l2 {
                        norms.push(kernels::dot(x.row(i), x.row(i)));
                    }
                }
            });
    }

    /// Bytes the index holds as faiss lays it out: codes (or f32 rows) and ids of the stored
    /// vectors, the centroids, the codec's parameters and tables.
    pub fn memory_bytes(&self) -> usize {
        let n = self.len();
        let codes = match &self.coded {
            Some(c) => n * c.codec.code_size() + c.codec.param_bytes(),
            None => n * self.dim * 4,
        };
        codes + n * 8 + self.nlist * self.dim * 4
    }

    /// Values per vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Vectors added, as the header counts them (can exceed those in the lists: unassignable ones
    /// are dropped).
    pub fn len(&self) -> usize {
        self.ntotal
    }

    /// True when no vectors have been added.
    pub fn is_empty(&self) -> bool {
        self.ntotal == 0
    }

    /// L2 (squared distance, smaller first) or inner product (larger first).
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Number of inverted lists (one per k-means centroid).
    pub fn nlist(&self) -> usize {
        self.nlist
    }

    /// Lists scanned per query (clamped to `1..=nlist` when searching).
    pub fn nprobe(&self) -> usize {
        self.nprobe
    }

    /// Sets the lists scanned per query, without retraining; clamped to `1..=nlist` when searching.
    pub fn set_nprobe(&mut self, nprobe: usize) {
        self.nprobe = nprobe;
    }

    /// The vectors (row-major) and ids of list `l`.
    pub fn list(&self, l: usize) -> (&[f32], &[i64]) {
        (&self.codes[l], &self.ids[l])
    }

    /// Sizes of the lists.
    pub fn list_sizes(&self) -> Vec<usize> {
        self.ids.iter().map(Vec::len).collect()
    }

    /// Top-k over the `nprobe` nearest lists (queries already validated).
    pub fn search(&self, queries: VectorsView<'_>, k: usize) -> Result<RawResults> {
        if !self.is_trained {
            return Err(Error::invalid(
                "this IVF index is not trained (a faiss file saved before train()); it cannot be searched",
            ));
        }
        let nq = queries.rows();
        let nprobe = self.nprobe.clamp(1, self.nlist.max(1));
        let coarse = self.quantizer.search(queries, nprobe);
        let tie = if self.metric == Metric::L2 {
            TieOrder::LowIdFirst
        } else {
            TieOrder::HighIdFirst
        };
        let heaps = if let Some(coded) = &self.coded {
            self.scan_coded(coded, queries, &coarse, nprobe, k, tie)
        } else if nq >= BATCH_MIN_QUERIES {
            self.scan_batched(queries, &coarse.ids, nprobe, k, tie)
        } else {
            self.scan_each(queries, &coarse.ids, nprobe, k, tie)
        };
        Ok(RawResults::from_heaps(heaps, k, self.metric))
    }
}

/// Makes room for `more` elements, growing by a quarter of the length when it must grow (not
/// doubling: a build's peak is then about 1.25 × its lists instead of up to 2 ×).
fn grow<T>(v: &mut Vec<T>, more: usize) {
    let need = v.len() + more;
    if need > v.capacity() {
        v.reserve_exact(need - v.len() + v.len() / 4);
    }
}

/// `x − centroid(x)` for every row, the centroid being the nearest of `quantizer`'s.
fn residuals(quantizer: &FlatIndex, x: VectorsView<'_>) -> Vec<f32> {
    let d = x.dim();
    let (assign, _) = nearest_centroids(x, quantizer.data(), quantizer.metric());
    let mut out = Vec::with_capacity(x.rows() * d);
    for (i, &l) in assign.iter().enumerate() {
        let c = &quantizer.data()[l * d..(l + 1) * d];
        out.extend(x.row(i).iter().zip(c).map(|(a, b)| a - b));
    }
    out
}
