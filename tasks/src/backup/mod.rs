//! The backup task: a node-side `tahoe backup` that leaves the same result on the grid, but
//! uploads concurrently, resumes where a stopped run left off, and skips unchanged trees fast.
//!
//! A run: check the source, make sure `<target>/Archives` exists, build the immutable tree
//! (`tree`) deciding every file and directory from the backupdb ([`backupdb`]), and only when
//! all of it is done link `Archives/<time>` and `Latest` ([`layout`]).

pub mod backupdb;
pub mod excludes;
pub mod keeper;
pub mod layout;
pub mod metadata;
pub mod params;
pub mod summary;
pub mod uploader;
pub mod walk;

mod run;
mod sink;
mod tree;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tahoe_jobs_config::JobConfig;
use tahoe_jobs_engine::{Outcome, Task, TaskContext, TaskError};

pub use backupdb::{BackupDb, DbError, LostName, RecheckPolicy, RunTotals};
pub use excludes::{ExcludeFileError, Excludes, VCS_PATTERNS};
pub use keeper::ShareKeeper;
pub use params::{
    BackupParams, DEFAULT_CONCURRENCY, DEFAULT_RECHECK_AFTER, DEFAULT_RECHECK_ALL_AFTER,
    DIRECT_CONCURRENCY,
};
pub use run::{run_backup, RunEnd};
pub use summary::{counter, BackupSummary};

use crate::tahoe::error::unreachable_node_error;
use crate::tahoe::{ClientOptions, SharedClientOptions, TahoeError};

/// What happened to one file, for an observer (`tahoe-jobs backup -v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    /// New or changed since it was uploaded: it was uploaded now.
    Uploaded,
    /// Unchanged since it was uploaded: its capability is used again.
    Reused,
    /// Uploaded, but it changed while being read.
    Changed,
}

/// What happened to one directory, for an observer (`tahoe-jobs backup -v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirAction {
    /// A new immutable directory was created for it.
    Created,
    /// The immutable directory created earlier for the same children is used again.
    Reused,
}

/// Hears about a run as it happens. Paths only: capabilities are never passed.
pub trait BackupObserver: Send + Sync {
    /// A file or directory was skipped, or something else the user should know.
    fn warning(&self, _message: &str) {}
    /// The file at `path` was uploaded or reused, as `action` says.
    fn file(&self, _path: &Path, _action: FileAction) {}
    /// The directory at `path` was created or reused, as `action` says.
    fn directory(&self, _path: &Path, _action: DirAction) {}
}

/// The observer that hears nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl BackupObserver for Silent {}

/// How a backup runs, beyond its job parameters (the re-check policy is one of those:
/// [`RecheckPolicy::of`] the job's `recheck_after` and `recheck_all_after`).
#[derive(Clone)]
pub struct BackupOptions {
    /// The options of the requests to the node.
    pub client: ClientOptions,
    /// Hears of every file and directory done and every warning; [`Silent`] by default.
    pub observer: Arc<dyn BackupObserver>,
    /// Keeps the partial shares of a run stopped mid-file alive until the next run (the
    /// daemon's, shared by its runs); `None` for a one-shot run, which nothing follows.
    pub keeper: Option<ShareKeeper>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            client: ClientOptions::default(),
            observer: Arc::new(Silent),
            keeper: None,
        }
    }
}

impl std::fmt::Debug for BackupOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupOptions")
            .field("client", &self.client)
            .field("keeper", &self.keeper)
            .finish_non_exhaustive()
    }
}

/// Why a backup run failed. `Latest` is never changed by a failed run.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The source directory does not exist.
    #[error("the source directory {path} does not exist (is its drive plugged in?); nothing was linked and Latest is unchanged")]
    SourceMissing {
        /// The job's source.
        path: PathBuf,
    },
    /// The source exists but is not a directory.
    #[error("the source {path} is not a directory")]
    SourceNotDirectory {
        /// The job's source.
        path: PathBuf,
    },
    /// The source directory could not be read (or made absolute).
    #[error("cannot read the source directory {path}: {message}")]
    SourceUnreadable {
        /// The job's source.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// The source directory is empty while the last completed run saw files in it.
    #[error("the source directory {path} is empty, but the last backup had {previous_files} files (is its drive plugged in?); nothing was linked and Latest is unchanged")]
    SourceEmpty {
        /// The job's source.
        path: PathBuf,
        /// The number of files the last completed run saw.
        previous_files: u64,
    },
    /// The source directory went away or was replaced by another during the run.
    #[error("the source directory {path} disappeared or was replaced during the backup (was its drive unplugged?); nothing was linked and Latest is unchanged")]
    SourceVanished {
        /// The job's source.
        path: PathBuf,
    },
    /// The exclude file could not be read.
    #[error(transparent)]
    Excludes(#[from] ExcludeFileError),
    /// The node failed while the run was doing `during`.
    #[error("{during}: {source}")]
    Node {
        /// What the run was doing, e.g. linking the new backup into the target.
        during: String,
        /// The node's error.
        source: TahoeError,
    },
    /// A direct upload to the storage servers failed (no cap or secret in its message).
    #[error("{during}: {source}")]
    Direct {
        /// What the run was doing.
        during: String,
        /// The upload's error.
        source: tahoe_jobs_lafs::upload::UploadError,
    },
    /// The node failed.
    #[error(transparent)]
    Tahoe(#[from] TahoeError),
    /// The backup database could not be read or written.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Something that should not happen did: a worker task failed, a run halted without an
    /// error, a one-shot run was stopped.
    #[error("internal error: {0}")]
    Internal(String),
}

impl BackupError {
    fn tahoe(&self) -> Option<&TahoeError> {
        match self {
            BackupError::Node { source, .. } => Some(source),
            BackupError::Tahoe(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BackupError> for TaskError {
    fn from(e: BackupError) -> TaskError {
        if let Some(waiting) = unreachable_node_error(&e, e.tahoe()) {
            return waiting;
        }
        match e {
            BackupError::Tahoe(t) => t.into(),
            // sled refuses every write once one failed, so say what to do, not just why.
            BackupError::Db(DbError::Sled(sled::Error::Io(io))) => TaskError::Failed(format!(
                "cannot write the state store: {io} (is the state directory's disk full?); \
                     after freeing space, restart tahoe-jobs: the store takes no more writes \
                     until it is reopened"
            )),
            BackupError::Db(DbError::Sled(s)) => TaskError::Store(s),
            BackupError::Excludes(_) => TaskError::Config(e.to_string()),
            other => TaskError::Failed(other.to_string()),
        }
    }
}

/// A `[backup]` job, as the engine runs it.
#[derive(Debug)]
pub struct BackupTask {
    node_dir: PathBuf,
    params: BackupParams,
    options: BackupOptions,
}

impl BackupTask {
    /// The task that backs up `params`'s source to its target through the node in `node_dir`.
    pub fn new(node_dir: &Path, params: BackupParams, options: BackupOptions) -> BackupTask {
        BackupTask {
            node_dir: node_dir.to_path_buf(),
            params,
            options,
        }
    }

    /// Builds the task for a `[backup]` job; its requests to the node use `client`.
    pub fn from_job(
        node_dir: &Path,
        job: &JobConfig,
        client: ClientOptions,
    ) -> Result<BackupTask, TaskError> {
        match job.params.get::<BackupParams>() {
            Some(p) => Ok(BackupTask::new(
                node_dir,
                p.clone(),
                BackupOptions {
                    client,
                    ..BackupOptions::default()
                },
            )),
            _ => Err(TaskError::Config(format!(
                "job {} is not a backup job",
                job.id()
            ))),
        }
    }
}

#[async_trait]
impl Task for BackupTask {
    async fn run(&mut self, ctx: &TaskContext) -> Result<Outcome, TaskError> {
        match run_backup(&self.node_dir, &self.params, &self.options, ctx).await {
            Ok(RunEnd::Completed(summary)) => {
                tracing::info!(job = ctx.job_id(), "backup done:{}", summary.summary_line());
                Ok(Outcome::Completed)
            }
            Ok(RunEnd::Stopped(_)) => Ok(Outcome::StoppedEarly),
            Err(e) => Err(e.into()),
        }
    }
}

/// Registers the `backup` task type. Each task takes the client options `client` holds when
/// it is built, so a reloaded `[jobs] node.timeout` applies from the next run on. Every task
/// shares one [`ShareKeeper`] for `node_dir`: a run stopped mid-file leaves its partial shares
/// to it, and it keeps them alive on the servers until the next run continues them.
pub fn register(
    registry: &mut tahoe_jobs_engine::Registry,
    node_dir: &Path,
    client: SharedClientOptions,
) {
    let node_dir = node_dir.to_path_buf();
    let keeper = ShareKeeper::new();
    registry.register("backup", move |job, _: &BackupParams| {
        let mut task = BackupTask::from_job(&node_dir, job, client.get())?;
        task.options.keeper = Some(keeper.clone());
        Ok(Box::new(task) as Box<dyn Task>)
    });
}

/// Runs one backup to completion outside the engine (the `tahoe-jobs backup` command): no
/// limits, nothing stops it. `store` is the backupdb's sled tree.
pub async fn backup_once(
    node_dir: &Path,
    params: &BackupParams,
    store: sled::Tree,
    options: &BackupOptions,
) -> Result<BackupSummary, BackupError> {
    let ctx = TaskContext::standalone("backup.oneshot", store);
    match run_backup(node_dir, params, options, &ctx).await? {
        RunEnd::Completed(summary) => Ok(summary),
        RunEnd::Stopped(_) => Err(BackupError::Internal(
            "a one-shot backup was stopped".into(),
        )),
    }
}

/// The sled tree name under which the one-shot command keeps the backupdb for `target`. A
/// capability target is named by a hash of it, so the secret never becomes a tree name.
pub fn oneshot_tree_name(target: &tahoe_jobs_config::Target) -> String {
    use sha2::{Digest, Sha256};
    match target {
        tahoe_jobs_config::Target::Alias { alias, path } => format!("backup {alias}:{path}"),
        tahoe_jobs_config::Target::Cap { cap, path } => {
            let digest = Sha256::digest(cap.as_bytes());
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            format!("backup cap-{hex}/{path}")
        }
    }
}

/// Where the one-shot command keeps its backupdb: `NODEDIR/private/tahoe-jobs/oneshot`.
pub fn oneshot_db_dir(node_dir: &Path) -> PathBuf {
    node_dir.join("private").join("tahoe-jobs").join("oneshot")
}

/// Opens the backupdb for `target` in the sled database at `db_dir` (created if needed), one
/// tree per target, as the one-shot command keeps it; the cache is `[jobs] cache_size`'s
/// default.
pub fn open_backupdb(
    db_dir: &Path,
    target: &tahoe_jobs_config::Target,
) -> Result<sled::Tree, OneshotStoreError> {
    open_backupdb_with_cache(db_dir, target, tahoe_jobs_config::DEFAULT_CACHE_SIZE)
}

/// [`open_backupdb`] with a cache of at most `cache_bytes` (`[jobs] cache_size`).
pub fn open_backupdb_with_cache(
    db_dir: &Path,
    target: &tahoe_jobs_config::Target,
    cache_bytes: u64,
) -> Result<sled::Tree, OneshotStoreError> {
    let fail = |message: String| OneshotStoreError {
        path: db_dir.to_path_buf(),
        message,
    };
    std::fs::create_dir_all(db_dir).map_err(|e| fail(e.to_string()))?;
    let db = sled::Config::new()
        .path(db_dir)
        // Each record is read once per run: a bounded cache keeps memory flat on big trees.
        .cache_capacity(cache_bytes)
        .open()
        .map_err(|e| fail(format!("{e} (is another `tahoe-jobs backup` running?)")))?;
    db.open_tree(oneshot_tree_name(target))
        .map_err(|e| fail(e.to_string()))
}

/// The one-shot backupdb could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the backup database {path}: {message}")]
pub struct OneshotStoreError {
    /// The sled database's directory.
    pub path: PathBuf,
    /// Why it could not be opened.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tahoe_jobs_config::Target;

    #[test]
    fn oneshot_tree_names_never_hold_caps() {
        let alias = Target::Alias {
            alias: "b".into(),
            path: "pics".into(),
        };
        assert_eq!(oneshot_tree_name(&alias), "backup b:pics");
        let cap = Target::Cap {
            cap: "URI:DIR2:secret:x".into(),
            path: "p".into(),
        };
        let name = oneshot_tree_name(&cap);
        assert!(
            name.starts_with("backup cap-") && name.ends_with("/p") && !name.contains("secret"),
            "{name}"
        );
    }
}
