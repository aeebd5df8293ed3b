//! The suites of `peer-bench`: vecindex and its peer library side by side, in one run, on the
//! same data at the same thread count, printing the ratios.
//!
//! One file per suite, each the mirror of its Python peer script in `peers/`; this one holds the
//! arguments, the dispatcher and the helpers the suites share.

mod annoy;
mod flat;
mod hnsw;
mod ivf;
mod milvus;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use vecindex::io::npy;
use vecindex::Vectors;

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Suite {
    /// Exact search: vecindex faiss Flat vs faiss-cpu IndexFlat (L2 and IP).
    Flat,
    /// IVF-Flat: train, add, recall@k and QPS vs faiss-cpu IndexIVFFlat over nlists and nprobes.
    Ivf,
    /// HNSW: build time, recall@k, batch and single-query QPS vs faiss IndexHNSWFlat and hnswlib.
    Hnsw,
    /// Annoy: build time, file size, recall@k and query throughput vs PyPI annoy.
    Annoy,
    /// Milvus: insert+flush+index+load time and batch-search QPS vs pymilvus on the same server.
    Milvus,
}

#[derive(Args)]
pub struct PeerBenchArgs {
    /// What to compare.
    #[arg(value_enum)]
    pub suite: Suite,
    /// Items in the synthetic Gaussian data set.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Dimension of the synthetic data set.
    #[arg(long, default_value_t = 128)]
    pub d: usize,
    /// Queries per batch.
    #[arg(long, default_value_t = 1_000)]
    pub nq: usize,
    /// Results per query.
    #[arg(short = 'k', default_value_t = 10)]
    pub k: usize,
    /// Thread counts to compare at (each run uses the same count on both sides).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads_list: Vec<usize>,
    /// Timed repetitions (best is reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Annoy: builds timed per configuration on each side (best is reported; builds are the
    /// noisiest figure on shared machines).
    #[arg(long, default_value_t = 1)]
    pub build_repeat: usize,
    /// Single-query calls timed per repetition.
    #[arg(long, default_value_t = 200)]
    pub single: usize,
    /// Real-embedding data set directory (base.npy, queries.npy, gt_*.npy; default:
    /// $VECINDEX_SHARED_DATA); skipped if absent.
    #[arg(long)]
    pub real: Option<PathBuf>,
    /// Python with faiss-cpu (default: $VECINDEX_PYTHON, then ./.venv/bin/python).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// IVF: probes to compare at.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    pub nprobes: Vec<usize>,
    /// IVF: list counts (default: 100 and 4·√n).
    #[arg(long, value_delimiter = ',')]
    pub nlists: Vec<usize>,
    /// HNSW: neighbours per node.
    #[arg(long, default_value_t = 32)]
    pub m: usize,
    /// HNSW: efConstruction values to build with.
    #[arg(long, value_delimiter = ',', default_value = "40,200")]
    pub ef_construction: Vec<usize>,
    /// HNSW: efSearch values to compare at.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    pub ef_search: Vec<usize>,
    /// HNSW: vector storages, each run beside faiss with the same one (`Flat`, `SQ8`,
    /// `SQfp16`; `+RFlat` re-ranks with the exact vectors, e.g. `SQ8+RFlat`). hnswlib, which
    /// has only flat storage, runs once beside them.
    #[arg(long, value_delimiter = ',', default_value = "Flat")]
    pub storages: Vec<String>,
    /// HNSW: candidates re-ranked per result by `+RFlat` storages (faiss's `k_factor`), on
    /// both sides.
    #[arg(long, default_value_t = 1.0)]
    pub k_factor: f32,
    /// HNSW: the recall the closing summary compares each side's fastest configuration at.
    #[arg(long, default_value_t = 0.95)]
    pub target_recall: f64,
    /// IVF: list storages, each run beside faiss with the same one (`Flat`, `SQ8`, `SQfp16`,
    /// `PQ<m>[x<nbits>]np`; without `np` faiss adds its polysemous training, vecindex does not).
    #[arg(long, value_delimiter = ',', default_value = "Flat")]
    pub ivf_storages: Vec<String>,
    /// Annoy: tree counts.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
    pub n_trees: Vec<usize>,
    /// Annoy: search_k values (-1 = n_trees × k).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "-1,1000,10000,100000",
        allow_hyphen_values = true
    )]
    pub searchk: Vec<i64>,
    /// Annoy: metrics on the Gaussian and real data (angular, euclidean, manhattan, dot, hamming).
    #[arg(long, value_delimiter = ',', default_value = "angular,euclidean")]
    pub annoy_metrics: Vec<String>,
    /// Annoy: metrics on the clustered data (the recommender case: angular and dot).
    #[arg(long, value_delimiter = ',', default_value = "angular,dot")]
    pub clustered_annoy_metrics: Vec<String>,
    /// IVF, annoy and HNSW: size of the clustered synthetic data set; 0 skips it.
    #[arg(long, default_value_t = 200_000)]
    pub clustered_n: usize,
    /// Dimension of the clustered synthetic data set (384 is a sentence encoder's).
    #[arg(long, default_value_t = 64)]
    pub clustered_d: usize,
    /// Skip the Gaussian data set.
    #[arg(long)]
    pub no_gaussian: bool,
    /// Metrics to run (L2, IP; milvus also COSINE).
    #[arg(long, value_delimiter = ',', default_value = "L2,IP")]
    pub metrics: Vec<String>,
    /// Milvus: server (default: $VECINDEX_MILVUS_URI, then http://127.0.0.1:19530).
    #[arg(long)]
    pub milvus_uri: Option<String>,
    /// Milvus: index types to compare (FLAT, HNSW, IVF_FLAT).
    #[arg(long, value_delimiter = ',', default_value = "FLAT,HNSW,IVF_FLAT")]
    pub milvus_index_types: Vec<String>,
}

fn find_python(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let cands: Vec<PathBuf> = explicit
        .into_iter()
        .chain(std::env::var_os("VECINDEX_PYTHON").map(PathBuf::from))
        .chain(std::iter::once(PathBuf::from(".venv/bin/python")))
        .collect();
    for p in cands {
        let ok = Command::new(&p)
            .args(["-c", "import faiss, numpy"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Ok(p);
        }
    }
    bail!("no Python with faiss-cpu found; run ./scripts/bench.sh (it creates .venv) or pass --python")
}

struct Dataset {
    name: String,
    base: Vectors,
    queries: Vectors,
    /// Ground truth per metric name, (nq × 100) ids.
    gt: Vec<(String, Vec<i64>, usize)>,
}

fn datasets(a: &PeerBenchArgs) -> Result<Vec<Dataset>> {
    let mut v = Vec::new();
    if !a.no_gaussian {
        v.push(Dataset {
            name: format!("gaussian {}x{}", a.n, a.d),
            base: vecindex::synth::gaussian(a.n, a.d, 1),
            queries: vecindex::synth::gaussian(a.nq, a.d, 2),
            gt: vec![],
        });
    }
    if matches!(a.suite, Suite::Ivf | Suite::Annoy | Suite::Hnsw) && a.clustered_n > 0 {
        // Queries come from the same mixture (users near the items they like).
        let cd = a.clustered_d;
        let (all, _) = vecindex::synth::clustered(a.clustered_n + a.nq, cd, 200, 5);
        let s = all.as_slice();
        let split = a.clustered_n * cd;
        v.push(Dataset {
            name: format!("clustered {}x{cd}", a.clustered_n),
            base: Vectors::new(s[..split].to_vec(), cd)?,
            queries: Vectors::new(s[split..].to_vec(), cd)?,
            gt: vec![],
        });
    }
    let real = a
        .real
        .clone()
        .or_else(|| std::env::var_os("VECINDEX_SHARED_DATA").map(PathBuf::from))
        .unwrap_or_default();
    if real.join("base.npy").exists() {
        let base = vecindex::io::read_vectors(&real.join("base.npy"), None)?;
        let queries = vecindex::io::read_vectors(&real.join("queries.npy"), None)?;
        let mut gt = vec![];
        for (m, f) in [("L2", "gt_l2.npy"), ("IP", "gt_ip.npy")] {
            let arr = npy::parse_npy(&std::fs::read(real.join(f))?, f)?;
            let cols = arr.shape.get(1).copied().unwrap_or(1);
            if let npy::NpyData::Int(ids) = arr.data {
                gt.push((m.to_string(), ids, cols));
            }
        }
        v.push(Dataset {
            name: format!("debian-minilm {}x{}", base.rows(), base.dim()),
            base,
            queries,
            gt,
        });
    } else {
        eprintln!(
            "note: no real-embedding set at '{}' (--real or VECINDEX_SHARED_DATA); its rows skipped",
            real.display()
        );
    }
    Ok(v)
}

/// One measured configuration, the same for both sides.
struct RunSpec<'a> {
    metric: &'a str,
    k: usize,
    threads: usize,
    repeat: usize,
    single: usize,
}

/// Runs `f` `repeat` times (at least once) and returns the best wall time with the last result.
fn best_of<T>(repeat: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let r = f()?;
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(r);
    }
    Ok((best, last.expect("at least one run")))
}

/// Runs `peers/<script>` (beside this crate) on dataset `ds_i` (its .npy files in `dir`) with `args`, the thread
/// count pinned for OpenMP/BLAS, and returns the JSON it prints.
fn run_peer(
    py: &Path,
    script: &str,
    dir: &Path,
    ds_i: usize,
    threads: usize,
    args: &[String],
) -> Result<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peers")
        .join(script);
    let file = |name: String| dir.join(name).to_string_lossy().to_string();
    let o = Command::new(py)
        .arg(&path)
        .args(["--base".to_string(), file(format!("base{ds_i}.npy"))])
        .args(["--queries".to_string(), file(format!("queries{ds_i}.npy"))])
        .args(["--threads".to_string(), threads.to_string()])
        .args(args)
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("OPENBLAS_NUM_THREADS", threads.to_string())
        .env("MKL_NUM_THREADS", threads.to_string())
        .output()
        .with_context(|| format!("running the peer {script}"))?;
    if !o.status.success() {
        bail!(
            "peer {script} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    serde_json::from_slice(&o.stdout).with_context(|| format!("output of the peer {script}"))
}

/// Ids a peer saved as .npy.
fn read_peer_ids(path: &Path) -> Result<Vec<i64>> {
    match npy::parse_npy(&std::fs::read(path)?, "peer ids")?.data {
        npy::NpyData::Int(v) => Ok(v),
        npy::NpyData::Float(_) => bail!("{}: peer wrote float ids", path.display()),
    }
}

/// Share of `a`'s ids (row by row) that also appear in `b`'s row.
fn overlap(a: &[i64], b: &[i64], k: usize, bk: usize) -> f64 {
    let rows = a.len() / k;
    let mut hit = 0usize;
    for r in 0..rows {
        let br = &b[r * bk..r * bk + k.min(bk)];
        hit += a[r * k..(r + 1) * k]
            .iter()
            .filter(|x| br.contains(x))
            .count();
    }
    hit as f64 / (rows * k).max(1) as f64
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

pub fn run(a: PeerBenchArgs) -> Result<()> {
    let py = find_python(a.python.clone())?;
    let dir = tempfile_dir()?;
    let sets = datasets(&a)?;
    for (i, ds) in sets.iter().enumerate() {
        std::fs::write(
            dir.join(format!("base{i}.npy")),
            npy::npy_f32(&[ds.base.rows(), ds.base.dim()], ds.base.as_slice()),
        )?;
        std::fs::write(
            dir.join(format!("queries{i}.npy")),
            npy::npy_f32(
                &[ds.queries.rows(), ds.queries.dim()],
                ds.queries.as_slice(),
            ),
        )?;
    }
    let r = match a.suite {
        Suite::Flat => flat::run_flat(&a, &py, &dir, &sets),
        Suite::Ivf => ivf::run_ivf(&a, &py, &dir, &sets),
        Suite::Hnsw => hnsw::run_hnsw(&a, &py, &dir, &sets),
        Suite::Annoy => annoy::run_annoy(&a, &py, &dir, &sets),
        Suite::Milvus => milvus::run_milvus(&a, &py, &dir, &sets),
    };
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("vecindex-peer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
