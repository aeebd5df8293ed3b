//! FAISS `IndexScalarQuantizer` (`IxSQ`): vectors stored as SQ8 or fp16 codes and searched
//! exhaustively on the decoded components, with faiss 1.15.1's arithmetic (same codes, same
//! distances to the last bit).

pub mod codec;
pub mod format;

pub use codec::{QType, ScalarQuantizer};

use crate::error::{Error, Result};
use crate::exact::RawResults;
use crate::kernels::faiss_order::{sq_decode_kernel, sq_distance, SqCodec};
use crate::kernels::topk::TopK;
use crate::metric::Metric;
use crate::vectors::VectorsView;

/// An `IndexScalarQuantizer`: the quantizer and the codes of the stored vectors (row = id).
#[derive(Debug, Clone)]
pub struct SqIndex {
    /// The quantizer (code type, dimension, trained ranges).
    pub sq: ScalarQuantizer,
    metric: Metric,
    codes: Vec<u8>,
}

impl SqIndex {
    /// An empty, untrained index (fp16 is trained at once). `metric` is L2 or IP.
    pub fn new(qtype: QType, d: usize, metric: Metric) -> Self {
        SqIndex {
            sq: ScalarQuantizer::new(qtype, d),
            metric,
            codes: Vec::new(),
        }
    }

    /// From parts read from a file (checked against each other by the reader).
    pub fn from_parts(sq: ScalarQuantizer, metric: Metric, codes: Vec<u8>) -> Self {
        SqIndex { sq, metric, codes }
    }

    /// Values per vector.
    pub fn dim(&self) -> usize {
        self.sq.d
    }

    /// Number of stored vectors.
    pub fn len(&self) -> usize {
        self.codes.len() / self.sq.code_size().max(1)
    }

    /// True when no vectors are stored.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// L2 (squared distance, smaller first) or inner product (larger first).
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The stored codes, row-major.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// Trains the ranges on `x` (faiss's `train`; a no-op for fp16).
    pub fn train(&mut self, x: VectorsView<'_>) -> Result<()> {
        if x.rows() == 0 {
            return Err(Error::invalid(
                "training a scalar quantizer needs at least one vector",
            ));
        }
        self.sq.train(x.as_slice());
        Ok(())
    }

    /// Encodes and appends `x` (trained quantizer only).
    pub fn add(&mut self, x: VectorsView<'_>) -> Result<()> {
        if !self.sq.is_trained() {
            return Err(Error::invalid(
                "the scalar quantizer is not trained (train it on data first)",
            ));
        }
        // Encoded in place: no second buffer of codes at the peak.
        let start = self.codes.len();
        self.codes.resize(start + x.rows() * self.sq.code_size(), 0);
        self.sq.encode_into(x.as_slice(), &mut self.codes[start..]);
        Ok(())
    }

    /// The code of vector `i`.
    #[inline]
    pub fn code(&self, i: usize) -> &[u8] {
        let cs = self.sq.code_size();
        &self.codes[i * cs..(i + 1) * cs]
    }

    /// How the kernels decode this index's codes.
    #[inline]
    pub fn codec(&self) -> SqCodec<'_> {
        match self.sq.qtype {
            QType::Sq8 => {
                let (vmin, vdiff) = self.sq.trained.split_at(self.sq.d);
                SqCodec::Sq8 { vmin, vdiff }
            }
            QType::Fp16 => SqCodec::Fp16,
        }
    }

    /// faiss's distance of query `q` to stored vector `i` (squared L2 or inner product).
    #[inline]
    pub fn distance(&self, q: &[f32], i: usize) -> f32 {
        sq_distance(q, self.codec(), self.code(i), self.metric == Metric::L2)
    }

    /// faiss's code-to-code distance between stored vectors `i` and `j`: `i` decoded as the
    /// kernels decode it (into `buf`, `d` floats), then the query kernel against `j`'s code.
    pub fn node_distance(&self, i: usize, j: usize, buf: &mut [f32]) -> f32 {
        sq_decode_kernel(self.codec(), self.code(i), buf);
        self.distance(buf, j)
    }

    /// Exhaustive top-k over the codes with faiss's heap rules (queries validated); an
    /// untrained index is an error.
    pub fn search(&self, queries: VectorsView<'_>, k: usize) -> Result<RawResults> {
        if !self.sq.is_trained() {
            return Err(Error::invalid(
                "this scalar-quantizer index was saved untrained: it holds no codes to search",
            ));
        }
        use rayon::prelude::*;
        let n = self.len();
        let metric = self.metric;
        let heaps: Vec<TopK> = queries
            .as_slice()
            .par_chunks(self.sq.d.max(1))
            .map(|q| {
                let mut h = TopK::new(k, metric.tie_order());
                for i in 0..n {
                    h.push(metric.to_key(self.distance(q, i)), i as i64);
                }
                h
            })
            .collect();
        Ok(RawResults::from_heaps(heaps, k, metric))
    }

    /// Reconstructs vector `i` (faiss's `reconstruct`).
    pub fn reconstruct(&self, i: usize, out: &mut [f32]) {
        self.sq.decode(self.code(i), out);
    }
}
