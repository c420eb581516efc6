//! Command-line arguments (clap). Global options locate the node and the configuration; each
//! subcommand has its own `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tahoe-jobs",
    version,
    about = "Scheduled, resumable, budgeted background jobs for a Tahoe-LAFS node"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The Tahoe-LAFS node directory (like `tahoe -d`); jobs are read from NODEDIR/tahoe-jobs.cfg.
    #[arg(
        short = 'd',
        long = "node-directory",
        global = true,
        value_name = "NODEDIR"
    )]
    pub node_dir: Option<PathBuf>,
    /// An optional TOML file layered above NODEDIR/tahoe-jobs.cfg.
    #[arg(long = "config", global = true, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Set one configuration value, above every other source: --set backup.b1.frequency=1d
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE (for example backup.b1.frequency=1d)"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the effective configuration with the source of every value.
    Config,
    /// Run the daemon in the foreground: jobs run on their schedules until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Back up SOURCE to ALIAS:PATH once, like `tahoe backup` but concurrent and resumable.
    Backup(crate::commands::backup::BackupArgs),
    /// Check (and with --repair, repair) every object below ALIAS:PATH, like `tahoe deep-check`.
    Check(crate::commands::check::CheckArgs),
    /// Remove old archives from ALIAS:PATH/Archives by a retention policy (--keep-daily 7 ...),
    /// like `restic forget`; --dry-run prints the plan only.
    Prune(crate::commands::prune::PruneArgs),
    /// Show the running daemon's jobs: state, window, progress, estimates, errors.
    Status(crate::commands::status::StatusArgs),
    /// Pause a job in the running daemon (its task stops; `--for 2h` resumes by itself).
    Pause(crate::commands::pause::PauseArgs),
    /// Lift a job's pause in the running daemon.
    Resume(crate::commands::resume::ResumeArgs),
    /// Run a job now in the running daemon (at once with --ignore-window).
    Start(crate::commands::start::StartArgs),
    /// Print the address of the daemon's private control page (a secret: keep it to yourself).
    ControlUrl,
    /// Print the tahoe.cfg lines that route the node's storage traffic through the shaping
    /// proxy, and check that it really flows there (exit 0 when verified, 1 otherwise).
    Shaping(crate::commands::shaping::ShapingArgs),
    /// Check what a new set-up usually gets wrong (node, storage servers, aliases,
    /// configuration, state directory, shaping) and say how to fix each (exit 0 when all is
    /// well, 1 otherwise).
    Doctor(crate::commands::doctor::DoctorArgs),
    /// Print the shell completion script for bash, zsh or fish (also elvish, powershell).
    Completions(crate::commands::completions::CompletionsArgs),
    /// Print the manual page (roff): tahoe-jobs man | man -l -
    Man(crate::commands::man::ManArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long)]
    pub json_logs: bool,
}
