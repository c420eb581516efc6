//! What a file's stat says: the fields the backupdb compares and the per-child metadata that
//! `tahoe backup` stores in each immutable directory (`ctime`, `mtime` as float seconds, and
//! `st_mode`, `st_ino`, `st_dev`, `st_uid`, `st_gid`).

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The stat fields tahoe-jobs uses, with nanosecond times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
    pub dev: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl FileStat {
    pub fn from_metadata(m: &Metadata) -> FileStat {
        FileStat {
            size: m.size(),
            mtime_ns: nanos(m.mtime(), m.mtime_nsec()),
            ctime_ns: nanos(m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
        }
    }

    /// True when nothing the skip test looks at has changed: size, mtime, ctime and inode.
    /// (`tahoe backup` compares whole seconds and no inode; nanoseconds catch an edit made
    /// within the same second as the previous backup, the inode a file replaced by another.)
    pub fn same_content_as(&self, other: &FileStat) -> bool {
        self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.ctime_ns == other.ctime_ns
            && self.ino == other.ino
    }

    /// The metadata `tahoe backup` attaches to a child (its `get_local_metadata`).
    pub fn tahoe_metadata(&self) -> Value {
        json!({
            "ctime": float_seconds(self.ctime_ns),
            "mtime": float_seconds(self.mtime_ns),
            "st_mode": self.mode,
            "st_ino": self.ino,
            "st_dev": self.dev,
            "st_uid": self.uid,
            "st_gid": self.gid,
        })
    }
}

fn nanos(secs: i64, nsec: i64) -> i128 {
    secs as i128 * 1_000_000_000 + nsec as i128
}

/// Seconds as Python's `os.stat().st_mtime` gives them: a float.
pub fn float_seconds(ns: i128) -> f64 {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    secs as f64 + frac as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat() -> FileStat {
        FileStat {
            size: 10,
            mtime_ns: 1_700_000_000_250_000_000,
            ctime_ns: 1_700_000_001_000_000_000,
            ino: 42,
            dev: 7,
            mode: 0o100644,
            uid: 1000,
            gid: 100,
        }
    }

    #[test]
    fn metadata_has_tahoe_backup_keys_and_types() {
        let m = stat().tahoe_metadata();
        assert_eq!(m["mtime"].as_f64(), Some(1_700_000_000.25));
        assert_eq!(m["ctime"].as_f64(), Some(1_700_000_001.0));
        assert!(
            m["ctime"].is_f64(),
            "ctime must be a float like Python's st_ctime"
        );
        assert_eq!(m["st_mode"], 33188);
        assert_eq!(m["st_ino"], 42);
        assert_eq!(m["st_dev"], 7);
        assert_eq!(m["st_uid"], 1000);
        assert_eq!(m["st_gid"], 100);
        let mut keys: Vec<_> = m.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["ctime", "mtime", "st_dev", "st_gid", "st_ino", "st_mode", "st_uid"]
        );
    }

    #[test]
    fn same_content_compares_size_times_and_inode_only() {
        let a = stat();
        assert!(a.same_content_as(&FileStat {
            mode: 0o100600,
            uid: 0,
            ..a
        }));
        assert!(!a.same_content_as(&FileStat { size: 11, ..a }));
        assert!(!a.same_content_as(&FileStat {
            mtime_ns: a.mtime_ns + 1,
            ..a
        }));
        assert!(!a.same_content_as(&FileStat {
            ctime_ns: a.ctime_ns + 1,
            ..a
        }));
        assert!(!a.same_content_as(&FileStat { ino: 43, ..a }));
    }

    #[test]
    fn reads_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        let s = FileStat::from_metadata(&std::fs::metadata(&p).unwrap());
        assert_eq!(s.size, 5);
        assert_eq!(s.mode & 0o170000, 0o100000);
        assert!(s.mtime_ns > 0);
        assert!((float_seconds(-1) + 1e-9).abs() < 1e-12);
    }
}
