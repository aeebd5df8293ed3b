//! `MilvusBuilder`: configuration checks, connecting, building a collection (through a staging
//! collection) and reopening one from its handle file; `DropGuard` and collection naming.

use super::client::{MilvusClient, Settings};
use super::handle::{read_handle, Handle, HANDLE_FORMAT, HANDLE_VERSION};
use super::indexer::MilvusIndexer;
use super::params::{
    check_collection_name, check_nonzero, check_type_params, default_nprobe, index_type_of,
    metric_type_of, DEFAULT_EF, DEFAULT_EF_CONSTRUCTION, DEFAULT_URI, INSERT_BATCH_BYTES, PARAMS,
    PRIMARY_FIELD, VECTOR_FIELD,
};
use super::staging;
use crate::api::Progress;
use crate::api::{check_ids, check_items, Builder, Indexer};
use crate::config::{Config, Resolved};
use crate::error::{Error, Result};
use crate::vectors::VectorsView;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// `builder_factory("milvus", ...)`.
pub struct MilvusBuilder {
    params: Resolved,
    progress: Option<Progress>,
}

impl MilvusBuilder {
    /// A builder from `key=value` parameters (see the module's table), checked before any
    /// connection is made.
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

/// `prefix_<pid>_<time>_<counter>`: unique across processes and runs.
fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", staging::unique_suffix())
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
}
