//! What the handlers share: the engine handle, the control token, the configuration (replaced
//! on SIGHUP) and the rate samples; and how a view is gathered from them.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tahoe_jobs_config::Config;
use tahoe_jobs_engine::{EngineError, EngineHandle, EngineStatus};

use super::rates::RateTracker;
use super::token::ControlToken;
use super::view::{self, Audience, Inputs, StatusView};

pub struct WebState {
    pub engine: EngineHandle,
    pub token: ControlToken,
    config: RwLock<Arc<Config>>,
    rates: Mutex<RateTracker>,
}

impl WebState {
    pub fn new(engine: EngineHandle, token: ControlToken, config: Arc<Config>) -> Self {
        WebState {
            engine,
            token,
            config: RwLock::new(config),
            rates: Mutex::new(RateTracker::new()),
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The configuration after a reload: the pages show the new file values and sources.
    pub fn set_config(&self, config: Arc<Config>) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    fn rates(&self) -> MutexGuard<'_, RateTracker> {
        self.rates.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records every job's counters for the rates.
    pub fn observe(&self, status: &EngineStatus) {
        let mut rates = self.rates();
        for job in &status.jobs {
            let running = matches!(
                job.state.kind,
                tahoe_jobs_engine::StateKind::Running | tahoe_jobs_engine::StateKind::Stopping
            );
            let run = job.last_started.filter(|_| running);
            rates.observe(&job.id, run, status.now, &job.progress.counters);
        }
        rates.retain(|id| status.job(id).is_some());
    }

    /// The view for `audience`, now.
    pub async fn view(&self, audience: Audience) -> Result<StatusView, EngineError> {
        let status = self.engine.status().await?;
        // A budget that cannot answer leaves its section out rather than the whole page.
        let budget = self.engine.budget().await.ok();
        let overrides = self.engine.overrides().await?;
        self.observe(&status);
        let config = self.config();
        let rates = self.rates();
        Ok(view::build(
            &Inputs {
                status: &status,
                budget: budget.as_ref(),
                overrides: &overrides,
                config: &config,
                rates: &rates,
            },
            audience,
        ))
    }
}
