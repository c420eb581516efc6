//! The validated configuration: typed values only, each with the place it came from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use jiff::tz::TimeZone;

use crate::cpu::CpuShare;
use crate::rate::RateSchedule;
pub use crate::schema::TaskParams;
use crate::windows::Windows;

/// Everything tahoe-jobs was told, after layering and validation.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_dir: PathBuf,
    pub daemon: DaemonSettings,
    pub budget: BudgetSettings,
    pub jobs: Vec<JobConfig>,
    /// What is run or sent when a job succeeds, fails or becomes overdue.
    pub hooks: HookSettings,
    /// Every effective value with its origin, for `tahoe-jobs config` and the control page.
    pub settings: Vec<Setting>,
    /// Legal but probably unintended settings (a window that never opens, ...).
    pub warnings: Vec<String>,
}

impl Config {
    pub fn job(&self, id: &str) -> Option<&JobConfig> {
        self.jobs.iter().find(|j| j.id() == id || j.name == id)
    }
}

/// `[jobs]`: settings of the daemon itself.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    pub web_addr: SocketAddr,
    pub state_dir: PathBuf,
    pub timezone: TimeZone,
    pub timezone_name: String,
    /// Where the SOCKS5 shaping proxy listens (`[jobs] shaping.port`); `None` when exact
    /// shaping is off.
    pub shaping_addr: Option<SocketAddr>,
    /// How long the Tahoe node may stay silent on one request before it counts as unreachable
    /// (`[jobs] node.timeout`). An upload's answer comes only once the node has stored the
    /// whole file, so this must cover the largest file at the slowest rate.
    pub node_timeout: Duration,
    /// The most the state store's page cache may hold, in bytes (`[jobs] cache_size`); the
    /// one-shot commands use it for their own databases too.
    pub cache_size: u64,
}

/// Hooks and notifications: per job, `on_success`, `on_failure` and `on_overdue` commands;
/// `[jobs] hooks.timeout` and `[jobs] notify.url` for all.
#[derive(Debug, Clone, PartialEq)]
pub struct HookSettings {
    /// How long a hook command may run before it is killed.
    pub timeout: Duration,
    /// Where every job's events are POSTed as JSON; `None` for nowhere.
    pub notify_url: Option<String>,
    /// Commands by job id (`backup.b1`); jobs without any are absent.
    pub commands: BTreeMap<String, JobHooks>,
}

impl Default for HookSettings {
    fn default() -> Self {
        HookSettings {
            timeout: DEFAULT_HOOK_TIMEOUT,
            notify_url: None,
            commands: BTreeMap::new(),
        }
    }
}

/// `[jobs] hooks.timeout` when none is given.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// One job's hook commands, each run with `sh -c`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobHooks {
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
    pub on_overdue: Option<String>,
}

impl JobHooks {
    pub fn is_empty(&self) -> bool {
        self.on_success.is_none() && self.on_failure.is_none() && self.on_overdue.is_none()
    }
}

/// `[budget]`: limits shared by all jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSettings {
    pub upload: RateSchedule,
    pub download: RateSchedule,
    pub cpu: CpuShare,
    /// Keyed by storage server id (`v0-...`) or nickname, as written.
    pub servers: BTreeMap<String, ServerLimits>,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings {
            upload: RateSchedule::unlimited(),
            download: RateSchedule::unlimited(),
            cpu: CpuShare::UNLIMITED,
            servers: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerLimits {
    pub upload: RateSchedule,
    pub download: RateSchedule,
}

/// When a job may run.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub frequency: Duration,
    pub allowed_times: Windows,
    pub enabled: bool,
    /// How long after its last completion (or, never completed, after it was first seen) the
    /// job counts as overdue and the status says so loudly (`overdue_after`); `None` = `off`.
    pub overdue_after: Option<Duration>,
}

impl Schedule {
    /// `overdue_after` when none is given: twice the frequency plus a day, so a job that misses
    /// one run (a closed window, a node that was down for a night) is not yet flagged.
    pub fn default_overdue_after(frequency: Duration) -> Duration {
        frequency
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(86_400))
    }
}

/// A job's own limits.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLimits {
    pub bandwidth: RateSchedule,
    pub cpu: CpuShare,
}

/// One job: `[backup] b1.*` becomes `JobConfig { task_type: "backup", name: "b1", .. }`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    pub task_type: String,
    pub name: String,
    pub schedule: Schedule,
    pub limits: JobLimits,
    pub params: TaskParams,
}

impl JobConfig {
    /// The job's unique id, `backup.b1`.
    pub fn id(&self) -> String {
        format!("{}.{}", self.task_type, self.name)
    }
}

/// Where a job writes or reads on the grid.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// `alias:path` (path may be empty).
    Alias { alias: String, path: String },
    /// A capability string (a secret: never displayed).
    Cap { cap: String, path: String },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Alias { alias, path } => write!(f, "{alias}:{path}"),
            Target::Cap { path, .. } if path.is_empty() => f.write_str("<capability>"),
            Target::Cap { path, .. } => write!(f, "<capability>/{path}"),
        }
    }
}

/// Read from a key's text with [`parse_target`](crate::values::parse_target).
impl<'de> serde::Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as Deserialize>::deserialize(d)?;
        crate::values::parse_target(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

/// One effective value and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    /// As displayed: capabilities are redacted.
    pub value: String,
    pub origin: String,
}
