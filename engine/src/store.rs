//! The engine's state on disk: a sled database in `state_dir`, with a `jobs` tree holding one
//! versioned [`JobRecord`] per job id, a `history` tree with each job's last runs
//! ([`RunHistory`], bounded) and a `task:<job id>` tree per job for the task's own resumption
//! data.
//!
//! The directory is created private (0700) because task trees may hold paths and progress a
//! user would not want others on the machine to read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::history::RunHistory;
use crate::overrides::LiveOverrides;
use crate::record::{JobRecord, RecordError};

/// The sled database's directory inside `state_dir`.
pub const DB_DIR: &str = "sled";
const JOBS_TREE: &str = "jobs";
/// Each job's [`RunHistory`], by job id.
const HISTORY_TREE: &str = "history";
/// The live overrides (one versioned value under [`OVERRIDES_KEY`]).
const OVERRIDES_TREE: &str = "overrides";
const OVERRIDES_KEY: &str = "live";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory could not be created or inspected.
    #[error("could not create the state directory {path}: {source}")]
    CreateDir {
        /// The state directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The sled database could not be opened (another daemon may hold it).
    #[error(
        "could not open the state store at {path}: {source} (is another tahoe-jobs daemon using \
         the same state_dir?)"
    )]
    Open {
        /// The database's directory.
        path: PathBuf,
        /// Why sled could not open it.
        source: sled::Error,
    },
    /// A read or write of the sled database failed.
    #[error("state store: {0}")]
    Sled(#[from] sled::Error),
    /// A job's stored record is of an unknown version or not valid.
    #[error("the stored record of job {job} cannot be read: {source}")]
    Record {
        /// The job's id.
        job: String,
        /// Why the record could not be read.
        source: RecordError,
    },
    /// A job's stored run history is of an unknown version or not valid.
    #[error("the stored run history of job {job} cannot be read: {source}")]
    History {
        /// The job's id.
        job: String,
        /// Why the history could not be read.
        source: RecordError,
    },
    /// The stored live overrides are of an unknown version or not valid.
    #[error("the stored live overrides cannot be read: {0}")]
    Overrides(RecordError),
}

impl StoreError {
    /// The record error behind this one, if a record could not be read.
    pub fn record_error(&self) -> Option<&RecordError> {
        match self {
            StoreError::Record { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A cloneable handle to the engine's sled database.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    jobs: sled::Tree,
    /// Held (shared) by every [`Store::flush_async`] in progress, so that
    /// [`Store::close_async`] can wait for all of them before the database is let go.
    flushes: Arc<tokio::sync::RwLock<()>>,
}

impl Store {
    /// Opens (creating if need be) the store in `state_dir`, with the default cache
    /// (`[jobs] cache_size`).
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_cache(state_dir, tahoe_jobs_config::DEFAULT_CACHE_SIZE)
    }

    /// Opens the store with a page cache of at most `cache_bytes` (sled's own default, about
    /// 1 GiB, would let a long backup grow the daemon that far).
    pub fn open_with_cache(state_dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        ensure_private_dir(state_dir)?;
        let path = state_dir.join(DB_DIR);
        let open = || {
            sled::Config::new()
                .path(&path)
                .cache_capacity(cache_bytes)
                .open()
        };
        // sled releases its file lock only once its own threads have finished the last log
        // writes of a database just closed in this process (an engine shut down and started
        // again): give them a moment before calling the store busy.
        let deadline = std::time::Instant::now() + LOCK_RELEASE_WAIT;
        let db = loop {
            match open() {
                Err(e) if is_lock_held(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                opened => break opened.map_err(|source| StoreError::Open { path, source })?,
            }
        };
        let jobs = db.open_tree(JOBS_TREE)?;
        Ok(Store {
            db,
            jobs,
            flushes: Arc::default(),
        })
    }

    /// The job's record; a job never seen before gets an empty one.
    pub fn load(&self, job_id: &str) -> Result<JobRecord, StoreError> {
        match self.jobs.get(job_id)? {
            None => Ok(JobRecord::default()),
            Some(bytes) => JobRecord::from_bytes(&bytes).map_err(|source| StoreError::Record {
                job: job_id.to_string(),
                source,
            }),
        }
    }

    /// Writes the job's record (durable after the next [`flush`](Store::flush)).
    pub fn save(&self, job_id: &str, record: &JobRecord) -> Result<(), StoreError> {
        self.jobs.insert(job_id, record.to_bytes())?;
        Ok(())
    }

    /// Writes raw bytes as a job's record: for tests and migrations that need a record this
    /// release would not write.
    pub fn save_raw(&self, job_id: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.jobs.insert(job_id, bytes)?;
        Ok(())
    }

    /// The job's last runs; none for a job that never ran.
    pub fn load_history(&self, job_id: &str) -> Result<RunHistory, StoreError> {
        match self.db.open_tree(HISTORY_TREE)?.get(job_id)? {
            None => Ok(RunHistory::default()),
            Some(bytes) => RunHistory::from_bytes(&bytes).map_err(|source| StoreError::History {
                job: job_id.to_string(),
                source,
            }),
        }
    }

    /// Writes the job's last runs (durable after the next [`flush`](Store::flush)).
    pub fn save_history(&self, job_id: &str, history: &RunHistory) -> Result<(), StoreError> {
        self.db
            .open_tree(HISTORY_TREE)?
            .insert(job_id, history.to_bytes())?;
        Ok(())
    }

    /// The ids of all jobs with a record, including jobs no longer configured.
    pub fn job_ids(&self) -> Result<Vec<String>, StoreError> {
        self.jobs
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }

    /// The job's own tree, handed to its task through the `TaskContext`.
    pub fn task_tree(&self, job_id: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("task:{job_id}"))?)
    }

    /// The live overrides; none when none were ever set.
    pub fn load_overrides(&self) -> Result<LiveOverrides, StoreError> {
        match self.db.open_tree(OVERRIDES_TREE)?.get(OVERRIDES_KEY)? {
            None => Ok(LiveOverrides::default()),
            Some(bytes) => LiveOverrides::from_bytes(&bytes).map_err(StoreError::Overrides),
        }
    }

    /// Writes the live overrides and flushes: a live change must survive a crash right after
    /// the user saw it accepted.
    pub fn save_overrides(&self, overrides: &LiveOverrides) -> Result<(), StoreError> {
        self.db
            .open_tree(OVERRIDES_TREE)?
            .insert(OVERRIDES_KEY, overrides.to_bytes())?;
        self.flush()
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// [`Store::flush`] without blocking the caller's thread (see [`flush_tree`]).
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        let _in_progress = self.flushes.read().await;
        flush_tree(&self.db).await?;
        Ok(())
    }

    /// A flush to run elsewhere (on another thread's runtime): counted as in progress from
    /// now, so that [`Store::close_async`] waits for it even before it starts. `None` when the
    /// store is being closed, which flushes anyway.
    pub fn flush_later(
        &self,
    ) -> Option<impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static> {
        let in_progress = self.flushes.clone().try_read_owned().ok()?;
        let db = self.db.clone();
        Some(async move {
            flush_tree(&db).await?;
            drop(in_progress);
            Ok(())
        })
    }

    /// Waits for every [`Store::flush_async`] in progress (each holds a handle to the
    /// database), then flushes: once the last handle is dropped, the database is released and
    /// may be opened again.
    pub async fn close_async(self) -> Result<(), StoreError> {
        let _settled = self.flushes.write().await;
        flush_tree(&self.db).await?;
        Ok(())
    }
}

/// Makes everything written to `tree`'s database durable without blocking the caller's
/// thread: the flush runs on tokio's blocking pool, not on sled's own threads
/// (`flush_async`), which tokio cannot see, so that on the paused clock of tests time does not
/// jump ahead while a flush is under way. Every flush of the engine and the tasks goes here.
///
/// The flush seals sled's current 512 KiB log buffer and defers freeing the old one to
/// crossbeam's epoch collector, in this blocking-pool thread's local bag, which reaches the
/// collector only once 64 deferred frees gather there. A blocking thread that flushes now and
/// then and otherwise reads files or encodes segments held those buffers for long: a backup
/// flushing every 2 s grew by one buffer per flush (128 MB on 100,000 small files). So the bag
/// is handed to the collector right after the flush (test: `tests/flush_memory.rs`).
pub async fn flush_tree(tree: &sled::Tree) -> Result<(), sled::Error> {
    let tree = tree.clone();
    tokio::task::spawn_blocking(move || {
        let flushed = tree.flush();
        hand_over_deferred_frees();
        flushed
    })
    .await
    .map_err(|e| sled::Error::ReportableBug(format!("flush: {e}")))??;
    Ok(())
}

/// How long opening waits for another handle's lock to go before saying the store is in use.
const LOCK_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// sled's answer when another handle holds the database's file lock.
fn is_lock_held(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// Moves the calling thread's deferred frees (sled's epoch garbage) to the global collector,
/// which frees them once no reader can still see them. sled 0.34 uses crossbeam's default
/// collector, and `sled::pin` is its guard.
fn hand_over_deferred_frees() {
    sled::pin().flush();
}

#[cfg(unix)]
fn ensure_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

    let err = |source| StoreError::CreateDir {
        path: dir.to_path_buf(),
        source,
    };
    if dir.is_dir() {
        let mode = std::fs::metadata(dir).map_err(err)?.permissions().mode();
        if mode & 0o077 != 0 {
            // Not fatal: the user may share the directory on purpose; say how to fix it.
            tracing::warn!(
                path = %dir.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "the state directory is readable by other users; chmod 700 it to keep job \
                 progress private"
            );
        }
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)
}

#[cfg(not(unix))]
fn ensure_private_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordError;

    /// A flush runs where tokio sees it: the paused clock does not jump to the next timer
    /// while it is under way (it did with sled's `flush_async`, whose threads tokio cannot see).
    #[tokio::test(start_paused = true)]
    async fn a_flush_holds_the_paused_clock() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let tree = db.open_tree("t").unwrap();
        let timer = tokio::spawn(tokio::time::sleep(std::time::Duration::from_secs(3600)));
        let start = tokio::time::Instant::now();
        for i in 0..20u32 {
            tree.insert(i.to_be_bytes(), vec![7u8; 4096]).unwrap();
            flush_tree(&tree).await.unwrap();
        }
        assert_eq!(start.elapsed(), std::time::Duration::ZERO);
        assert!(!timer.is_finished());
        timer.abort();
    }

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        {
            let store = Store::open(&state).unwrap();
            assert_eq!(store.load("backup.b1").unwrap(), JobRecord::default());
            let record = JobRecord {
                consecutive_failures: 3,
                ..JobRecord::default()
            };
            store.save("backup.b1", &record).unwrap();
            store
                .task_tree("backup.b1")
                .unwrap()
                .insert("k", "v")
                .unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(&state).unwrap();
        assert_eq!(store.load("backup.b1").unwrap().consecutive_failures, 3);
        assert_eq!(
            store
                .task_tree("backup.b1")
                .unwrap()
                .get("k")
                .unwrap()
                .unwrap(),
            "v"
        );
        assert_eq!(store.job_ids().unwrap(), vec!["backup.b1".to_string()]);
    }

    #[cfg(unix)]
    #[test]
    fn the_state_dir_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        let _store = Store::open(&state).unwrap();
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn overrides_survive_reopening() {
        use crate::overrides::{LiveOverrides, OverrideTarget};
        let dir = tempfile::tempdir().unwrap();
        let mut overrides = LiveOverrides::default();
        overrides
            .set(
                &OverrideTarget::Budget,
                "upload",
                Some("1MiB/s"),
                jiff::Timestamp::UNIX_EPOCH,
            )
            .unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.load_overrides().unwrap(), LiveOverrides::default());
            store.save_overrides(&overrides).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load_overrides().unwrap(), overrides);
    }

    #[test]
    fn run_histories_survive_reopening() {
        use crate::history::{RunEntry, RunOutcome};
        let dir = tempfile::tempdir().unwrap();
        let mut history = RunHistory::default();
        history.push(RunEntry {
            started: jiff::Timestamp::UNIX_EPOCH,
            ended: jiff::Timestamp::UNIX_EPOCH,
            outcome: RunOutcome::Failed,
            counters: [("files_seen".to_string(), 3)].into(),
            labels: Default::default(),
        });
        {
            let store = Store::open(dir.path()).unwrap();
            assert!(store.load_history("backup.b1").unwrap().is_empty());
            store.save_history("backup.b1", &history).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load_history("backup.b1").unwrap(), history);
        assert!(store.load_history("backup.b2").unwrap().is_empty());
        // A history is not a job record: the job list is unchanged.
        assert!(store.job_ids().unwrap().is_empty());
    }

    #[test]
    fn a_future_record_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.save_raw("check.c1", br#"{"v":7}"#).unwrap();
        let err = store.load("check.c1").unwrap_err();
        assert!(matches!(
            err.record_error(),
            Some(RecordError::FutureVersion { found: 7, .. })
        ));
        assert!(err.to_string().contains("check.c1"), "{err}");
    }
}
