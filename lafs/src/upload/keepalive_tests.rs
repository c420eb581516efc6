//! The keep-alive schedule on tokio's paused clock, with a writer that counts what it is asked
//! to send: no server, no real waiting.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use super::*;
use crate::cap::StorageIndex;
use crate::nurl::Nurl;
use crate::storage::{StorageClient, Timeouts, UploadSecret};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Counts writes and aborts; answers `Alive` unless told otherwise for a share.
#[derive(Default)]
struct FakeWriter {
    writes: Mutex<Vec<(ShareKey, Instant)>>,
    aborts: Mutex<Vec<(ShareKey, Instant)>>,
    answers: Mutex<HashMap<ShareKey, KeepAliveAnswer>>,
}

impl FakeWriter {
    fn writes_to(&self, key: &ShareKey) -> Vec<Instant> {
        let writes = self.writes.lock().unwrap();
        writes
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, at)| *at)
            .collect()
    }

    fn answer(&self, key: &ShareKey, answer: KeepAliveAnswer) {
        self.answers.lock().unwrap().insert(key.clone(), answer);
    }
}

impl KeepAliveWriter for Arc<FakeWriter> {
    async fn write(&self, target: &KeepAliveTarget) -> KeepAliveAnswer {
        assert_eq!((target.offset, target.data.len()), (0, 1), "one byte at 0");
        self.writes
            .lock()
            .unwrap()
            .push((target.key.clone(), Instant::now()));
        let answers = self.answers.lock().unwrap();
        answers
            .get(&target.key)
            .copied()
            .unwrap_or(KeepAliveAnswer::Alive)
    }

    async fn abort(&self, target: &KeepAliveTarget) {
        self.aborts
            .lock()
            .unwrap()
            .push((target.key.clone(), Instant::now()));
    }
}

fn key(n: u8) -> ShareKey {
    ShareKey {
        server_id: format!("v0-server{n}"),
        storage_index: StorageIndex([n; 16]),
        shnum: u16::from(n),
    }
}

/// The target an upload records for `key` (the client is never used by the fake writer).
fn target(key: ShareKey) -> KeepAliveTarget {
    let nurl = Nurl::parse(
        "pb://CsVT0HoLClGZeLVcZ-EgSU-ckIA4MrCy66h3g4qHacQ@localhost:47602/\
         bpqvfvxo2mqe3hrpwc327jqlzhvn2rln#v=1",
    )
    .unwrap();
    KeepAliveTarget {
        key,
        server: "fake".into(),
        client: StorageClient::new(&nurl, "fake", Timeouts::default()).unwrap(),
        upload_secret: UploadSecret([7; 32]),
        offset: 0,
        data: Bytes::from_static(&[0]),
    }
}

fn start_keeper(shares: &Arc<PartialShares>) -> Arc<FakeWriter> {
    let writer = Arc::new(FakeWriter::default());
    let keeper = Keeper::new(shares.clone(), writer.clone(), KeepAlivePolicy::default());
    tokio::spawn(keeper.run());
    writer
}

/// Instants `step` apart from `first`, `count` of them.
fn every(first: Instant, step: Duration, count: u32) -> Vec<Instant> {
    (0..count).map(|i| first + step * i).collect()
}

#[test]
fn the_schedule_writes_before_the_idle_limit_and_gives_up_after_a_week() {
    let policy = KeepAlivePolicy::default();
    let t0 = Instant::now();
    let times = ShareTimes::written(t0);
    assert_eq!(next_step(&policy, &times), Step::WriteAt(t0 + 25 * MINUTE));
    // Kept alive for six days and a half since the upload last wrote.
    let kept = ShareTimes {
        last_write: t0 + 6 * DAY + 12 * HOUR,
        ..times
    };
    assert_eq!(
        next_step(&policy, &kept),
        Step::WriteAt(kept.last_write + 25 * MINUTE)
    );
    // The last keep-alive write before the week is over, then giving up.
    let last = ShareTimes {
        last_write: t0 + 7 * DAY - 10 * MINUTE,
        ..times
    };
    assert_eq!(next_step(&policy, &last), Step::GiveUpAt(t0 + 7 * DAY));
    // A write without an answer is tried again a minute later, until the server's idle limit
    // has passed since the last accepted write: then the share is counted as dropped.
    let failed = ShareTimes {
        failed_at: Some(t0 + 25 * MINUTE),
        ..times
    };
    assert_eq!(next_step(&policy, &failed), Step::WriteAt(t0 + 26 * MINUTE));
    let failed = ShareTimes {
        failed_at: Some(t0 + 29 * MINUTE),
        ..times
    };
    assert_eq!(next_step(&policy, &failed), Step::LostAt(t0 + 30 * MINUTE));
}

/// A window closed for ten hours (the upload stopped mid-file, its shares left in the record):
/// one one-byte write every 25 minutes, none while the resumed upload writes or after it
/// completed. The record is empty when the keeper starts: the first share wakes it.
#[tokio::test(start_paused = true)]
async fn the_keep_alive_schedule_across_a_long_closed_window() {
    let shares = Arc::new(PartialShares::new());
    let writer = start_keeper(&shares);
    tokio::time::sleep(HOUR).await;
    assert!(writer.writes.lock().unwrap().is_empty());

    // The upload allocates and writes, then is stopped (its future dropped): nothing removes
    // its shares from the record.
    let (a, b) = (key(1), key(2));
    let stopped = Instant::now();
    assert!(!shares.allocated(target(a.clone()), stopped));
    assert!(!shares.allocated(target(b.clone()), stopped));
    shares.upload_wrote(&a, stopped);

    tokio::time::sleep(10 * HOUR + MINUTE).await;
    // 600 minutes: a write at 25, 50, ..., 600.
    let expected = every(stopped + 25 * MINUTE, 25 * MINUTE, 24);
    assert_eq!(writer.writes_to(&a), expected);
    assert_eq!(writer.writes_to(&b), expected);
    assert_eq!(shares.len(), 2);
    assert!(writer.aborts.lock().unwrap().is_empty());

    // The window opens: the upload resumes share a and writes to it every 2 minutes for three
    // hours, then completes it; share b's upload does not come back yet.
    let resumed = Instant::now();
    for _ in 0..90 {
        shares.upload_wrote(&a, Instant::now());
        tokio::time::sleep(2 * MINUTE).await;
    }
    shares.remove(&a);
    tokio::time::sleep(10 * HOUR).await;
    assert_eq!(
        writer.writes_to(&a),
        expected,
        "no write after the upload resumed"
    );
    let b_writes = writer.writes_to(&b);
    assert_eq!(b_writes.len(), 24 + (13 * 60 - 1) / 25, "b: {b_writes:?}");
    assert!(b_writes.windows(2).all(|w| w[1] - w[0] == 25 * MINUTE));
    assert!(b_writes.iter().any(|&at| at > resumed));
    assert_eq!(
        shares.shares().iter().map(|s| &s.key).collect::<Vec<_>>(),
        [&b]
    );
}

/// A share whose upload never comes back: kept for a week, then aborted and forgotten.
#[tokio::test(start_paused = true)]
async fn a_share_is_given_up_a_week_after_its_upload_last_wrote() {
    let shares = Arc::new(PartialShares::new());
    let writer = start_keeper(&shares);
    let a = key(1);
    let t0 = Instant::now();
    shares.allocated(target(a.clone()), t0);

    tokio::time::sleep(8 * DAY).await;
    // 7 days = 10,080 minutes: writes at 25, ..., 10,075, then the abort at 10,080.
    assert_eq!(
        writer.writes_to(&a),
        every(t0 + 25 * MINUTE, 25 * MINUTE, 403)
    );
    assert_eq!(*writer.aborts.lock().unwrap(), [(a.clone(), t0 + 7 * DAY)]);
    assert!(shares.is_empty());
}

/// A share the server dropped (404) gets no more writes; it stays in the record, so that the
/// upload that allocates it afresh knows it restarted it, and is forgotten after the week.
#[tokio::test(start_paused = true)]
async fn a_dropped_share_is_left_alone_and_recognised_when_allocated_again() {
    let shares = Arc::new(PartialShares::new());
    let writer = start_keeper(&shares);
    let (a, b) = (key(1), key(2));
    let t0 = Instant::now();
    shares.allocated(target(a.clone()), t0);
    shares.allocated(target(b.clone()), t0);

    tokio::time::sleep(30 * MINUTE).await;
    writer.answer(&a, KeepAliveAnswer::Gone);
    tokio::time::sleep(5 * HOUR).await;
    assert_eq!(
        writer.writes_to(&a).len(),
        2,
        "the one that found it gone ends the writes"
    );
    let states = shares.shares();
    assert!(states[0].dropped && !states[1].dropped, "{states:?}");

    // The next upload allocates share a from scratch: a restart.
    assert!(shares.allocated(target(a.clone()), Instant::now()));
    assert!(!shares.shares()[0].dropped);
    shares.remove(&a);

    // Share b's server stops answering after its 20th write: tried every minute until 30
    // minutes have passed since the last accepted write, then counted as dropped.
    let last_ok = t0 + 20 * 25 * MINUTE;
    tokio::time::sleep_until(last_ok + MINUTE).await;
    writer.answer(&b, KeepAliveAnswer::NoAnswer);
    tokio::time::sleep(2 * HOUR).await;
    let b_writes = writer.writes_to(&b);
    assert_eq!(
        b_writes[19..],
        [
            last_ok,
            last_ok + 25 * MINUTE,
            last_ok + 26 * MINUTE,
            last_ok + 27 * MINUTE,
            last_ok + 28 * MINUTE,
            last_ok + 29 * MINUTE,
        ]
    );
    assert!(shares.shares()[0].dropped);

    // A dropped share is forgotten a week after its upload's last write, without an abort.
    tokio::time::sleep_until(t0 + 7 * DAY + MINUTE).await;
    assert!(shares.is_empty());
    assert!(writer.aborts.lock().unwrap().is_empty());
}

/// A keep-alive write that completes the share (it lacked only that byte) ends its keeping.
#[tokio::test(start_paused = true)]
async fn a_share_the_keep_alive_completed_leaves_the_record() {
    let shares = Arc::new(PartialShares::new());
    let writer = Arc::new(FakeWriter::default());
    let keeper = Keeper::new(shares.clone(), writer.clone(), KeepAlivePolicy::default());
    let a = key(1);
    let t0 = Instant::now();
    shares.allocated(target(a.clone()), t0);
    assert!(!keeper.run_due(t0 + 24 * MINUTE).await);
    writer.answer(&a, KeepAliveAnswer::Finished);
    assert!(keeper.run_due(t0 + 25 * MINUTE).await);
    assert!(shares.is_empty());
}
