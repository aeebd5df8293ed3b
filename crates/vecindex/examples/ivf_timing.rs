//! Times IVF train, add and search alone (no peer): `cargo run --release --example ivf_timing
//! -- [n] [d] [nlist] [nprobe] [PQ<m>[x<nbits>]] [reps]` (IVF-PQ lists instead of flat
//! ones; the 1000-query search repeated `reps` times, for profiles). The peer comparison is `peer-bench ivf`.

use std::time::Instant;
use vecindex::internals::{IvfIndex, ListCodecSpec};
use vecindex::{synth, Metric};

fn main() -> vecindex::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: usize| a.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (n, d, nlist, nprobe) = (arg(0, 100_000), arg(1, 128), arg(2, 100), arg(3, 16));
    let x = synth::gaussian(n, d, 1);
    let q = synth::gaussian(1000, d, 2);
    let t = Instant::now();
    let codec = a.get(4).map(|pq| {
        let (m, nbits) = pq
            .trim_start_matches("PQ")
            .split_once('x')
            .unwrap_or((&pq[2..], "8"));
        ListCodecSpec::Pq {
            m: m.parse().expect("PQ<m>"),
            nbits: nbits.parse().expect("x<nbits>"),
        }
    });
    let mut ivf = IvfIndex::train_with(x.view(), nlist, Metric::L2, nprobe, codec, &|_, _, _| {})?;
    let train = t.elapsed().as_secs_f64();
    let ids: Vec<i64> = (0..n as i64).collect();
    let t = Instant::now();
    ivf.add(x.view(), &ids)?;
    let add = t.elapsed().as_secs_f64();
    let reps = arg(5, 1).max(1);
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(ivf.search(q.view(), 10)?);
    }
    let search = t.elapsed().as_secs_f64() / reps as f64;
    println!("n={n} d={d} nlist={nlist} {codec:?}: train {train:.3}s add {add:.3}s search(1000, nprobe {nprobe}) {search:.3}s");
    Ok(())
}
