//! The command line's arguments: the top-level parser and each subcommand's arguments (the
//! larger subcommands keep theirs beside their code: bench, eval, demo).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "vecindex",
    version,
    about = "Build and query nearest-neighbour indexes (FAISS-compatible, Annoy, Milvus) through one interface"
)]
pub struct Cli {
    /// Threads for every parallel step (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build an index from embeddings and save it.
    Build(BuildArgs),
    /// Query a saved index; write ids and distances.
    Query(QueryArgs),
    /// Describe an index file (format, type, metric, d, n, parameters).
    Info(InfoArgs),
    /// Evaluate retrieval: top-k per user with the backend and exactly, NDCG/MRR/recall/... of both.
    Eval(crate::eval::EvalArgs),
    /// Run the main job end to end on built-in synthetic embeddings (no files, no server).
    Demo(crate::demo::DemoArgs),
    /// Benchmark a grid of backends/parameters on one dataset: recall, QPS, latency, size; JSON, CSV, charts.
    Bench(crate::bench::BenchArgs),
    /// List the collections on a Milvus server, or drop saved ones you no longer need.
    Collections(CollectionsArgs),
}

#[derive(Args)]
pub struct CollectionsArgs {
    /// Connection parameters as key=value (uri=..., token=..., db_name=...).
    pub params: Vec<String>,
    /// Drop this collection (repeatable); missing ones are not an error.
    #[arg(long)]
    pub drop: Vec<String>,
}

#[derive(Args)]
pub struct BuildArgs {
    /// Backend: faiss, annoy or milvus.
    pub backend: String,
    /// Backend parameters as key=value (e.g. index_type=Flat metric=IP).
    pub params: Vec<String>,
    /// Item embeddings (.npy, .safetensors or .fvecs).
    #[arg(long)]
    pub input: PathBuf,
    /// Where to save the index.
    #[arg(long)]
    pub output: PathBuf,
    /// Optional 64-bit ids, one per item (.npy int64).
    #[arg(long)]
    pub ids: Option<PathBuf>,
    /// Tensor name inside a .safetensors file holding several.
    #[arg(long)]
    pub tensor: Option<String>,
}

#[derive(Args)]
pub struct QueryArgs {
    /// Backend: faiss, annoy or milvus.
    pub backend: String,
    /// Backend parameters as key=value (query-time ones such as efSearch apply to the loaded index).
    pub params: Vec<String>,
    /// The saved index.
    #[arg(long)]
    pub index: PathBuf,
    /// Query embeddings (.npy, .safetensors or .fvecs).
    #[arg(long)]
    pub queries: PathBuf,
    /// Results per query (at least 1).
    #[arg(short = 'k', long = "top-k", allow_negative_numbers = true)]
    pub k: i64,
    /// Output .npz (arrays `ids` int64 and `distances` float32), or `-` for JSON lines on stdout.
    #[arg(long)]
    pub output: String,
    /// Tensor name inside a .safetensors file holding several.
    #[arg(long)]
    pub tensor: Option<String>,
}

#[derive(Args)]
pub struct InfoArgs {
    /// The index file.
    pub index: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
