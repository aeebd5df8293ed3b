//! `vecindex`: the command-line face of the vecindex library. A thin layer: parse arguments,
//! call the library's public API, show progress, and turn errors into one line and exit code 1.
//!
//! Modules depend one way: `args` names every subcommand's arguments; `commands` (build, query,
//! info, collections), `bench`, `eval` and `demo` run them over `input` (files in) and
//! `progress`; `bench` reports through `report` rows, which `plot` charts.

mod args;
mod bench;
mod commands;
mod demo;
mod eval;
mod input;
mod plot;
mod progress;
mod report;
mod rss;
mod signals;

use clap::Parser;

fn main() {
    signals::remove_unfinished_saves_on_signal();
    let args = args::Cli::parse();
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

fn run(args: args::Cli) -> anyhow::Result<()> {
    if let Some(t) = args.threads {
        anyhow::ensure!(t >= 1, "--threads must be at least 1");
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot set up {t} threads: {e}"))?;
    }
    match args.command {
        args::Command::Build(a) => commands::build(a),
        args::Command::Query(a) => commands::query(a),
        args::Command::Info(a) => commands::info(a),
        args::Command::Demo(a) => demo::run(a),
        args::Command::Eval(a) => eval::run(a),
        args::Command::Bench(a) => bench::run(a),
        args::Command::Collections(a) => commands::collections(a),
    }
}
