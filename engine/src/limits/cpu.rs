//! A duty-cycle CPU governor: watch the cumulative CPU time of a set of processes and, at a
//! checkpoint, tell the caller how long to pause so that their share over a rolling window stays
//! under the limit (as Duplicati's `--cpu-intensity` and Garage's tranquility do).
//!
//! The share counts all the watched processes together (100% = one core, systemd's convention),
//! because the work a task asks for is largely done by the other process (the store's node
//! encoding and hashing) and a share per process would let the pair use twice the limit.
//!
//! The arithmetic ([`pause_needed`]) is a pure function of samples; reading `/proc` is separate
//! ([`ProcStat`]) so tests can feed samples directly.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

/// How far back the governor looks.
pub const CPU_WINDOW: Duration = Duration::from_secs(10);

/// The longest single pause: long pauses would make the task deaf to a raised limit and give a
/// jerky progress display; the next checkpoint pauses again if needed.
pub const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Samples closer together than this reuse the last reading: checkpoints may come once per small
/// file, and reading `/proc` thousands of times a second would itself cost CPU.
pub const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(50);

/// Why CPU time could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// A `/proc/<pid>/stat` file could not be read.
    #[error("cannot read {path}: {source} (is the process still running?)")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `/proc/<pid>/stat` file does not hold the fields expected.
    #[error("{path} has an unexpected format: {reason}")]
    Parse {
        /// The file that was read.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Cumulative CPU time of the watched processes at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSample {
    /// When the sample was taken.
    pub at: Instant,
    /// CPU time (user + system) the processes had used by then.
    pub cpu: Duration,
}

/// How long to pause so that the CPU share over the samples' span stays at most `limit` (a
/// fraction of one core), assuming the processes use no CPU while paused. `samples` run oldest
/// first; `now` is the current instant, and is taken as the end of the window.
///
/// Over the span from the oldest sample to `now` the processes used `used` seconds of CPU in
/// `elapsed` seconds; pausing `p` brings the share to used / (elapsed + p), so
/// p = used / limit - elapsed.
pub fn pause_needed(samples: &[CpuSample], now: Instant, limit: f64) -> Duration {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Duration::ZERO;
    };
    if !limit.is_finite() || limit <= 0.0 {
        return Duration::ZERO;
    }
    let used = last.cpu.saturating_sub(first.cpu).as_secs_f64();
    let elapsed = now.saturating_duration_since(first.at).as_secs_f64();
    let pause = used / limit - elapsed;
    if pause <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(pause).min(MAX_PAUSE)
    }
}

/// Where cumulative CPU time comes from.
pub trait CpuSource: Send + 'static {
    /// Total CPU time (user + system) used so far by the watched processes.
    fn cumulative(&mut self) -> Result<Duration, CpuError>;
}

/// Reads `/proc/<pid>/stat` for each pid and sums utime + stime.
#[derive(Debug, Clone)]
pub struct ProcStat {
    pids: Vec<u32>,
    ticks_per_second: u64,
}

impl ProcStat {
    /// Watches the processes with these ids.
    pub fn new(pids: Vec<u32>) -> Self {
        ProcStat {
            pids,
            ticks_per_second: clock_ticks_per_second(),
        }
    }

    /// This process alone.
    pub fn this_process() -> Self {
        Self::new(vec![std::process::id()])
    }

    /// The ids of the watched processes.
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }
}

impl CpuSource for ProcStat {
    fn cumulative(&mut self) -> Result<Duration, CpuError> {
        let mut ticks = 0u64;
        for pid in &self.pids {
            let path = PathBuf::from(format!("/proc/{pid}/stat"));
            let text = std::fs::read_to_string(&path).map_err(|source| CpuError::Read {
                path: path.clone(),
                source,
            })?;
            ticks += parse_stat_ticks(&text).map_err(|reason| CpuError::Parse { path, reason })?;
        }
        Ok(Duration::from_secs_f64(
            ticks as f64 / self.ticks_per_second as f64,
        ))
    }
}

/// utime + stime, in clock ticks, from the text of `/proc/<pid>/stat`.
pub fn parse_stat_ticks(text: &str) -> Result<u64, String> {
    // The command name (field 2) is in parentheses and may itself hold spaces and ')': the
    // fields after it start after the last ')'.
    let close = text
        .rfind(')')
        .ok_or_else(|| "no closing parenthesis after the command name".to_string())?;
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // After the name: state is field 3, so utime (field 14) and stime (15) are at 11 and 12.
    let field = |i: usize, name: &str| -> Result<u64, String> {
        rest.get(i)
            .ok_or_else(|| format!("{name} is missing"))?
            .parse::<u64>()
            .map_err(|_| format!("{name} is not a number"))
    };
    Ok(field(11, "utime")? + field(12, "stime")?)
}

/// The kernel's clock ticks per second for `/proc` times.
pub fn clock_ticks_per_second() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if t > 0 {
            return t as u64;
        }
    }
    // USER_HZ is 100 on every mainstream Linux build.
    100
}

/// Keeps a rolling window of samples and answers "how long to pause now".
pub struct CpuGovernor {
    source: Box<dyn CpuSource>,
    samples: VecDeque<CpuSample>,
    window: Duration,
    /// The last read error, for the status; the governor then stops pausing rather than stall
    /// every job because a process exited.
    last_error: Option<String>,
}

impl std::fmt::Debug for CpuGovernor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuGovernor")
            .field("samples", &self.samples.len())
            .field("window", &self.window)
            .field("last_error", &self.last_error)
            .finish()
    }
}

impl CpuGovernor {
    /// A governor over `source`, looking back `CPU_WINDOW`.
    pub fn new(source: Box<dyn CpuSource>) -> Self {
        Self::with_window(source, CPU_WINDOW)
    }

    /// A governor over `source`, looking back `window`.
    pub fn with_window(source: Box<dyn CpuSource>, window: Duration) -> Self {
        CpuGovernor {
            source,
            samples: VecDeque::new(),
            window,
            last_error: None,
        }
    }

    /// Watches another set of processes (the node restarted, say); the window starts afresh.
    pub fn set_source(&mut self, source: Box<dyn CpuSource>) {
        self.source = source;
        self.samples.clear();
        self.last_error = None;
    }

    /// Takes a sample if the last one is old enough, then returns the pause that keeps the
    /// share at most `limit` (fraction of one core).
    pub fn checkpoint(&mut self, limit: f64) -> Duration {
        let now = Instant::now();
        self.sample(now);
        let samples: Vec<CpuSample> = self.samples.iter().copied().collect();
        pause_needed(&samples, now, limit)
    }

    /// The share used over the window, as a fraction of one core.
    pub fn recent_share(&self) -> Option<f64> {
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let elapsed = last.at.saturating_duration_since(first.at).as_secs_f64();
        (elapsed > 0.0).then(|| last.cpu.saturating_sub(first.cpu).as_secs_f64() / elapsed)
    }

    /// The last error reading CPU time, if the last read failed; the governor does not pause meanwhile.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    fn sample(&mut self, now: Instant) {
        if let Some(last) = self.samples.back() {
            if now.saturating_duration_since(last.at) < MIN_SAMPLE_INTERVAL {
                return;
            }
        }
        match self.source.cumulative() {
            Ok(cpu) => {
                self.last_error = None;
                if self.samples.back().is_some_and(|last| cpu < last.cpu) {
                    // A watched process was replaced: its successor's time starts from zero.
                    self.samples.clear();
                }
                self.samples.push_back(CpuSample { at: now, cpu });
            }
            Err(e) => {
                self.last_error = Some(e.to_string());
                self.samples.clear();
            }
        }
        // Keep one sample at or before the window's start so the span covers the whole window.
        while self.samples.len() > 2
            && now.saturating_duration_since(self.samples[1].at) >= self.window
        {
            self.samples.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn s(at: Instant, cpu_ms: u64) -> CpuSample {
        CpuSample {
            at,
            cpu: Duration::from_millis(cpu_ms),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_pause_under_the_limit() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(10);
        // 2 s of CPU in 10 s = 20%, limit 25%.
        assert_eq!(
            pause_needed(&[s(t0, 0), s(t1, 2_000)], t1, 0.25),
            Duration::ZERO
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pause_brings_the_share_down_to_the_limit() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(4);
        // 2 s of CPU in 4 s = 50%; at 25% the 2 s must spread over 8 s: pause 4 s, capped.
        assert_eq!(pause_needed(&[s(t0, 0), s(t1, 2_000)], t1, 0.25), MAX_PAUSE);
        // 1.2 s in 4 s at 25%: spread over 4.8 s, pause 0.8 s.
        let p = pause_needed(&[s(t0, 0), s(t1, 1_200)], t1, 0.25);
        assert!((p.as_secs_f64() - 0.8).abs() < 1e-6, "{p:?}");
        // Time since the last sample counts as idle.
        let later = t1 + Duration::from_millis(500);
        let p = pause_needed(&[s(t0, 0), s(t1, 1_200)], later, 0.25);
        assert!((p.as_secs_f64() - 0.3).abs() < 1e-6, "{p:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn multi_core_limits_and_degenerate_input() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        // 1.5 cores for a second, limit 200%: fine.
        assert_eq!(
            pause_needed(&[s(t0, 0), s(t1, 1_500)], t1, 2.0),
            Duration::ZERO
        );
        assert_eq!(pause_needed(&[], t1, 0.25), Duration::ZERO);
        assert_eq!(
            pause_needed(&[s(t0, 0), s(t1, 900)], t1, 0.0),
            Duration::ZERO
        );
        assert_eq!(
            pause_needed(&[s(t0, 0), s(t1, 900)], t1, f64::NAN),
            Duration::ZERO
        );
    }

    #[test]
    fn parses_proc_stat_even_with_odd_command_names() {
        let line = "4242 (tahoe (node) x) S 1 4242 4242 0 -1 4194560 12345 0 0 0 \
                    250 75 0 0 20 0 3 0 1234567 123456789 4567 18446744073709551615";
        assert_eq!(parse_stat_ticks(line), Ok(325));
        assert!(parse_stat_ticks("garbage").is_err());
        assert!(parse_stat_ticks("1 (x) S 1 2").is_err());
    }

    #[test]
    fn reads_this_process() {
        let mut p = ProcStat::this_process();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(p.cumulative().is_ok());
        }
        let mut gone = ProcStat::new(vec![u32::MAX]);
        assert!(matches!(gone.cumulative(), Err(CpuError::Read { .. })));
        assert!(clock_ticks_per_second() > 0);
    }

    /// A source whose CPU time the test moves by hand.
    #[derive(Clone)]
    struct Fake(Arc<Mutex<Result<Duration, ()>>>);

    impl CpuSource for Fake {
        fn cumulative(&mut self) -> Result<Duration, CpuError> {
            self.0.lock().unwrap().map_err(|_| CpuError::Parse {
                path: "/fake".into(),
                reason: "gone".into(),
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn governor_holds_a_busy_loop_to_its_share() {
        let cpu = Arc::new(Mutex::new(Ok(Duration::ZERO)));
        let mut g = CpuGovernor::new(Box::new(Fake(cpu.clone())));
        let start = Instant::now();
        let mut used = Duration::ZERO;
        // A task that burns 100 ms of CPU per step, pausing as told; limit 25%.
        for _ in 0..300 {
            tokio::time::advance(Duration::from_millis(100)).await;
            used += Duration::from_millis(100);
            *cpu.lock().unwrap() = Ok(used);
            let p = g.checkpoint(0.25);
            tokio::time::sleep(p).await;
        }
        let share = used.as_secs_f64() / start.elapsed().as_secs_f64();
        assert!((share - 0.25).abs() < 0.02, "{share}");
        let recent = g.recent_share().unwrap();
        assert!((recent - 0.25).abs() < 0.05, "{recent}");
    }

    #[tokio::test(start_paused = true)]
    async fn governor_stops_pausing_when_it_cannot_read() {
        let cpu = Arc::new(Mutex::new(Ok(Duration::ZERO)));
        let mut g = CpuGovernor::new(Box::new(Fake(cpu.clone())));
        g.checkpoint(0.1);
        tokio::time::advance(Duration::from_secs(1)).await;
        *cpu.lock().unwrap() = Err(());
        assert_eq!(g.checkpoint(0.1), Duration::ZERO);
        assert!(g.last_error().unwrap().contains("gone"));
        // A process restart (time going backwards) restarts the window instead of pausing.
        *cpu.lock().unwrap() = Ok(Duration::from_secs(50));
        tokio::time::advance(Duration::from_secs(1)).await;
        g.checkpoint(0.1);
        *cpu.lock().unwrap() = Ok(Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(g.checkpoint(0.1), Duration::ZERO);
        assert!(g.last_error().is_none());
    }
}
