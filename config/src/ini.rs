//! The INI dialect of tahoe.cfg (Python's configparser): `[section]` headers, `key = value` or
//! `key: value`, `#` and `;` comment lines, indented continuation lines, option names folded to
//! lower case. Also a figment provider that maps `[backup] b1.source` to `backup.b1.source`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider, Source};

/// One `key = value` line, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniEntry {
    /// The `[section]` the line is under, as written.
    pub section: String,
    /// The option name, folded to lower case (`b1.source`).
    pub key: String,
    /// The value, trimmed; continuation lines are joined to it with newlines.
    pub value: String,
    /// The line of the key, counted from 1.
    pub line: usize,
}

impl IniEntry {
    /// The dotted path of this entry in the configuration tree: `backup.b1.source`.
    pub fn path(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }
}

/// A syntax error with its line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct IniSyntaxError {
    /// The offending line, counted from 1.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// Parses INI text. Never panics; every rejection names its line.
pub fn parse_ini(text: &str) -> Result<Vec<IniEntry>, IniSyntaxError> {
    let mut entries: Vec<IniEntry> = Vec::new();
    let mut section: Option<String> = None;
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let err = |message: String| IniSyntaxError {
            line: line_no,
            message,
        };
        let line = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // configparser continues the previous value on an indented line.
            if let Some(last) = entries.last_mut() {
                if !last.value.is_empty() {
                    last.value.push('\n');
                }
                last.value.push_str(trimmed);
                continue;
            }
            return Err(err("an indented line with no key before it".into()));
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| err(format!("{trimmed:?} is missing its closing ]")))?
                .trim();
            if name.is_empty() {
                return Err(err("an empty section name []".into()));
            }
            section = Some(name.to_string());
            continue;
        }
        let split = trimmed
            .find(['=', ':'])
            .ok_or_else(|| err(format!("{trimmed:?} is not of the form key = value")))?;
        let key = trimmed[..split].trim().to_lowercase();
        let value = trimmed[split + 1..].trim().to_string();
        if key.is_empty() {
            return Err(err("a line with a value but no key".into()));
        }
        let Some(section) = section.clone() else {
            return Err(err(format!(
                "{key:?} appears before any [section] header; put it under a [section] header"
            )));
        };
        if let Some(first) = seen.insert((section.clone(), key.clone()), line_no) {
            return Err(err(format!(
                "[{section}] {key} is set twice (first on line {first})"
            )));
        }
        entries.push(IniEntry {
            section,
            key,
            value,
            line: line_no,
        });
    }
    Ok(entries)
}

/// A figment provider over parsed INI entries, remembering each entry's line for messages.
#[derive(Debug, Clone)]
pub struct IniProvider {
    path: PathBuf,
    entries: Vec<IniEntry>,
}

impl IniProvider {
    /// A provider for `entries`, parsed from the file at `path` (named in messages).
    pub fn new(path: &Path, entries: Vec<IniEntry>) -> Self {
        IniProvider {
            path: path.to_path_buf(),
            entries,
        }
    }

    /// The line that set a dotted path, if this file set it.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| e.path() == path)
            .map(|e| e.line)
    }

    /// The file the entries were read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Inserts `value` at the dotted `path` of `dict`. A path that runs into a leaf keeps the
/// first-come value; the validator reports such shapes.
pub(crate) fn insert_dotted(dict: &mut Dict, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut current = dict;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_string(), value);
            return;
        }
        let next = current
            .entry(part.to_string())
            .or_insert_with(|| Value::from(Dict::new()));
        match next {
            Value::Dict(_, inner) => current = inner,
            _ => return,
        }
    }
}

impl Provider for IniProvider {
    fn metadata(&self) -> Metadata {
        Metadata::named("job file").source(Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut dict = Dict::new();
        for entry in &self.entries {
            insert_dotted(&mut dict, &entry.path(), Value::from(entry.value.clone()));
        }
        Ok(Profile::Default.collect(dict))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "[backup]\nb1.source = /Volumes/BackupDrive/Pictures\nb1.target = backup:pictures\nb1.frequency = 1week\nb1.allowed_times = 2200-2400,0000-0800\n";

    #[test]
    fn parses_the_seed_example() {
        let entries = parse_ini(SEED).unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].path(), "backup.b1.source");
        assert_eq!(entries[0].value, "/Volumes/BackupDrive/Pictures");
        assert_eq!(entries[3].line, 5);
    }

    #[test]
    fn comments_colons_case_and_continuations() {
        let text = "# comment\n; other\n[node]\nNickName: alice\nweb.port = tcp:3456\n  :interface=127.0.0.1\n";
        let entries = parse_ini(text).unwrap();
        assert_eq!(entries[0].key, "nickname");
        assert_eq!(entries[0].value, "alice");
        assert_eq!(entries[1].value, "tcp:3456\n:interface=127.0.0.1");
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line, needle) in [
            ("b1.source = x\n", 1, "before any [section]"),
            ("[backup]\nnonsense\n", 2, "key = value"),
            ("[backup\n", 1, "closing ]"),
            ("[backup]\na = 1\na = 2\n", 3, "set twice"),
            ("[]\n", 1, "empty section"),
        ] {
            let err = parse_ini(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}");
            assert!(err.message.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn provider_nests_by_dots() {
        let provider = IniProvider::new(Path::new("/x/tahoe-jobs.cfg"), parse_ini(SEED).unwrap());
        let data = provider.data().unwrap();
        let dict = &data[&Profile::Default];
        let source = dict["backup"]
            .as_dict()
            .and_then(|d| d["b1"].as_dict())
            .and_then(|d| d["source"].as_str());
        assert_eq!(source, Some("/Volumes/BackupDrive/Pictures"));
        assert_eq!(provider.line_of("backup.b1.frequency"), Some(4));
    }
}
