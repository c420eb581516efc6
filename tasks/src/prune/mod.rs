//! The prune task: removes old archives from a backup target's `Archives/` by a retention
//! policy (restic's `forget` rules), so that `Archives/` does not grow forever.
//!
//! - [`policy`]: which archives stay and why, as a pure function;
//! - [`params`]: the `[prune]` keys.
//!
//! A run lists `Archives/` and `Latest`, plans, and unlinks the archives the plan removes,
//! oldest first, one at a time (each unlink is one change of the `Archives` directory, so a stop
//! between two leaves a consistent directory). It keeps no state: the next run plans again over
//! what is left, and the plan over what a plan kept removes nothing more.

pub mod params;
pub mod policy;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tahoe_jobs_config::JobConfig;
use tahoe_jobs_engine::{Outcome, Task, TaskContext, TaskError};

pub use params::{PruneParams, RULE_KEYS};
pub use policy::{archive_time, plan, Policy, Reason, Verdict};

use crate::backup::layout::{ARCHIVES, LATEST};
use crate::tahoe::{Aliases, ClientOptions, SharedClientOptions, TahoeClient, TahoeError};

/// Hears about a run as it happens (names of archives only, never capabilities).
pub trait PruneObserver: Send + Sync {
    /// An archive was unlinked.
    fn removed(&self, _name: &str) {}
}

/// The observer that hears nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl PruneObserver for Quiet {}

/// How to run.
pub struct PruneOptions<'a> {
    /// The options of the requests to the node.
    pub client: ClientOptions,
    /// Plan only: remove nothing.
    pub dry_run: bool,
    /// Hears of every archive removed.
    pub observer: &'a dyn PruneObserver,
}

/// What a run decided and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Every entry of `Archives/`, newest first, then the entries that are not archives.
    pub verdicts: Vec<Verdict>,
    /// The archives unlinked by this run.
    pub removed: Vec<String>,
    /// The stop signal fired before every planned removal was made.
    pub stopped: bool,
}

impl PruneReport {
    /// One line per entry: `keep    2026-01-10_12:00:00Z  (last, daily)` or
    /// `remove  2026-01-03_12:00:00Z` (`would remove` when nothing was to be removed).
    pub fn lines(&self, dry_run: bool) -> Vec<String> {
        let width = self
            .verdicts
            .iter()
            .map(|v| v.name.len())
            .max()
            .unwrap_or(0);
        self.verdicts
            .iter()
            .map(|v| {
                if v.kept() {
                    let why: Vec<String> = v.keep.iter().map(ToString::to_string).collect();
                    format!("keep          {:width$}  ({})", v.name, why.join(", "))
                } else if dry_run {
                    format!("would remove  {}", v.name)
                } else if self.removed.contains(&v.name) {
                    format!("removed       {}", v.name)
                } else {
                    format!("to remove     {} (not yet: stopped)", v.name)
                }
            })
            .collect()
    }

    /// `kept K, removed R of N archives` and the entries that are not archives.
    pub fn summary(&self) -> String {
        let archives = self.verdicts.iter().filter(|v| v.time.is_some()).count();
        let kept = self
            .verdicts
            .iter()
            .filter(|v| v.time.is_some() && v.kept())
            .count();
        let others = self.verdicts.len() - archives;
        let mut line = format!(
            "{archives} archives: {kept} kept, {} removed",
            self.removed.len()
        );
        if others > 0 {
            line.push_str(&format!(
                "; {others} other entr{} left alone",
                if others == 1 { "y" } else { "ies" }
            ));
        }
        line
    }
}

/// Plans and (unless `dry_run`) removes. Fails before removing anything when the target or
/// its `Archives` cannot be read; a target with no `Archives` has nothing to prune.
pub async fn run_prune(
    node_dir: &Path,
    params: &PruneParams,
    options: &PruneOptions<'_>,
    ctx: &TaskContext,
) -> Result<PruneReport, TahoeError> {
    let (root, path) = Aliases::read(node_dir)?.resolve(&params.target)?;
    let client = TahoeClient::from_node_dir(node_dir, &options.client)?;
    let target = client.list(&root, &path).await?;
    let Some(archives) = target.children.get(ARCHIVES) else {
        return Ok(PruneReport {
            verdicts: Vec::new(),
            removed: Vec::new(),
            stopped: false,
        });
    };
    let archives_cap = match (&archives.rw_cap, options.dry_run) {
        (Some(cap), _) => cap.clone(),
        (None, true) => archives
            .ro_cap
            .clone()
            .ok_or_else(|| TahoeError::Protocol("Archives has no capability".into()))?,
        (None, false) => return Err(TahoeError::NotWritable(format!("{path}/{ARCHIVES}"))),
    };
    let latest = target
        .children
        .get(LATEST)
        .and_then(|c| c.ro_cap.clone().or_else(|| c.rw_cap.clone()));
    let listing = client.list(&archives_cap, "").await?;
    let names: Vec<String> = listing.children.keys().cloned().collect();
    let latest_names: Vec<String> = listing
        .children
        .iter()
        .filter(|(_, child)| {
            let cap = child.ro_cap.as_ref().or(child.rw_cap.as_ref());
            matches!((cap, &latest), (Some(c), Some(l)) if c.expose() == l.expose())
        })
        .map(|(name, _)| name.clone())
        .collect();
    let verdicts = plan(&names, &latest_names, &params.policy(), ctx.timezone());
    let mut report = PruneReport {
        verdicts,
        removed: Vec::new(),
        stopped: false,
    };
    announce(&report, options.dry_run, ctx);
    if options.dry_run {
        return Ok(report);
    }
    let doomed: Vec<String> = report
        .verdicts
        .iter()
        .rev()
        .filter(|v| !v.kept())
        .map(|v| v.name.clone())
        .collect();
    ctx.progress().set_estimate("removed", doomed.len() as u64);
    for name in doomed {
        if ctx.stop().is_stopped() {
            report.stopped = true;
            break;
        }
        let unlinked = tokio::select! {
            _ = ctx.stop().stopped() => None,
            result = client.unlink(&archives_cap, "", &name) => Some(result),
        };
        match unlinked {
            None => {
                report.stopped = true;
                break;
            }
            // Gone already (a run stopped after the node had done it, or a user's `tahoe unlink`).
            Some(Ok(())) | Some(Err(TahoeError::NoSuchChild(_))) => {}
            Some(Err(e)) => return Err(e),
        }
        tracing::info!(job = ctx.job_id(), "prune: removed Archives/{name}");
        ctx.progress().add("removed", 1);
        options.observer.removed(&name);
        report.removed.push(name);
    }
    Ok(report)
}

/// Logs the plan and puts it in the progress; warns once per entry that is not an archive
/// (its name may be the user's own: it goes to the private warnings, not the log).
fn announce(report: &PruneReport, dry_run: bool, ctx: &TaskContext) {
    let archives = report.verdicts.iter().filter(|v| v.time.is_some());
    let kept = archives.clone().filter(|v| v.kept()).count() as u64;
    ctx.progress()
        .set("archives", archives.clone().count() as u64);
    ctx.progress().set("kept", kept);
    for v in report.verdicts.iter().filter(|v| v.time.is_some()) {
        let why: Vec<String> = v.keep.iter().map(ToString::to_string).collect();
        let action = match (v.kept(), dry_run) {
            (true, _) => format!("keep ({})", why.join(", ")),
            (false, true) => "would remove".to_string(),
            (false, false) => "remove".to_string(),
        };
        tracing::info!(
            job = ctx.job_id(),
            "prune plan: Archives/{}: {action}",
            v.name
        );
    }
    for v in report.verdicts.iter().filter(|v| v.time.is_none()) {
        let key = format!("warned:{}", v.name);
        if ctx.store().get(&key).ok().flatten().is_none() {
            ctx.progress().warn(
                ctx.now(),
                format!(
                    "Archives/{} is not a backup time stamp: left alone (it is yours)",
                    v.name
                ),
            );
            let _ = ctx.store().insert(key, &[]);
        }
    }
    tracing::info!(job = ctx.job_id(), "prune plan: {}", report.summary());
}

/// A `[prune]` job, as the engine runs it.
#[derive(Debug)]
pub struct PruneTask {
    node_dir: PathBuf,
    params: PruneParams,
    client: ClientOptions,
}

impl PruneTask {
    /// The task that prunes `params`'s target through the node in `node_dir`, with the request
    /// options `client`.
    pub fn new(node_dir: &Path, params: PruneParams, client: ClientOptions) -> PruneTask {
        PruneTask {
            node_dir: node_dir.to_path_buf(),
            params,
            client,
        }
    }
}

#[async_trait]
impl Task for PruneTask {
    async fn run(&mut self, ctx: &TaskContext) -> Result<Outcome, TaskError> {
        let options = PruneOptions {
            client: self.client.clone(),
            dry_run: false,
            observer: &Quiet,
        };
        let report = run_prune(&self.node_dir, &self.params, &options, ctx).await?;
        if report.stopped {
            return Ok(Outcome::StoppedEarly);
        }
        tracing::info!(job = ctx.job_id(), "prune done: {}", report.summary());
        Ok(Outcome::Completed)
    }
}

/// Registers the `prune` task type; each task takes the client options `client` holds when it
/// is built.
pub fn register(
    registry: &mut tahoe_jobs_engine::Registry,
    node_dir: &Path,
    client: SharedClientOptions,
) {
    let node_dir = node_dir.to_path_buf();
    registry.register("prune", move |_job: &JobConfig, keys: &PruneParams| {
        Ok(Box::new(PruneTask::new(&node_dir, keys.clone(), client.get())) as Box<dyn Task>)
    });
}

/// Runs one prune outside the engine (the `tahoe-jobs prune` command) in time zone `timezone`.
pub async fn prune_once(
    node_dir: &Path,
    params: &PruneParams,
    options: &PruneOptions<'_>,
    timezone: jiff::tz::TimeZone,
) -> Result<PruneReport, TahoeError> {
    let db = sled::Config::new()
        .temporary(true)
        .open()
        .map_err(|e| TahoeError::Protocol(format!("cannot open a scratch store: {e}")))?;
    let store = db
        .open_tree("prune.oneshot")
        .map_err(|e| TahoeError::Protocol(format!("cannot open a scratch store: {e}")))?;
    let ctx = TaskContext::standalone("prune.oneshot", store).with_timezone(timezone);
    run_prune(node_dir, params, options, &ctx).await
}
