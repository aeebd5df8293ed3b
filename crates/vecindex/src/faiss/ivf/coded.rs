//! IVF lists of codes: the codec (a scalar quantizer or a product quantizer), its training on
//! residuals, and the scans in faiss's arithmetic — each query's lists offered in coarse order,
//! so ids and distances are faiss's bit for bit (docs/algorithms.md §6 and §7).

use super::IvfIndex;
use crate::error::Result;
use crate::exact::RawResults;
use crate::faiss::flat::FlatIndex;
use crate::faiss::pq::ProductQuantizer;
use crate::faiss::sq::{QType, ScalarQuantizer};
use crate::kernels::faiss_order::{fvec_distance, sq_scan, SqCodec};
use crate::kernels::topk::{TieOrder, TopK};
use crate::metric::Metric;
use crate::vectors::VectorsView;
use rayon::prelude::*;

/// faiss's cap on the vectors an IVF trains a scalar quantizer on.
const MAX_SQ_TRAIN: usize = 100_000;

/// faiss builds IVF-PQ's per-list L2 tables only up to this size (`precomputed_table_max_bytes`).
const MAX_PRECOMPUTED_BYTES: usize = 1 << 31;

/// The codec to train for an IVF's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListCodecSpec {
    /// A scalar quantizer (`IVF<n>,SQ8`).
    Sq(QType),
    /// A product quantizer of `m` sub-quantizers of `nbits` bits (`IVF<n>,PQ<m>x<nbits>`).
    Pq {
        /// Sub-quantizers.
        m: usize,
        /// Bits per sub-quantizer index.
        nbits: usize,
    },
}

impl ListCodecSpec {
    /// faiss's `train_encoder_num_vectors`: the training vectors the codec sees at most.
    fn train_limit(self) -> usize {
        match self {
            ListCodecSpec::Sq(_) => MAX_SQ_TRAIN,
            ListCodecSpec::Pq { nbits, .. } => 256usize << nbits,
        }
    }
}

/// A product quantizer over IVF residuals, with faiss's per-list L2 tables.
#[derive(Debug, Clone)]
pub struct IvfPq {
    /// The quantizer.
    pub pq: ProductQuantizer,
    /// L2 with residuals: per list i, `||c_mj||² + 2·<C_i, c_mj>` (`nlist · m · ksub`); empty
    /// otherwise or when faiss would not build it (over 2 GiB).
    pub precomputed: Vec<f32>,
}

impl IvfPq {
    /// faiss's `precompute_table` (use_precomputed_table = 1): built for L2 with residuals
    /// unless it would exceed 2 GiB, or memory for it cannot be had (a file's sizes are
    /// untrusted); without it the search takes faiss's other L2 path (tables of `q − C`).
    pub fn new(pq: ProductQuantizer, quantizer: &FlatIndex, by_residual: bool) -> Self {
        let per_list = pq.m() * pq.ksub();
        let nlist = quantizer.len();
        let fits = nlist
            .checked_mul(per_list * 4)
            .is_some_and(|b| b <= MAX_PRECOMPUTED_BYTES);
        let mut precomputed = Vec::new();
        if quantizer.metric() == Metric::L2
            && by_residual
            && fits
            && nlist > 0
            && precomputed.try_reserve_exact(nlist * per_list).is_ok()
        {
            let norms = pq.centroid_norms();
            precomputed.resize(nlist * per_list, 0.0);
            precomputed
                .par_chunks_mut(per_list)
                .zip(quantizer.data().par_chunks(pq.d))
                .for_each(|(t, c)| {
                    pq.table(c, t, false);
                    for (v, &n) in t.iter_mut().zip(&norms) {
                        *v = n + 2.0 * *v;
                    }
                });
        }
        IvfPq { pq, precomputed }
    }
}

/// How list codes encode and compare.
#[derive(Debug, Clone)]
pub enum ListCodec {
    /// `IndexIVFScalarQuantizer`.
    Sq(ScalarQuantizer),
    /// `IndexIVFPQ`.
    Pq(IvfPq),
}

impl ListCodec {
    /// Bytes per code.
    pub fn code_size(&self) -> usize {
        match self {
            ListCodec::Sq(sq) => sq.code_size(),
            ListCodec::Pq(p) => p.pq.code_size(),
        }
    }

    /// `SQ8`, `SQfp16`, or `PQ<m>x<nbits>`.
    pub fn name(&self) -> String {
        match self {
            ListCodec::Sq(sq) => sq.qtype.token().to_string(),
            ListCodec::Pq(p) => format!("PQ{}x{}", p.pq.m(), p.pq.shape.nbits),
        }
    }

    /// Bytes of the codec's own parameters (ranges, centroids, per-list tables).
    pub fn param_bytes(&self) -> usize {
        match self {
            ListCodec::Sq(sq) => sq.trained.len() * 4,
            ListCodec::Pq(p) => (p.pq.centroids.len() + p.precomputed.len()) * 4,
        }
    }

    fn encode(&self, x: &[f32], code: &mut [u8], scratch: &mut Vec<f32>) {
        match self {
            ListCodec::Sq(sq) => sq.encode(x, code),
            ListCodec::Pq(p) => p.pq.encode(x, code, scratch),
        }
    }
}

/// The coded lists of an IVF.
#[derive(Debug, Clone)]
pub struct IvfCodes {
    /// The codec.
    pub codec: ListCodec,
    /// Codes encode `x − centroid` (faiss's default) instead of `x`.
    pub by_residual: bool,
    /// Per list, the codes (`codec.code_size()` bytes each) in the order of the list's ids.
    pub codes: Vec<Vec<u8>>,
}

impl IvfCodes {
    /// Trains `spec` on (at most `train_limit`, faiss's `rand_perm(n, 1234)` subsample of) the
    /// residuals of `train` to their nearest centroids of `quantizer`.
    pub fn train(
        spec: ListCodecSpec,
        quantizer: &FlatIndex,
        train: VectorsView<'_>,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Self> {
        let d = train.dim();
        let limit = spec.train_limit();
        let sample: Vec<f32>;
        let x = if train.rows() > limit {
            let perm = crate::faiss::rng::rand_perm(train.rows(), 1234);
            sample = perm[..limit]
                .iter()
                .flat_map(|&i| train.row(i).iter().copied())
                .collect();
            VectorsView::new(&sample, d)?
        } else {
            train
        };
        let res = super::residuals(quantizer, x);
        let codec = match spec {
            ListCodecSpec::Sq(qtype) => {
                let mut sq = ScalarQuantizer::new(qtype, d);
                sq.train(&res);
                ListCodec::Sq(sq)
            }
            ListCodecSpec::Pq { m, nbits } => {
                let mut pq = ProductQuantizer::new(d, m, nbits)?;
                pq.train(VectorsView::new(&res, d)?, progress)?;
                ListCodec::Pq(IvfPq::new(pq, quantizer, true))
            }
        };
        Ok(IvfCodes {
            codec,
            by_residual: true,
            codes: vec![Vec::new(); quantizer.len()],
        })
    }

    /// Codes of rows `x` assigned to lists `assign` (residuals when `by_residual`), in
    /// parallel: `code_size` bytes per row.
    pub(super) fn encode_rows(
        &self,
        quantizer: &FlatIndex,
        x: VectorsView<'_>,
        assign: &[usize],
    ) -> Vec<u8> {
        let (d, cs) = (x.dim(), self.codec.code_size());
        let mut out = vec![0u8; x.rows() * cs];
        out.par_chunks_mut(cs.max(1))
            .zip(x.as_slice().par_chunks(d))
            .zip(assign.par_iter())
            .for_each_init(
                || (vec![0.0f32; d], Vec::new()),
                |(res, scratch), ((code, row), &l)| {
                    let v: &[f32] = if self.by_residual {
                        let c = &quantizer.data()[l * d..(l + 1) * d];
                        for ((r, a), b) in res.iter_mut().zip(row).zip(c) {
                            *r = a - b;
                        }
                        res
                    } else {
                        row
                    };
                    self.codec.encode(v, code, scratch);
                },
            );
        out
    }
}

impl IvfIndex {
    /// Coded lists (faiss's scanners): query by query, lists in coarse order; IVF-PQ's L2 scan
    /// with per-list tables goes list by list for blocks of queries, with the same offers
    /// (by_list.rs).
    pub(super) fn scan_coded(
        &self,
        coded: &IvfCodes,
        queries: VectorsView<'_>,
        coarse: &RawResults,
        nprobe: usize,
        k: usize,
        tie: TieOrder,
    ) -> Vec<TopK> {
        if let ListCodec::Pq(p) = &coded.codec {
            if queries.rows() > 1
                && self.metric == Metric::L2
                && coded.by_residual
                && !p.precomputed.is_empty()
            {
                return self.scan_pq_by_list(p, coded, queries, coarse, nprobe, k, tie);
            }
        }
        let rows: Vec<(usize, &[f32])> = queries.iter().enumerate().collect();
        rows.par_iter()
            .map_init(Scratch::default, |scratch, &(qi, q)| {
                let mut heap = TopK::new(k, tie);
                let lists = &coarse.ids[qi * nprobe..(qi + 1) * nprobe];
                match &coded.codec {
                    ListCodec::Sq(sq) => self.scan_sq(sq, coded, q, lists, &mut heap, scratch),
                    ListCodec::Pq(p) => self.scan_pq(p, coded, q, lists, &mut heap, scratch),
                }
                heap
            })
            .collect()
    }

    /// The centroid of list `l`.
    pub(super) fn centroid(&self, l: usize) -> &[f32] {
        &self.quantizer.data()[l * self.dim..(l + 1) * self.dim]
    }

    /// The probed lists that exist and hold vectors.
    pub(super) fn probed<'a>(&'a self, lists: &'a [i64]) -> impl Iterator<Item = usize> + 'a {
        lists
            .iter()
            .filter(|&&l| l >= 0 && !self.ids[l as usize].is_empty())
            .map(|&l| l as usize)
    }

    pub(super) fn offer(&self, heap: &mut TopK, l: usize, dist: &[f32]) {
        for (&dv, &id) in dist.iter().zip(&self.ids[l]) {
            heap.push(self.metric.to_key(dv), id);
        }
    }

    /// SQ: L2 compares `q − centroid` with the decoded residuals; inner product adds the
    /// coarse score to `<q, decoded residual>`.
    fn scan_sq(
        &self,
        sq: &ScalarQuantizer,
        coded: &IvfCodes,
        q: &[f32],
        lists: &[i64],
        heap: &mut TopK,
        s: &mut Scratch,
    ) {
        let d = self.dim;
        let l2 = self.metric == Metric::L2;
        let codec = match sq.qtype {
            QType::Sq8 => {
                let (vmin, vdiff) = sq.trained.split_at(d);
                SqCodec::Sq8 { vmin, vdiff }
            }
            QType::Fp16 => SqCodec::Fp16,
        };
        s.query.resize(d, 0.0);
        for l in self.probed(lists) {
            let c = self.centroid(l);
            let query: &[f32] = if l2 && coded.by_residual {
                for ((r, a), b) in s.query.iter_mut().zip(q).zip(c) {
                    *r = a - b;
                }
                &s.query
            } else {
                q
            };
            s.dist.resize(self.ids[l].len(), 0.0);
            sq_scan(query, codec, &coded.codes[l], &mut s.dist, l2);
            if !l2 && coded.by_residual {
                // faiss's coarse score for this list, in its own arithmetic.
                let base = fvec_distance(q, c, false);
                s.dist.iter_mut().for_each(|v| *v += base);
            }
            self.offer(heap, l, &s.dist);
        }
    }

    /// PQ (faiss's IVFPQ scanner): L2 with residuals `‖q − C‖² + Σ (P_i − 2·<q, c>)` from the
    /// per-list tables (or, without them, the L2 table of `q − C`); L2 without residuals the L2
    /// table of `q`; inner product `<q, C> + Σ <q, c>`.
    pub(super) fn scan_pq(
        &self,
        p: &IvfPq,
        coded: &IvfCodes,
        q: &[f32],
        lists: &[i64],
        heap: &mut TopK,
        s: &mut Scratch,
    ) {
        let l2 = self.metric == Metric::L2;
        let per_list = p.pq.m() * p.pq.ksub();
        let precomputed = l2 && coded.by_residual && !p.precomputed.is_empty();
        let per_list_table = l2 && coded.by_residual && !precomputed;
        s.table.resize(per_list, 0.0);
        s.query_table.resize(per_list, 0.0);
        if precomputed {
            p.pq.table(q, &mut s.query_table, false);
        } else if !per_list_table {
            p.pq.table(q, &mut s.table, l2);
        }
        for l in self.probed(lists) {
            let c = self.centroid(l);
            s.dist.resize(self.ids[l].len(), 0.0);
            if precomputed {
                let pl = &p.precomputed[l * per_list..(l + 1) * per_list];
                let base = fvec_distance(q, c, true);
                let codes = &coded.codes[l];
                p.pq.shape.scan_minus_twice(
                    pl,
                    &s.query_table,
                    base,
                    codes,
                    &mut s.dist,
                    &mut s.table,
                );
                self.offer(heap, l, &s.dist);
                continue;
            }
            let base = if per_list_table {
                s.query.clear();
                s.query.extend(q.iter().zip(c).map(|(a, b)| a - b));
                p.pq.table(&s.query, &mut s.table, true);
                0.0
            } else if !l2 && coded.by_residual {
                fvec_distance(q, c, false)
            } else {
                0.0
            };
            p.pq.shape
                .scan(&s.table, base, &coded.codes[l], &mut s.dist);
            self.offer(heap, l, &s.dist);
        }
    }
}

/// Per-thread buffers of the coded scans.
#[derive(Default)]
pub(super) struct Scratch {
    query: Vec<f32>,
    dist: Vec<f32>,
    table: Vec<f32>,
    query_table: Vec<f32>,
}
