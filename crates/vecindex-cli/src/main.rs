//! `vecindex`: the command-line face of the vecindex library. A thin layer: parse arguments,
//! call the library's public API, show progress, and turn errors into one line and exit code 1.

mod bench;
mod cli;
mod demo;
mod eval;
mod peer_bench;
mod plot;
mod progress;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Err(e) = run(args) {
        // One line: the error and its causes.
        let msg = e
            .chain()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}

fn run(args: cli::Cli) -> anyhow::Result<()> {
    if let Some(t) = args.threads {
        anyhow::ensure!(t >= 1, "--threads must be at least 1");
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot set up {t} threads: {e}"))?;
    }
    match args.command {
        cli::Command::Build(a) => cli::build(a),
        cli::Command::Query(a) => cli::query(a),
        cli::Command::Info(a) => cli::info(a),
        cli::Command::Demo(a) => demo::run(a),
        cli::Command::Eval(a) => eval::run(a),
        cli::Command::Bench(a) => bench::run(a),
        cli::Command::PeerBench(a) => peer_bench::run(*a),
        cli::Command::Collections(a) => cli::collections(a),
    }
}
