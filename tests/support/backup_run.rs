//! The backup task run in this process, as the engine would run it: its parameters, a task
//! context, a budget gate that calls a hook on every chunk, and a run with its own backupdb
//! whose every warning is collected and whose outputs are checked for capabilities.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tahoe_jobs_config::Target;
use tahoe_jobs_engine::{
    BudgetGate, BudgetHandle, ByteRequest, ProgressSink, StopSignal, SystemClock, TaskContext,
};
use tahoe_jobs_tasks::backup::BackupParams;
use tahoe_jobs_tasks::backup::{
    open_backupdb, run_backup, BackupError, BackupObserver, BackupOptions, BackupSummary, RunEnd,
};
use tahoe_jobs_tasks::tahoe::ClientOptions;

use super::grid::Grid;
use super::process::runtime;

/// A backup of `source` to `alias:path` with `concurrency` uploads at once, no excludes and
/// the default re-check policy, through the node.
pub fn backup_params(source: &Path, alias: &str, path: &str, concurrency: usize) -> BackupParams {
    BackupParams {
        source: source.to_path_buf(),
        target: Target::Alias {
            alias: alias.into(),
            path: path.into(),
        },
        exclude: Vec::new(),
        exclude_from: None,
        exclude_vcs: false,
        concurrency: Some(concurrency),
        recheck_after: tahoe_jobs_tasks::backup::DEFAULT_RECHECK_AFTER,
        recheck_all_after: tahoe_jobs_tasks::backup::DEFAULT_RECHECK_ALL_AFTER,
        // These tests were written for the node's path; tests of the direct path set it.
        data_path: tahoe_jobs_tasks::DataPath::Node,
    }
}

/// A context as the engine would give job `job`, with a stop signal, budget and store we hold
/// and a fresh progress sink.
pub fn task_context(
    job: &str,
    store: tahoe_jobs_tasks::sled::Tree,
    stop: StopSignal,
    budget: BudgetHandle,
) -> TaskContext {
    TaskContext::new(
        job,
        stop,
        budget,
        ProgressSink::new(),
        store,
        Arc::new(SystemClock),
    )
}

/// A budget gate that calls `hook` on every chunk an upload asks to send.
pub struct Hook<F: Fn(&ByteRequest) + Send + Sync + 'static>(pub F);

type GateFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

// Written out as `#[async_trait]` expands it (this crate does not depend on async-trait).
impl<F: Fn(&ByteRequest) + Send + Sync + 'static> BudgetGate for Hook<F> {
    fn acquire<'a, 'b, 'c>(&'a self, _job: &'b str, request: ByteRequest) -> GateFuture<'c>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        (self.0)(&request);
        Box::pin(async {})
    }

    fn cpu_checkpoint<'a, 'b, 'c>(&'a self, _job: &'b str) -> GateFuture<'c>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async {})
    }
}

/// Hears every warning of a run (the progress sink keeps only the last 100).
#[derive(Default)]
pub struct Warnings(Mutex<Vec<String>>);

impl Warnings {
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Panics unless exactly one warning contains every one of `parts`.
    pub fn assert_one(&self, parts: &[&str]) {
        let all = self.all();
        let found = all
            .iter()
            .filter(|w| parts.iter().all(|p| w.contains(p)))
            .count();
        assert_eq!(found, 1, "one warning with {parts:?} expected in {all:#?}");
    }
}

impl BackupObserver for Warnings {
    fn warning(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_string());
    }
}

/// How one backup run ended, and every warning it gave.
pub struct ObservedRun {
    pub end: Result<RunEnd, BackupError>,
    pub warnings: Arc<Warnings>,
}

impl ObservedRun {
    pub fn completed(&self) -> &BackupSummary {
        match &self.end {
            Ok(RunEnd::Completed(s)) => s,
            other => panic!("the backup did not complete: {other:?}"),
        }
    }
}

/// One backup run with its own backupdb in `db_dir`, the given budget and client options, and
/// every warning heard; panics if it takes 10 minutes or a warning or error shows a capability.
pub fn observed_backup_with(
    grid: &Grid,
    p: &BackupParams,
    db_dir: &Path,
    budget: BudgetHandle,
    client: ClientOptions,
) -> ObservedRun {
    let store = open_backupdb(db_dir, &p.target).unwrap();
    let warnings = Arc::new(Warnings::default());
    let options = BackupOptions {
        observer: warnings.clone(),
        client,
        ..BackupOptions::default()
    };
    let ctx = task_context("backup.hostile", store, StopSignal::new(), budget);
    let end = runtime().block_on(async {
        tokio::time::timeout(
            Duration::from_secs(600),
            run_backup(grid.node_dir(), p, &options, &ctx),
        )
        .await
        .expect("the backup did not end within 10 minutes (did it open a FIFO?)")
    });
    for w in warnings.all() {
        assert!(!w.contains("URI:"), "a warning shows a capability: {w}");
    }
    if let Err(e) = &end {
        assert!(
            !e.to_string().contains("URI:"),
            "an error shows a capability"
        );
        assert!(
            !format!("{e:?}").contains("URI:"),
            "an error shows a capability"
        );
    }
    ObservedRun { end, warnings }
}

/// [`observed_backup_with`] without a budget limit and with the default client options.
pub fn observed_backup(grid: &Grid, p: &BackupParams, db_dir: &Path) -> ObservedRun {
    observed_backup_with(
        grid,
        p,
        db_dir,
        BudgetHandle::unlimited("hostile"),
        Default::default(),
    )
}
