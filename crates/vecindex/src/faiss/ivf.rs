//! FAISS `IndexIVFFlat`: a flat coarse quantizer (k-means centroids) and one inverted list of raw
//! vectors per centroid. Search probes the `nprobe` nearest lists and scans them exactly.

use super::flat::FlatIndex;
use super::kmeans::{kmeans, KMeansParams};
use crate::exact::RawResults;
use crate::kernels::{self, topk::TieOrder, topk::TopK};
use crate::metric::Metric;
use crate::vectors::VectorsView;
use crate::{Error, Result};
use rayon::prelude::*;

/// faiss's direct map, kept only so files round-trip byte for byte (vecindex does not use it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirectMap {
    pub kind: u8,
    pub array: Vec<i64>,
    pub hashtable: Vec<(i64, i64)>,
}

/// An IVF-Flat index.
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
}

impl IvfIndex {
    /// Trains the quantizer on `train` (k-means, faiss's IVF parameters) and returns an empty index.
    pub fn train(
        train: VectorsView<'_>,
        nlist: usize,
        metric: Metric,
        nprobe: usize,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Self> {
        let d = train.dim();
        let cent = kmeans(train, nlist, metric, KMeansParams::ivf(metric), progress)?;
        Ok(IvfIndex {
            dim: d,
            metric,
            nprobe,
            quantizer: FlatIndex::from_parts(cent, d, metric),
            nlist,
            is_trained: true,
            ntotal: 0,
            codes: vec![Vec::new(); nlist],
            ids: vec![Vec::new(); nlist],
            direct_map: DirectMap::default(),
        })
    }

    /// Adds vectors with the given ids (each to its nearest centroid, in order).
    pub fn add(&mut self, x: VectorsView<'_>, ids: &[i64]) -> Result<()> {
        if !self.is_trained {
            return Err(Error::invalid("IVF index is not trained"));
        }
        let assign = self.quantizer.search(x, 1);
        for (i, &list) in assign.ids.iter().enumerate() {
            if list < 0 {
                continue; // unassignable (faiss drops it too)
            }
            let l = list as usize;
            self.codes[l].extend_from_slice(x.row(i));
            self.ids[l].push(ids[i]);
        }
        self.ntotal += x.rows();
        Ok(())
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.ntotal
    }

    pub fn is_empty(&self) -> bool {
        self.ntotal == 0
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    pub fn nlist(&self) -> usize {
        self.nlist
    }

    pub fn nprobe(&self) -> usize {
        self.nprobe
    }

    pub fn set_nprobe(&mut self, nprobe: usize) {
        self.nprobe = nprobe;
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
        let l2 = self.metric == Metric::L2;
        let kern = kernels::kernels();
        let rows: Vec<(usize, &[f32])> = queries.iter().enumerate().collect();
        let heaps: Vec<TopK> = rows
            .par_iter()
            .map_init(Vec::new, |buf: &mut Vec<f32>, &(qi, q)| {
                let mut heap = TopK::new(k, tie);
                for &list in &coarse.ids[qi * nprobe..(qi + 1) * nprobe] {
                    if list < 0 {
                        continue;
                    }
                    let l = list as usize;
                    let ids = &self.ids[l];
                    if ids.is_empty() {
                        continue;
                    }
                    buf.resize(ids.len(), 0.0);
                    if l2 {
                        (kern.scan_l2)(q, &self.codes[l], buf);
                    } else {
                        (kern.scan_dot)(q, &self.codes[l], buf);
                    }
                    let sign = if l2 { 1.0 } else { -1.0 };
                    let mut thr = heap.threshold();
                    for (j, &v) in buf.iter().enumerate() {
                        let key = sign * v;
                        if key < thr {
                            heap.push(key, ids[j]);
                            thr = heap.threshold();
                        }
                    }
                }
                heap
            })
            .collect();
        let pad = self.metric.padding();
        let mut ids = vec![-1i64; nq * k];
        let mut distances = vec![pad; nq * k];
        for (qi, h) in heaps.into_iter().enumerate() {
            for (j, (key, id)) in h.into_sorted().into_iter().enumerate() {
                ids[qi * k + j] = id;
                distances[qi * k + j] = if l2 { key } else { -key };
            }
        }
        Ok(RawResults { ids, distances })
    }
}
