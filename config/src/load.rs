//! Layering (defaults < `NODEDIR/tahoe-jobs.cfg` < `--config` TOML < `TAHOE_JOBS_*` < `--set`)
//! and validation of the merged tree into a [`Config`].
//!
//! The merged tree is walked by hand rather than deserialised with serde so that every problem
//! can name its origin, key, value and accepted form, and all problems are reported together.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use jiff::tz::TimeZone;

use crate::cpu::{CpuShare, CPU_ACCEPTED};
use crate::duration::{HumanDuration, DURATION_ACCEPTED};
use crate::error::{did_you_mean, ConfigError, Problem};
use crate::ini::{insert_dotted, parse_ini, IniProvider};
use crate::model::*;
use crate::rate::{RateSchedule, RATE_ACCEPTED};
use crate::windows::{Windows, WINDOWS_ACCEPTED};

/// The name of the job file inside the node directory.
pub const JOB_FILE_NAME: &str = "tahoe-jobs.cfg";
/// The prefix of environment variables.
pub const ENV_PREFIX: &str = "TAHOE_JOBS_";
/// The default address of the status and control web server.
pub const DEFAULT_WEB_ADDR: &str = "127.0.0.1:3457";
/// The default concurrency of a backup.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// A job's frequency when none is given.
pub const DEFAULT_FREQUENCY: Duration = Duration::from_secs(86_400);
/// `[jobs] node.timeout` when none is given.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(600);
/// A backup's `recheck_after` when none is given (`tahoe backup`'s 30 days).
pub const DEFAULT_RECHECK_AFTER: Duration = Duration::from_secs(30 * 86_400);
/// A backup's `recheck_all_after` when none is given (`tahoe backup`'s 60 days).
pub const DEFAULT_RECHECK_ALL_AFTER: Duration = Duration::from_secs(60 * 86_400);

const OVERRIDE_SOURCE: &str = "command line";

/// Where to read the configuration from.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub node_dir: PathBuf,
    /// An optional TOML file (`--config FILE`).
    pub config_file: Option<PathBuf>,
    /// `--set key=value` flags and other command-line values, highest precedence.
    pub overrides: Vec<(String, String)>,
    /// Read `TAHOE_JOBS_*` from the process environment.
    pub read_env: bool,
    /// Task types besides `backup` and `check` that an embedder registered: their sections are
    /// accepted and their keys handed to the task's factory unparsed.
    pub extra_task_types: Vec<String>,
}

/// Command-line values as a figment provider, so they take part in layering like any source.
#[derive(Debug, Clone)]
struct OverrideProvider(Vec<(String, String)>);

impl Provider for OverrideProvider {
    fn metadata(&self) -> Metadata {
        Metadata::named(OVERRIDE_SOURCE)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.0 {
            insert_dotted(&mut dict, &key.to_lowercase(), Value::from(value.clone()));
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Reads, layers and validates the configuration.
pub fn load(options: &LoadOptions) -> Result<Config, ConfigError> {
    let job_file = options.node_dir.join(JOB_FILE_NAME);
    let ini = match std::fs::read_to_string(&job_file) {
        Ok(text) => {
            let entries = parse_ini(&text).map_err(|e| ConfigError::Syntax {
                path: job_file.clone(),
                line: e.line,
                message: e.message,
            })?;
            Some(IniProvider::new(&job_file, entries))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ConfigError::Read {
                path: job_file,
                source,
            })
        }
    };
    let mut figment = Figment::new();
    if let Some(ini) = &ini {
        figment = figment.merge(ini.clone());
    }
    if let Some(file) = &options.config_file {
        // figment treats a missing file as empty; a file named on the command line must exist.
        if let Err(source) = std::fs::metadata(file) {
            return Err(ConfigError::Read {
                path: file.clone(),
                source,
            });
        }
        figment = figment.merge(Toml::file(file));
    }
    if options.read_env {
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
    }
    figment = figment.merge(OverrideProvider(options.overrides.clone()));
    let data = Provider::data(&figment).map_err(|e| ConfigError::Merge(Box::new(e)))?;
    let tree = data.get(&Profile::Default).cloned().unwrap_or_default();
    let origins = Origins {
        figment: &figment,
        ini: ini.as_ref(),
    };
    Validator::new(options, origins).validate(&tree)
}

/// Turns a value's tag into a human description of where it came from.
struct Origins<'a> {
    figment: &'a Figment,
    ini: Option<&'a IniProvider>,
}

impl Origins<'_> {
    fn describe(&self, tag: Tag, path: &str) -> String {
        let Some(md) = self.figment.get_metadata(tag) else {
            return "unknown source".into();
        };
        if md.name == "job file" {
            if let Some(ini) = self.ini {
                return match ini.line_of(path) {
                    Some(line) => format!("{} line {line}", ini.path().display()),
                    None => ini.path().display().to_string(),
                };
            }
        }
        if md.name.contains("environment") {
            let var = path
                .split('.')
                .map(str::to_uppercase)
                .collect::<Vec<_>>()
                .join("__");
            return format!("environment variable {ENV_PREFIX}{var}");
        }
        if md.name == OVERRIDE_SOURCE {
            return format!("command line --set {path}");
        }
        match &md.source {
            Some(Source::File(p)) => format!("{} ({})", p.display(), md.name),
            _ => md.name.to_string(),
        }
    }
}

/// One leaf of the merged tree.
#[derive(Debug, Clone)]
struct Leaf {
    /// Path below the section: `b1.source`.
    key: String,
    text: Result<String, String>,
    origin: String,
}

fn value_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(_, s) => Ok(s.clone()),
        Value::Char(_, c) => Ok(c.to_string()),
        Value::Bool(_, b) => Ok(b.to_string()),
        Value::Num(_, n) => Ok(n
            .to_i128()
            .map(|i| i.to_string())
            .or_else(|| n.to_u128().map(|u| u.to_string()))
            .or_else(|| n.to_f64().map(|f| f.to_string()))
            .unwrap_or_default()),
        Value::Array(_, items) => items
            .iter()
            .map(value_text)
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(",")),
        Value::Empty(_, _) => Ok(String::new()),
        Value::Dict(_, _) => Err("expected a value, found a table".into()),
    }
}

fn flatten(section: &str, prefix: &str, dict: &Dict, origins: &Origins, out: &mut Vec<Leaf>) {
    for (k, v) in dict {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Dict(_, inner) if !inner.is_empty() => {
                flatten(section, &key, inner, origins, out)
            }
            _ => out.push(Leaf {
                origin: origins.describe(v.tag(), &format!("{section}.{key}")),
                key,
                text: value_text(v),
            }),
        }
    }
}

const JOBS_KEYS: &[&str] = &[
    "web.port",
    "state_dir",
    "timezone",
    "shaping.port",
    "node.timeout",
    "cache_size",
];
const COMMON_JOB_KEYS: &[&str] = &[
    "frequency",
    "allowed_times",
    "bandwidth",
    "cpu",
    "enabled",
    "overdue_after",
];
const BACKUP_KEYS: &[&str] = &[
    "source",
    "target",
    "exclude",
    "exclude_from",
    "exclude_vcs",
    "concurrency",
    "recheck_after",
    "recheck_all_after",
];
const CHECK_KEYS: &[&str] = &["target", "verify", "repair", "add_lease", "recheck_after"];
const BUDGET_KEYS: &[&str] = &[
    "upload",
    "download",
    "cpu",
    "server.NAME.upload",
    "server.NAME.download",
];

struct Validator<'a> {
    options: &'a LoadOptions,
    origins: Origins<'a>,
    problems: Vec<Problem>,
    settings: Vec<Setting>,
    warnings: Vec<String>,
}

impl<'a> Validator<'a> {
    fn new(options: &'a LoadOptions, origins: Origins<'a>) -> Self {
        Validator {
            options,
            origins,
            problems: Vec::new(),
            settings: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn problem(
        &mut self,
        origin: &str,
        key: &str,
        value: Option<&str>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            origin: origin.to_string(),
            key: key.to_string(),
            value: value.map(redact),
            message: message.into(),
        });
    }

    fn validate(mut self, tree: &Dict) -> Result<Config, ConfigError> {
        let mut task_types: Vec<&str> = vec!["backup", "check"];
        task_types.extend(self.options.extra_task_types.iter().map(String::as_str));
        let mut sections: BTreeMap<String, Vec<Leaf>> = BTreeMap::new();
        for (name, value) in tree {
            let mut leaves = Vec::new();
            match value {
                Value::Dict(_, dict) => flatten(name, "", dict, &self.origins, &mut leaves),
                other => {
                    let origin = self.origins.describe(other.tag(), name);
                    self.problem(
                        &origin,
                        name,
                        None,
                        "expected a section, found a single value",
                    );
                    continue;
                }
            }
            sections.insert(name.clone(), leaves);
        }
        let mut known: Vec<&str> = vec!["jobs", "budget"];
        known.extend(task_types.iter().copied());
        for (name, leaves) in &sections {
            if !known.contains(&name.as_str()) {
                let origin = leaves.first().map(|l| l.origin.clone()).unwrap_or_default();
                let hint = match did_you_mean(name, &known) {
                    Some(s) => format!("; did you mean [{s}]?"),
                    None => String::new(),
                };
                self.problem(
                    &origin,
                    &format!("[{name}]"),
                    None,
                    format!("unknown section{hint} Known sections: {}", known.join(", ")),
                );
            }
        }
        let empty = Vec::new();
        let daemon = self.daemon(sections.get("jobs").unwrap_or(&empty));
        let budget = self.budget(sections.get("budget").unwrap_or(&empty));
        let mut jobs = Vec::new();
        for task_type in &task_types {
            if let Some(leaves) = sections.get(*task_type) {
                jobs.extend(self.jobs_of(task_type, leaves, &budget));
            }
        }
        if !self.problems.is_empty() {
            return Err(ConfigError::Invalid(self.problems));
        }
        Ok(Config {
            node_dir: self.options.node_dir.clone(),
            daemon,
            budget,
            jobs,
            settings: self.settings,
            warnings: self.warnings,
        })
    }

    /// Records the effective value of `key` and parses it; a default is recorded as such.
    fn field<T, E: std::fmt::Display>(
        &mut self,
        leaf: Option<&Leaf>,
        full_key: &str,
        default: Option<(T, String)>,
        parse: impl Fn(&str) -> Result<T, E>,
        accepted: &str,
    ) -> Option<T> {
        match leaf {
            None => {
                let (value, shown) = default?;
                self.settings.push(Setting {
                    key: full_key.into(),
                    value: shown,
                    origin: "built-in default".into(),
                });
                Some(value)
            }
            Some(leaf) => {
                let text = match &leaf.text {
                    Ok(t) => t.clone(),
                    Err(e) => {
                        let (origin, e) = (leaf.origin.clone(), e.clone());
                        self.problem(&origin, full_key, None, e);
                        return None;
                    }
                };
                match parse(&text) {
                    Ok(v) => {
                        self.settings.push(Setting {
                            key: full_key.into(),
                            value: redact(&text),
                            origin: leaf.origin.clone(),
                        });
                        Some(v)
                    }
                    Err(e) => {
                        let origin = leaf.origin.clone();
                        let message = if accepted.is_empty() {
                            e.to_string()
                        } else {
                            format!("{e}; expected {accepted}")
                        };
                        self.problem(&origin, full_key, Some(&text), message);
                        None
                    }
                }
            }
        }
    }

    fn unknown_key(&mut self, section: &str, leaf: &Leaf, key: &str, candidates: &[&str]) {
        let hint = match did_you_mean(key, candidates) {
            Some(s) => format!("did you mean {s}? "),
            None => String::new(),
        };
        let origin = leaf.origin.clone();
        self.problem(
            &origin,
            &format!("{section}.{}", leaf.key),
            None,
            format!("unknown key; {hint}known keys: {}", candidates.join(", ")),
        );
    }

    fn daemon(&mut self, leaves: &[Leaf]) -> DaemonSettings {
        for leaf in leaves {
            if !JOBS_KEYS.contains(&leaf.key.as_str()) {
                self.unknown_key("jobs", leaf, &leaf.key.clone(), JOBS_KEYS);
            }
        }
        let find = |k: &str| leaves.iter().find(|l| l.key == k);
        let default_addr: SocketAddr = DEFAULT_WEB_ADDR.parse().expect("valid default");
        let web_addr = self
            .field(
                find("web.port"),
                "jobs.web.port",
                Some((default_addr, DEFAULT_WEB_ADDR.into())),
                parse_web_addr,
                "HOST:PORT such as 127.0.0.1:3457, a port number, or tcp:PORT:interface=ADDR",
            )
            .unwrap_or(default_addr);
        let node_dir = self.options.node_dir.clone();
        let default_state = node_dir.join("private").join("tahoe-jobs");
        let state_dir = self
            .field(
                find("state_dir"),
                "jobs.state_dir",
                Some((default_state.clone(), default_state.display().to_string())),
                |s| parse_path(s, &node_dir),
                "a directory path (relative paths are below the node directory)",
            )
            .unwrap_or(default_state);
        let system = TimeZone::system();
        let system_name = system.iana_name().unwrap_or("UTC").to_string();
        let (timezone, timezone_name) = self
            .field(
                find("timezone"),
                "jobs.timezone",
                Some((
                    (system.clone(), system_name.clone()),
                    format!("{system_name} (system)"),
                )),
                |s| {
                    TimeZone::get(s.trim())
                        .map(|tz| (tz, s.trim().to_string()))
                        .map_err(|_| format!("{s:?} is not a known time zone"))
                },
                "an IANA time zone name such as Europe/Berlin or America/New_York",
            )
            .unwrap_or((system, system_name));
        let shaping_addr = self
            .field(
                find("shaping.port"),
                "jobs.shaping.port",
                Some((None, "off".into())),
                |s| {
                    if s.trim().eq_ignore_ascii_case("off") || s.trim().is_empty() {
                        return Ok(None);
                    }
                    let addr = parse_web_addr(s)?;
                    if !addr.ip().is_loopback() {
                        return Err(format!(
                            "{addr} is not a loopback address; the proxy would relay for anyone who can reach it"
                        ));
                    }
                    Ok(Some(addr))
                },
                "off, or a loopback HOST:PORT (or port) for the SOCKS5 shaping proxy, such as 127.0.0.1:3458",
            )
            .flatten();
        let node_timeout = self
            .field(
                find("node.timeout"),
                "jobs.node.timeout",
                Some((
                    HumanDuration(DEFAULT_NODE_TIMEOUT),
                    HumanDuration(DEFAULT_NODE_TIMEOUT).to_string(),
                )),
                |s| match parse_duration_or_zero(s) {
                    Ok(d) if d.is_zero() => {
                        Err("a timeout of zero would give up on every request at once".to_string())
                    }
                    other => other.map(HumanDuration),
                },
                "a duration such as 10min or 1h: how long the node may stay silent on one request",
            )
            .map_or(DEFAULT_NODE_TIMEOUT, HumanDuration::as_duration);
        let cache_size = self
            .field(
                find("cache_size"),
                "jobs.cache_size",
                Some((
                    crate::size::DEFAULT_CACHE_SIZE,
                    format!("{}MiB", crate::size::DEFAULT_CACHE_SIZE >> 20),
                )),
                crate::size::parse_cache_size,
                crate::size::CACHE_SIZE_ACCEPTED,
            )
            .unwrap_or(crate::size::DEFAULT_CACHE_SIZE);
        DaemonSettings {
            web_addr,
            state_dir,
            timezone,
            timezone_name,
            shaping_addr,
            node_timeout,
            cache_size,
        }
    }

    fn budget(&mut self, leaves: &[Leaf]) -> BudgetSettings {
        let mut budget = BudgetSettings::default();
        let mut servers: BTreeMap<String, (Option<RateSchedule>, Option<RateSchedule>)> =
            BTreeMap::new();
        for leaf in leaves {
            let full = format!("budget.{}", leaf.key);
            match leaf.key.as_str() {
                "upload" | "download" => {
                    let parsed = self.field(
                        Some(leaf),
                        &full,
                        None,
                        parse_absolute_schedule,
                        RATE_ACCEPTED,
                    );
                    if let Some(s) = parsed {
                        if leaf.key == "upload" {
                            budget.upload = s;
                        } else {
                            budget.download = s;
                        }
                    }
                }
                "cpu" => {
                    if let Some(c) =
                        self.field(Some(leaf), &full, None, CpuShare::from_str, CPU_ACCEPTED)
                    {
                        budget.cpu = c;
                    }
                }
                other => {
                    let parts: Vec<&str> = other.split('.').collect();
                    match parts.as_slice() {
                        ["server", name, dir @ ("upload" | "download")] => {
                            let parsed = self.field(
                                Some(leaf),
                                &full,
                                None,
                                parse_absolute_schedule,
                                RATE_ACCEPTED,
                            );
                            let entry = servers.entry(name.to_string()).or_default();
                            if *dir == "upload" {
                                entry.0 = parsed;
                            } else {
                                entry.1 = parsed;
                            }
                        }
                        _ => self.unknown_key("budget", leaf, other, BUDGET_KEYS),
                    }
                }
            }
        }
        budget.servers = servers
            .into_iter()
            .map(|(name, (up, down))| {
                (
                    name,
                    ServerLimits {
                        upload: up.unwrap_or_else(RateSchedule::unlimited),
                        download: down.unwrap_or_else(RateSchedule::unlimited),
                    },
                )
            })
            .collect();
        budget
    }

    fn jobs_of(
        &mut self,
        task_type: &str,
        leaves: &[Leaf],
        budget: &BudgetSettings,
    ) -> Vec<JobConfig> {
        let mut by_job: BTreeMap<String, Vec<Leaf>> = BTreeMap::new();
        for leaf in leaves {
            match leaf.key.split_once('.') {
                Some((job, key)) if valid_job_name(job) => {
                    let mut l = leaf.clone();
                    l.key = key.to_string();
                    by_job.entry(job.to_string()).or_default().push(l);
                }
                _ => {
                    let origin = leaf.origin.clone();
                    self.problem(
                        &origin,
                        &format!("{task_type}.{}", leaf.key),
                        None,
                        format!(
                            "keys in [{task_type}] are JOB.KEY, such as b1.frequency, where JOB is letters, digits, - or _"
                        ),
                    );
                }
            }
        }
        let mut jobs = Vec::new();
        for (name, leaves) in by_job {
            if let Some(job) = self.job(task_type, &name, &leaves, budget) {
                jobs.push(job);
            }
        }
        jobs
    }

    fn job(
        &mut self,
        task_type: &str,
        name: &str,
        leaves: &[Leaf],
        budget: &BudgetSettings,
    ) -> Option<JobConfig> {
        let before = self.problems.len();
        let prefix = format!("{task_type}.{name}");
        let specific: &[&str] = match task_type {
            "backup" => BACKUP_KEYS,
            "check" => CHECK_KEYS,
            _ => &[],
        };
        let mut all_keys: Vec<&str> = COMMON_JOB_KEYS.to_vec();
        all_keys.extend(specific);
        let is_other = !matches!(task_type, "backup" | "check");
        if !is_other {
            for leaf in leaves {
                if !all_keys.contains(&leaf.key.as_str()) {
                    self.unknown_key(
                        task_type,
                        &Leaf {
                            key: format!("{name}.{}", leaf.key),
                            ..leaf.clone()
                        },
                        &leaf.key.clone(),
                        &all_keys,
                    );
                }
            }
        }
        let find = |k: &str| leaves.iter().find(|l| l.key == k);
        let key = |k: &str| format!("{prefix}.{k}");
        let frequency = self
            .field(
                find("frequency"),
                &key("frequency"),
                Some((HumanDuration(DEFAULT_FREQUENCY), "1day".into())),
                HumanDuration::from_str,
                DURATION_ACCEPTED,
            )
            .map(HumanDuration::as_duration);
        let allowed_times = self.field(
            find("allowed_times"),
            &key("allowed_times"),
            Some((Windows::Always, "always".into())),
            Windows::from_str,
            WINDOWS_ACCEPTED,
        );
        if allowed_times == Some(Windows::Never) {
            self.warnings.push(format!(
                "{prefix}.allowed_times = none: the job never starts by itself, only with `tahoe-jobs start {prefix} --ignore-window`"
            ));
        }
        let overdue_default =
            Schedule::default_overdue_after(frequency.unwrap_or(DEFAULT_FREQUENCY));
        let overdue_after = self.field(
            find("overdue_after"),
            &key("overdue_after"),
            Some((
                Some(overdue_default),
                format!(
                    "{} (twice the frequency plus a day)",
                    HumanDuration(overdue_default)
                ),
            )),
            |s| {
                if s.trim().eq_ignore_ascii_case("off") {
                    Ok(None)
                } else {
                    HumanDuration::from_str(s).map(|d| Some(d.as_duration()))
                }
            },
            "off, or a duration such as 2weeks, 36h or 3d (units: s, min, h, d, week)",
        );
        if let (Some(Some(overdue)), Some(freq), Some(leaf)) =
            (overdue_after, frequency, find("overdue_after"))
        {
            if overdue < freq {
                let (origin, text) = (leaf.origin.clone(), leaf.text.clone().unwrap_or_default());
                self.problem(
                    &origin,
                    &key("overdue_after"),
                    Some(&text),
                    format!(
                        "shorter than the frequency ({}): the job would be overdue before it is due; give at least the frequency, or off",
                        HumanDuration(freq)
                    ),
                );
            }
        }
        let enabled = self.field(
            find("enabled"),
            &key("enabled"),
            Some((true, "true".into())),
            parse_bool,
            BOOL_ACCEPTED,
        );
        let bandwidth = self.field(
            find("bandwidth"),
            &key("bandwidth"),
            Some((RateSchedule::unlimited(), "off".into())),
            RateSchedule::from_str,
            RATE_ACCEPTED,
        );
        if let (Some(bw), Some(leaf)) = (&bandwidth, find("bandwidth")) {
            if bw.uses_percent() && budget.upload.is_unlimited() {
                let (origin, text) = (leaf.origin.clone(), leaf.text.clone().unwrap_or_default());
                self.problem(
                    &origin,
                    &key("bandwidth"),
                    Some(&text),
                    "a percentage needs a total to be a share of: set [budget] upload, or give an absolute rate such as 256KiB/s",
                );
            }
        }
        let cpu = self.field(
            find("cpu"),
            &key("cpu"),
            Some((CpuShare::UNLIMITED, "off".into())),
            CpuShare::from_str,
            CPU_ACCEPTED,
        );
        let params = match task_type {
            "backup" => self.backup_params(&prefix, leaves).map(TaskParams::Backup),
            "check" => self
                .check_params(&prefix, leaves, frequency)
                .map(TaskParams::Check),
            _ => {
                let mut map = BTreeMap::new();
                for leaf in leaves
                    .iter()
                    .filter(|l| !COMMON_JOB_KEYS.contains(&l.key.as_str()))
                {
                    match &leaf.text {
                        Ok(text) => {
                            self.settings.push(Setting {
                                key: key(&leaf.key),
                                value: redact(text),
                                origin: leaf.origin.clone(),
                            });
                            map.insert(leaf.key.clone(), text.clone());
                        }
                        Err(e) => {
                            let (origin, e) = (leaf.origin.clone(), e.clone());
                            self.problem(&origin, &key(&leaf.key), None, e);
                        }
                    }
                }
                Some(TaskParams::Other(map))
            }
        };
        if self.problems.len() != before {
            return None;
        }
        Some(JobConfig {
            task_type: task_type.to_string(),
            name: name.to_string(),
            schedule: Schedule {
                frequency: frequency?,
                allowed_times: allowed_times?,
                enabled: enabled?,
                overdue_after: overdue_after?,
            },
            limits: JobLimits {
                bandwidth: bandwidth?,
                cpu: cpu?,
            },
            params: params?,
        })
    }

    fn required(&mut self, leaf: Option<&Leaf>, full_key: &str, what: &str) -> bool {
        if leaf.is_none() {
            let origin = self.job_origin(full_key);
            self.problem(&origin, full_key, None, format!("missing; {what}"));
            return false;
        }
        true
    }

    /// Where a job was defined, for problems about keys it lacks.
    fn job_origin(&self, full_key: &str) -> String {
        let job_prefix: String = full_key
            .rsplit_once('.')
            .map(|x| x.0)
            .unwrap_or("")
            .to_string();
        self.settings
            .iter()
            .find(|s| s.key.starts_with(&job_prefix) && s.origin != "built-in default")
            .map(|s| s.origin.clone())
            .unwrap_or_else(|| "configuration".into())
    }

    fn backup_params(&mut self, prefix: &str, leaves: &[Leaf]) -> Option<BackupParams> {
        let find = |k: &str| leaves.iter().find(|l| l.key == k);
        let key = |k: &str| format!("{prefix}.{k}");
        let node_dir = self.options.node_dir.clone();
        let has_source = self.required(
            find("source"),
            &key("source"),
            "set it to the directory to back up, such as /Volumes/BackupDrive/Pictures",
        );
        let has_target = self.required(
            find("target"),
            &key("target"),
            "set it to ALIAS:PATH on the grid, such as backup:pictures",
        );
        let source = if has_source {
            self.field(
                find("source"),
                &key("source"),
                None,
                parse_absolute_path,
                "an absolute path of a directory",
            )
        } else {
            None
        };
        let target = if has_target {
            self.field(
                find("target"),
                &key("target"),
                None,
                parse_target,
                TARGET_ACCEPTED,
            )
        } else {
            None
        };
        let exclude = self.field(find("exclude"), &key("exclude"), Some((Vec::new(), "".into())), parse_globs, "a comma list of glob patterns matched against each file and directory name, such as *.tmp,.DS_Store")?;
        let exclude_from = self.field(
            find("exclude_from"),
            &key("exclude_from"),
            Some((None, "".into())),
            |s| {
                let p = parse_path(s, &node_dir)?;
                std::fs::metadata(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                Ok::<_, String>(Some(p))
            },
            "a readable file with one glob pattern a line",
        )?;
        let exclude_vcs = self.field(
            find("exclude_vcs"),
            &key("exclude_vcs"),
            Some((false, "false".into())),
            parse_bool,
            BOOL_ACCEPTED,
        )?;
        let concurrency = self.field(
            find("concurrency"),
            &key("concurrency"),
            Some((DEFAULT_CONCURRENCY, DEFAULT_CONCURRENCY.to_string())),
            |s| match s.trim().parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => Ok(n),
                _ => Err(format!("{s:?} is not a whole number from 1 to 64")),
            },
            "the number of uploads in flight at once, 1 to 64",
        )?;
        let recheck_after = self.field(
            find("recheck_after"),
            &key("recheck_after"),
            Some((
                DEFAULT_RECHECK_AFTER,
                HumanDuration(DEFAULT_RECHECK_AFTER).to_string(),
            )),
            parse_duration_or_zero,
            RECHECK_ACCEPTED,
        )?;
        let recheck_all_after = self.field(
            find("recheck_all_after"),
            &key("recheck_all_after"),
            Some((
                DEFAULT_RECHECK_ALL_AFTER,
                HumanDuration(DEFAULT_RECHECK_ALL_AFTER).to_string(),
            )),
            parse_duration_or_zero,
            RECHECK_ACCEPTED,
        )?;
        if recheck_all_after < recheck_after {
            let leaf = find("recheck_all_after").or(find("recheck_after"));
            let (origin, text) = leaf
                .map(|l| (l.origin.clone(), l.text.clone().unwrap_or_default()))
                .unwrap_or_default();
            self.problem(
                &origin,
                &key("recheck_all_after"),
                Some(&text),
                format!(
                    "shorter than recheck_after ({}): every capability checked at least recheck_all_after ago is checked, so it must be at least recheck_after",
                    HumanDuration(recheck_after)
                ),
            );
            return None;
        }
        Some(BackupParams {
            source: source?,
            target: target?,
            exclude,
            exclude_from,
            exclude_vcs,
            concurrency,
            recheck_after,
            recheck_all_after,
        })
    }

    fn check_params(
        &mut self,
        prefix: &str,
        leaves: &[Leaf],
        frequency: Option<Duration>,
    ) -> Option<CheckParams> {
        let find = |k: &str| leaves.iter().find(|l| l.key == k);
        let key = |k: &str| format!("{prefix}.{k}");
        let target = if self.required(
            find("target"),
            &key("target"),
            "set it to ALIAS:PATH on the grid, such as backup:pictures",
        ) {
            self.field(
                find("target"),
                &key("target"),
                None,
                parse_target,
                TARGET_ACCEPTED,
            )
        } else {
            None
        };
        let verify = self.field(
            find("verify"),
            &key("verify"),
            Some((false, "false".into())),
            parse_bool,
            BOOL_ACCEPTED,
        );
        let repair = self.field(
            find("repair"),
            &key("repair"),
            Some((false, "false".into())),
            parse_bool,
            BOOL_ACCEPTED,
        );
        let add_lease = self.field(
            find("add_lease"),
            &key("add_lease"),
            Some((true, "true".into())),
            parse_bool,
            BOOL_ACCEPTED,
        );
        let freq = frequency.unwrap_or(DEFAULT_FREQUENCY);
        let recheck_after = self
            .field(
                find("recheck_after"),
                &key("recheck_after"),
                Some((
                    HumanDuration(freq),
                    format!("{} (the frequency)", HumanDuration(freq)),
                )),
                HumanDuration::from_str,
                DURATION_ACCEPTED,
            )
            .map(HumanDuration::as_duration);
        Some(CheckParams {
            target: target?,
            verify: verify?,
            repair: repair?,
            add_lease: add_lease?,
            recheck_after: recheck_after?,
        })
    }
}

const BOOL_ACCEPTED: &str = "true or false (also yes/no, on/off, 1/0)";
const RECHECK_ACCEPTED: &str =
    "a duration such as 30d, 8weeks or 0s (0s: check every capability on every run)";

/// A duration where zero makes sense (`recheck_after = 0s`: re-check on every run); also for
/// command-line flags that mirror such keys.
pub fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err("the value is empty".into());
    }
    humantime::parse_duration(trimmed).map_err(|e| e.to_string())
}
const TARGET_ACCEPTED: &str =
    "ALIAS:PATH such as backup:pictures, or a directory capability URI:DIR2:...";

/// Job names become parts of keys, URLs and metric labels: keep them plain.
fn valid_job_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Booleans as configparser's getboolean reads them.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean")),
    }
}

/// Hides capabilities wherever a value or message is shown: every `URI:...` run (the cap's
/// own characters, up to a `/`, a space or punctuation) becomes `<capability>`; a path after
/// the cap stays visible.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("URI:") {
        out.push_str(&rest[..at]);
        out.push_str("<capability>");
        let cap = &rest[at..];
        let len = cap
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_')))
            .unwrap_or(cap.len());
        rest = &cap[len..];
    }
    out.push_str(rest);
    out
}

fn parse_web_addr(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(port) = t.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    // Tahoe's endpoint form: tcp:3457:interface=127.0.0.1
    if let Some(rest) = t.strip_prefix("tcp:") {
        let mut parts = rest.split(':');
        let port: u16 = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("{t:?} has no port number"))?;
        let mut ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for part in parts {
            if let Some(iface) = part.strip_prefix("interface=") {
                ip = iface
                    .parse()
                    .map_err(|_| format!("{iface:?} is not an IP address"))?;
            }
        }
        return Ok(SocketAddr::new(ip, port));
    }
    Err(format!("{t:?} is not an address"))
}

fn parse_path(s: &str, base: &Path) -> Result<PathBuf, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("the path is empty".into());
    }
    let expanded = expand_home(t);
    Ok(if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    })
}

fn parse_absolute_path(s: &str) -> Result<PathBuf, String> {
    let p = expand_home(s.trim());
    if s.trim().is_empty() {
        return Err("the path is empty".into());
    }
    if !p.is_absolute() {
        return Err("the path must be absolute".into());
    }
    Ok(p)
}

fn expand_home(t: &str) -> PathBuf {
    if let Some(rest) = t.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(t)
}

/// `alias:path`, `alias:`, or a capability optionally followed by `/path`.
pub fn parse_target(s: &str) -> Result<Target, String> {
    let t = s.trim();
    if t.starts_with("URI:") {
        let (cap, path) = t.split_once('/').unwrap_or((t, ""));
        if !cap.starts_with("URI:DIR2") {
            return Err("the capability is not a directory capability (URI:DIR2...)".into());
        }
        return Ok(Target::Cap {
            cap: cap.to_string(),
            path: path.trim_matches('/').to_string(),
        });
    }
    let (alias, path) = t
        .split_once(':')
        .ok_or_else(|| format!("{t:?} has no alias: write ALIAS:PATH"))?;
    if alias.is_empty() || alias.contains(['/', ' ']) {
        return Err(format!("{alias:?} is not an alias name"));
    }
    Ok(Target::Alias {
        alias: alias.to_string(),
        path: path.trim_matches('/').to_string(),
    })
}

fn parse_globs(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for pattern in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        glob::Pattern::new(pattern).map_err(|e| format!("{pattern:?}: {e}"))?;
        out.push(pattern.to_string());
    }
    Ok(out)
}

/// Total and per-server limits are absolute: a percentage there has nothing to be a share of.
fn parse_absolute_schedule(s: &str) -> Result<RateSchedule, String> {
    let schedule: RateSchedule = s.parse()?;
    if schedule.uses_percent() {
        return Err("a [budget] limit cannot be a percentage".into());
    }
    Ok(schedule)
}

#[cfg(test)]
mod redact_tests {
    use super::redact;

    #[test]
    fn every_capability_goes_and_the_words_around_stay() {
        assert_eq!(redact("URI:DIR2:abc:def/photos"), "<capability>/photos");
        assert_eq!(
            redact("linked URI:CHK:aa:bb:3:10:99 and URI:LIT:xyz, then done"),
            "linked <capability> and <capability>, then done"
        );
        assert_eq!(redact("no secrets here"), "no secrets here");
    }
}
