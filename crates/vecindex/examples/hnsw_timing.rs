//! Times HNSW build and search alone (no peer): `cargo run --release --example hnsw_timing --
//! BASE.npy QUERIES.npy [m] [efConstruction]`. The peer comparison is `peer-bench hnsw`.

use std::time::Instant;
use vecindex::internals::HnswIndex;
use vecindex::{io, Metric};

fn main() -> vecindex::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let base = io::read_vectors(a[0].as_ref(), None)?;
    let q = io::read_vectors(a[1].as_ref(), None)?;
    let m = a.get(2).and_then(|v| v.parse().ok()).unwrap_or(32);
    let efc = a.get(3).and_then(|v| v.parse().ok()).unwrap_or(40);
    let t = Instant::now();
    let mut h = HnswIndex::new(base.dim(), Metric::L2, m, efc, 16);
    h.add(base.view(), &|_, _| {}).unwrap();
    println!(
        "build {} x {} M={m} efC={efc}: {:.2}s",
        base.rows(),
        base.dim(),
        t.elapsed().as_secs_f64()
    );
    let exact = vecindex::exact_knn(base.view(), q.view(), Metric::L2, 10)?;
    for ef in [16, 32, 64, 128] {
        h.set_ef_search(ef);
        let t = Instant::now();
        let r = h.search(q.view(), 10)?;
        let s = t.elapsed().as_secs_f64();
        let hit: usize = (0..q.rows())
            .map(|i| {
                r.ids[i * 10..(i + 1) * 10]
                    .iter()
                    .filter(|x| exact.ids_row(i).contains(x))
                    .count()
            })
            .sum();
        println!(
            "efSearch {ef}: recall@10 {:.4}, {:.0} q/s",
            hit as f64 / (q.rows() * 10) as f64,
            q.rows() as f64 / s
        );
    }
    Ok(())
}
