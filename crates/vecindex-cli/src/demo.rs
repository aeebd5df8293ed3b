//! `vecindex demo`: the main job end to end on built-in data — item and user embeddings like a
//! two-tower model's, a FAISS Flat index, top-k for every user, a few results and the timings.

use anyhow::Result;
use clap::Args;
use std::time::Instant;
use vecindex::synth::{clustered, Rng};
use vecindex::{builder_factory, Config, Vectors};

#[derive(Args)]
pub struct DemoArgs {
    /// Number of items.
    #[arg(long, default_value_t = 100_000)]
    pub items: usize,
    /// Number of users (queries).
    #[arg(long, default_value_t = 1_000)]
    pub users: usize,
    /// Embedding dimension.
    #[arg(long, default_value_t = 64)]
    pub dim: usize,
    /// Results per user.
    #[arg(short = 'k', long = "top-k", default_value_t = 10)]
    pub k: usize,
    /// Metric: IP (two-tower scores) or L2.
    #[arg(long, default_value = "IP")]
    pub metric: String,
}

pub fn run(a: DemoArgs) -> Result<()> {
    anyhow::ensure!(
        a.items > 0 && a.users > 0 && a.dim > 0,
        "--items, --users and --dim must be positive"
    );
    let t = Instant::now();
    // Items: 200 topics of Zipf-distributed popularity. Users: each a noisy copy of one item
    // they liked, so we can check that item comes back.
    let (items, _) = clustered(a.items, a.dim, 200, 42);
    let mut rng = Rng::new(7);
    let liked: Vec<usize> = (0..a.users).map(|_| rng.below(a.items)).collect();
    let mut users = Vec::with_capacity(a.users * a.dim);
    for &i in &liked {
        for &x in items.view().row(i) {
            users.push(x + 0.05 * rng.normal() as f32);
        }
    }
    let users = Vectors::new(users, a.dim)?;
    println!(
        "data:   {} items and {} users, d={} (clustered synthetic embeddings) in {:.2}s",
        a.items,
        a.users,
        a.dim,
        t.elapsed().as_secs_f64()
    );

    let config = Config::new()
        .set("index_type", "Flat")
        .set("metric", &a.metric);
    let builder = builder_factory("faiss", &config)?;
    let t = Instant::now();
    let indexer = builder.from_vectors(items)?;
    println!(
        "build:  faiss Flat ({}) over {} items in {:.3}s",
        indexer.metric(),
        indexer.len(),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let res = indexer.query(users.view(), a.k)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "query:  top-{} for {} users in {:.3}s ({:.0} users/s, {} threads)",
        a.k,
        a.users,
        secs,
        a.users as f64 / secs.max(1e-9),
        rayon::current_num_threads()
    );
    let found = liked
        .iter()
        .enumerate()
        .filter(|(u, &i)| res.ids_row(*u).contains(&(i as i64)))
        .count();
    println!(
        "check:  the item each user was made from is in their top-{} for {}/{} users",
        a.k, found, a.users
    );
    let order = if indexer.higher_is_better() {
        "larger is better"
    } else {
        "smaller is better"
    };
    println!("results ({}, {order}):", indexer.metric());
    for u in 0..a.users.min(3) {
        let pairs: Vec<String> = res
            .ids_row(u)
            .iter()
            .zip(res.distances_row(u))
            .take(5)
            .map(|(i, d)| format!("{i} ({d:.3})"))
            .collect();
        println!(
            "  user {u}: {}{}",
            pairs.join(", "),
            if a.k > 5 { ", ..." } else { "" }
        );
    }
    Ok(())
}
