//! [`LimitedBudget`]: the feed-pacing [`BudgetGate`]. Every byte a task moves waits on its job's
//! bucket, on each destination's bucket for the share estimated to reach it, and on the total
//! bucket for the estimated bytes on the wire; CPU checkpoints consult the duty-cycle governor.
//!
//! Destination figures here are estimates (what the task said would follow from its bytes). When
//! the shaping proxy carries the store's traffic, it meters destinations and the total exactly,
//! and [`LimitedBudget::set_exact_shaping`] turns the estimated pacing off so the same bytes are
//! not held back twice on guesses; job limits stay here either way, since only the feed knows
//! which job a byte belongs to. Bytes a task sends to a server itself ([`ByteRequest::direct`],
//! a direct upload) are exact and never pass the proxy, so they wait on their destination and
//! the total here in both modes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;
use tokio::time::Instant;

use super::bucket::Bucket;
use super::cpu::{CpuGovernor, CpuSource, ProcStat};
use super::policy::LimitsNow;
use super::stats::{Accounting, DestinationStats, DirectionStats, FlowStats};
use crate::budget::{BudgetGate, ByteRequest, Direction};

/// The feed-pacing budget: buckets per job, per destination and in total, each per direction.
pub struct LimitedBudget {
    state: Mutex<GateState>,
    total_upload: Arc<Bucket>,
    total_download: Arc<Bucket>,
    cpu: Mutex<CpuGovernor>,
}

struct GateState {
    limits: LimitsNow,
    jobs: HashMap<String, JobFlows>,
    destinations: HashMap<String, Pair>,
    exact_shaping: bool,
}

struct Pair {
    upload: Arc<Bucket>,
    download: Arc<Bucket>,
    /// A destination charged estimates (not only direct bytes): its figures are estimated.
    estimated: bool,
}

impl Pair {
    fn new(upload: Option<u64>, download: Option<u64>) -> Self {
        Pair {
            upload: Arc::new(Bucket::new(upload)),
            download: Arc::new(Bucket::new(download)),
            estimated: false,
        }
    }

    fn get(&self, d: Direction) -> &Arc<Bucket> {
        match d {
            Direction::Upload => &self.upload,
            Direction::Download => &self.download,
        }
    }
}

struct JobFlows {
    buckets: Pair,
    /// Time the job waited on any bucket, per direction: "time spent throttled" in the status.
    held_upload: Duration,
    held_download: Duration,
    cpu_paused: Duration,
}

/// A serializable snapshot of the feed-pacing budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStats {
    /// Estimated bytes on the wire in total (zero while exact shaping is on: see the proxy).
    pub total: DirectionStats,
    /// By job id.
    pub jobs: BTreeMap<String, JobStats>,
    /// By destination id (for Tahoe-LAFS, a storage server).
    pub destinations: BTreeMap<String, DestinationStats>,
    /// The CPU governor's figures.
    pub cpu: CpuStats,
    /// Whether destinations and the total are left to the shaping proxy.
    pub exact_shaping: bool,
}

/// One job's figures. `throttled_seconds` in each direction is the time the job was held back by
/// any limit (its own, a destination's or the total), not only its own bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStats {
    /// The job's uploads.
    pub upload: FlowStats,
    /// The job's downloads.
    pub download: FlowStats,
    /// The share of one core the job may use: the tighter of its own and the budget's; `None` means unlimited.
    pub cpu_limit: Option<f64>,
    /// Seconds the job's CPU checkpoints paused it, in total.
    pub cpu_paused_seconds: f64,
}

/// The CPU governor's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuStats {
    /// Share of one core allowed when no job sets a tighter one.
    pub limit: Option<f64>,
    /// Share of one core the watched processes used recently, when measured.
    pub recent_share: Option<f64>,
    /// Why the CPU time could not be read, if it could not (the governor then does not pause).
    pub error: Option<String>,
}

impl LimitedBudget {
    /// A budget with no limits yet, whose CPU governor reads `source`.
    pub fn new(source: Box<dyn CpuSource>) -> Self {
        LimitedBudget {
            state: Mutex::new(GateState {
                limits: LimitsNow::unlimited(Timestamp::UNIX_EPOCH),
                jobs: HashMap::new(),
                destinations: HashMap::new(),
                exact_shaping: false,
            }),
            total_upload: Arc::new(Bucket::unlimited()),
            total_download: Arc::new(Bucket::unlimited()),
            cpu: Mutex::new(CpuGovernor::new(source)),
        }
    }

    /// A budget whose CPU governor watches this process only, until [`Self::set_cpu_source`].
    pub fn for_this_process() -> Self {
        Self::new(Box::new(ProcStat::this_process()))
    }

    /// Puts new limits in force at once, for waiting callers too.
    pub fn apply(&self, limits: &LimitsNow) {
        let mut st = self.lock();
        self.total_upload.set_rate(limits.total.upload);
        self.total_download.set_rate(limits.total.download);
        for (id, flows) in &st.jobs {
            let l = limits.job(id);
            flows.buckets.upload.set_rate(l.upload);
            flows.buckets.download.set_rate(l.download);
        }
        for (id, pair) in &st.destinations {
            let l = limits.destination(id);
            pair.upload.set_rate(l.upload);
            pair.download.set_rate(l.download);
        }
        st.limits = limits.clone();
    }

    /// The limits last applied.
    pub fn limits(&self) -> LimitsNow {
        self.lock().limits.clone()
    }

    /// Call with `true` only once the store's traffic is known to flow through the shaping
    /// proxy: destination and total pacing then happen there, exactly, and not here.
    pub fn set_exact_shaping(&self, on: bool) {
        self.lock().exact_shaping = on;
    }

    /// Watches other processes for the CPU share (this process and the store's node, say).
    pub fn set_cpu_source(&self, source: Box<dyn CpuSource>) {
        self.lock_cpu().set_source(source);
    }

    /// Forgets a job's counters (the job was removed from the configuration).
    pub fn remove_job(&self, job: &str) {
        self.lock().jobs.remove(job);
    }

    /// A snapshot for the status page, JSON and metrics.
    pub fn stats(&self) -> BudgetStats {
        let st = self.lock();
        let jobs = st
            .jobs
            .iter()
            .map(|(id, f)| {
                let mut upload = f.buckets.upload.stats();
                upload.throttled_seconds = f.held_upload.as_secs_f64();
                let mut download = f.buckets.download.stats();
                download.throttled_seconds = f.held_download.as_secs_f64();
                let stats = JobStats {
                    upload,
                    download,
                    cpu_limit: st.limits.cpu_for(id),
                    cpu_paused_seconds: f.cpu_paused.as_secs_f64(),
                };
                (id.clone(), stats)
            })
            .collect();
        let destinations = st
            .destinations
            .iter()
            .map(|(id, p)| {
                let stats = DestinationStats {
                    mode: if p.estimated {
                        Accounting::Estimated
                    } else {
                        Accounting::Exact
                    },
                    upload: p.upload.stats(),
                    download: p.download.stats(),
                };
                (id.clone(), stats)
            })
            .collect();
        let cpu_limit = st.limits.cpu;
        let exact_shaping = st.exact_shaping;
        drop(st);
        let gov = self.lock_cpu();
        BudgetStats {
            total: DirectionStats {
                upload: self.total_upload.stats(),
                download: self.total_download.stats(),
            },
            jobs,
            destinations,
            cpu: CpuStats {
                limit: cpu_limit,
                recent_share: gov.recent_share(),
                error: gov.last_error().map(str::to_string),
            },
            exact_shaping,
        }
    }

    /// Which buckets a request waits on, and how many bytes on each.
    fn plan(&self, job: &str, request: &ByteRequest) -> Vec<(Arc<Bucket>, u64)> {
        let d = request.direction;
        let mut st = self.lock();
        let st = &mut *st;
        let job_limits = st.limits.job(job);
        let flows = st.jobs.entry(job.to_string()).or_insert_with(|| JobFlows {
            buckets: Pair::new(job_limits.upload, job_limits.download),
            held_upload: Duration::ZERO,
            held_download: Duration::ZERO,
            cpu_paused: Duration::ZERO,
        });
        let mut plan = vec![(flows.buckets.get(d).clone(), request.bytes)];
        if st.exact_shaping && !request.direct {
            return plan;
        }
        // Several entries for one destination are one destination.
        let mut per_dest: BTreeMap<&str, u64> = BTreeMap::new();
        for (id, n) in &request.destinations {
            *per_dest.entry(id.as_str()).or_default() += n;
        }
        for (id, n) in &per_dest {
            let limits = st.limits.destination(id);
            let pair = st
                .destinations
                .entry(id.to_string())
                .or_insert_with(|| Pair::new(limits.upload, limits.download));
            pair.estimated |= !request.direct;
            plan.push((pair.get(d).clone(), *n));
        }
        // Without estimates, the task's own bytes are the best guess of what reaches the wire.
        let wire = if per_dest.is_empty() {
            request.bytes
        } else {
            per_dest.values().sum()
        };
        let total = match d {
            Direction::Upload => &self.total_upload,
            Direction::Download => &self.total_download,
        };
        plan.push((total.clone(), wire));
        plan
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_cpu(&self) -> MutexGuard<'_, CpuGovernor> {
        self.cpu.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Splits every bucket's amount into the same number of steps, each within every bucket's
/// burst, so the buckets advance together instead of one draining before the next starts.
fn steps(plan: &[(Arc<Bucket>, u64)]) -> u64 {
    plan.iter()
        .map(|(b, n)| b.burst().map_or(1, |burst| n.div_ceil(burst)))
        .max()
        .unwrap_or(1)
        .max(1)
}

fn part(n: u64, step: u64, steps: u64) -> u64 {
    let at = |i: u64| (u128::from(n) * u128::from(i) / u128::from(steps)) as u64;
    at(step + 1) - at(step)
}

#[async_trait]
impl BudgetGate for LimitedBudget {
    async fn acquire(&self, job: &str, request: ByteRequest) {
        let started = Instant::now();
        let plan = self.plan(job, &request);
        let steps = steps(&plan);
        for step in 0..steps {
            for (bucket, n) in &plan {
                let p = part(*n, step, steps);
                if p > 0 {
                    bucket.acquire(p).await;
                }
            }
        }
        let held = started.elapsed();
        if held > Duration::ZERO {
            let mut st = self.lock();
            if let Some(f) = st.jobs.get_mut(job) {
                match request.direction {
                    Direction::Upload => f.held_upload += held,
                    Direction::Download => f.held_download += held,
                }
            }
        }
    }

    async fn cpu_checkpoint(&self, job: &str) {
        let Some(limit) = self.lock().limits.cpu_for(job) else {
            return;
        };
        let pause = self.lock_cpu().checkpoint(limit);
        if pause.is_zero() {
            return;
        }
        tokio::time::sleep(pause).await;
        let mut st = self.lock();
        let job_limits = st.limits.job(job);
        st.jobs
            .entry(job.to_string())
            .or_insert_with(|| JobFlows {
                buckets: Pair::new(job_limits.upload, job_limits.download),
                held_upload: Duration::ZERO,
                held_download: Duration::ZERO,
                cpu_paused: Duration::ZERO,
            })
            .cpu_paused += pause;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::cpu::CpuError;
    use crate::limits::policy::{JobLimitsNow, PairLimits};

    fn budget() -> Arc<LimitedBudget> {
        Arc::new(LimitedBudget::new(Box::new(ProcStat::new(Vec::new()))))
    }

    fn limits() -> LimitsNow {
        LimitsNow::unlimited(Timestamp::UNIX_EPOCH)
    }

    fn job_up(rate: u64) -> JobLimitsNow {
        JobLimitsNow {
            upload: Some(rate),
            ..JobLimitsNow::default()
        }
    }

    fn secs_since(t: Instant) -> f64 {
        t.elapsed().as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_limit_paces_the_feed() {
        let b = budget();
        let mut l = limits();
        l.jobs.insert("j".into(), job_up(10_000));
        b.apply(&l);
        let t0 = Instant::now();
        b.acquire("j", ByteRequest::upload(20_000)).await;
        let e = secs_since(t0);
        assert!((e - 1.9).abs() < 0.02, "{e}");
        // Downloads are not limited by an upload limit.
        let t1 = Instant::now();
        b.acquire("j", ByteRequest::download(1_000_000)).await;
        assert_eq!(Instant::now(), t1);
        let s = b.stats();
        assert_eq!(s.jobs["j"].upload.bytes, 20_000);
        assert_eq!(s.jobs["j"].upload.limit, Some(10_000));
        assert!((s.jobs["j"].upload.throttled_seconds - 1.9).abs() < 0.02);
        assert_eq!(s.jobs["j"].download.bytes, 1_000_000);
        assert_eq!(s.total.upload.bytes, 20_000);
    }

    #[tokio::test(start_paused = true)]
    async fn the_total_is_shared_between_jobs() {
        let b = budget();
        let mut l = limits();
        l.total = PairLimits {
            upload: Some(10_000),
            download: None,
        };
        b.apply(&l);
        let t0 = Instant::now();
        let a = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire("a", ByteRequest::upload(10_000)).await })
        };
        let c = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire("c", ByteRequest::upload(10_000)).await })
        };
        a.await.unwrap();
        c.await.unwrap();
        let e = secs_since(t0);
        assert!((e - 1.9).abs() < 0.02, "{e}");
        let s = b.stats();
        assert!(s.jobs["a"].upload.throttled_seconds > 0.5);
        assert!(s.jobs["c"].upload.throttled_seconds > 0.5);
        assert_eq!(s.total.upload.limit, Some(10_000));
    }

    fn spread(plaintext: u64) -> ByteRequest {
        // 1-of-3 on three destinations: each receives the whole plaintext.
        ByteRequest {
            direction: Direction::Upload,
            bytes: plaintext,
            destinations: vec![
                ("slow".into(), plaintext),
                ("fast".into(), plaintext),
                ("other".into(), plaintext),
            ],
            direct: false,
        }
    }

    /// No limits but the destination `slow`'s upload rate.
    fn slow_destination(upload: u64) -> LimitsNow {
        let mut l = limits();
        l.destinations.insert(
            "slow".into(),
            PairLimits {
                upload: Some(upload),
                download: None,
            },
        );
        l
    }

    #[tokio::test(start_paused = true)]
    async fn the_slowest_destination_sets_the_pace() {
        let b = budget();
        let l = slow_destination(1_000);
        b.apply(&l);
        let t0 = Instant::now();
        b.acquire("j", spread(5_000)).await;
        let e = secs_since(t0);
        // 5,000 bytes at 1,000 B/s, less the 512-byte minimum burst.
        assert!((e - 4.488).abs() < 0.02, "{e}");
        let s = b.stats();
        let slow = s.destinations["slow"];
        assert_eq!(slow.mode, Accounting::Estimated);
        assert_eq!(slow.upload.bytes, 5_000);
        assert_eq!(slow.upload.limit, Some(1_000));
        assert!(slow.upload.throttled_seconds > 4.0);
        assert_eq!(s.destinations["fast"].upload.limit, None);
        assert_eq!(s.destinations["fast"].upload.bytes, 5_000);
        assert_eq!(s.total.upload.bytes, 15_000, "the wire estimate");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["destinations"]["slow"]["mode"], "estimated");
    }

    #[tokio::test(start_paused = true)]
    async fn exact_shaping_leaves_destinations_to_the_proxy() {
        let b = budget();
        let mut l = slow_destination(1_000);
        l.total.upload = Some(1_000);
        b.apply(&l);
        b.set_exact_shaping(true);
        let t0 = Instant::now();
        b.acquire("j", spread(5_000)).await;
        assert_eq!(Instant::now(), t0);
        let s = b.stats();
        assert!(s.exact_shaping);
        assert!(s.destinations.is_empty());
        assert_eq!(s.jobs["j"].upload.bytes, 5_000);
    }

    /// A direct upload's bytes never pass the proxy: they wait on their server's limit and the
    /// total here even in exact mode, and are counted as exact.
    #[tokio::test(start_paused = true)]
    async fn direct_bytes_wait_on_their_server_even_with_exact_shaping() {
        let b = budget();
        let l = slow_destination(1_000);
        b.apply(&l);
        b.set_exact_shaping(true);
        let t0 = Instant::now();
        b.acquire("j", ByteRequest::direct_upload("slow", 5_000))
            .await;
        // 5,000 bytes at 1,000 B/s, less the 512-byte minimum burst.
        let e = secs_since(t0);
        assert!((e - 4.488).abs() < 0.02, "{e}");
        b.acquire("j", ByteRequest::direct_upload("fast", 700))
            .await;
        let s = b.stats();
        assert_eq!(s.destinations["slow"].upload.bytes, 5_000);
        assert_eq!(s.destinations["slow"].mode, Accounting::Exact);
        assert_eq!(s.destinations["fast"].upload.bytes, 700);
        assert_eq!(s.total.upload.bytes, 5_700);
        assert_eq!(s.jobs["j"].upload.bytes, 5_700);
        // An estimate for the same server makes its figures estimated.
        b.set_exact_shaping(false);
        b.acquire("j", spread(10)).await;
        assert_eq!(b.stats().destinations["fast"].mode, Accounting::Estimated);
    }

    #[tokio::test(start_paused = true)]
    async fn new_limits_reach_waiting_callers() {
        let b = budget();
        let mut l = limits();
        l.jobs.insert("j".into(), job_up(1_000));
        b.apply(&l);
        let t0 = Instant::now();
        let w = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire("j", ByteRequest::upload(100_000)).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        l.jobs.insert("j".into(), JobLimitsNow::default());
        b.apply(&l);
        w.await.unwrap();
        let e = secs_since(t0);
        assert!(e < 1.01, "{e}: 100 s at the old rate");
        assert_eq!(b.stats().jobs["j"].upload.limit, None);
        assert_eq!(b.limits().job("j"), JobLimitsNow::default());
    }

    /// CPU time the test moves by hand.
    struct Shared(Arc<Mutex<Duration>>);

    impl CpuSource for Shared {
        fn cumulative(&mut self) -> Result<Duration, CpuError> {
            Ok(*self.0.lock().unwrap())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn cpu_checkpoints_pause_a_busy_job() {
        let b = budget();
        let mut l = limits();
        l.cpu = Some(0.5);
        l.jobs.insert(
            "j".into(),
            JobLimitsNow {
                cpu: Some(0.25),
                ..JobLimitsNow::default()
            },
        );
        b.apply(&l);
        // Unlimited jobs never wait, and the governor is not even asked.
        let t0 = Instant::now();
        l.cpu = None;
        b.apply(&l);
        b.cpu_checkpoint("other").await;
        assert_eq!(Instant::now(), t0);
        l.cpu = Some(0.5);
        b.apply(&l);

        let used = Arc::new(Mutex::new(Duration::ZERO));
        b.set_cpu_source(Box::new(Shared(used.clone())));
        let start = Instant::now();
        // A job that burns a full core for 100 ms between checkpoints.
        for _ in 0..200 {
            tokio::time::advance(Duration::from_millis(100)).await;
            *used.lock().unwrap() += Duration::from_millis(100);
            b.cpu_checkpoint("j").await;
        }
        let share = used.lock().unwrap().as_secs_f64() / secs_since(start);
        assert!((share - 0.25).abs() < 0.03, "{share}");
        let s = b.stats();
        assert!(s.jobs["j"].cpu_paused_seconds > 40.0, "{:?}", s.jobs["j"]);
        assert_eq!(s.jobs["j"].cpu_limit, Some(0.25));
        assert_eq!(s.cpu.limit, Some(0.5));
        assert!(s.cpu.error.is_none());
    }

    #[test]
    fn parts_add_up() {
        for n in [0u64, 1, 7, 1_000, 123_457] {
            for steps in [1u64, 3, 10] {
                let sum: u64 = (0..steps).map(|i| part(n, i, steps)).sum();
                assert_eq!(sum, n);
            }
        }
    }
}
