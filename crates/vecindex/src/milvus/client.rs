//! A synchronous facade over `milvus-sdk-rust`'s async `ClientV2`.
//!
//! The facade owns a small tokio runtime. Every call is spawned onto it and the caller waits on
//! a plain channel, so the facade never calls `block_on` and never drops a runtime in place:
//! it can be used (and dropped) from ordinary threads and from inside another async runtime
//! alike — there it blocks the calling thread for the duration of the call, like any blocking I/O.
//!
//! One file (over 500 lines) on purpose: every RPC the backend makes goes through `run` and the
//! same timeout and error rules, which are easier to check when they sit together.

use crate::error::{Error, Result};
use milvus::v2::prelude::*;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// Connection settings (never printed: the token and password stay out of errors and files).
#[derive(Clone)]
pub(crate) struct Settings {
    pub uri: String,
    pub token: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub db_name: Option<String>,
    pub connect_timeout: Duration,
    pub rpc_timeout: Duration,
    pub build_timeout: Duration,
    pub connections: usize,
}

/// One hit list as the server returned it, best first (may be shorter than k).
pub(crate) struct Hits {
    pub ids: Vec<i64>,
    pub scores: Vec<f32>,
}

/// What a collection looks like on the server.
pub(crate) struct CollectionShape {
    pub primary_field: String,
    pub vector_field: String,
    pub dim: usize,
}

/// Search options shared by every batch of one query call.
#[derive(Clone)]
pub(crate) struct SearchSpec {
    pub collection: String,
    pub vector_field: String,
    pub k: usize,
    pub metric: MetricType,
    pub params: HashMap<String, String>,
    pub consistency: ConsistencyLevel,
}

pub(crate) struct MilvusClient {
    rt: Option<tokio::runtime::Runtime>,
    pool: Vec<ClientV2>,
    uri: String,
    build_timeout: Duration,
    /// Flushing is bounded by max(build_timeout, rpc timeout): it is I/O, not index work, and a
    /// tiny build_timeout meant for the index must not fail the flush.
    flush_timeout: Duration,
}

impl MilvusClient {
    /// Connects `settings.connections` clients (separate HTTP/2 channels); fails within the
    /// connect timeout when nothing answers.
    pub fn connect(settings: &Settings) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vecindex-milvus")
            .enable_all()
            .build()
            .map_err(|e| Error::Server {
                uri: settings.uri.clone(),
                action: "starting the client runtime".into(),
                message: e.to_string(),
            })?;
        let mut cfg = ConnectConfig::new()
            .uri(settings.uri.clone())
            .connect_timeout(settings.connect_timeout)
            .rpc_timeout(settings.rpc_timeout)
            // 2.3.x has no telemetry service; the SDK's heartbeats would only produce errors.
            .telemetry(TelemetryConfig::new().enabled(false))
            // The SDK's default (75 attempts, backoff to 3 s) turns one bad request into a
            // four-minute hang; three attempts ride out a transient blip.
            .retry(
                RetryConfig::new()
                    .max_attempts(3)
                    .max_retry_timeout(settings.connect_timeout.max(Duration::from_secs(5))),
            );
        if let Some(t) = &settings.token {
            cfg = cfg.token(t.clone());
        } else if let (Some(u), Some(p)) = (&settings.user, &settings.password) {
            cfg = cfg.username_password(u, p);
        }
        if let Some(db) = &settings.db_name {
            cfg = cfg.database(db.clone());
        }
        let mut me = MilvusClient {
            rt: Some(rt),
            pool: Vec::new(),
            uri: settings.uri.clone(),
            build_timeout: settings.build_timeout,
            flush_timeout: settings.build_timeout.max(settings.rpc_timeout),
        };
        let n = settings.connections.max(1);
        let connect_timeout = settings.connect_timeout;
        let pool = me.run("connecting", async move {
            let mut pool = Vec::with_capacity(n);
            for _ in 0..n {
                // The SDK bounds this by connect_timeout already; the outer bound guards against
                // a server that accepts TCP but never answers the handshake.
                let c = tokio::time::timeout(
                    connect_timeout + Duration::from_secs(2),
                    ClientV2::new(&cfg),
                )
                .await
                .map_err(|_| {
                    milvus::v2::error::Error::Timeout(format!(
                        "no answer within {:.1} s",
                        connect_timeout.as_secs_f64()
                    ))
                })??;
                pool.push(c);
            }
            Ok(pool)
        })?;
        me.pool = pool;
        Ok(me)
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn connections(&self) -> usize {
        self.pool.len()
    }

    /// Runs `fut` on the runtime and waits for it; SDK errors become [`Error::Server`] naming
    /// the uri and what was being done.
    fn run<T, F>(&self, action: &str, fut: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = milvus::v2::error::Result<T>> + Send + 'static,
    {
        let rt = self.rt.as_ref().expect("runtime lives until drop");
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        let err = |message: String| Error::Server {
            uri: self.uri.clone(),
            action: action.to_string(),
            message,
        };
        match rx.recv() {
            Ok(r) => r.map_err(|e| err(describe(&e))),
            Err(_) => Err(err("the client task stopped unexpectedly".into())),
        }
    }

    fn client(&self) -> ClientV2 {
        self.pool[0].clone()
    }

    pub fn has_collection(&self, name: &str) -> Result<bool> {
        let c = self.client();
        let name = name.to_string();
        self.run("checking the collection", async move {
            let r = c
                .has_collection(
                    HasCollectionRequest::builder()
                        .collection_name(name)
                        .build()?,
                )
                .await?;
            Ok(r.exists())
        })
    }

    pub fn list_collections(&self) -> Result<Vec<String>> {
        let c = self.client();
        self.run("listing collections", async move {
            let r = c
                .list_collections(ListCollectionsRequest::builder().build()?)
                .await?;
            Ok(r.collection_names().to_vec())
        })
    }

    /// Creates a collection: INT64 primary key `primary` (no auto id) and FLOAT_VECTOR `vector`.
    pub fn create_collection(
        &self,
        name: &str,
        primary: &str,
        vector: &str,
        dim: usize,
    ) -> Result<()> {
        let c = self.client();
        let (name, primary, vector) = (name.to_string(), primary.to_string(), vector.to_string());
        self.run("creating the collection", async move {
            let schema = CollectionSchema::new()
                .add_field(
                    FieldSchema::new()
                        .name(primary)
                        .data_type(DataType::Int64)
                        .primary_key(true)
                        .auto_id(false),
                )
                .add_field(
                    FieldSchema::new()
                        .name(vector)
                        .data_type(DataType::FloatVector)
                        .dimension(dim as u32),
                );
            c.create_collection(
                CreateCollectionRequest::builder()
                    .collection_name(name)
                    .schema(schema)
                    .consistency_level(ConsistencyLevel::Bounded)
                    .build()?,
            )
            .await
        })
    }

    /// Inserts batches concurrently, one per pooled connection; returns the rows the server took.
    pub fn insert_batches(
        &self,
        collection: &str,
        primary: &str,
        vector: &str,
        batches: Vec<(Vec<i64>, Vec<Vec<f32>>)>,
    ) -> Result<u64> {
        let clients = self.pool.clone();
        let (collection, primary, vector) = (
            collection.to_string(),
            primary.to_string(),
            vector.to_string(),
        );
        self.run("inserting", async move {
            let mut set = tokio::task::JoinSet::new();
            for (i, (ids, rows)) in batches.into_iter().enumerate() {
                let c = clients[i % clients.len()].clone();
                let req = InsertRequest::builder()
                    .collection_name(collection.clone())
                    .columns(vec![
                        FieldData::Int64 {
                            name: primary.clone(),
                            values: ids,
                        },
                        FieldData::FloatVector {
                            name: vector.clone(),
                            values: rows,
                        },
                    ])
                    .build()?;
                set.spawn(async move { c.insert(req).await.map(|r| r.insert_count() as u64) });
            }
            let mut total = 0;
            while let Some(r) = set.join_next().await {
                total += r.map_err(|e| {
                    milvus::v2::error::Error::MalformedResponse(format!("insert task: {e}"))
                })??;
            }
            Ok(total)
        })
    }

    /// Seals the growing segments and waits until `rows` rows sit in flushed segments (without a
    /// flush the server brute-forces growing segments and ignores ef/nprobe).
    pub fn flush(&self, collection: &str, rows: u64) -> Result<()> {
        let c = self.client();
        let name = collection.to_string();
        let limit = self.flush_timeout;
        self.run("flushing", async move {
            // The SDK's own wait polls once a second (about 1 s lost per build); let it issue the
            // Flush and time out at once, then poll the segment states every 100 ms.
            let req = FlushRequest::builder()
                .collection_names([name.clone()])
                .wait_flushed_ms(1)
                .build()?;
            match c.flush(req).await {
                Ok(_) => {}
                Err(milvus::v2::error::Error::Timeout(m)) if m.contains("flush") => {}
                Err(e) => return Err(e),
            }
            poll_until(limit, "", || {
                let (c, name) = (c.clone(), name.clone());
                async move {
                    let r = c
                        .list_persistent_segments(
                            ListPersistentSegmentsRequest::builder()
                                .collection_name(name.clone())
                                .build()?,
                        )
                        .await?;
                    let live = r
                        .segments()
                        .iter()
                        .filter(|s| s.get_state() != SegmentState::Dropped);
                    let (mut flushed, mut pending) = (0u64, false);
                    for s in live {
                        if s.get_state() == SegmentState::Flushed {
                            flushed += s.get_row_count().max(0) as u64;
                        } else {
                            pending = true;
                        }
                    }
                    Ok((pending || flushed < rows)
                        .then(|| format!("{flushed} of {rows} rows flushed")))
                }
            })
            .await
        })
    }

    /// Builds the index and waits until it is finished. (The SDK's own wait polls every 0.5 s;
    /// ours polls every 100 ms, which is most of the difference to pymilvus on small builds.)
    pub fn create_index(
        &self,
        collection: &str,
        vector: &str,
        index_type: IndexType,
        metric: MetricType,
        params: HashMap<String, String>,
    ) -> Result<()> {
        let c = self.client();
        let (name, vector) = (collection.to_string(), vector.to_string());
        let limit = self.build_timeout;
        self.run("building the index", async move {
            c.create_index(
                CreateIndexRequest::builder()
                    .collection_name(name.clone())
                    .index_params(vec![IndexParam::new()
                        .field_name(vector.clone())
                        .index_type(index_type)
                        .metric_type(metric)
                        .extra_params(params)])
                    .sync(false)
                    .build()?,
            )
            .await?;
            poll_until(limit, " (build_timeout)", || {
                let (c, name, vector) = (c.clone(), name.clone(), vector.clone());
                async move {
                    let r = c
                        .describe_index(
                            DescribeIndexRequest::builder()
                                .collection_name(name.clone())
                                .field_name(vector.clone())
                                .build()?,
                        )
                        .await?;
                    let mut done = !r.indexes().is_empty();
                    for ix in r.indexes() {
                        match ix.get_state() {
                            IndexStateCode::Finished if ix.get_pending_rows() <= 0 => {}
                            IndexStateCode::Failed => {
                                return Err(milvus::v2::error::Error::MalformedResponse(format!(
                                    "index build failed: {}",
                                    ix.get_failure_reason()
                                )))
                            }
                            _ => done = false,
                        }
                    }
                    Ok((!done).then(|| "index not finished".to_string()))
                }
            })
            .await
        })
    }

    /// Loads the collection into query nodes and waits until it is searchable.
    pub fn load(&self, collection: &str) -> Result<()> {
        let c = self.client();
        let name = collection.to_string();
        let limit = self.build_timeout;
        self.run("loading the collection", async move {
            c.load_collection(
                LoadCollectionRequest::builder()
                    .collection_name(name.clone())
                    .sync(false)
                    .build()?,
            )
            .await?;
            poll_until(limit, " (build_timeout)", || {
                let (c, name) = (c.clone(), name.clone());
                async move {
                    let r = c
                        .get_load_state(
                            GetLoadStateRequest::builder()
                                .collection_name(name.clone())
                                .build()?,
                        )
                        .await?;
                    match r.state() {
                        LoadState::Loaded => Ok(None),
                        LoadState::NotExist => Err(milvus::v2::error::Error::MalformedResponse(
                            "the collection disappeared while loading".into(),
                        )),
                        _ => Ok(Some(format!("not loaded (progress {}%)", r.progress()))),
                    }
                }
            })
            .await
        })
    }

    pub fn drop_collection(&self, collection: &str) -> Result<()> {
        let c = self.client();
        let name = collection.to_string();
        self.run("dropping the collection", async move {
            c.drop_collection(
                DropCollectionRequest::builder()
                    .collection_name(name)
                    .build()?,
            )
            .await
        })
    }

    pub fn rename_collection(&self, from: &str, to: &str) -> Result<()> {
        let c = self.client();
        let (from, to) = (from.to_string(), to.to_string());
        self.run("renaming the collection", async move {
            c.rename_collection(
                RenameCollectionRequest::builder()
                    .collection_name(from)
                    .new_collection_name(to)
                    .build()?,
            )
            .await
        })
    }

    pub fn row_count(&self, collection: &str) -> Result<u64> {
        let c = self.client();
        let name = collection.to_string();
        self.run("counting rows", async move {
            let r = c
                .get_collection_stats(
                    GetCollectionStatsRequest::builder()
                        .collection_name(name)
                        .build()?,
                )
                .await?;
            Ok(r.row_count().unwrap_or(0).max(0) as u64)
        })
    }

    /// The primary key and the single float-vector field of a collection.
    pub fn describe(&self, collection: &str) -> Result<CollectionShape> {
        let c = self.client();
        let name = collection.to_string();
        let shape = self.run("describing the collection", async move {
            let r = c
                .describe_collection(
                    DescribeCollectionRequest::builder()
                        .collection_name(name)
                        .build()?,
                )
                .await?;
            let fields = r.description().get_schema().get_fields();
            let pk = fields
                .iter()
                .find(|f| f.is_primary_key())
                .map(|f| (f.get_name().to_string(), f.get_data_type()));
            let vecs: Vec<(String, u32)> = fields
                .iter()
                .filter(|f| f.get_data_type() == DataType::FloatVector)
                .map(|f| (f.get_name().to_string(), f.get_dimension()))
                .collect();
            Ok((pk, vecs))
        })?;
        let bad = |why: String| Error::Server {
            uri: self.uri.clone(),
            action: format!("opening collection '{collection}'"),
            message: why,
        };
        let (pk, vecs) = shape;
        let (primary_field, pk_type) = pk.ok_or_else(|| bad("it has no primary key".into()))?;
        if pk_type != DataType::Int64 {
            return Err(bad(format!(
                "its primary key '{primary_field}' is {pk_type:?}; vecindex needs INT64 ids"
            )));
        }
        match vecs.as_slice() {
            [(name, dim)] => Ok(CollectionShape {
                primary_field,
                vector_field: name.clone(),
                dim: *dim as usize,
            }),
            [] => Err(bad("it has no FLOAT_VECTOR field".into())),
            _ => Err(bad(format!(
                "it has {} FLOAT_VECTOR fields; vecindex searches collections with one",
                vecs.len()
            ))),
        }
    }

    /// Searches `batches` (each a list of query rows) concurrently over the pool, at most one
    /// request in flight per connection; returns one hit list per query, in order.
    pub fn search(&self, spec: &SearchSpec, batches: Vec<Vec<Vec<f32>>>) -> Result<Vec<Hits>> {
        let clients = self.pool.clone();
        let spec = spec.clone();
        let nb = batches.len();
        let expected: Vec<usize> = batches.iter().map(Vec::len).collect();
        let results = self.run("searching", async move {
            let workers = clients.len().min(nb).max(1);
            // Batch i goes to worker i % workers; each worker runs its batches one after another.
            let mut queues: Vec<Vec<(usize, Vec<Vec<f32>>)>> = vec![Vec::new(); workers];
            for (i, b) in batches.into_iter().enumerate() {
                queues[i % workers].push((i, b));
            }
            let mut set = tokio::task::JoinSet::new();
            for (w, queue) in queues.into_iter().enumerate() {
                let c = clients[w].clone();
                let spec = spec.clone();
                set.spawn(async move {
                    let mut out = Vec::with_capacity(queue.len());
                    for (i, rows) in queue {
                        let req = SearchRequest::builder()
                            .collection_name(spec.collection.clone())
                            .vector_field(spec.vector_field.clone())
                            .vectors(SearchVectors::Float(rows))
                            .limit(spec.k as i64)
                            .metric_type(spec.metric)
                            .extra_params(spec.params.clone())
                            .consistency_level(spec.consistency)
                            .build()?;
                        let resp = c.search(req).await?;
                        let mut hits = Vec::new();
                        for r in resp.results().get_results() {
                            let ids = match r.get_ids() {
                                Ids::Int64(v) => v.clone(),
                                _ => {
                                    return Err(milvus::v2::error::Error::MalformedResponse(
                                        "string primary keys; vecindex needs INT64 ids".into(),
                                    ))
                                }
                            };
                            hits.push(Hits {
                                ids,
                                scores: r.get_scores().to_vec(),
                            });
                        }
                        out.push((i, hits));
                    }
                    Ok::<_, milvus::v2::error::Error>(out)
                });
            }
            let mut all: Vec<Option<Vec<Hits>>> = (0..nb).map(|_| None).collect();
            while let Some(r) = set.join_next().await {
                let part = r.map_err(|e| {
                    milvus::v2::error::Error::MalformedResponse(format!("search task: {e}"))
                })??;
                for (i, hits) in part {
                    all[i] = Some(hits);
                }
            }
            Ok(all)
        })?;
        let mut out = Vec::new();
        for (i, (hits, want)) in results.into_iter().zip(expected).enumerate() {
            let hits = hits.unwrap_or_default();
            if hits.len() != want {
                return Err(Error::Server {
                    uri: self.uri.clone(),
                    action: "searching".into(),
                    message: format!("batch {i}: {} result lists for {want} queries", hits.len()),
                });
            }
            out.extend(hits);
        }
        Ok(out)
    }
}

impl Drop for MilvusClient {
    fn drop(&mut self) {
        // shutdown_background never blocks and never panics inside another runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The SDK's error in one readable line: a gRPC status as its code and message (its `Display`
/// adds empty details and metadata dumps).
fn describe(e: &milvus::v2::error::Error) -> String {
    use milvus::v2::error::Error as E;
    match e {
        E::Grpc(status) => format!("{:?}: {}", status.code(), status.message()),
        E::RetryExhausted { attempts, source } => {
            format!("{} (after {attempts} attempts)", describe(source))
        }
        other => other.to_string(),
    }
}

/// How often a flush, an index build or a load is checked (the SDK's own waits poll every
/// 0.5–1 s, which costs about that much per step on small collections).
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Runs `check` every `POLL_INTERVAL` until it reports done (`None`); after `limit` the last
/// status it gave becomes a timeout error (`limit_name` says which setting bounds it).
async fn poll_until<F>(
    limit: Duration,
    limit_name: &str,
    mut check: impl FnMut() -> F,
) -> milvus::v2::error::Result<()>
where
    F: Future<Output = milvus::v2::error::Result<Option<String>>>,
{
    let start = std::time::Instant::now();
    loop {
        let Some(status) = check().await? else {
            return Ok(());
        };
        if start.elapsed() > limit {
            return Err(milvus::v2::error::Error::Timeout(format!(
                "{status} after {:.0} s{limit_name}",
                limit.as_secs_f64()
            )));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
