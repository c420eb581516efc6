//! One module per subcommand; each returns the process exit code.

pub mod backup;
pub mod check;
pub mod client;
pub mod completions;
pub mod config;
pub mod control_url;
pub mod doctor;
pub mod man;
pub mod node_watch;
pub mod oneshot;
pub mod pause;
pub mod prune;
pub mod resume;
pub mod run;
pub mod shaping;
pub mod start;
pub mod status;

use std::path::{Path, PathBuf};

use anyhow::Context;
use tahoe_jobs_config::{Config, LoadOptions};
use tahoe_jobs_engine::Registry;
use tahoe_jobs_tasks::SharedClientOptions;

use crate::cli::{Cli, Command, GlobalArgs};

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Config => config::run(&cli.global),
        Command::Run(args) => run::run(&cli.global, &args),
        Command::Backup(args) => backup::run(&cli.global, &args),
        Command::Check(args) => check::run(&cli.global, &args),
        Command::Status(args) => status::run(&cli.global, &args),
        Command::Pause(args) => pause::run(&cli.global, &args),
        Command::Prune(args) => prune::run(&cli.global, &args),
        Command::Resume(args) => resume::run(&cli.global, &args),
        Command::Start(args) => start::run(&cli.global, &args),
        Command::ControlUrl => control_url::run(&cli.global),
        Command::Shaping(args) => shaping::run(&cli.global, &args),
        Command::Doctor(args) => doctor::run(&cli.global, &args),
        Command::Completions(args) => completions::run(&args),
        Command::Man(args) => man::run(&args),
    }
}

/// The node directory: `-d`, else `~/.tahoe` as the tahoe CLI does.
pub fn node_dir(global: &GlobalArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &global.node_dir {
        return Ok(dir.clone());
    }
    let home = std::env::var_os("HOME").context("HOME is not set: pass -d NODEDIR")?;
    Ok(PathBuf::from(home).join(".tahoe"))
}

/// Every task type this binary knows, bound to the node directory; their tasks talk to the node
/// with the options `client` holds when each is built (`[jobs] node.timeout`).
pub fn registry(node_dir: &Path, client: SharedClientOptions) -> Registry {
    let mut registry = Registry::new();
    tahoe_jobs_tasks::register_with(&mut registry, node_dir, client);
    registry
}

/// Loads the layered configuration for the given global options, accepting a section for every
/// registered task type.
pub fn load_config(global: &GlobalArgs) -> Result<Config, tahoe_jobs_config::ConfigError> {
    let node_dir = match node_dir(global) {
        Ok(d) => d,
        Err(_) => PathBuf::from(".tahoe"),
    };
    let task_types = registry(&node_dir, SharedClientOptions::default()).schemas();
    tahoe_jobs_config::load(&LoadOptions {
        node_dir,
        config_file: global.config_file.clone(),
        overrides: global.set.clone(),
        read_env: true,
        task_types,
    })
}
