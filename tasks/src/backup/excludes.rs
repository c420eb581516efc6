//! Exclude patterns with `tahoe backup`'s semantics: each pattern is matched, case-sensitively,
//! against the BASENAME of every file and directory below the source (never the source itself),
//! as Python's `re.match(fnmatch.translate(pattern), name)`; a matching directory is not
//! descended into. The translation below follows Python 3.11's `fnmatch.translate` step by step
//! (a glob library would differ on `**`, `[!...]`, `]` first in a set, an unclosed `[`, reversed
//! ranges and more); tests check it against answers computed by Python itself.

use std::path::Path;

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

/// One element of a translated pattern; each but `Star` matches exactly one character.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `*`: any run of characters, newlines included (several in a row are one).
    Star,
    /// `?`, or `[!]...`'s degenerate case `[!]`-less negated empty set: any one character.
    Any,
    Literal(char),
    /// `[...]` or `[!...]`: inclusive ranges (a single character is a range of one).
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// A set whose ranges were all empty (`[z-a]`): matches nothing.
    Never,
}

/// A pattern translated as Python's `fnmatch.translate` does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    fn new(pattern: &str) -> Glob {
        let pat: Vec<char> = pattern.chars().collect();
        let n = pat.len();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < n {
            let c = pat[i];
            i += 1;
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::Any),
                '[' => {
                    // The set ends at the first `]` after an optional `!` and an optional `]`.
                    let mut j = i;
                    if j < n && pat[j] == '!' {
                        j += 1;
                    }
                    if j < n && pat[j] == ']' {
                        j += 1;
                    }
                    while j < n && pat[j] != ']' {
                        j += 1;
                    }
                    if j >= n {
                        // No closing `]`: the `[` is an ordinary character.
                        tokens.push(Token::Literal('['));
                    } else {
                        tokens.push(set_token(&pat[i..j]));
                        i = j + 1;
                    }
                }
                c => tokens.push(Token::Literal(c)),
            }
        }
        Glob { tokens }
    }

    /// Whether the whole of `name` matches. Every token but `*` takes exactly one character,
    /// so going back to the last `*` and letting it take one more character is enough (what
    /// the atomic groups of Python's translation amount to).
    fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        let (mut t, mut c) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while c < name.len() {
            match self.tokens.get(t) {
                Some(Token::Star) => {
                    star = Some((t, c));
                    t += 1;
                    continue;
                }
                Some(token) if one_char_matches(token, name[c]) => {
                    t += 1;
                    c += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((st, sc)) => {
                    t = st + 1;
                    c = sc + 1;
                    star = Some((st, sc + 1));
                }
                None => return false,
            }
        }
        self.tokens[t..].iter().all(|token| *token == Token::Star)
    }
}

fn one_char_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Star => unreachable!("a star is handled by the caller"),
        Token::Any => true,
        Token::Literal(l) => *l == c,
        Token::Set { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
        Token::Never => false,
    }
}

/// A set's contents (between `[` and `]`, `!` included) as `fnmatch.translate` turns them into
/// a regular-expression class, and as Python's `re` then reads that class.
fn set_token(stuff: &[char]) -> Token {
    // (character, escaped) pairs of the class body: escaped ones are never range hyphens.
    let negated = stuff.first() == Some(&'!');
    let body: Vec<(char, bool)> = if !stuff.contains(&'-') {
        stuff.iter().map(|&c| (c, true)).collect()
    } else {
        // Hyphens after the first character (after `!` and the one after it when negated) and
        // two past the previous range hyphen make ranges; the rest are literal.
        let mut chunks: Vec<Vec<char>> = Vec::new();
        let mut i = 0;
        let mut k = if negated { 2 } else { 1 };
        while let Some(found) = stuff
            .get(k..)
            .and_then(|rest| rest.iter().position(|&c| c == '-'))
        {
            let at = k + found;
            chunks.push(stuff[i..at].to_vec());
            i = at + 1;
            k = at + 3;
        }
        let last = &stuff[i..];
        if last.is_empty() {
            chunks.last_mut().expect("a hyphen was found").push('-');
        } else {
            chunks.push(last.to_vec());
        }
        // Drop empty ranges (`z-a`), which Python's `re` rejects.
        for k in (1..chunks.len()).rev() {
            if chunks[k - 1].last() > chunks[k].first() {
                let tail = chunks.remove(k);
                let prev = &mut chunks[k - 1];
                prev.pop();
                prev.extend_from_slice(&tail[1..]);
            }
        }
        let mut body = Vec::new();
        for (n, chunk) in chunks.iter().enumerate() {
            if n > 0 {
                body.push(('-', false));
            }
            body.extend(chunk.iter().map(|&c| (c, true)));
        }
        body
    };
    if body.is_empty() {
        return Token::Never;
    }
    if body.len() == 1 && body[0].0 == '!' {
        return Token::Any;
    }
    let body = if negated { &body[1..] } else { &body[..] };
    // How `re` reads a class: `a-z` is a range unless its hyphen is last (then literal).
    let mut ranges = Vec::new();
    let mut p = 0;
    while p < body.len() {
        let lo = body[p].0;
        p += 1;
        if p < body.len() && body[p] == ('-', false) {
            if p + 1 == body.len() {
                ranges.push((lo, lo));
                ranges.push(('-', '-'));
                break;
            }
            let hi = body[p + 1].0;
            p += 2;
            if hi < lo {
                // `re` would refuse the pattern; the removal of empty ranges above prevents
                // this for every pattern we know of, and an impossible range matches nothing.
                continue;
            }
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
    Token::Set { negated, ranges }
}

/// What Python's `str.strip()` removes: Unicode white space and the four separators
/// U+001C..U+001F, which Rust's `char::is_whitespace` leaves.
fn python_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Lines as Python's text mode reads them: `\n`, `\r\n` and a lone `\r` end a line.
fn python_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').flat_map(|line| line.split('\r'))
}

/// A set of exclude patterns.
#[derive(Debug, Clone, Default)]
pub struct Excludes {
    patterns: Vec<Glob>,
}

/// An exclude file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the exclude file {path}: {source}")]
pub struct ExcludeFileError {
    /// The exclude file.
    pub path: std::path::PathBuf,
    /// Why it could not be read.
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
            all.extend(python_lines(&text).map(str::to_string));
        }
        if exclude_vcs {
            all.extend(VCS_PATTERNS.iter().map(|p| p.to_string()));
        }
        Ok(Excludes::new(all))
    }

    /// Patterns are stripped as Python strips them and empty ones dropped (as `opt_exclude`
    /// does). Every string is a pattern: fnmatch has no invalid ones (an unclosed `[` is an
    /// ordinary character).
    pub fn new<S: AsRef<str>>(patterns: impl IntoIterator<Item = S>) -> Excludes {
        let patterns = patterns
            .into_iter()
            .map(|p| python_strip(p.as_ref()).to_string())
            .filter(|p| !p.is_empty())
            .map(|p| Glob::new(&p))
            .collect();
        Excludes { patterns }
    }

    /// True when the set has no pattern: nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when the entry called `name` is excluded.
    pub fn is_excluded(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(name))
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
    fn double_star_is_a_star() {
        let ex = Excludes::new(["**.tmp"]);
        assert!(ex.is_excluded("a.tmp"));
        assert!(ex.is_excluded(".tmp"));
        assert!(!ex.is_excluded("a.tmp~"));
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
        // Python's text mode ends lines at \n, \r\n and a lone \r; strip() also removes the
        // separators U+001C..U+001F.
        std::fs::write(&file, "*.o\n\n  build  \r\n\x1ccore\x1f\rnotes\u{3000}\n").unwrap();
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
            "core",
            "notes",
        ] {
            assert!(ex.is_excluded(name), "{name}");
        }
        assert!(!ex.is_excluded("src"));
        assert!(!ex.is_excluded(".github"));
        let err =
            Excludes::from_options(&[], Some(&dir.path().join("missing")), false).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    /// Every answer in the corpus comes from Python's fnmatch in .venv, applied as `tahoe
    /// backup --exclude` applies it (scripts/gen-fnmatch-corpus writes the file).
    #[test]
    fn agrees_with_python_fnmatch_on_the_corpus() {
        let corpus: serde_json::Value =
            serde_json::from_str(include_str!("testdata/fnmatch-corpus.json")).unwrap();
        let mut wrong = Vec::new();
        let mut checked = 0;
        for group in corpus["groups"].as_array().unwrap() {
            let names: Vec<&str> = group["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            let patterns = group["patterns"].as_array().unwrap();
            let answers = group["matches"].as_array().unwrap();
            for (pattern, answer) in patterns.iter().zip(answers) {
                let pattern = pattern.as_str().unwrap();
                let excludes = Excludes::new([pattern]);
                for (name, expected) in names.iter().zip(answer.as_str().unwrap().chars()) {
                    checked += 1;
                    let expected = expected == '1';
                    if excludes.is_excluded(name) != expected {
                        wrong.push(format!("{pattern:?} on {name:?}: Python says {expected}"));
                    }
                }
            }
        }
        assert!(checked > 40_000, "{checked}");
        assert!(
            wrong.is_empty(),
            "{} of {checked} answers differ from Python's, e.g.:\n{}",
            wrong.len(),
            wrong[..wrong.len().min(30)].join("\n")
        );
    }
}
