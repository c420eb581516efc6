//! A smooth byte-rate limiter (GCRA, the "virtual scheduling" form of a token bucket) on tokio's
//! clock, whose rate can change while callers wait.
//!
//! The burst allowance is 100 ms worth of the rate: enough to let small writes through without a
//! timer each, small enough that no one-second interval sees much more than the limit (Kopia #2665
//! shows what users think of bursts). Callers reserve their slot at once, in arrival order, then
//! sleep until it comes; large requests are split so no single reservation exceeds the burst.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::stats::FlowStats;

/// How much a bucket lets through at once, as time at the configured rate.
pub const BURST_WINDOW: Duration = Duration::from_millis(100);

/// The smallest burst in bytes, whatever the rate: a few hundred bytes is one small packet, and a
/// burst smaller than that would make every write wait for a timer at very low rates.
pub const MIN_BURST: u64 = 512;

/// How far back [`FlowStats::rate`] looks.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Granularity of the sliding rate window.
const RATE_SLOT: Duration = Duration::from_millis(250);

/// A byte-rate limiter. `None` as a rate means no limit: acquisitions return at once but are
/// still counted, so the status shows traffic that nothing holds back.
#[derive(Debug)]
pub struct Bucket {
    state: Mutex<State>,
    /// Bumped on every rate change, so sleeping callers can rescale their remaining wait.
    rate_changes: watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    rate: Option<u64>,
    /// GCRA's theoretical arrival time: when all bytes granted so far would have left at the rate.
    tat: Instant,
    granted: u64,
    throttled: Duration,
    created: Instant,
    /// (slot start, bytes granted in it), oldest first.
    recent: VecDeque<(Instant, u64)>,
    epoch: u64,
}

impl Bucket {
    /// A bucket with the given limit in bytes per second (`None`: no limit).
    pub fn new(rate: Option<u64>) -> Self {
        let now = Instant::now();
        Bucket {
            state: Mutex::new(State {
                rate: rate.map(sane_rate),
                tat: now,
                granted: 0,
                throttled: Duration::ZERO,
                created: now,
                recent: VecDeque::new(),
                epoch: 0,
            }),
            rate_changes: watch::channel(0).0,
        }
    }

    /// A bucket that never holds back, but counts.
    pub fn unlimited() -> Self {
        Self::new(None)
    }

    /// A bucket limited to `bytes_per_second`.
    pub fn limited(bytes_per_second: u64) -> Self {
        Self::new(Some(bytes_per_second))
    }

    /// The limit now, in bytes per second.
    pub fn rate(&self) -> Option<u64> {
        self.lock().rate
    }

    /// The most bytes one acquisition may take without waiting longer than its share; `None`
    /// when unlimited. Copy loops read at most this much at a time so the wire stays smooth.
    pub fn burst(&self) -> Option<u64> {
        self.lock().rate.map(burst_for)
    }

    /// Changes the limit. The next acquisition sees it at once, and callers already asleep
    /// rescale what is left of their wait to the new rate.
    pub fn set_rate(&self, rate: Option<u64>) {
        let mut st = self.lock();
        let rate = rate.map(sane_rate);
        if st.rate == rate {
            return;
        }
        let now = Instant::now();
        st.tat = match (st.rate, rate) {
            (Some(old), Some(new)) if st.tat > now => {
                // Debt beyond the old burst allowance is bytes reserved by callers still asleep:
                // it moves at the new rate, as those callers will. The allowance already used is
                // kept as used (capped at the new one), so lowering the rate right after a burst
                // does not grant another, and raising it does not charge a full new burst.
                let ahead = st.tat - now;
                let tau_old = tau(old);
                let reserved = ahead.saturating_sub(tau_old);
                let spent = ahead.min(tau_old);
                now + rescale(reserved, old, new) + rescale(spent, old, new).min(tau(new))
            }
            _ => now,
        };
        st.rate = rate;
        st.epoch += 1;
        let epoch = st.epoch;
        drop(st);
        self.rate_changes.send_replace(epoch);
    }

    /// Waits until `n` bytes may move, then counts them as granted.
    pub async fn acquire(&self, mut n: u64) {
        while n > 0 {
            let chunk = match self.burst() {
                Some(burst) => n.min(burst),
                None => n,
            };
            self.acquire_chunk(chunk).await;
            n -= chunk;
        }
    }

    async fn acquire_chunk(&self, n: u64) {
        let mut changes = self.rate_changes.subscribe();
        let (mut deadline, mut reserved_at_rate) = {
            let mut st = self.lock();
            let now = Instant::now();
            match st.rate {
                None => {
                    st.grant(now, n);
                    return;
                }
                Some(rate) => {
                    let start = st.tat.max(now);
                    st.tat = start + per_bytes(n, rate);
                    // GCRA: the request conforms once tat - burst allowance <= now.
                    let deadline = st.tat.checked_sub(tau(rate)).unwrap_or(now).max(now);
                    (deadline, rate)
                }
            }
        };
        let began = Instant::now();
        while Instant::now() < deadline {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = Instant::now();
                    match self.rate() {
                        None => break,
                        Some(rate) => {
                            deadline = now + rescale(deadline.saturating_duration_since(now), reserved_at_rate, rate);
                            reserved_at_rate = rate;
                        }
                    }
                }
            }
        }
        let mut st = self.lock();
        let now = Instant::now();
        st.throttled += now - began;
        st.grant(now, n);
    }

    /// A snapshot of what this bucket has done.
    pub fn stats(&self) -> FlowStats {
        let st = self.lock();
        let now = Instant::now();
        FlowStats {
            rate: st.recent_rate(now),
            bytes: st.granted,
            limit: st.rate,
            throttled_seconds: st.throttled.as_secs_f64(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves only counters half-updated: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Bucket {
    fn default() -> Self {
        Self::unlimited()
    }
}

impl State {
    fn grant(&mut self, now: Instant, n: u64) {
        self.granted += n;
        match self.recent.back_mut() {
            Some((start, bytes)) if now.duration_since(*start) < RATE_SLOT => *bytes += n,
            _ => self.recent.push_back((now, n)),
        }
        self.trim(now);
    }

    fn trim(&mut self, now: Instant) {
        while let Some((start, _)) = self.recent.front() {
            if now.duration_since(*start) > RATE_WINDOW {
                self.recent.pop_front();
            } else {
                break;
            }
        }
    }

    /// Bytes per second over the last [`RATE_WINDOW`] (or since creation, if younger).
    fn recent_rate(&self, now: Instant) -> f64 {
        let bytes: u64 = self
            .recent
            .iter()
            .filter(|(start, _)| now.duration_since(*start) <= RATE_WINDOW)
            .map(|(_, b)| *b)
            .sum();
        // A young bucket divides by its age, but not by less than one slot, so the first
        // burst does not read as an absurd rate.
        let span = now
            .duration_since(self.created)
            .clamp(RATE_SLOT, RATE_WINDOW);
        bytes as f64 / span.as_secs_f64()
    }
}

/// A percentage of a tiny total can round to zero; zero would mean waiting forever.
fn sane_rate(rate: u64) -> u64 {
    rate.max(1)
}

/// The burst allowance at `rate`, in bytes.
pub fn burst_for(rate: u64) -> u64 {
    let window = (rate as f64 * BURST_WINDOW.as_secs_f64()) as u64;
    window.max(MIN_BURST)
}

/// The burst allowance at `rate`, as time.
fn tau(rate: u64) -> Duration {
    per_bytes(burst_for(rate), rate)
}

fn per_bytes(n: u64, rate: u64) -> Duration {
    Duration::from_secs_f64(n as f64 / rate as f64)
}

fn rescale(d: Duration, old_rate: u64, new_rate: u64) -> Duration {
    d.mul_f64(old_rate as f64 / new_rate as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn elapsed_secs(start: Instant) -> f64 {
        (Instant::now() - start).as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_never_waits_but_counts() {
        let b = Bucket::unlimited();
        let t0 = Instant::now();
        b.acquire(10_000_000).await;
        assert_eq!(Instant::now(), t0);
        let s = b.stats();
        assert_eq!(s.bytes, 10_000_000);
        assert_eq!(s.limit, None);
        assert_eq!(s.throttled_seconds, 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn burst_passes_at_once_then_paces() {
        let b = Bucket::limited(10_000);
        assert_eq!(b.burst(), Some(1_000));
        let t0 = Instant::now();
        b.acquire(1_000).await;
        assert_eq!(Instant::now(), t0, "one burst needs no wait");
        // 10,000 more bytes at 10,000 B/s: one second, minus nothing (the burst is spent).
        b.acquire(10_000).await;
        let e = elapsed_secs(t0);
        assert!((e - 1.0).abs() < 0.01, "{e}");
        assert_eq!(b.stats().bytes, 11_000);
        assert!(b.stats().throttled_seconds > 0.9);
    }

    #[tokio::test(start_paused = true)]
    async fn long_run_average_matches_the_rate() {
        let b = Bucket::limited(16 * 1024);
        let t0 = Instant::now();
        // Many odd-sized writes, as a copy loop would make.
        let mut total = 0u64;
        for i in 0..500u64 {
            let n = 700 + (i * 37) % 900;
            b.acquire(n).await;
            total += n;
        }
        let e = elapsed_secs(t0);
        let expected = total as f64 / (16.0 * 1024.0) - BURST_WINDOW.as_secs_f64();
        assert!((e - expected).abs() < 0.02, "{e} vs {expected}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_one_second_interval_exceeds_the_rate_by_much() {
        let rate = 8_000u64;
        let b = Arc::new(Bucket::limited(rate));
        let t0 = Instant::now();
        let mut grants: Vec<(f64, u64)> = Vec::new();
        for _ in 0..200 {
            b.acquire(300).await;
            grants.push((elapsed_secs(t0), 300));
        }
        let end = grants.last().unwrap().0;
        let mut t = 0.0;
        while t + 1.0 <= end {
            let in_window: u64 = grants
                .iter()
                .filter(|(at, _)| *at >= t && *at < t + 1.0)
                .map(|(_, n)| n)
                .sum();
            // At most one second's worth plus the burst allowance.
            assert!(
                in_window <= rate + burst_for(rate),
                "{in_window} bytes in [{t}, {t}+1)"
            );
            t += 0.05;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_rate() {
        let b = Arc::new(Bucket::limited(10_000));
        let t0 = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..4 {
            let b = b.clone();
            handles.push(tokio::spawn(async move { b.acquire(5_000).await }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let e = elapsed_secs(t0);
        // 20,000 bytes at 10,000 B/s, less the first burst.
        assert!((e - 1.9).abs() < 0.02, "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn raising_the_rate_helps_sleepers_at_once() {
        let b = Arc::new(Bucket::limited(1_000));
        b.acquire(500).await; // spend the burst (MIN_BURST = 512 at this rate)
        let t0 = Instant::now();
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire(500).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.set_rate(Some(1_000_000));
        waiter.await.unwrap();
        let e = elapsed_secs(t0);
        // At 1,000 B/s it would take ~0.5 s; after the change, almost nothing is left.
        assert!(e < 0.11, "{e}");
        // Later acquisitions run at the new rate: 200 KB, one 100 KB burst free, in ~0.1 s.
        let t1 = Instant::now();
        b.acquire(200_000).await;
        let e = elapsed_secs(t1);
        assert!((e - 0.1).abs() < 0.02, "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn lowering_the_rate_applies_to_the_next_acquisition() {
        let b = Bucket::limited(100_000);
        b.acquire(100_000).await;
        b.set_rate(Some(1_000));
        let t0 = Instant::now();
        b.acquire(2_000).await;
        let e = elapsed_secs(t0);
        // The old burst counts as spent: 2,000 bytes take their full two seconds.
        assert!((e - 2.0).abs() < 0.02, "{e}");
        assert_eq!(b.rate(), Some(1_000));
    }

    #[tokio::test(start_paused = true)]
    async fn switching_off_releases_sleepers() {
        let b = Arc::new(Bucket::limited(100));
        b.acquire(512).await;
        let t0 = Instant::now();
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire(10_000).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        b.set_rate(None);
        waiter.await.unwrap();
        let e = elapsed_secs(t0);
        assert!(e < 1.01, "{e}");
        assert_eq!(b.stats().bytes, 10_512);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_rate_is_treated_as_one_byte_per_second() {
        let b = Bucket::limited(0);
        assert_eq!(b.rate(), Some(1));
        assert_eq!(b.burst(), Some(MIN_BURST));
    }

    #[tokio::test(start_paused = true)]
    async fn recent_rate_follows_the_traffic() {
        let b = Bucket::limited(4_000);
        for _ in 0..40 {
            b.acquire(1_000).await;
        }
        // Ten seconds at 4,000 B/s: the 5 s window sees about that.
        let r = b.stats().rate;
        assert!((r - 4_000.0).abs() < 400.0, "{r}");
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(b.stats().rate, 0.0);
    }
}
