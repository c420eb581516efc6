//! `tahoe-jobs run`: the daemon in the foreground. Jobs run on their schedules until SIGINT or
//! SIGTERM; SIGHUP reloads the configuration (jobs added, removed or changed; the others run on).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tahoe_jobs_engine::{Engine, EngineHandle, EngineOptions, SystemClock};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::cli::{GlobalArgs, RunArgs};

/// How long a clean shutdown may take before the process exits anyway.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

pub fn run(global: &GlobalArgs, args: &RunArgs) -> anyhow::Result<i32> {
    crate::logging::init(args.json_logs);
    let node_dir = super::node_dir(global)?;
    let config = match super::load_config(global) {
        Ok(c) => c,
        Err(e) => {
            error!("{e}");
            eprintln!("tahoe-jobs: {e}");
            return Ok(1);
        }
    };
    for warning in &config.warnings {
        warn!("{warning}");
    }
    let system = actix_rt::System::new();
    system.block_on(async move {
        let handle = Engine::start(EngineOptions {
            state_dir: config.daemon.state_dir.clone(),
            timezone: config.daemon.timezone.clone(),
            clock: Arc::new(SystemClock),
            registry: super::registry(&node_dir),
            jobs: config.jobs.clone(),
            budget: config.budget.clone(),
            enforcement: Default::default(),
        })
        .context("cannot start the engine")?;
        info!(
            jobs = config.jobs.len(),
            state_dir = %config.daemon.state_dir.display(),
            timezone = %config.daemon.timezone_name,
            "tahoe-jobs is running; stop it with Ctrl-C or SIGTERM, reload with SIGHUP"
        );
        wait_for_signals(global, &handle).await?;
        info!("shutting down: stopping tasks and flushing the state store");
        match tokio::time::timeout(SHUTDOWN_LIMIT, handle.shutdown()).await {
            Ok(Ok(())) => info!("stopped cleanly"),
            Ok(Err(e)) => warn!("shutdown: {e}"),
            Err(_) => warn!("shutdown took longer than {SHUTDOWN_LIMIT:?}; exiting anyway"),
        }
        anyhow::Ok(0)
    })
}

/// Returns on SIGINT or SIGTERM; reloads the configuration on SIGHUP.
async fn wait_for_signals(global: &GlobalArgs, handle: &EngineHandle) -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            _ = hangup.recv() => reload(global, handle).await,
        }
    }
}

async fn reload(global: &GlobalArgs, handle: &EngineHandle) {
    info!("SIGHUP: reloading the configuration");
    match super::load_config(global) {
        Err(e) => error!("the new configuration is invalid; keeping the running one: {e}"),
        Ok(config) => match handle.reload(config.jobs).await {
            Ok(summary) => info!(?summary, "configuration reloaded"),
            Err(e) => error!("reload refused; keeping the running jobs: {e}"),
        },
    }
}
