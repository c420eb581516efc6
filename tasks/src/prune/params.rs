//! The keys of a `[prune]` job (`p1.target`, `p1.keep_daily`, ...), declared beside the task
//! and checked by the configuration loader through [`TaskKeys`].

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use tahoe_jobs_config::{
    HumanDuration, JobContext, KeyDoc, KeyProblem, Target, TaskKeys, TARGET_ACCEPTED,
};

use super::policy::Policy;

const COUNT_ACCEPTED: &str = "a whole number (0: the rule is off)";

/// A prune job's own keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneParams {
    /// A backup target: its `Archives/` are pruned.
    pub target: Target,
    /// `keep_last`: keep the N newest archives; 0 (the default) turns the rule off.
    #[serde(default)]
    pub keep_last: u32,
    /// `keep_hourly`: keep the newest archive of each of the last N hours that have one; 0
    /// (the default) turns the rule off.
    #[serde(default)]
    pub keep_hourly: u32,
    /// `keep_daily`: the same per day; 0 (the default) turns the rule off.
    #[serde(default)]
    pub keep_daily: u32,
    /// `keep_weekly`: the same per ISO week; 0 (the default) turns the rule off.
    #[serde(default)]
    pub keep_weekly: u32,
    /// `keep_monthly`: the same per month; 0 (the default) turns the rule off.
    #[serde(default)]
    pub keep_monthly: u32,
    /// `keep_yearly`: the same per year; 0 (the default) turns the rule off.
    #[serde(default)]
    pub keep_yearly: u32,
    /// `keep_within`: keep every archive newer than this long before the newest one; `None`
    /// (`off`, the default) turns the rule off.
    #[serde(default, deserialize_with = "within")]
    pub keep_within: Option<Duration>,
}

fn within<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse::<HumanDuration>()
        .map(|d| Some(d.as_duration()))
        .map_err(serde::de::Error::custom)
}

impl PruneParams {
    /// The rules as the policy function takes them.
    pub fn policy(&self) -> Policy {
        Policy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within: self.keep_within,
        }
    }
}

/// The rule keys, for the message about a policy that keeps nothing.
pub const RULE_KEYS: &[&str] = &[
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
    "keep_within",
];

impl TaskKeys for PruneParams {
    fn keys() -> Vec<KeyDoc> {
        let count = |name, help| KeyDoc::optional(name, "0", COUNT_ACCEPTED, help);
        vec![
            KeyDoc::required(
                "target",
                TARGET_ACCEPTED,
                "the backup target whose Archives/ are pruned, such as backup:pictures",
            ),
            count("keep_last", "keep the N newest archives"),
            count(
                "keep_hourly",
                "keep the newest archive of each of the last N hours that have one",
            ),
            count(
                "keep_daily",
                "keep the newest archive of each of the last N days that have one",
            ),
            count(
                "keep_weekly",
                "keep the newest archive of each of the last N ISO weeks that have one",
            ),
            count(
                "keep_monthly",
                "keep the newest archive of each of the last N months that have one",
            ),
            count(
                "keep_yearly",
                "keep the newest archive of each of the last N years that have one",
            ),
            KeyDoc::optional(
                "keep_within",
                "off",
                "off, or a duration such as 10d, 2weeks or 36h",
                "keep every archive newer than this long before the newest one",
            ),
        ]
    }

    fn finish(&mut self, _job: &JobContext) -> Result<(), Vec<KeyProblem>> {
        if self.policy().keeps_nothing() {
            return Err(vec![KeyProblem::new(
                "keep_last",
                format!(
                    "no keep_* rule is set, so every archive but the newest would be removed; set at least one of {}",
                    RULE_KEYS.join(", ")
                ),
            )]);
        }
        Ok(())
    }
}
