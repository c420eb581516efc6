//! Keeping partial shares alive while their upload is stopped.
//!
//! A Tahoe 1.20 server aborts a partial share 30 minutes after its last write
//! (`storage/immutable.py`: `BucketWriter` arms `callLater(30 * 60, _abort_due_to_timeout)` at
//! allocation and only `write()` resets it; allocating again, reading, listing or renewing a
//! lease do not). A write of bytes the share already holds is accepted (`write()` compares
//! them with what is there and refuses only different bytes, 409) and resets the timer like
//! any other. So the smallest keep-alive is a one-byte `PATCH` of the share's first byte (the
//! first byte of the share header, which the upload sends first and the keeper may send
//! before it: the bytes are the same), every `idle_limit - margin` (25 minutes) after the last
//! write, and only to shares no upload is writing. A restart of the server drops every partial
//! share (`StorageServer._clean_incomplete` empties `shares/incoming/` at start), and the next
//! upload allocates them afresh; the keeper notices at its next write (404) and stops.
//!
//! The schedule is a pure function ([`next_step`]); [`Keeper`] runs it over a
//! [`PartialShares`] record on tokio's clock, with a [`KeepAliveWriter`] that sends the
//! writes ([`StorageKeepAlive`] for real servers).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::time::Instant;

use super::partial::{KeepAliveTarget, PartialShares, ShareKey, ShareTimes};

/// Tahoe 1.20's idle limit for a partial share (`BucketWriter`, 30 minutes).
pub const SERVER_IDLE_LIMIT: Duration = Duration::from_secs(30 * 60);

/// How long the keeper keeps a partial share whose upload does not come back: a week, long
/// enough for any daily window, a weekend's pause or a node down for days; after that the
/// share is aborted (the server frees its space at once) and an upload that comes back later
/// sends the file again.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// When keep-alive writes go and when the keeper stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlivePolicy {
    /// The server's idle limit: a share not written for this long is gone.
    pub idle_limit: Duration,
    /// How long before the idle limit the keep-alive write goes: more than one request's
    /// timeout (2 minutes) plus the time a busy process takes to send it.
    pub margin: Duration,
    /// After a write that got no answer, the next try.
    pub retry_after: Duration,
    /// A share whose upload has not written to it for this long is given up.
    pub give_up_after: Duration,
}

impl Default for KeepAlivePolicy {
    fn default() -> Self {
        KeepAlivePolicy {
            idle_limit: SERVER_IDLE_LIMIT,
            margin: Duration::from_secs(5 * 60),
            retry_after: Duration::from_secs(60),
            give_up_after: DEFAULT_GIVE_UP_AFTER,
        }
    }
}

/// What is next for one partial share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send the keep-alive write at this instant.
    WriteAt(Instant),
    /// The server cannot have kept it past this instant (no write got through in time):
    /// count it as dropped.
    LostAt(Instant),
    /// Its upload has not come back for `give_up_after`: abort it at this instant.
    GiveUpAt(Instant),
}

impl Step {
    /// When the step is due.
    pub fn at(self) -> Instant {
        match self {
            Step::WriteAt(at) | Step::LostAt(at) | Step::GiveUpAt(at) => at,
        }
    }
}

/// The next step for a partial share written at `times`: a write `idle_limit - margin` after
/// the last accepted write (or `retry_after` after a failed one), unless giving up or the
/// server's idle limit comes first.
pub fn next_step(policy: &KeepAlivePolicy, times: &ShareTimes) -> Step {
    let give_up = times.last_upload_write + policy.give_up_after;
    let expires = times.last_write + policy.idle_limit;
    let write = match times.failed_at {
        Some(failed) => failed + policy.retry_after,
        None => times.last_write + policy.idle_limit.saturating_sub(policy.margin),
    };
    if give_up <= write.min(expires) {
        Step::GiveUpAt(give_up)
    } else if write >= expires {
        Step::LostAt(expires)
    } else {
        Step::WriteAt(write)
    }
}

/// How a server answered a keep-alive write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAliveAnswer {
    /// Accepted: the idle timer starts again.
    Alive,
    /// Accepted, and that completed the share (it lacked only those bytes).
    Finished,
    /// The server holds no such upload any more (404; 401 when another upload took the share
    /// number): it dropped the share.
    Gone,
    /// No answer (unreachable, timed out, a server error): try again soon.
    NoAnswer,
}

/// Sends keep-alive writes and give-up aborts.
pub trait KeepAliveWriter: Send + Sync + 'static {
    /// Writes `target.data` at `target.offset` of the share.
    fn write(&self, target: &KeepAliveTarget) -> impl Future<Output = KeepAliveAnswer> + Send;
    /// Aborts the share (best effort).
    fn abort(&self, target: &KeepAliveTarget) -> impl Future<Output = ()> + Send;
}

/// Keep-alive writes to the real servers, with each share's own client.
#[derive(Debug, Clone, Copy, Default)]
pub struct StorageKeepAlive;

impl KeepAliveWriter for StorageKeepAlive {
    async fn write(&self, t: &KeepAliveTarget) -> KeepAliveAnswer {
        let written = t
            .client
            .write_immutable(
                &t.key.storage_index,
                t.key.shnum,
                &t.upload_secret,
                t.offset,
                t.data.clone(),
            )
            .await;
        match written {
            Ok(progress) if progress.finished => KeepAliveAnswer::Finished,
            Ok(_) => KeepAliveAnswer::Alive,
            Err(e) if matches!(e.status(), Some(401 | 404 | 409)) => KeepAliveAnswer::Gone,
            Err(e) => {
                tracing::debug!("a keep-alive write to {:?} got no answer: {e}", t.key);
                KeepAliveAnswer::NoAnswer
            }
        }
    }

    async fn abort(&self, t: &KeepAliveTarget) {
        let aborted = t
            .client
            .abort_immutable(&t.key.storage_index, t.key.shnum, &t.upload_secret)
            .await;
        if let Err(e) = aborted {
            tracing::debug!("aborting the given-up {:?} failed: {e}", t.key);
        }
    }
}

/// What is due now, and when the keeper must look again.
#[derive(Debug, Default)]
struct Plan {
    writes: Vec<KeepAliveTarget>,
    lost: Vec<ShareKey>,
    give_ups: Vec<KeepAliveTarget>,
    forget: Vec<ShareKey>,
    next: Option<Instant>,
}

impl Plan {
    fn is_idle(&self) -> bool {
        self.writes.is_empty()
            && self.lost.is_empty()
            && self.give_ups.is_empty()
            && self.forget.is_empty()
    }
}

/// Runs the schedule over a record of partial shares.
pub struct Keeper<W> {
    shares: Arc<PartialShares>,
    writer: W,
    policy: KeepAlivePolicy,
}

impl<W: KeepAliveWriter> Keeper<W> {
    /// A keeper of `shares` that writes with `writer`.
    pub fn new(shares: Arc<PartialShares>, writer: W, policy: KeepAlivePolicy) -> Keeper<W> {
        Keeper {
            shares,
            writer,
            policy,
        }
    }

    /// Keeps the record's shares alive until the future is dropped: waits (on tokio's clock)
    /// for the next due step, or for a share to be recorded when there is none.
    pub async fn run(self) {
        let mut changes = self.shares.subscribe();
        loop {
            changes.borrow_and_update();
            let now = Instant::now();
            let plan = self.plan(now);
            if !plan.is_idle() {
                self.execute(plan, now).await;
                continue;
            }
            // A share recorded later is due `idle_limit - margin` after it, never before the
            // step planned here: only an empty record needs to hear of it.
            match plan.next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => {
                    if changes.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Does whatever is due at `now` (tests call it directly; [`Keeper::run`] does it when
    /// the time comes); true when something was.
    pub async fn run_due(&self, now: Instant) -> bool {
        let plan = self.plan(now);
        let busy = !plan.is_idle();
        self.execute(plan, now).await;
        busy
    }

    fn plan(&self, now: Instant) -> Plan {
        let mut plan = Plan::default();
        let later = |at: Instant, plan: &mut Plan| {
            plan.next = Some(plan.next.map_or(at, |n| n.min(at)));
        };
        for (target, times) in self.shares.live() {
            let step = next_step(&self.policy, &times);
            if step.at() > now {
                later(step.at(), &mut plan);
                continue;
            }
            match step {
                Step::WriteAt(_) => plan.writes.push(target),
                Step::LostAt(_) => plan.lost.push(target.key),
                Step::GiveUpAt(_) => plan.give_ups.push(target),
            }
        }
        for (key, last_upload_write) in self.shares.dropped() {
            let at = last_upload_write + self.policy.give_up_after;
            if at <= now {
                plan.forget.push(key);
            } else {
                later(at, &mut plan);
            }
        }
        plan
    }

    async fn execute(&self, plan: Plan, now: Instant) {
        let answers = join_all(plan.writes.iter().map(|t| self.writer.write(t))).await;
        for (target, answer) in plan.writes.iter().zip(answers) {
            let key = &target.key;
            match answer {
                // The server's timer restarted when the write arrived, after `now`.
                KeepAliveAnswer::Alive => self.shares.kept(key, now),
                KeepAliveAnswer::Finished => self.shares.remove(key),
                KeepAliveAnswer::NoAnswer => self.shares.keep_failed(key, now),
                KeepAliveAnswer::Gone => {
                    tracing::info!(
                        "storage server {} dropped a partial share while its upload was \
                         stopped: the next run sends that share again",
                        target.server
                    );
                    self.shares.mark_dropped(key);
                }
            }
        }
        for key in &plan.lost {
            tracing::info!(
                "a partial share could not be kept alive (its server did not answer for {} \
                 minutes): the next run sends it again",
                self.policy.idle_limit.as_secs() / 60
            );
            self.shares.mark_dropped(key);
        }
        join_all(plan.give_ups.iter().map(|t| self.writer.abort(t))).await;
        for target in &plan.give_ups {
            tracing::info!(
                "gave up a partial share on {} whose upload did not resume for {} days: \
                 aborted, so the server frees its space",
                target.server,
                self.policy.give_up_after.as_secs() / 86_400
            );
            self.shares.remove(&target.key);
        }
        for key in &plan.forget {
            self.shares.remove(key);
        }
    }
}

#[cfg(test)]
#[path = "keepalive_tests.rs"]
mod tests;
