//! A task type's section: jobs by prefix (`b1.source`), the keys every job has (schedule and
//! limits), and the rest checked against the schema the task type registered.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::cpu::{CpuShare, CPU_ACCEPTED};
use crate::duration::{HumanDuration, DURATION_ACCEPTED};
use crate::hooks::{parse_hook, HOOK_ACCEPTED};
use crate::load::DEFAULT_FREQUENCY;
use crate::model::*;
use crate::origins::Leaf;
use crate::rate::{RateSchedule, RATE_ACCEPTED};
use crate::schema::TaskSchema;
use crate::validate::Validator;
use crate::values::{parse_bool, redact, valid_job_name, BOOL_ACCEPTED};
use crate::windows::{Windows, WINDOWS_ACCEPTED};

/// The keys every job has, whatever its task type. A key added here is read by the loader for
/// every job; a key only one task type reads belongs in that type's [`TaskKeys`](crate::TaskKeys).
pub const COMMON_JOB_KEYS: &[&str] = &[
    "frequency",
    "allowed_times",
    "bandwidth",
    "cpu",
    "enabled",
    "overdue_after",
    "after",
    "on_success",
    "on_failure",
    "on_overdue",
];

impl Validator<'_> {
    pub(crate) fn jobs_of(
        &mut self,
        schema: &TaskSchema,
        leaves: &[Leaf],
        budget: &BudgetSettings,
    ) -> Vec<JobConfig> {
        let task_type = schema.name();
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
            if let Some(job) = self.job(schema, &name, &leaves, budget) {
                jobs.push(job);
            }
        }
        jobs
    }

    fn job(
        &mut self,
        schema: &TaskSchema,
        name: &str,
        leaves: &[Leaf],
        budget: &BudgetSettings,
    ) -> Option<JobConfig> {
        let task_type = schema.name();
        let before = self.problems.len();
        let prefix = format!("{task_type}.{name}");
        self.declared_jobs.insert(prefix.clone());
        if let Some(docs) = schema.keys() {
            let mut all_keys: Vec<&str> = COMMON_JOB_KEYS.to_vec();
            all_keys.extend(docs.iter().map(|d| d.name));
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
        let after = self.field(
            find("after"),
            &key("after"),
            Some((Vec::new(), "none".into())),
            parse_after,
            AFTER_ACCEPTED,
        );
        if let (Some(after), Some(leaf)) = (&after, find("after")) {
            self.job_after.push(PendingAfter {
                job: prefix.clone(),
                origin: leaf.origin.clone(),
                text: leaf.text.clone().unwrap_or_default(),
                after: after.clone(),
            });
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
        let mut hooks = JobHooks::default();
        for (name, slot) in [
            ("on_success", &mut hooks.on_success),
            ("on_failure", &mut hooks.on_failure),
            ("on_overdue", &mut hooks.on_overdue),
        ] {
            if let Some(leaf) = find(name) {
                *slot = self
                    .field(Some(leaf), &key(name), None, parse_hook, HOOK_ACCEPTED)
                    .flatten();
            }
        }
        if !hooks.is_empty() {
            self.job_hooks.insert(prefix.clone(), hooks);
        }
        let params = self.task_keys(schema, &prefix, leaves, frequency);
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
                after: after?,
            },
            limits: JobLimits {
                bandwidth: bandwidth?,
                cpu: cpu?,
            },
            params: params?,
        })
    }

    /// The job's own keys, checked against its task type's schema; their effective values
    /// (as written, or the declared default) join the settings.
    fn task_keys(
        &mut self,
        schema: &TaskSchema,
        prefix: &str,
        leaves: &[Leaf],
        frequency: Option<std::time::Duration>,
    ) -> Option<TaskParams> {
        let key = |k: &str| format!("{prefix}.{k}");
        let frequency = frequency.unwrap_or(DEFAULT_FREQUENCY);
        let mut text = BTreeMap::new();
        let mut broken = false;
        let own = leaves
            .iter()
            .filter(|l| !COMMON_JOB_KEYS.contains(&l.key.as_str()))
            .filter(|l| match schema.keys() {
                Some(docs) => docs.iter().any(|d| d.name == l.key),
                None => true,
            });
        for leaf in own {
            match &leaf.text {
                Ok(t) => {
                    text.insert(leaf.key.clone(), t.clone());
                }
                Err(e) => {
                    let (origin, e) = (leaf.origin.clone(), e.clone());
                    self.problem(&origin, &key(&leaf.key), None, e);
                    broken = true;
                }
            }
        }
        let mut shown: Vec<Setting> = Vec::new();
        let order: Vec<(String, Option<&str>)> = match schema.keys() {
            Some(docs) => docs
                .iter()
                .map(|d| (d.name.to_string(), d.default))
                .collect(),
            None => text.keys().map(|k| (k.clone(), None)).collect(),
        };
        for (name, default) in order {
            match (
                leaves.iter().find(|l| l.key == name),
                text.get(&name),
                default,
            ) {
                (Some(leaf), Some(value), _) => shown.push(Setting {
                    key: key(&name),
                    value: redact(value),
                    origin: leaf.origin.clone(),
                }),
                (None, _, Some(default)) => shown.push(Setting {
                    key: key(&name),
                    value: default.replace("{frequency}", &HumanDuration(frequency).to_string()),
                    origin: "built-in default".into(),
                }),
                _ => {}
            }
        }
        self.settings.extend(shown);
        if broken {
            return None;
        }
        match schema.parse(&text, prefix, &self.options.node_dir, frequency) {
            Ok(params) => Some(params),
            Err(problems) => {
                for p in problems {
                    let leaf = leaves.iter().find(|l| l.key == p.key);
                    let origin = match leaf {
                        Some(l) => l.origin.clone(),
                        None => self.job_origin(&key(&p.key)),
                    };
                    let value = text.get(&p.key).cloned();
                    self.problem(&origin, &key(&p.key), value.as_deref(), p.message);
                }
                None
            }
        }
    }
}

/// What `after` accepts.
pub const AFTER_ACCEPTED: &str =
    "none, or job ids separated by commas, such as backup.b1 or backup.b1,backup.b2";

/// `backup.b1, backup.b2` as ids; `none` (or nothing) as no job.
fn parse_after(text: &str) -> Result<Vec<String>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut ids: Vec<String> = Vec::new();
    for id in text.split(',').map(str::trim) {
        match id.split_once('.') {
            Some((task_type, name)) if valid_job_name(task_type) && valid_job_name(name) => {
                if !ids.iter().any(|known| known == id) {
                    ids.push(id.to_string());
                }
            }
            _ => {
                return Err(format!(
                    "{id:?} is not a job id (TYPE.NAME, such as backup.b1)"
                ))
            }
        }
    }
    Ok(ids)
}

/// A job's `after`, checked once every job is known.
pub(crate) struct PendingAfter {
    /// The job that names the others (`prune.p1`).
    pub job: String,
    /// Where its `after` was written.
    pub origin: String,
    /// The value as written.
    pub text: String,
    /// The ids it names.
    pub after: Vec<String>,
}

impl Validator<'_> {
    /// Every job named in an `after` exists, is not the job itself, and no chain of `after`
    /// comes back to where it started (it would run the jobs in a loop).
    pub(crate) fn check_after(&mut self) {
        let pending = std::mem::take(&mut self.job_after);
        let known: Vec<String> = self.declared_jobs.iter().cloned().collect();
        for p in &pending {
            for id in &p.after {
                let message = if id == &p.job {
                    Some("a job cannot run after itself".to_string())
                } else if !self.declared_jobs.contains(id) {
                    Some(format!("there is no job {id}; jobs: {}", known.join(", ")))
                } else {
                    None
                };
                if let Some(message) = message {
                    self.problem(
                        &p.origin,
                        &format!("{}.after", p.job),
                        Some(&p.text),
                        message,
                    );
                }
            }
        }
        let edges: BTreeMap<&str, &[String]> = pending
            .iter()
            .map(|p| (p.job.as_str(), p.after.as_slice()))
            .collect();
        for p in &pending {
            if let Some(cycle) = after_cycle(&p.job, &edges) {
                self.problem(
                    &p.origin,
                    &format!("{}.after", p.job),
                    Some(&p.text),
                    format!(
                        "the jobs would run each other in a loop ({}): remove one of these after keys",
                        cycle.join(" after ")
                    ),
                );
            }
        }
    }
}

/// The loop of `after` through `start`, if following the jobs it names comes back to it
/// (`[a, b, a]`: a runs after b, which runs after a).
fn after_cycle(start: &str, edges: &BTreeMap<&str, &[String]>) -> Option<Vec<String>> {
    fn walk(
        at: &str,
        start: &str,
        edges: &BTreeMap<&str, &[String]>,
        path: &mut Vec<String>,
    ) -> bool {
        for next in edges.get(at).copied().unwrap_or_default() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if next.as_str() == at || path.contains(next) {
                continue;
            }
            path.push(next.clone());
            if walk(next, start, edges, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(start, start, edges, &mut path).then_some(path)
}
