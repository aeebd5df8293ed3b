//! Annoy: vecindex's annoy backend against PyPI annoy: build time, file size, recall@k and query
//! throughput over tree counts and search_k.

use super::{best_of, load_avg, overlap, read_peer_ids, run_peer, Dataset, PeerBenchArgs};
use anyhow::Result;
use std::path::Path;

pub(super) fn run_annoy(a: &PeerBenchArgs, py: &Path, dir: &Path, sets: &[Dataset]) -> Result<()> {
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
            let am = vecindex::annoy::parse_metric(metric)?;
            let exact =
                vecindex::eval::exact_neighbors(ds.base.view(), ds.queries.view(), am, a.k)?;
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
