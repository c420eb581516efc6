//! The daemon's web server (actix-web): the public status page, the private control page, their
//! JSON forms, Prometheus metrics and the private API the CLI talks to. See
//! `docs/status-and-control.md` for the security model.
//!
//! Code map:
//! - [`view`]: the view model, built by one pure function per audience (public or private);
//!   [`eta`] and [`rates`] feed its estimates; [`graphs`] and [`rate_history`] the pictures'
//!   data (week ahead, run history, rate samples); [`redact`] hides what the public may not see.
//! - [`pages`] and [`html`]: the HTML; [`charts`] and [`svg`]: the pictures (progress bars,
//!   rate graphs, week strip, run history); [`metrics`]: the Prometheus text.
//! - [`token`]: the control token and the CSRF token; [`security`]: origin checks and headers.
//! - [`routes`], [`actions`], [`api`]: what a request under `/control/<token>` asks, what it does,
//!   and the API's types (shared with the CLI).
//! - [`server`]: the handlers; [`state`]: what they share.

pub mod actions;
pub mod api;
pub mod charts;
pub mod eta;
pub mod graphs;
pub mod html;
pub mod metrics;
pub mod pages;
pub mod rate_history;
pub mod rates;
pub mod redact;
pub mod routes;
pub mod security;
pub mod server;
pub mod state;
pub mod svg;
pub mod token;
pub mod view;

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
mod leaks;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};
use tahoe_jobs_config::Config;
use tahoe_jobs_engine::EngineHandle;

use self::state::WebState;
use self::token::ControlToken;

/// How often running jobs' counters are sampled for their rates.
const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// A running web server.
pub struct WebServer {
    handle: ServerHandle,
    sampler: tokio::task::JoinHandle<()>,
    state: web::Data<WebState>,
    addr: SocketAddr,
}

/// Binds the listening socket; done before the engine starts, so a port in use fails at once.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Starts serving on `listener`. Must be called inside the running actix System.
pub fn start(
    listener: TcpListener,
    engine: EngineHandle,
    token: ControlToken,
    config: Arc<Config>,
) -> io::Result<WebServer> {
    let addr = listener.local_addr()?;
    let state = web::Data::new(WebState::new(engine, token, config));
    let data = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(server::headers())
            .configure(server::routes)
            .default_service(web::to(server::not_found))
    })
    .workers(2)
    // The daemon handles signals itself and stops the server as part of its shutdown.
    .disable_signals()
    .shutdown_timeout(2)
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_rt::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!("the web server stopped: {e}");
        }
    });
    let sampler = actix_rt::spawn(sample(state.clone()));
    Ok(WebServer {
        handle,
        sampler,
        state,
        addr,
    })
}

async fn sample(state: web::Data<WebState>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        state.sample().await;
    }
}

impl WebServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shows a reloaded configuration.
    pub fn set_config(&self, config: Arc<Config>) {
        self.state.set_config(config);
    }

    /// Shows the shaping proxy's exact figures while exact shaping is on.
    pub fn set_shaping(&self, control: tahoe_jobs_engine::shaping::ShapingControl) {
        self.state.set_shaping(control);
    }

    /// Replaces the notes in the budget section: the mode in force and problems found.
    pub fn set_budget_notes(&self, notes: Vec<String>) {
        self.state.set_budget_notes(notes);
    }

    /// Stops accepting requests and lets those in flight finish (briefly).
    pub async fn stop(self) {
        self.sampler.abort();
        self.handle.stop(true).await;
    }
}
