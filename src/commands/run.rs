//! `tahoe-jobs run`: the daemon in the foreground. Jobs run on their schedules until SIGINT or
//! SIGTERM; SIGHUP reloads the configuration (jobs added, removed or changed; the others run on).
//! The web server (status page, control page, metrics, private API) runs beside the engine.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tahoe_jobs_engine::{Engine, EngineHandle, EngineOptions, SystemClock};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::cli::{GlobalArgs, RunArgs};
use crate::web::{self, WebServer};

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
    // Bound before anything starts, so a port in use is reported at once.
    let web_addr = config.daemon.web_addr;
    let listener = match web::bind(web_addr) {
        Ok(l) => l,
        Err(e) => {
            let msg = format!(
                "cannot listen on {web_addr} for the status pages: {e} (is another tahoe-jobs \
                 running? choose another address with [jobs] web.port in \
                 NODEDIR/tahoe-jobs.cfg or --set jobs.web.port=127.0.0.1:PORT)"
            );
            error!("{msg}");
            eprintln!("tahoe-jobs: {msg}");
            return Ok(1);
        }
    };
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
        let web = match start_web(listener, &handle, &config) {
            Ok(web) => web,
            Err(e) => {
                let _ = tokio::time::timeout(SHUTDOWN_LIMIT, handle.shutdown()).await;
                return Err(e);
            }
        };
        info!(
            jobs = config.jobs.len(),
            state_dir = %config.daemon.state_dir.display(),
            timezone = %config.daemon.timezone_name,
            "tahoe-jobs is running; stop it with Ctrl-C or SIGTERM, reload with SIGHUP"
        );
        info!(
            "status page at http://{}/ (the control page's address: tahoe-jobs control-url)",
            web.addr()
        );
        wait_for_signals(global, &handle, &web).await?;
        info!("shutting down: stopping tasks and flushing the state store");
        web.stop().await;
        match tokio::time::timeout(SHUTDOWN_LIMIT, handle.shutdown()).await {
            Ok(Ok(())) => info!("stopped cleanly"),
            Ok(Err(e)) => warn!("shutdown: {e}"),
            Err(_) => warn!("shutdown took longer than {SHUTDOWN_LIMIT:?}; exiting anyway"),
        }
        anyhow::Ok(0)
    })
}

/// Starts the web server; the control token is created in the state directory the engine has
/// just made private.
fn start_web(
    listener: std::net::TcpListener,
    handle: &EngineHandle,
    config: &tahoe_jobs_config::Config,
) -> anyhow::Result<WebServer> {
    let state_dir = &config.daemon.state_dir;
    let token = web::token::load_or_create(state_dir).with_context(|| {
        format!(
            "cannot read or create the control token in {}",
            state_dir.display()
        )
    })?;
    web::start(listener, handle.clone(), token, Arc::new(config.clone()))
        .context("cannot start the web server")
}

/// Returns on SIGINT or SIGTERM; reloads the configuration on SIGHUP.
async fn wait_for_signals(
    global: &GlobalArgs,
    handle: &EngineHandle,
    web: &WebServer,
) -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            _ = hangup.recv() => reload(global, handle, web).await,
        }
    }
}

async fn reload(global: &GlobalArgs, handle: &EngineHandle, web: &WebServer) {
    info!("SIGHUP: reloading the configuration");
    match super::load_config(global) {
        Err(e) => error!("the new configuration is invalid; keeping the running one: {e}"),
        Ok(config) => match handle.reload(config.jobs.clone()).await {
            Ok(summary) => {
                info!(?summary, "configuration reloaded");
                if let Err(e) = handle.update_budget(config.budget.clone()).await {
                    error!("the new [budget] could not be applied: {e}");
                }
                web.set_config(Arc::new(config));
            }
            Err(e) => error!("reload refused; keeping the running jobs: {e}"),
        },
    }
}
