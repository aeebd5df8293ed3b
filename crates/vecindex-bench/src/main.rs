//! `peer-bench`: vecindex beside its peer libraries (faiss-cpu, annoy, hnswlib, pymilvus) on the
//! same data, in the same run, at the same thread count, printing the ratios. A developer tool:
//! it drives the Python peers in `crates/vecindex-bench/peers/` (`./scripts/bench.sh` installs
//! them), so it lives outside the `vecindex` product binary.
//!
//!     cargo run --release -p vecindex-bench -- hnsw --threads-list 1,2

mod peer_bench;
#[path = "../../vecindex-cli/src/rss.rs"]
mod rss;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "peer-bench",
    version,
    about = "vecindex beside its peers, same data, same run"
)]
struct Cli {
    /// Threads for vecindex's parallel steps (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(flatten)]
    args: peer_bench::PeerBenchArgs,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(t) = cli.threads {
        anyhow::ensure!(t >= 1, "--threads must be at least 1");
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot set up {t} threads: {e}"))?;
    }
    peer_bench::run(cli.args)
}
