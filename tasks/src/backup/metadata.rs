//! What a file's stat says: the fields the backupdb compares and the per-child metadata that
//! `tahoe backup` stores in each immutable directory (`ctime`, `mtime` as float seconds, and
//! `st_mode`, `st_ino`, `st_dev`, `st_uid`, `st_gid`).
//!
//! A child waiting for its directory to be sent keeps its metadata as [`TahoeMetadata`], the
//! stat itself (80 bytes), and the JSON is written only into the directory's request body: a
//! JSON map per child cost about 670 bytes more, on a directory of 100,000 files 63 MB.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The stat fields tahoe-jobs uses, with nanosecond times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, in nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Inode change time, in nanoseconds since the Unix epoch.
    pub ctime_ns: i128,
    /// Inode number.
    pub ino: u64,
    /// Device number of the file system holding the file.
    pub dev: u64,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
}

impl FileStat {
    /// The fields of `m`, a file's metadata from the file system.
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

/// A child's metadata as `tahoe backup` writes it, kept as the stat until it is serialized.
/// It serializes to exactly the bytes of [`FileStat::tahoe_metadata`]'s JSON map: the same
/// keys in the same (sorted) order, the times as the same floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TahoeMetadata(pub FileStat);

impl Serialize for TahoeMetadata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let st = &self.0;
        // serde_json's map (without `preserve_order`) is a BTreeMap: keys come out sorted.
        let mut map = s.serialize_map(Some(7))?;
        map.serialize_entry("ctime", &float_seconds(st.ctime_ns))?;
        map.serialize_entry("mtime", &float_seconds(st.mtime_ns))?;
        map.serialize_entry("st_dev", &st.dev)?;
        map.serialize_entry("st_gid", &st.gid)?;
        map.serialize_entry("st_ino", &st.ino)?;
        map.serialize_entry("st_mode", &st.mode)?;
        map.serialize_entry("st_uid", &st.uid)?;
        map.end()
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
    fn compact_metadata_serializes_to_the_same_bytes_as_the_json_map() {
        let edge = [
            stat(),
            FileStat {
                mtime_ns: 0,
                ctime_ns: -1,
                ..stat()
            },
            FileStat {
                mtime_ns: -1_500_000_001,
                ctime_ns: 1_732_640_000_999_999_999,
                ..stat()
            },
            FileStat {
                size: u64::MAX,
                mtime_ns: 1_700_000_000_000_000_001,
                ctime_ns: 253_402_300_799_123_456_789,
                ino: u64::MAX,
                dev: u64::MAX,
                mode: u32::MAX,
                uid: u32::MAX,
                gid: 0,
            },
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        let random = (0..2000).map(|_| FileStat {
            size: rng.u64(..),
            mtime_ns: rng.i128(-4_000_000_000_000_000_000..4_000_000_000_000_000_000),
            ctime_ns: rng.i64(..) as i128,
            ino: rng.u64(..),
            dev: rng.u64(..),
            mode: rng.u32(..),
            uid: rng.u32(..),
            gid: rng.u32(..),
        });
        for s in edge.into_iter().chain(random) {
            assert_eq!(
                String::from_utf8(serde_json::to_vec(&TahoeMetadata(s)).unwrap()).unwrap(),
                String::from_utf8(serde_json::to_vec(&s.tahoe_metadata()).unwrap()).unwrap(),
                "{s:?}"
            );
        }
        let real = {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("f");
            std::fs::write(&p, b"x").unwrap();
            FileStat::from_metadata(&std::fs::metadata(&p).unwrap())
        };
        assert_eq!(
            serde_json::to_vec(&TahoeMetadata(real)).unwrap(),
            serde_json::to_vec(&real.tahoe_metadata()).unwrap()
        );
    }

    /// The metadata the node lists back (Python's shortest float repr of what we sent) parses
    /// to the very values we sent: the backup compares them to tell which of two children
    /// whose names are equal after NFC the node kept. serde_json parses floats exactly only
    /// with its `float_roundtrip` feature; without it, about one time stamp in a few hundred
    /// came back one unit in the last place off, and a kept child was reported lost.
    #[test]
    fn metadata_floats_read_back_exactly() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..20_000 {
            let ns = 1_700_000_000_000_000_000 + rng.i128(0..200_000_000_000_000_000);
            let s = FileStat {
                mtime_ns: ns,
                ctime_ns: ns,
                ..stat()
            };
            let sent = serde_json::to_value(TahoeMetadata(s)).unwrap();
            let text = serde_json::to_string(&TahoeMetadata(s)).unwrap();
            let listed: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(listed, sent, "{text}");
        }
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
