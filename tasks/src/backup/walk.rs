//! Listing one local directory: its entries sorted by name, classified into what can be backed
//! up (regular files and directories) and what cannot (symlinks, special files, names that are
//! not UTF-8, entries that cannot be stat'ed), with excludes applied first.
//!
//! The backup walks the tree one directory at a time with this, so memory follows the depth and
//! width of the tree, never its total size.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::excludes::Excludes;
use super::metadata::FileStat;

/// An entry that can be backed up. Its path is its directory's joined with its name, made when
/// the walk reaches it: a listing of 100,000 entries holds names, not 100,000 full paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name in its directory.
    pub name: String,
    /// Whether it is a directory (else a regular file).
    pub is_dir: bool,
    /// Its stat, taken when the directory was listed.
    pub stat: FileStat,
}

/// Why an entry is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OddKind {
    /// A symbolic link (not followed).
    Symlink,
    /// A FIFO, socket or device.
    Special,
    /// The grid needs UTF-8 names.
    NotUtf8 {
        /// Whether the entry is a directory.
        is_dir: bool,
    },
    /// lstat failed (permission was denied, the entry vanished, an I/O error...). Whether it
    /// is a directory comes from the listing's file type, when the file system gives one.
    Unreadable {
        /// Whether the entry is a directory, as far as the listing tells.
        is_dir: bool,
        /// The kind of the I/O error.
        kind: io::ErrorKind,
        /// The I/O error's message.
        message: String,
    },
}

/// An entry that is skipped, with a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OddEntry {
    /// The entry's path: its directory's joined with its name.
    pub path: PathBuf,
    /// Why it is skipped.
    pub kind: OddKind,
}

impl OddEntry {
    /// True when the skipped entry is a directory (it counts as a skipped directory).
    pub fn is_dir(&self) -> bool {
        matches!(
            self.kind,
            OddKind::NotUtf8 { is_dir: true } | OddKind::Unreadable { is_dir: true, .. }
        )
    }

    /// The warning, worded like `tahoe backup`'s (without its `WARNING: ` prefix).
    pub fn warning(&self) -> String {
        let path = quote(&self.path);
        match &self.kind {
            OddKind::Symlink => format!("cannot backup symlink {path}"),
            OddKind::Special => format!("cannot backup special {path}"),
            OddKind::NotUtf8 { is_dir } => format!(
                "cannot backup {} {path}: its name is not valid UTF-8",
                if *is_dir { "directory" } else { "file" }
            ),
            OddKind::Unreadable {
                is_dir,
                kind,
                message,
            } => cannot_read_warning(
                if *is_dir { "directory" } else { "file" },
                &path,
                *kind,
                message,
            ),
        }
    }
}

/// A listed directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirScan {
    /// Files and directories to back up, sorted by name.
    pub entries: Vec<Entry>,
    /// Entries that cannot be backed up, each skipped with a warning.
    pub odd: Vec<OddEntry>,
    /// Entries in the directory before excludes (0 means it is truly empty).
    pub raw_count: usize,
}

/// Lists `dir`. Fails only when the directory itself cannot be read.
pub fn scan_dir(dir: &Path, excludes: &Excludes) -> io::Result<DirScan> {
    let mut scan = DirScan::default();
    for item in fs::read_dir(dir)? {
        let item = item?;
        scan.raw_count += 1;
        let os_name = item.file_name();
        let name = os_name.to_str();
        // Excludes see a lossy name, so `*.tmp` also drops a .tmp file whose name is not UTF-8.
        if excludes.is_excluded(&os_name.to_string_lossy()) {
            continue;
        }
        // fstatat relative to the directory, without following a symlink.
        let meta = match item.metadata() {
            Ok(m) => m,
            Err(e) => {
                scan.odd.push(OddEntry {
                    // The listing's d_type, which needs no lstat.
                    kind: OddKind::Unreadable {
                        is_dir: item.file_type().is_ok_and(|t| t.is_dir()),
                        kind: e.kind(),
                        message: e.to_string(),
                    },
                    path: item.path(),
                });
                continue;
            }
        };
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            Some(OddKind::Symlink)
        } else if !ft.is_file() && !ft.is_dir() {
            Some(OddKind::Special)
        } else if name.is_none() {
            Some(OddKind::NotUtf8 {
                is_dir: ft.is_dir(),
            })
        } else {
            None
        };
        match (kind, name) {
            (Some(kind), _) => scan.odd.push(OddEntry {
                path: item.path(),
                kind,
            }),
            (None, Some(name)) => scan.entries.push(Entry {
                name: name.to_string(),
                is_dir: ft.is_dir(),
                stat: FileStat::from_metadata(&meta),
            }),
            (None, None) => unreachable!("a name that is not UTF-8 is classified above"),
        }
    }
    scan.entries.sort_by(|a, b| a.name.cmp(&b.name));
    // The list is held while the directory is walked: without the room its growth left.
    scan.entries.shrink_to_fit();
    scan.odd.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(scan)
}

/// The warning for a file or directory (`what`) that could not be stat'ed, listed or read,
/// `quoted` as [`quote`] does: `tahoe backup`'s words when permission was denied, else the
/// error met (a vanished entry, an I/O error) instead of a permission that was never refused.
pub fn cannot_read_warning(what: &str, quoted: &str, kind: io::ErrorKind, message: &str) -> String {
    match kind {
        io::ErrorKind::PermissionDenied => format!("permission denied on {what} {quoted}"),
        io::ErrorKind::NotFound => {
            format!("{what} vanished before it was read, left out of this backup: {quoted}")
        }
        _ => format!("cannot read {what} {quoted}, left out of this backup: {message}"),
    }
}

/// [`cannot_read_warning`] for an error in hand.
pub fn cannot_read(what: &str, path: &Path, e: &io::Error) -> String {
    cannot_read_warning(what, &quote(path), e.kind(), &e.to_string())
}

/// A path as `tahoe backup` shows it in warnings: quoted, with bytes that are not UTF-8 and
/// control characters escaped (`\x0a` for a newline), so a file name can neither forge a log
/// line nor send a terminal escape sequence.
pub fn quote(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let mut out = String::from("'");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn classifies_sorts_and_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("b.txt"), "b").unwrap();
        fs::write(d.join("a.txt"), "a").unwrap();
        fs::write(d.join("x.tmp"), "x").unwrap();
        fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink("a.txt", d.join("link")).unwrap();
        let bad = d.join(OsStr::from_bytes(b"bad\xffname"));
        fs::write(&bad, "?").unwrap();
        let fifo = d.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());

        let scan = scan_dir(d, &Excludes::new(["*.tmp"])).unwrap();
        assert_eq!(scan.raw_count, 7);
        let names: Vec<_> = scan
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.is_dir))
            .collect();
        assert_eq!(names, [("a.txt", false), ("b.txt", false), ("sub", true)]);
        let odd: Vec<_> = scan.odd.iter().map(|o| o.kind.clone()).collect();
        assert_eq!(
            odd,
            [
                OddKind::NotUtf8 { is_dir: false },
                OddKind::Special,
                OddKind::Symlink
            ]
        );
        assert_eq!(
            scan.odd[0].warning(),
            format!(
                "cannot backup file '{}/bad\\xffname': its name is not valid UTF-8",
                d.display()
            )
        );
        assert_eq!(
            scan.odd[2].warning(),
            format!("cannot backup symlink '{}/link'", d.display())
        );
        assert!(scan_dir(&d.join("missing"), &Excludes::default()).is_err());
        // A directory whose entries cannot be stat'ed is reached only without
        // CAP_DAC_OVERRIDE (tests run as root): tests/backup.rs
        // entries_of_an_unsearchable_directory_are_skipped_by_kind covers it.
        assert_eq!(
            quote(Path::new("/a\nb\u{1b}[31m\u{85}c\u{e9}")),
            "'/a\\x0ab\\x1b[31m\\x85c\u{e9}'"
        );
    }

    #[test]
    fn warnings_name_the_error_met() {
        let p = Path::new("/src/a\nb");
        let warning = |what, errno| cannot_read(what, p, &io::Error::from_raw_os_error(errno));
        assert_eq!(
            warning("file", libc::EACCES),
            "permission denied on file '/src/a\\x0ab'"
        );
        assert_eq!(
            warning("directory", libc::EPERM),
            "permission denied on directory '/src/a\\x0ab'"
        );
        assert_eq!(
            warning("file", libc::ENOENT),
            "file vanished before it was read, left out of this backup: '/src/a\\x0ab'"
        );
        let eio = warning("file", libc::EIO);
        assert!(
            eio.starts_with("cannot read file '/src/a\\x0ab', left out of this backup: "),
            "{eio}"
        );
        assert!(!eio.contains("ermission"), "{eio}");
        let odd = OddEntry {
            path: p.to_path_buf(),
            kind: OddKind::Unreadable {
                is_dir: true,
                kind: io::ErrorKind::Other,
                message: "Input/output error (os error 5)".into(),
            },
        };
        assert!(
            odd.is_dir(),
            "an unreadable directory is a skipped directory"
        );
        assert_eq!(
            odd.warning(),
            "cannot read directory '/src/a\\x0ab', left out of this backup: \
             Input/output error (os error 5)"
        );
    }
}
