//! IVF-PQ's L2 scan with per-list tables, list by list for a block of queries.
//!
//! Query by query, every probed list costs a read of its table `P_i` (`m · ksub` floats, 48 KB
//! at M = 48): with many short lists that read, from memory, is most of the search. Here a
//! block of queries is grouped by list, so each `P_i` is read once for all the queries of the
//! block that probe list i; the distances of each (query, list) go to a buffer, and each query
//! then offers them to its heap in its own coarse order. The arithmetic and the order of the
//! offers are those of the query-by-query scan, so the results are the same bit for bit.

use super::coded::IvfPq;
use super::{IvfCodes, IvfIndex};
use crate::exact::RawResults;
use crate::kernels::faiss_order::fvec_distance;
use crate::kernels::topk::{TieOrder, TopK};
use crate::vectors::VectorsView;
use rayon::prelude::*;

/// Query tables of one block stay within this (so they stay in the last-level cache).
const BLOCK_TABLE_BYTES: usize = 4 << 20;
/// Distances buffered for one block at most.
const BLOCK_DISTANCES: usize = 4 << 20;
/// Grouping by list pays when a block probes each of its lists this many times on average
/// (times 2: an integer ratio); below it the query-by-query scan is used.
const MIN_PROBES_PER_LIST_X2: usize = 3;

impl IvfIndex {
    /// The L2 scan with per-list tables over all `queries`, in blocks (see the module doc).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn scan_pq_by_list(
        &self,
        p: &IvfPq,
        coded: &IvfCodes,
        queries: VectorsView<'_>,
        coarse: &RawResults,
        nprobe: usize,
        k: usize,
        tie: TieOrder,
    ) -> Vec<TopK> {
        let nq = queries.rows();
        let per_list = p.pq.m() * p.pq.ksub();
        let table_cap = (BLOCK_TABLE_BYTES / (per_list * 4).max(1)).max(1);
        let mut heaps = Vec::with_capacity(nq);
        let mut start = 0;
        while start < nq {
            // The block: as many queries as the table and distance budgets allow (at least one).
            let mut end = start;
            let mut buffered = 0;
            while end < nq && end - start < table_cap {
                let n: usize = self
                    .probed(&coarse.ids[end * nprobe..(end + 1) * nprobe])
                    .map(|l| self.ids[l].len())
                    .sum();
                if end > start && buffered + n > BLOCK_DISTANCES {
                    break;
                }
                buffered += n;
                end += 1;
            }
            let block = Block::group(self, &coarse.ids[start * nprobe..end * nprobe], nprobe);
            if block.probes.len() * 2 < block.lists.len() * MIN_PROBES_PER_LIST_X2 {
                heaps.par_extend((start..end).into_par_iter().map_init(
                    super::coded::Scratch::default,
                    |s, qi| {
                        let mut heap = TopK::new(k, tie);
                        let lists = &coarse.ids[qi * nprobe..(qi + 1) * nprobe];
                        self.scan_pq(p, coded, queries.row(qi), lists, &mut heap, s);
                        heap
                    },
                ));
            } else {
                let dist = self.block_distances(p, coded, queries, start, &block);
                heaps.par_extend((0..end - start).into_par_iter().map(|b| {
                    let mut heap = TopK::new(k, tie);
                    for j in b * nprobe..(b + 1) * nprobe {
                        if let Some(at) = block.at[j] {
                            let l = block.list_of(j);
                            self.offer(&mut heap, l, &dist[at..at + self.ids[l].len()]);
                        }
                    }
                    heap
                }));
            }
            start = end;
        }
        heaps
    }

    /// The distances of every (query, probed list) of `block`, list by list in parallel.
    fn block_distances(
        &self,
        p: &IvfPq,
        coded: &IvfCodes,
        queries: VectorsView<'_>,
        start: usize,
        block: &Block<'_>,
    ) -> Vec<f32> {
        let per_list = p.pq.m() * p.pq.ksub();
        let nq = block.ids.len() / block.nprobe;
        let mut tables = vec![0.0f32; nq * per_list];
        tables
            .par_chunks_mut(per_list)
            .enumerate()
            .for_each(|(b, t)| p.pq.table(queries.row(start + b), t, false));
        let mut dist = vec![0.0f32; block.total];
        // One mutable region per list: its probes' distances, one after another.
        let mut regions = Vec::with_capacity(block.lists.len());
        let mut rest = dist.as_mut_slice();
        for (li, &l) in block.lists.iter().enumerate() {
            let probes = &block.probes[block.first[li]..block.first[li + 1]];
            let (region, tail) = rest.split_at_mut(probes.len() * self.ids[l].len());
            regions.push((l, probes, region));
            rest = tail;
        }
        regions
            .into_par_iter()
            .for_each_init(Vec::new, |scratch, (l, probes, region)| {
                let n = self.ids[l].len();
                let pl = &p.precomputed[l * per_list..(l + 1) * per_list];
                let c = self.centroid(l);
                for (&j, out) in probes.iter().zip(region.chunks_exact_mut(n)) {
                    let b = j / block.nprobe;
                    let q = queries.row(start + b);
                    let qt = &tables[b * per_list..(b + 1) * per_list];
                    let base = fvec_distance(q, c, true);
                    p.pq.shape
                        .scan_minus_twice(pl, qt, base, &coded.codes[l], out, scratch);
                }
            });
        dist
    }
}

/// A block's probes grouped by list (each list's probes in query order).
struct Block<'a> {
    /// The block's coarse ids (`nprobe` per query).
    ids: &'a [i64],
    nprobe: usize,
    /// The distinct non-empty lists probed, ascending.
    lists: Vec<usize>,
    /// `probes[first[i]..first[i + 1]]`: the indexes into `ids` that probe `lists[i]`.
    first: Vec<usize>,
    probes: Vec<usize>,
    /// Per probe, where its distances start in the block's buffer (`None`: nothing to scan).
    at: Vec<Option<usize>>,
    /// The distances of the whole block.
    total: usize,
}

impl<'a> Block<'a> {
    fn group(ivf: &IvfIndex, ids: &'a [i64], nprobe: usize) -> Self {
        // Sorted by (list, probe): a block holds a few thousand probes, so this costs less than
        // a counting sort over all the lists.
        let mut probes: Vec<usize> = (0..ids.len())
            .filter(|&j| ids[j] >= 0 && !ivf.ids[ids[j] as usize].is_empty())
            .collect();
        probes.sort_unstable_by_key(|&j| (ids[j], j));
        let (mut lists, mut first) = (Vec::new(), Vec::new());
        let mut at = vec![None; ids.len()];
        let mut total = 0;
        for (i, &j) in probes.iter().enumerate() {
            let l = ids[j] as usize;
            if lists.last() != Some(&l) {
                lists.push(l);
                first.push(i);
            }
            at[j] = Some(total);
            total += ivf.ids[l].len();
        }
        first.push(probes.len());
        Block {
            ids,
            nprobe,
            lists,
            first,
            probes,
            at,
            total,
        }
    }

    fn list_of(&self, probe: usize) -> usize {
        self.ids[probe] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ListCodec, ListCodecSpec};
    use super::*;
    use crate::metric::Metric;
    use crate::synth;

    /// A block scanned list by list gives each query what it gets searched alone (the
    /// query-by-query scan, the one checked against faiss), ties included: every row is stored
    /// twice, so equal codes sit side by side in each list.
    #[test]
    fn list_by_list_is_query_by_query() {
        let (x, _) = synth::clustered(1500, 32, 12, 5);
        let mut twice = x.as_slice().to_vec();
        twice.extend_from_slice(x.as_slice());
        let x = VectorsView::new(&twice, 32).unwrap();
        let spec = ListCodecSpec::Pq { m: 8, nbits: 6 };
        let mut ivf =
            IvfIndex::train_with(x, 16, Metric::L2, 5, Some(spec), &|_, _, _| {}).unwrap();
        let ids: Vec<i64> = (0..x.rows() as i64).collect();
        ivf.add(x, &ids).unwrap();
        let q = synth::gaussian(300, 32, 9);
        let coarse = ivf.quantizer.search(q.view(), 5);
        let coded = ivf.coded.as_ref().unwrap();
        let ListCodec::Pq(p) = &coded.codec else {
            unreachable!()
        };
        assert!(!p.precomputed.is_empty());
        let tie = TieOrder::LowIdFirst;
        let block = ivf.scan_pq_by_list(p, coded, q.view(), &coarse, 5, 10, tie);
        let mut ties = 0;
        for (qi, heap) in block.into_iter().enumerate() {
            let one = ivf.search(q.view().slice_rows(qi, qi + 1), 10).unwrap();
            let got = RawResults::from_heaps(vec![heap], 10, Metric::L2);
            assert_eq!(got.ids, one.ids, "query {qi}");
            let bits = |v: &[f32]| v.iter().map(|d| d.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got.distances), bits(&one.distances), "query {qi}");
            ties += got.distances.windows(2).filter(|w| w[0] == w[1]).count();
        }
        assert!(ties > 100, "the data must hold ties ({ties})");
    }
}
