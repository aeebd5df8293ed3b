//! What an HNSW graph links: the stored vectors seen through the distance faiss uses for each
//! storage — exact f32 rows (`IndexHNSWFlat`) or scalar-quantized codes (`IndexHNSWSQ`, whose
//! query-to-node distances decode the node, and node-to-node distances decode both).
//! Internally every distance is a key where smaller is better (see [`Metric::to_key`]).

use crate::faiss::sq::SqIndex;
use crate::kernels;
use crate::kernels::faiss_order::{sq_decode_kernel, sq_distance4};
use crate::metric::Metric;

/// The distances an HNSW build and search need from its storage.
pub trait GraphPoints: Sync {
    /// L2 or inner product.
    fn metric(&self) -> Metric;
    /// Key of stored node `i` for float query `q`.
    fn key(&self, q: &[f32], i: usize) -> f32;
    /// Keys of the nodes `ids` for query `q`, into `out` (cleared first).
    fn keys(&self, q: &[f32], ids: &[i32], out: &mut Vec<f32>);
    /// Node `i` as a query for node-to-node keys (faiss's `symmetric_dis(i, j)` is
    /// `key(node_query(i), j)`): the row itself, or the decoded code in `buf`. Decoding once per
    /// node, not once per pair, is what keeps quantized builds as fast as flat ones.
    fn node_query<'a>(&'a self, i: usize, buf: &'a mut Vec<f32>) -> &'a [f32];
    /// Asks the CPU to start loading node `i` (a graph walk's next reads are random).
    fn prefetch(&self, i: usize);
}

/// Exact f32 rows (`IndexHNSWFlat`'s storage).
pub struct Points<'a> {
    /// The vectors, row-major, `dim` values each; row `i` is node `i`.
    pub data: &'a [f32],
    /// Values per vector.
    pub dim: usize,
    /// `L2` or `InnerProduct`: the kernel and the key.
    pub metric: Metric,
    /// The dispatched kernels, looked up once (a graph walk computes millions of distances).
    dist: fn(&[f32], &[f32]) -> f32,
    dist4: fn(&[f32], [&[f32]; 4]) -> [f32; 4],
}

impl<'a> Points<'a> {
    /// Wraps `data` and looks up the distance kernels for `metric` (L2 or inner product) once.
    pub fn new(data: &'a [f32], dim: usize, metric: Metric) -> Self {
        let k = kernels::kernels();
        let l2 = metric == Metric::L2;
        Points {
            data,
            dim,
            metric,
            dist: if l2 { k.l2sq } else { k.dot },
            dist4: if l2 { k.l2sq_x4 } else { k.dot_x4 },
        }
    }

    #[inline]
    fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

impl GraphPoints for Points<'_> {
    fn metric(&self) -> Metric {
        self.metric
    }

    #[inline]
    fn key(&self, q: &[f32], i: usize) -> f32 {
        self.metric.to_key((self.dist)(q, self.row(i)))
    }

    /// Four at a time.
    #[inline]
    fn keys(&self, q: &[f32], ids: &[i32], out: &mut Vec<f32>) {
        out.clear();
        let mut c = ids.chunks_exact(4);
        for g in &mut c {
            let r = [
                self.row(g[0] as usize),
                self.row(g[1] as usize),
                self.row(g[2] as usize),
                self.row(g[3] as usize),
            ];
            let d = (self.dist4)(q, r);
            out.extend(d.iter().map(|&x| self.metric.to_key(x)));
        }
        for &v in c.remainder() {
            out.push(self.key(q, v as usize));
        }
    }

    #[inline]
    fn node_query<'a>(&'a self, i: usize, _buf: &'a mut Vec<f32>) -> &'a [f32] {
        self.row(i)
    }

    /// The whole row up to 4 KB: at d = 384 the whole row searched 10–15 % faster than its
    /// first 512 bytes (100k clustered rows, efSearch 64–128, 1 thread).
    #[inline]
    fn prefetch(&self, i: usize) {
        let row = self.row(i);
        kernels::prefetch(&row[..row.len().min(1024)]);
    }
}

/// Scalar-quantized codes (`IndexHNSWSQ`'s storage).
pub struct SqPoints<'a> {
    /// The codes and their quantizer.
    pub index: &'a SqIndex,
}

impl GraphPoints for SqPoints<'_> {
    fn metric(&self) -> Metric {
        self.index.metric()
    }

    #[inline]
    fn key(&self, q: &[f32], i: usize) -> f32 {
        self.index.metric().to_key(self.index.distance(q, i))
    }

    /// Four at a time.
    fn keys(&self, q: &[f32], ids: &[i32], out: &mut Vec<f32>) {
        out.clear();
        let (ix, metric) = (self.index, self.index.metric());
        let l2 = metric == Metric::L2;
        let mut c = ids.chunks_exact(4);
        for g in &mut c {
            let codes = [0, 1, 2, 3].map(|j| ix.code(g[j] as usize));
            let d = sq_distance4(q, ix.codec(), codes, l2);
            out.extend(d.iter().map(|&x| metric.to_key(x)));
        }
        for &v in c.remainder() {
            out.push(self.key(q, v as usize));
        }
    }

    fn node_query<'a>(&'a self, i: usize, buf: &'a mut Vec<f32>) -> &'a [f32] {
        buf.resize(self.index.dim(), 0.0);
        sq_decode_kernel(self.index.codec(), self.index.code(i), buf);
        buf
    }

    #[inline]
    fn prefetch(&self, i: usize) {
        kernels::prefetch(self.index.code(i));
    }
}
