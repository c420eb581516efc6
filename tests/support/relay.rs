//! `scripts/lib/relay.py` in front of a test grid's storage nodes (see
//! [`super::grid::Grid::start_with_relay`]): it delays each direction by a fixed time without
//! limiting throughput, and counts the bytes each storage node receives ("up"), so a test can
//! count what a client sent to the servers, wherever it came from.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::grid::spawn_tied_to_us;

/// How long the relay may take to start, or to answer a request for its counts.
const RELAY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running relay; stopped by its grid.
pub struct Relay {
    dir: PathBuf,
    stats: PathBuf,
    /// The ports it listens on, in storage node order.
    listen: Vec<u16>,
    process: Mutex<Option<Child>>,
}

/// The relay's counts, per storage node (in node order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayCounts {
    /// Bytes each storage node received from its clients.
    pub up: Vec<u64>,
    /// Bytes each storage node sent to its clients.
    pub down: Vec<u64>,
    serial: u64,
}

impl RelayCounts {
    /// Bytes all storage nodes received.
    pub fn total_up(&self) -> u64 {
        self.up.iter().sum()
    }
}

impl Relay {
    /// Starts `relay.py` in `dir` for `(listen, target)` port pairs and waits until it listens.
    pub(super) fn start(dir: &Path, pairs: &[(u16, u16)], delay_ms: u32) -> Result<Relay, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let stats = dir.join("stats.json");
        let log = fs::File::create(dir.join("relay.log"))
            .map_err(|e| format!("cannot create the relay's log: {e}"))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("cannot clone a log handle: {e}"))?;
        let mut cmd = Command::new(root.join(".venv/bin/python"));
        cmd.arg(root.join("scripts/lib/relay.py"))
            .arg("--delay-ms")
            .arg(delay_ms.to_string())
            // The stats path names the directory, so a later run's reaper finds the process.
            .arg("--stats")
            .arg(&stats)
            .args(pairs.iter().map(|(l, t)| format!("{l}:{t}")))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = spawn_tied_to_us(cmd).map_err(|e| format!("cannot start relay.py: {e}"))?;
        let _ = fs::write(dir.join("harness.pid"), child.id().to_string());
        let relay = Relay {
            dir: dir.to_path_buf(),
            stats,
            listen: pairs.iter().map(|(l, _)| *l).collect(),
            process: Mutex::new(Some(child)),
        };
        // The stats file is written once every port listens.
        relay.wait_for("the relay to listen", |_| true)?;
        Ok(relay)
    }

    /// The counts as last written: up to 0.2 s behind while bytes flow. Good for deciding when
    /// something happened; [`Relay::counts`] for a total.
    pub fn latest(&self) -> RelayCounts {
        self.read()
            .unwrap_or_else(|e| panic!("cannot read the relay's counts: {e}"))
    }

    /// The counts now: asks the relay to write them (SIGUSR1) and waits until it did, so that
    /// every byte it delivered before this call is in them.
    pub fn counts(&self) -> RelayCounts {
        // The file read first may be followed by a write whose counts were taken just before
        // this call; the write after that one began after it, so wait for two.
        let first = self.latest().serial;
        let mut counts = None;
        for n in 1..=2 {
            self.signal(libc::SIGUSR1);
            counts = Some(
                self.wait_for("the relay to write its counts", |c| c.serial >= first + n)
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
        counts.expect("two writes")
    }

    fn signal(&self, sig: libc::c_int) {
        let mut slot = self.process.lock().unwrap_or_else(|e| e.into_inner());
        let child = slot.as_mut().expect("the relay runs");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the relay exited ({status}): {}", self.log_tail());
        }
        // SAFETY: plain syscall on our own child, not yet reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, sig);
        }
    }

    /// Stops the relay (SIGTERM, then SIGKILL).
    pub(super) fn stop(&self) {
        let mut slot = self.process.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut child) = slot.take() else { return };
        // SAFETY: plain syscall on our own child, not yet reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn wait_for(
        &self,
        what: &str,
        done: impl Fn(&RelayCounts) -> bool,
    ) -> Result<RelayCounts, String> {
        let deadline = Instant::now() + RELAY_TIMEOUT;
        loop {
            if let Ok(counts) = self.read() {
                if done(&counts) {
                    return Ok(counts);
                }
            }
            {
                let mut slot = self.process.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(Ok(Some(status))) = slot.as_mut().map(Child::try_wait) {
                    return Err(format!(
                        "while waiting for {what}: the relay exited ({status}): {}",
                        self.log_tail()
                    ));
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "timed out after {}s waiting for {what} ({})",
                    RELAY_TIMEOUT.as_secs(),
                    self.dir.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn read(&self) -> Result<RelayCounts, String> {
        let text = fs::read_to_string(&self.stats).map_err(|e| e.to_string())?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let field = |port: u16, key: &str| json["pairs"][port.to_string()][key].as_u64();
        let per_node = |key: &str| -> Result<Vec<u64>, String> {
            self.listen
                .iter()
                .map(|&p| field(p, key).ok_or_else(|| format!("no {key} for port {p}")))
                .collect()
        };
        Ok(RelayCounts {
            up: per_node("up")?,
            down: per_node("down")?,
            serial: json["serial"].as_u64().ok_or("no serial")?,
        })
    }

    fn log_tail(&self) -> String {
        fs::read_to_string(self.dir.join("relay.log")).unwrap_or_default()
    }
}
