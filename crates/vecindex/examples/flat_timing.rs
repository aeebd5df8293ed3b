//! Times the exact-search batch path alone (no peer): `cargo run --release --example flat_timing
//! -- [n] [d] [nq] [k] [metric]`. For profiling kernels; the peer comparison is
//! `peer-bench flat`.

use std::time::Instant;
use vecindex::{synth, Builder, Metric};

fn main() -> vecindex::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: usize| a.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (n, d, nq, k) = (arg(0, 100_000), arg(1, 128), arg(2, 1000), arg(3, 10));
    let metric = if a.get(4).map(|s| s == "IP").unwrap_or(false) {
        Metric::InnerProduct
    } else {
        Metric::L2
    };
    let idx = vecindex::faiss::FaissBuilder::new()
        .metric(metric)?
        .from_vectors(synth::gaussian(n, d, 1))?;
    let q = synth::gaussian(nq, d, 2);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(idx.query(q.view(), k)?);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let gflops = 2.0 * (n * d * nq) as f64 / best / 1e9;
    println!(
        "{metric} n={n} d={d} nq={nq} k={k}: {:.1} ms, {:.0} q/s, {gflops:.1} GFLOP/s, {} threads",
        best * 1e3,
        nq as f64 / best,
        rayon::current_num_threads()
    );
    Ok(())
}
