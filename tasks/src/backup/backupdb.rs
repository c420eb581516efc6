//! The backup database, kept in the job's sled tree: which local files were uploaded as which
//! capability, which immutable directories exist for which sets of children, and the totals of
//! the last completed run.
//!
//! It plays the role of `tahoe backup`'s `private/backupdb.sqlite` (same decisions, not the
//! same file). Records are written as soon as an upload returns, so a run that is stopped or
//! killed loses at most the uploads in flight.
//!
//! Keys: `f/<absolute path bytes>` -> [`FileRecord`], `d/<sha256 of sorted children>` ->
//! [`DirRecord`], `meta/totals` -> [`RunTotals`]. Values are JSON. They hold capabilities: the
//! tree lives in the node's private directory, like Tahoe's own backupdb.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use crate::backup::params::BackupParams;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tahoe_jobs_engine::flush_tree;

use super::metadata::FileStat;
use crate::tahoe::Cap;

const TOTALS_KEY: &[u8] = b"meta/totals";

/// When to check an old capability again before trusting it (`tahoe backup`'s policy: never
/// within `recheck_after` of the last check, always from `recheck_all_after` on, linearly more
/// likely in between). The default is `tahoe backup`'s: one month and two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecheckPolicy {
    /// A capability checked less than this long ago is never checked (`recheck_after`).
    pub no_check_before: Duration,
    /// A capability checked at least this long ago is always checked (`recheck_all_after`);
    /// zero checks every capability on every run.
    pub always_check_after: Duration,
}

impl RecheckPolicy {
    /// The policy a backup job's `recheck_after` and `recheck_all_after` describe.
    pub fn of(params: &BackupParams) -> RecheckPolicy {
        RecheckPolicy {
            no_check_before: params.recheck_after,
            always_check_after: params.recheck_all_after,
        }
    }
}

impl Default for RecheckPolicy {
    fn default() -> Self {
        RecheckPolicy {
            no_check_before: crate::backup::DEFAULT_RECHECK_AFTER,
            always_check_after: crate::backup::DEFAULT_RECHECK_ALL_AFTER,
        }
    }
}

/// The probability that a capability last checked `age_secs` ago is checked now.
pub fn recheck_probability(age_secs: i64, policy: &RecheckPolicy) -> f64 {
    let lo = policy.no_check_before.as_secs_f64();
    let hi = policy.always_check_after.as_secs_f64();
    let age = age_secs as f64;
    // `recheck_all_after = 0s` promises a check on every run, even of a record a clock that
    // went back made look younger than now.
    if policy.always_check_after.is_zero() {
        return 1.0;
    }
    if hi <= lo {
        return if age >= hi { 1.0 } else { 0.0 };
    }
    ((age - lo) / (hi - lo)).clamp(0.0, 1.0)
}

/// What to do with a file or directory the database may know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Unknown or changed: upload the file (or create the directory).
    Create,
    /// Known and recently checked: use this capability as it is.
    Reuse(Cap),
    /// Known but due for a check: use the capability only if a check says it is healthy.
    Check(Cap),
}

/// The skip test for a file: `record` from the database, `stat` as the file is now, `roll` a
/// uniform random number in [0, 1) for the re-check lottery.
pub fn decide_file(
    record: Option<&FileRecord>,
    stat: &FileStat,
    now: i64,
    policy: &RecheckPolicy,
    roll: f64,
) -> Decision {
    match record {
        Some(r) if r.stat().same_content_as(stat) => {
            decide_known(Cap::new(r.cap.clone()), r.last_checked, now, policy, roll)
        }
        _ => Decision::Create,
    }
}

/// The reuse test for a directory whose children hash to a known record.
pub fn decide_dir(
    record: Option<&DirRecord>,
    now: i64,
    policy: &RecheckPolicy,
    roll: f64,
) -> Decision {
    match record {
        Some(r) => decide_known(Cap::new(r.cap.clone()), r.last_checked, now, policy, roll),
        None => Decision::Create,
    }
}

fn decide_known(
    cap: Cap,
    last_checked: i64,
    now: i64,
    policy: &RecheckPolicy,
    roll: f64,
) -> Decision {
    if roll < recheck_probability(now - last_checked, policy) {
        Decision::Check(cap)
    } else {
        Decision::Reuse(cap)
    }
}

/// The identity of a directory's contents: a hash over its children's (name, capability) pairs
/// sorted by name, metadata ignored (as `tahoe backup`'s dirhash). Each field is length-prefixed
/// so no two different child lists can produce the same byte string.
pub fn dir_hash<'a>(children: impl IntoIterator<Item = (&'a str, &'a Cap)>) -> [u8; 32] {
    let mut pairs: Vec<(&str, &Cap)> = children.into_iter().collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha256::new();
    h.update(b"tahoe-jobs dirhash v1");
    for (name, cap) in pairs {
        for field in [name.as_bytes(), cap.expose().as_bytes()] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field);
        }
    }
    h.finalize().into()
}

/// A file as it was when uploaded.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The file's size in bytes.
    pub size: u64,
    /// Its modification time, in nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Its inode change time, in nanoseconds since the Unix epoch.
    pub ctime_ns: i128,
    /// Its inode number.
    pub ino: u64,
    /// The file capability (secret).
    pub cap: String,
    /// Unix seconds of the upload or of the last healthy check.
    pub last_checked: i64,
}

impl FileRecord {
    fn stat(&self) -> FileStat {
        FileStat {
            size: self.size,
            mtime_ns: self.mtime_ns,
            ctime_ns: self.ctime_ns,
            ino: self.ino,
            dev: 0,
            mode: 0,
            uid: 0,
            gid: 0,
        }
    }
}

/// An immutable directory created for some set of children.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirRecord {
    /// The directory capability (secret).
    pub cap: String,
    /// Unix seconds of the directory's creation or of the last healthy check.
    pub last_checked: i64,
    /// Children the node left out because their names equal another child's after Unicode
    /// normalisation (NFC): warned about again whenever the directory is reused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<LostName>,
}

/// A child name that an immutable directory could not hold (see [`DirRecord::lost`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostName {
    /// The child's name.
    pub name: String,
    /// Whether the child is a directory.
    pub is_dir: bool,
}

// Records hold capabilities as plain strings (that is how they are stored): their Debug shows
// only the kind, like `Cap`'s.
impl std::fmt::Debug for FileRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRecord")
            .field("size", &self.size)
            .field("mtime_ns", &self.mtime_ns)
            .field("ctime_ns", &self.ctime_ns)
            .field("ino", &self.ino)
            .field("cap", &Cap::new(self.cap.clone()))
            .field("last_checked", &self.last_checked)
            .finish()
    }
}

impl std::fmt::Debug for DirRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirRecord")
            .field("cap", &Cap::new(self.cap.clone()))
            .field("last_checked", &self.last_checked)
            .field("lost", &self.lost)
            .finish()
    }
}

/// Totals of the last completed run, for estimates and the unplugged-source test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunTotals {
    /// Files seen in the source.
    pub files: u64,
    /// Directories listed in the source (the source included).
    pub dirs: u64,
    /// Bytes of the files seen.
    pub bytes: u64,
    /// Unix seconds when it completed.
    pub completed_at: i64,
}

/// A failure of the database itself.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The store failed.
    #[error("backup database: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record does not decode; the message says why.
    #[error("backup database: a record is unreadable ({0}); remove the job's state to start over")]
    Corrupt(String),
}

/// The backup database of one job.
#[derive(Clone)]
pub struct BackupDb {
    tree: sled::Tree,
}

impl std::fmt::Debug for BackupDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupDb").finish_non_exhaustive()
    }
}

impl BackupDb {
    /// The backup database kept in `tree` (the job's own tree).
    pub fn new(tree: sled::Tree) -> BackupDb {
        BackupDb { tree }
    }

    /// The record of the file at `path` (absolute) as last uploaded; `None` if there is none.
    pub fn file(&self, path: &Path) -> Result<Option<FileRecord>, DbError> {
        self.get(&file_key(path))
    }

    /// Remembers that the file at `path`, as `stat` describes it, was uploaded as `cap` at
    /// `now` (Unix seconds).
    pub fn record_file(
        &self,
        path: &Path,
        stat: &FileStat,
        cap: &Cap,
        now: i64,
    ) -> Result<(), DbError> {
        let record = FileRecord {
            size: stat.size,
            mtime_ns: stat.mtime_ns,
            ctime_ns: stat.ctime_ns,
            ino: stat.ino,
            cap: cap.expose().to_string(),
            last_checked: now,
        };
        self.put(&file_key(path), &record)
    }

    /// Notes a healthy check of the file's capability.
    pub fn file_checked(&self, path: &Path, now: i64) -> Result<(), DbError> {
        let key = file_key(path);
        if let Some(mut r) = self.get::<FileRecord>(&key)? {
            r.last_checked = now;
            self.put(&key, &r)?;
        }
        Ok(())
    }

    /// The record of the directory created for the children that hash to `hash` (see
    /// [`dir_hash`]); `None` if there is none.
    pub fn dir(&self, hash: &[u8; 32]) -> Result<Option<DirRecord>, DbError> {
        self.get(&dir_key(hash))
    }

    /// Remembers the directory created for the children that hash to `hash`; `lost` are the
    /// children the node could not keep (names equal after NFC).
    pub fn record_dir(
        &self,
        hash: &[u8; 32],
        cap: &Cap,
        now: i64,
        lost: &[LostName],
    ) -> Result<(), DbError> {
        let record = DirRecord {
            cap: cap.expose().to_string(),
            last_checked: now,
            lost: lost.to_vec(),
        };
        self.put(&dir_key(hash), &record)
    }

    /// Notes a healthy check, at `now` (Unix seconds), of the directory recorded for `hash`.
    pub fn dir_checked(&self, hash: &[u8; 32], now: i64) -> Result<(), DbError> {
        let key = dir_key(hash);
        if let Some(mut r) = self.get::<DirRecord>(&key)? {
            r.last_checked = now;
            self.put(&key, &r)?;
        }
        Ok(())
    }

    /// The totals of the last completed run; `None` before the first.
    pub fn totals(&self) -> Result<Option<RunTotals>, DbError> {
        self.get(TOTALS_KEY)
    }

    /// Stores `totals` as those of the last completed run.
    pub fn set_totals(&self, totals: &RunTotals) -> Result<(), DbError> {
        self.put(TOTALS_KEY, totals)
    }

    /// Makes every record written so far durable (off the caller's thread, and seen by tokio's
    /// paused clock in tests: [`flush_tree`]).
    pub async fn flush(&self) -> Result<(), DbError> {
        flush_tree(&self.tree).await?;
        Ok(())
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, DbError> {
        match self.tree.get(key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| DbError::Corrupt(e.to_string())),
        }
    }

    fn put<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), DbError> {
        let bytes = serde_json::to_vec(value).map_err(|e| DbError::Corrupt(e.to_string()))?;
        self.tree.insert(key, bytes)?;
        Ok(())
    }
}

fn file_key(path: &Path) -> Vec<u8> {
    let mut key = b"f/".to_vec();
    key.extend_from_slice(path.as_os_str().as_bytes());
    key
}

fn dir_key(hash: &[u8; 32]) -> Vec<u8> {
    let mut key = b"d/".to_vec();
    key.extend_from_slice(hash);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn stat() -> FileStat {
        FileStat {
            size: 5,
            mtime_ns: 1_000_000_000_123,
            ctime_ns: 1_000_000_000_456,
            ino: 9,
            dev: 1,
            mode: 0o100644,
            uid: 0,
            gid: 0,
        }
    }

    fn record(last_checked: i64) -> FileRecord {
        let s = stat();
        FileRecord {
            size: s.size,
            mtime_ns: s.mtime_ns,
            ctime_ns: s.ctime_ns,
            ino: s.ino,
            cap: "URI:CHK:a:b:1:1:5".into(),
            last_checked,
        }
    }

    #[test]
    fn recheck_probability_is_linear_between_30_and_60_days() {
        let p = RecheckPolicy::default();
        assert_eq!(recheck_probability(0, &p), 0.0);
        assert_eq!(recheck_probability(30 * DAY, &p), 0.0);
        assert!((recheck_probability(45 * DAY, &p) - 0.5).abs() < 1e-9);
        assert_eq!(recheck_probability(60 * DAY, &p), 1.0);
        assert_eq!(recheck_probability(600 * DAY, &p), 1.0);
        assert_eq!(
            recheck_probability(-DAY, &p),
            0.0,
            "a clock that went back never checks"
        );
        let instant = RecheckPolicy {
            no_check_before: Duration::ZERO,
            always_check_after: Duration::ZERO,
        };
        assert_eq!(recheck_probability(0, &instant), 1.0);
    }

    fn params(recheck_after: Duration, recheck_all_after: Duration) -> BackupParams {
        BackupParams {
            source: "/src".into(),
            target: tahoe_jobs_config::Target::Alias {
                alias: "b".into(),
                path: String::new(),
            },
            exclude: Vec::new(),
            exclude_from: None,
            exclude_vcs: false,
            concurrency: Some(1),
            recheck_after,
            recheck_all_after,
            data_path: Default::default(),
        }
    }

    #[test]
    fn the_policy_comes_from_the_job() {
        let d = |days: u64| Duration::from_secs(days * DAY as u64);
        assert_eq!(
            RecheckPolicy::of(&params(
                crate::backup::DEFAULT_RECHECK_AFTER,
                crate::backup::DEFAULT_RECHECK_ALL_AFTER
            )),
            RecheckPolicy::default()
        );
        let p = RecheckPolicy::of(&params(d(1), d(3)));
        assert_eq!((p.no_check_before, p.always_check_after), (d(1), d(3)));
        assert_eq!(recheck_probability(DAY / 2, &p), 0.0);
        assert!((recheck_probability(2 * DAY, &p) - 0.5).abs() < 1e-9);
        assert_eq!(recheck_probability(3 * DAY, &p), 1.0);

        // 0s and 0s: every known capability is checked on every run, whatever the roll, even
        // one recorded this very second or (after the clock went back) in the future.
        let every_run = RecheckPolicy::of(&params(Duration::ZERO, Duration::ZERO));
        let now = 100 * DAY;
        let cap = Cap::new("URI:CHK:a:b:1:1:5");
        for last_checked in [now, now - 1, now - 90 * DAY, now + DAY] {
            assert_eq!(
                decide_file(
                    Some(&record(last_checked)),
                    &stat(),
                    now,
                    &every_run,
                    0.999_999
                ),
                Decision::Check(cap.clone()),
                "checked {last_checked}"
            );
            let dir = DirRecord {
                cap: cap.expose().to_string(),
                last_checked,
                lost: Vec::new(),
            };
            assert_eq!(
                decide_dir(Some(&dir), now, &every_run, 0.999_999),
                Decision::Check(cap.clone())
            );
        }
        // Changed files are uploaded, not checked, under any policy.
        assert_eq!(
            decide_file(
                Some(&record(now)),
                &FileStat { size: 6, ..stat() },
                now,
                &every_run,
                0.0
            ),
            Decision::Create
        );
        // recheck_after = 0s alone does not check a capability checked a moment ago.
        let soon = RecheckPolicy::of(&params(Duration::ZERO, d(60)));
        assert_eq!(
            decide_file(Some(&record(now)), &stat(), now, &soon, 0.0),
            Decision::Reuse(cap)
        );
    }

    #[test]
    fn skip_decision() {
        let p = RecheckPolicy::default();
        let now = 100 * DAY;
        let cap = Cap::new("URI:CHK:a:b:1:1:5");
        // Unknown file.
        assert_eq!(decide_file(None, &stat(), now, &p, 0.0), Decision::Create);
        // Unchanged, checked yesterday: reuse whatever the roll.
        let fresh = record(now - DAY);
        assert_eq!(
            decide_file(Some(&fresh), &stat(), now, &p, 0.0),
            Decision::Reuse(cap.clone())
        );
        // Changed in any compared field: upload.
        for changed in [
            FileStat { size: 6, ..stat() },
            FileStat {
                mtime_ns: stat().mtime_ns + 1,
                ..stat()
            },
            FileStat {
                ctime_ns: stat().ctime_ns + 1,
                ..stat()
            },
            FileStat { ino: 10, ..stat() },
        ] {
            assert_eq!(
                decide_file(Some(&fresh), &changed, now, &p, 0.99),
                Decision::Create
            );
        }
        // Metadata that is not compared does not matter.
        let chmod = FileStat {
            mode: 0o100600,
            ..stat()
        };
        assert_eq!(
            decide_file(Some(&fresh), &chmod, now, &p, 0.5),
            Decision::Reuse(cap.clone())
        );
        // 45 days: checked when the roll falls under one half.
        let mid = record(now - 45 * DAY);
        assert_eq!(
            decide_file(Some(&mid), &stat(), now, &p, 0.49),
            Decision::Check(cap.clone())
        );
        assert_eq!(
            decide_file(Some(&mid), &stat(), now, &p, 0.51),
            Decision::Reuse(cap.clone())
        );
        // 61 days: always checked.
        let old = record(now - 61 * DAY);
        assert_eq!(
            decide_file(Some(&old), &stat(), now, &p, 0.999),
            Decision::Check(cap)
        );
    }

    #[test]
    fn dir_hash_ignores_order_and_tells_names_and_caps_apart() {
        let a = Cap::new("URI:CHK:a");
        let b = Cap::new("URI:CHK:b");
        let h1 = dir_hash([("x", &a), ("y", &b)]);
        assert_eq!(h1, dir_hash([("y", &b), ("x", &a)]));
        assert_ne!(h1, dir_hash([("x", &b), ("y", &a)]));
        assert_ne!(h1, dir_hash([("x", &a), ("z", &b)]));
        assert_ne!(h1, dir_hash([("x", &a)]));
        assert_ne!(
            dir_hash([("ab", &a)]),
            dir_hash([("a", &Cap::new("bURI:CHK:a"))])
        );
    }

    #[test]
    fn records_round_trip_in_sled() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let bdb = BackupDb::new(db.open_tree("job").unwrap());
        let p = Path::new("/src/a");
        let cap = Cap::new("URI:CHK:a:b:1:1:5");
        assert_eq!(bdb.file(p).unwrap(), None);
        bdb.record_file(p, &stat(), &cap, 10).unwrap();
        assert_eq!(bdb.file(p).unwrap(), Some(record(10)));
        bdb.file_checked(p, 20).unwrap();
        assert_eq!(bdb.file(p).unwrap().unwrap().last_checked, 20);
        let h = dir_hash([("a", &cap)]);
        bdb.record_dir(&h, &Cap::new("URI:DIR2-CHK:x"), 10, &[])
            .unwrap();
        bdb.dir_checked(&h, 30).unwrap();
        assert_eq!(
            bdb.dir(&h).unwrap(),
            Some(DirRecord {
                cap: "URI:DIR2-CHK:x".into(),
                last_checked: 30,
                lost: Vec::new(),
            })
        );
        assert!(!format!("{:?}", bdb.file(p).unwrap()).contains("URI:CHK:a"));
        // Records written before `lost` existed read as losing nothing.
        let old: DirRecord =
            serde_json::from_str(r#"{"cap":"URI:DIR2-CHK:y","last_checked":1}"#).unwrap();
        assert!(old.lost.is_empty());
        let lost = [LostName {
            name: "cafe\u{301}".into(),
            is_dir: false,
        }];
        bdb.record_dir(&h, &Cap::new("URI:DIR2-CHK:z"), 40, &lost)
            .unwrap();
        assert_eq!(bdb.dir(&h).unwrap().unwrap().lost, lost);
        assert_eq!(bdb.totals().unwrap(), None);
        let t = RunTotals {
            files: 3,
            dirs: 1,
            bytes: 9,
            completed_at: 5,
        };
        bdb.set_totals(&t).unwrap();
        assert_eq!(bdb.totals().unwrap(), Some(t));
    }
}
