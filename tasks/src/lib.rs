//! Tahoe-LAFS task types for tahoe-jobs: the web API client ([`tahoe`]) and the backup task
//! ([`backup`]). Nothing here uses actix: tasks only see the engine's [`Task`] trait and
//! [`TaskContext`].
//!
//! [`Task`]: tahoe_jobs_engine::Task
//! [`TaskContext`]: tahoe_jobs_engine::TaskContext

pub mod backup;
pub mod check;
pub mod tahoe;

/// The store type of [`TaskContext`](tahoe_jobs_engine::TaskContext), for callers that open a
/// backupdb themselves (the one-shot command, tests) without depending on sled.
pub use sled;

use std::path::Path;

pub use backup::{backup_once, BackupError, BackupOptions, BackupSummary, BackupTask};

/// Registers the task types this crate provides (`backup`) with the engine.
pub fn register(registry: &mut tahoe_jobs_engine::Registry, node_dir: &Path) {
    backup::register(registry, node_dir);
    check::register(registry, node_dir);
}
