//! `vecindex bench`: a grid of backends and parameters on one dataset with ground truth — build
//! time, index size, peak memory, recall@k, batch QPS and single-query latency — written as JSON
//! and CSV, with an ann-benchmarks style recall/QPS chart in SVG and PNG.
//!
//! Every run goes through `builder_factory`, so a backend added to the library is benchmarked
//! without touching this file.

use crate::report::ResultRow;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use vecindex::eval::{exact_neighbors, recall_against};
use vecindex::io::{self, npy};
use vecindex::{builder_factory, Config, Metric, Neighbors, Vectors};

#[derive(Args)]
pub struct BenchArgs {
    /// Grid file (.toml or .json) with a `[dataset]` table and `[[run]]` entries.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Base vectors (instead of / overriding the config's dataset).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Query vectors.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Results per query for recall@k and timing.
    #[arg(short = 'k', long = "top-k")]
    pub k: Option<usize>,
    /// A run: `BACKEND [key=value ...] [; KEY=v1,v2,...]` — build parameters, then an optional
    /// query-time sweep (e.g. `faiss index_type=IVF nlists=100 ; nprobe=1,4,16`). Repeatable.
    #[arg(long = "run")]
    pub runs: Vec<String>,
    /// Output directory for results.json, results.csv, recall_qps.svg, recall_qps.png.
    #[arg(long, default_value = "bench-out")]
    pub out: PathBuf,
    /// Timed repetitions of the batch query (best is reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Single-query calls timed for the latency percentiles.
    #[arg(long, default_value_t = 200)]
    pub single: usize,
    /// Clustered synthetic data instead of files: `NxD` base rows of dimension D (200 Zipf-sized
    /// clusters, seed 5) and 1,000 queries from the same clusters.
    #[arg(long, value_name = "NxD")]
    pub synthetic: Option<String>,
    /// Run the whole grid on the first N rows of the base for each N (e.g.
    /// `10000,100000,1000000`) and draw the cost curve (build time and QPS against N) into
    /// cost_curve.svg / cost_curve.png.
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
}

/// Queries drawn with the synthetic base (`--synthetic`).
const SYNTHETIC_QUERIES: usize = 1000;

/// `NxD` → (N, D).
fn parse_shape(s: &str) -> Result<(usize, usize)> {
    let (n, d) = s
        .split_once(['x', 'X'])
        .with_context(|| format!("--synthetic {s}: expected NxD, e.g. 100000x64"))?;
    let n: usize = n
        .trim()
        .parse()
        .with_context(|| format!("--synthetic {s}: rows"))?;
    let d: usize = d
        .trim()
        .parse()
        .with_context(|| format!("--synthetic {s}: dimension"))?;
    if n == 0 || d == 0 || n.checked_mul(d).is_none_or(|v| v > 1 << 34) {
        bail!("--synthetic {s}: N and D must be positive and N·D at most 2^34 values");
    }
    Ok((n, d))
}

/// The grid file.
#[derive(Debug, Deserialize, Default)]
pub struct GridFile {
    #[serde(default)]
    pub dataset: DatasetSpec,
    #[serde(default, rename = "run")]
    pub runs: Vec<RunSpecFile>,
}

#[derive(Debug, Deserialize, Default)]
pub struct DatasetSpec {
    pub name: Option<String>,
    pub base: Option<PathBuf>,
    pub queries: Option<PathBuf>,
    pub k: Option<usize>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct RunSpecFile {
    pub backend: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// One query-time parameter and its values.
    #[serde(default)]
    pub sweep: BTreeMap<String, Vec<toml::Value>>,
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parses `BACKEND [k=v ...] [; KEY=v1,v2]`.
fn parse_run_flag(s: &str) -> Result<RunSpecFile> {
    let (build, sweep) = match s.split_once(';') {
        Some((b, w)) => (b, Some(w.trim())),
        None => (s, None),
    };
    let mut words = build.split_whitespace();
    let backend = words
        .next()
        .context("--run needs a backend name first")?
        .to_string();
    let mut params = BTreeMap::new();
    for w in words {
        let (k, v) = w
            .split_once('=')
            .with_context(|| format!("--run: expected key=value, got '{w}'"))?;
        params.insert(k.to_string(), toml::Value::String(v.to_string()));
    }
    let mut sw = BTreeMap::new();
    if let Some(w) = sweep.filter(|w| !w.is_empty()) {
        let (k, vs) = w
            .split_once('=')
            .with_context(|| format!("--run sweep: expected KEY=v1,v2, got '{w}'"))?;
        sw.insert(
            k.trim().to_string(),
            vs.split(',')
                .map(|v| toml::Value::String(v.trim().to_string()))
                .collect(),
        );
    }
    Ok(RunSpecFile {
        backend,
        label: None,
        params,
        sweep: sw,
    })
}

/// Ground truth for `metric`, from the cache next to the queries (or in `out`), else computed
/// exactly (in parallel) and cached. The cache is keyed by the content of the base and the
/// queries, so another base file (or a changed one) never reuses stale truth.
fn ground_truth(
    base: &Vectors,
    queries: &Vectors,
    qpath: &Path,
    metric: Metric,
    k: usize,
    out: &Path,
) -> Result<Neighbors> {
    let stem = qpath
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("queries");
    let name = format!(
        "{stem}.gt-{}-k{k}-{:016x}.npy",
        metric.name().to_ascii_lowercase(),
        content_digest(base) ^ content_digest(queries).rotate_left(17)
    );
    let beside = qpath.parent().unwrap_or(Path::new(".")).join(&name);
    let mine = out.join(&name);
    for p in [&beside, &mine] {
        if let Ok(bytes) = std::fs::read(p) {
            let a = npy::parse_npy(&bytes, &p.display().to_string())?;
            if let (npy::NpyData::Int(ids), [r, c]) = (a.data, a.shape.as_slice()) {
                if *r == queries.rows() && *c == k {
                    return Ok(Neighbors {
                        ids,
                        distances: vec![0.0; r * c],
                        n_queries: *r,
                        k,
                        metric,
                    });
                }
            }
        }
    }
    let sp = crate::progress::spinner(&format!("computing exact top-{k} ground truth ({metric})"));
    let gt = exact_neighbors(base.view(), queries.view(), metric, k)?;
    sp.finish_and_clear();
    let bytes = npy::npy_i64(&[queries.rows(), k], &gt.ids);
    if io::atomic_write(&beside, &bytes).is_err() {
        // Read-only data directory: cache in the output directory instead.
        io::atomic_write(&mine, &bytes)?;
    }
    Ok(gt)
}

/// A digest of the vectors' shape and values.
fn content_digest(v: &Vectors) -> u64 {
    let mut d = io::Digest64::default();
    d.update(&(v.dim() as u64).to_le_bytes());
    d.update(&(v.rows() as u64).to_le_bytes());
    for chunk in v.as_slice().chunks(1 << 14) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|x| x.to_le_bytes()).collect();
        d.update(&bytes);
    }
    d.finish()
}

pub fn run(a: BenchArgs) -> Result<()> {
    let mut grid = match &a.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let is_json = p
                .extension()
                .map(|e| e.eq_ignore_ascii_case("json"))
                .unwrap_or(false);
            let g: GridFile = if is_json {
                serde_json::from_str(&text)
                    .with_context(|| format!("{}: invalid grid", p.display()))?
            } else {
                toml::from_str(&text).with_context(|| format!("{}: invalid grid", p.display()))?
            };
            // Relative data paths are relative to the grid file.
            let dir = p.parent().unwrap_or(Path::new("."));
            let mut g = g;
            for path in [&mut g.dataset.base, &mut g.dataset.queries]
                .into_iter()
                .flatten()
            {
                if path.is_relative() {
                    *path = dir.join(&*path);
                }
            }
            g
        }
        None => GridFile::default(),
    };
    if let Some(b) = a.base.clone() {
        // The grid's dataset name described its own base file.
        grid.dataset.name = None;
        grid.dataset.base = Some(b);
    }
    if let Some(q) = a.queries.clone() {
        grid.dataset.queries = Some(q);
    }
    for r in &a.runs {
        grid.runs.push(parse_run_flag(r)?);
    }
    let synthetic = a.synthetic.as_deref().map(parse_shape).transpose()?;
    let (base_path, query_path) = match synthetic {
        // Named only for the ground-truth cache, which then lives in --out.
        Some(_) => (
            a.out.join("synthetic.npy"),
            a.out.join("synthetic-queries.npy"),
        ),
        None => (
            grid.dataset.base.clone().context(
                "no base vectors: give --base, --synthetic or [dataset] base in --config",
            )?,
            grid.dataset
                .queries
                .clone()
                .context("no queries: give --queries or [dataset] queries")?,
        ),
    };
    if grid.runs.is_empty() {
        bail!("nothing to run: give --run or [[run]] entries in --config");
    }
    let k = a.k.or(grid.dataset.k).unwrap_or(10);
    if k == 0 {
        bail!("k must be at least 1");
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let (base, queries) = match synthetic {
        Some((n, d)) => {
            let (all, _) = vecindex::synth::clustered(n + SYNTHETIC_QUERIES, d, 200, 5);
            let v = all.view();
            (
                v.slice_rows(0, n).to_owned(),
                v.slice_rows(n, n + SYNTHETIC_QUERIES).to_owned(),
            )
        }
        None => (
            crate::input::read_vectors(&base_path, None)?,
            crate::input::read_vectors(&query_path, None)?,
        ),
    };
    let sizes: Vec<usize> = if a.sizes.is_empty() {
        vec![base.rows()]
    } else {
        a.sizes.clone()
    };
    if let Some(&n) = sizes.iter().find(|&&n| n == 0 || n > base.rows()) {
        bail!(
            "--sizes: {n} is not between 1 and the {} base rows",
            base.rows()
        );
    }
    // Unnamed data is named by its file (and folder) and shape.
    let data_name = match synthetic {
        Some((n, d)) => format!("clustered synthetic ({n} × {d})"),
        None => grid.dataset.name.clone().unwrap_or_else(|| {
            let parts: Vec<String> = base_path
                .iter()
                .rev()
                .take(2)
                .map(|c| c.to_string_lossy().to_string())
                .collect();
            let file: Vec<&str> = parts.iter().rev().map(String::as_str).collect();
            format!("{} ({} × {})", file.join("/"), base.rows(), base.dim())
        }),
    };
    let steps: u64 = grid
        .runs
        .iter()
        .map(|r| r.sweep.values().next().map(|v| v.len()).unwrap_or(1) as u64)
        .sum::<u64>()
        * sizes.len() as u64;
    let pb = crate::progress::bar(steps, "bench");
    let mut rows = Vec::new();
    for &n in &sizes {
        let prefix;
        let base = if n == base.rows() {
            &base
        } else {
            prefix = base.view().slice_rows(0, n).to_owned();
            &prefix
        };
        rows.extend(run_grid(&a, &grid, base, &queries, &query_path, k, &pb)?);
    }
    pb.finish_and_clear();
    write_outputs(&a.out, &data_name, k, &rows)?;
    let sized = sizes.len() > 1;
    if sized {
        crate::plot::cost_curve(&a.out, &format!("{data_name} — cost against size"), &rows)?;
    }
    println!(
        "{:<40} {:>9} {:<14} {:>8} {:>10} {:>10} {:>7} {:>10} {:>8} {:>8}",
        "run", "n", "sweep", "build s", "size MB", "peak MB", "recall", "q/s", "p50 ms", "p99 ms"
    );
    for r in &rows {
        println!(
            "{:<40} {:>9} {:<14} {:>8.2} {:>10.1} {:>10.1} {:>7.4} {:>10.0} {:>8.3} {:>8.3}",
            r.label,
            r.n_items,
            r.sweep,
            r.build_s,
            r.index_bytes as f64 / 1e6,
            r.peak_rss_bytes as f64 / 1e6,
            r.recall,
            r.qps,
            r.p50_ms,
            r.p99_ms
        );
    }
    println!(
        "wrote {}/results.json, results.csv, recall_qps.svg, recall_qps.png{}",
        a.out.display(),
        if sized {
            ", cost_curve.svg, cost_curve.png"
        } else {
            ""
        }
    );
    Ok(())
}

/// Every run of the grid on `base`: build, size, then the query sweep.
fn run_grid(
    a: &BenchArgs,
    grid: &GridFile,
    base: &Vectors,
    queries: &Vectors,
    query_path: &Path,
    k: usize,
    pb: &indicatif::ProgressBar,
) -> Result<Vec<ResultRow>> {
    let mut rows = Vec::new();
    let mut gts: BTreeMap<&'static str, Neighbors> = BTreeMap::new();
    for spec in &grid.runs {
        if spec.sweep.len() > 1 {
            bail!(
                "run '{}': sweep one query-time parameter at a time",
                spec.backend
            );
        }
        let params: Vec<(String, String)> = spec
            .params
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect();
        let params_text = params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let label = spec
            .label
            .clone()
            .unwrap_or_else(|| format!("{} {params_text}", spec.backend).trim().to_string());
        let config: Config = params.iter().cloned().collect();
        let builder =
            builder_factory(&spec.backend, &config).with_context(|| format!("run '{label}'"))?;
        crate::rss::reset_peak();
        let rss_before = crate::rss::proc_status("VmRSS:");
        let t = Instant::now();
        let mut indexer = builder
            .from_embeddings(base.view())
            .with_context(|| format!("run '{label}'"))?;
        let build_s = t.elapsed().as_secs_f64();
        let idx_path = a.out.join(".bench.index");
        indexer.save(&idx_path)?;
        let index_bytes = std::fs::metadata(&idx_path).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(&idx_path);
        let metric = indexer.metric();
        let gt = match gts.get(metric.name()) {
            Some(g) => g.clone(),
            None => {
                let g = ground_truth(base, queries, query_path, metric, k, &a.out)?;
                gts.insert(metric.name(), g.clone());
                g
            }
        };
        let sweep: Vec<(String, String)> = match spec.sweep.iter().next() {
            Some((key, vals)) => vals.iter().map(|v| (key.clone(), value_text(v))).collect(),
            None => vec![(String::new(), String::new())],
        };
        for (key, val) in sweep {
            if !key.is_empty() {
                indexer
                    .set_param(&key, &val)
                    .with_context(|| format!("run '{label}'"))?;
            }
            let q = queries.view();
            indexer.query(q.slice_rows(0, q.rows().min(32)), k)?;
            let mut best = f64::MAX;
            let mut res = None;
            for _ in 0..a.repeat.max(1) {
                let t = Instant::now();
                let r = indexer.query(q, k)?;
                best = best.min(t.elapsed().as_secs_f64());
                res = Some(r);
            }
            let res = res.expect("at least one repetition");
            let mut lat: Vec<f64> = (0..a.single.min(q.rows()))
                .map(|i| {
                    let t = Instant::now();
                    indexer.query(q.slice_rows(i, i + 1), k)?;
                    Ok(t.elapsed().as_secs_f64() * 1e3)
                })
                .collect::<Result<_>>()?;
            lat.sort_by(f64::total_cmp);
            let pct = |p: f64| {
                if lat.is_empty() {
                    f64::NAN
                } else {
                    lat[((lat.len() - 1) as f64 * p).round() as usize]
                }
            };
            rows.push(ResultRow {
                label: label.clone(),
                n_items: base.rows(),
                backend: spec.backend.clone(),
                params: params_text.clone(),
                sweep: if key.is_empty() {
                    String::new()
                } else {
                    format!("{key}={val}")
                },
                metric: metric.name().to_string(),
                k,
                build_s,
                index_bytes,
                peak_rss_bytes: crate::rss::proc_status("VmHWM:").saturating_sub(rss_before),
                recall: recall_against(&res, &gt, k),
                qps: q.rows() as f64 / best,
                p50_ms: pct(0.5),
                p99_ms: pct(0.99),
            });
            pb.inc(1);
        }
    }
    Ok(rows)
}

fn write_outputs(out: &Path, data: &str, k: usize, rows: &[ResultRow]) -> Result<()> {
    let json = serde_json::json!({ "dataset": data, "k": k, "results": rows });
    io::atomic_write(
        &out.join("results.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    let mut csv = String::from("label,n_items,backend,params,sweep,metric,k,build_s,index_bytes,peak_rss_bytes,recall,qps,p50_ms,p99_ms\n");
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for r in rows {
        csv += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            q(&r.label),
            r.n_items,
            q(&r.backend),
            q(&r.params),
            q(&r.sweep),
            r.metric,
            r.k,
            r.build_s,
            r.index_bytes,
            r.peak_rss_bytes,
            r.recall,
            r.qps,
            r.p50_ms,
            r.p99_ms
        );
    }
    io::atomic_write(&out.join("results.csv"), csv.as_bytes())?;
    crate::plot::recall_qps(out, &format!("{data} — recall@{k} vs QPS"), k, rows)
}
