//! What a run did: the progress counter names the backup reports, and the summary that ends a
//! run, with `tahoe backup`'s summary line and exit code.

use std::time::Duration;

use tahoe_jobs_engine::ProgressSink;

/// Progress counter names (public on status pages: counts only, no paths).
pub mod counter {
    /// Files reached by the walk that can be backed up.
    pub const FILES_SEEN: &str = "files_seen";
    /// Files uploaded (new, changed, or whose old capability was not healthy).
    pub const FILES_UPLOADED: &str = "files_uploaded";
    /// Files whose capability from an earlier upload was used again.
    pub const FILES_REUSED: &str = "files_reused";
    /// Files left out, with a warning: unreadable, symlinks, special files, names that are not
    /// UTF-8, files that shrank while read, names a directory could not hold.
    pub const FILES_SKIPPED: &str = "files_skipped";
    /// Files that changed while being read (uploaded as read, or skipped if they shrank).
    pub const FILES_CHANGED: &str = "files_changed";
    /// Files whose capability was due for a check and was checked.
    pub const FILES_CHECKED: &str = "files_checked";
    /// Directories listed by the walk (the source included).
    pub const DIRS_SEEN: &str = "dirs_seen";
    /// Immutable directories created.
    pub const DIRS_CREATED: &str = "dirs_created";
    /// Immutable directories from an earlier run used again.
    pub const DIRS_REUSED: &str = "dirs_reused";
    /// Directories left out, with a warning: unlistable, unreadable, names that are not UTF-8,
    /// names a directory could not hold.
    pub const DIRS_SKIPPED: &str = "dirs_skipped";
    /// Directories whose capability was due for a check and was checked.
    pub const DIRS_CHECKED: &str = "dirs_checked";
    /// Bytes of the files seen (what the tree holds).
    pub const BYTES_SEEN: &str = "bytes_seen";
    /// Bytes sent to the node as file bodies.
    pub const BYTES_UPLOADED: &str = "bytes_uploaded";
    /// Partial shares a storage server dropped (it restarted, or the share sat idle past its
    /// limit) that a direct upload sent again from the start.
    pub const SHARES_RESTARTED: &str = "shares_restarted";
    /// bytes_uploaded over the time spent so far.
    pub const UPLOAD_RATE: &str = "upload_bytes_per_second";
}

/// The counts of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupSummary {
    /// The [`counter::FILES_SEEN`] count.
    pub files_seen: u64,
    /// The [`counter::FILES_UPLOADED`] count.
    pub files_uploaded: u64,
    /// The [`counter::FILES_REUSED`] count.
    pub files_reused: u64,
    /// The [`counter::FILES_SKIPPED`] count.
    pub files_skipped: u64,
    /// The [`counter::FILES_CHANGED`] count.
    pub files_changed: u64,
    /// The [`counter::FILES_CHECKED`] count.
    pub files_checked: u64,
    /// The [`counter::DIRS_CREATED`] count.
    pub dirs_created: u64,
    /// The [`counter::DIRS_REUSED`] count.
    pub dirs_reused: u64,
    /// The [`counter::DIRS_SKIPPED`] count.
    pub dirs_skipped: u64,
    /// The [`counter::DIRS_CHECKED`] count.
    pub dirs_checked: u64,
    /// Bytes of the files seen (the [`counter::BYTES_SEEN`] count).
    pub bytes_seen: u64,
    /// Bytes uploaded (the [`counter::BYTES_UPLOADED`] count).
    pub bytes_uploaded: u64,
    /// The name under `Archives/` of the new backup (when the run completed).
    pub archive: Option<String>,
    /// How long the run took.
    pub elapsed: Duration,
}

impl BackupSummary {
    /// Reads the counts from a run's progress sink.
    pub fn from_progress(p: &ProgressSink, elapsed: Duration) -> BackupSummary {
        use counter::*;
        BackupSummary {
            files_seen: p.get(FILES_SEEN),
            files_uploaded: p.get(FILES_UPLOADED),
            files_reused: p.get(FILES_REUSED),
            files_skipped: p.get(FILES_SKIPPED),
            files_changed: p.get(FILES_CHANGED),
            files_checked: p.get(FILES_CHECKED),
            dirs_created: p.get(DIRS_CREATED),
            dirs_reused: p.get(DIRS_REUSED),
            dirs_skipped: p.get(DIRS_SKIPPED),
            dirs_checked: p.get(DIRS_CHECKED),
            bytes_seen: p.get(BYTES_SEEN),
            bytes_uploaded: p.get(BYTES_UPLOADED),
            archive: None,
            elapsed,
        }
    }

    /// `tahoe backup`'s summary line, exactly (leading space included).
    pub fn summary_line(&self) -> String {
        format!(
            " {} files uploaded ({} reused), {} files skipped, {} directories created ({} reused), {} directories skipped",
            self.files_uploaded,
            self.files_reused,
            self.files_skipped,
            self.dirs_created,
            self.dirs_reused,
            self.dirs_skipped
        )
    }

    /// `tahoe backup -v`'s second line.
    pub fn checked_line(&self) -> String {
        format!(
            " {} files checked, {} directories checked",
            self.files_checked, self.dirs_checked
        )
    }

    /// `tahoe backup`'s last line: ` backup done, elapsed time: 0:00:06`.
    pub fn elapsed_line(&self) -> String {
        let s = self.elapsed.as_secs();
        format!(
            " backup done, elapsed time: {}:{:02}:{:02}",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }

    /// True when any file or directory was skipped.
    pub fn any_skips(&self) -> bool {
        self.files_skipped > 0 || self.dirs_skipped > 0
    }

    /// `tahoe backup`'s exit code for a completed run: 2 when anything was skipped, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.any_skips() {
            2
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_matches_tahoe_backup() {
        let s = BackupSummary {
            files_uploaded: 3,
            files_reused: 10,
            files_skipped: 1,
            dirs_created: 2,
            dirs_reused: 4,
            dirs_skipped: 0,
            elapsed: Duration::from_secs(3725),
            ..Default::default()
        };
        assert_eq!(
            s.summary_line(),
            " 3 files uploaded (10 reused), 1 files skipped, 2 directories created (4 reused), 0 directories skipped"
        );
        assert_eq!(s.elapsed_line(), " backup done, elapsed time: 1:02:05");
        assert_eq!(s.exit_code(), 2);
        assert_eq!(BackupSummary::default().exit_code(), 0);
        assert_eq!(
            BackupSummary {
                dirs_skipped: 1,
                ..Default::default()
            }
            .exit_code(),
            2
        );
    }

    #[test]
    fn reads_counters_from_progress() {
        let p = ProgressSink::new();
        p.add(counter::FILES_UPLOADED, 2);
        p.add(counter::DIRS_REUSED, 1);
        let s = BackupSummary::from_progress(&p, Duration::ZERO);
        assert_eq!((s.files_uploaded, s.dirs_reused, s.files_seen), (2, 1, 0));
    }
}
