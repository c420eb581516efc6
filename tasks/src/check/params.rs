//! The keys of a `[check]` job (`c1.target`, `c1.verify`, ...), declared here, beside the task,
//! and checked by the configuration loader through [`TaskKeys`].

use std::time::Duration;

use serde::Deserialize;
use tahoe_jobs_config::values::de::duration;
use tahoe_jobs_config::{
    JobContext, KeyDoc, KeyProblem, Target, TaskKeys, BOOL_ACCEPTED, TARGET_ACCEPTED,
};

/// A check job's own keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckParams {
    /// `target`: the directory (or file) to check, with everything reachable from it.
    pub target: Target,
    /// `verify`: download and verify every share, not only ask the servers; false by default.
    #[serde(default)]
    pub verify: bool,
    /// `repair`: repair what is unhealthy and rebalance what is on too few servers; false by
    /// default.
    #[serde(default)]
    pub repair: bool,
    /// `add_lease`: renew the leases of everything reachable; true by default.
    #[serde(default = "yes")]
    pub add_lease: bool,
    /// An object checked less than this long ago is skipped; the job's frequency when not set.
    #[serde(default, deserialize_with = "duration")]
    pub recheck_after: Duration,
    /// `data_path`: direct to the storage servers (default) or through the node.
    #[serde(default)]
    pub data_path: crate::data_path::DataPath,
}

fn yes() -> bool {
    true
}

impl TaskKeys for CheckParams {
    fn keys() -> Vec<KeyDoc> {
        vec![
            KeyDoc::required(
                "target",
                TARGET_ACCEPTED,
                "the directory to keep healthy: ALIAS:PATH, such as backup:pictures",
            ),
            KeyDoc::optional(
                "verify",
                "false",
                BOOL_ACCEPTED,
                "download and verify every share (slow), not only ask the servers",
            ),
            KeyDoc::optional("repair", "false", BOOL_ACCEPTED, "repair what is unhealthy"),
            KeyDoc::optional(
                "add_lease",
                "true",
                BOOL_ACCEPTED,
                "renew the leases of everything reachable, so the servers keep it",
            ),
            KeyDoc::optional(
                "recheck_after",
                "{frequency} (the frequency)",
                tahoe_jobs_config::duration::DURATION_ACCEPTED,
                "an object checked less than this long ago is skipped",
            ),
            KeyDoc::optional(
                "data_path",
                "direct",
                crate::data_path::DATA_PATH_ACCEPTED,
                "check immutable objects by asking the storage servers directly (direct) or through the node",
            ),
        ]
    }

    fn finish(&mut self, job: &JobContext) -> Result<(), Vec<KeyProblem>> {
        if !job.is_set("recheck_after") {
            self.recheck_after = job.frequency;
        }
        Ok(())
    }
}
