//! `vecindex`: the command-line face of the vecindex library. A thin layer: parse arguments,
//! call the library's public API, show progress, and turn errors into one line and exit code 1.

mod bench;
mod cli;
mod demo;
mod eval;
mod plot;
mod progress;
mod rss;
mod signals;

use clap::Parser;

fn main() {
    signals::remove_unfinished_saves_on_signal();
    let args = cli::Cli::parse();
    if let Err(e) = run(args) {
        // One line: the error and its causes, each said once (the library's I/O errors already
        // include their OS cause in their own text).
        let mut msg = String::new();
        for cause in e.chain().map(|c| c.to_string()) {
            if !msg.contains(&cause) {
                if !msg.is_empty() {
                    msg.push_str(": ");
                }
                msg.push_str(&cause);
            }
        }
        // Control characters from a file (a malformed header, say) are shown escaped, never sent
        // to the terminal.
        let shown: String = msg
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        eprintln!("error: {shown}");
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
        cli::Command::Collections(a) => cli::collections(a),
    }
}
