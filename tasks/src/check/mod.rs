//! The check task: keeps a grid's files healthy by walking a tree itself, one `t=check` per
//! object (verifying, repairing and renewing leases as the job says), so that it can stop when
//! its window closes and resume where it stopped, within the job's budgets.
//!
//! - [`db`]: the traversal and the per-object records in the job's sled tree;
//! - [`run`]: one run of a pass; [`inspect`]: one object's check, repair and rebalance;
//! - [`policy`]: the decisions (recheck, repair, rebalance, budget requests) as plain functions;
//! - [`summary`]: the counts, and `tahoe deep-check`'s summary lines;
//! - [`direct`]: immutable objects checked at the storage servers (`data_path = direct`);
//! - [`caps`], [`listing`], [`record`], [`rebalance`]: the pieces those build on.

pub mod caps;
pub mod db;
pub mod direct;
pub mod inspect;
pub mod listing;
pub mod params;
pub mod policy;
pub mod rebalance;
pub mod record;
pub mod run;
pub mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data_path::{DataPath, PathUsed};
use async_trait::async_trait;
use tahoe_jobs_config::{JobConfig, NodeFacts};
use tahoe_jobs_engine::limits::expansion::Coding;
use tahoe_jobs_engine::{Outcome, Task, TaskContext, TaskError};

pub use db::{CheckDb, DbError};
pub use params::CheckParams;
pub use record::{ObjectRecord, Rebalance};
pub use run::PassEnd;
pub use summary::{counter, CheckSummary};

use crate::tahoe::error::unreachable_node_error;
use crate::tahoe::{Aliases, ClientOptions, SharedClientOptions, TahoeClient, TahoeError};
use inspect::Inspector;
use run::Pass;

/// Hears about a run as it happens: display paths (never capabilities) and records.
pub trait CheckObserver: Send + Sync {
    /// An object was checked; `record` says what was found and done.
    fn checked(&self, _path: &str, _record: &ObjectRecord) {}
    /// A literal object (its data is in its cap) was counted as healthy without a request.
    fn literal(&self, _path: &str) {}
    /// Something went wrong with one object, or it is not healthy.
    fn warning(&self, _message: &str) {}
}

/// The observer that hears nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl CheckObserver for Silent {}

/// Objects visited at once through the node unless told otherwise. The node checks one object
/// at a time (it is single-threaded), so a few requests in flight only hide the round trips.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Objects visited at once on the direct path unless told otherwise. Each immutable object
/// costs one share listing per server, which the servers answer in parallel: measured behind a
/// 20 ms relay on a 3-of-5 grid (docs/benchmarks.md), 16 brought a pass to within 1.03x of the
/// servers' own floor where 4 left it 1.7x above, and 64 was no faster.
pub const DIRECT_CONCURRENCY: usize = 16;

/// How a check runs, beyond its job parameters.
#[derive(Clone)]
pub struct CheckOptions {
    /// The options of the requests to the node.
    pub client: ClientOptions,
    /// Hears of every object checked and every warning; [`Silent`] by default.
    pub observer: Arc<dyn CheckObserver>,
    /// Objects visited at once (at least 1); `None`: [`DIRECT_CONCURRENCY`] on the direct
    /// path, [`DEFAULT_CONCURRENCY`] through the node.
    pub concurrency: Option<usize>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            client: ClientOptions::default(),
            observer: Arc::new(Silent),
            concurrency: None,
        }
    }
}

impl std::fmt::Debug for CheckOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckOptions")
            .field("client", &self.client)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// Why a check run failed. The records of what was done stay; the next run resumes.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(
        "the check target {target} does not exist on the grid: fix the job's target or create it"
    )]
    /// The node has no object at the job's target.
    TargetMissing {
        /// The job's target, as written (a capability target is redacted).
        target: String,
    },
    /// The node failed while the run was doing `during`.
    #[error("{during}: {source}")]
    Node {
        /// What the run was doing, e.g. looking up the target.
        during: String,
        /// The node's error.
        source: TahoeError,
    },
    /// The node failed.
    #[error(transparent)]
    Tahoe(#[from] TahoeError),
    /// The job's check records could not be read or written.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The node's `tahoe.cfg` could not be read or gives an unusable encoding.
    #[error("cannot read the node's settings: {0}")]
    NodeFacts(String),
}

impl CheckError {
    fn tahoe(&self) -> Option<&TahoeError> {
        match self {
            CheckError::Node { source, .. } => Some(source),
            CheckError::Tahoe(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CheckError> for TaskError {
    fn from(e: CheckError) -> TaskError {
        if let Some(waiting) = unreachable_node_error(&e, e.tahoe()) {
            return waiting;
        }
        match e {
            CheckError::Tahoe(t) => t.into(),
            CheckError::Db(DbError::Sled(s)) => TaskError::Store(s),
            CheckError::NodeFacts(_) => TaskError::Config(e.to_string()),
            other => TaskError::Failed(other.to_string()),
        }
    }
}

/// A `[check]` job, as the engine runs it.
#[derive(Debug)]
pub struct CheckTask {
    node_dir: PathBuf,
    params: CheckParams,
    options: CheckOptions,
}

impl CheckTask {
    /// The task that checks `params`'s target through the node in `node_dir`.
    pub fn new(node_dir: &Path, params: CheckParams, options: CheckOptions) -> CheckTask {
        CheckTask {
            node_dir: node_dir.to_path_buf(),
            params,
            options,
        }
    }

    /// Builds the task for a `[check]` job; its requests to the node use `client`.
    pub fn from_job(
        node_dir: &Path,
        job: &JobConfig,
        client: ClientOptions,
    ) -> Result<CheckTask, TaskError> {
        match job.params.get::<CheckParams>() {
            Some(p) => Ok(CheckTask::new(
                node_dir,
                p.clone(),
                CheckOptions {
                    client,
                    ..CheckOptions::default()
                },
            )),
            _ => Err(TaskError::Config(format!(
                "job {} is not a check job",
                job.id()
            ))),
        }
    }
}

#[async_trait]
impl Task for CheckTask {
    async fn run(&mut self, ctx: &TaskContext) -> Result<Outcome, TaskError> {
        match run_check(&self.node_dir, &self.params, &self.options, ctx).await? {
            PassEnd::Completed(summary) => {
                tracing::info!(
                    job = ctx.job_id(),
                    "check pass done: {}",
                    summary
                        .lines(self.params.repair, happy_of(&self.node_dir))
                        .join(";")
                );
                Ok(Outcome::Completed)
            }
            PassEnd::Stopped(_) => Ok(Outcome::StoppedEarly),
        }
    }
}

fn happy_of(node_dir: &Path) -> u32 {
    NodeFacts::read(node_dir).map_or(0, |f| f.encoding.happy)
}

/// Registers the `check` task type. Each task takes the client options `client` holds when it
/// is built, so a reloaded `[jobs] node.timeout` applies from the next run on.
pub fn register(
    registry: &mut tahoe_jobs_engine::Registry,
    node_dir: &Path,
    client: SharedClientOptions,
) {
    let node_dir = node_dir.to_path_buf();
    registry.register("check", move |job, _: &CheckParams| {
        Ok(Box::new(CheckTask::from_job(&node_dir, job, client.get())?) as Box<dyn Task>)
    });
}

/// Runs (or resumes) a pass of `params` with the engine's context.
pub async fn run_check(
    node_dir: &Path,
    params: &CheckParams,
    options: &CheckOptions,
    ctx: &TaskContext,
) -> Result<PassEnd, CheckError> {
    let facts = NodeFacts::read(node_dir).map_err(|e| CheckError::NodeFacts(e.to_string()))?;
    let enc = facts.encoding;
    let node_coding = Coding::new(enc.needed, enc.total).ok_or_else(|| {
        CheckError::NodeFacts(format!(
            "shares.needed = {} and shares.total = {} in tahoe.cfg are not a usable encoding",
            enc.needed, enc.total
        ))
    })?;
    let client = TahoeClient::from_node_dir(node_dir, &options.client)?;
    let root = Aliases::read(node_dir)?.resolve(&params.target)?;
    let direct = direct_path(node_dir, params, options, ctx);
    let direct_used = direct.is_some();
    let pass = Pass {
        inspector: Inspector {
            client,
            verify: params.verify,
            repair: params.repair,
            add_lease: params.add_lease,
            happy: enc.happy,
            node_coding,
            direct,
        },
        target: params.target.clone(),
        root,
        recheck_after: params.recheck_after,
        observer: options.observer.clone(),
        concurrency: options
            .concurrency
            .unwrap_or(if direct_used {
                DIRECT_CONCURRENCY
            } else {
                DEFAULT_CONCURRENCY
            })
            .max(1),
    };
    pass.run(ctx).await
}

/// The direct data path if the job asks for it and the node's servers speak the storage
/// protocol; otherwise `None` (the node checks everything), with one warning when the job
/// asked for `direct`. The run's progress says which (see [`PathUsed`]).
fn direct_path(
    node_dir: &Path,
    params: &CheckParams,
    options: &CheckOptions,
    ctx: &TaskContext,
) -> Option<Arc<direct::DirectChecker>> {
    let (direct, used) = match params.data_path {
        DataPath::Node => (None, PathUsed::Node),
        // Verifying downloads every share: only the node does that.
        DataPath::Direct if params.verify => (
            None,
            PathUsed::Fallback("verify = true: shares are verified by the node".into()),
        ),
        DataPath::Direct => {
            match direct::DirectChecker::new(node_dir, params.add_lease, options.observer.clone()) {
                Ok(checker) => {
                    tracing::info!(
                        "check data path: direct (immutable objects at the storage servers)"
                    );
                    (Some(Arc::new(checker)), PathUsed::Direct)
                }
                Err(why) => {
                    let message =
                        format!("checking everything through the node instead of directly: {why}");
                    tracing::warn!("{message}");
                    options.observer.warning(&message);
                    ctx.progress().warn(ctx.now(), message);
                    (None, PathUsed::Fallback(why))
                }
            }
        }
    };
    used.show(ctx.progress());
    direct
}

/// Runs one whole pass outside the engine (the `tahoe-jobs check` command): no limits, nothing
/// stops it, every object is checked (`recheck_after` is ignored). `store` should be a fresh
/// tree: it holds the traversal.
pub async fn check_once(
    node_dir: &Path,
    params: &CheckParams,
    store: sled::Tree,
    options: &CheckOptions,
) -> Result<CheckSummary, CheckError> {
    let params = CheckParams {
        recheck_after: std::time::Duration::ZERO,
        ..params.clone()
    };
    let ctx = TaskContext::standalone("check.oneshot", store);
    match run_check(node_dir, &params, options, &ctx).await? {
        PassEnd::Completed(summary) | PassEnd::Stopped(summary) => Ok(summary),
    }
}

/// Where the one-shot command keeps its traversal: `NODEDIR/private/tahoe-jobs/oneshot-check`.
pub fn oneshot_db_dir(node_dir: &Path) -> PathBuf {
    node_dir
        .join("private")
        .join("tahoe-jobs")
        .join("oneshot-check")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_task_errors_without_caps() {
        let unreachable = CheckError::Node {
            during: "looking up b:x".into(),
            source: TahoeError::NodeUnreachable {
                url: "http://127.0.0.1:1/".into(),
                message: "refused".into(),
            },
        };
        assert!(matches!(
            TaskError::from(unreachable),
            TaskError::Unavailable { .. }
        ));
        let missing = CheckError::TargetMissing {
            target: "<capability>/x".into(),
        };
        assert!(matches!(TaskError::from(missing), TaskError::Failed(m) if !m.contains("URI:")));
        assert!(matches!(
            TaskError::from(CheckError::NodeFacts("x".into())),
            TaskError::Config(_)
        ));
    }
}
