//! Scans of IVF lists of f32 vectors (`IwFl`): query by query in faiss's order, or list by list
//! with GEMM for large batches.

use super::IvfIndex;
use crate::exact::{l2_from_ip, offer};
use crate::kernels::{self, gemm, topk::TieOrder, topk::TopK};
use crate::metric::Metric;
use crate::vectors::VectorsView;
use rayon::prelude::*;

/// Batches of at least this many queries are scanned list by list with GEMM (each list is read
/// once for all the queries that probe it); smaller ones query by query, in faiss's order.
pub const BATCH_MIN_QUERIES: usize = 32;
const LIST_BLOCK: usize = 256;

impl IvfIndex {
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

    /// Query by query, lists in coarse order, direct distances: faiss's exact semantics.
    pub(super) fn scan_each(
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
    pub(super) fn scan_batched(
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
