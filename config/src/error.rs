//! Configuration errors: every problem names where the value came from, the key, the bad value
//! and what would have been accepted, and all problems are reported at once.

use std::fmt;
use std::path::PathBuf;

/// One bad setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the value came from: `/home/u/.tahoe/tahoe-jobs.cfg line 5`, `environment variable
    /// TAHOE_JOBS_BACKUP__B1__FREQUENCY`, `command line --set`, `built-in default`.
    pub origin: String,
    /// The dotted key, `backup.b1.allowed_times`.
    pub key: String,
    /// The value as written, when there was one (never a capability: those are redacted).
    pub value: Option<String>,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.key)?;
        if let Some(value) = &self.value {
            write!(f, " = {value:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A configuration file could not be read (a `--config` file that does not exist is one).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The I/O error from reading it.
        #[source]
        source: std::io::Error,
    },
    /// An INI file (`tahoe-jobs.cfg` or `tahoe.cfg`) has a syntax error or a bad value on a line.
    #[error("{path} line {line}: {message}")]
    Syntax {
        /// The file with the error.
        path: PathBuf,
        /// The line of the error, counted from 1 (0 when unknown).
        line: usize,
        /// What is wrong on that line.
        message: String,
    },
    /// The sources parsed, but some values are invalid: every problem found, all at once.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Problem>),
    /// figment could not read or merge the sources (a malformed TOML file, for one).
    #[error("cannot combine the configuration sources: {0}")]
    Merge(Box<figment::Error>),
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = format!(
        "{} problem{} in the configuration:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  ");
        out.push_str(&p.to_string());
    }
    out
}

/// Closest candidate by edit distance, for "did you mean" hints.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1) + 1)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["frequency", "allowed_times", "source", "target"];
        assert_eq!(did_you_mean("frequncy", &keys), Some("frequency"));
        assert_eq!(did_you_mean("allowed_time", &keys), Some("allowed_times"));
        assert_eq!(did_you_mean("colour", &keys), None);
    }
}
