//! Tahoe-LAFS task types for tahoe-jobs: the web API client ([`tahoe`]) and the backup task
//! ([`backup`]). Nothing here uses actix: tasks only see the engine's [`Task`] trait and
//! [`TaskContext`].
//!
//! [`Task`]: tahoe_jobs_engine::Task
//! [`TaskContext`]: tahoe_jobs_engine::TaskContext

#![warn(missing_docs)]

pub mod backup;
pub mod check;
pub mod data_path;
pub mod prune;
pub mod tahoe;

/// The store type of [`TaskContext`](tahoe_jobs_engine::TaskContext), for callers that open a
/// backupdb themselves (the one-shot command, tests) without depending on sled.
pub use sled;

use std::path::Path;

pub use backup::{backup_once, BackupError, BackupOptions, BackupSummary, BackupTask};
pub use data_path::DataPath;
pub use tahoe::{ClientOptions, SharedClientOptions};

/// Registers the task types this crate provides (`backup`, `check`) with the engine, with the
/// default client options (`[jobs] node.timeout`'s default).
pub fn register(registry: &mut tahoe_jobs_engine::Registry, node_dir: &Path) {
    register_with(registry, node_dir, SharedClientOptions::default());
}

/// Registers the task types this crate provides; every task they build talks to the node with
/// the options `client` holds at that moment (the daemon sets them from `[jobs] node.timeout`,
/// at start and on reload).
pub fn register_with(
    registry: &mut tahoe_jobs_engine::Registry,
    node_dir: &Path,
    client: SharedClientOptions,
) {
    backup::register(registry, node_dir, client.clone());
    check::register(registry, node_dir, client.clone());
    prune::register(registry, node_dir, client);
}

/// The keys of the task types this crate provides, for loading a configuration without a
/// registry at hand (tests, tools); the same as `registry.schemas()` after [`register`].
pub fn schemas() -> Vec<tahoe_jobs_config::TaskSchema> {
    let mut registry = tahoe_jobs_engine::Registry::new();
    register(&mut registry, Path::new("."));
    registry.schemas()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use tahoe_jobs_engine::{Registry, TaskContext, TaskError};

    use super::*;

    /// The tasks the registry builds talk to the node with the client options in force when
    /// they are built: `[jobs] node.timeout` from the configuration, and a later change (a
    /// reload) for the next task. A node that accepts connections and never answers makes the
    /// timeout visible. On the paused clock: the timeouts are tokio's time, which moves on
    /// whenever the task waits on the silent node, so the test never waits for them for real;
    /// the time measured is tokio's too.
    #[tokio::test(start_paused = true)]
    async fn tasks_use_the_configured_node_timeout() {
        let (addr, held) = tahoe::client::silent_node().await;
        let tmp = tempfile::tempdir().unwrap();
        let node = tmp.path().join("node");
        std::fs::create_dir_all(node.join("private")).unwrap();
        std::fs::write(node.join("node.url"), format!("http://{addr}/\n")).unwrap();
        std::fs::write(node.join("private/aliases"), "b: URI:DIR2:aaaa:bbbb\n").unwrap();
        std::fs::write(node.join("tahoe.cfg"), "[client]\nshares.needed = 1\n").unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("f"), vec![7u8; 1000]).unwrap();
        let load = |timeout: &str| {
            tahoe_jobs_config::load(&tahoe_jobs_config::LoadOptions {
                node_dir: node.clone(),
                config_file: None,
                overrides: vec![
                    ("backup.b1.source".into(), src.display().to_string()),
                    ("backup.b1.target".into(), "b:x".into()),
                    ("check.c1.target".into(), "b:".into()),
                    ("jobs.node.timeout".into(), timeout.into()),
                ],
                read_env: false,
                task_types: schemas(),
            })
            .expect("configuration")
        };

        let shared = SharedClientOptions::default();
        assert_eq!(
            shared.get().request_timeout,
            tahoe_jobs_config::DEFAULT_NODE_TIMEOUT
        );
        let mut registry = Registry::new();
        register_with(&mut registry, &node, shared.clone());
        let db = sled::Config::new().temporary(true).open().unwrap();

        for (timeout, limit) in [
            ("400ms", Duration::from_millis(400)),
            ("1s", Duration::from_secs(1)),
        ] {
            let config = load(timeout);
            assert_eq!(config.daemon.node_timeout, limit);
            // As the daemon does at start and on reload.
            shared.set(ClientOptions::from_settings(&config.daemon));
            for job in &config.jobs {
                let mut task = registry.build(job).expect("a task");
                let ctx = TaskContext::standalone(job.id(), db.open_tree(job.id()).unwrap());
                let started = Instant::now();
                // No guard needed: a task that ignored node.timeout would give up after the
                // default 10 minutes of tokio's time, which passes at once here.
                let result = task.run(&ctx).await;
                let took = started.elapsed();
                assert!(
                    matches!(result, Err(TaskError::Unavailable { .. })),
                    "{}: {result:?}",
                    job.id()
                );
                assert!(
                    took >= limit && took < limit + Duration::from_secs(10),
                    "{} gave up after {took:?} with node.timeout = {timeout}",
                    job.id()
                );
            }
        }
        held.abort();
    }
}
