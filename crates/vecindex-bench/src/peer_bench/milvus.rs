//! Milvus: vecindex's Milvus builder against pymilvus on the same server: insert, flush,
//! index+load time, batch-search throughput and recall@k.

use super::{best_of, load_avg, overlap, read_peer_ids, run_peer, Dataset, PeerBenchArgs};
use anyhow::{bail, Result};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

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

pub(super) fn run_milvus(a: &PeerBenchArgs, py: &Path, dir: &Path, sets: &[Dataset]) -> Result<()> {
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
