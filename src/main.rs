//! The `tahoe-jobs` command: the daemon (`run`), one-shot commands (`backup`, `check`), the
//! configuration viewer (`config`), and clients of a running daemon's private API.

mod cli;
mod commands;
mod hooks;
mod logging;
mod web;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tahoe-jobs: {err:#}");
            1
        }
    };
    std::process::exit(code);
}
