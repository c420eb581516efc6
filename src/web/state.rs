//! What the handlers share: the engine handle, the control token, the configuration (replaced
//! on SIGHUP), the rate samples and what the daemon adds to the budget (the shaping proxy's
//! exact figures, notes on enforcement), the rate history behind the graphs; and how a view is
//! gathered from them.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tahoe_jobs_config::Config;
use tahoe_jobs_engine::shaping::{ShapingControl, ShapingStats};
use tahoe_jobs_engine::{BudgetReport, EngineError, EngineHandle, EngineStatus};

use super::rate_history::RateHistory;
use super::rates::RateTracker;
use super::token::ControlToken;
use super::view::{self, ControlView, Inputs, StatusView};

pub struct WebState {
    pub engine: EngineHandle,
    pub token: ControlToken,
    config: RwLock<Arc<Config>>,
    rates: Mutex<RateTracker>,
    rate_history: Mutex<RateHistory>,
    extras: RwLock<BudgetExtras>,
}

/// What the daemon knows about the budget beyond the engine's report.
#[derive(Default)]
struct BudgetExtras {
    shaping: Option<ShapingControl>,
    notes: Vec<String>,
}

impl WebState {
    pub fn new(engine: EngineHandle, token: ControlToken, config: Arc<Config>) -> Self {
        WebState {
            engine,
            token,
            config: RwLock::new(config),
            rates: Mutex::new(RateTracker::new()),
            rate_history: Mutex::new(RateHistory::new()),
            extras: RwLock::new(BudgetExtras::default()),
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

    /// The running shaping proxy, whose exact figures replace the estimates while exact
    /// shaping is on.
    pub fn set_shaping(&self, control: ShapingControl) {
        self.extras
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .shaping = Some(control);
    }

    /// Replaces the notes shown in the budget section (the mode in force, problems found).
    pub fn set_budget_notes(&self, notes: Vec<String>) {
        self.extras.write().unwrap_or_else(|e| e.into_inner()).notes = notes;
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

    fn rate_history(&self) -> MutexGuard<'_, RateHistory> {
        self.rate_history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Samples the engine for the rates and the graphs (every few seconds, and at each view).
    pub async fn sample(&self) {
        if let Ok(status) = self.engine.status().await {
            self.observe(&status);
            if let Some(budget) = self.budget().await {
                self.rate_history().observe_budget(&budget, status.now);
            }
        }
    }

    /// The budget's report, with the shaping proxy's exact figures while exact shaping is on;
    /// `None` when the budget cannot answer.
    async fn budget(&self) -> Option<BudgetReport> {
        let mut budget = self.engine.budget().await.ok()?;
        let shaping = self
            .extras
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .shaping
            .clone();
        if let Some(shaping) = &shaping {
            with_exact_figures(&mut budget, &shaping.stats());
        }
        Some(budget)
    }

    /// The public view, now.
    pub async fn public_view(&self) -> Result<StatusView, EngineError> {
        self.with_inputs(view::build).await
    }

    /// The control page's view, now.
    pub async fn control_view(&self) -> Result<ControlView, EngineError> {
        self.with_inputs(view::build_control).await
    }

    /// Gathers what a view is built from and hands it to `build`.
    async fn with_inputs<T: HasBudget>(
        &self,
        build: impl FnOnce(&Inputs<'_>) -> T,
    ) -> Result<T, EngineError> {
        let status = self.engine.status().await?;
        // A budget that cannot answer leaves its section out rather than the whole page.
        let budget = self.budget().await;
        let notes = self
            .extras
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .notes
            .clone();
        let overrides = self.engine.overrides().await?;
        self.observe(&status);
        if let Some(b) = &budget {
            self.rate_history().observe_budget(b, status.now);
        }
        let config = self.config();
        let rates = self.rates();
        let rate_history = self.rate_history();
        let mut view = build(&Inputs {
            status: &status,
            budget: budget.as_ref(),
            overrides: &overrides,
            config: &config,
            rates: &rates,
            rate_history: &rate_history,
        });
        if let Some(b) = view.budget_mut() {
            b.notes = notes;
        }
        Ok(view)
    }
}

/// Both views have the budget section the daemon adds its notes to.
trait HasBudget {
    fn budget_mut(&mut self) -> Option<&mut view::BudgetView>;
}

impl HasBudget for StatusView {
    fn budget_mut(&mut self) -> Option<&mut view::BudgetView> {
        self.budget.as_mut()
    }
}

impl HasBudget for ControlView {
    fn budget_mut(&mut self) -> Option<&mut view::BudgetView> {
        self.public.budget.as_mut()
    }
}

/// While exact shaping is on, the feed-pacing gate leaves servers and the total to the proxy,
/// so their figures are the proxy's: counted on the wire, per server, both ways.
fn with_exact_figures(report: &mut BudgetReport, proxy: &ShapingStats) {
    if !report.stats.exact_shaping {
        return;
    }
    report.stats.total = proxy.total;
    for (id, d) in &proxy.destinations {
        report.stats.destinations.insert(id.clone(), *d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tahoe_jobs_engine::limits::{Accounting, DestinationStats, FlowStats};

    #[test]
    fn exact_figures_replace_the_estimates_only_in_exact_mode() {
        let mut report = super::super::fixture::budget();
        let flow = |bytes| FlowStats {
            bytes,
            ..FlowStats::default()
        };
        let proxy = ShapingStats {
            listening: "127.0.0.1:3458".parse().unwrap(),
            total: tahoe_jobs_engine::limits::DirectionStats {
                upload: flow(7),
                download: flow(8),
            },
            destinations: [(
                "v0-parents".to_string(),
                DestinationStats {
                    mode: Accounting::Exact,
                    upload: flow(5),
                    download: flow(6),
                },
            )]
            .into(),
            open_connections: 1,
            accepted_connections: 1,
            failed_connections: 0,
        };
        let before = report.clone();
        report.stats.exact_shaping = false;
        with_exact_figures(&mut report, &proxy);
        assert_eq!(report.stats.destinations, before.stats.destinations);
        report.stats.exact_shaping = true;
        with_exact_figures(&mut report, &proxy);
        assert_eq!(report.stats.total.upload.bytes, 7);
        let d = &report.stats.destinations["v0-parents"];
        assert_eq!((d.mode, d.upload.bytes), (Accounting::Exact, 5));
    }
}
