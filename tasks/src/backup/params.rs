//! The keys of a `[backup]` job (`b1.source`, `b1.target`, ...), declared here, beside the task,
//! and checked by the configuration loader through [`TaskKeys`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use tahoe_jobs_config::values::de::duration_or_zero;
use tahoe_jobs_config::{
    parse_absolute_path, parse_path, HumanDuration, JobContext, KeyDoc, KeyProblem, Target,
    TaskKeys, BOOL_ACCEPTED, TARGET_ACCEPTED,
};

/// The number of uploads in flight through the node when `concurrency` is not given: the node
/// is one Python process, and more in flight did not make it faster (`docs/benchmarks.md`).
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The number of uploads in flight on the direct path when `concurrency` is not given. A small
/// file costs three dependent round trips to the servers (listing, allocation, write): with 4
/// in flight the servers idle between them, on loopback and more so behind a long round trip
/// (`docs/benchmarks.md`, B2 on 3-of-5). Large files are bounded in memory by the uploader's
/// own limit on share bytes in flight, whatever this is.
pub const DIRECT_CONCURRENCY: usize = 16;
/// `recheck_after` when none is given (`tahoe backup`'s 30 days).
pub const DEFAULT_RECHECK_AFTER: Duration = Duration::from_secs(30 * 86_400);
/// `recheck_all_after` when none is given (`tahoe backup`'s 60 days).
pub const DEFAULT_RECHECK_ALL_AFTER: Duration = Duration::from_secs(60 * 86_400);

const RECHECK_ACCEPTED: &str =
    "a duration such as 30d, 8weeks or 0s (0s: check every capability on every run)";

/// A backup job's own keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupParams {
    /// `source`: the local directory to back up, an absolute path.
    #[serde(deserialize_with = "absolute_path")]
    pub source: PathBuf,
    /// `target`: where on the grid the backup goes (`Archives/` and `Latest` below it).
    pub target: Target,
    /// `exclude`: fnmatch patterns, trimmed, matched against each file and directory name;
    /// none by default.
    #[serde(default, deserialize_with = "globs")]
    pub exclude: Vec<String>,
    /// Relative to the node directory as written; made absolute (and checked) by `finish`.
    #[serde(default)]
    pub exclude_from: Option<PathBuf>,
    /// `exclude_vcs`: leave out version-control directories and files (`VCS_PATTERNS`); false by
    /// default.
    #[serde(default)]
    pub exclude_vcs: bool,
    /// Uploads in flight at once; `None`: [`DIRECT_CONCURRENCY`] on the direct path,
    /// [`DEFAULT_CONCURRENCY`] through the node.
    #[serde(default, deserialize_with = "concurrency")]
    pub concurrency: Option<usize>,
    /// A capability last checked less than this long ago is trusted without a check
    /// (`recheck_after`, default 30 days, as `tahoe backup`).
    #[serde(
        default = "default_recheck_after",
        deserialize_with = "duration_or_zero"
    )]
    pub recheck_after: Duration,
    /// A capability last checked at least this long ago is always checked before it is reused
    /// (`recheck_all_after`, default 60 days); in between, the chance grows linearly.
    #[serde(
        default = "default_recheck_all_after",
        deserialize_with = "duration_or_zero"
    )]
    pub recheck_all_after: Duration,
    /// `data_path`: direct to the storage servers (default) or through the node.
    #[serde(default)]
    pub data_path: crate::data_path::DataPath,
}

fn default_recheck_after() -> Duration {
    DEFAULT_RECHECK_AFTER
}

fn default_recheck_all_after() -> Duration {
    DEFAULT_RECHECK_ALL_AFTER
}

fn absolute_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    parse_absolute_path(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// Exclude patterns are Python fnmatch patterns, as `tahoe backup` takes them: every string is
/// one (an unclosed `[` is an ordinary character), so none is refused.
fn globs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<String>::deserialize(d)?
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect())
}

fn concurrency<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let s = String::deserialize(d)?;
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(Some(n)),
        _ => Err(serde::de::Error::custom(format!(
            "{s:?} is not a whole number from 1 to 64"
        ))),
    }
}

impl TaskKeys for BackupParams {
    fn keys() -> Vec<KeyDoc> {
        vec![
            KeyDoc::required(
                "source",
                "an absolute path of a directory",
                "the directory to back up, such as /Volumes/BackupDrive/Pictures",
            ),
            KeyDoc::required(
                "target",
                TARGET_ACCEPTED,
                "where on the grid: ALIAS:PATH, such as backup:pictures",
            ),
            KeyDoc::optional(
                "exclude",
                "",
                "a comma list of fnmatch patterns (as tahoe backup takes them) matched against each file and directory name, such as *.tmp,.DS_Store",
                "names to leave out",
            ),
            KeyDoc::optional(
                "exclude_from",
                "",
                "a readable file with one fnmatch pattern a line",
                "a file of patterns to leave out (relative paths are below the node directory)",
            ),
            KeyDoc::optional(
                "exclude_vcs",
                "false",
                BOOL_ACCEPTED,
                "leave out version-control directories and files (.git, .svn, ...)",
            ),
            KeyDoc::optional(
                "concurrency",
                "16 direct, 4 through the node",
                "the number of uploads in flight at once, 1 to 64",
                "uploads in flight at once",
            ),
            KeyDoc::optional(
                "recheck_after",
                "30days",
                RECHECK_ACCEPTED,
                "a file's capability checked less than this long ago is reused without a check",
            ),
            KeyDoc::optional(
                "recheck_all_after",
                "60days",
                RECHECK_ACCEPTED,
                "a capability checked at least this long ago is always checked before reuse",
            ),
            KeyDoc::optional(
                "data_path",
                "direct",
                crate::data_path::DATA_PATH_ACCEPTED,
                "upload immutable files and directories straight to the storage servers (direct) or through the node",
            ),
        ]
    }

    fn finish(&mut self, job: &JobContext) -> Result<(), Vec<KeyProblem>> {
        let mut problems = Vec::new();
        if let Some(file) = &self.exclude_from {
            let checked = parse_path(&file.to_string_lossy(), job.node_dir).and_then(|p| {
                std::fs::metadata(&p)
                    .map(|_| p.clone())
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))
            });
            match checked {
                Ok(p) => self.exclude_from = Some(p),
                Err(e) => problems.push(KeyProblem::new(
                    "exclude_from",
                    format!("{e}; expected a readable file with one fnmatch pattern a line"),
                )),
            }
        }
        if self.recheck_all_after < self.recheck_after {
            problems.push(KeyProblem::new(
                "recheck_all_after",
                format!(
                    "shorter than recheck_after ({}): every capability checked at least recheck_all_after ago is checked, so it must be at least recheck_after",
                    HumanDuration(self.recheck_after)
                ),
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}
