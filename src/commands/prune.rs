//! `tahoe-jobs prune [--dry-run] [--keep-* N]... ALIAS:PATH`: applies a retention policy to a
//! backup target's `Archives/` once, printing each entry with keep (and which rules) or remove.

use anyhow::Context;
use clap::Args;
use tahoe_jobs_config::Target;
use tahoe_jobs_tasks::prune::{prune_once, PruneOptions, PruneParams, Quiet, RULE_KEYS};

use super::oneshot::{block_on, client_options, parse_target, parse_timeout, print_lines};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Print the plan and remove nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Keep the N newest archives.
    #[arg(long = "keep-last", value_name = "N", default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest archive of each of the last N hours that have one.
    #[arg(long = "keep-hourly", value_name = "N", default_value_t = 0)]
    pub keep_hourly: u32,
    /// Keep the newest archive of each of the last N days that have one.
    #[arg(long = "keep-daily", value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep the newest archive of each of the last N ISO weeks that have one.
    #[arg(long = "keep-weekly", value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,
    /// Keep the newest archive of each of the last N months that have one.
    #[arg(long = "keep-monthly", value_name = "N", default_value_t = 0)]
    pub keep_monthly: u32,
    /// Keep the newest archive of each of the last N years that have one.
    #[arg(long = "keep-yearly", value_name = "N", default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep every archive newer than DURATION before the newest one (10d, 2weeks, 36h).
    #[arg(long = "keep-within", value_name = "DURATION", value_parser = parse_timeout)]
    pub keep_within: Option<std::time::Duration>,
    /// How long the node may stay silent on one request. Default: [jobs] node.timeout.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// The backup target: ALIAS:PATH or a directory capability; its Archives/ are pruned.
    #[arg(value_name = "ALIAS:PATH")]
    pub target: String,
}

pub fn run(global: &GlobalArgs, args: &PruneArgs) -> anyhow::Result<i32> {
    let node_dir = super::node_dir(global)?;
    let target: Target = parse_target(&args.target)?;
    let params = PruneParams {
        target,
        keep_last: args.keep_last,
        keep_hourly: args.keep_hourly,
        keep_daily: args.keep_daily,
        keep_weekly: args.keep_weekly,
        keep_monthly: args.keep_monthly,
        keep_yearly: args.keep_yearly,
        keep_within: args.keep_within,
    };
    if params.policy().keeps_nothing() {
        let flags: Vec<String> = RULE_KEYS
            .iter()
            .map(|k| format!("--{}", k.replace('_', "-")))
            .collect();
        anyhow::bail!(
            "no rule given, so every archive but the newest would be removed; give at least one of {}",
            flags.join(", ")
        );
    }
    let client = client_options(global, args.timeout)?;
    // Days and months are counted in [jobs] timezone, as the daemon counts them.
    let timezone = match super::load_config(global) {
        Ok(config) => config.daemon.timezone,
        Err(_) => tahoe_jobs_config::jiff::tz::TimeZone::system(),
    };
    let options = PruneOptions {
        client,
        dry_run: args.dry_run,
        observer: &Quiet,
    };
    let report = block_on(prune_once(&node_dir, &params, &options, timezone))?
        .with_context(|| format!("cannot prune {}", params.target))?;
    print_lines(report.lines(args.dry_run))?;
    print_lines([report.summary()])?;
    Ok(0)
}
