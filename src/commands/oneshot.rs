//! What the one-shot commands (`tahoe-jobs backup` and `check`) share: their `--timeout`,
//! `--concurrency` and target arguments, the client options for their requests (`--timeout`,
//! else `[jobs] node.timeout` from the configuration), the async runtime a task runs on, and
//! printing their result lines.

use std::future::Future;
use std::io::Write;

use anyhow::Context;
use tahoe_jobs_config::Target;
use tahoe_jobs_tasks::tahoe::ClientOptions;

use crate::cli::GlobalArgs;

/// A `--timeout` value: a duration above zero.
pub fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<tahoe_jobs_config::HumanDuration>()
        .map(tahoe_jobs_config::HumanDuration::as_duration)
        .map_err(|_| format!("{s:?} is not a duration above zero, such as 30s or 10min"))
}

/// A `--concurrency` value: 1 to 64.
pub fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=64) => Ok(n),
        _ => Err(format!("{s:?} is not a number from 1 to 64")),
    }
}

/// `ALIAS:PATH`, a directory capability, or (as `tahoe backup` and `tahoe deep-check` allow) a
/// bare path below the default `tahoe:` alias.
pub fn parse_target(s: &str) -> anyhow::Result<Target> {
    if !s.contains(':') {
        return Ok(Target::Alias {
            alias: tahoe_jobs_tasks::tahoe::DEFAULT_ALIAS.into(),
            path: s.trim_matches('/').to_string(),
        });
    }
    tahoe_jobs_config::parse_target(s).map_err(|e| anyhow::anyhow!("bad target: {e}"))
}

/// The client options of a one-shot command: its request timeout is `--timeout` (`flag`) when
/// given, else `[jobs] node.timeout` as the daemon would use it (NODEDIR/tahoe-jobs.cfg,
/// `--config`, the environment, `--set`).
pub fn client_options(
    global: &GlobalArgs,
    flag: Option<std::time::Duration>,
) -> anyhow::Result<ClientOptions> {
    let request_timeout = match flag {
        Some(timeout) => timeout,
        None => {
            let config = super::load_config(global).context(
                "cannot read the request timeout ([jobs] node.timeout) from the configuration; \
                 fix it, or give --timeout",
            )?;
            config.daemon.node_timeout
        }
    };
    Ok(ClientOptions { request_timeout })
}

/// The runtime task work runs on, in the daemon and in the one-shot commands alike: one
/// worker thread per core (see [`tahoe_jobs_engine::task_runtime`]).
pub fn task_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tahoe_jobs_engine::task_runtime().context("cannot start the async runtime")
}

/// Runs `task` to its end on the task runtime, as the daemon runs tasks.
pub fn block_on<F: Future>(task: F) -> anyhow::Result<F::Output> {
    Ok(task_runtime()?.block_on(task))
}

/// The state store's cache for a one-shot command's database: `[jobs] cache_size`, as the
/// daemon uses it, or its default when the configuration cannot be read (the command's own
/// flags are all it needs).
pub fn cache_size(global: &GlobalArgs) -> u64 {
    super::load_config(global)
        .map(|config| config.daemon.cache_size)
        .unwrap_or(tahoe_jobs_config::DEFAULT_CACHE_SIZE)
}

/// Prints a command's result, one line each, to stdout.
pub fn print_lines(lines: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
