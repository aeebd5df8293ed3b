//! The build, query, info and collections subcommands: thin layers over the library's API.

use crate::args::{BuildArgs, CollectionsArgs, InfoArgs, QueryArgs};
use crate::input::{ensure_not_an_input, read_vectors};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::Instant;
use vecindex::io::{self, npy};
use vecindex::{builder_factory, Config};

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
         parameters: efSearch, nprobe, k_factor for faiss; searchk for annoy; ef, nprobe for milvus)",
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
