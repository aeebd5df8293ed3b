//! FAISS `IndexIVFFlat` and `IndexIVFScalarQuantizer`: a flat coarse quantizer (k-means
//! centroids) and one inverted list per centroid, of raw vectors (`IwFl`) or of scalar-quantized
//! codes of each vector's residual to its centroid (`IwSq`). Search probes the `nprobe` nearest
//! lists and scans them (exactly, or on the decoded codes with faiss's arithmetic).

use super::flat::FlatIndex;
use super::kmeans::{kmeans, nearest_centroids, KMeansParams};
use super::rng::rand_perm;
use super::sq::{QType, ScalarQuantizer};
use crate::exact::{l2_from_ip, offer, RawResults};
use crate::kernels::faiss_order::{fvec_distance, sq_scan, SqCodec};
use crate::kernels::{self, gemm, topk::TieOrder, topk::TopK};
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

/// An IVF index: the coarse quantizer and its lists, of f32 vectors or of SQ codes.
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
    pub(crate) codes: Vec<Vec<f32>>,
    pub(crate) ids: Vec<Vec<i64>>,
    pub(crate) direct_map: DirectMap,
    /// Squared norms of the list vectors (L2 only), for the batched GEMM scan.
    pub(crate) norms: Vec<Vec<f32>>,
    /// Scalar-quantized lists (`IwSq`); `None` for raw vectors (`codes` then holds them).
    pub(crate) sq: Option<IvfSq>,
}

/// The scalar-quantized lists of an `IndexIVFScalarQuantizer`.
#[derive(Debug, Clone)]
pub struct IvfSq {
    /// The quantizer, trained on the residuals (or the vectors, without `by_residual`).
    pub sq: ScalarQuantizer,
    /// Codes encode `x − centroid` (faiss's default) instead of `x`.
    pub by_residual: bool,
    /// Per list, the codes (`sq.code_size()` bytes each) in the order of `ids`.
    pub codes: Vec<Vec<u8>>,
}

/// faiss's cap on the vectors an IVF trains its codec on (`train_encoder_num_vectors`).
const MAX_CODEC_TRAIN: usize = 100_000;

/// Batches of at least this many queries are scanned list by list with GEMM (each list is read
/// once for all the queries that probe it); smaller ones query by query, in faiss's order.
pub const BATCH_MIN_QUERIES: usize = 32;
const LIST_BLOCK: usize = 256;

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
        Self::train_with(train, nlist, metric, nprobe, None, progress)
    }

    /// Like [`IvfIndex::train`], with scalar-quantized lists when `qtype` is given: after the
    /// k-means, the quantizer is trained on the residuals of (at most 100,000, faiss's
    /// `rand_perm(n, 1234)` subsample of) the training vectors to their nearest centroids.
    pub fn train_with(
        train: VectorsView<'_>,
        nlist: usize,
        metric: Metric,
        nprobe: usize,
        qtype: Option<QType>,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Self> {
        let d = train.dim();
        let cent = kmeans(train, nlist, metric, KMeansParams::ivf(metric), progress)?;
        let quantizer = FlatIndex::from_parts(cent, d, metric);
        let sq = match qtype {
            None => None,
            Some(qtype) => {
                let sample: Vec<f32>;
                let x = if train.rows() > MAX_CODEC_TRAIN {
                    let perm = rand_perm(train.rows(), 1234);
                    sample = perm[..MAX_CODEC_TRAIN]
                        .iter()
                        .flat_map(|&i| train.row(i).iter().copied())
                        .collect();
                    VectorsView::new(&sample, d)?
                } else {
                    train
                };
                let mut sq = ScalarQuantizer::new(qtype, d);
                sq.train(&residuals(&quantizer, x));
                Some(IvfSq {
                    sq,
                    by_residual: true,
                    codes: vec![Vec::new(); nlist],
                })
            }
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
            sq,
        })
    }

    /// Adds vectors with the given ids (each to its nearest centroid, in order).
    pub fn add(&mut self, x: VectorsView<'_>, ids: &[i64]) -> Result<()> {
        if !self.is_trained {
            return Err(Error::invalid("IVF index is not trained"));
        }
        let d = self.dim;
        let (assign, _) = nearest_centroids(x, self.quantizer.data(), self.metric);
        let mut residual = vec![0.0f32; d];
        for (i, &l) in assign.iter().enumerate() {
            if let Some(q) = &mut self.sq {
                let v = if q.by_residual {
                    let c = &self.quantizer.data()[l * d..(l + 1) * d];
                    for ((r, a), b) in residual.iter_mut().zip(x.row(i)).zip(c) {
                        *r = a - b;
                    }
                    &residual[..]
                } else {
                    x.row(i)
                };
                let start = q.codes[l].len();
                q.codes[l].resize(start + q.sq.code_size(), 0);
                q.sq.encode(v, &mut q.codes[l][start..]);
                self.ids[l].push(ids[i]);
                continue;
            }
            self.codes[l].extend_from_slice(x.row(i));
            self.ids[l].push(ids[i]);
            if self.metric == Metric::L2 {
                self.norms[l].push(kernels::dot(x.row(i), x.row(i)));
            }
        }
        self.ntotal += x.rows();
        Ok(())
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
        let heaps = if let Some(sq) = &self.sq {
            self.scan_sq(sq, queries, &coarse, nprobe, k, tie)
        } else if nq >= BATCH_MIN_QUERIES {
            self.scan_batched(queries, &coarse.ids, nprobe, k, tie)
        } else {
            self.scan_each(queries, &coarse.ids, nprobe, k, tie)
        };
        Ok(RawResults::from_heaps(heaps, k, self.metric))
    }

    /// Offers every vector of list `l` to `heap` with its direct distance to `q` (`buf` is scratch).
    fn scan_list_into(&self, heap: &mut TopK, q: &[f32], l: usize, buf: &mut Vec<f32>) {
        let kern = kernels::kernels();
        let ids = &self.ids[l];
        buf.resize(ids.len(), 0.0);
        if self.metric == Metric::L2 {
            (kern.scan_l2)(q, &self.codes[l], buf);
            offer(heap, buf, 1.0, |j| ids[j]);
        } else {
            (kern.scan_dot)(q, &self.codes[l], buf);
            offer(heap, buf, -1.0, |j| ids[j]);
        }
    }

    /// Scalar-quantized lists, query by query, lists in coarse order (faiss's scanner): L2
    /// compares `q − centroid` with the decoded residuals; inner product adds the coarse score
    /// to `<q, decoded residual>`.
    fn scan_sq(
        &self,
        sq: &IvfSq,
        queries: VectorsView<'_>,
        coarse: &RawResults,
        nprobe: usize,
        k: usize,
        tie: TieOrder,
    ) -> Vec<TopK> {
        let d = self.dim;
        let l2 = self.metric == Metric::L2;
        let codec = match sq.sq.qtype {
            QType::Sq8 => {
                let (vmin, vdiff) = sq.sq.trained.split_at(d);
                SqCodec::Sq8 { vmin, vdiff }
            }
            QType::Fp16 => SqCodec::Fp16,
        };
        let rows: Vec<(usize, &[f32])> = queries.iter().enumerate().collect();
        rows.par_iter()
            .map_init(
                || (vec![0.0f32; d], Vec::new()),
                |(qr, dist): &mut (Vec<f32>, Vec<f32>), &(qi, q)| {
                    let mut heap = TopK::new(k, tie);
                    for p in qi * nprobe..(qi + 1) * nprobe {
                        let list = coarse.ids[p];
                        if list < 0 || self.ids[list as usize].is_empty() {
                            continue;
                        }
                        let l = list as usize;
                        let c = &self.quantizer.data()[l * d..(l + 1) * d];
                        let query: &[f32] = if l2 && sq.by_residual {
                            for ((r, a), b) in qr.iter_mut().zip(q).zip(c) {
                                *r = a - b;
                            }
                            qr
                        } else {
                            q
                        };
                        // faiss's coarse score for this list, in its own arithmetic.
                        let base = if !l2 && sq.by_residual {
                            fvec_distance(q, c, false)
                        } else {
                            0.0
                        };
                        let ids = &self.ids[l];
                        dist.resize(ids.len(), 0.0);
                        sq_scan(query, codec, &sq.codes[l], dist, l2);
                        for (&dv, &id) in dist.iter().zip(ids) {
                            let score = if l2 { dv } else { base + dv };
                            heap.push(self.metric.to_key(score), id);
                        }
                    }
                    heap
                },
            )
            .collect()
    }

    /// Query by query, lists in coarse order, direct distances: faiss's exact semantics.
    fn scan_each(
        &self,
        queries: VectorsView<'_>,
        coarse: &[i64],
        nprobe: usize,
        k: usize,
        tie: TieOrder,
    ) -> Vec<TopK> {
        let rows: Vec<(usize, &[f32])> = queries.iter().enumerate().collect();
        rows.par_iter()
            .map_init(Vec::new, |buf: &mut Vec<f32>, &(qi, q)| {
                let mut heap = TopK::new(k, tie);
                for &list in &coarse[qi * nprobe..(qi + 1) * nprobe] {
                    if list < 0 {
                        continue;
                    }
                    let l = list as usize;
                    let ids = &self.ids[l];
                    if ids.is_empty() {
                        continue;
                    }
                    self.scan_list_into(&mut heap, q, l, buf);
                }
                heap
            })
            .collect()
    }

    /// List by list: each chunk of queries groups its queries by probed list, and every list
    /// block is multiplied once against all of them (GEMM), turning a memory-bound scan into a
    /// compute-bound one. Lists are visited in list order, so among exactly equal distances the
    /// kept ids can differ from faiss's (which visits lists in coarse order).
    fn scan_batched(
        &self,
        queries: VectorsView<'_>,
        coarse: &[i64],
        nprobe: usize,
        k: usize,
        tie: TieOrder,
    ) -> Vec<TopK> {
        let nq = queries.rows();
        let d = self.dim;
        let l2 = self.metric == Metric::L2;
        let sign = if l2 { 1.0 } else { -1.0 };
        let threads = rayon::current_num_threads();
        let chunk = nq.div_ceil(threads).max(BATCH_MIN_QUERIES);
        let ranges: Vec<(usize, usize)> = (0..nq)
            .step_by(chunk)
            .map(|s| (s, (s + chunk).min(nq)))
            .collect();
        let parts: Vec<Vec<TopK>> = ranges
            .par_iter()
            .map(|&(qs, qe)| {
                let mut heaps: Vec<TopK> = (qs..qe).map(|_| TopK::new(k, tie)).collect();
                // list -> local query numbers probing it
                let mut by_list: Vec<Vec<u32>> = vec![Vec::new(); self.nlist];
                for qi in qs..qe {
                    for &list in &coarse[qi * nprobe..(qi + 1) * nprobe] {
                        if list >= 0 {
                            by_list[list as usize].push((qi - qs) as u32);
                        }
                    }
                }
                let qnorms: Vec<f32> = if l2 {
                    kernels::row_norms(queries.slice_rows(qs, qe).as_slice(), d)
                } else {
                    Vec::new()
                };
                let mut qmat: Vec<f32> = Vec::new();
                let mut ip: Vec<f32> = Vec::new();
                for (l, qlist) in by_list.iter().enumerate() {
                    let ids = &self.ids[l];
                    if qlist.is_empty() || ids.is_empty() {
                        continue;
                    }
                    let codes = &self.codes[l];
                    if qlist.len() < 4 {
                        ip.resize(ids.len(), 0.0);
                        for &lq in qlist {
                            let q = queries.row(qs + lq as usize);
                            self.scan_list_into(&mut heaps[lq as usize], q, l, &mut ip);
                        }
                        continue;
                    }
                    let m = qlist.len();
                    qmat.clear();
                    for &lq in qlist {
                        qmat.extend_from_slice(queries.row(qs + lq as usize));
                    }
                    let n = ids.len();
                    let mut s = 0;
                    while s < n {
                        let e = (s + LIST_BLOCK).min(n);
                        let b = e - s;
                        ip.resize(m * b, 0.0);
                        gemm::a_times_bt(&qmat, m, &codes[s * d..e * d], b, d, &mut ip);
                        for (i, &lq) in qlist.iter().enumerate() {
                            let row = &mut ip[i * b..(i + 1) * b];
                            if l2 {
                                l2_from_ip(row, qnorms[lq as usize], &self.norms[l][s..e]);
                            }
                            offer(&mut heaps[lq as usize], row, sign, |j| ids[s + j]);
                        }
                        s = e;
                    }
                }
                heaps
            })
            .collect();
        parts.into_iter().flatten().collect()
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
