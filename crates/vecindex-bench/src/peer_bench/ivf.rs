//! IVF: vecindex's IVF index against faiss-cpu's with the same list storage (`IVF<n>,Flat`,
//! `IVF<n>,SQ8`, `IVF<n>,SQfp16`, `IVF<n>,PQ<m>np`): train and add time, recall@k and batch
//! throughput over nlists and nprobes.

use super::{best_of, load_avg, overlap, read_peer_ids, run_peer, Dataset, PeerBenchArgs, RunSpec};
use anyhow::Result;
use std::path::Path;
use std::time::Instant;

struct IvfSide {
    train_s: f64,
    add_s: f64,
    /// Peak RSS growth of train + add, MB.
    build_mb: f64,
    /// The index's bytes per vector (codes, ids, centroids, tables).
    bytes_per_vector: f64,
    /// (nprobe, best batch seconds, ids)
    search: Vec<(usize, f64, Vec<i64>)>,
}

/// The list codec of a storage name, as faiss's factory spells it after `IVF<n>,`: `Flat`
/// (none), `SQ8`, `SQfp16`, `PQ<m>[x<nbits>][np]` (vecindex trains both PQ spellings alike;
/// faiss adds its polysemous relabelling without `np`).
fn codec(storage: &str) -> Result<Option<vecindex::internals::ListCodecSpec>> {
    use vecindex::internals::{ListCodecSpec, QType};
    let settings = vecindex::faiss::parse_factory(&format!("IVF1,{storage}"))?;
    let get = |key: &str| {
        settings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    };
    Ok(match get("storage") {
        Some("SQ8") => Some(ListCodecSpec::Sq(QType::Sq8)),
        Some("SQfp16") => Some(ListCodecSpec::Sq(QType::Fp16)),
        Some("PQ") => Some(ListCodecSpec::Pq {
            m: get("pq_m").unwrap_or("0").parse()?,
            nbits: get("pq_nbits").unwrap_or("8").parse()?,
        }),
        _ => None,
    })
}

fn ours_ivf(
    ds: &Dataset,
    spec: &RunSpec,
    storage: &str,
    nlist: usize,
    nprobes: &[usize],
) -> Result<IvfSide> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(spec.threads)
        .build()?;
    pool.install(|| -> Result<IvfSide> {
        let metric = if spec.metric == "L2" {
            vecindex::Metric::L2
        } else {
            vecindex::Metric::InnerProduct
        };
        crate::rss::reset_peak();
        let before = crate::rss::proc_status("VmRSS:");
        let t = Instant::now();
        let mut ivf = vecindex::internals::IvfIndex::train_with(
            ds.base.view(),
            nlist,
            metric,
            1,
            codec(storage)?,
            &|_, _, _| {},
        )?;
        let train_s = t.elapsed().as_secs_f64();
        let ids: Vec<i64> = (0..ds.base.rows() as i64).collect();
        let t = Instant::now();
        ivf.add(ds.base.view(), &ids)?;
        let add_s = t.elapsed().as_secs_f64();
        let build_mb = crate::rss::proc_status("VmHWM:").saturating_sub(before) as f64 / 1e6;
        let bytes_per_vector = ivf.memory_bytes() as f64 / ivf.len().max(1) as f64;
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
            build_mb,
            bytes_per_vector,
            search,
        })
    })
}

fn faiss_ivf(
    py: &Path,
    dir: &Path,
    ds_i: usize,
    spec: &RunSpec,
    storage: &str,
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
        "--storage".into(),
        storage.into(),
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
        build_mb: v["build_mb"].as_f64().unwrap_or(f64::NAN),
        bytes_per_vector: v["bytes_per_vector"].as_f64().unwrap_or(f64::NAN),
        search,
    })
}

pub(super) fn run_ivf(a: &PeerBenchArgs, py: &Path, dir: &Path, sets: &[Dataset]) -> Result<()> {
    println!(
        "peer-bench ivf: IVF top-{} ({} queries per batch, best of {}); recall@{} against exact search; load average {}",
        a.k, a.nq, a.repeat, a.k, load_avg()
    );
    println!(
        "{:<24} {:<3} {:<8} {:>5} {:>2} {:>6} | {:>8} {:>8} {:>5} | {:>7} {:>7} {:>5} | {:>6} {:>6} | {:>6} {:>6} | {:>6} {:>6} | {:>8} {:>8} {:>5}",
        "data", "met", "codes", "nlist", "t", "nprobe", "train s", "faiss s", "ratio", "add s", "faiss s", "ratio", "MB", "faiss", "B/v", "faiss", "recall", "faiss", "q/s", "faiss", "ratio"
    );
    for (i, ds) in sets.iter().enumerate() {
        let n = ds.base.rows();
        let nlists = if a.nlists.is_empty() {
            vec![100usize, ((4.0 * (n as f64).sqrt()) as usize).max(1)]
        } else {
            a.nlists.clone()
        };
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
                for (&t, storage) in a
                    .threads_list
                    .iter()
                    .flat_map(|t| a.ivf_storages.iter().map(move |s| (t, s)))
                {
                    let spec = RunSpec {
                        metric,
                        k: a.k,
                        threads: t,
                        repeat: a.repeat,
                        single: 0,
                    };
                    let o = ours_ivf(ds, &spec, storage, nlist, &nprobes)?;
                    let f = faiss_ivf(py, dir, i, &spec, storage, nlist, &nprobes)?;
                    for ((np, os, oi), (_, fs, fi)) in o.search.iter().zip(&f.search) {
                        let nq = ds.queries.rows() as f64;
                        println!(
                            "{:<24} {:<3} {:<8} {:>5} {:>2} {:>6} | {:>8.2} {:>8.2} {:>5.2} | {:>7.2} {:>7.2} {:>5.2} | {:>6.0} {:>6.0} | {:>6.1} {:>6.1} | {:>6.3} {:>6.3} | {:>8.0} {:>8.0} {:>5.2}",
                            ds.name, metric, storage, nlist, t, np,
                            o.train_s, f.train_s, f.train_s / o.train_s,
                            o.add_s, f.add_s, f.add_s / o.add_s,
                            o.build_mb, f.build_mb, o.bytes_per_vector, f.bytes_per_vector,
                            overlap(oi, &exact.ids, a.k, a.k), overlap(fi, &exact.ids, a.k, a.k),
                            nq / os, nq / fs, fs / os
                        );
                    }
                }
            }
        }
    }
    println!("ratio = faiss time / vecindex time (> 1: vecindex faster). recall = share of the exact top-k found. MB = peak RSS growth of train + add (the data excluded); B/v = the index's bytes per vector (codes, ids, centroids, tables).");
    Ok(())
}
