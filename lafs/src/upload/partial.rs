//! The record of this process's partial shares: every share an upload allocated (or took over
//! from an interrupted one) and has not yet completed or aborted, with what to write to keep
//! it alive and when it was last written.
//!
//! Tahoe's servers drop a partial share 30 minutes after its last write
//! (`storage/immutable.py`, `BucketWriter`). An upload that is stopped mid-file (its future
//! dropped: a window close, a pause) leaves its entries here, and the keeper
//! ([`super::keepalive`]) writes to them until the upload resumes, so the next run continues
//! them instead of starting again. Uploads record shares as they allocate them, note every
//! write, and take their shares out when they end (complete, abort or fail) — a dropped future
//! never gets that far, which is exactly what leaves its shares to the keeper.
//!
//! The record also remembers shares the keeper found gone, so that the upload that next
//! allocates them from scratch can say it started them again.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cap::StorageIndex;
use crate::storage::{StorageClient, UploadSecret};

/// Names one share on one server.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareKey {
    /// The server's id (`v0-...`), as announced.
    pub server_id: String,
    /// The file's storage index.
    pub storage_index: StorageIndex,
    /// The share number.
    pub shnum: u16,
}

impl fmt::Debug for ShareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short: String = self
            .server_id
            .trim_start_matches("v0-")
            .chars()
            .take(8)
            .collect();
        write!(
            f,
            "share {} of {} on {short}",
            self.shnum, self.storage_index
        )
    }
}

/// When a partial share was written, for the schedule ([`super::keepalive::next_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareTimes {
    /// The last write the server accepted, by the upload or the keeper: the server's idle
    /// timer started then.
    pub last_write: Instant,
    /// The last write by an upload (allocation counts): the keeper gives up a share whose
    /// upload has not come back for long.
    pub last_upload_write: Instant,
    /// When the keeper's last write failed without an answer (server unreachable), if it did
    /// after `last_write`.
    pub failed_at: Option<Instant>,
}

impl ShareTimes {
    /// Times of a share written by an upload at `at`.
    pub fn written(at: Instant) -> ShareTimes {
        ShareTimes {
            last_write: at,
            last_upload_write: at,
            failed_at: None,
        }
    }
}

/// What the keeper sends to one share: bytes the share already holds (or will hold: the
/// upload sends the same ones), so the write changes nothing but the server's idle timer.
#[derive(Clone)]
pub struct KeepAliveTarget {
    /// Which share.
    pub key: ShareKey,
    /// The server's display name, for logs.
    pub server: String,
    /// The server's client.
    pub client: StorageClient,
    /// The upload secret the share was allocated with. Never shown.
    pub upload_secret: UploadSecret,
    /// Where the keep-alive bytes go in the share.
    pub offset: u64,
    /// The keep-alive bytes: the share's first byte.
    pub data: Bytes,
}

impl fmt::Debug for KeepAliveTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeepAliveTarget")
            .field("key", &self.key)
            .field("server", &self.server)
            .field("offset", &self.offset)
            .field("len", &self.data.len())
            .finish_non_exhaustive()
    }
}

struct Entry {
    target: KeepAliveTarget,
    times: ShareTimes,
    /// The server said the share is gone (or it was unreachable past its idle limit).
    dropped: bool,
    /// Writes the uploads made to it (allocation not counted).
    upload_writes: u64,
}

/// A partial share as the record sees it (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialShareState {
    /// Which share.
    pub key: ShareKey,
    /// When it was written.
    pub times: ShareTimes,
    /// The keeper found it gone.
    pub dropped: bool,
    /// Writes the uploads made to it since it was allocated (the keeper's not counted).
    pub upload_writes: u64,
}

/// The partial shares of this process's uploads. Share one between the uploads of a node
/// directory (an `Arc`), and run one keeper over it.
pub struct PartialShares {
    entries: Mutex<HashMap<ShareKey, Entry>>,
    /// Bumped on every change: the keeper and tests wait on it.
    version: watch::Sender<u64>,
}

impl Default for PartialShares {
    fn default() -> Self {
        PartialShares {
            entries: Mutex::new(HashMap::new()),
            version: watch::channel(0).0,
        }
    }
}

impl fmt::Debug for PartialShares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartialShares({} shares)", self.len())
    }
}

impl PartialShares {
    /// An empty record.
    pub fn new() -> PartialShares {
        PartialShares::default()
    }

    /// Partial shares recorded (dropped ones included).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no share is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every recorded share, ordered by key.
    pub fn shares(&self) -> Vec<PartialShareState> {
        let mut all: Vec<PartialShareState> = self
            .lock()
            .iter()
            .map(|(key, e)| PartialShareState {
                key: key.clone(),
                times: e.times,
                dropped: e.dropped,
                upload_writes: e.upload_writes,
            })
            .collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    /// A receiver that sees a change of the record (a share added, written, removed).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// An upload allocated (or took over) `target.key` at `now`; true when the record already
    /// held it: a partial share of an earlier upload, which the server had dropped when it is
    /// now allocated afresh.
    pub fn allocated(&self, target: KeepAliveTarget, now: Instant) -> bool {
        let key = target.key.clone();
        let known = self
            .lock()
            .insert(
                key,
                Entry {
                    target,
                    times: ShareTimes::written(now),
                    dropped: false,
                    upload_writes: 0,
                },
            )
            .is_some();
        self.bump();
        known
    }

    /// An upload's write to `key` was accepted at `now`.
    pub fn upload_wrote(&self, key: &ShareKey, now: Instant) {
        if let Some(e) = self.lock().get_mut(key) {
            e.times = ShareTimes::written(now);
            e.dropped = false;
            e.upload_writes += 1;
        }
        self.bump();
    }

    /// The share is complete, aborted, or no longer ours to keep: out of the record.
    pub fn remove(&self, key: &ShareKey) {
        if self.lock().remove(key).is_some() {
            self.bump();
        }
    }

    /// What the keeper needs of every live (not dropped) share: its target and times.
    pub(crate) fn live(&self) -> Vec<(KeepAliveTarget, ShareTimes)> {
        self.lock()
            .values()
            .filter(|e| !e.dropped)
            .map(|e| (e.target.clone(), e.times))
            .collect()
    }

    /// The dropped shares and when their upload last wrote (for the give-up limit).
    pub(crate) fn dropped(&self) -> Vec<(ShareKey, Instant)> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.dropped)
            .map(|(k, e)| (k.clone(), e.times.last_upload_write))
            .collect()
    }

    /// The keeper's write to `key` was accepted at `now`.
    pub(crate) fn kept(&self, key: &ShareKey, now: Instant) {
        if let Some(e) = self.lock().get_mut(key) {
            e.times.last_write = e.times.last_write.max(now);
            e.times.failed_at = None;
        }
        self.bump();
    }

    /// The keeper's write to `key` got no answer at `now`.
    pub(crate) fn keep_failed(&self, key: &ShareKey, now: Instant) {
        if let Some(e) = self.lock().get_mut(key) {
            if e.times.last_write < now {
                e.times.failed_at = Some(now);
            }
        }
        self.bump();
    }

    /// The server no longer holds `key` as a partial share (it dropped it, or it cannot have
    /// kept it): kept in the record, without writes, so that the next upload can say it
    /// started the share again.
    pub(crate) fn mark_dropped(&self, key: &ShareKey) {
        if let Some(e) = self.lock().get_mut(key) {
            e.dropped = true;
        }
        self.bump();
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ShareKey, Entry>> {
        self.entries
            .lock()
            .expect("the partial-share record is never poisoned")
    }
}
