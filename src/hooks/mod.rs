//! Hooks and notifications: what the daemon does with the engine's job events. Per job, the
//! `on_success`, `on_failure` or `on_overdue` command runs ([`command`]) with the event in
//! `TAHOE_JOB_*` environment variables ([`event`]); with `[jobs] notify.url`, the same event is
//! POSTed there as JSON, retried with backoff ([`notify`]).
//!
//! The engine never waits for any of it: events come off its broadcast stream, and each hook
//! and each delivery runs as its own task, bounded by its time limit or its retry schedule. A
//! hook that fails, hangs or cannot be started, or a notification that cannot be delivered, is
//! logged as a warning and changes nothing else.

pub mod command;
pub mod event;
pub mod notify;

use std::sync::Arc;

use tahoe_jobs_config::HookSettings;
use tahoe_jobs_engine::{EventReceiver, JobEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tracing::{info, warn};

/// Listens to the engine's events until the engine goes away, with the settings `settings`
/// holds at each event (a reload changes them for later events). Spawn it on the daemon's
/// runtime right after the engine starts.
pub async fn dispatch(mut events: EventReceiver, settings: watch::Receiver<Arc<HookSettings>>) {
    let client = notify::client();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(lost)) => {
                warn!(
                    lost,
                    "hooks fell behind the job events; the oldest were dropped"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let settings = settings.borrow().clone();
        handle(event, &settings, &client);
    }
}

/// Starts the hook and the notification for one event, each on its own task.
fn handle(event: JobEvent, settings: &HookSettings, client: &reqwest::Client) {
    let event = Arc::new(event::redacted(event));
    let command = settings
        .commands
        .get(&event.job)
        .and_then(|hooks| event::hook_for(event.kind, hooks))
        .map(str::to_string);
    if let Some(command) = command {
        let (event, timeout) = (event.clone(), settings.timeout);
        tokio::spawn(async move {
            let env = event::environment(&event);
            let name = event::hook_name(event.kind);
            let outcome = command::run(&command, &env, timeout).await;
            command::report(&event.job, name, &outcome);
        });
    }
    if let Some(url) = settings.notify_url.clone() {
        let client = client.clone();
        tokio::spawn(async move {
            let body = event::payload(&event);
            let shown = tahoe_jobs_config::hooks::shown_url(&url);
            match notify::deliver(&client, &url, &body, notify::real_sleep).await {
                Ok(attempts) => info!(
                    job = %event.job,
                    event = event.kind.as_str(),
                    url = %shown,
                    attempts,
                    "notification delivered"
                ),
                Err(e) => warn!(
                    job = %event.job,
                    event = event.kind.as_str(),
                    url = %shown,
                    "notification not delivered: {e}"
                ),
            }
        });
    }
}
