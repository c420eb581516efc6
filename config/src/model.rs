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
    /// The Tahoe node directory the configuration was loaded for.
    pub node_dir: PathBuf,
    /// The settings of the daemon itself (`[jobs]`).
    pub daemon: DaemonSettings,
    /// The limits shared by all jobs (`[budget]`).
    pub budget: BudgetSettings,
    /// Every configured job, of every task type.
    pub jobs: Vec<JobConfig>,
    /// What is run or sent when a job succeeds, fails or becomes overdue.
    pub hooks: HookSettings,
    /// Every effective value with its origin, for `tahoe-jobs config` and the control page.
    pub settings: Vec<Setting>,
    /// Legal but probably unintended settings (a window that never opens, ...).
    pub warnings: Vec<String>,
}

impl Config {
    /// The first job whose id (`backup.b1`) or name (`b1`) is `id`.
    pub fn job(&self, id: &str) -> Option<&JobConfig> {
        self.jobs.iter().find(|j| j.id() == id || j.name == id)
    }
}

/// `[jobs]`: settings of the daemon itself.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    /// Where the status and control web server listens (`[jobs] web.port`).
    pub web_addr: SocketAddr,
    /// Where the engine keeps its state (`[jobs] state_dir`); by default `NODEDIR/private/tahoe-jobs`.
    pub state_dir: PathBuf,
    /// The zone in which time windows and rate schedules are read (`[jobs] timezone`); by default the system's.
    pub timezone: TimeZone,
    /// The name of `timezone` as written, or the system zone's IANA name (`UTC` when it has none).
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
    /// Run after a run of the job succeeds.
    pub on_success: Option<String>,
    /// Run after a run of the job fails.
    pub on_failure: Option<String>,
    /// Run when the job becomes overdue.
    pub on_overdue: Option<String>,
}

impl JobHooks {
    /// Whether the job has no hook command at all.
    pub fn is_empty(&self) -> bool {
        self.on_success.is_none() && self.on_failure.is_none() && self.on_overdue.is_none()
    }
}

/// `[budget]`: limits shared by all jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSettings {
    /// The total upload rate of all jobs together (`[budget] upload`).
    pub upload: RateSchedule,
    /// The total download rate of all jobs together (`[budget] download`).
    pub download: RateSchedule,
    /// The CPU share of all jobs together (`[budget] cpu`).
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

/// Rate limits towards one storage server (`[budget] server.NAME.upload` and `.download`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerLimits {
    /// The upload rate to this server; unlimited when not set.
    pub upload: RateSchedule,
    /// The download rate from this server; unlimited when not set.
    pub download: RateSchedule,
}

/// When a job may run.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// How often the job runs (`frequency`); by default once a day.
    pub frequency: Duration,
    /// When the job may run (`allowed_times`); `Windows::Always` when not restricted.
    pub allowed_times: Windows,
    /// Whether the job runs on its schedule at all (`enabled`, default `true`).
    pub enabled: bool,
    /// How long after its last completion (or, never completed, after it was first seen) the
    /// job counts as overdue and the status says so loudly (`overdue_after`); `None` = `off`.
    pub overdue_after: Option<Duration>,
    /// Jobs (ids such as `backup.b1`) whose completed run makes this job run next, inside its
    /// own window (`after`); empty when none. Its frequency applies as well.
    pub after: Vec<String>,
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
    /// The job's rate limit (`bandwidth`), applied to its uploads and its downloads alike; a percentage is a share of the `[budget]` total.
    pub bandwidth: RateSchedule,
    /// The job's CPU share (`cpu`); unlimited when not set.
    pub cpu: CpuShare,
}

/// One job: `[backup] b1.*` becomes `JobConfig { task_type: "backup", name: "b1", .. }`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    /// The task type, which is also the section the job is in (`backup`).
    pub task_type: String,
    /// The job's name within its section (`b1`).
    pub name: String,
    /// When the job may run.
    pub schedule: Schedule,
    /// The job's own rate and CPU limits.
    pub limits: JobLimits,
    /// The task type's own keys, as parsed by its schema.
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
    Alias {
        /// The Tahoe alias, without its colon.
        alias: String,
        /// The path below the alias; empty for the alias's directory itself.
        path: String,
    },
    /// A capability string (a secret: never displayed).
    Cap {
        /// The capability itself.
        cap: String,
        /// The path below the capability's directory; may be empty.
        path: String,
    },
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
    /// The full dotted key, `backup.b1.frequency`.
    pub key: String,
    /// As displayed: capabilities are redacted.
    pub value: String,
    /// Where the value came from (a file and line, an environment variable, `command line`, `built-in default`).
    pub origin: String,
}
