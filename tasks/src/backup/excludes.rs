//! Exclude patterns with `tahoe backup`'s semantics: each pattern is an fnmatch-style glob
//! matched, case-sensitively, against the BASENAME of every file and directory below the
//! source (never the source itself). A matching directory is not descended into.

use std::path::Path;

use glob::{MatchOptions, Pattern};

/// What `tahoe backup --exclude-vcs` excludes (from its `BackupOptions.vcs_patterns`).
pub const VCS_PATTERNS: &[&str] = &[
    "CVS",
    "RCS",
    "SCCS",
    ".git",
    ".gitignore",
    ".cvsignore",
    ".svn",
    ".arch-ids",
    "{arch}",
    "=RELEASE-ID",
    "=meta-update",
    "=update",
    ".bzr",
    ".bzrignore",
    ".bzrtags",
    ".hg",
    ".hgignore",
    "_darcs",
];

/// Python's fnmatch: `*` and `?` match any character, a leading dot is not special.
const FNMATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

/// A set of exclude patterns.
#[derive(Debug, Clone, Default)]
pub struct Excludes {
    patterns: Vec<Pattern>,
}

/// An exclude file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the exclude file {path}: {source}")]
pub struct ExcludeFileError {
    pub path: std::path::PathBuf,
    pub source: std::io::Error,
}

impl Excludes {
    /// Builds the set as `tahoe backup` does from its options: `--exclude` patterns, then one
    /// pattern a line of the exclude file, then the VCS list.
    pub fn from_options(
        exclude: &[String],
        exclude_from: Option<&Path>,
        exclude_vcs: bool,
    ) -> Result<Excludes, ExcludeFileError> {
        let mut all: Vec<String> = exclude.to_vec();
        if let Some(path) = exclude_from {
            let text = std::fs::read_to_string(path).map_err(|source| ExcludeFileError {
                path: path.to_path_buf(),
                source,
            })?;
            all.extend(text.lines().map(str::to_string));
        }
        if exclude_vcs {
            all.extend(VCS_PATTERNS.iter().map(|p| p.to_string()));
        }
        Ok(Excludes::new(all))
    }

    /// Patterns are trimmed and empty ones dropped (as `opt_exclude` does). A pattern that is
    /// not a valid glob (an unclosed `[`, say) matches itself literally, as fnmatch treats it.
    pub fn new<S: AsRef<str>>(patterns: impl IntoIterator<Item = S>) -> Excludes {
        let patterns = patterns
            .into_iter()
            .map(|p| p.as_ref().trim().to_string())
            .filter(|p| !p.is_empty())
            .map(|p| {
                Pattern::new(&p).unwrap_or_else(|_| {
                    Pattern::new(&Pattern::escape(&p)).expect("an escaped pattern is valid")
                })
            })
            .collect();
        Excludes { patterns }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when the entry called `name` is excluded.
    pub fn is_excluded(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| p.matches_with(name, FNMATCH))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_basenames_like_fnmatch() {
        let ex = Excludes::new(["*.tmp", " .DS_Store ", "", "cache?", "[ab]*.log", "[!x]y"]);
        assert!(ex.is_excluded("a.tmp"));
        assert!(
            ex.is_excluded(".tmp"),
            "a leading dot is not special in fnmatch"
        );
        assert!(!ex.is_excluded("a.tmp.bak"), "the whole name must match");
        assert!(!ex.is_excluded("A.TMP"), "case-sensitive");
        assert!(ex.is_excluded(".DS_Store"));
        assert!(ex.is_excluded("cache1"));
        assert!(!ex.is_excluded("cache12"));
        assert!(ex.is_excluded("b-2.log"));
        assert!(!ex.is_excluded("c.log"));
        assert!(ex.is_excluded("zy"));
        assert!(!ex.is_excluded("xy"));
        assert!(!Excludes::default().is_excluded("anything"));
    }

    #[test]
    fn invalid_glob_matches_literally() {
        let ex = Excludes::new(["[oops"]);
        assert!(ex.is_excluded("[oops"));
        assert!(!ex.is_excluded("o"));
    }

    #[test]
    fn vcs_list_and_exclude_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ex");
        std::fs::write(&file, "*.o\n\n  build  \n").unwrap();
        let ex = Excludes::from_options(&["*.bak".into()], Some(&file), true).unwrap();
        for name in [
            ".git",
            "CVS",
            "{arch}",
            "_darcs",
            ".hgignore",
            "x.o",
            "build",
            "y.bak",
        ] {
            assert!(ex.is_excluded(name), "{name}");
        }
        assert!(!ex.is_excluded("src"));
        assert!(!ex.is_excluded(".github"));
        let err =
            Excludes::from_options(&[], Some(&dir.path().join("missing")), false).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
