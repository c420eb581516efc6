//! Running things from a test: the `tahoe-jobs` binary under test, a tokio runtime for the
//! async APIs, and a process's output as text.

use std::ffi::OsStr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A command for the `tahoe-jobs` binary this test build made.
pub fn tahoe_jobs_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tahoe-jobs"))
}

/// A two-worker runtime, as the daemon would run tasks on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `bytes` (a process's stdout or stderr) as text, invalid UTF-8 replaced.
pub fn lossy_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A command's exit code, stdout and stderr, for assertion messages.
pub fn describe_output(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Returns once the wall clock's second differs from the one this was called in. Tahoe names
/// Archives and stamps leases by the second, so two of them that must differ need two seconds:
/// this waits for that event (at most a second, polled) instead of sleeping a fixed time.
pub fn wait_for_the_next_second() {
    let second = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs()
    };
    let start = second();
    while second() == start {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `s` as a command argument, for argument lists that mix strings and paths.
pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// A name part no other call in this test process returns (the pid and a counter).
pub fn unique_name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
