//! The "milvus" backend: items go into a Milvus collection and are searched there, through the
//! official `milvus-sdk-rust` gRPC client (tested against Milvus 2.3.5).
//!
//! Parameters (Torch-RecHub names; snake_case aliases accepted):
//!
//! | key | values | default | meaning |
//! |---|---|---|---|
//! | `index_type` | `FLAT`, `HNSW`, `IVF_FLAT` | `FLAT` | server-side index |
//! | `metric` | `L2`, `IP`, `COSINE` | `L2` (the original's documented default; its code says COSINE) | scores as the server returns them |
//! | `d` | 1..=32768 | from the data | if given, embeddings (and a reopened collection) must have it |
//! | `m` (`M`) | 2..=2048 | 16 (documented; the code says 30) | HNSW neighbours per node |
//! | `efConstruction` | 1..=2^31 | 200 | HNSW build breadth (Milvus 2.3 requires one; the original sends none) |
//! | `ef` | 1..=32768 | 64 | HNSW search breadth; raised to `top_k` when smaller (the server refuses ef < k) |
//! | `nlist` (`nlists`) | 1..=65536 | 128 | IVF lists |
//! | `nprobe` | 1..=65536 | max(8, ⌈nlist/6⌉) | IVF lists probed (the faiss backend's rule) |
//! | `uri` | `http://host:port` | `http://127.0.0.1:19530` | server; or `host` + `port` |
//! | `token` / `user` + `password` | text | none | credentials when authorization is on (never written to files) |
//! | `db_name` | text | server default db | database |
//! | `collection` | text | generated | a named collection persists; without it a unique one is made and dropped with the indexer |
//! | `name` | text | `vecindex` | prefix of generated collection names |
//! | `overwrite` | `true`, `false` | `false` | replace an existing `collection` (built beside it, swapped in on success) |
//! | `consistency` | `Strong`, `Session`, `Bounded`, `Eventually` | `Bounded` | search consistency; builds flush and wait, so Bounded already sees every item |
//! | `connect_timeout` | seconds | 10 | give up connecting after this long |
//! | `timeout` | seconds | 60 | bound on each RPC (a hung server gives an error, not a hang) |
//! | `build_timeout` | seconds | 3600 | bound on index building and loading (flushing waits up to max(`build_timeout`, `timeout`)) |
//! | `connections` | 1..=16 | 2 | gRPC channels; query batches run in parallel over them |
//!
//! Results follow the server: `L2` is the squared distance (ascending), `IP` the inner product
//! and `COSINE` the cosine similarity (descending); missing hits are id -1 and ±inf.
//!
//! The client owns a small tokio runtime and waits for it on a channel, so the blocking
//! Builder/Indexer API works from plain threads and also from inside another async runtime
//! (where it blocks the calling thread for the duration of each call).

mod client;
mod staging;

use crate::api::Progress;
use crate::api::{check_ids, check_items, check_query, Builder, IndexInfo, Indexer, Neighbors};
use crate::config::{Config, Kind, Param, Resolved};
use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::vectors::VectorsView;
use client::{MilvusClient, SearchSpec, Settings};
use milvus::v2::prelude::{ConsistencyLevel, IndexType, MetricType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The server's cap on top_k and on queries per request.
pub const MAX_TOP_K: usize = 16384;
/// Default HNSW search breadth.
pub const DEFAULT_EF: usize = 64;
/// Default HNSW build breadth (Milvus's documented example value).
pub const DEFAULT_EF_CONSTRUCTION: i64 = 200;
const DEFAULT_URI: &str = "http://127.0.0.1:19530";
const PRIMARY_FIELD: &str = "id";
const VECTOR_FIELD: &str = "embedding";
/// Insert requests stay well under the proxy's 64 MiB message limit.
const INSERT_BATCH_BYTES: usize = 32 << 20;
/// Search responses stay under the client's 4 MiB receive limit (about 16 bytes per hit).
const MAX_HITS_PER_REQUEST: usize = 200_000;
/// Search requests stay well under the server's 64 MiB message limit.
const SEARCH_BATCH_BYTES: usize = 16 << 20;

const HANDLE_FORMAT: &str = "vecindex-milvus";
const HANDLE_VERSION: u32 = 1;

pub(crate) const PARAMS: &[Param] = &[
    Param {
        name: "index_type",
        aliases: &["type"],
        kind: Kind::Choice(&["FLAT", "HNSW", "IVF_FLAT"]),
    },
    Param {
        name: "metric",
        aliases: &["metric_type"],
        kind: Kind::Choice(&["L2", "IP", "COSINE"]),
    },
    Param {
        name: "d",
        aliases: &["dim"],
        kind: Kind::Int { min: 1, max: 32768 },
    },
    Param {
        name: "m",
        aliases: &[],
        kind: Kind::Int { min: 2, max: 2048 },
    },
    Param {
        name: "efConstruction",
        aliases: &["ef_construction"],
        kind: Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    },
    Param {
        name: "ef",
        aliases: &["efSearch", "ef_search"],
        kind: Kind::Int { min: 1, max: 32768 },
    },
    Param {
        name: "nlist",
        aliases: &["nlists"],
        kind: Kind::Int { min: 1, max: 65536 },
    },
    Param {
        name: "nprobe",
        aliases: &[],
        kind: Kind::Int { min: 1, max: 65536 },
    },
    Param {
        name: "uri",
        aliases: &[],
        kind: Kind::Text,
    },
    Param {
        name: "host",
        aliases: &[],
        kind: Kind::Text,
    },
    Param {
        name: "port",
        aliases: &[],
        kind: Kind::Int { min: 1, max: 65535 },
    },
    Param {
        name: "token",
        aliases: &[],
        kind: Kind::Text,
    },
    Param {
        name: "user",
        aliases: &["username"],
        kind: Kind::Text,
    },
    Param {
        name: "password",
        aliases: &[],
        kind: Kind::Text,
    },
    Param {
        name: "db_name",
        aliases: &["database", "db"],
        kind: Kind::Text,
    },
    Param {
        name: "collection",
        aliases: &["collection_name"],
        kind: Kind::Text,
    },
    Param {
        name: "name",
        aliases: &[],
        kind: Kind::Text,
    },
    Param {
        name: "overwrite",
        aliases: &[],
        kind: Kind::Choice(&["true", "false"]),
    },
    Param {
        name: "consistency",
        aliases: &["consistency_level"],
        kind: Kind::Choice(&["Strong", "Session", "Bounded", "Eventually"]),
    },
    Param {
        name: "connect_timeout",
        aliases: &[],
        kind: Kind::Float {
            min: 0.1,
            max: 3600.0,
        },
    },
    Param {
        name: "timeout",
        aliases: &["rpc_timeout"],
        kind: Kind::Float {
            min: 0.1,
            max: 86400.0,
        },
    },
    Param {
        name: "build_timeout",
        aliases: &[],
        kind: Kind::Float {
            min: 1.0,
            max: 604800.0,
        },
    },
    Param {
        name: "connections",
        aliases: &[],
        kind: Kind::Int { min: 1, max: 16 },
    },
];

/// Which parameters only make sense for one index type.
const TYPE_ONLY: &[(&str, &str)] = &[
    ("m", "HNSW"),
    ("efConstruction", "HNSW"),
    ("ef", "HNSW"),
    ("nlist", "IVF_FLAT"),
    ("nprobe", "IVF_FLAT"),
];

/// Parameters of one index type given for another are errors, never silently ignored.
fn check_type_params(params: &Resolved, index_type: &str) -> Result<()> {
    for (key, only) in TYPE_ONLY {
        if params.is_set(key) && *only != index_type {
            return Err(Error::InvalidParameter {
                key: key.to_string(),
                value: params.text(key).unwrap_or_default().to_string(),
                reason: format!("applies to index_type {only}, not {index_type}"),
            });
        }
    }
    Ok(())
}

/// The default `nprobe` for `nlist` lists (same rule as the faiss backend).
pub fn default_nprobe(nlist: usize) -> usize {
    crate::faiss::default_nprobe(nlist)
}

/// The handle file `save` writes: where the collection lives and how it was built. Never holds
/// credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Handle {
    format: String,
    version: u32,
    uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    db_name: Option<String>,
    collection: String,
    d: usize,
    metric: String,
    index_type: String,
    n_items: u64,
    custom_ids: bool,
    primary_field: String,
    vector_field: String,
    /// Build parameters as sent to the server (e.g. `M`, `efConstruction`, `nlist`).
    build_params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ef: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nprobe: Option<usize>,
    consistency: String,
}

/// `builder_factory("milvus", ...)`.
pub struct MilvusBuilder {
    params: Resolved,
    progress: Option<Progress>,
}

impl MilvusBuilder {
    pub fn from_config(config: &Config) -> Result<Self> {
        let params = Resolved::new("milvus", PARAMS, config)?;
        // Without an explicit index_type the check waits for the build (FLAT) or for the handle
        // file (its type), so `query milvus ef=128 --index h.json` works on an HNSW handle.
        if let Some(t) = params.text("index_type") {
            check_type_params(&params, t)?;
        }
        if params.is_set("uri") && (params.is_set("host") || params.is_set("port")) {
            return Err(Error::invalid(
                "give either uri or host/port for milvus, not both",
            ));
        }
        if params.is_set("user") != params.is_set("password") {
            return Err(Error::invalid(
                "milvus user and password go together; or give token=user:password",
            ));
        }
        if params.is_set("token") && params.is_set("user") {
            return Err(Error::invalid(
                "give either token or user/password for milvus, not both",
            ));
        }
        if let Some(c) = params.text("collection") {
            check_collection_name(c)?;
        }
        if let Some(p) = params.text("name") {
            check_collection_name(p)?;
        }
        if params.is_set("overwrite") && !params.is_set("collection") {
            return Err(Error::invalid(
                "overwrite applies to a named collection (collection=NAME)",
            ));
        }
        Ok(MilvusBuilder {
            params,
            progress: None,
        })
    }

    /// Connects with this builder's settings (uri/host/port, credentials, db_name).
    fn connect(&self) -> Result<MilvusClient> {
        let uri = self.uri_from_config().unwrap_or_else(|| DEFAULT_URI.into());
        let db = self.params.text("db_name").map(str::to_string);
        MilvusClient::connect(&self.settings(uri, db))
    }

    /// The collections in the configured database (to audit for leftovers).
    pub fn list_collections(&self) -> Result<Vec<String>> {
        self.connect()?.list_collections()
    }

    /// Drops a collection by name (a persisted one you no longer need); missing is not an error.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        check_collection_name(name)?;
        self.connect()?.drop_collection(name)
    }

    fn uri_from_config(&self) -> Option<String> {
        if let Some(u) = self.params.text("uri") {
            let u = if u.contains("://") {
                u.to_string()
            } else {
                format!("http://{u}")
            };
            return Some(u);
        }
        if self.params.is_set("host") || self.params.is_set("port") {
            let host = self.params.text("host").unwrap_or("127.0.0.1");
            let port = self.params.int("port").unwrap_or(19530);
            return Some(format!("http://{host}:{port}"));
        }
        None
    }

    fn settings(&self, uri: String, db_name: Option<String>) -> Settings {
        let secs = |k: &str, d: f64| Duration::from_secs_f64(self.params.float(k).unwrap_or(d));
        Settings {
            uri,
            token: self.params.text("token").map(str::to_string),
            user: self.params.text("user").map(str::to_string),
            password: self.params.text("password").map(str::to_string),
            db_name,
            connect_timeout: secs("connect_timeout", 10.0),
            rpc_timeout: secs("timeout", 60.0),
            build_timeout: secs("build_timeout", 3600.0),
            connections: self.params.int("connections").unwrap_or(2) as usize,
        }
    }

    fn report(&self, stage: &str, done: u64, total: u64) {
        if let Some(p) = &self.progress {
            p(stage, done, total);
        }
    }

    fn build(&self, items: VectorsView<'_>, ids: Option<&[i64]>) -> Result<Box<dyn Indexer>> {
        let d_param = self.params.int("d").map(|d| d as usize);
        check_items(items, d_param)?;
        if let Some(ids) = ids {
            check_ids(ids, items.rows())?;
        }
        let (n, d) = (items.rows(), items.dim());
        let metric = self.params.text("metric").unwrap_or("L2").to_string();
        let index_type = self.params.text("index_type").unwrap_or("FLAT").to_string();
        check_type_params(&self.params, &index_type)?;
        if metric == "COSINE" {
            check_nonzero(items, "item")?;
        }
        let uri = self.uri_from_config().unwrap_or_else(|| DEFAULT_URI.into());
        let db_name = self.params.text("db_name").map(str::to_string);
        let settings = self.settings(uri, db_name.clone());
        self.report("connecting", 0, 1);
        let client = MilvusClient::connect(&settings)?;

        staging::drop_abandoned(&client);

        // A named collection persists; without a name a unique one lives as long as the indexer.
        // Either way the build fills a staging collection, renamed only once complete, so a
        // failed build leaves no half-filled collection (and a failed rebuild the old one as is).
        let named = self.params.text("collection").map(str::to_string);
        let overwrite = self.params.text("overwrite") == Some("true");
        if let Some(name) = &named {
            if client.has_collection(name)? && !overwrite {
                return Err(Error::invalid(format!(
                    "milvus collection '{name}' already exists at {}; pass overwrite=true to \
                     replace it, or choose another collection name",
                    client.uri()
                )));
            }
        }
        let prefix = named
            .as_deref()
            .or(self.params.text("name"))
            .unwrap_or("vecindex");
        let staging = staging::Staging::new(prefix);
        let target = staging.name.clone();
        let mut guard = DropGuard {
            client: &client,
            name: Some(target.clone()),
        };
        client.create_collection(&target, PRIMARY_FIELD, VECTOR_FIELD, d)?;

        // Insert in batches under the message limit, `connections` batches in flight at once.
        let rows_per_batch = (INSERT_BATCH_BYTES / (4 * d + 8)).clamp(1, n);
        let group = client.connections();
        let mut done = 0usize;
        self.report("inserting", 0, n as u64);
        while done < n {
            let mut batches = Vec::with_capacity(group);
            let mut end = done;
            for _ in 0..group {
                if end >= n {
                    break;
                }
                let start = end;
                end = (start + rows_per_batch).min(n);
                let bids: Vec<i64> = match ids {
                    Some(ids) => ids[start..end].to_vec(),
                    None => (start as i64..end as i64).collect(),
                };
                let rows: Vec<Vec<f32>> = (start..end).map(|i| items.row(i).to_vec()).collect();
                batches.push((bids, rows));
            }
            let taken = client.insert_batches(&target, PRIMARY_FIELD, VECTOR_FIELD, batches)?;
            if taken != (end - done) as u64 {
                return Err(Error::Server {
                    uri: client.uri().to_string(),
                    action: "inserting".into(),
                    message: format!("server took {taken} of {} rows", end - done),
                });
            }
            done = end;
            self.report("inserting", done as u64, n as u64);
        }
        // Flush first: an index built before the segments are sealed is silently not used.
        self.report("flushing", 0, 1);
        client.flush(&target, n as u64)?;
        self.report("flushing", 1, 1);
        let rows = client.row_count(&target)?;
        if rows != n as u64 {
            return Err(Error::Server {
                uri: client.uri().to_string(),
                action: "flushing".into(),
                message: format!("collection holds {rows} rows after the flush, expected {n}"),
            });
        }
        let build_params = self.build_params(&index_type);
        self.report("building index", 0, 1);
        client.create_index(
            &target,
            VECTOR_FIELD,
            index_type_of(&index_type),
            metric_type_of(&metric),
            build_params.clone().into_iter().collect(),
        )?;
        self.report("building index", 1, 1);
        self.report("loading", 0, 1);
        client.load(&target)?;
        self.report("loading", 1, 1);

        let collection = match &named {
            Some(name) => {
                if client.has_collection(name)? {
                    client.drop_collection(name)?;
                }
                name.clone()
            }
            None => unique_name(prefix),
        };
        client.rename_collection(&target, &collection)?;
        guard.name = None;
        drop(guard);
        drop(staging);
        let handle = Handle {
            format: HANDLE_FORMAT.into(),
            version: HANDLE_VERSION,
            uri: client.uri().to_string(),
            db_name,
            collection,
            d,
            metric,
            index_type: index_type.clone(),
            n_items: n as u64,
            custom_ids: ids.is_some(),
            primary_field: PRIMARY_FIELD.into(),
            vector_field: VECTOR_FIELD.into(),
            build_params,
            ef: (index_type == "HNSW").then(|| self.ef()),
            nprobe: (index_type == "IVF_FLAT").then(|| self.nprobe()),
            consistency: self
                .params
                .text("consistency")
                .unwrap_or("Bounded")
                .to_string(),
        };
        Ok(Box::new(MilvusIndexer::new(
            client,
            handle,
            named.is_none(),
        )))
    }

    fn build_params(&self, index_type: &str) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        match index_type {
            "HNSW" => {
                p.insert("M".into(), self.params.int("m").unwrap_or(16).to_string());
                // Milvus 2.3 requires it (the original never sends it, so its HNSW fails there).
                let efc = self
                    .params
                    .int("efConstruction")
                    .unwrap_or(DEFAULT_EF_CONSTRUCTION);
                p.insert("efConstruction".into(), efc.to_string());
            }
            "IVF_FLAT" => {
                p.insert("nlist".into(), self.nlist().to_string());
            }
            _ => {}
        }
        p
    }

    fn nlist(&self) -> usize {
        self.params.int("nlist").unwrap_or(128) as usize
    }

    fn ef(&self) -> usize {
        self.params.int("ef").map_or(DEFAULT_EF, |v| v as usize)
    }

    fn nprobe(&self) -> usize {
        self.params
            .int("nprobe")
            .map_or_else(|| default_nprobe(self.nlist()), |v| v as usize)
    }

    /// Reopens the collection a handle file names.
    fn open(&self, path: &Path) -> Result<Box<dyn Indexer>> {
        let mut handle = read_handle(path)?;
        if let Some(m) = self.params.text("metric") {
            if m != handle.metric {
                return Err(Error::invalid(format!(
                    "{}: the collection was indexed with metric {}, not {m}",
                    path.display(),
                    handle.metric
                )));
            }
        }
        if let Some(t) = self.params.text("index_type") {
            if t != handle.index_type {
                return Err(Error::invalid(format!(
                    "{}: the collection has index_type {}, not {t}",
                    path.display(),
                    handle.index_type
                )));
            }
        }
        check_type_params(&self.params, &handle.index_type)?;
        // The builder's connection settings win (the server may have moved); else the handle's.
        let uri = self.uri_from_config().unwrap_or_else(|| handle.uri.clone());
        let db_name = self
            .params
            .text("db_name")
            .map(str::to_string)
            .or(handle.db_name.clone());
        let client = MilvusClient::connect(&self.settings(uri, db_name.clone()))?;
        handle.uri = client.uri().to_string();
        handle.db_name = db_name;
        if !client.has_collection(&handle.collection)? {
            return Err(Error::Server {
                uri: client.uri().to_string(),
                action: format!("opening {}", path.display()),
                message: format!(
                    "collection '{}' does not exist (dropped, or another database?)",
                    handle.collection
                ),
            });
        }
        let shape = client.describe(&handle.collection)?;
        if shape.dim != handle.d {
            return Err(Error::DimensionMismatch {
                what: format!("collection '{}' vs its handle file", handle.collection),
                expected: handle.d,
                got: shape.dim,
            });
        }
        if let Some(d) = self.params.int("d") {
            if d as usize != shape.dim {
                return Err(Error::DimensionMismatch {
                    what: format!("collection '{}' (parameter d)", handle.collection),
                    expected: d as usize,
                    got: shape.dim,
                });
            }
        }
        handle.primary_field = shape.primary_field;
        handle.vector_field = shape.vector_field;
        client.load(&handle.collection)?;
        handle.n_items = client.row_count(&handle.collection)?;
        if self.params.is_set("ef") {
            handle.ef = Some(self.ef());
        }
        if self.params.is_set("nprobe") {
            handle.nprobe = Some(self.nprobe());
        }
        if let Some(c) = self.params.text("consistency") {
            handle.consistency = c.to_string();
        }
        // An opened collection belongs to whoever made it: never dropped by us.
        Ok(Box::new(MilvusIndexer::new(client, handle, false)))
    }
}

impl Builder for MilvusBuilder {
    fn backend(&self) -> &'static str {
        "milvus"
    }

    fn from_embeddings(&self, items: VectorsView<'_>) -> Result<Box<dyn Indexer>> {
        self.build(items, None)
    }

    fn from_embeddings_with_ids(
        &self,
        items: VectorsView<'_>,
        ids: &[i64],
    ) -> Result<Box<dyn Indexer>> {
        self.build(items, Some(ids))
    }

    fn from_index_file(&self, path: &Path) -> Result<Box<dyn Indexer>> {
        self.open(path)
    }

    fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }
}

/// Drops a half-built collection when the build fails at any step.
struct DropGuard<'a> {
    client: &'a MilvusClient,
    name: Option<String>,
}

impl Drop for DropGuard<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            let _ = self.client.drop_collection(&name);
        }
    }
}

/// A collection on a Milvus server, searchable through the common interface.
pub struct MilvusIndexer {
    client: MilvusClient,
    handle: Handle,
    /// Drop the collection with the indexer (generated names, until `save`).
    ephemeral: AtomicBool,
    /// The largest top_k that needed ef raised (0: none), for `info().warnings`.
    ef_noted: AtomicU64,
}

impl MilvusIndexer {
    fn new(client: MilvusClient, handle: Handle, ephemeral: bool) -> Self {
        MilvusIndexer {
            client,
            handle,
            ephemeral: AtomicBool::new(ephemeral),
            ef_noted: AtomicU64::new(0),
        }
    }

    /// The collection's name on the server.
    pub fn collection(&self) -> &str {
        &self.handle.collection
    }

    fn metric_enum(&self) -> Metric {
        match self.handle.metric.as_str() {
            "IP" => Metric::InnerProduct,
            "COSINE" => Metric::Cosine,
            _ => Metric::L2,
        }
    }

    fn search_params(&self, k: usize) -> HashMap<String, String> {
        let mut p = HashMap::new();
        match self.handle.index_type.as_str() {
            "HNSW" => {
                let ef = self.handle.ef.unwrap_or(DEFAULT_EF);
                if ef < k {
                    // Reported by `info().warnings` (the library never prints).
                    self.ef_noted.fetch_max(k as u64, Ordering::Relaxed);
                }
                p.insert("ef".into(), ef.max(k).to_string());
            }
            "IVF_FLAT" => {
                let nprobe = self.handle.nprobe.unwrap_or_else(|| {
                    let nlist = self
                        .handle
                        .build_params
                        .get("nlist")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(128);
                    default_nprobe(nlist)
                });
                p.insert("nprobe".into(), nprobe.to_string());
            }
            _ => {}
        }
        p
    }
}

impl Drop for MilvusIndexer {
    fn drop(&mut self) {
        if self.ephemeral.load(Ordering::SeqCst) {
            if let Err(e) = self.client.drop_collection(&self.handle.collection) {
                // Nobody to return an error to; the next build on this server drops it anyway
                // when it was a staging collection, else it stays until dropped by name.
                log::warn!(
                    "could not drop temporary milvus collection '{}': {e}",
                    self.handle.collection
                );
            }
        }
    }
}

impl Indexer for MilvusIndexer {
    fn query(&self, queries: VectorsView<'_>, top_k: usize) -> Result<Neighbors> {
        check_query(queries, self.handle.d, top_k)?;
        if top_k > MAX_TOP_K {
            return Err(Error::invalid(format!(
                "top_k {top_k} is above Milvus's limit of {MAX_TOP_K}"
            )));
        }
        if self.handle.metric == "COSINE" {
            check_nonzero(queries, "query")?;
        }
        let nq = queries.rows();
        let d = self.handle.d;
        let per_request = (MAX_HITS_PER_REQUEST / top_k)
            .min(SEARCH_BATCH_BYTES / (4 * d))
            .clamp(1, MAX_TOP_K);
        // Enough batches to keep every connection busy, none above the request limits.
        let conns = self.client.connections();
        let per_batch = if nq >= 64 * conns {
            per_request.min(nq.div_ceil(conns))
        } else {
            per_request
        };
        let batches: Vec<Vec<Vec<f32>>> = (0..nq)
            .step_by(per_batch)
            .map(|s| {
                (s..(s + per_batch).min(nq))
                    .map(|i| queries.row(i).to_vec())
                    .collect()
            })
            .collect();
        let spec = SearchSpec {
            collection: self.handle.collection.clone(),
            vector_field: self.handle.vector_field.clone(),
            k: top_k,
            metric: metric_type_of(&self.handle.metric),
            params: self.search_params(top_k),
            consistency: consistency_of(&self.handle.consistency),
        };
        let hits = self.client.search(&spec, batches)?;
        let metric = self.metric_enum();
        let mut ids = vec![-1i64; nq * top_k];
        let mut distances = vec![metric.padding(); nq * top_k];
        for (q, h) in hits.iter().enumerate() {
            if h.ids.len() != h.scores.len() || h.ids.len() > top_k {
                return Err(Error::Server {
                    uri: self.client.uri().to_string(),
                    action: "searching".into(),
                    message: format!(
                        "query {q}: {} ids and {} scores for top_k {top_k}",
                        h.ids.len(),
                        h.scores.len()
                    ),
                });
            }
            let row = q * top_k;
            ids[row..row + h.ids.len()].copy_from_slice(&h.ids);
            distances[row..row + h.scores.len()].copy_from_slice(&h.scores);
        }
        Ok(Neighbors {
            ids,
            distances,
            n_queries: nq,
            k: top_k,
            metric,
        })
    }

    /// Makes the collection persistent and writes a handle file that `from_index_file` reopens.
    fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(&self.handle).expect("handle serialises");
        crate::io::atomic_write(path, &json)?;
        self.ephemeral.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn metric(&self) -> Metric {
        self.metric_enum()
    }

    fn dim(&self) -> usize {
        self.handle.d
    }

    fn len(&self) -> usize {
        self.handle.n_items as usize
    }

    fn info(&self) -> IndexInfo {
        let mut info = handle_info(&self.handle);
        let raised_to = self.ef_noted.load(Ordering::Relaxed);
        if raised_to > 0 {
            info.warnings.push(format!(
                "ef {} < top_k {raised_to}: searched with ef = top_k (Milvus HNSW needs ef >= top_k)",
                self.handle.ef.unwrap_or(DEFAULT_EF)
            ));
        }
        info
    }

    fn set_param(&mut self, key: &str, value: &str) -> Result<()> {
        let r = Resolved::new("milvus", PARAMS, &Config::new().set(key, value))?;
        let it = self.handle.index_type.clone();
        if let Some(ef) = r.int("ef") {
            if it != "HNSW" {
                return Err(Error::invalid(format!("ef applies to HNSW, not {it}")));
            }
            self.handle.ef = Some(ef as usize);
        } else if let Some(np) = r.int("nprobe") {
            if it != "IVF_FLAT" {
                return Err(Error::invalid(format!(
                    "nprobe applies to IVF_FLAT, not {it}"
                )));
            }
            self.handle.nprobe = Some(np as usize);
        } else if let Some(c) = r.text("consistency") {
            self.handle.consistency = c.to_string();
        } else {
            return Err(Error::UnknownParameter {
                backend: "milvus".into(),
                key: key.into(),
                hint: String::new(),
                valid: "ef, nprobe, consistency (query-time parameters)".into(),
            });
        }
        Ok(())
    }
}

fn handle_info(h: &Handle) -> IndexInfo {
    let metric = match h.metric.as_str() {
        "IP" => Metric::InnerProduct,
        "COSINE" => Metric::Cosine,
        _ => Metric::L2,
    };
    let mut params: BTreeMap<String, String> = h.build_params.clone();
    params.insert("uri".into(), h.uri.clone());
    params.insert("collection".into(), h.collection.clone());
    if let Some(db) = &h.db_name {
        params.insert("db_name".into(), db.clone());
    }
    if let Some(ef) = h.ef {
        params.insert("ef".into(), ef.to_string());
    }
    if let Some(np) = h.nprobe {
        params.insert("nprobe".into(), np.to_string());
    }
    params.insert("consistency".into(), h.consistency.clone());
    IndexInfo {
        backend: "milvus".into(),
        format: "milvus collection handle".into(),
        index_type: h.index_type.clone(),
        metric,
        higher_is_better: metric.higher_is_better(),
        dim: h.d,
        n: h.n_items as usize,
        custom_ids: h.custom_ids,
        params,
        warnings: Vec::new(),
    }
}

/// True when `path` is a Milvus handle file (for `inspect`).
pub(crate) fn is_handle(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 256];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    let s = String::from_utf8_lossy(&head[..n]);
    s.trim_start().starts_with('{') && s.contains(HANDLE_FORMAT)
}

/// Describes a handle file without contacting the server.
pub(crate) fn inspect_handle(path: &Path) -> Result<IndexInfo> {
    read_handle(path).map(|h| handle_info(&h))
}

fn read_handle(path: &Path) -> Result<Handle> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() > 1 << 20 {
        return Err(Error::format(
            path.display(),
            "not a vecindex milvus handle (larger than 1 MiB)",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let h: Handle = serde_json::from_slice(&bytes).map_err(|e| {
        Error::format(
            path.display(),
            format!("not a vecindex milvus handle file: {e}"),
        )
    })?;
    let bad = |why: String| Err(Error::format(path.display(), why));
    if h.format != HANDLE_FORMAT {
        return bad(format!(
            "format is '{}', expected '{HANDLE_FORMAT}'",
            h.format
        ));
    }
    if h.version != HANDLE_VERSION {
        return bad(format!(
            "handle version {} is not supported (this vecindex reads {HANDLE_VERSION})",
            h.version
        ));
    }
    if !["L2", "IP", "COSINE"].contains(&h.metric.as_str()) {
        return bad(format!("unknown metric '{}'", h.metric));
    }
    if !["FLAT", "HNSW", "IVF_FLAT"].contains(&h.index_type.as_str()) {
        return bad(format!("unknown index_type '{}'", h.index_type));
    }
    if h.d == 0 || h.d > 32768 {
        return bad(format!("dimension {} out of range", h.d));
    }
    if let Err(e) = check_collection_name(&h.collection) {
        return bad(e.to_string());
    }
    if !["Strong", "Session", "Bounded", "Eventually"].contains(&h.consistency.as_str()) {
        return bad(format!("unknown consistency '{}'", h.consistency));
    }
    Ok(h)
}

/// Milvus's rule (letters, digits and underscores, not starting with a digit, at most 255),
/// with at most 200 here so that staging names made from it stay within 255.
fn check_collection_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "'{name}' is not a valid milvus collection name: use letters, digits and \
             underscores, not starting with a digit, at most 200 characters"
        )))
    }
}

/// `prefix_<pid>_<time>_<counter>`: unique across processes and runs.
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{:x}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// COSINE is undefined for a zero vector; the server would return NaN scores.
fn check_nonzero(v: VectorsView<'_>, what: &str) -> Result<()> {
    match v.iter().position(|r| r.iter().all(|x| *x == 0.0)) {
        Some(i) => Err(Error::invalid(format!(
            "{what} row {i} is the zero vector, which has no cosine similarity"
        ))),
        None => Ok(()),
    }
}

fn index_type_of(name: &str) -> IndexType {
    match name {
        "HNSW" => IndexType::Hnsw,
        "IVF_FLAT" => IndexType::IvfFlat,
        _ => IndexType::Flat,
    }
}

fn metric_type_of(name: &str) -> MetricType {
    match name {
        "IP" => MetricType::Ip,
        "COSINE" => MetricType::Cosine,
        _ => MetricType::L2,
    }
}

fn consistency_of(name: &str) -> ConsistencyLevel {
    match name {
        "Strong" => ConsistencyLevel::Strong,
        "Session" => ConsistencyLevel::Session,
        "Eventually" => ConsistencyLevel::Eventually,
        _ => ConsistencyLevel::Bounded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked_before_any_connection() {
        let e = |c: Config| MilvusBuilder::from_config(&c).err().unwrap().to_string();
        assert!(e(Config::new().set("index_type", "IVF")).contains("FLAT, HNSW, IVF_FLAT"));
        assert!(e(Config::new().set("metric", "angular")).contains("L2, IP, COSINE"));
        assert!(e(Config::new().set("ef", 10).set("index_type", "FLAT"))
            .contains("applies to index_type HNSW"));
        assert!(e(Config::new().set("uri", "x").set("port", 1)).contains("not both"));
        assert!(e(Config::new().set("user", "root")).contains("go together"));
        assert!(e(Config::new().set("collection", "9abc")).contains("not a valid"));
        assert!(e(Config::new().set("colection", "a")).contains("did you mean 'collection'"));
        assert!(e(Config::new().set("overwrite", "true")).contains("named collection"));
        assert!(MilvusBuilder::from_config(
            &Config::new()
                .set("index_type", "hnsw")
                .set("M", 8)
                .set("ef", 32)
                .set("host", "localhost")
        )
        .is_ok());
    }

    #[test]
    fn unique_names_are_valid_and_distinct() {
        let a = unique_name("vecindex");
        let b = unique_name("vecindex");
        assert_ne!(a, b);
        check_collection_name(&a).unwrap();
    }

    #[test]
    fn handle_files_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.json");
        std::fs::write(&p, b"{\"format\":\"vecindex-milvus\"}").unwrap();
        assert!(read_handle(&p).is_err());
        std::fs::write(&p, b"\x00\x01garbage").unwrap();
        assert!(read_handle(&p)
            .unwrap_err()
            .to_string()
            .contains("not a vecindex milvus handle"));
        let h = Handle {
            format: HANDLE_FORMAT.into(),
            version: HANDLE_VERSION,
            uri: DEFAULT_URI.into(),
            db_name: None,
            collection: "c1".into(),
            d: 8,
            metric: "IP".into(),
            index_type: "HNSW".into(),
            n_items: 5,
            custom_ids: false,
            primary_field: "id".into(),
            vector_field: "embedding".into(),
            build_params: BTreeMap::from([("M".to_string(), "16".to_string())]),
            ef: Some(32),
            nprobe: None,
            consistency: "Bounded".into(),
        };
        std::fs::write(&p, serde_json::to_vec(&h).unwrap()).unwrap();
        assert!(is_handle(&p));
        let info = inspect_handle(&p).unwrap();
        assert_eq!(
            (info.dim, info.n, info.metric),
            (8, 5, Metric::InnerProduct)
        );
        let mut bad = h.clone();
        bad.metric = "angular".into();
        std::fs::write(&p, serde_json::to_vec(&bad).unwrap()).unwrap();
        assert!(read_handle(&p)
            .unwrap_err()
            .to_string()
            .contains("unknown metric"));
    }
}
