//! The check task's records in the job's sled tree: the state of the current pass, its frontier
//! (the objects still to visit, on disk so memory stays flat however big the tree), the
//! directories visited in this pass, and the last check of every object.
//!
//! Keys: `meta/pass` -> [`PassState`]; `f/<seq, 8 bytes big-endian>` -> [`FrontierEntry`];
//! `v/<object key>` -> empty (visited directories); `o/<object key>` -> [`ObjectRecord`]. The
//! object key is the verify cap ([`super::caps::object_key`]). The frontier is a stack: the
//! highest sequence number is visited next, so the traversal goes depth first and the frontier
//! holds about one directory's children per level.
//!
//! Finishing an object is one atomic batch (its frontier entry out, its record, its children
//! and the pass counts in), so a run stopped or killed at any point loses at most the object
//! in flight, and never counts one twice.

use std::collections::HashSet;

use sled::Batch;
use tahoe_jobs_engine::flush_tree;

use super::record::{
    decode, encode, FormatError, FrontierEntry, ObjectKind, ObjectRecord, PassState,
};
use super::summary::CheckSummary;

const PASS_KEY: &[u8] = b"meta/pass";
const FRONTIER: &[u8] = b"f/";
const VISITED: &[u8] = b"v/";
const OBJECT: &[u8] = b"o/";

/// Why the records could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The store failed.
    #[error("check records: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record could not be decoded.
    #[error("check records: {0}")]
    Format(#[from] FormatError),
}

/// What finishing one frontier entry changes.
#[derive(Debug, Default)]
pub struct Step {
    /// The object's new record, by object key.
    pub record: Option<(String, ObjectRecord)>,
    /// A directory to mark visited in this pass, by object key.
    pub visited: Option<String>,
    /// Children to visit, in the order they should be visited.
    pub push: Vec<FrontierEntry>,
}

/// The check records of one job.
#[derive(Debug, Clone)]
pub struct CheckDb {
    tree: sled::Tree,
}

fn prefixed(prefix: &[u8], key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + key.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(key.as_bytes());
    k
}

/// How many directories [`CheckDb::next_except`] passes over looking for a file.
const FILE_SEARCH_DEPTH: usize = 256;

fn frontier_key(seq: u64) -> Vec<u8> {
    let mut k = FRONTIER.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

impl CheckDb {
    /// The check records kept in `tree` (the job's own tree).
    pub fn new(tree: sled::Tree) -> CheckDb {
        CheckDb { tree }
    }

    /// The current pass, or the last one if it finished; `None` before the first.
    pub fn pass(&self) -> Result<Option<PassState>, DbError> {
        match self.tree.get(PASS_KEY)? {
            Some(v) => Ok(Some(decode("pass state", &v)?)),
            None => Ok(None),
        }
    }

    /// Starts pass `id` at `root`: forgets the previous pass's frontier and visited set (object
    /// records stay: they drive `recheck_after`).
    pub fn begin_pass(
        &self,
        id: u64,
        started_at: i64,
        root: FrontierEntry,
    ) -> Result<PassState, DbError> {
        self.clear_prefix(FRONTIER)?;
        self.clear_prefix(VISITED)?;
        let pass = PassState {
            id,
            started_at,
            finished_at: None,
            next_seq: 1,
            counts: CheckSummary::default(),
        };
        let mut batch = Batch::default();
        batch.insert(frontier_key(0), encode(&root));
        batch.insert(PASS_KEY, encode(&pass));
        self.tree.apply_batch(batch)?;
        Ok(pass)
    }

    fn clear_prefix(&self, prefix: &[u8]) -> Result<(), DbError> {
        // In batches, so that a huge frontier is not held in memory at once.
        loop {
            let mut batch = Batch::default();
            let mut n = 0;
            for key in self.tree.scan_prefix(prefix).keys().take(10_000) {
                batch.remove(key?);
                n += 1;
            }
            if n == 0 {
                return Ok(());
            }
            self.tree.apply_batch(batch)?;
        }
    }

    /// The next object to visit (the most recently pushed), with its frontier key.
    pub fn next(&self) -> Result<Option<(Vec<u8>, FrontierEntry)>, DbError> {
        self.next_except(&HashSet::new(), true)
    }

    /// The next object to visit whose frontier key is not in `busy` (entries being visited),
    /// passing over directories unless `directories`. A search for a file looks at most
    /// `FILE_SEARCH_DEPTH` (256) entries below the busy ones, so that a frontier of directories
    /// only costs little; `None` then means "wait for a visit to end".
    pub fn next_except(
        &self,
        busy: &HashSet<Vec<u8>>,
        directories: bool,
    ) -> Result<Option<(Vec<u8>, FrontierEntry)>, DbError> {
        let mut looked = 0;
        for kv in self.tree.scan_prefix(FRONTIER).rev() {
            let (k, v) = kv?;
            if busy.contains(k.as_ref()) {
                continue;
            }
            let entry: FrontierEntry = decode("frontier entry", &v)?;
            if directories || entry.kind != ObjectKind::Directory {
                return Ok(Some((k.to_vec(), entry)));
            }
            looked += 1;
            if looked >= FILE_SEARCH_DEPTH {
                break;
            }
        }
        Ok(None)
    }

    /// The last check of the object with object key `key`; `None` if it was never checked.
    pub fn record(&self, key: &str) -> Result<Option<ObjectRecord>, DbError> {
        match self.tree.get(prefixed(OBJECT, key))? {
            Some(v) => Ok(Some(decode("object record", &v)?)),
            None => Ok(None),
        }
    }

    /// Every object record (for reports and tests); a damaged one is an error.
    pub fn records(&self) -> impl Iterator<Item = Result<(String, ObjectRecord), DbError>> + '_ {
        self.tree.scan_prefix(OBJECT).map(|kv| {
            let (k, v) = kv?;
            let key = String::from_utf8_lossy(&k[OBJECT.len()..]).into_owned();
            Ok((key, decode("object record", &v)?))
        })
    }

    /// Whether the directory with object key `key` was visited in this pass.
    pub fn visited(&self, key: &str) -> Result<bool, DbError> {
        Ok(self.tree.contains_key(prefixed(VISITED, key))?)
    }

    /// Finishes the frontier entry at `frontier_key`: applies `step` and stores `pass` (whose
    /// counts the caller updated) in one atomic batch.
    pub fn finish_entry(
        &self,
        pass: &mut PassState,
        frontier_key: &[u8],
        step: Step,
    ) -> Result<(), DbError> {
        let mut batch = Batch::default();
        batch.remove(frontier_key);
        if let Some((key, record)) = &step.record {
            batch.insert(prefixed(OBJECT, key), encode(record));
        }
        if let Some(key) = &step.visited {
            batch.insert(prefixed(VISITED, key), &[][..]);
        }
        // Pushed last is visited first: push in reverse so the first child comes next.
        for entry in step.push.iter().rev() {
            batch.insert(self::frontier_key(pass.next_seq), encode(entry));
            pass.next_seq += 1;
        }
        batch.insert(PASS_KEY, encode(&*pass));
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Marks the pass finished.
    pub fn finish_pass(&self, pass: &mut PassState, at: i64) -> Result<(), DbError> {
        pass.finished_at = Some(at);
        self.tree.insert(PASS_KEY, encode(&*pass))?;
        Ok(())
    }

    /// Makes every record written so far durable (off the caller's thread, and seen by tokio's
    /// paused clock in tests: [`flush_tree`]).
    pub async fn flush(&self) -> Result<(), DbError> {
        flush_tree(&self.tree).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::record::Findings;

    fn tree() -> sled::Tree {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.open_tree("t").unwrap()
    }

    fn entry(path: &str, kind: ObjectKind) -> FrontierEntry {
        FrontierEntry {
            path: path.into(),
            cap: format!("URI:DIR2:{path}"),
            verify_cap: None,
            kind,
            size: None,
        }
    }

    fn record(pass: u64) -> ObjectRecord {
        ObjectRecord {
            pass,
            checked_at: 1,
            kind: ObjectKind::File,
            storage_index: String::new(),
            path: "x".into(),
            verified: false,
            lease_added: false,
            found: Findings::default(),
            repair: None,
            rebalance: None,
            happy: 1,
        }
    }

    #[test]
    fn depth_first_frontier_with_atomic_steps() {
        let db = CheckDb::new(tree());
        assert!(db.pass().unwrap().is_none());
        let mut pass = db
            .begin_pass(1, 100, entry("", ObjectKind::Directory))
            .unwrap();
        let (k, root) = db.next().unwrap().unwrap();
        assert_eq!(root.path, "");
        pass.counts.dirs_listed += 1;
        db.finish_entry(
            &mut pass,
            &k,
            Step {
                record: Some(("root".into(), record(1))),
                visited: Some("root".into()),
                push: vec![
                    entry("a", ObjectKind::Directory),
                    entry("b", ObjectKind::File),
                ],
            },
        )
        .unwrap();
        assert!(db.visited("root").unwrap());
        assert_eq!(db.record("root").unwrap().unwrap().pass, 1);
        // The first child comes next.
        let (ka, a) = db.next().unwrap().unwrap();
        assert_eq!(a.path, "a");
        let busy: HashSet<Vec<u8>> = [ka.clone()].into();
        assert_eq!(db.next_except(&busy, true).unwrap().unwrap().1.path, "b");
        // With directories passed over (enough being listed), the file comes first; with
        // only directories left, nothing.
        let none: HashSet<Vec<u8>> = HashSet::new();
        assert_eq!(db.next_except(&none, false).unwrap().unwrap().1.path, "b");
        let (kb, _) = db.next_except(&none, false).unwrap().unwrap();
        let busy_b: HashSet<Vec<u8>> = [kb].into();
        assert!(db.next_except(&busy_b, false).unwrap().is_none());
        db.finish_entry(
            &mut pass,
            &ka,
            Step {
                push: vec![entry("a/c", ObjectKind::File)],
                ..Step::default()
            },
        )
        .unwrap();
        let order: Vec<String> = std::iter::from_fn(|| {
            let (k, e) = db.next().unwrap()?;
            db.finish_entry(&mut pass, &k, Step::default()).unwrap();
            Some(e.path)
        })
        .collect();
        assert_eq!(order, vec!["a/c", "b"]);
        let stored = db.pass().unwrap().unwrap();
        assert_eq!(stored.counts.dirs_listed, 1);
        assert_eq!(stored, pass);
        db.finish_pass(&mut pass, 200).unwrap();
        assert!(db.pass().unwrap().unwrap().is_finished());
    }

    #[test]
    fn a_new_pass_forgets_frontier_and_visits_but_keeps_records() {
        let db = CheckDb::new(tree());
        let mut pass = db
            .begin_pass(1, 0, entry("", ObjectKind::Directory))
            .unwrap();
        let (k, _) = db.next().unwrap().unwrap();
        db.finish_entry(
            &mut pass,
            &k,
            Step {
                record: Some(("o".into(), record(1))),
                visited: Some("root".into()),
                push: (0..25)
                    .map(|i| entry(&i.to_string(), ObjectKind::File))
                    .collect(),
            },
        )
        .unwrap();
        let pass2 = db
            .begin_pass(2, 10, entry("", ObjectKind::Directory))
            .unwrap();
        assert_eq!(pass2.id, 2);
        assert!(!db.visited("root").unwrap());
        assert!(db.record("o").unwrap().is_some());
        let (_, only) = db.next().unwrap().unwrap();
        assert_eq!(only.path, "");
        assert_eq!(db.tree.scan_prefix(FRONTIER).count(), 1);
        assert_eq!(db.records().count(), 1);
    }
}
