//! Exact search: vecindex's faiss Flat index against faiss-cpu's IndexFlat (L2 and IP), batch and
//! single-query throughput, peak memory and agreement of the ids.

use super::{best_of, load_avg, overlap, read_peer_ids, run_peer, Dataset, PeerBenchArgs, RunSpec};
use anyhow::Result;
use std::path::Path;
use std::time::Instant;
use vecindex::Builder;

struct Side {
    build_s: f64,
    batch_s: f64,
    single_qps: f64,
    peak_delta: u64,
    ids: Vec<i64>,
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

pub(super) fn run_flat(a: &PeerBenchArgs, py: &Path, dir: &Path, sets: &[Dataset]) -> Result<()> {
    println!(
        "peer-bench flat: exact top-{} ({} queries per batch, best of {}; single = {} one-query calls); kernels: {}; load average {}",
        a.k,
        a.nq,
        a.repeat,
        a.single,
        vecindex::internals::kernels().name,
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
