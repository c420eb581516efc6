//! Live overrides: values changed through the control API while the daemon runs (a job's
//! `allowed_times`, `bandwidth` and `cpu`; the `[budget]` limits). They form a layer above the
//! configuration files: kept in the state store, applied again at every start and reload, shown
//! as such, and removed one key at a time to fall back to the file's value.
//!
//! Values are kept as the text the user typed, not as parsed types: the text is what the pages
//! show, it round-trips through any later change of the parsers, and it is validated here with
//! the configuration's own parsers before it is accepted.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tahoe_jobs_config::{BudgetSettings, CpuShare, JobConfig, RateSchedule, ServerLimits, Windows};

use crate::record::RecordError;

/// The overrides version this release writes and reads.
pub const OVERRIDES_VERSION: u64 = 1;

/// The job keys that can be changed live.
pub const JOB_KEYS: [&str; 3] = ["allowed_times", "bandwidth", "cpu"];

/// The `[budget]` keys that can be changed live, besides `server.NAME.upload|download`.
pub const BUDGET_KEYS: [&str; 3] = ["upload", "download", "cpu"];

/// One overridden value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideValue {
    /// As the user wrote it.
    pub value: String,
    /// When the override was set.
    pub set_at: Timestamp,
}

/// Every live override.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveOverrides {
    /// By job id, then key (`bandwidth`, ...).
    pub jobs: BTreeMap<String, BTreeMap<String, OverrideValue>>,
    /// By `[budget]` key (`upload`, `server.parents.download`, ...).
    pub budget: BTreeMap<String, OverrideValue>,
}

/// What an override applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideTarget {
    /// A job, by id (or by name when unambiguous).
    Job(String),
    /// The `[budget]` settings.
    Budget,
}

/// Why an override was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// The job key is not one of [`JOB_KEYS`].
    #[error("a job's {key:?} cannot be changed live; these can: allowed_times, bandwidth, cpu")]
    UnknownJobKey {
        /// The key asked for.
        key: String,
    },
    /// The `[budget]` key is not one of [`BUDGET_KEYS`] nor `server.NAME.upload|download`.
    #[error(
        "[budget] {key:?} cannot be changed live; these can: upload, download, cpu, \
         server.NAME.upload, server.NAME.download"
    )]
    UnknownBudgetKey {
        /// The key asked for.
        key: String,
    },
    /// The value does not parse as the key's type.
    #[error("{key} = {value:?} is not valid: {message}")]
    Invalid {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}

impl LiveOverrides {
    /// The overrides of one job (empty when it has none).
    pub fn job(&self, id: &str) -> BTreeMap<String, OverrideValue> {
        self.jobs.get(id).cloned().unwrap_or_default()
    }

    /// `job` with its overrides applied. Values were validated when they were set; one that no
    /// longer parses (after a downgrade, say) is skipped rather than failing the whole job.
    pub fn apply_job(&self, job: &JobConfig) -> JobConfig {
        let mut out = job.clone();
        for (key, v) in self.jobs.get(&job.id()).into_iter().flatten() {
            if let Err(e) = apply_job_key(&mut out, key, &v.value) {
                tracing::warn!(job = %job.id(), error = %e, "ignoring a stored live override");
            }
        }
        out
    }

    /// `[budget]` with its overrides applied (invalid stored values skipped, as for jobs).
    pub fn apply_budget(&self, budget: &BudgetSettings) -> BudgetSettings {
        let mut out = budget.clone();
        for (key, v) in &self.budget {
            if let Err(e) = apply_budget_key(&mut out, key, &v.value) {
                tracing::warn!(error = %e, "ignoring a stored live budget override");
            }
        }
        out
    }

    /// Sets (`Some`) or removes (`None`) one key after checking it; `job` is a job id.
    pub fn set(
        &mut self,
        target: &OverrideTarget,
        key: &str,
        value: Option<&str>,
        now: Timestamp,
    ) -> Result<(), OverrideError> {
        let key = key.trim().to_string();
        let value = value.map(|v| v.trim().to_string());
        // Checked before anything changes, so a refused value leaves no trace.
        match (target, &value) {
            (OverrideTarget::Job(_), _) if !JOB_KEYS.contains(&key.as_str()) => {
                return Err(OverrideError::UnknownJobKey { key });
            }
            (OverrideTarget::Budget, _) if budget_key(&key).is_none() => {
                return Err(OverrideError::UnknownBudgetKey { key });
            }
            (OverrideTarget::Job(_), Some(v)) => check_job_value(&key, v)?,
            (OverrideTarget::Budget, Some(v)) => {
                apply_budget_key(&mut BudgetSettings::default(), &key, v)?
            }
            (_, None) => {}
        }
        let map = match target {
            OverrideTarget::Job(id) => self.jobs.entry(id.clone()).or_default(),
            OverrideTarget::Budget => &mut self.budget,
        };
        match value {
            None => {
                map.remove(&key);
            }
            Some(value) => {
                map.insert(key, OverrideValue { value, set_at: now });
            }
        }
        self.jobs.retain(|_, m| !m.is_empty());
        Ok(())
    }

    /// Encodes the overrides with a version marker, like job records.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).expect("overrides always serialize");
        value["v"] = OVERRIDES_VERSION.into();
        serde_json::to_vec(&value).expect("overrides always serialize")
    }

    /// Decodes overrides of any version this release understands.
    pub fn from_bytes(bytes: &[u8]) -> Result<LiveOverrides, RecordError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)?;
        match value.get("v").and_then(serde_json::Value::as_u64) {
            None => Err(RecordError::NoVersion),
            Some(OVERRIDES_VERSION) => Ok(serde_json::from_value(value)?),
            Some(found) => Err(RecordError::FutureVersion {
                found,
                supported: OVERRIDES_VERSION,
            }),
        }
    }
}

fn invalid(key: &str, value: &str, message: String) -> OverrideError {
    OverrideError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        message,
    }
}

fn check_job_value(key: &str, value: &str) -> Result<(), OverrideError> {
    let result = match key {
        "allowed_times" => value.parse::<Windows>().map(drop),
        "bandwidth" => value.parse::<RateSchedule>().map(drop),
        "cpu" => value.parse::<CpuShare>().map(drop),
        _ => {
            return Err(OverrideError::UnknownJobKey {
                key: key.to_string(),
            })
        }
    };
    result.map_err(|m| invalid(key, value, m))
}

/// Applies one job key to `job`.
pub fn apply_job_key(job: &mut JobConfig, key: &str, value: &str) -> Result<(), OverrideError> {
    check_job_value(key, value)?;
    let err = |m| invalid(key, value, m);
    match key {
        "allowed_times" => job.schedule.allowed_times = value.parse().map_err(err)?,
        "bandwidth" => job.limits.bandwidth = value.parse().map_err(err)?,
        _ => job.limits.cpu = value.parse().map_err(err)?,
    }
    Ok(())
}

/// A `[budget]` key, split: `upload`, `download`, `cpu`, or a server's direction.
enum BudgetKey<'a> {
    Upload,
    Download,
    Cpu,
    Server { name: &'a str, upload: bool },
}

fn budget_key(key: &str) -> Option<BudgetKey<'_>> {
    match key {
        "upload" => return Some(BudgetKey::Upload),
        "download" => return Some(BudgetKey::Download),
        "cpu" => return Some(BudgetKey::Cpu),
        _ => {}
    }
    let rest = key.strip_prefix("server.")?;
    let (name, direction) = rest.rsplit_once('.')?;
    let upload = match direction {
        "upload" => true,
        "download" => false,
        _ => return None,
    };
    (!name.is_empty()).then_some(BudgetKey::Server { name, upload })
}

/// Applies one `[budget]` key to `budget`. Budget limits are absolute, as in the files.
pub fn apply_budget_key(
    budget: &mut BudgetSettings,
    key: &str,
    value: &str,
) -> Result<(), OverrideError> {
    let Some(parsed) = budget_key(key) else {
        return Err(OverrideError::UnknownBudgetKey {
            key: key.to_string(),
        });
    };
    let err = |m| invalid(key, value, m);
    let rate = || -> Result<RateSchedule, OverrideError> {
        let rate: RateSchedule = value.parse().map_err(err)?;
        if rate.uses_percent() {
            return Err(err(
                "[budget] limits are absolute (like 1MiB/s); percentages are for jobs".into(),
            ));
        }
        Ok(rate)
    };
    match parsed {
        BudgetKey::Upload => budget.upload = rate()?,
        BudgetKey::Download => budget.download = rate()?,
        BudgetKey::Cpu => budget.cpu = value.parse().map_err(err)?,
        BudgetKey::Server { name, upload } => {
            let rate = rate()?;
            let server = budget
                .servers
                .entry(name.to_string())
                .or_insert_with(|| ServerLimits {
                    upload: RateSchedule::unlimited(),
                    download: RateSchedule::unlimited(),
                });
            if upload {
                server.upload = rate;
            } else {
                server.download = rate;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tahoe_jobs_config::{JobLimits, Schedule, TaskParams};

    fn job() -> JobConfig {
        JobConfig {
            task_type: "backup".into(),
            name: "b1".into(),
            schedule: Schedule {
                frequency: Duration::from_secs(3600),
                allowed_times: Windows::Always,
                enabled: true,
                overdue_after: None,
                after: Vec::new(),
            },
            limits: JobLimits {
                bandwidth: RateSchedule::unlimited(),
                cpu: CpuShare::UNLIMITED,
            },
            params: TaskParams::none(),
        }
    }

    fn now() -> Timestamp {
        Timestamp::UNIX_EPOCH
    }

    #[test]
    fn job_overrides_apply_and_reset() {
        let mut o = LiveOverrides::default();
        let target = OverrideTarget::Job("backup.b1".into());
        o.set(&target, "bandwidth", Some("1MiB/s"), now()).unwrap();
        o.set(&target, "allowed_times", Some("2200-0600"), now())
            .unwrap();
        o.set(&target, "cpu", Some("25%"), now()).unwrap();
        let applied = o.apply_job(&job());
        assert_eq!(applied.limits.bandwidth, "1MiB/s".parse().unwrap());
        assert_eq!(applied.schedule.allowed_times, "2200-0600".parse().unwrap());
        assert_eq!(applied.limits.cpu, "25%".parse().unwrap());
        // Other jobs are untouched.
        let mut other = job();
        other.name = "b2".into();
        assert_eq!(o.apply_job(&other), other);

        for key in JOB_KEYS {
            o.set(&target, key, None, now()).unwrap();
        }
        assert_eq!(o, LiveOverrides::default(), "no empty job entry is left");
        assert_eq!(o.apply_job(&job()), job());
    }

    #[test]
    fn bad_values_and_keys_are_refused_with_the_reason() {
        let mut o = LiveOverrides::default();
        let target = OverrideTarget::Job("backup.b1".into());
        let e = o
            .set(&target, "bandwidth", Some("fast"), now())
            .unwrap_err();
        assert!(matches!(e, OverrideError::Invalid { .. }), "{e}");
        let e = o.set(&target, "source", Some("/x"), now()).unwrap_err();
        assert!(e.to_string().contains("allowed_times"), "{e}");
        let e = o
            .set(&OverrideTarget::Budget, "upload", Some("50%"), now())
            .unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
        let e = o
            .set(
                &OverrideTarget::Budget,
                "server..upload",
                Some("1MiB/s"),
                now(),
            )
            .unwrap_err();
        assert!(matches!(e, OverrideError::UnknownBudgetKey { .. }));
        assert_eq!(o, LiveOverrides::default());
    }

    #[test]
    fn budget_overrides_apply() {
        let mut o = LiveOverrides::default();
        let b = OverrideTarget::Budget;
        o.set(&b, "upload", Some("0800-2300 16KiB/s, off"), now())
            .unwrap();
        o.set(&b, "server.parents.download", Some("8KiB/s"), now())
            .unwrap();
        o.set(&b, "cpu", Some("50%"), now()).unwrap();
        let applied = o.apply_budget(&BudgetSettings::default());
        assert_eq!(applied.upload, "0800-2300 16KiB/s, off".parse().unwrap());
        assert_eq!(applied.cpu, "50%".parse().unwrap());
        let parents = &applied.servers["parents"];
        assert_eq!(parents.download, "8KiB/s".parse().unwrap());
        assert!(parents.upload.is_unlimited());
    }

    #[test]
    fn round_trips_with_a_version_marker() {
        let mut o = LiveOverrides::default();
        o.set(&OverrideTarget::Budget, "download", Some("1MiB/s"), now())
            .unwrap();
        o.set(
            &OverrideTarget::Job("check.c1".into()),
            "cpu",
            Some("10%"),
            now(),
        )
        .unwrap();
        let bytes = o.to_bytes();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["v"], 1);
        assert_eq!(LiveOverrides::from_bytes(&bytes).unwrap(), o);
        assert!(matches!(
            LiveOverrides::from_bytes(br#"{"v":9}"#),
            Err(RecordError::FutureVersion { found: 9, .. })
        ));
    }
}
