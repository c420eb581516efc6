//! `tahoe-jobs run`: the daemon in the foreground. Jobs run on their schedules until SIGINT or
//! SIGTERM; SIGHUP reloads the configuration (jobs added, removed or changed; the others run on).
//! The web server (status page, control page, metrics, private API) runs beside the engine.
//!
//! Job events go to [`crate::hooks`]: each job's hook commands and `[jobs] notify.url`.
//!
//! With `[jobs] shaping.port`, the SOCKS5 shaping proxy runs here too. A node watch
//! ([`super::node_watch`]) keeps the budget in step with the node: its pid for the CPU share,
//! its servers' nicknames and addresses, and whether exact shaping is in force.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tahoe_jobs_engine::shaping::ShapingProxy;
use tahoe_jobs_engine::{
    Enforcement, Engine, EngineHandle, EngineOptions, SystemClock, TaskRuntime,
};
use tahoe_jobs_tasks::{ClientOptions, SharedClientOptions};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Notify};
use tracing::{error, info, warn};

use super::node_watch::{self, NodeWatch};
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
    // Task work (and the node watch, and the shaping proxy's pacing) on all cores; the actors
    // carry messages on the System's thread (this one).
    let tasks = match super::oneshot::task_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            error!("{e:#}");
            eprintln!("tahoe-jobs: {e:#}");
            return Ok(1);
        }
    };
    let task_runtime = TaskRuntime::on(tasks.handle().clone());
    let system = actix_rt::System::new();
    let code = system.block_on(async move {
        // Bound before the engine starts, like the web port. Exact mode waits until the node's
        // traffic is seen flowing through it (see node_watch).
        let proxy = match config.daemon.shaping_addr {
            None => None,
            Some(addr) => match ShapingProxy::bind(addr).await {
                Ok(p) => Some(p),
                Err(e) => {
                    let msg = format!("cannot start the shaping proxy ([jobs] shaping.port): {e}");
                    error!("{msg}");
                    eprintln!("tahoe-jobs: {msg}");
                    return Ok(1);
                }
            },
        };
        let shaping = proxy.as_ref().map(ShapingProxy::control);
        let node_pid = node_watch::node_pid(&node_dir);
        let aliases = node_watch::first_look(&node_dir).await;
        // `[jobs] node.timeout` for every task's requests; a reload changes it for later runs.
        let client = SharedClientOptions::new(ClientOptions::from_settings(&config.daemon));
        let handle = Engine::start(EngineOptions {
            state_dir: config.daemon.state_dir.clone(),
            timezone: config.daemon.timezone.clone(),
            clock: Arc::new(SystemClock),
            registry: super::registry(&node_dir, client.clone()),
            jobs: config.jobs.clone(),
            budget: config.budget.clone(),
            enforcement: Enforcement {
                cpu_pids: node_watch::cpu_pids(node_pid),
                shaping: shaping.clone(),
                exact_shaping: false,
                ..Default::default()
            },
            task_runtime: task_runtime.clone(),
            cache_size: config.daemon.cache_size,
        })
        .context("cannot start the engine")?;
        // Subscribed before this task yields, so no job's first event is missed.
        let (hooks_tx, hooks_rx) = watch::channel(Arc::new(config.hooks.clone()));
        actix_rt::spawn(crate::hooks::dispatch(handle.subscribe(), hooks_rx));
        // Before any job moves a byte: limits written with a nickname apply from the start.
        if let Some(aliases) = &aliases {
            if let Err(e) = handle.set_destination_aliases(aliases.clone()).await {
                warn!("cannot hand the engine the servers' nicknames: {e}");
            }
        }
        let web = match start_web(listener, &handle, &config) {
            Ok(web) => web,
            Err(e) => {
                let _ = tokio::time::timeout(SHUTDOWN_LIMIT, handle.shutdown()).await;
                return Err(e);
            }
        };
        let (proxy_stop, proxy_task) = match proxy {
            Some(proxy) => {
                info!(
                    "shaping proxy on {}: point the node's [tor] socks.port at it                      (`tahoe-jobs shaping` prints the lines and checks)",
                    proxy.local_addr()
                );
                web.set_shaping(proxy.control());
                let stop = Arc::new(Notify::new());
                let stopped = stop.clone();
                let task = task_runtime.spawn(async move {
                    proxy.run(async move { stopped.notified().await }).await
                });
                (Some(stop), Some(task))
            }
            None => (None, None),
        };
        let names = Arc::new(RwLock::new(node_watch::configured_names(&config)));
        let (notes_tx, notes_rx) = watch::channel(Vec::new());
        let refresh = Arc::new(Notify::new());
        let watcher = task_runtime.spawn(
            NodeWatch::new(
                node_dir.clone(),
                handle.clone(),
                shaping,
                (node_pid, aliases),
                names.clone(),
            )
            .run(notes_tx, refresh.clone()),
        );
        let daemon = Daemon {
            global,
            handle: &handle,
            web: &web,
            names: &names,
            refresh: &refresh,
            shaping_addr: config.daemon.shaping_addr,
            client: &client,
            hooks: &hooks_tx,
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
        daemon.wait_for_signals(notes_rx).await?;
        info!("shutting down: stopping tasks and flushing the state store");
        watcher.abort();
        web.stop().await;
        let deadline = tokio::time::Instant::now() + SHUTDOWN_LIMIT;
        tahoe_jobs_tasks::tahoe::let_uploads_finish();
        match tokio::time::timeout_at(deadline, handle.shutdown()).await {
            Ok(Ok(())) => info!("stopped cleanly"),
            Ok(Err(e)) => warn!("shutdown: {e}"),
            Err(_) => warn!("shutdown took longer than {SHUTDOWN_LIMIT:?}; exiting anyway"),
        }
        // Uploads the node already has (or is being sent) are let finish, or the node would
        // abandon them half-placed and refuse the same file after the restart.
        let left = tahoe_jobs_tasks::tahoe::finish_uploads(deadline).await;
        if left > 0 {
            warn!(uploads = left, "uploads still unanswered at the end of the shutdown budget were cut off");
        }
        if let (Some(stop), Some(task)) = (proxy_stop, proxy_task) {
            stop.notify_one();
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        anyhow::Ok(0)
    });
    // Whatever is still running on the task runtime is cut off here.
    tasks.shutdown_timeout(Duration::from_millis(100));
    code
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

/// What the signal loop works with.
struct Daemon<'a> {
    global: &'a GlobalArgs,
    handle: &'a EngineHandle,
    web: &'a WebServer,
    /// The server names `[budget]` uses, for the node watch.
    names: &'a RwLock<Vec<String>>,
    /// Wakes the node watch at once (after a reload).
    refresh: &'a Notify,
    shaping_addr: Option<std::net::SocketAddr>,
    /// The client options the task factories read: `[jobs] node.timeout`.
    client: &'a SharedClientOptions,
    /// The hooks and notification settings events are handled with.
    hooks: &'a watch::Sender<Arc<tahoe_jobs_config::HookSettings>>,
}

impl Daemon<'_> {
    /// Returns on SIGINT or SIGTERM; reloads the configuration on SIGHUP; shows what the node
    /// watch finds on the status page.
    async fn wait_for_signals(
        &self,
        mut notes: watch::Receiver<Vec<String>>,
    ) -> anyhow::Result<()> {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut hangup = signal(SignalKind::hangup())?;
        let mut watching = true;
        loop {
            tokio::select! {
                _ = interrupt.recv() => return Ok(()),
                _ = terminate.recv() => return Ok(()),
                _ = hangup.recv() => self.reload().await,
                changed = notes.changed(), if watching => match changed {
                    Ok(()) => self.web.set_budget_notes(notes.borrow_and_update().clone()),
                    Err(_) => watching = false,
                },
            }
        }
    }

    async fn reload(&self) {
        info!("SIGHUP: reloading the configuration");
        match super::load_config(self.global) {
            Err(e) => error!("the new configuration is invalid; keeping the running one: {e}"),
            Ok(config) => match self.handle.reload(config.jobs.clone()).await {
                Ok(summary) => {
                    info!(?summary, "configuration reloaded");
                    if let Err(e) = self.handle.update_budget(config.budget.clone()).await {
                        error!("the new [budget] could not be applied: {e}");
                    }
                    // Runs started from now on use it; a run in progress keeps its own.
                    self.client
                        .set(ClientOptions::from_settings(&config.daemon));
                    self.hooks.send_replace(Arc::new(config.hooks.clone()));
                    if config.daemon.shaping_addr != self.shaping_addr {
                        warn!(
                            "[jobs] shaping.port changed: the shaping proxy moves at the next \
                             start of tahoe-jobs run, not on reload"
                        );
                    }
                    *self.names.write().unwrap_or_else(|e| e.into_inner()) =
                        node_watch::configured_names(&config);
                    self.refresh.notify_one();
                    self.web.set_config(Arc::new(config));
                }
                Err(e) => error!("reload refused; keeping the running jobs: {e}"),
            },
        }
    }
}
