//! The Builder → Indexer interface every backend implements.

use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::vectors::{Vectors, VectorsView};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Makes an [`Indexer`], from embeddings or from a saved index.
// The `from_*` names are Torch-RecHub's API, which users port code from.
#[allow(clippy::wrong_self_convention)]
pub trait Builder: Send + Sync {
    /// The backend name ("faiss", "annoy", "milvus").
    fn backend(&self) -> &'static str;

    /// Builds an index over `items`; row `i` gets id `i`.
    fn from_embeddings(&self, items: VectorsView<'_>) -> Result<Box<dyn Indexer>>;

    /// Builds an index over `items` with the given 64-bit ids (unique, not -1, one per row).
    fn from_embeddings_with_ids(
        &self,
        items: VectorsView<'_>,
        ids: &[i64],
    ) -> Result<Box<dyn Indexer>>;

    /// Like [`Builder::from_embeddings`], but hands over the matrix so a backend that stores the
    /// raw vectors can keep it without a copy (halves peak memory on large builds).
    fn from_vectors(&self, items: Vectors) -> Result<Box<dyn Indexer>> {
        self.from_embeddings(items.view())
    }

    /// Opens an index saved by this backend (or by the original library).
    fn from_index_file(&self, path: &Path) -> Result<Box<dyn Indexer>>;

    /// Receives progress of long builds (`stage`, `done`, `total`); the library never prints.
    /// Backends whose builds are instant ignore it.
    fn set_progress(&mut self, _progress: Progress) {}
}

/// A progress callback: `(stage, done, total)`.
pub type Progress = std::sync::Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

/// A searchable index. Dropping it releases its resources.
pub trait Indexer: Send + Sync {
    /// The `top_k` best items for every query row, best first. Slots beyond what the index can
    /// return hold id -1 and [`Metric::padding`].
    fn query(&self, queries: VectorsView<'_>, top_k: usize) -> Result<Neighbors>;

    /// Writes the index to `path` atomically in the backend's own format.
    fn save(&self, path: &Path) -> Result<()>;

    /// What the returned scores mean.
    fn metric(&self) -> Metric;

    /// True when larger scores are better (similarities).
    fn higher_is_better(&self) -> bool {
        self.metric().higher_is_better()
    }

    /// Vector dimension.
    fn dim(&self) -> usize;

    /// Number of items indexed.
    fn len(&self) -> usize;

    /// True when the index holds no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A description: format, type, metric, sizes and parameters.
    fn info(&self) -> IndexInfo;

    /// Changes a query-time parameter (e.g. `efSearch`, `nprobe`) without rebuilding.
    fn set_param(&mut self, key: &str, _value: &str) -> Result<()> {
        Err(Error::UnknownParameter {
            backend: self.info().backend,
            key: key.to_string(),
            hint: String::new(),
            valid: "(this index has no query-time parameters)".into(),
        })
    }
}

/// Query results: row-major `(n_queries, k)` ids and scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbors {
    /// Row-major `(n_queries, k)` item ids, best first in each row; -1 marks an empty slot.
    pub ids: Vec<i64>,
    /// Row-major `(n_queries, k)` scores in `metric`'s convention; empty slots hold
    /// [`Metric::padding`].
    pub distances: Vec<f32>,
    /// Number of query rows.
    pub n_queries: usize,
    /// Slots per query row (the `top_k` asked for).
    pub k: usize,
    /// What the scores mean, including whether larger or smaller is better.
    pub metric: Metric,
}

impl Neighbors {
    /// Ids of query `i`, best first.
    pub fn ids_row(&self, i: usize) -> &[i64] {
        &self.ids[i * self.k..(i + 1) * self.k]
    }

    /// Scores of query `i`, best first.
    pub fn distances_row(&self, i: usize) -> &[f32] {
        &self.distances[i * self.k..(i + 1) * self.k]
    }

    /// As ndarray matrices `(ids, distances)`, the shape of the Python original's tensors.
    #[cfg(feature = "ndarray")]
    pub fn to_ndarray(&self) -> (ndarray::Array2<i64>, ndarray::Array2<f32>) {
        let sh = (self.n_queries, self.k);
        (
            ndarray::Array2::from_shape_vec(sh, self.ids.clone()).expect("shape"),
            ndarray::Array2::from_shape_vec(sh, self.distances.clone()).expect("shape"),
        )
    }
}

/// What an index is, for `vecindex info` and logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexInfo {
    /// Backend name: "faiss", "annoy" or "milvus".
    pub backend: String,
    /// File format (e.g. "faiss IxF2").
    pub format: String,
    /// Kind of index within the backend (e.g. "Flat", "HNSW", "IVF", annoy's "forest").
    pub index_type: String,
    /// What the scores mean.
    pub metric: Metric,
    /// True when larger scores are better (similarities), false for distances.
    pub higher_is_better: bool,
    /// Vector dimension.
    pub dim: usize,
    /// Number of items indexed.
    pub n: usize,
    /// True when results carry ids given at build time rather than row numbers.
    pub custom_ids: bool,
    /// The index's parameters by canonical name (e.g. `efSearch`, `nprobe`, `n_trees`), as text.
    pub params: BTreeMap<String, String>,
    /// Things the user should know about this index (e.g. a thin IVF training set).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Shared query checks: k > 0, dimension, finite values, and a result size that fits in memory.
pub(crate) fn check_query(queries: VectorsView<'_>, dim: usize, top_k: usize) -> Result<()> {
    if top_k == 0 {
        return Err(Error::invalid("top_k must be at least 1"));
    }
    queries.check_dim("query vectors", dim)?;
    queries.check_finite("query")?;
    check_result_size(queries.rows(), top_k, 1)
}

/// Checks, before anything is allocated, that `copies` results of `n_queries` × `top_k` slots
/// (an id and a score each, 12 bytes) can be held: at most 2^31 slots, and no more bytes than
/// the machine has available (Linux `MemAvailable`, read only for results over 256 MiB). A
/// caller that also copies or encodes the result counts those copies.
pub fn check_result_size(n_queries: usize, top_k: usize, copies: usize) -> Result<()> {
    const MAX_SLOTS: usize = 1 << 31;
    const SLOT_BYTES: usize = 12;
    let advice = "query fewer rows at a time or a smaller top_k (slots beyond the index's size \
                  only hold padding)";
    let slots = match n_queries.checked_mul(top_k) {
        Some(s) if s <= MAX_SLOTS => s,
        _ => {
            return Err(Error::invalid(format!(
                "{n_queries} queries × top_k {top_k} would return more than {MAX_SLOTS} results; \
                 {advice}"
            )))
        }
    };
    let bytes = slots * SLOT_BYTES * copies.max(1);
    if bytes > 256 << 20 {
        if let Some(avail) = available_memory() {
            if bytes as u64 > avail {
                return Err(Error::invalid(format!(
                    "{n_queries} queries × top_k {top_k} need {:.1} GiB for the result but only \
                     {:.1} GiB of memory is available; {advice}",
                    bytes as f64 / (1u64 << 30) as f64,
                    avail as f64 / (1u64 << 30) as f64
                )));
            }
        }
    }
    Ok(())
}

/// Bytes of memory available to new allocations (Linux), if known.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Shared build checks: at least one row, finite values, and (if given) the expected dimension.
pub(crate) fn check_items(items: VectorsView<'_>, expected_dim: Option<usize>) -> Result<()> {
    if items.rows() == 0 {
        return Err(Error::Empty(
            "cannot build an index from zero embeddings".into(),
        ));
    }
    if let Some(d) = expected_dim {
        items.check_dim("item vectors (parameter d)", d)?;
    }
    items.check_finite("item")
}

/// Custom ids: one per row, unique, and never -1 (which marks an empty result slot).
pub(crate) fn check_ids(ids: &[i64], rows: usize) -> Result<()> {
    if ids.len() != rows {
        return Err(Error::invalid(format!(
            "got {} ids for {rows} embeddings; give exactly one id per row",
            ids.len()
        )));
    }
    if let Some(p) = ids.iter().position(|&i| i == -1) {
        return Err(Error::invalid(format!(
            "id at position {p} is -1, which is reserved for empty result slots"
        )));
    }
    if let Some(id) = repeated_id(ids.iter().copied()) {
        let mut at = ids
            .iter()
            .enumerate()
            .filter(|(_, &i)| i == id)
            .map(|(p, _)| p);
        let (first, second) = (at.next().unwrap_or(0), at.next().unwrap_or(0));
        return Err(Error::invalid(format!(
            "duplicate id {id} at positions {first} and {second}; ids must be unique"
        )));
    }
    Ok(())
}

/// An id that appears more than once, if any (the one whose second copy comes first when ids
/// are row numbers). Row-number-like ids (all in 0..n, the usual case) are checked with a bit
/// set; others by sorting a copy.
pub(crate) fn repeated_id(ids: impl Iterator<Item = i64> + Clone) -> Option<i64> {
    let n = ids.clone().count();
    if ids.clone().all(|id| id >= 0 && (id as usize) < n) {
        let mut seen = vec![0u64; n.div_ceil(64)];
        for id in ids {
            let (w, b) = (id as usize / 64, id as usize % 64);
            if seen[w] >> b & 1 == 1 {
                return Some(id);
            }
            seen[w] |= 1 << b;
        }
        return None;
    }
    let mut all: Vec<i64> = ids.collect();
    all.sort_unstable();
    all.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_checks() {
        assert!(check_ids(&[1, 2, 3], 3).is_ok());
        assert!(check_ids(&[1, 2], 3)
            .unwrap_err()
            .to_string()
            .contains("2 ids for 3"));
        assert!(check_ids(&[1, -1, 3], 3)
            .unwrap_err()
            .to_string()
            .contains("position 1"));
        let e = check_ids(&[5, 6, 5], 3).unwrap_err().to_string();
        assert!(e.contains("duplicate id 5 at positions 0 and 2"), "{e}");
    }

    #[test]
    fn query_checks() {
        let q = [0.0f32; 6];
        let v = VectorsView::new(&q, 3).unwrap();
        assert!(check_query(v, 3, 0)
            .unwrap_err()
            .to_string()
            .contains("top_k"));
        assert!(check_query(v, 4, 1)
            .unwrap_err()
            .to_string()
            .contains("expected 4, got 3"));
        assert!(check_query(v, 3, 1).is_ok());
        let e = check_result_size(3, usize::MAX, 1).unwrap_err().to_string();
        assert!(e.contains("more than 2147483648 results"), "{e}");
        assert!(check_result_size(usize::MAX, 2, 1).is_err());
        if let Some(avail) = available_memory() {
            // 2^31 slots are 24 GiB: more than this machine can spare on top of itself
            let k = (avail / 12 / 2 + 1) as usize;
            if k.checked_mul(2).is_some_and(|s| s <= 1 << 31) {
                let e = check_result_size(2, k, 1).unwrap_err().to_string();
                assert!(e.contains("of memory is available"), "{e}");
            }
        }
        assert!(check_items(VectorsView::new(&[], 3).unwrap(), None).is_err());
    }
}
