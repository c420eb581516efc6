//! Contradictions in the configuration are reported when it is loaded, by `tahoe-jobs config`
//! and by `tahoe-jobs run` before it starts anything, each naming the file, line and key: not
//! discovered at 3 a.m. when the job should have run. (The parsers themselves are fuzzed by the
//! property tests in config/tests/parsers_never_panic.rs.)

use std::path::Path;
use std::process::{Output, Stdio};

use crate::support::daemon::free_port;
use crate::support::process::tahoe_jobs_command;

fn tahoe_jobs(node: &Path, args: &[&str]) -> Output {
    tahoe_jobs_command()
        .arg("-d")
        .arg(node)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run tahoe-jobs")
}

/// `tahoe-jobs config` and `tahoe-jobs run` on a job file holding `job_lines` below
/// `[backup]`: their exit codes and stderr.
fn load(job_lines: &str) -> [(Option<i32>, String); 2] {
    let tmp = tempfile::tempdir().unwrap();
    let node = tmp.path().join("node");
    std::fs::create_dir_all(&node).unwrap();
    std::fs::write(
        node.join("tahoe-jobs.cfg"),
        format!(
            "[backup]\nb1.source = {}\nb1.target = a:b\n{job_lines}",
            tmp.path().display()
        ),
    )
    .unwrap();
    let config = tahoe_jobs(&node, &["config"]);
    let port = format!("jobs.web.port=127.0.0.1:{}", free_port());
    let state = format!("jobs.state_dir={}", tmp.path().join("state").display());
    // Only invalid files are given to `run`, which must refuse them at once.
    let run = if config.status.success() {
        (Some(0), String::new())
    } else {
        let out = tahoe_jobs(&node, &["--set", &port, "--set", &state, "run"]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    [
        (
            config.status.code(),
            String::from_utf8_lossy(&config.stderr).into_owned(),
        ),
        run,
    ]
}

fn assert_refused(job_lines: &str, key: &str, why: &str) {
    for (what, (code, stderr)) in ["config", "run"].iter().zip(load(job_lines)) {
        assert_eq!(
            code,
            Some(1),
            "`tahoe-jobs {what}` accepted {job_lines:?}: {stderr}"
        );
        assert!(
            stderr.contains("tahoe-jobs.cfg line 4")
                && stderr.contains(key)
                && stderr.contains(why),
            "`tahoe-jobs {what}` on {job_lines:?} does not say {key} / {why:?}:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn contradictions_are_reported_at_start_naming_the_key() {
    // A frequency of nothing (the job would run continuously), or less than nothing.
    assert_refused(
        "b1.frequency = 0s\n",
        "backup.b1.frequency",
        "a duration of zero",
    );
    assert_refused(
        "b1.frequency = 0min\n",
        "backup.b1.frequency",
        "a duration of zero",
    );
    assert_refused(
        "b1.frequency = -1d\n",
        "backup.b1.frequency",
        "expected a duration",
    );
    // Windows that cannot open.
    assert_refused(
        "b1.allowed_times = 1200-1200\n",
        "backup.b1.allowed_times",
        "starts and ends at the same time",
    );
    assert_refused(
        "b1.allowed_times = 2500-0100\n",
        "backup.b1.allowed_times",
        "hour 25 is out of range",
    );
    // A percentage of a total that is not set.
    assert_refused(
        "b1.bandwidth = 50%\n",
        "backup.b1.bandwidth",
        "a percentage needs a total",
    );
    // Never opening on purpose is allowed, with a warning at start.
    let [(code, stderr), _] = load("b1.allowed_times = none\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: backup.b1.allowed_times = none: the job never starts by itself"),
        "{stderr}"
    );
}
