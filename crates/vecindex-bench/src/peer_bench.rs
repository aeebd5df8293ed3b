//! The suites of `peer-bench`: vecindex and its peer library side by side, in one run, on the
//! same data at the same thread count, printing the ratios.
//!
//! Over 500 lines: one function per suite, each the mirror of its Python peer script in
//! `peers/`; a developer tool outside the product.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use vecindex::io::npy;
use vecindex::{Builder, Vectors};

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
    /// HNSW: neighbours per node.
    #[arg(long, default_value_t = 32)]
    pub m: usize,
    /// HNSW: efConstruction values to build with.
    #[arg(long, value_delimiter = ',', default_value = "40,200")]
    pub ef_construction: Vec<usize>,
    /// HNSW: efSearch values to compare at.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    pub ef_search: Vec<usize>,
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
    /// IVF and annoy: size of the clustered synthetic data set (d = 64); 0 skips it.
    #[arg(long, default_value_t = 200_000)]
    pub clustered_n: usize,
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

struct Side {
    build_s: f64,
    batch_s: f64,
    single_qps: f64,
    peak_delta: u64,
    ids: Vec<i64>,
}

struct Dataset {
    name: String,
    base: Vectors,
    queries: Vectors,
    /// Ground truth per metric name, (nq × 100) ids.
    gt: Vec<(String, Vec<i64>, usize)>,
}

fn datasets(a: &PeerBenchArgs) -> Result<Vec<Dataset>> {
    let mut v = vec![Dataset {
        name: format!("gaussian {}x{}", a.n, a.d),
        base: vecindex::synth::gaussian(a.n, a.d, 1),
        queries: vecindex::synth::gaussian(a.nq, a.d, 2),
        gt: vec![],
    }];
    if matches!(a.suite, Suite::Ivf | Suite::Annoy) && a.clustered_n > 0 {
        // Queries come from the same mixture (users near the items they like).
        let (all, _) = vecindex::synth::clustered(a.clustered_n + a.nq, 64, 200, 5);
        let s = all.as_slice();
        let split = a.clustered_n * 64;
        v.push(Dataset {
            name: format!("clustered {}x64", a.clustered_n),
            base: Vectors::new(s[..split].to_vec(), 64)?,
            queries: Vectors::new(s[split..].to_vec(), 64)?,
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

fn ours(ds: &Dataset, spec: &RunSpec) -> Result<Side> {
    let RunSpec {
        metric,
        k,
        threads,
        repeat,
        single,
    } = *spec;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    pool.install(|| -> Result<Side> {
        let builder = vecindex::faiss::FaissBuilder::new().metric(if metric == "L2" {
            vecindex::Metric::L2
        } else {
            vecindex::Metric::InnerProduct
        })?;
        crate::rss::reset_peak();
        let before = crate::rss::proc_status("VmRSS:");
        let t = Instant::now();
        // The index's own copy of the items counts, as faiss's add() copy does on its side.
        let idx = builder.from_embeddings(ds.base.view())?;
        let build_s = t.elapsed().as_secs_f64();
        let q = ds.queries.view();
        idx.query(q.slice_rows(0, q.rows().min(64)), k)?; // warm-up
        let (batch_s, r) = best_of(repeat, || Ok(idx.query(q, k)?))?;
        let ids = r.ids;
        let ns = single.min(q.rows()).max(1);
        let (single_s, _) = best_of(repeat, || {
            for i in 0..ns {
                std::hint::black_box(idx.query(q.slice_rows(i, i + 1), k)?);
            }
            Ok(())
        })?;
        let single_qps = ns as f64 / single_s;
        let peak_delta = crate::rss::proc_status("VmHWM:").saturating_sub(before);
        Ok(Side {
            build_s,
            batch_s,
            single_qps,
            peak_delta,
            ids,
        })
    })
}

fn faiss_side(py: &Path, dir: &Path, ds_i: usize, spec: &RunSpec) -> Result<Side> {
    let RunSpec {
        metric,
        k,
        threads,
        repeat,
        single,
    } = *spec;
    let out_ids = dir.join("faiss_ids.npy");
    let args: Vec<String> = vec![
        "--metric".into(),
        metric.into(),
        "-k".into(),
        k.to_string(),
        "--repeat".into(),
        repeat.to_string(),
        "--single".into(),
        single.to_string(),
        "--out-ids".into(),
        out_ids.to_string_lossy().to_string(),
    ];
    let v = run_peer(py, "faiss_flat.py", dir, ds_i, threads, &args)?;
    let ids = read_peer_ids(&out_ids)?;
    Ok(Side {
        build_s: v["build_s"].as_f64().unwrap_or(0.0),
        batch_s: v["batch_s"].as_f64().unwrap_or(f64::NAN),
        single_qps: v["single_qps"].as_f64().unwrap_or(f64::NAN),
        peak_delta: v["peak_delta_bytes"].as_u64().unwrap_or(0),
        ids,
    })
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
        Suite::Flat => run_flat(&a, &py, &dir, &sets),
        Suite::Ivf => run_ivf(&a, &py, &dir, &sets),
        Suite::Hnsw => run_hnsw(&a, &py, &dir, &sets),
        Suite::Annoy => run_annoy(&a, &py, &dir, &sets),
        Suite::Milvus => run_milvus(&a, &py, &dir, &sets),
    };
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn run_flat(a: &PeerBenchArgs, py: &Path, dir: &Path, sets: &[Dataset]) -> Result<()> {
    println!(
        "peer-bench flat: exact top-{} ({} queries per batch, best of {}; single = {} one-query calls); kernels: {}; load average {}",
        a.k,
        a.nq,
        a.repeat,
        a.single,
        vecindex::kernels::kernels().name,
        load_avg()
    );
    println!(
        "{:<24} {:<3} {:>2} | {:>9} {:>9} {:>6} {:>7} | {:>8} {:>8} {:>6} | {:>8} {:>8} | {:>7} {:>7}",
        "data", "met", "t", "batch q/s", "faiss q/s", "ratio", "GFLOP/s", "single/s", "faiss/s", "ratio", "mem MB", "faiss MB", "agree", "gt@k"
    );
    for (i, ds) in sets.iter().enumerate() {
        for metric in a.metrics.iter().map(String::as_str) {
            for &t in &a.threads_list {
                let spec = RunSpec {
                    metric,
                    k: a.k,
                    threads: t,
                    repeat: a.repeat,
                    single: a.single,
                };
                let o = ours(ds, &spec)?;
                let f = faiss_side(py, dir, i, &spec)?;
                let nq = ds.queries.rows() as f64;
                let flops = 2.0 * nq * ds.base.rows() as f64 * ds.base.dim() as f64;
                let agree = overlap(&o.ids, &f.ids, a.k, a.k);
                let gt = ds
                    .gt
                    .iter()
                    .find(|g| g.0 == metric)
                    .map(|g| format!("{:.4}", overlap(&o.ids, &g.1, a.k, g.2)))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<24} {:<3} {:>2} | {:>9.0} {:>9.0} {:>6.2} {:>7.1} | {:>8.0} {:>8.0} {:>6.2} | {:>8.1} {:>8.1} | {:>7.4} {:>7}",
                    ds.name,
                    metric,
                    t,
                    nq / o.batch_s,
                    nq / f.batch_s,
                    f.batch_s / o.batch_s,
                    flops / o.batch_s / 1e9,
                    o.single_qps,
                    f.single_qps,
                    o.single_qps / f.single_qps,
                    o.peak_delta as f64 / 1e6,
                    f.peak_delta as f64 / 1e6,
                    agree,
                    gt
                );
                let _ = (o.build_s, f.build_s);
            }
        }
    }
    println!("ratio = vecindex / faiss throughput (> 1: vecindex faster). mem = peak RSS growth from build to end of queries. agree = share of top-k ids equal to faiss's; gt@k = share equal to the exact f64 ground truth.");
    Ok(())
}

struct IvfSide {
    train_s: f64,
    add_s: f64,
    /// (nprobe, best batch seconds, ids)
    search: Vec<(usize, f64, Vec<i64>)>,
}

fn ours_ivf(ds: &Dataset, spec: &RunSpec, nlist: usize, nprobes: &[usize]) -> Result<IvfSide> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(spec.threads)
        .build()?;
    pool.install(|| -> Result<IvfSide> {
        let metric = if spec.metric == "L2" {
            vecindex::Metric::L2
        } else {
            vecindex::Metric::InnerProduct
        };
        let t = Instant::now();
        let mut ivf =
            vecindex::faiss::ivf::IvfIndex::train(ds.base.view(), nlist, metric, 1, &|_, _| {})?;
        let train_s = t.elapsed().as_secs_f64();
        let ids: Vec<i64> = (0..ds.base.rows() as i64).collect();
        let t = Instant::now();
        ivf.add(ds.base.view(), &ids)?;
        let add_s = t.elapsed().as_secs_f64();
        let q = ds.queries.view();
        let mut search = Vec::new();
        for &np in nprobes {
            ivf.set_nprobe(np);
            ivf.search(q.slice_rows(0, q.rows().min(32)), spec.k)?;
            let (best, r) = best_of(spec.repeat, || Ok(ivf.search(q, spec.k)?))?;
            search.push((np, best, r.ids));
        }
        Ok(IvfSide {
            train_s,
            add_s,
            search,
        })
    })
}

fn faiss_ivf(
    py: &Path,
    dir: &Path,
    ds_i: usize,
    spec: &RunSpec,
    nlist: usize,
    nprobes: &[usize],
) -> Result<IvfSide> {
    let prefix = dir.join("faiss_ivf_ids_");
    let list = nprobes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let args: Vec<String> = vec![
        "--metric".into(),
        spec.metric.into(),
        "-k".into(),
        spec.k.to_string(),
        "--nlist".into(),
        nlist.to_string(),
        "--nprobes".into(),
        list,
        "--repeat".into(),
        spec.repeat.to_string(),
        "--out-prefix".into(),
        prefix.to_string_lossy().to_string(),
    ];
    let v = run_peer(py, "faiss_ivf.py", dir, ds_i, spec.threads, &args)?;
    let mut search = Vec::new();
    for &np in nprobes {
        let ids = read_peer_ids(&dir.join(format!("faiss_ivf_ids_{np}.npy")))?;
        search.push((
            np,
            v["search"][np.to_string()].as_f64().unwrap_or(f64::NAN),
            ids,
        ));
    }
    Ok(IvfSide {
        train_s: v["train_s"].as_f64().unwrap_or(f64::NAN),
        add_s: v["add_s"].as_f64().unwrap_or(f64::NAN),
        search,
    })
}

fn run_ivf(a: &PeerBenchArgs, py: &Path, dir: &Path, sets: &[Dataset]) -> Result<()> {
    println!(
        "peer-bench ivf: IVF-Flat top-{} ({} queries per batch, best of {}); recall@{} against exact search; load average {}",
        a.k, a.nq, a.repeat, a.k, load_avg()
    );
    println!(
        "{:<24} {:<3} {:>5} {:>2} {:>6} | {:>8} {:>8} {:>5} | {:>7} {:>7} {:>5} | {:>6} {:>6} | {:>8} {:>8} {:>5}",
        "data", "met", "nlist", "t", "nprobe", "train s", "faiss s", "ratio", "add s", "faiss s", "ratio", "recall", "faiss", "q/s", "faiss", "ratio"
    );
    for (i, ds) in sets.iter().enumerate() {
        let n = ds.base.rows();
        let nlists = [100usize, ((4.0 * (n as f64).sqrt()) as usize).max(1)];
        for metric in a.metrics.iter().map(String::as_str) {
            let m = if metric == "L2" {
                vecindex::Metric::L2
            } else {
                vecindex::Metric::InnerProduct
            };
            let exact = vecindex::exact_knn(ds.base.view(), ds.queries.view(), m, a.k)?;
            for &nlist in &nlists {
                let nprobes: Vec<usize> =
                    a.nprobes.iter().copied().filter(|&p| p <= nlist).collect();
                for &t in &a.threads_list {
                    let spec = RunSpec {
                        metric,
                        k: a.k,
                        threads: t,
                        repeat: a.repeat,
                        single: 0,
                    };
                    let o = ours_ivf(ds, &spec, nlist, &nprobes)?;
                    let f = faiss_ivf(py, dir, i, &spec, nlist, &nprobes)?;
                    for ((np, os, oi), (_, fs, fi)) in o.search.iter().zip(&f.search) {
                        let nq = ds.queries.rows() as f64;
                        println!(
                            "{:<24} {:<3} {:>5} {:>2} {:>6} | {:>8.2} {:>8.2} {:>5.2} | {:>7.2} {:>7.2} {:>5.2} | {:>6.3} {:>6.3} | {:>8.0} {:>8.0} {:>5.2}",
                            ds.name, metric, nlist, t, np,
                            o.train_s, f.train_s, f.train_s / o.train_s,
                            o.add_s, f.add_s, f.add_s / o.add_s,
                            overlap(oi, &exact.ids, a.k, a.k), overlap(fi, &exact.ids, a.k, a.k),
                            nq / os, nq / fs, fs / os
                        );
                    }
                }
            }
        }
    }
    println!("ratio = faiss time / vecindex time (> 1: vecindex faster). recall = share of the exact top-k found.");
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("vecindex-peer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// One library's HNSW figures: build seconds and per efSearch (batch seconds, single q/s, ids).
struct HnswSide {
    build_s: f64,
    search: Vec<(usize, f64, f64, Vec<i64>)>,
}

fn ours_hnsw(
    ds: &Dataset,
    spec: &RunSpec,
    m: usize,
    efc: usize,
    efs: &[usize],
) -> Result<HnswSide> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(spec.threads)
        .build()?;
    pool.install(|| -> Result<HnswSide> {
        let metric = if spec.metric == "L2" {
            vecindex::Metric::L2
        } else {
            vecindex::Metric::InnerProduct
        };
        let t = Instant::now();
        let mut h = vecindex::faiss::hnsw::HnswIndex::new(ds.base.dim(), metric, m, efc, 16);
        h.add(ds.base.view(), &|_, _| {});
        let build_s = t.elapsed().as_secs_f64();
        let q = ds.queries.view();
        let mut search = Vec::new();
        for &ef in efs {
            h.set_ef_search(ef);
            h.search(q.slice_rows(0, q.rows().min(32)), spec.k)?;
            let (best, r) = best_of(spec.repeat, || Ok(h.search(q, spec.k)?))?;
            let ids = r.ids;
            let ns = spec.single.min(q.rows());
            let mut single: f64 = 0.0;
            for _ in 0..spec.repeat {
                let t = Instant::now();
                for i in 0..ns {
                    std::hint::black_box(h.search(q.slice_rows(i, i + 1), spec.k)?);
                }
                single = single.max(ns as f64 / t.elapsed().as_secs_f64());
            }
            search.push((ef, best, single, ids));
        }
        Ok(HnswSide { build_s, search })
    })
}

#[allow(clippy::too_many_arguments)]
fn peer_hnsw(
    py: &Path,
    dir: &Path,
    lib: &str,
    ds_i: usize,
    spec: &RunSpec,
    m: usize,
    efc: usize,
    efs: &[usize],
) -> Result<HnswSide> {
    let prefix = dir.join(format!("{lib}_hnsw_ids_"));
    let list = efs
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let args: Vec<String> = vec![
        "--lib".into(),
        lib.into(),
        "--metric".into(),
        spec.metric.into(),
        "-k".into(),
        spec.k.to_string(),
        "--m".into(),
        m.to_string(),
        "--efc".into(),
        efc.to_string(),
        "--efs".into(),
        list,
        "--repeat".into(),
        spec.repeat.to_string(),
        "--single".into(),
        spec.single.to_string(),
        "--out-prefix".into(),
        prefix.to_string_lossy().to_string(),
    ];
    let v = run_peer(py, "hnsw_peer.py", dir, ds_i, spec.threads, &args)?;
    let mut search = Vec::new();
    for &ef in efs {
        let ids = read_peer_ids(&dir.join(format!("{lib}_hnsw_ids_{ef}.npy")))?;
        let e = &v["search"][ef.to_string()];
        search.push((
            ef,
            e["batch_s"].as_f64().unwrap_or(f64::NAN),
            e["single_qps"].as_f64().unwrap_or(f64::NAN),
            ids,
        ));
    }
    Ok(HnswSide {
        build_s: v["build_s"].as_f64().unwrap_or(f64::NAN),
        search,
    })
}

fn run_hnsw(a: &PeerBenchArgs, py: &Path, dir: &Path, sets: &[Dataset]) -> Result<()> {
    println!(
        "peer-bench hnsw: HNSW M={} top-{} ({} queries per batch, best of {}; single = {} one-query calls); recall@{} vs exact; load average {}",
        a.m, a.k, a.nq, a.repeat, a.single, a.k, load_avg()
    );
    println!(
        "{:<24} {:<3} {:>4} {:>2} {:>4} | {:>7} {:>7} {:>7} | {:>6} {:>6} {:>6} | {:>7} {:>7} {:>7} {:>5} {:>5} | {:>7} {:>7} {:>5}",
        "data", "met", "efC", "t", "ef", "build s", "faiss", "hnswlib", "recall", "faiss", "hnswl", "q/s", "faiss", "hnswlib", "xF", "xH", "1q/s", "faiss", "xF"
    );
    for (i, ds) in sets.iter().enumerate() {
        for metric in a.metrics.iter().map(String::as_str) {
            let m = if metric == "L2" {
                vecindex::Metric::L2
            } else {
                vecindex::Metric::InnerProduct
            };
            let exact = vecindex::exact_knn(ds.base.view(), ds.queries.view(), m, a.k)?;
            for &efc in &a.ef_construction {
                for &t in &a.threads_list {
                    let spec = RunSpec {
                        metric,
                        k: a.k,
                        threads: t,
                        repeat: a.repeat,
                        single: a.single,
                    };
                    let o = ours_hnsw(ds, &spec, a.m, efc, &a.ef_search)?;
                    let f = peer_hnsw(py, dir, "faiss", i, &spec, a.m, efc, &a.ef_search)?;
                    let h = peer_hnsw(py, dir, "hnswlib", i, &spec, a.m, efc, &a.ef_search)?;
                    let nq = ds.queries.rows() as f64;
                    for ((os, fs), hs) in o.search.iter().zip(&f.search).zip(&h.search) {
                        println!(
                            "{:<24} {:<3} {:>4} {:>2} {:>4} | {:>7.2} {:>7.2} {:>7.2} | {:>6.3} {:>6.3} {:>6.3} | {:>7.0} {:>7.0} {:>7.0} {:>5.2} {:>5.2} | {:>7.0} {:>7.0} {:>5.2}",
                            ds.name, metric, efc, t, os.0,
                            o.build_s, f.build_s, h.build_s,
                            overlap(&os.3, &exact.ids, a.k, a.k), overlap(&fs.3, &exact.ids, a.k, a.k), overlap(&hs.3, &exact.ids, a.k, a.k),
                            nq / os.1, nq / fs.1, nq / hs.1, fs.1 / os.1, hs.1 / os.1,
                            os.2, fs.2, os.2 / fs.2
                        );
                    }
                }
            }
        }
    }
    println!("xF / xH = vecindex batch throughput over faiss's / hnswlib's (> 1: vecindex faster); 1q/s = one query per call.");
    Ok(())
}

fn run_annoy(a: &PeerBenchArgs, py: &Path, dir: &Path, sets: &[Dataset]) -> Result<()> {
    println!(
        "peer-bench annoy: top-{} ({} queries, best of {}; builds best of {}); recall@{} vs exact; load average {}",
        a.k,
        a.nq,
        a.repeat,
        a.build_repeat.max(1),
        a.k,
        load_avg()
    );
    println!(
        "{:<24} {:<9} {:>5} {:>2} {:>7} | {:>7} {:>7} {:>5} | {:>9} {:>9} | {:>6} {:>6} | {:>8} {:>8} {:>5}",
        "data", "metric", "trees", "t", "searchk", "build s", "annoy", "ratio", "bytes", "annoy", "recall", "annoy", "q/s", "annoy", "ratio"
    );
    for (i, ds) in sets.iter().enumerate() {
        let metrics = if ds.name.starts_with("clustered") {
            &a.clustered_annoy_metrics
        } else {
            &a.annoy_metrics
        };
        for metric in metrics {
            let am = vecindex::annoy::AnnoyMetric::parse(metric)?;
            let exact = vecindex::eval::exact_neighbors(
                ds.base.view(),
                ds.queries.view(),
                am.metric(),
                a.k,
            )?;
            for &trees in &a.n_trees {
                for &t in &a.threads_list {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build()?;
                    let cfg = vecindex::Config::new()
                        .set("metric", metric)
                        .set("n_trees", trees)
                        .set("threads", t);
                    let (build_s, mut idx) = best_of(a.build_repeat, || {
                        Ok(pool.install(|| {
                            vecindex::builder_factory("annoy", &cfg)?
                                .from_embeddings(ds.base.view())
                        })?)
                    })?;
                    let path = dir.join("ours.ann");
                    idx.save(&path)?;
                    let bytes = std::fs::metadata(&path)?.len();
                    let prefix = dir.join("annoy_ids_");
                    let list = a
                        .searchk
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(",");
                    let args: Vec<String> = vec![
                        "--metric".into(),
                        metric.clone(),
                        "--n-trees".into(),
                        trees.to_string(),
                        format!("--searchks={list}"),
                        "-k".into(),
                        a.k.to_string(),
                        "--repeat".into(),
                        a.repeat.to_string(),
                        "--build-repeat".into(),
                        a.build_repeat.to_string(),
                        "--out-prefix".into(),
                        prefix.to_string_lossy().to_string(),
                    ];
                    let v = run_peer(py, "annoy_peer.py", dir, i, t, &args)?;
                    let abuild = v["build_s"].as_f64().unwrap_or(f64::NAN);
                    let abytes = v["file_size"].as_u64().unwrap_or(0);
                    for &sk in &a.searchk {
                        idx.set_param("searchk", &sk.to_string())?;
                        let q = ds.queries.view();
                        let (best, res) =
                            best_of(a.repeat, || Ok(pool.install(|| idx.query(q, a.k))?))?;
                        let aids = read_peer_ids(&dir.join(format!("annoy_ids_{sk}.npy")))?;
                        let abest = v["search"][sk.to_string()].as_f64().unwrap_or(f64::NAN);
                        let nq = q.rows() as f64;
                        println!(
                            "{:<24} {:<9} {:>5} {:>2} {:>7} | {:>7.2} {:>7.2} {:>5.2} | {:>9} {:>9} | {:>6.3} {:>6.3} | {:>8.0} {:>8.0} {:>5.2}",
                            ds.name, metric, trees, t, sk, build_s, abuild, abuild / build_s, bytes, abytes,
                            overlap(&res.ids, &exact.ids, a.k, a.k), overlap(&aids, &exact.ids, a.k, a.k),
                            nq / best, nq / abest, abest / best
                        );
                    }
                }
            }
        }
    }
    println!("ratio = annoy time / vecindex time (> 1: vecindex faster). annoy queries are one get_nns_by_vector call each (it has no batch API).");
    Ok(())
}

/// key=value pairs sent to the server.
type KeyValues = Vec<(&'static str, &'static str)>;

/// Milvus build and search parameters used on both sides (M/efConstruction/nlist; ef/nprobe).
fn milvus_params(index_type: &str) -> (KeyValues, KeyValues) {
    match index_type {
        "HNSW" => (
            vec![("M", "16"), ("efConstruction", "200")],
            vec![("ef", "64")],
        ),
        "IVF_FLAT" => (vec![("nlist", "128")], vec![("nprobe", "16")]),
        _ => (vec![], vec![]),
    }
}

fn run_milvus(a: &PeerBenchArgs, py: &Path, dir: &Path, sets: &[Dataset]) -> Result<()> {
    let ok = Command::new(py)
        .args(["-c", "import pymilvus"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        bail!("pymilvus is not installed in {}; run ./scripts/bench.sh milvus (it installs pymilvus 2.3.x and starts the server)", py.display());
    }
    let uri = a
        .milvus_uri
        .clone()
        .or_else(|| std::env::var("VECINDEX_MILVUS_URI").ok())
        .unwrap_or_else(|| "http://127.0.0.1:19530".into());
    println!(
        "peer-bench milvus: server {uri}; top-{} over {} queries (best of {}); same collection parameters and batch sizes on both sides; load average {}",
        a.k,
        a.nq,
        a.repeat,
        load_avg()
    );
    println!(
        "{:<24} {:<8} {:<6} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7} | {:>5} | {:>8} {:>8} {:>5} | {:>6} {:>6}",
        "data", "index", "metric", "insert", "flush", "idx+ld", "total", "py ins", "py fl", "py i+l", "py tot", "ratio", "q/s", "py q/s", "ratio", "recall", "py rec"
    );
    for (i, ds) in sets.iter().enumerate() {
        for metric in &a.metrics {
            let m = match metric.as_str() {
                "IP" => vecindex::Metric::InnerProduct,
                "COSINE" => vecindex::Metric::Cosine,
                _ => vecindex::Metric::L2,
            };
            let exact = vecindex::eval::exact_neighbors(ds.base.view(), ds.queries.view(), m, a.k)?;
            for it in &a.milvus_index_types {
                let (bp, sp) = milvus_params(it);
                let mut cfg = vecindex::Config::new()
                    .set("uri", &uri)
                    .set("index_type", it)
                    .set("metric", metric);
                for (k, v) in bp.iter().chain(sp.iter()) {
                    let key = if *k == "M" { "m" } else { k };
                    cfg = cfg.set(key, v);
                }
                // Stage times from the progress callback: when each stage is first reported.
                let marks: std::sync::Arc<std::sync::Mutex<Vec<(String, Instant)>>> =
                    Default::default();
                let m2 = marks.clone();
                let mut b = vecindex::builder_factory("milvus", &cfg)?;
                b.set_progress(std::sync::Arc::new(move |stage: &str, _d: u64, _t: u64| {
                    let mut v = m2.lock().expect("marks");
                    if v.last().map(|(s, _)| s != stage).unwrap_or(true) {
                        v.push((stage.to_string(), Instant::now()));
                    }
                }));
                let t0 = Instant::now();
                let idx = b.from_embeddings(ds.base.view())?;
                let t_end = Instant::now();
                let at = |name: &str| {
                    marks
                        .lock()
                        .expect("marks")
                        .iter()
                        .find(|(s, _)| s == name)
                        .map(|(_, t)| *t)
                        .unwrap_or(t0)
                };
                let (ins, fl, bi) = (at("inserting"), at("flushing"), at("building index"));
                let insert_s = (fl - ins).as_secs_f64();
                let flush_s = (bi - fl).as_secs_f64();
                let index_s = (t_end - bi).as_secs_f64();
                let build_s = (t_end - t0).as_secs_f64();
                let q = ds.queries.view();
                let (best, res) = best_of(a.repeat, || Ok(idx.query(q, a.k)?))?;
                drop(idx);
                let to_json = |p: &[(&str, &str)]| {
                    serde_json::to_string(
                        &p.iter()
                            .map(|(k, v)| {
                                (
                                    k.to_string(),
                                    serde_json::Value::from(v.parse::<i64>().unwrap_or(0)),
                                )
                            })
                            .collect::<serde_json::Map<_, _>>(),
                    )
                    .expect("json")
                };
                let out = dir.join("milvus_ids.npy");
                let args: Vec<String> = vec![
                    "--uri".into(),
                    uri.clone(),
                    "--index-type".into(),
                    it.clone(),
                    "--metric".into(),
                    metric.clone(),
                    format!("--build-params={}", to_json(&bp)),
                    format!("--search-params={}", to_json(&sp)),
                    "-k".into(),
                    a.k.to_string(),
                    "--repeat".into(),
                    a.repeat.to_string(),
                    "--out".into(),
                    out.to_string_lossy().to_string(),
                ];
                let v = run_peer(py, "milvus_peer.py", dir, i, 1, &args)?;
                let pids = read_peer_ids(&out)?;
                let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
                let nq = q.rows() as f64;
                println!(
                    "{:<24} {:<8} {:<6} | {:>7.2} {:>7.2} {:>7.2} {:>7.2} | {:>7.2} {:>7.2} {:>7.2} {:>7.2} | {:>5.2} | {:>8.0} {:>8.0} {:>5.2} | {:>6.3} {:>6.3}",
                    ds.name, it, metric, insert_s, flush_s, index_s, build_s,
                    f("insert_s"), f("flush_s"), f("index_load_s"), f("build_s"), f("build_s") / build_s,
                    nq / best, nq / f("search_s"), f("search_s") / best,
                    overlap(&res.ids, &exact.ids, a.k, a.k), overlap(&pids, &exact.ids, a.k, a.k)
                );
            }
        }
    }
    println!("ratio = pymilvus time / vecindex time (> 1: vecindex faster). Times in seconds; total = insert + flush + index build + load.");
    Ok(())
}
