//! The validator: walks the merged tree section by section, collects every problem (with its
//! origin, key, value and accepted form) and every effective value (for `tahoe-jobs config`).
//! The sections have their own modules: [`crate::daemon_section`], [`crate::budget_section`],
//! [`crate::job_section`].

use std::collections::BTreeMap;

use figment::value::{Dict, Value};

use crate::error::{did_you_mean, ConfigError, Problem};
use crate::load::LoadOptions;
use crate::model::*;
use crate::origins::{flatten, Leaf, Origins};
use crate::values::redact;

pub(crate) struct Validator<'a> {
    pub(crate) options: &'a LoadOptions,
    pub(crate) origins: Origins<'a>,
    pub(crate) problems: Vec<Problem>,
    pub(crate) settings: Vec<Setting>,
    pub(crate) warnings: Vec<String>,
    /// Each job's hook commands, gathered as its keys are read.
    pub(crate) job_hooks: BTreeMap<String, JobHooks>,
    /// Every job written in the configuration (`backup.b1`), valid or not.
    pub(crate) declared_jobs: std::collections::BTreeSet<String>,
    /// The jobs' `after` keys, checked once every job is known.
    pub(crate) job_after: Vec<crate::job_section::PendingAfter>,
}

impl<'a> Validator<'a> {
    pub(crate) fn new(options: &'a LoadOptions, origins: Origins<'a>) -> Self {
        Validator {
            options,
            origins,
            problems: Vec::new(),
            settings: Vec::new(),
            warnings: Vec::new(),
            job_hooks: BTreeMap::new(),
            declared_jobs: Default::default(),
            job_after: Vec::new(),
        }
    }

    pub(crate) fn problem(
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
            // A parser may quote the value in its message: hide capabilities there too.
            message: redact(&message.into()),
        });
    }

    pub(crate) fn validate(mut self, tree: &Dict) -> Result<Config, ConfigError> {
        let schemas = self.options.task_types.clone();
        let task_types: Vec<&str> = schemas.iter().map(|s| s.name()).collect();
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
        let mut hooks = self.hook_settings(sections.get("jobs").unwrap_or(&empty));
        let mut jobs = Vec::new();
        for schema in &schemas {
            if let Some(leaves) = sections.get(schema.name()) {
                jobs.extend(self.jobs_of(schema, leaves, &budget));
            }
        }
        self.check_after();
        if !self.problems.is_empty() {
            return Err(ConfigError::Invalid(self.problems));
        }
        hooks.commands = std::mem::take(&mut self.job_hooks);
        Ok(Config {
            node_dir: self.options.node_dir.clone(),
            daemon,
            budget,
            jobs,
            hooks,
            settings: self.settings,
            warnings: self.warnings,
        })
    }

    /// Records the effective value of `key` and parses it; a default is recorded as such.
    pub(crate) fn field<T, E: std::fmt::Display>(
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

    pub(crate) fn unknown_key(
        &mut self,
        section: &str,
        leaf: &Leaf,
        key: &str,
        candidates: &[&str],
    ) {
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
    /// Where a job was defined, for problems about keys it lacks.
    pub(crate) fn job_origin(&self, full_key: &str) -> String {
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
}
