//! Exact k-nearest-neighbour search over a row-major matrix: the engine behind FAISS `Flat`, IVF's
//! coarse quantizer and the exact baseline of evaluations.
//!
//! Two paths:
//! * **batches** (`nq >= GEMM_MIN_QUERIES`): tiles of up to 2048 queries × 128 items, inner products
//!   from one GEMM per tile, then every row of the tile is fed to that query's bounded heap before
//!   the next tile is computed. Memory stays O(tile) instead of O(nq × n), and the work is
//!   compute-bound at GEMM speed. L2 uses ‖q‖² + ‖x‖² − 2·q·x (clamped at 0) like FAISS's BLAS path,
//!   with the item norms computed once when the index is built rather than per search.
//! * **single or few queries**: a SIMD scan (direct differences, like FAISS's small-batch path),
//!   which runs at memory bandwidth.
//!
//! Both are parallel on the current rayon pool: over query tiles, and over item ranges when there
//! are fewer tiles than threads (partial heaps are merged in item order so results do not depend
//! on scheduling).

use crate::kernels::{self, gemm, topk::TieOrder, topk::TopK};
use crate::metric::Metric;
use crate::vectors::VectorsView;
use rayon::prelude::*;

/// Batches of at least this many queries take the GEMM path.
pub const GEMM_MIN_QUERIES: usize = 8;
const QUERY_TILE: usize = 2048;
const ITEM_BLOCK: usize = 128;
/// Item ranges are split across threads only above this many items.
const PAR_MIN_ITEMS: usize = 16 * 1024;

/// Exact search over borrowed rows. `norms` holds the squared row norms (needed for L2 batches).
#[derive(Clone, Copy)]
pub struct ExactSearch<'a> {
    data: &'a [f32],
    dim: usize,
    norms: &'a [f32],
    /// `L2` or `InnerProduct`.
    metric: Metric,
}

/// Results of a search, row-major `(n_queries, k)`, padded with id -1 and the metric's worst value.
#[derive(Debug, Clone, PartialEq)]
pub struct RawResults {
    /// Row-major `(n_queries, k)` ids, best first; -1 in empty slots.
    pub ids: Vec<i64>,
    /// The matching scores in the metric's convention; its worst value in empty slots.
    pub distances: Vec<f32>,
}

impl RawResults {
    /// Turns per-query heaps of keys (smaller is better) into `(n, k)` results in `metric`'s
    /// convention (similarities are the negated keys), padded with id -1 and the worst value.
    pub fn from_heaps(heaps: Vec<TopK>, k: usize, metric: Metric) -> Self {
        let nq = heaps.len();
        let mut ids = vec![-1i64; nq * k];
        let mut distances = vec![metric.padding(); nq * k];
        for (qi, h) in heaps.into_iter().enumerate() {
            for (j, (key, id)) in h.into_sorted().into_iter().enumerate() {
                ids[qi * k + j] = id;
                distances[qi * k + j] = metric.from_key(key);
            }
        }
        RawResults { ids, distances }
    }
}

/// The body of `ExactSearch::top1_tile_*`, expanded inside each so that the callback closure
/// is defined in (and compiled with the target features of) the function that runs it.
macro_rules! top1_tile_body {
    ($self:ident, $q:ident) => {{
        let qrows = $q.rows();
        let mut best = vec![f32::INFINITY; qrows];
        let mut best_id = vec![-1i64; qrows];
        $self.for_each_block($q, (0, $self.n()), |s, b, keys| {
            for (i, row) in keys.chunks_exact(b).enumerate() {
                let (mut bk, mut bi) = (best[i], best_id[i]);
                // Vectorised test per chunk; walk only chunks that improve the minimum.
                for (c, chunk) in row.chunks(16).enumerate() {
                    let t = bk;
                    if !chunk.iter().fold(false, |a, &v| a | (v < t)) {
                        continue;
                    }
                    for (j, &key) in chunk.iter().enumerate() {
                        if key < bk {
                            bk = key;
                            bi = (s + c * 16 + j) as i64;
                        }
                    }
                }
                best[i] = bk;
                best_id[i] = bi;
            }
        });
        (best, best_id)
    }};
}

impl<'a> ExactSearch<'a> {
    /// `metric` must be `L2` or `InnerProduct`; for `L2`, `norms.len()` must equal the row count.
    pub fn new(data: &'a [f32], dim: usize, norms: &'a [f32], metric: Metric) -> Self {
        assert!(
            matches!(metric, Metric::L2 | Metric::InnerProduct),
            "exact search supports L2 and IP, not {metric}"
        );
        assert!(dim > 0 && data.len().is_multiple_of(dim));
        if metric == Metric::L2 {
            assert_eq!(norms.len(), data.len() / dim);
        }
        ExactSearch {
            data,
            dim,
            norms,
            metric,
        }
    }

    #[inline]
    fn l2(&self) -> bool {
        self.metric == Metric::L2
    }

    fn n(&self) -> usize {
        self.data.len() / self.dim
    }

    fn tie(&self) -> TieOrder {
        self.metric.tie_order()
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    /// The `k` nearest rows for every query (dimension already checked by the caller).
    pub fn search(&self, queries: VectorsView<'_>, k: usize) -> RawResults {
        assert_eq!(queries.dim(), self.dim);
        let nq = queries.rows();
        if k == 1 && nq >= GEMM_MIN_QUERIES && self.n() > 0 {
            return self.search_top1(queries);
        }
        let heaps: Vec<TopK> = if nq == 0 || self.n() == 0 {
            (0..nq).map(|_| TopK::new(k, self.tie())).collect()
        } else if nq < GEMM_MIN_QUERIES {
            self.search_scan(queries, k)
        } else {
            self.search_gemm(queries, k)
        };
        RawResults::from_heaps(heaps, k, self.metric())
    }

    /// The fused GEMM loop shared by the batch paths: for each block of items in `is..ie`, the
    /// query tile's keys for that block (squared L2 distances, or negated inner products so that
    /// smaller is better in both cases) are handed to `f(block_start, block_len, keys)`, row-major
    /// `(qrows × block_len)`, before the next block is computed. Always inlined, so that the
    /// callers' target features (see `top1_tile`) cover its loops and the callback.
    #[inline(always)]
    fn for_each_block(
        &self,
        qdata: VectorsView<'_>,
        (is, ie): (usize, usize),
        mut f: impl FnMut(usize, usize, &mut [f32]),
    ) {
        let dim = self.dim;
        let qrows = qdata.rows();
        let qnorms = if self.l2() {
            kernels::row_norms(qdata.as_slice(), dim)
        } else {
            Vec::new()
        };
        let mut ip = vec![0.0f32; qrows * ITEM_BLOCK];
        let mut s = is;
        while s < ie {
            let e = (s + ITEM_BLOCK).min(ie);
            let b = e - s;
            let keys = &mut ip[..qrows * b];
            gemm::a_times_bt(
                qdata.as_slice(),
                qrows,
                &self.data[s * dim..e * dim],
                b,
                dim,
                keys,
            );
            for (i, row) in keys.chunks_exact_mut(b).enumerate() {
                if self.l2() {
                    l2_from_ip(row, qnorms[i], &self.norms[s..e]);
                } else {
                    row.iter_mut().for_each(|v| *v = -*v);
                }
            }
            f(s, b, keys);
            s = e;
        }
    }

    /// k = 1 (k-means assignment, IVF add, coarse search with nprobe 1): the same tiles as the
    /// batch path, but a running argmin per query instead of a heap. Same result as the heap with
    /// k = 1: the first strictly smaller key wins, NaN never does.
    fn search_top1(&self, queries: VectorsView<'_>) -> RawResults {
        let nq = queries.rows();
        let threads = rayon::current_num_threads();
        let tile = QUERY_TILE.min(nq.div_ceil(threads).max(GEMM_MIN_QUERIES));
        let tiles: Vec<(usize, usize)> = (0..nq)
            .step_by(tile)
            .map(|s| (s, (s + tile).min(nq)))
            .collect();
        let parts: Vec<(Vec<f32>, Vec<i64>)> = tiles
            .par_iter()
            .map(|&(qs, qe)| self.top1_tile(queries.slice_rows(qs, qe)))
            .collect();
        let pad = self.metric().padding();
        let mut ids = Vec::with_capacity(nq);
        let mut distances = Vec::with_capacity(nq);
        for (keys, pids) in parts {
            for (key, id) in keys.into_iter().zip(pids) {
                ids.push(id);
                distances.push(if id < 0 {
                    pad
                } else if self.l2() {
                    key
                } else {
                    -key
                });
            }
        }
        RawResults { ids, distances }
    }

    /// The best key and its row for every query of a tile, compiled for AVX2 where the CPU has
    /// it (the key and argmin loops after each GEMM block are as long as the GEMM is at small d).
    fn top1_tile(&self, q: VectorsView<'_>) -> (Vec<f32>, Vec<i64>) {
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx2_fma() {
            // SAFETY: AVX2 and FMA were detected, all that the target-feature function needs.
            return unsafe { self.top1_tile_avx2(q) };
        }
        self.top1_tile_portable(q)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn top1_tile_avx2(&self, q: VectorsView<'_>) -> (Vec<f32>, Vec<i64>) {
        top1_tile_body!(self, q)
    }

    fn top1_tile_portable(&self, q: VectorsView<'_>) -> (Vec<f32>, Vec<i64>) {
        top1_tile_body!(self, q)
    }

    /// Item ranges `[start, end)` splitting `0..n` into about `parts` pieces of whole blocks.
    fn item_ranges(&self, parts: usize) -> Vec<(usize, usize)> {
        let n = self.n();
        let parts = parts.clamp(1, n.div_ceil(ITEM_BLOCK).max(1));
        let per = n.div_ceil(parts).div_ceil(ITEM_BLOCK) * ITEM_BLOCK;
        (0..n)
            .step_by(per.max(1))
            .map(|s| (s, (s + per).min(n)))
            .collect()
    }

    fn scan_range(&self, q: &[f32], start: usize, end: usize, k: usize) -> TopK {
        let kern = kernels::kernels();
        let mut heap = TopK::new(k, self.tie());
        let mut buf = [0.0f32; ITEM_BLOCK];
        let mut thr = heap.threshold();
        let mut s = start;
        while s < end {
            let e = (s + ITEM_BLOCK).min(end);
            let out = &mut buf[..e - s];
            let rows = &self.data[s * self.dim..e * self.dim];
            if self.l2() {
                (kern.scan_l2)(q, rows, out);
                for (j, &d) in out.iter().enumerate() {
                    if d < thr {
                        heap.push(d, (s + j) as i64);
                        thr = heap.threshold();
                    }
                }
            } else {
                (kern.scan_dot)(q, rows, out);
                for (j, &d) in out.iter().enumerate() {
                    if -d < thr {
                        heap.push(-d, (s + j) as i64);
                        thr = heap.threshold();
                    }
                }
            }
            s = e;
        }
        heap
    }

    fn search_scan(&self, queries: VectorsView<'_>, k: usize) -> Vec<TopK> {
        let n = self.n();
        let threads = rayon::current_num_threads();
        if queries.rows() >= threads || n < PAR_MIN_ITEMS || threads == 1 {
            let rows: Vec<&[f32]> = queries.iter().collect();
            rows.par_iter()
                .map(|q| self.scan_range(q, 0, n, k))
                .collect()
        } else {
            let ranges = self.item_ranges(threads);
            queries
                .iter()
                .map(|q| {
                    let parts: Vec<TopK> = ranges
                        .par_iter()
                        .map(|&(s, e)| self.scan_range(q, s, e, k))
                        .collect();
                    merge_in_order(parts)
                })
                .collect()
        }
    }

    /// Heaps for query rows `qs..qe` over items `is..ie`.
    fn gemm_task(
        &self,
        queries: VectorsView<'_>,
        (qs, qe): (usize, usize),
        items: (usize, usize),
        k: usize,
    ) -> Vec<TopK> {
        let mut heaps: Vec<TopK> = (qs..qe).map(|_| TopK::new(k, self.tie())).collect();
        self.for_each_block(queries.slice_rows(qs, qe), items, |s, b, keys| {
            for (heap, row) in heaps.iter_mut().zip(keys.chunks_exact(b)) {
                offer_below(heap, row, s);
            }
        });
        heaps
    }

    fn search_gemm(&self, queries: VectorsView<'_>, k: usize) -> Vec<TopK> {
        let nq = queries.rows();
        let threads = rayon::current_num_threads();
        // Large query tiles: each packed item block is reused by every query of the tile (tiles
        // of 2048 × 128 measured 82–87 GFLOP/s on one core vs 72–77 for 256 × 1024). With fewer
        // tiles than threads, split the items between threads (each packs its own blocks once);
        // only for small item sets shrink the tiles instead.
        let mut tile = QUERY_TILE;
        let big = self.n() >= PAR_MIN_ITEMS;
        while !big && nq.div_ceil(tile) < threads && tile > 64 {
            tile /= 2;
        }
        let qtiles: Vec<(usize, usize)> = (0..nq)
            .step_by(tile)
            .map(|s| (s, (s + tile).min(nq)))
            .collect();
        let splits = if qtiles.len() >= threads || !big {
            1
        } else {
            threads.div_ceil(qtiles.len())
        };
        let ranges = self.item_ranges(splits);
        let tasks: Vec<((usize, usize), (usize, usize))> = qtiles
            .iter()
            .flat_map(|&qt| ranges.iter().map(move |&r| (qt, r)))
            .collect();
        let mut parts: Vec<Vec<TopK>> = tasks
            .par_iter()
            .map(|&(qt, r)| self.gemm_task(queries, qt, r, k))
            .collect();
        // Merge per query tile, item ranges in order.
        let nr = ranges.len();
        let mut out = Vec::with_capacity(nq);
        for t in 0..qtiles.len() {
            let mut first = std::mem::take(&mut parts[t * nr]);
            for r in 1..nr {
                let other = std::mem::take(&mut parts[t * nr + r]);
                for (h, o) in first.iter_mut().zip(other) {
                    h.merge(o);
                }
            }
            out.extend(first);
        }
        out
    }
}

/// Offers `sign * values[j]` with id `id_of(j)` to the heap, in order. Most values lose to the
/// threshold, so whole chunks are tested with a branch-free comparison (vectorised) first and only
/// chunks holding a candidate are walked one by one.
#[inline]
pub(crate) fn offer(heap: &mut TopK, values: &[f32], sign: f32, id_of: impl Fn(usize) -> i64) {
    const CHUNK: usize = 16;
    let mut thr = heap.threshold();
    for (c, chunk) in values.chunks(CHUNK).enumerate() {
        let t = thr;
        let any = chunk.iter().fold(false, |acc, &v| acc | (sign * v < t));
        if !any {
            continue;
        }
        for (j, &v) in chunk.iter().enumerate() {
            let key = sign * v;
            if key < thr {
                heap.push(key, id_of(c * CHUNK + j));
                thr = heap.threshold();
            }
        }
    }
}

#[inline]
fn offer_below(heap: &mut TopK, values: &[f32], first_id: usize) {
    offer(heap, values, 1.0, |j| (first_id + j) as i64);
}

/// Squared L2 distances in place from inner products: ‖q‖² + ‖x‖² − 2·q·x, clamped at 0 (NaN kept).
#[inline(always)]
pub(crate) fn l2_from_ip(row: &mut [f32], qn: f32, xnorms: &[f32]) {
    for (v, &xn) in row.iter_mut().zip(xnorms) {
        let d = qn + xn - 2.0 * *v;
        *v = if d < 0.0 { 0.0 } else { d };
    }
}

fn merge_in_order(parts: Vec<TopK>) -> TopK {
    let mut it = parts.into_iter();
    let mut first = it.next().expect("at least one range");
    for p in it {
        first.merge(p);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n * d)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    /// Independent truth: f64 distances, full sort, ties by id.
    fn brute(x: &[f32], q: &[f32], d: usize, k: usize, metric: Metric) -> Vec<Vec<i64>> {
        q.chunks(d)
            .map(|qq| {
                let mut v: Vec<(f64, i64)> = x
                    .chunks(d)
                    .enumerate()
                    .map(|(i, xx)| {
                        let s: f64 = if metric == Metric::L2 {
                            qq.iter()
                                .zip(xx)
                                .map(|(a, b)| ((a - b) as f64).powi(2))
                                .sum()
                        } else {
                            -qq.iter().zip(xx).map(|(a, b)| (a * b) as f64).sum::<f64>()
                        };
                        (s, i as i64)
                    })
                    .collect();
                v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                v.into_iter().take(k).map(|x| x.1).collect()
            })
            .collect()
    }

    fn check(n: usize, nq: usize, d: usize, k: usize) {
        let x = data(n, d, 1);
        let q = data(nq, d, 2);
        let norms = kernels::row_norms(&x, d);
        for metric in [Metric::L2, Metric::InnerProduct] {
            let es = ExactSearch::new(&x, d, &norms, metric);
            let r = es.search(VectorsView::new(&q, d).unwrap(), k);
            let truth = brute(&x, &q, d, k, metric);
            for (qi, want) in truth.iter().enumerate() {
                let got = &r.ids[qi * k..(qi + 1) * k];
                let real = want.len();
                assert_eq!(&got[..real], &want[..], "{metric} n={n} nq={nq} q={qi}");
                assert!(got[real..].iter().all(|&i| i == -1));
                assert!(r.distances[qi * k + real..(qi + 1) * k]
                    .iter()
                    .all(|&v| v == metric.padding()));
            }
        }
    }

    #[test]
    fn scan_path_matches_brute_force() {
        check(3000, 3, 17, 10);
    }

    #[test]
    fn gemm_path_matches_brute_force() {
        check(5000, 300, 24, 10);
    }

    #[test]
    fn parallel_item_split_matches_brute_force() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        pool.install(|| {
            check(40_000, 2, 8, 5);
            check(40_000, 20, 8, 5);
        });
    }

    #[test]
    fn k_larger_than_n_pads() {
        check(7, 9, 4, 12);
        check(7, 2, 4, 12);
    }
}
