//! Running one hook command: `sh -c COMMAND` with the event's variables, no input, its output
//! captured (and logged), killed with its whole process group when it outlasts its time limit.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tracing::{info, warn};

use crate::web::redact::hide_caps;

/// How much of each output stream is kept for the log; the rest is read and dropped, so a
/// chatty hook can neither fill the daemon's memory nor block on a full pipe.
pub const OUTPUT_LIMIT: usize = 16 * 1024;
/// At most this many lines of each stream are logged.
pub const LOGGED_LINES: usize = 40;
/// After a kill, how long the output pipes may stay open (a grandchild that left the process
/// group can hold them) before the hook is given up on.
const AFTER_KILL: Duration = Duration::from_secs(2);

/// How a hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEnd {
    /// It exited with this code (0: success).
    Exited(i32),
    /// It was ended by this signal (not ours).
    Signalled(i32),
    /// It outlasted its time limit and was killed.
    TimedOut(Duration),
    /// It could not be started.
    NotStarted(String),
}

/// What a hook did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutcome {
    pub end: HookEnd,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl HookOutcome {
    pub fn succeeded(&self) -> bool {
        self.end == HookEnd::Exited(0)
    }
}

/// Runs `command` with `env` added to the daemon's environment, for at most `limit`.
pub async fn run(command: &str, env: &[(String, String)], limit: Duration) -> HookOutcome {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a time-out kills what the shell started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return HookOutcome {
                end: HookEnd::NotStarted(e.to_string()),
                stdout: Vec::new(),
                stderr: Vec::new(),
            }
        }
    };
    let pid = child.id();
    let stdout = tokio::spawn(read_capped(child.stdout.take()));
    let stderr = tokio::spawn(read_capped(child.stderr.take()));
    let end = match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) => end_of(status),
        Ok(Err(e)) => HookEnd::NotStarted(format!("cannot wait for it: {e}")),
        Err(_) => {
            if let Some(pid) = pid {
                kill_group(pid);
            }
            let _ = child.wait().await;
            HookEnd::TimedOut(limit)
        }
    };
    let collect = |task: tokio::task::JoinHandle<Vec<u8>>| async move {
        match tokio::time::timeout(AFTER_KILL, task).await {
            Ok(Ok(bytes)) => bytes,
            _ => Vec::new(),
        }
    };
    HookOutcome {
        end,
        stdout: collect(stdout).await,
        stderr: collect(stderr).await,
    }
}

fn end_of(status: ExitStatus) -> HookEnd {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => HookEnd::Exited(code),
        (None, Some(signal)) => HookEnd::Signalled(signal),
        (None, None) => HookEnd::Exited(-1),
    }
}

fn kill_group(pid: u32) {
    // SAFETY: kill(2) with a negative pid signals the process group the hook leads; it touches
    // no memory of ours.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
}

async fn read_capped(stream: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let Some(mut stream) = stream else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// The lines of a stream worth logging: at most [`LOGGED_LINES`], capabilities hidden, blank
/// lines left out, and a last line saying how many more there were.
pub fn log_lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out: Vec<String> = lines
        .iter()
        .take(LOGGED_LINES)
        .map(|l| hide_caps(l))
        .collect();
    if lines.len() > LOGGED_LINES {
        out.push(format!("({} more lines)", lines.len() - LOGGED_LINES));
    }
    out
}

/// A sentence about how the hook ended, for the log.
pub fn describe(end: &HookEnd) -> String {
    match end {
        HookEnd::Exited(0) => "succeeded".into(),
        HookEnd::Exited(code) => format!("failed with exit code {code}"),
        HookEnd::Signalled(signal) => format!("was ended by signal {signal}"),
        HookEnd::TimedOut(limit) => format!(
            "did not finish within {} and was killed ([jobs] hooks.timeout)",
            tahoe_jobs_config::HumanDuration(*limit)
        ),
        HookEnd::NotStarted(e) => format!("could not be started: {e}"),
    }
}

/// Logs how the hook ended and its output: info when it succeeded, warn otherwise.
pub fn report(job: &str, hook: &str, outcome: &HookOutcome) {
    for (stream, bytes) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
        for line in log_lines(bytes) {
            info!(job, hook, stream, "hook output: {line}");
        }
    }
    let what = describe(&outcome.end);
    if outcome.succeeded() {
        info!(job, hook, "hook {what}");
    } else {
        warn!(job, hook, "hook {what}; the job is not affected");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![("TAHOE_JOB_ID".into(), "backup.b1".into())]
    }

    #[tokio::test]
    async fn a_hook_sees_its_variables_and_its_output_and_exit_code_are_kept() {
        let out = run(
            "echo \"job=$TAHOE_JOB_ID\"; echo oops >&2; exit 3",
            &env(),
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(out.end, HookEnd::Exited(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "job=backup.b1\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
        assert!(!out.succeeded());
        assert!(run("true", &env(), Duration::from_secs(30))
            .await
            .succeeded());
    }

    #[tokio::test]
    async fn a_hook_that_hangs_is_killed_with_what_it_started() {
        // The shell starts a child that would hold the output pipe open for a minute: both are
        // killed at the limit and the output read so far is kept.
        let out = run(
            "echo started; sleep 60; echo never",
            &env(),
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(out.end, HookEnd::TimedOut(Duration::from_millis(300)));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
        assert!(describe(&out.end).contains("hooks.timeout"));
    }

    #[tokio::test]
    async fn a_chatty_hook_is_capped_and_a_missing_shell_word_is_a_failure() {
        let out = run(
            "yes tahoe | head -n 100000",
            &env(),
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(out.end, HookEnd::Exited(0));
        assert_eq!(out.stdout.len(), OUTPUT_LIMIT);
        let out = run("no-such-command-here", &env(), Duration::from_secs(30)).await;
        assert_eq!(out.end, HookEnd::Exited(127));
    }

    #[test]
    fn logged_lines_are_bounded_and_hide_capabilities() {
        let text: String = (0..50).map(|i| format!("line {i}\n")).collect();
        let lines = log_lines(text.as_bytes());
        assert_eq!(lines.len(), LOGGED_LINES + 1);
        assert_eq!(lines.last().unwrap(), "(10 more lines)");
        let lines = log_lines(b"cap URI:DIR2:aaaa:bbbb here\n\n");
        assert_eq!(lines, vec!["cap <capability> here".to_string()]);
    }
}
