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

mod builder;
mod client;
mod handle;
mod indexer;
mod params;
mod staging;

pub use builder::MilvusBuilder;
pub(crate) use handle::{inspect_handle, is_handle};
pub use indexer::MilvusIndexer;
pub(crate) use params::PARAMS;
pub use params::{default_nprobe, DEFAULT_EF, DEFAULT_EF_CONSTRUCTION, MAX_TOP_K};
