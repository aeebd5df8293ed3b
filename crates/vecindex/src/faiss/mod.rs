//! The "faiss" backend: FAISS-compatible indexes implemented natively, reading and writing
//! faiss 1.15 files byte for byte.
//!
//! Parameters (Torch-RecHub names; snake_case aliases accepted):
//!
//! | key | values | default | meaning |
//! |---|---|---|---|
//! | `index_type` | `Flat`, `HNSW`, `IVF` | `Flat` | index kind |
//! | `metric` | `L2`, `IP` | `L2` | squared L2 distance (ascending) or inner product (descending) |
//! | `d` | 1..=1048576 | from the data | if given, the embeddings must have this dimension |
//! | `m` | 2..=512 | 32 | HNSW neighbours per node |
//! | `efSearch` | ≥ 1 | 16 | HNSW search breadth |
//! | `efConstruction` | ≥ 1 | 40 | HNSW build breadth |
//! | `nlists` (`nlist`) | ≥ 1 | 100 | IVF lists |
//! | `nprobe` | ≥ 1 | max(8, ⌈nlists/6⌉) | IVF lists probed per query (see [`default_nprobe`]) |
//! | `threads` (`n_jobs`) | -1, 0 or ≥ 1 | all cores | HNSW build threads (the graph does not depend on it) |
//! | `storage` (`codec`) | `Flat`, `SQ8`, `SQfp16`, `PQ` (IVF only) | `Flat` | how vectors are stored |
//! | `pq_m` | a divisor of d | largest divisor ≤ d/4 | PQ sub-quantizers (`storage=PQ`) |
//! | `pq_nbits` | 1..=16 | 8 | PQ bits per sub-quantizer index (files up to 24 are read) |
//! | `refine` | `none`, `Flat` | `none` | re-rank quantized candidates with the exact vectors |
//! | `k_factor` | 1..=1000 | 1 | refine: candidates per result wanted (query-time) |
//! | `factory` (`index_factory`) | faiss factory string | — | shorthand for the keys above ([`parse_factory`]) |
//!
//! Over 500 lines: the builder (factory settings, every kind's build) and the indexer of one
//! backend; the parameters live in params.rs, the index types in flat.rs, sq/, pq/, hnsw/, ivf/
//! and refine.rs, the file records in format.rs.

// The public face is the builder, the indexer and the index types' names; the modules are
// crate-internal (what the tests need is re-exported by `crate::internals`).
pub(crate) mod flat;
pub(crate) mod format;
pub(crate) mod hnsw;
pub(crate) mod invlists;
pub(crate) mod ivf;
pub(crate) mod kmeans;
mod params;
pub(crate) mod pq;
pub(crate) mod refine;
pub(crate) mod rng;
pub(crate) mod sq;

use crate::api::{
    check_ids, check_items, check_query, Builder, IndexInfo, Indexer, Neighbors, Progress,
};
use crate::config::{Config, Resolved};
use crate::error::{Error, Result};
use crate::exact::RawResults;
use crate::metric::Metric;
use crate::vectors::{Vectors, VectorsView};
use flat::FlatIndex;
use hnsw::{HnswIndex, HnswStorage};
use ivf::{IvfIndex, ListCodec, ListCodecSpec};
use refine::RefineIndex;
use sq::{QType, SqIndex};
use std::collections::BTreeMap;
use std::path::Path;

pub use params::{
    default_pq_m, parse_factory, IndexType, DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH, DEFAULT_M,
    DEFAULT_NLISTS, DEFAULT_PQ_NBITS,
};
pub(crate) use params::{KIND_PARAMS, PARAMS};

pub use crate::config::default_nprobe;

/// Input rows, borrowed from the caller or handed over.
enum Rows<'a> {
    Borrowed(VectorsView<'a>),
    Owned(Vectors),
}

impl Rows<'_> {
    fn view(&self) -> VectorsView<'_> {
        match self {
            Rows::Borrowed(v) => *v,
            Rows::Owned(v) => v.view(),
        }
    }

    fn rows(&self) -> usize {
        self.view().rows()
    }

    fn dim(&self) -> usize {
        self.view().dim()
    }

    /// The rows as an owned vector (a copy only when borrowed).
    fn into_vec(self) -> Vec<f32> {
        match self {
            Rows::Borrowed(v) => v.as_slice().to_vec(),
            Rows::Owned(v) => v.into_vec(),
        }
    }
}

/// An index held by the faiss backend.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FaissIndex {
    /// An exact index.
    Flat(FlatIndex),
    /// An exhaustive index over scalar-quantized codes (`IndexScalarQuantizer`).
    Sq(SqIndex),
    /// A base index whose candidates are re-ranked with the exact vectors (`IndexRefineFlat`).
    Refine(Box<RefineIndex>),
    /// An IVF-Flat index.
    Ivf(IvfIndex),
    /// An HNSW index over flat storage.
    Hnsw(HnswIndex),
}

impl FaissIndex {
    /// Values per vector.
    pub fn dim(&self) -> usize {
        match self {
            FaissIndex::Flat(f) => f.dim(),
            FaissIndex::Sq(s) => s.dim(),
            FaissIndex::Refine(r) => r.dim(),
            FaissIndex::Ivf(i) => i.dim(),
            FaissIndex::Hnsw(h) => h.dim(),
        }
    }

    /// Number of vectors the index holds (for IVF, as its header counts them).
    pub fn len(&self) -> usize {
        match self {
            FaissIndex::Flat(f) => f.len(),
            FaissIndex::Sq(s) => s.len(),
            FaissIndex::Refine(r) => r.len(),
            FaissIndex::Ivf(i) => i.len(),
            FaissIndex::Hnsw(h) => h.len(),
        }
    }

    /// True when the index holds no vectors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// L2 (squared distance, smaller first) or inner product (larger first).
    pub fn metric(&self) -> Metric {
        match self {
            FaissIndex::Flat(f) => f.metric(),
            FaissIndex::Sq(s) => s.metric(),
            FaissIndex::Refine(r) => r.metric(),
            FaissIndex::Ivf(i) => i.metric(),
            FaissIndex::Hnsw(h) => h.metric(),
        }
    }

    /// True for an IVF (also as a refine base) whose lists hold ids other than row numbers.
    fn has_custom_list_ids(&self) -> bool {
        match self {
            FaissIndex::Ivf(i) => !i.ids_are_row_numbers(),
            FaissIndex::Refine(r) => r.base.has_custom_list_ids(),
            _ => false,
        }
    }

    /// True when the index can be searched (its quantizer, if any, is trained).
    pub fn is_trained(&self) -> bool {
        match self {
            FaissIndex::Sq(s) => s.sq.is_trained(),
            FaissIndex::Hnsw(h) => match &h.storage {
                HnswStorage::Sq(s) => s.sq.is_trained(),
                HnswStorage::Flat(_) => true,
            },
            FaissIndex::Refine(r) => r.base.is_trained(),
            FaissIndex::Ivf(i) => {
                i.is_trained
                    && i.coded.as_ref().is_none_or(|c| match &c.codec {
                        ListCodec::Sq(sq) => sq.is_trained(),
                        ListCodec::Pq(_) => true,
                    })
            }
            FaissIndex::Flat(_) => true,
        }
    }

    /// How vectors are stored: `Flat` (f32), `SQ8`, `SQfp16` or `PQ`.
    pub fn storage_name(&self) -> &'static str {
        match self {
            FaissIndex::Sq(s) => s.sq.qtype.token(),
            FaissIndex::Hnsw(h) => match &h.storage {
                HnswStorage::Sq(s) => s.sq.qtype.token(),
                HnswStorage::Flat(_) => "Flat",
            },
            FaissIndex::Refine(r) => r.base.storage_name(),
            FaissIndex::Ivf(i) => match i.coded.as_ref().map(|c| &c.codec) {
                None => "Flat",
                Some(ListCodec::Sq(sq)) => sq.qtype.token(),
                Some(ListCodec::Pq(_)) => "PQ",
            },
            FaissIndex::Flat(_) => "Flat",
        }
    }

    /// Bytes the index holds in memory (vectors or codes, graph links, ids; as faiss lays them
    /// out, without our caches).
    pub fn memory_bytes(&self) -> usize {
        let f32s = |n: usize, d: usize| n * d * 4;
        match self {
            FaissIndex::Flat(f) => f32s(f.len(), f.dim()),
            FaissIndex::Sq(s) => s.codes().len() + s.sq.trained.len() * 4,
            FaissIndex::Ivf(i) => i.memory_bytes(),
            FaissIndex::Hnsw(h) => {
                let storage = match &h.storage {
                    HnswStorage::Flat(f) => f32s(f.len(), f.dim()),
                    HnswStorage::Sq(s) => s.codes().len() + s.sq.trained.len() * 4,
                };
                storage + h.graph.neighbors.len() * 4 + h.graph.offsets.len() * 8 + h.len() * 4
            }
            FaissIndex::Refine(r) => r.base.memory_bytes() + f32s(r.refine.len(), r.refine.dim()),
        }
    }

    /// The parameters `info` reports: the kind's own, the storage and the memory per vector.
    fn params(&self) -> BTreeMap<String, String> {
        let mut p = match self {
            FaissIndex::Flat(_) | FaissIndex::Sq(_) => BTreeMap::new(),
            FaissIndex::Ivf(i) => {
                let mut p = BTreeMap::from([
                    ("nlists".to_string(), i.nlist().to_string()),
                    ("nprobe".to_string(), i.nprobe().to_string()),
                ]);
                if let Some(c) = &i.coded {
                    p.insert("codec".into(), c.codec.name());
                    if let ListCodec::Pq(pq) = &c.codec {
                        p.insert("pq_m".into(), pq.pq.m().to_string());
                        p.insert("pq_nbits".into(), pq.pq.shape.nbits.to_string());
                    }
                }
                p
            }
            FaissIndex::Hnsw(h) => BTreeMap::from([
                ("m".to_string(), h.graph.m().to_string()),
                (
                    "efConstruction".to_string(),
                    h.graph.ef_construction.to_string(),
                ),
                ("efSearch".to_string(), h.ef_search().to_string()),
            ]),
            FaissIndex::Refine(r) => {
                let mut p = r.base.params();
                p.insert("refine".into(), "Flat".into());
                p.insert("k_factor".into(), r.k_factor.to_string());
                p
            }
        };
        p.insert("storage".into(), self.storage_name().into());
        if !self.is_empty() {
            p.insert(
                "bytes_per_vector".into(),
                format!("{:.1}", self.memory_bytes() as f64 / self.len() as f64),
            );
        }
        p
    }

    /// Applies a query-time parameter (`nprobe`, `efSearch`, `k_factor`; a refine index passes
    /// its base's through); `None` when this kind has no such parameter.
    fn set_query_param(&mut self, name: &str, r: &Resolved) -> Option<Result<()>> {
        match (self, name) {
            (FaissIndex::Ivf(ivf), "nprobe") => {
                ivf.set_nprobe(r.int(name).expect("checked") as usize);
                Some(Ok(()))
            }
            (FaissIndex::Hnsw(h), "efSearch") => {
                h.set_ef_search(r.int(name).expect("checked") as usize);
                Some(Ok(()))
            }
            (FaissIndex::Refine(rf), "k_factor") => {
                Some(rf.set_k_factor(r.float(name).expect("checked") as f32))
            }
            (FaissIndex::Refine(rf), _) => rf.base.set_query_param(name, r),
            _ => None,
        }
    }

    /// Top-k from whichever index this is (queries validated).
    pub(crate) fn search_raw(&self, queries: VectorsView<'_>, k: usize) -> Result<RawResults> {
        match self {
            FaissIndex::Flat(f) => Ok(f.search(queries, k)),
            FaissIndex::Sq(s) => s.search(queries, k),
            FaissIndex::Ivf(i) => i.search(queries, k),
            FaissIndex::Hnsw(h) => h.search(queries, k),
            FaissIndex::Refine(r) => r.search(queries, k),
        }
    }

    /// The fourcc of the record a save writes.
    pub fn fourcc(&self) -> &'static str {
        match self {
            FaissIndex::Flat(f) if f.metric() == Metric::L2 => "IxF2",
            FaissIndex::Flat(_) => "IxFI",
            FaissIndex::Sq(_) => "IxSQ",
            FaissIndex::Refine(_) => "IxRF",
            FaissIndex::Ivf(i) => match i.coded.as_ref().map(|c| &c.codec) {
                None => "IwFl",
                Some(ListCodec::Sq(_)) => "IwSq",
                Some(ListCodec::Pq(_)) => "IwPQ",
            },
            FaissIndex::Hnsw(h) => match h.storage {
                HnswStorage::Flat(_) => "IHNf",
                HnswStorage::Sq(_) => "IHNs",
            },
        }
    }

    /// Which of the three kinds this is.
    pub fn index_type(&self) -> IndexType {
        match self {
            FaissIndex::Flat(_) | FaissIndex::Sq(_) => IndexType::Flat,
            FaissIndex::Refine(r) => r.base.index_type(),
            FaissIndex::Ivf(_) => IndexType::Ivf,
            FaissIndex::Hnsw(_) => IndexType::Hnsw,
        }
    }
}

/// Typed builder for the faiss backend (what `builder_factory("faiss", ...)` returns).
#[derive(Clone)]
pub struct FaissBuilder {
    index_type: IndexType,
    metric: Metric,
    /// What the user set explicitly (to check files against, and to apply query parameters).
    explicit: Resolved,
    progress: Option<Progress>,
}

impl Default for FaissBuilder {
    fn default() -> Self {
        FaissBuilder {
            index_type: IndexType::Flat,
            metric: Metric::L2,
            explicit: Resolved::default(),
            progress: None,
        }
    }
}

impl std::fmt::Debug for FaissBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaissBuilder")
            .field("index_type", &self.index_type)
            .field("metric", &self.metric)
            .field("explicit", &self.explicit)
            .finish()
    }
}

impl FaissBuilder {
    /// Flat, L2.
    pub fn new() -> Self {
        Self::default()
    }

    /// From `key=value` settings; unknown keys, bad values and parameters that do not apply to
    /// the chosen `index_type` are errors.
    pub fn from_config(config: &Config) -> Result<Self> {
        let mut r = Resolved::new("faiss", PARAMS, config)?;
        if let Some(factory) = r.text("factory").map(str::to_string) {
            for (key, value) in parse_factory(&factory)? {
                if let Some(given) = r.text(key).filter(|g| *g != value) {
                    return Err(Error::InvalidParameter {
                        key: key.to_string(),
                        value: given.to_string(),
                        reason: format!(
                            "factory '{factory}' sets {key}={value}; drop one of the two"
                        ),
                    });
                }
                r = r.with("faiss", PARAMS, key, &value)?;
            }
        }
        let index_type = match r.text("index_type") {
            Some("HNSW") => IndexType::Hnsw,
            Some("IVF") => IndexType::Ivf,
            _ => IndexType::Flat,
        };
        let metric = match r.text("metric") {
            Some("IP") => Metric::InnerProduct,
            _ => Metric::L2,
        };
        let b = FaissBuilder {
            index_type,
            metric,
            explicit: r,
            progress: None,
        };
        if b.explicit.is_set("index_type") {
            b.check_params_apply(index_type)?;
        }
        Ok(b)
    }

    /// Sets the index kind.
    pub fn index_type(mut self, t: IndexType) -> Self {
        self.index_type = t;
        self
    }

    /// Sets any parameter by its config name (`nlists`, `nprobe`, `efSearch`, ...), validated
    /// like `key=value` settings.
    pub fn param(mut self, key: &str, value: impl ToString) -> Result<Self> {
        self.explicit = self
            .explicit
            .with("faiss", PARAMS, key, &value.to_string())?;
        Ok(self)
    }

    fn report(&self, stage: &str, done: u64, total: u64) {
        if let Some(p) = &self.progress {
            p(stage, done, total);
        }
    }

    /// Sets the metric (`Metric::L2` or `Metric::InnerProduct`).
    pub fn metric(mut self, m: Metric) -> Result<Self> {
        if !matches!(m, Metric::L2 | Metric::InnerProduct) {
            return Err(Error::InvalidParameter {
                key: "metric".into(),
                value: m.name().into(),
                reason: "valid values: L2, IP".into(),
            });
        }
        self.metric = m;
        Ok(self)
    }

    /// The scalar quantizer `storage` asks for; `None` for plain vectors (and for PQ, which
    /// [`FaissBuilder::list_codec`] handles).
    fn storage_codec(&self) -> Option<QType> {
        match self.explicit.text("storage") {
            Some("SQ8") => Some(QType::Sq8),
            Some("SQfp16") => Some(QType::Fp16),
            _ => None,
        }
    }

    /// True when `storage` asks for product quantization.
    fn is_pq(&self) -> bool {
        self.explicit.text("storage") == Some("PQ")
    }

    /// The codec of an IVF's lists for vectors of dimension `d`: SQ, or PQ with `pq_m` (a
    /// divisor of `d`) and `pq_nbits`.
    fn list_codec(&self, d: usize) -> Result<Option<ListCodecSpec>> {
        if !self.is_pq() {
            return Ok(self.storage_codec().map(ListCodecSpec::Sq));
        }
        let m = self
            .explicit
            .int("pq_m")
            .map_or_else(|| default_pq_m(d), |v| v as usize);
        if !d.is_multiple_of(m) {
            return Err(Error::InvalidParameter {
                key: "pq_m".into(),
                value: m.to_string(),
                reason: format!(
                    "must divide the dimension {d} (each sub-quantizer takes d/pq_m values); \
                     default_pq_m gives {}",
                    default_pq_m(d)
                ),
            });
        }
        let nbits = self
            .explicit
            .int("pq_nbits")
            .map_or(DEFAULT_PQ_NBITS, |v| v as usize);
        Ok(Some(ListCodecSpec::Pq { m, nbits }))
    }

    /// `storage=PQ` is for IVF only, and `pq_m` / `pq_nbits` for `storage=PQ` only.
    fn check_storage(&self) -> Result<()> {
        if self.is_pq() && self.index_type != IndexType::Ivf {
            return Err(Error::InvalidParameter {
                key: "storage".into(),
                value: "PQ".into(),
                reason: format!(
                    "product quantization is built for index_type IVF (IVF-PQ), not {}; \
                     use storage=SQ8 or SQfp16 here",
                    self.index_type.name()
                ),
            });
        }
        for key in ["pq_m", "pq_nbits"] {
            if self.explicit.is_set(key) && !self.is_pq() {
                return Err(Error::InvalidParameter {
                    key: key.into(),
                    value: self.explicit.text(key).unwrap_or("").into(),
                    reason: "applies to storage=PQ only".into(),
                });
            }
        }
        Ok(())
    }

    fn check_params_apply(&self, t: IndexType) -> Result<()> {
        for name in self.explicit.names() {
            if KIND_PARAMS.contains(&name) && !t.own_params().contains(&name) {
                let owner = [IndexType::Flat, IndexType::Hnsw, IndexType::Ivf]
                    .into_iter()
                    .filter(|k| k.own_params().contains(&name))
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(" and ");
                return Err(Error::InvalidParameter {
                    key: name.to_string(),
                    value: self.explicit.text(name).unwrap_or("").to_string(),
                    reason: format!(
                        "applies to index_type {owner}, not {}; remove it or change index_type",
                        t.name()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Builds a typed indexer (the trait method boxes this).
    pub fn build(&self, items: Vectors, ids: Option<Vec<i64>>) -> Result<FaissIndexer> {
        self.build_rows(Rows::Owned(items), ids)
    }

    /// [`FaissBuilder::build`] over borrowed or owned rows: only the indexes that keep the f32
    /// rows (Flat, and the exact rows of a refine index) take a copy of borrowed ones, so a
    /// quantized build's peak memory is the codes, not a second copy of the input.
    fn build_rows(&self, mut items: Rows<'_>, ids: Option<Vec<i64>>) -> Result<FaissIndexer> {
        self.check_params_apply(self.index_type)?;
        check_items(items.view(), self.explicit.int("d").map(|d| d as usize))?;
        if let Some(ids) = &ids {
            check_ids(ids, items.rows())?;
        }
        let dim = items.dim();
        self.check_storage()?;
        let refine = self.explicit.text("refine") == Some("Flat");
        if refine && self.storage_codec().is_none() && !self.is_pq() {
            return Err(Error::InvalidParameter {
                key: "refine".into(),
                value: "Flat".into(),
                reason:
                    "re-ranking needs a quantized storage to refine (storage=SQ8, SQfp16 or PQ)"
                        .into(),
            });
        }
        if !refine && self.explicit.is_set("k_factor") {
            return Err(Error::InvalidParameter {
                key: "k_factor".into(),
                value: self.explicit.text("k_factor").unwrap_or("").into(),
                reason: "applies to refine indexes only (refine=Flat)".into(),
            });
        }
        let mut ids_in_lists = false;
        let mut warnings = Vec::new();
        let index = match self.index_type {
            IndexType::Flat => match self.storage_codec() {
                // Refine needs a quantized storage (checked above): the rows can move.
                None => {
                    let rows =
                        std::mem::replace(&mut items, Rows::Borrowed(VectorsView::new(&[], dim)?));
                    FaissIndex::Flat(FlatIndex::from_parts(rows.into_vec(), dim, self.metric))
                }
                Some(qtype) => {
                    let mut s = SqIndex::new(qtype, dim, self.metric);
                    s.train(items.view())?;
                    s.add(items.view())?;
                    FaissIndex::Sq(s)
                }
            },
            IndexType::Ivf => {
                let nlist = self
                    .explicit
                    .int("nlists")
                    .map(|v| v as usize)
                    .unwrap_or(DEFAULT_NLISTS);
                let nprobe = self
                    .explicit
                    .int("nprobe")
                    .map(|v| v as usize)
                    .unwrap_or_else(|| default_nprobe(nlist));
                let codec = self.list_codec(dim)?;
                let mut ivf = IvfIndex::train_with(
                    items.view(),
                    nlist,
                    self.metric,
                    nprobe,
                    codec,
                    &|stage, i, n| self.report(stage, i, n),
                )?;
                // IVF stores ids in its lists (faiss does the same: no IxMp wrapper), except
                // under a refine index, whose exact rows are found by row number.
                let row_ids: Vec<i64>;
                let add_ids = match &ids {
                    Some(ids) if !refine => ids.as_slice(),
                    _ => {
                        row_ids = (0..items.rows() as i64).collect();
                        &row_ids
                    }
                };
                ivf.add(items.view(), add_ids)?;
                ids_in_lists = !refine;
                warnings = ivf_warnings(items.rows(), nlist, codec);
                FaissIndex::Ivf(ivf)
            }
            IndexType::Hnsw => {
                let m = self
                    .explicit
                    .int("m")
                    .map(|v| v as usize)
                    .unwrap_or(DEFAULT_M);
                let efc = self
                    .explicit
                    .int("efConstruction")
                    .map(|v| v as usize)
                    .unwrap_or(DEFAULT_EF_CONSTRUCTION);
                let efs = self
                    .explicit
                    .int("efSearch")
                    .map(|v| v as usize)
                    .unwrap_or(DEFAULT_EF_SEARCH);
                let build = || -> Result<HnswIndex> {
                    let mut h = match self.storage_codec() {
                        None => HnswIndex::new(dim, self.metric, m, efc, efs),
                        Some(qtype) => HnswIndex::new_sq(qtype, dim, self.metric, m, efc, efs),
                    };
                    h.train(items.view())?;
                    h.add(items.view(), &|done, total| {
                        self.report("HNSW build", done, total)
                    })?;
                    Ok(h)
                };
                let h = match self.explicit.int("threads") {
                    Some(t) if t > 0 => rayon::ThreadPoolBuilder::new()
                        .num_threads(t as usize)
                        .build()
                        .map_err(|e| {
                            Error::invalid(format!("cannot start {t} build threads: {e}"))
                        })?
                        .install(build)?,
                    _ => build()?,
                };
                FaissIndex::Hnsw(h)
            }
        };
        let index = if refine {
            let k_factor = self
                .explicit
                .float("k_factor")
                .map_or(refine::DEFAULT_K_FACTOR, |k| k as f32);
            let exact = FlatIndex::from_parts(items.into_vec(), dim, self.metric);
            FaissIndex::Refine(Box::new(RefineIndex::new(index, exact, k_factor)?))
        } else {
            index
        };
        // The record a save writes (what `info` reports of the saved file too).
        let record = index.fourcc();
        let id_map = if ids_in_lists { None } else { ids };
        let format = match id_map {
            Some(_) => format!("faiss IxMp({record})"),
            None => format!("faiss {record}"),
        };
        Ok(FaissIndexer {
            index,
            id_map,
            format,
            warnings,
            idmap2: false,
        })
    }

    /// Opens a faiss index file (typed). Explicit `index_type`/`metric`/`d` settings must agree
    /// with the file; explicit query-time parameters override what the file stored.
    pub fn load(&self, path: &Path) -> Result<FaissIndexer> {
        let src = path.display().to_string();
        let bytes = crate::io::read_file(path)?;
        let read = format::read_index_file(&bytes, &src)?;
        let index = read.index;
        let mismatch = |what: &str, given: String, found: String| {
            Error::invalid(format!(
                "{src} holds an index with {what} {found}, but {what}={given} was given; drop the setting or open the right file"
            ))
        };
        if self.explicit.is_set("index_type") && index.index_type() != self.index_type {
            return Err(mismatch(
                "index_type",
                self.index_type.name().into(),
                index.index_type().name().into(),
            ));
        }
        if self.explicit.is_set("metric") && index.metric() != self.metric {
            return Err(mismatch(
                "metric",
                self.metric.name().into(),
                index.metric().name().into(),
            ));
        }
        if let Some(storage) = self.explicit.text("storage") {
            if storage != index.storage_name() {
                return Err(mismatch(
                    "storage",
                    storage.into(),
                    index.storage_name().into(),
                ));
            }
        }
        if let Some(refine) = self.explicit.text("refine") {
            let found = if matches!(index, FaissIndex::Refine(_)) {
                "Flat"
            } else {
                "none"
            };
            if refine != found {
                return Err(mismatch("refine", refine.into(), found.into()));
            }
        }
        if let Some(d) = self.explicit.int("d") {
            if d as usize != index.dim() {
                return Err(mismatch("d", d.to_string(), index.dim().to_string()));
            }
        }
        self.check_params_apply(index.index_type())?;
        let mut index = index;
        for name in ["nprobe", "efSearch", "k_factor"] {
            if self.explicit.is_set(name) {
                index
                    .set_query_param(name, &self.explicit)
                    .unwrap_or_else(|| {
                        Err(Error::invalid(format!(
                            "{src} holds a faiss {} index without {name} (k_factor applies to \
                         refine indexes)",
                            index.fourcc()
                        )))
                    })?;
            }
        }
        if let Some(ids) = &read.id_map {
            // Files written elsewhere could repeat ids or use -1; we refuse what we would not build.
            check_ids(ids, index.len()).map_err(|e| Error::format(&src, format!("id map: {e}")))?;
        }
        Ok(FaissIndexer {
            index,
            id_map: read.id_map,
            format: read.format,
            warnings: Vec::new(),
            idmap2: read.idmap2,
        })
    }
}

impl Builder for FaissBuilder {
    fn backend(&self) -> &'static str {
        "faiss"
    }

    fn from_embeddings(&self, items: VectorsView<'_>) -> Result<Box<dyn Indexer>> {
        Ok(Box::new(self.build_rows(Rows::Borrowed(items), None)?))
    }

    fn from_embeddings_with_ids(
        &self,
        items: VectorsView<'_>,
        ids: &[i64],
    ) -> Result<Box<dyn Indexer>> {
        Ok(Box::new(
            self.build_rows(Rows::Borrowed(items), Some(ids.to_vec()))?,
        ))
    }

    fn from_vectors(&self, items: Vectors) -> Result<Box<dyn Indexer>> {
        Ok(Box::new(self.build(items, None)?))
    }

    fn from_index_file(&self, path: &Path) -> Result<Box<dyn Indexer>> {
        Ok(Box::new(self.load(path)?))
    }

    fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }
}

impl FaissIndexer {
    /// The build's warnings, and what the current settings deserve: an `nprobe` above the number
    /// of lists is kept as given (faiss stores it so) and probes every list, as faiss does.
    fn warnings_now(&self) -> Vec<String> {
        let mut w = self.warnings.clone();
        let ivf = match &self.index {
            FaissIndex::Refine(rf) => &rf.base,
            other => other,
        };
        if let FaissIndex::Ivf(i) = ivf {
            if i.nprobe() > i.nlist {
                w.push(format!(
                    "nprobe={} exceeds nlists={}: all {} lists are probed (as faiss does)",
                    i.nprobe(),
                    i.nlist,
                    i.nlist
                ));
            }
        }
        w
    }
}

/// faiss's warning for thin training sets (it prints it; we return it).
fn ivf_warnings(n: usize, nlist: usize, codec: Option<ListCodecSpec>) -> Vec<String> {
    let mut out = Vec::new();
    if n < 39 * nlist {
        out.push(format!(
            "clustering {n} points to {nlist} centroids: please provide at least {} training points \
             (or use fewer lists, e.g. nlists={})",
            39 * nlist,
            (n / 39).max(1)
        ));
    }
    if let Some(ListCodecSpec::Pq { nbits, .. }) = codec {
        let ksub = 1usize << nbits;
        if n < 39 * ksub {
            out.push(format!(
                "product quantizer: clustering {n} points to 2^pq_nbits = {ksub} centroids per \
                 sub-space: please provide at least {} training points (or lower pq_nbits)",
                39 * ksub
            ));
        }
    }
    out
}

/// A faiss-backend index ready to query.
#[derive(Debug, Clone)]
pub struct FaissIndexer {
    index: FaissIndex,
    id_map: Option<Vec<i64>>,
    format: String,
    warnings: Vec<String>,
    /// The id map came from an `IxM2` record (written back the same way).
    idmap2: bool,
}

impl FaissIndexer {
    /// The index inside.
    pub fn index(&self) -> &FaissIndex {
        &self.index
    }

    /// Custom ids, if any (row i has id `ids[i]`).
    pub fn id_map(&self) -> Option<&[i64]> {
        self.id_map.as_deref()
    }

    /// The exact bytes `save` writes.
    pub fn to_bytes(&self) -> Vec<u8> {
        format::write_index_as(&self.index, self.id_map.as_deref(), self.idmap2)
    }
}

impl Indexer for FaissIndexer {
    fn query(&self, queries: VectorsView<'_>, top_k: usize) -> Result<Neighbors> {
        check_query(queries, self.index.dim(), top_k)?;
        let mut raw = self.index.search_raw(queries, top_k)?;
        if let Some(map) = &self.id_map {
            for id in raw.ids.iter_mut().filter(|i| **i >= 0) {
                *id = map[*id as usize];
            }
        }
        Ok(Neighbors {
            ids: raw.ids,
            distances: raw.distances,
            n_queries: queries.rows(),
            k: top_k,
            metric: self.index.metric(),
        })
    }

    fn save(&self, path: &Path) -> Result<()> {
        crate::io::atomic_write(path, &self.to_bytes())
    }

    fn metric(&self) -> Metric {
        self.index.metric()
    }

    fn dim(&self) -> usize {
        self.index.dim()
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn info(&self) -> IndexInfo {
        IndexInfo {
            backend: "faiss".into(),
            format: self.format.clone(),
            index_type: self.index.index_type().name().into(),
            metric: self.index.metric(),
            higher_is_better: self.index.metric().higher_is_better(),
            dim: self.index.dim(),
            n: self.index.len(),
            custom_ids: self.id_map.is_some() || self.index.has_custom_list_ids(),
            params: self.index.params(),
            warnings: self.warnings_now(),
        }
    }

    fn set_param(&mut self, key: &str, value: &str) -> Result<()> {
        let cfg = Config::new().set(key, value);
        let r = Resolved::new("faiss", PARAMS, &cfg)?;
        let name = r.names().next().expect("one key");
        if let Some(done) = self.index.set_query_param(name, &r) {
            return done;
        }
        Err(Error::InvalidParameter {
            key: name.to_string(),
            value: value.to_string(),
            reason: format!(
                "not a query-time parameter of a faiss {} index (IVF takes nprobe, HNSW efSearch, a \
                 refine index k_factor)",
                self.index.index_type().name()
            ),
        })
    }
}
