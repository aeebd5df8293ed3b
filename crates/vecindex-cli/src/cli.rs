//! Argument definitions and the build / query / info subcommands.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use vecindex::io::{self, npy};
use vecindex::{builder_factory, Config, Vectors};

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

pub fn read_vectors(path: &Path, tensor: Option<&str>) -> Result<Vectors> {
    let sp = crate::progress::spinner(&format!("reading {}", path.display()));
    let v = io::read_vectors(path, tensor)?;
    sp.finish_and_clear();
    Ok(v)
}

/// Refuses an output path that is one of the inputs (also through a symlink or a hard link):
/// saving would replace the user's file with something else.
fn ensure_not_an_input(output: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    #[cfg(unix)]
    fn same(a: &Path, b: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    fn same(a: &Path, b: &Path) -> bool {
        match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
    }
    for (flag, input) in inputs {
        if same(output, input) {
            anyhow::bail!(
                "--output {} is the same file as {flag} {}; choose another output path (nothing \
                 was written)",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

pub fn build(a: BuildArgs) -> Result<()> {
    let mut inputs: Vec<(&str, &Path)> = vec![("--input", a.input.as_path())];
    if let Some(ids) = &a.ids {
        inputs.push(("--ids", ids.as_path()));
    }
    ensure_not_an_input(&a.output, &inputs)?;
    let config = Config::parse(&a.params)?;
    let mut builder = builder_factory(&a.backend, &config)?;
    let items = read_vectors(&a.input, a.tensor.as_deref())?;
    let ids = a.ids.as_deref().map(io::read_ids).transpose()?;
    let (n, d) = (items.rows(), items.dim());
    let t = Instant::now();
    let sp = crate::progress::spinner(&format!("building {} index over {n} × {d}", a.backend));
    builder.set_progress(crate::progress::callback_replacing(Some(sp.clone())));
    let indexer = match &ids {
        Some(ids) => builder.from_embeddings_with_ids(items.view(), ids)?,
        None => builder.from_vectors(items)?,
    };
    sp.finish_and_clear();
    let built = t.elapsed();
    indexer
        .save(&a.output)
        .with_context(|| format!("saving {}", a.output.display()))?;
    let info = indexer.info();
    for w in &info.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "built {} {} index ({}, d={}, n={}) in {:.2}s; saved {}",
        info.backend,
        info.index_type,
        info.metric,
        info.dim,
        info.n,
        built.as_secs_f64(),
        a.output.display()
    );
    Ok(())
}

pub fn query(a: QueryArgs) -> Result<()> {
    if a.output != "-" {
        let sidecar = vecindex::annoy::backend::sidecar_path(&a.index);
        ensure_not_an_input(
            Path::new(&a.output),
            &[
                ("--index", &a.index),
                ("--index's sidecar", &sidecar),
                ("--queries", &a.queries),
            ],
        )?;
    }
    let config = Config::parse(&a.params)?;
    let builder = builder_factory(&a.backend, &config)?;
    let build_only = vecindex::build_only_params(&a.backend, &config)?;
    anyhow::ensure!(
        build_only.is_empty(),
        "{} only shape{} a build and cannot change an existing index; drop {} (query-time \
         parameters: efSearch, nprobe for faiss; searchk for annoy; ef, nprobe for milvus)",
        build_only.join(", "),
        if build_only.len() == 1 { "s" } else { "" },
        if build_only.len() == 1 { "it" } else { "them" }
    );
    let indexer = builder.from_index_file(&a.index)?;
    let warned = indexer.info().warnings;
    for w in &warned {
        eprintln!("warning: {w}");
    }
    let queries = read_vectors(&a.queries, a.tensor.as_deref())?;
    // Checked here rather than by clap, so a bad k is one line and exit 1 like every other error.
    anyhow::ensure!(a.k >= 1, "top_k must be at least 1 (got -k {})", a.k);
    let (nq, k) = (queries.rows(), usize::try_from(a.k)?);
    let t = Instant::now();
    // Query in chunks so a long batch shows progress; results are identical to one call.
    let chunk = 4096.max(nq.div_ceil(100));
    let pb = crate::progress::bar(nq as u64, "querying");
    // Held here: the engine's chunk results, their concatenation, its npy encoding and the npz.
    vecindex::api::check_result_size(nq, k, 4)?;
    let mut ids = Vec::with_capacity(nq * k);
    let mut dist = Vec::with_capacity(nq * k);
    let view = queries.view();
    for s in (0..nq).step_by(chunk) {
        let e = (s + chunk).min(nq);
        let r = indexer.query(view.slice_rows(s, e), k)?;
        ids.extend_from_slice(&r.ids);
        dist.extend_from_slice(&r.distances);
        pb.set_position(e as u64);
    }
    if nq == 0 {
        // Still validates k.
        indexer.query(view, k)?;
    }
    pb.finish_and_clear();
    let elapsed = t.elapsed().as_secs_f64();
    // What the search itself had to adjust (e.g. Milvus raising ef to k), said once.
    for w in indexer.info().warnings {
        if !warned.contains(&w) {
            eprintln!("warning: {w}");
        }
    }
    if a.output == "-" {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for q in 0..nq {
            // JSON has no infinity: padded slots print as null distance with id -1.
            let d: Vec<Option<f32>> = dist[q * k..(q + 1) * k]
                .iter()
                .map(|v| v.is_finite().then_some(*v))
                .collect();
            let line =
                serde_json::json!({"query": q, "ids": &ids[q * k..(q + 1) * k], "distances": d});
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    } else {
        let bytes = npy::npz_bytes(&[
            ("ids", npy::npy_i64(&[nq, k], &ids)),
            ("distances", npy::npy_f32(&[nq, k], &dist)),
        ])?;
        io::atomic_write(Path::new(&a.output), &bytes)?;
    }
    eprintln!(
        "{nq} queries, top {k}, {} ({}) in {:.3}s ({:.0} queries/s)",
        indexer.metric(),
        if indexer.higher_is_better() {
            "larger is better"
        } else {
            "smaller is better"
        },
        elapsed,
        nq as f64 / elapsed.max(1e-9)
    );
    Ok(())
}

#[cfg(not(feature = "milvus"))]
pub fn collections(_: CollectionsArgs) -> Result<()> {
    anyhow::bail!("this vecindex was built without the milvus feature")
}

#[cfg(feature = "milvus")]
pub fn collections(a: CollectionsArgs) -> Result<()> {
    let b = vecindex::milvus::MilvusBuilder::from_config(&Config::parse(&a.params)?)?;
    for name in &a.drop {
        b.drop_collection(name)?;
        eprintln!("dropped {name}");
    }
    if a.drop.is_empty() {
        for name in b.list_collections()? {
            println!("{name}");
        }
    }
    Ok(())
}

pub fn info(a: InfoArgs) -> Result<()> {
    let info = vecindex::inspect(&a.index)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("file:      {}", a.index.display());
        println!("backend:   {}", info.backend);
        println!("format:    {}", info.format);
        println!("type:      {}", info.index_type);
        println!(
            "metric:    {} ({})",
            info.metric,
            if info.higher_is_better {
                "larger is better"
            } else {
                "smaller is better"
            }
        );
        println!("d:         {}", info.dim);
        println!("n:         {}", info.n);
        println!(
            "ids:       {}",
            if info.custom_ids {
                "custom (id map)"
            } else {
                "row numbers"
            }
        );
        for (k, v) in &info.params {
            println!("{k:<10} {v}");
        }
    }
    Ok(())
}
