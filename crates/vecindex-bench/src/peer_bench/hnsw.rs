//! HNSW: vecindex's HNSW index against faiss-cpu's (same factory string: `HNSW<M>,<storage>`,
//! flat or scalar-quantized, optionally refined) and hnswlib's (flat): build time, recall@k,
//! batch and single-query throughput over efConstruction and efSearch.

use super::{best_of, load_avg, overlap, read_peer_ids, run_peer, Dataset, PeerBenchArgs, RunSpec};
use anyhow::Result;
use std::path::Path;
use std::time::Instant;

/// One library's HNSW figures: build seconds, peak RSS growth of the build, and per efSearch
/// (batch seconds, single q/s, ids).
struct HnswSide {
    build_s: f64,
    build_mb: f64,
    search: Vec<(usize, f64, f64, Vec<i64>)>,
}

/// faiss's factory string for HNSW with `m` links over `storage` (`SQ8+RFlat` → `SQ8,RFlat`).
fn factory(m: usize, storage: &str) -> String {
    format!("HNSW{m},{}", storage.replace('+', ","))
}

fn ours_hnsw(
    ds: &Dataset,
    spec: &RunSpec,
    factory: &str,
    efc: usize,
    efs: &[usize],
    k_factor: f32,
) -> Result<HnswSide> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(spec.threads)
        .build()?;
    pool.install(|| -> Result<HnswSide> {
        let cfg = vecindex::Config::new()
            .set("factory", factory)
            .set("metric", spec.metric)
            .set("efConstruction", efc);
        crate::rss::reset_peak();
        let before = crate::rss::proc_status("VmRSS:");
        let t = Instant::now();
        let mut h = vecindex::builder_factory("faiss", &cfg)?.from_embeddings(ds.base.view())?;
        let build_s = t.elapsed().as_secs_f64();
        let build_mb = crate::rss::proc_status("VmHWM:").saturating_sub(before) as f64 / 1e6;
        if factory.ends_with("RFlat") {
            h.set_param("k_factor", &k_factor.to_string())?;
        }
        let q = ds.queries.view();
        let mut search = Vec::new();
        for &ef in efs {
            h.set_param("efSearch", &ef.to_string())?;
            h.query(q.slice_rows(0, q.rows().min(32)), spec.k)?;
            let (best, r) = best_of(spec.repeat, || Ok(h.query(q, spec.k)?))?;
            let ids = r.ids;
            let ns = spec.single.min(q.rows());
            let mut single: f64 = 0.0;
            for _ in 0..spec.repeat {
                let t = Instant::now();
                for i in 0..ns {
                    std::hint::black_box(h.query(q.slice_rows(i, i + 1), spec.k)?);
                }
                single = single.max(ns as f64 / t.elapsed().as_secs_f64());
            }
            search.push((ef, best, single, ids));
        }
        Ok(HnswSide {
            build_s,
            build_mb,
            search,
        })
    })
}

#[allow(clippy::too_many_arguments)]
fn peer_hnsw(
    py: &Path,
    dir: &Path,
    lib: &str,
    ds_i: usize,
    spec: &RunSpec,
    factory: &str,
    efc: usize,
    efs: &[usize],
    k_factor: f32,
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
        "--factory".into(),
        factory.into(),
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
        "--k-factor".into(),
        k_factor.to_string(),
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
        build_mb: v["build_peak_delta_bytes"].as_f64().unwrap_or(f64::NAN) / 1e6,
        search,
    })
}

pub(super) fn run_hnsw(a: &PeerBenchArgs, py: &Path, dir: &Path, sets: &[Dataset]) -> Result<()> {
    println!(
        "peer-bench hnsw: HNSW M={} top-{} ({} queries per batch, best of {}; single = {} one-query calls); recall@{} vs exact; load average {}",
        a.m, a.k, a.nq, a.repeat, a.single, a.k, load_avg()
    );
    println!(
        "{:<24} {:<3} {:<10} {:>4} {:>2} {:>4} | {:>7} {:>7} {:>7} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} | {:>7} {:>7} {:>7} {:>5} {:>5} | {:>7} {:>7} {:>5}",
        "data", "met", "storage", "efC", "t", "ef", "build s", "faiss", "hnswlib", "MB", "faiss", "hnswl", "recall", "faiss", "hnswl", "q/s", "faiss", "hnswlib", "xF", "xH", "1q/s", "faiss", "xF"
    );
    for (i, ds) in sets.iter().enumerate() {
        let mut rows = Vec::new();
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
                    let flat = factory(a.m, "Flat");
                    let kf = a.k_factor;
                    let h = peer_hnsw(py, dir, "hnswlib", i, &spec, &flat, efc, &a.ef_search, kf)?;
                    for storage in &a.storages {
                        let fac = factory(a.m, storage);
                        let o = ours_hnsw(ds, &spec, &fac, efc, &a.ef_search, kf)?;
                        let f = peer_hnsw(py, dir, "faiss", i, &spec, &fac, efc, &a.ef_search, kf)?;
                        let nq = ds.queries.rows() as f64;
                        for ((os, fs), hs) in o.search.iter().zip(&f.search).zip(&h.search) {
                            let recall = |ids: &[i64]| overlap(ids, &exact.ids, a.k, a.k);
                            let row = |lib: &'static str, storage: &str, r: f64, qps: f64| Row {
                                metric,
                                threads: t,
                                lib,
                                config: format!("{storage} efC {efc} ef {}", os.0),
                                flat: storage == "Flat",
                                recall: r,
                                qps,
                            };
                            rows.push(row("vecindex", storage, recall(&os.3), nq / os.1));
                            rows.push(row("faiss", storage, recall(&fs.3), nq / fs.1));
                            rows.push(row("hnswlib", "Flat", recall(&hs.3), nq / hs.1));
                            println!(
                                "{:<24} {:<3} {:<10} {:>4} {:>2} {:>4} | {:>7.2} {:>7.2} {:>7.2} | {:>6.0} {:>6.0} {:>6.0} | {:>6.3} {:>6.3} {:>6.3} | {:>7.0} {:>7.0} {:>7.0} {:>5.2} {:>5.2} | {:>7.0} {:>7.0} {:>5.2}",
                                ds.name, metric, storage, efc, t, os.0,
                                o.build_s, f.build_s, h.build_s,
                                o.build_mb, f.build_mb, h.build_mb,
                                overlap(&os.3, &exact.ids, a.k, a.k), overlap(&fs.3, &exact.ids, a.k, a.k), overlap(&hs.3, &exact.ids, a.k, a.k),
                                nq / os.1, nq / fs.1, nq / hs.1, fs.1 / os.1, hs.1 / os.1,
                                os.2, fs.2, os.2 / fs.2
                            );
                        }
                    }
                }
            }
        }
        print_best(&ds.name, &rows, a);
    }
    println!("xF / xH = vecindex batch throughput over faiss's / hnswlib's (> 1: vecindex faster); 1q/s = one query per call; MB = peak RSS growth of the build (the data itself excluded).");
    Ok(())
}

/// One searched configuration of one library, for the closing summary.
struct Row<'a> {
    metric: &'a str,
    threads: usize,
    lib: &'static str,
    config: String,
    flat: bool,
    recall: f64,
    qps: f64,
}

/// Per metric and thread count: each side's fastest configuration that reaches the target
/// recall (any storage, efConstruction and efSearch that ran), and vecindex's ratio to each —
/// what the "best configuration at equal recall" targets compare.
fn print_best(data: &str, rows: &[Row<'_>], a: &PeerBenchArgs) {
    // Each (metric, threads) once, in the order they ran (efConstruction loops outside threads).
    let mut keys: Vec<(&str, usize)> = Vec::new();
    for r in rows {
        if !keys.contains(&(r.metric, r.threads)) {
            keys.push((r.metric, r.threads));
        }
    }
    for (metric, t) in keys {
        let best = |lib: &str, flat_only: bool| {
            rows.iter()
                .filter(|r| r.metric == metric && r.threads == t && r.lib == lib)
                .filter(|r| (r.flat || !flat_only) && r.recall >= a.target_recall)
                .max_by(|x, y| x.qps.total_cmp(&y.qps))
        };
        let Some(ours) = best("vecindex", false) else {
            println!(
                "{data} {metric} t={t}: no vecindex configuration reached recall {}",
                a.target_recall
            );
            continue;
        };
        println!(
            "{data} {metric} t={t}: fastest at recall >= {}: vecindex {:.0} q/s ({}, recall {:.3})",
            a.target_recall, ours.qps, ours.config, ours.recall
        );
        for (lib, flat_only, name) in [
            ("faiss", true, "faiss HNSW Flat"),
            ("faiss", false, "faiss any storage"),
            ("hnswlib", false, "hnswlib"),
        ] {
            match best(lib, flat_only) {
                Some(b) => println!(
                    "    {name:<18} {:>7.0} q/s ({}, recall {:.3}) -> vecindex {:.2}x",
                    b.qps,
                    b.config,
                    b.recall,
                    ours.qps / b.qps
                ),
                None => println!("    {name:<18} none reached recall {}", a.target_recall),
            }
        }
    }
}
