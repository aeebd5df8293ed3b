//! Times an annoy build and batch query alone (no peer): `cargo run --release --example
//! annoy_timing -- [n] [d] [n_trees] [search_k] [threads] [metric] [gaussian|clustered] [queries]`. The peer comparison is `peer-bench annoy`.

use std::time::Instant;
use vecindex::{builder_factory, synth, Config, Vectors};

fn main() -> vecindex::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: usize| a.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (n, d, trees) = (arg(0, 20_000), arg(1, 128), arg(2, 10));
    let sk = a
        .get(3)
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(10_000);
    let threads = a.get(4).and_then(|v| v.parse::<i64>().ok()).unwrap_or(-1);
    let metric = a.get(5).map(String::as_str).unwrap_or("angular");
    let nq = arg(7, 200);
    let (x, q) = match a.get(6).map(String::as_str) {
        Some("clustered") => {
            // Queries from the same mixture, as in `peer-bench annoy`.
            let all = synth::clustered(n + nq, d, 200, 5).0;
            let (b, q) = all.as_slice().split_at(n * d);
            (Vectors::new(b.to_vec(), d)?, Vectors::new(q.to_vec(), d)?)
        }
        _ => (synth::gaussian(n, d, 1), synth::gaussian(nq, d, 2)),
    };
    let cfg = Config::new()
        .set("d", d)
        .set("n_trees", trees)
        .set("searchk", sk)
        .set("threads", threads)
        .set("metric", metric);
    let t = Instant::now();
    let idx = builder_factory("annoy", &cfg)?.from_vectors(x)?;
    let build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    std::hint::black_box(idx.query(q.view(), 10)?);
    println!(
        "n={n} d={d} trees={trees}: build {build:.3}s, {nq} queries at search_k {sk}: {:.3}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
