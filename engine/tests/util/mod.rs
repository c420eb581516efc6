//! Helpers for the engine tests: an actix System on a paused tokio clock, a wall clock that
//! follows it, test-only task types that report what they do to a [`Probe`] (and, for the budget
//! tests, the bytes they were let through and the CPU time they pretend to burn), and job
//! builders.
//!
//! With the paused clock, `tokio::time::sleep` in a test jumps straight to the next timer when
//! everything is idle, so a simulated day takes milliseconds and every instant is exact.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use tahoe_jobs_config::{
    BudgetSettings, CpuShare, JobConfig, JobLimits, RateSchedule, Schedule, TaskParams,
};
use tahoe_jobs_engine::limits::{CpuError, CpuSource};
use tahoe_jobs_engine::{
    ByteRequest, Clock, Enforcement, Engine, EngineError, EngineHandle, EngineOptions, JobStatus,
    Outcome, Registry, StateKind, Task, TaskContext, TaskError, TokioClock,
};
use tempfile::TempDir;

pub const DAY: Duration = Duration::from_secs(86_400);
pub const HOUR: Duration = Duration::from_secs(3600);
/// How long one unit of the counting task takes.
pub const UNIT: Duration = Duration::from_secs(1);

/// Runs `f` in a fresh actix System whose tokio clock starts paused.
pub fn run_paused<F, Fut>(f: F) -> Fut::Output
where
    F: FnOnce() -> Fut,
    Fut: Future,
{
    quiet_global_subscriber();
    actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a paused runtime")
    })
    .block_on(f())
}

/// A process-wide subscriber that takes warnings (and drops them). Without one, a test thread
/// with no subscriber of its own that reaches a `warn!` first can have tracing cache that call
/// site as uninteresting everywhere, racing the tests that capture warnings on their thread.
fn quiet_global_subscriber() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::WARN)
                .with_writer(std::io::sink)
                .finish(),
        );
    });
}

/// Lets simulated time pass (instantly, in a paused runtime).
pub async fn pass(d: Duration) {
    tokio::time::sleep(d).await;
}

pub fn civil(at: &str, zone: &str) -> Timestamp {
    at.parse::<DateTime>()
        .expect("a civil time")
        .to_zoned(TimeZone::get(zone).expect("a zone"))
        .expect("a zoned time")
        .timestamp()
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().expect("a timestamp")
}

/// Something a test task did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A run began; `done` units were already done by earlier runs of the same logical run.
    Started {
        job: String,
        at: Timestamp,
        done: u64,
    },
    Unit {
        job: String,
        at: Timestamp,
    },
    /// The task returned by itself.
    Returned {
        job: String,
        at: Timestamp,
        outcome: Outcome,
    },
    /// The task's future was dropped (after returning, or cancelled).
    Dropped {
        job: String,
        at: Timestamp,
    },
}

/// A shared log of events, and the wall clock to stamp drops with.
#[derive(Clone)]
pub struct Probe {
    events: Arc<Mutex<Vec<Event>>>,
    clock: TokioClock,
}

impl Probe {
    fn push(&self, e: Event) {
        self.events.lock().unwrap().push(e);
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn starts(&self, job: &str) -> Vec<(Timestamp, u64)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Started { job: j, at, done } if j == job => Some((at, done)),
                _ => None,
            })
            .collect()
    }

    pub fn units(&self, job: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, Event::Unit { job: j, .. } if j == job))
            .count()
    }

    pub fn returns(&self, job: &str) -> Vec<(Timestamp, Outcome)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Returned {
                    job: j,
                    at,
                    outcome,
                } if j == job => Some((at, outcome)),
                _ => None,
            })
            .collect()
    }

    pub fn drops(&self, job: &str) -> Vec<Timestamp> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Dropped { job: j, at } if j == job => Some(at),
                _ => None,
            })
            .collect()
    }
}

/// Records when the task's future is dropped.
struct DropStamp {
    job: String,
    probe: Probe,
}

impl Drop for DropStamp {
    fn drop(&mut self) {
        self.probe.push(Event::Dropped {
            job: self.job.clone(),
            at: self.probe.clock.now(),
        });
    }
}

fn param(job: &JobConfig, key: &str) -> Option<String> {
    job.params.texts().get(key).cloned()
}

/// Counts `units` units of work, one per [`UNIT`] of tokio time, keeping its place in its sled
/// tree so a stopped run resumes where it left off.
struct Counting {
    units: u64,
    probe: Probe,
}

const DONE: &str = "done";

fn read_u64(tree: &sled::Tree, key: &str) -> Result<u64, TaskError> {
    Ok(tree
        .get(key)?
        .map(|v| u64::from_be_bytes(v.as_ref().try_into().expect("8 bytes")))
        .unwrap_or(0))
}

#[async_trait]
impl Task for Counting {
    async fn run(&mut self, ctx: &TaskContext) -> Result<Outcome, TaskError> {
        let job = ctx.job_id().to_string();
        let _stamp = DropStamp {
            job: job.clone(),
            probe: self.probe.clone(),
        };
        let tree = ctx.store();
        let mut done = read_u64(tree, DONE)?;
        self.probe.push(Event::Started {
            job: job.clone(),
            at: ctx.now(),
            done,
        });
        ctx.progress().set("units", done);
        ctx.progress().set_label("pace", "one unit a second");
        let outcome = loop {
            if done >= self.units {
                tree.remove(DONE)?;
                break Outcome::Completed;
            }
            tokio::select! {
                _ = ctx.stop().stopped() => break Outcome::StoppedEarly,
                _ = tokio::time::sleep(UNIT) => {}
            }
            done += 1;
            tree.insert(DONE, &done.to_be_bytes())?;
            ctx.progress().add("units", 1);
            self.probe.push(Event::Unit {
                job: job.clone(),
                at: ctx.now(),
            });
        };
        self.probe.push(Event::Returned {
            job,
            at: ctx.now(),
            outcome,
        });
        Ok(outcome)
    }
}

/// Ignores its stop signal: works for ten hours whatever happens.
struct Stubborn {
    probe: Probe,
}

#[async_trait]
impl Task for Stubborn {
    async fn run(&mut self, ctx: &TaskContext) -> Result<Outcome, TaskError> {
        let job = ctx.job_id().to_string();
        let _stamp = DropStamp {
            job: job.clone(),
            probe: self.probe.clone(),
        };
        self.probe.push(Event::Started {
            job,
            at: ctx.now(),
            done: 0,
        });
        tokio::time::sleep(10 * HOUR).await;
        Ok(Outcome::Completed)
    }
}

/// Fails (by panicking, or by returning an error with `mode = err`) while its shared counter of
/// failures is above zero, then completes at once.
struct Flaky {
    failures_left: Arc<AtomicU32>,
    panic: bool,
    probe: Probe,
}

#[async_trait]
impl Task for Flaky {
    async fn run(&mut self, ctx: &TaskContext) -> Result<Outcome, TaskError> {
        self.probe.push(Event::Started {
            job: ctx.job_id().to_string(),
            at: ctx.now(),
            done: 0,
        });
        let left = self.failures_left.load(Ordering::SeqCst);
        if left > 0 {
            self.failures_left.store(left - 1, Ordering::SeqCst);
            if self.panic {
                panic!("flaky task panicked on purpose");
            }
            return Err(TaskError::Failed("flaky task failed on purpose".into()));
        }
        Ok(Outcome::Completed)
    }
}

/// Moves bytes as fast as the budget lets it, `chunk` bytes (default 1024) per acquisition,
/// until it is stopped; logs each grant in the harness's [`Meter`]. Give it a limit: unlimited,
/// it keeps the paused clock from ever advancing.
struct Feed {
    chunk: u64,
    meter: Meter,
    probe: Probe,
}

#[async_trait]
impl Task for Feed {
    async fn run(&mut self, ctx: &TaskContext) -> Result<Outcome, TaskError> {
        let job = ctx.job_id().to_string();
        let _stamp = DropStamp {
            job: job.clone(),
            probe: self.probe.clone(),
        };
        self.probe.push(Event::Started {
            job: job.clone(),
            at: ctx.now(),
            done: 0,
        });
        while ctx.acquire(ByteRequest::upload(self.chunk)).await.is_ok() {
            self.meter.record(&job, ctx.now(), self.chunk);
            // As a real transfer would: without a limit, the grant above never waits, and a
            // loop that never yields would starve everything else on the test's one thread.
            tokio::task::yield_now().await;
        }
        self.probe.push(Event::Returned {
            job,
            at: ctx.now(),
            outcome: Outcome::StoppedEarly,
        });
        Ok(Outcome::StoppedEarly)
    }
}

/// Pretends to keep a core busy: burns 100 ms of (fake) CPU time per 100 ms of tokio time, with
/// a CPU checkpoint after each step, until it is stopped.
struct Burn {
    cpu: FakeCpu,
}

/// One busy step of [`Burn`].
pub const BURN_STEP: Duration = Duration::from_millis(100);

#[async_trait]
impl Task for Burn {
    async fn run(&mut self, ctx: &TaskContext) -> Result<Outcome, TaskError> {
        loop {
            tokio::select! {
                _ = ctx.stop().stopped() => return Ok(Outcome::StoppedEarly),
                _ = tokio::time::sleep(BURN_STEP) => {}
            }
            *self.cpu.used.lock().unwrap() += BURN_STEP;
            if ctx.cpu_checkpoint().await.is_err() {
                return Ok(Outcome::StoppedEarly);
            }
        }
    }
}

/// Bytes the feed tasks were let through: (job, when, bytes).
#[derive(Clone, Default)]
pub struct Meter(Arc<Mutex<Vec<(String, Timestamp, u64)>>>);

impl Meter {
    fn record(&self, job: &str, at: Timestamp, bytes: u64) {
        self.0.lock().unwrap().push((job.to_string(), at, bytes));
    }

    /// Bytes `job` was let through in `(from, to]`.
    pub fn bytes(&self, job: &str, from: Timestamp, to: Timestamp) -> u64 {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(j, at, _)| j == job && *at > from && *at <= to)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// The average rate of `job` over `(from, to]`, bytes per second.
    pub fn rate(&self, job: &str, from: Timestamp, to: Timestamp) -> f64 {
        self.bytes(job, from, to) as f64 / secs(from, to)
    }
}

/// A CPU time source the [`Burn`] task drives; counts how often the governor reads it.
#[derive(Clone, Default)]
pub struct FakeCpu {
    pub used: Arc<Mutex<Duration>>,
    pub reads: Arc<AtomicU64>,
}

impl CpuSource for FakeCpu {
    fn cumulative(&mut self) -> Result<Duration, CpuError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(*self.used.lock().unwrap())
    }
}

/// Asserts that `rate` is within `percent` % of `limit`.
pub fn assert_near(rate: f64, limit: u64, percent: f64) {
    let off = (rate - limit as f64).abs() / limit as f64 * 100.0;
    assert!(
        off <= percent,
        "{rate:.0} B/s is {off:.1} % off {limit} B/s"
    );
}

/// One test's world: a temp state dir, a wall clock following tokio's, and a probe.
pub struct Harness {
    pub dir: TempDir,
    pub clock: TokioClock,
    pub probe: Probe,
    pub zone: String,
    /// Failures left for each flaky job, by job id.
    pub flaky: Arc<Mutex<BTreeMap<String, Arc<AtomicU32>>>>,
    /// What the feed tasks were let through.
    pub meter: Meter,
    /// The CPU time the burn tasks used.
    pub cpu: FakeCpu,
}

impl Harness {
    /// Must be called inside [`run_paused`].
    pub fn new(start: Timestamp, zone: &str) -> Harness {
        let clock = TokioClock::new(start);
        Harness {
            dir: tempfile::tempdir().expect("a temp dir"),
            probe: Probe {
                events: Arc::default(),
                clock: clock.clone(),
            },
            clock,
            zone: zone.to_string(),
            flaky: Arc::default(),
            meter: Meter::default(),
            cpu: FakeCpu::default(),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn state_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    /// Sets how many times flaky job `id` fails before it completes.
    pub fn set_failures(&self, id: &str, n: u32) {
        self.flaky
            .lock()
            .unwrap()
            .insert(id.to_string(), Arc::new(AtomicU32::new(n)));
    }

    pub fn registry(&self) -> Registry {
        let mut registry = Registry::new();
        let probe = self.probe.clone();
        registry.register_free_form("count", move |job| {
            let units = param(job, "units")
                .ok_or_else(|| TaskError::Config("units is missing".into()))?
                .parse()
                .map_err(|_| TaskError::Config("units is not a number".into()))?;
            Ok(Box::new(Counting {
                units,
                probe: probe.clone(),
            }))
        });
        let probe = self.probe.clone();
        registry.register_free_form("stubborn", move |_| {
            Ok(Box::new(Stubborn {
                probe: probe.clone(),
            }))
        });
        let probe = self.probe.clone();
        let flaky = self.flaky.clone();
        registry.register_free_form("flaky", move |job| {
            let failures_left = flaky.lock().unwrap().entry(job.id()).or_default().clone();
            Ok(Box::new(Flaky {
                failures_left,
                panic: param(job, "mode").as_deref() != Some("err"),
                probe: probe.clone(),
            }))
        });
        let probe = self.probe.clone();
        let meter = self.meter.clone();
        registry.register_free_form("feed", move |job| {
            let chunk = match param(job, "chunk") {
                Some(c) => c
                    .parse()
                    .map_err(|_| TaskError::Config("chunk is not a number".into()))?,
                None => 1024,
            };
            Ok(Box::new(Feed {
                chunk,
                meter: meter.clone(),
                probe: probe.clone(),
            }))
        });
        let cpu = self.cpu.clone();
        registry.register_free_form("burn", move |_| Ok(Box::new(Burn { cpu: cpu.clone() })));
        registry
    }

    pub fn start(&self, jobs: Vec<JobConfig>) -> Result<EngineHandle, EngineError> {
        self.start_with(jobs, BudgetSettings::default())
    }

    /// Starts with these `[budget]` settings, and CPU time read from [`Harness::cpu`].
    pub fn start_with(
        &self,
        jobs: Vec<JobConfig>,
        budget: BudgetSettings,
    ) -> Result<EngineHandle, EngineError> {
        self.start_enforced(jobs, budget, Enforcement::default())
    }

    /// Starts with these `[budget]` settings and enforcement; CPU time is read from
    /// [`Harness::cpu`] unless `enforcement` says otherwise.
    pub fn start_enforced(
        &self,
        jobs: Vec<JobConfig>,
        budget: BudgetSettings,
        mut enforcement: Enforcement,
    ) -> Result<EngineHandle, EngineError> {
        if enforcement.cpu_source.is_none() {
            enforcement.cpu_source = Some(Box::new(self.cpu.clone()));
        }
        Engine::start(EngineOptions {
            state_dir: self.state_dir(),
            timezone: TimeZone::get(&self.zone).expect("a zone"),
            clock: Arc::new(self.clock.clone()),
            registry: self.registry(),
            jobs,
            budget,
            enforcement,
            task_runtime: tahoe_jobs_engine::TaskRuntime::current(),
            cache_size: tahoe_jobs_config::DEFAULT_CACHE_SIZE,
        })
    }
}

/// A job of a test task type.
pub fn job(task_type: &str, name: &str, windows: &str, frequency: Duration) -> JobConfig {
    JobConfig {
        task_type: task_type.to_string(),
        name: name.to_string(),
        schedule: Schedule {
            frequency,
            allowed_times: windows.parse().expect("windows"),
            enabled: true,
            overdue_after: None,
            after: Vec::new(),
        },
        limits: JobLimits {
            bandwidth: RateSchedule::unlimited(),
            cpu: CpuShare::UNLIMITED,
        },
        params: TaskParams::none(),
    }
}

/// A counting job of `units` units.
pub fn counting(name: &str, windows: &str, frequency: Duration, units: u64) -> JobConfig {
    with_param(
        job("count", name, windows, frequency),
        "units",
        &units.to_string(),
    )
}

/// A feed job with its own `bandwidth` (`off` for none).
pub fn feeding(name: &str, bandwidth: &str) -> JobConfig {
    let mut job = job("feed", name, "", DAY);
    job.limits.bandwidth = bandwidth.parse().expect("a rate schedule");
    job
}

/// `[budget]` with this `upload` schedule and nothing else.
pub fn upload_budget(upload: &str) -> BudgetSettings {
    BudgetSettings {
        upload: upload.parse().expect("a rate schedule"),
        ..BudgetSettings::default()
    }
}

pub fn with_param(mut job: JobConfig, key: &str, value: &str) -> JobConfig {
    job.params
        .texts_mut()
        .insert(key.to_string(), value.to_string());
    job
}

pub async fn job_status(handle: &EngineHandle, id: &str) -> JobStatus {
    handle
        .status()
        .await
        .expect("status")
        .job(id)
        .cloned()
        .unwrap_or_else(|| panic!("no job {id} in the status"))
}

pub async fn state_of(handle: &EngineHandle, id: &str) -> StateKind {
    job_status(handle, id).await.state.kind
}

/// The seconds from `a` to `b`, as a float.
pub fn secs(a: Timestamp, b: Timestamp) -> f64 {
    b.duration_since(a).as_secs_f64()
}

/// `t` plus `d`.
pub fn after(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(jiff::SignedDuration::try_from(d).expect("fits"))
        .expect("in range")
}

pub fn secs_d(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Lets simulated time pass until the wall clock reads `t`.
pub async fn pass_until(h: &Harness, t: Timestamp) {
    let d = t.duration_since(h.now());
    assert!(!d.is_negative(), "{t} is in the past");
    pass(Duration::try_from(d).expect("fits")).await;
}
