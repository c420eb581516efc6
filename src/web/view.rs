//! The view model every page, JSON form and metric is rendered from, built by one pure function
//! from the engine's status, the budget, the live overrides and the configuration.
//!
//! Two types, one per audience. [`StatusView`] is the public view: counts, states, rates, times,
//! estimates and history, with capabilities and paths hidden from error messages; it has no
//! field that could hold a secret, so the public page, its JSON and the metrics, which are
//! rendered from it alone, cannot show one by construction. [`ControlView`] is that same public
//! view plus [`PrivateView`]: what may name files (the current item, recent warnings, error
//! messages with their paths) and the configuration with the source of each value.
//! Capabilities are hidden from both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tahoe_jobs_config::jiff::tz::TimeZone;
use tahoe_jobs_config::jiff::Timestamp;
use tahoe_jobs_config::{BudgetSettings, Config, JobConfig};
use tahoe_jobs_engine::limits::FlowStats;
use tahoe_jobs_engine::overrides::{OverrideValue, BUDGET_KEYS, JOB_KEYS};
use tahoe_jobs_engine::status::{OutcomeView, StateKind};
use tahoe_jobs_engine::{BudgetReport, EngineStatus, JobStatus, LiveOverrides};

use super::eta;
use super::graphs::{self, GraphsView, RunView, WeekView};
use super::rate_history::RateHistory;
use super::rates::RateTracker;
use super::redact::{hide_caps, public_text};

/// Everything a view is built from.
pub struct Inputs<'a> {
    pub status: &'a EngineStatus,
    pub budget: Option<&'a BudgetReport>,
    pub overrides: &'a LiveOverrides,
    pub config: &'a Config,
    pub rates: &'a RateTracker,
    /// The samples behind the rate graphs.
    pub rate_history: &'a RateHistory,
}

/// The public view: the `?t=json` form of `/`, and what the public page and the metrics are
/// rendered from. No field of it (or of the types it holds) can carry a path, a capability or
/// the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    pub now: Timestamp,
    pub timezone: String,
    pub jobs: Vec<JobView>,
    pub budget: Option<BudgetView>,
    /// The rate graphs' samples, per job and per storage server (not in the JSON).
    #[serde(skip)]
    pub graphs: GraphsView,
}

impl StatusView {
    pub fn job(&self, id: &str) -> Option<&JobView> {
        self.jobs.iter().find(|j| j.id == id)
    }
}

/// The control page's view (and its `?t=json`, and the private API's status): the public view
/// with what only the owner may see beside it, under `private`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlView {
    #[serde(flatten)]
    pub public: StatusView,
    pub private: PrivateView,
}

impl std::ops::Deref for ControlView {
    type Target = StatusView;

    fn deref(&self) -> &StatusView {
        &self.public
    }
}

impl ControlView {
    /// What only the control page shows about a job.
    pub fn job_private(&self, id: &str) -> Option<&JobPrivate> {
        self.private.jobs.get(id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    pub task_type: String,
    pub enabled: bool,
    /// `not_due`, `waiting_for_window`, `running`, `stopping`, `stopped_early`, `paused`,
    /// `failed`, `completed`, `disabled` or `new`.
    pub state: String,
    /// The state in words, with its time: "waiting for the window (opens Sat 22:00)".
    pub state_text: String,
    pub state_at: Option<Timestamp>,
    pub window: WindowView,
    pub frequency_secs: u64,
    pub last_started: Option<Timestamp>,
    pub last_completed: Option<Timestamp>,
    /// `completed`, `stopped_early` or `failed`.
    pub last_outcome: Option<String>,
    /// When the run that has not completed yet began (it resumes at the next opportunity).
    pub unfinished_since: Option<Timestamp>,
    /// `None` when due now.
    pub next_due: Option<Timestamp>,
    pub last_error: Option<ErrorView>,
    pub consecutive_failures: u32,
    pub paused: bool,
    pub paused_until: Option<Timestamp>,
    /// When the daemon first saw the job (a job never completed is overdue counting from here).
    #[serde(default)]
    pub first_seen: Option<Timestamp>,
    /// `overdue_after` in seconds; `None` when it is `off`.
    #[serde(default)]
    pub overdue_after_secs: Option<u64>,
    /// Set while the job has not completed for longer than `overdue_after`; `null` otherwise.
    #[serde(default)]
    pub overdue: Option<OverdueView>,
    /// The current run's counters while running, else the last run's.
    pub counters: BTreeMap<String, u64>,
    /// What the task says about the current run (else the last one), by name, with
    /// capabilities and paths hidden: `data_path` is `direct`, `node` or
    /// `node (fallback: <reason>)` for the tasks that reach the grid.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Totals expected for this run (the previous completed run's).
    pub estimates: BTreeMap<String, u64>,
    pub progress: Option<ProgressView>,
    pub warnings_total: u64,
    /// The settings that can be changed live, with their file values.
    pub settings: Vec<LiveSetting>,
    /// The allowed windows of the next seven days.
    #[serde(default)]
    pub week: Option<WeekView>,
    /// The last runs (at most 50), newest first.
    #[serde(default)]
    pub history: Vec<RunView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowView {
    pub open: bool,
    pub next_change: Option<Timestamp>,
    /// "open until 08:00", "closed, opens Sat 22:00", "always open", "never opens".
    pub text: String,
}

/// An overdue job: since when, for how long, and the sentence the banner shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueView {
    pub since: Timestamp,
    pub for_secs: u64,
    /// "backup.b1 is overdue: last completed 16 days ago, expected every 1 week".
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorView {
    pub at: Timestamp,
    pub message: String,
}

/// How a running job is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressView {
    /// Bytes uploaded per second over the last minute.
    pub upload_bytes_per_second: Option<f64>,
    /// The counter progress is measured on (`bytes_seen`, `files_seen`, `objects_checked`)
    /// and its recent rate per second.
    pub measure: Option<String>,
    pub measure_per_second: Option<f64>,
    pub files_left: Option<u64>,
    pub bytes_left: Option<u64>,
    pub eta: Option<EtaView>,
    /// Why there is no ETA, when there is none.
    pub eta_missing: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtaView {
    pub at: Timestamp,
    /// Windows that must still open after the current one.
    pub more_windows: u32,
    pub text: String,
}

/// A setting that can be changed live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSetting {
    pub key: String,
    /// The value in force.
    pub value: String,
    /// The value from the configuration files.
    pub file_value: String,
    /// When it was changed live; `None` when the file's value is in force.
    pub live_since: Option<Timestamp>,
}

/// What only the control page shows about a job: it may name files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPrivate {
    pub current: Option<String>,
    pub warnings: Vec<ErrorView>,
    /// The last error as the task gave it (paths included; capabilities hidden).
    #[serde(default)]
    pub last_error: Option<ErrorView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetView {
    /// `exact` when the shaping proxy meters the servers, else `estimated`.
    pub accounting: String,
    pub limits_at: Timestamp,
    pub next_change: Option<Timestamp>,
    pub total: PairView,
    pub jobs: BTreeMap<String, JobBudgetView>,
    /// By storage server.
    pub servers: BTreeMap<String, ServerBudgetView>,
    pub cpu_limit: Option<f64>,
    pub cpu_recent_share: Option<f64>,
    pub cpu_error: Option<String>,
    /// The `[budget]` settings that can be changed live.
    pub settings: Vec<LiveSetting>,
    /// What the daemon says about enforcement: which mode holds the servers and the total
    /// (exact shaping or feed pacing), and problems such as a nickname naming no server.
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlowView {
    pub rate_bytes_per_second: f64,
    pub bytes: u64,
    pub limit_bytes_per_second: Option<u64>,
    pub throttled_seconds: f64,
}

impl From<FlowStats> for FlowView {
    fn from(f: FlowStats) -> Self {
        FlowView {
            rate_bytes_per_second: f.rate,
            bytes: f.bytes,
            limit_bytes_per_second: f.limit,
            throttled_seconds: f.throttled_seconds,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairView {
    pub upload: FlowView,
    pub download: FlowView,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JobBudgetView {
    pub upload: FlowView,
    pub download: FlowView,
    pub cpu_limit: Option<f64>,
    pub cpu_paused_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerBudgetView {
    pub accounting: String,
    pub upload: FlowView,
    pub download: FlowView,
}

/// What only the control page shows: about the daemon, and about each job by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivateView {
    pub node_dir: String,
    pub state_dir: String,
    /// Every effective value with its source.
    pub settings: Vec<SettingView>,
    #[serde(default)]
    pub jobs: BTreeMap<String, JobPrivate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingView {
    pub key: String,
    pub value: String,
    pub origin: String,
    /// The value changed live that replaces this one, if any.
    pub live: Option<String>,
}

/// Builds the public view. Every text from outside (error messages) goes through
/// [`public_text`] here, the one place a public view is made.
pub fn build(inputs: &Inputs<'_>) -> StatusView {
    let now = inputs.status.now;
    let tz = &inputs.config.daemon.timezone;
    let jobs = inputs
        .status
        .jobs
        .iter()
        .map(|job| job_view(inputs, job, now, tz))
        .collect();
    StatusView {
        now,
        timezone: inputs.config.daemon.timezone_name.clone(),
        jobs,
        budget: inputs.budget.map(|b| budget_view(inputs, b)),
        graphs: graphs::graphs(
            inputs.status.jobs.iter().map(|j| j.id.clone()),
            inputs.budget,
            inputs.rate_history,
            now,
        ),
    }
}

/// Builds the control page's view: the public view and the private part beside it.
pub fn build_control(inputs: &Inputs<'_>) -> ControlView {
    ControlView {
        public: build(inputs),
        private: private_view(inputs),
    }
}

fn job_view(inputs: &Inputs<'_>, job: &JobStatus, now: Timestamp, tz: &TimeZone) -> JobView {
    let file = inputs.config.jobs.iter().find(|j| j.id() == job.id);
    let effective = file.map(|f| inputs.overrides.apply_job(f));
    let running = matches!(job.state.kind, StateKind::Running | StateKind::Stopping);
    let progress = running.then(|| progress_view(inputs, job, effective.as_ref(), now, tz));
    JobView {
        id: job.id.clone(),
        task_type: job.task_type.clone(),
        enabled: job.enabled,
        state: state_name(job.state.kind).to_string(),
        state_text: state_text(job, now, tz),
        state_at: job.state.at,
        window: window_view(job, now, tz),
        frequency_secs: job.frequency_secs,
        last_started: job.last_started,
        last_completed: job.last_completed,
        last_outcome: job.last_outcome.as_ref().map(|o| {
            match o {
                OutcomeView::Completed { .. } => "completed",
                OutcomeView::StoppedEarly { .. } => "stopped_early",
                OutcomeView::Failed { .. } => "failed",
            }
            .to_string()
        }),
        unfinished_since: job.unfinished_run_since,
        next_due: job.next_due,
        last_error: job.last_error.as_ref().map(|e| ErrorView {
            at: e.at,
            message: public_text(&e.message),
        }),
        consecutive_failures: job.consecutive_failures,
        paused: job.paused,
        paused_until: job.paused_until,
        first_seen: job.first_seen,
        overdue_after_secs: job.overdue_after_secs,
        overdue: job.overdue.map(|o| OverdueView {
            since: o.since,
            for_secs: o.for_secs,
            text: overdue_text(job, now),
        }),
        counters: if running || !job.progress.counters.is_empty() {
            job.progress.counters.clone()
        } else {
            job.last_run_counters.clone()
        },
        labels: run_labels(job, running)
            .iter()
            .map(|(name, value)| (name.clone(), public_text(value)))
            .collect(),
        estimates: job.progress.estimates.clone(),
        progress,
        warnings_total: job.progress.warnings_total,
        settings: file
            .map(|f| job_settings(f, &inputs.overrides.job(&job.id)))
            .unwrap_or_default(),
        week: effective
            .as_ref()
            .map(|c| graphs::week(&c.schedule.allowed_times, now, tz)),
        history: graphs::runs(&job.history),
    }
}

/// The labels of the current run, or of the last one: from its progress while the daemon has
/// seen it, else (after a restart) from the run history.
fn run_labels(job: &JobStatus, running: bool) -> &BTreeMap<String, String> {
    match job.history.last() {
        Some(last) if !running && job.progress.labels.is_empty() => &last.labels,
        _ => &job.progress.labels,
    }
}

/// What the control page adds about a job. Capabilities are hidden here too: the control page
/// has no use for one, and it is a page a user might paste into a bug report.
fn job_private(job: &JobStatus) -> JobPrivate {
    JobPrivate {
        current: job.progress.current.as_deref().map(hide_caps),
        warnings: job
            .progress
            .warnings
            .iter()
            .rev()
            .map(|w| ErrorView {
                at: w.at,
                message: hide_caps(&w.message),
            })
            .collect(),
        last_error: job.last_error.as_ref().map(|e| ErrorView {
            at: e.at,
            message: hide_caps(&e.message),
        }),
    }
}

fn progress_view(
    inputs: &Inputs<'_>,
    job: &JobStatus,
    effective: Option<&JobConfig>,
    now: Timestamp,
    tz: &TimeZone,
) -> ProgressView {
    let counters = &job.progress.counters;
    let estimates = &job.progress.estimates;
    let rates = inputs.rates;
    let measure = eta::measure(counters, estimates);
    let measure_rate = measure
        .as_ref()
        .and_then(|m| rates.rate(&job.id, m.counter));
    let mut view = ProgressView {
        upload_bytes_per_second: rates.rate(&job.id, "bytes_uploaded"),
        measure: measure.as_ref().map(|m| m.counter.to_string()),
        measure_per_second: measure_rate,
        files_left: eta::left_of("files_seen", counters, estimates),
        bytes_left: eta::left_of("bytes_seen", counters, estimates),
        eta: None,
        eta_missing: None,
    };
    let Some(measure) = measure else {
        view.eta_missing = Some("no previous completed run to estimate from".into());
        return view;
    };
    let Some(work) = measure_rate.and_then(|r| eta::work_left(measure.left(), r)) else {
        view.eta_missing = Some("measuring the pace".into());
        return view;
    };
    let windows = effective.map(|c| c.schedule.allowed_times.clone());
    let windows = windows.unwrap_or(tahoe_jobs_config::Windows::Always);
    // The status does not say whether this run ignores its window; a run in a closed window
    // can only be one that does.
    let ignore = !job.window.open;
    match eta::finish(&windows, ignore, now, tz, work) {
        Some(found) => {
            let windows_matter = !ignore && !windows.is_always();
            view.eta = Some(EtaView {
                at: found.at,
                more_windows: found.more_windows,
                text: eta::describe(&found, windows_matter, now, tz),
            });
        }
        None => view.eta_missing = Some("not within the windows ahead".into()),
    }
    view
}

/// The snake_case name of a state kind, as in the engine's JSON.
pub fn state_name(kind: StateKind) -> &'static str {
    match kind {
        StateKind::New => "new",
        StateKind::Disabled => "disabled",
        StateKind::Paused => "paused",
        StateKind::NotDue => "not_due",
        StateKind::WaitingForWindow => "waiting_for_window",
        StateKind::Running => "running",
        StateKind::Stopping => "stopping",
        StateKind::StoppedEarly => "stopped_early",
        StateKind::Completed => "completed",
        StateKind::Failed => "failed",
    }
}

fn state_text(job: &JobStatus, now: Timestamp, tz: &TimeZone) -> String {
    let t = |at: Timestamp| eta::short_time(at, now, tz);
    let reason = job
        .state
        .reason
        .map_or("without being asked".to_string(), |r| r.to_string());
    let at = job.state.at;
    match (job.state.kind, at) {
        (StateKind::New, _) => "starting".into(),
        (StateKind::Disabled, _) => "disabled".into(),
        (StateKind::Paused, None) => "paused until resumed".into(),
        (StateKind::Paused, Some(at)) => format!("paused until {}", t(at)),
        (StateKind::NotDue, Some(at)) => format!("not due until {}", t(at)),
        (StateKind::NotDue, None) => "not due".into(),
        (StateKind::WaitingForWindow, Some(at)) if job.unfinished_run_since.is_some() => {
            format!("stopped early, resumes when the window opens ({})", t(at))
        }
        (StateKind::WaitingForWindow, Some(at)) => {
            format!("waiting for the window (opens {})", t(at))
        }
        (StateKind::WaitingForWindow, None) => "waiting for a window that never opens".into(),
        (StateKind::Running, Some(at)) => format!("running since {}", t(at)),
        (StateKind::Running, None) => "running".into(),
        (StateKind::Stopping, _) => format!("stopping ({reason})"),
        (StateKind::StoppedEarly, _) => format!("stopped early ({reason})"),
        (StateKind::Completed, _) => "completed".into(),
        (StateKind::Failed, Some(at)) => format!("failed, retrying at {}", t(at)),
        (StateKind::Failed, None) => "failed".into(),
    }
}

/// What the banner says about an overdue job: how long since it last completed (or, never
/// completed, since it was first seen) and how often it should run. Only the id, durations and
/// the frequency: nothing a public page may not show.
fn overdue_text(job: &JobStatus, now: Timestamp) -> String {
    let ago = |at: Timestamp| {
        let d = std::time::Duration::try_from(now.duration_since(at)).unwrap_or_default();
        eta::long_duration(d)
    };
    let every = eta::long_duration(std::time::Duration::from_secs(job.frequency_secs));
    let last = match (job.last_completed, job.first_seen) {
        (Some(at), _) => format!("last completed {} ago", ago(at)),
        (None, Some(seen)) => format!("never completed in the {} since it was set up", ago(seen)),
        (None, None) => "never completed".to_string(),
    };
    format!("{} is overdue: {last}, expected every {every}", job.id)
}

fn window_view(job: &JobStatus, now: Timestamp, tz: &TimeZone) -> WindowView {
    let w = job.window;
    let text = match (w.open, w.next_change) {
        (true, Some(at)) => format!("open until {}", eta::short_time(at, now, tz)),
        (true, None) => "always open".into(),
        (false, Some(at)) => format!("closed, opens {}", eta::short_time(at, now, tz)),
        (false, None) => "never opens".into(),
    };
    WindowView {
        open: w.open,
        next_change: w.next_change,
        text,
    }
}

fn live(key: &str, file_value: String, overrides: &BTreeMap<String, OverrideValue>) -> LiveSetting {
    let o = overrides.get(key);
    LiveSetting {
        key: key.to_string(),
        value: o.map_or_else(|| file_value.clone(), |o| o.value.clone()),
        file_value,
        live_since: o.map(|o| o.set_at),
    }
}

fn job_settings(file: &JobConfig, overrides: &BTreeMap<String, OverrideValue>) -> Vec<LiveSetting> {
    JOB_KEYS
        .iter()
        .map(|&key| {
            let file_value = match key {
                "allowed_times" => file.schedule.allowed_times.to_string(),
                "bandwidth" => file.limits.bandwidth.to_string(),
                _ => file.limits.cpu.to_string(),
            };
            live(key, file_value, overrides)
        })
        .collect()
}

fn budget_settings(
    file: &BudgetSettings,
    overrides: &BTreeMap<String, OverrideValue>,
) -> Vec<LiveSetting> {
    let mut out: Vec<LiveSetting> = BUDGET_KEYS
        .iter()
        .map(|&key| {
            let file_value = match key {
                "upload" => file.upload.to_string(),
                "download" => file.download.to_string(),
                _ => file.cpu.to_string(),
            };
            live(key, file_value, overrides)
        })
        .collect();
    let mut server_keys: BTreeMap<String, String> = BTreeMap::new();
    for (name, limits) in &file.servers {
        server_keys.insert(format!("server.{name}.upload"), limits.upload.to_string());
        server_keys.insert(
            format!("server.{name}.download"),
            limits.download.to_string(),
        );
    }
    for key in overrides.keys().filter(|k| k.starts_with("server.")) {
        server_keys
            .entry(key.clone())
            .or_insert_with(|| "off".into());
    }
    out.extend(
        server_keys
            .into_iter()
            .map(|(key, file_value)| live(&key, file_value, overrides)),
    );
    out
}

fn budget_view(inputs: &Inputs<'_>, report: &BudgetReport) -> BudgetView {
    let stats = &report.stats;
    let limits = &report.limits;
    let accounting = if stats.exact_shaping {
        "exact"
    } else {
        "estimated"
    };
    // Every configured job appears, with its limit, even before it has moved a byte.
    let mut jobs: BTreeMap<String, JobBudgetView> = inputs
        .status
        .jobs
        .iter()
        .map(|j| {
            let l = limits.job(&j.id);
            let flow = |limit| FlowView {
                rate_bytes_per_second: 0.0,
                bytes: 0,
                limit_bytes_per_second: limit,
                throttled_seconds: 0.0,
            };
            let view = JobBudgetView {
                upload: flow(l.upload),
                download: flow(l.download),
                cpu_limit: limits.cpu_for(&j.id),
                cpu_paused_seconds: 0.0,
            };
            (j.id.clone(), view)
        })
        .collect();
    for (id, s) in &stats.jobs {
        jobs.insert(
            id.clone(),
            JobBudgetView {
                upload: s.upload.into(),
                download: s.download.into(),
                cpu_limit: s.cpu_limit,
                cpu_paused_seconds: s.cpu_paused_seconds,
            },
        );
    }
    let mut servers: BTreeMap<String, ServerBudgetView> = limits
        .destinations
        .iter()
        .map(|(id, l)| {
            let flow = |limit| FlowView {
                rate_bytes_per_second: 0.0,
                bytes: 0,
                limit_bytes_per_second: limit,
                throttled_seconds: 0.0,
            };
            let view = ServerBudgetView {
                accounting: accounting.into(),
                upload: flow(l.upload),
                download: flow(l.download),
            };
            (id.clone(), view)
        })
        .collect();
    for (id, d) in &stats.destinations {
        let accounting = match d.mode {
            tahoe_jobs_engine::limits::Accounting::Exact => "exact",
            tahoe_jobs_engine::limits::Accounting::Estimated => "estimated",
        };
        servers.insert(
            id.clone(),
            ServerBudgetView {
                accounting: accounting.into(),
                upload: d.upload.into(),
                download: d.download.into(),
            },
        );
    }
    BudgetView {
        accounting: accounting.into(),
        limits_at: limits.at,
        next_change: limits.next_change,
        total: PairView {
            upload: stats.total.upload.into(),
            download: stats.total.download.into(),
        },
        jobs,
        servers,
        cpu_limit: stats.cpu.limit,
        cpu_recent_share: stats.cpu.recent_share,
        cpu_error: stats.cpu.error.clone(),
        settings: budget_settings(&inputs.config.budget, &inputs.overrides.budget),
        notes: Vec::new(),
    }
}

fn private_view(inputs: &Inputs<'_>) -> PrivateView {
    let o = inputs.overrides;
    let live_value = |key: &str| -> Option<String> {
        if let Some(k) = key.strip_prefix("budget.") {
            return o.budget.get(k).map(|v| v.value.clone());
        }
        o.jobs.iter().find_map(|(job, m)| {
            let k = key.strip_prefix(job.as_str())?.strip_prefix('.')?;
            m.get(k).map(|v| v.value.clone())
        })
    };
    PrivateView {
        node_dir: inputs.config.node_dir.display().to_string(),
        state_dir: inputs.config.daemon.state_dir.display().to_string(),
        settings: inputs
            .config
            .settings
            .iter()
            .map(|s| SettingView {
                key: s.key.clone(),
                value: s.value.clone(),
                origin: s.origin.clone(),
                live: live_value(&s.key),
            })
            .collect(),
        jobs: inputs
            .status
            .jobs
            .iter()
            .map(|j| (j.id.clone(), job_private(j)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    fn public() -> StatusView {
        fixture::view_with_budget(&fixture::status())
    }

    #[test]
    fn a_running_backup_reads_as_the_user_needs_it() {
        let v = public();
        let job = v.job("backup.b1").unwrap();
        assert_eq!(job.state, "running");
        assert_eq!(job.state_text, "running since 22:00");
        assert_eq!(job.window.text, "open until Fri 04:00");
        let p = job.progress.as_ref().unwrap();
        assert_eq!(p.upload_bytes_per_second, Some(50_000.0));
        assert_eq!(p.measure.as_deref(), Some("bytes_seen"));
        assert_eq!(p.files_left, Some(500));
        assert_eq!(p.bytes_left, Some(5_000_000_000));
        // 5 GB left at 100 kB/s is 50,000 s of open window: the rest of tonight (5 h), Friday
        // night (6 h) and 2 h 53 min of Saturday night.
        let eta = p.eta.as_ref().unwrap();
        assert_eq!(eta.more_windows, 2);
        assert_eq!(eta.text, "about 2 more windows, done around Sun 00:53");
    }

    #[test]
    fn the_data_path_of_the_current_or_last_run_is_shown_without_secrets() {
        let v = public();
        assert_eq!(
            v.job("backup.b1").unwrap().labels["data_path"],
            "node (fallback: cannot read <path>: <capability>)"
        );
        // After a restart the daemon has no progress of the last run: its history has the label.
        let mut idle = fixture::overdue_status();
        idle.jobs[0].progress = Default::default();
        let v = fixture::view_with_budget(&idle);
        assert_eq!(v.job("backup.b1").unwrap().labels["data_path"], "direct");
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["jobs"][0]["labels"]["data_path"], "direct");
    }

    #[test]
    fn the_control_view_is_the_public_view_with_the_private_part_beside_it() {
        let control = fixture::control_view(&fixture::status(), true);
        assert_eq!(
            control.public,
            public(),
            "the same public part, paths hidden"
        );
        let private = control.job_private("backup.b1").unwrap();
        assert!(private.current.as_deref().unwrap().contains("diary"));
        assert!(private
            .last_error
            .as_ref()
            .unwrap()
            .message
            .contains("/home/alice"));
        let json = serde_json::to_value(public()).unwrap();
        assert!(json.get("private").is_none());
    }

    #[test]
    fn live_settings_show_their_file_values() {
        let v = public();
        let job = v.job("backup.b1").unwrap();
        let bw = job.settings.iter().find(|s| s.key == "bandwidth").unwrap();
        assert_eq!(bw.value, "256KiB/s");
        assert_eq!(bw.file_value, "1MiB/s");
        assert!(bw.live_since.is_some());
        let times = job
            .settings
            .iter()
            .find(|s| s.key == "allowed_times")
            .unwrap();
        assert_eq!(
            (times.value.as_str(), times.live_since),
            ("2200-0400", None)
        );
    }

    #[test]
    fn the_budget_has_every_job_and_server_with_limits() {
        let v = public();
        let b = v.budget.unwrap();
        assert_eq!(b.accounting, "estimated");
        let job = &b.jobs["backup.b1"];
        assert_eq!(job.upload.limit_bytes_per_second, Some(256 * 1024));
        assert_eq!(job.upload.throttled_seconds, 3600.0);
        assert_eq!(
            b.servers["v0-parents"].upload.limit_bytes_per_second,
            Some(64 * 1024)
        );
        let upload = b.settings.iter().find(|s| s.key == "upload").unwrap();
        assert_eq!((upload.value.as_str(), upload.live_since), ("2MiB/s", None));
    }

    #[test]
    fn a_first_run_has_no_eta_and_says_why() {
        let mut status = fixture::status();
        status.jobs[0].progress.estimates.clear();
        let v = view_of(&status);
        let p = v.jobs[0].progress.as_ref().unwrap();
        assert_eq!(p.eta, None);
        assert_eq!(p.files_left, None);
        assert!(p.eta_missing.as_deref().unwrap().contains("no previous"));
    }

    fn view_of(status: &EngineStatus) -> StatusView {
        fixture::view(status, None)
    }

    #[test]
    fn an_overdue_job_says_since_when_for_how_long_and_why() {
        let v = view_of(&fixture::overdue_status());
        let job = v.job("backup.b1").unwrap();
        assert_eq!(
            job.overdue,
            Some(OverdueView {
                since: fixture::ts("2026-01-07T22:00:00Z"),
                for_secs: 86_400,
                text: "backup.b1 is overdue: last completed 16 days ago, expected every 1 week"
                    .into(),
            })
        );
        let json = serde_json::to_value(&v).unwrap();
        let job = &json["jobs"][0];
        assert_eq!(job["overdue"]["since"], "2026-01-07T22:00:00Z");
        assert_eq!(job["overdue"]["for_secs"], 86_400);
        assert_eq!(job["last_completed"], "2025-12-23T22:00:00Z");
        assert_eq!(job["overdue_after_secs"], 15 * 86_400);
    }

    #[test]
    fn a_job_on_time_has_overdue_null_in_its_json() {
        let json = serde_json::to_value(public()).unwrap();
        let job = json["jobs"][0].as_object().unwrap();
        assert!(job.contains_key("overdue"), "the key is always there");
        assert!(job["overdue"].is_null());
        assert_eq!(job["last_completed"], "2026-01-01T03:00:00Z");
    }

    #[test]
    fn a_job_never_completed_counts_from_when_it_was_set_up() {
        let mut status = fixture::overdue_status();
        let job = &mut status.jobs[0];
        job.last_completed = None;
        job.first_seen = Some(fixture::ts("2025-12-23T22:00:00Z"));
        let v = view_of(&status);
        assert_eq!(
            v.jobs[0].overdue.as_ref().unwrap().text,
            "backup.b1 is overdue: never completed in the 16 days since it was set up, expected \
             every 1 week"
        );
    }
}
