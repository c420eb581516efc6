//! Hooks and notifications through the daemon on a real grid: a job that really fails (its
//! alias does not exist on the node) runs its `on_failure` script with the event's variables
//! and POSTs its event to `notify.url` (the receiver refuses the first POST, so it is retried);
//! a job that completes runs an `on_success` hook that hangs and is killed at `hooks.timeout`,
//! and one whose hook fails: both reported in the log, neither changing the job's outcome.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::daemon::Daemon;
use crate::support::files::write_file;
use crate::support::receiver::Receiver;
use crate::support::shared_grid;

const LIMIT: Duration = Duration::from_secs(180);

fn wait_for<T>(what: &str, d: &Daemon, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the daemon's log:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `KEY=VALUE` lines, as `env` prints them.
fn env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_failing_job_runs_its_on_failure_hook_and_posts_its_event_and_bad_hooks_change_nothing() {
    let grid = shared_grid();
    grid.create_alias("hk_ok");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for i in 0..3u8 {
        write_file(&src.join(format!("f{i}.txt")), &[b'a' + i; 1000]);
    }
    // One file per failure: the job fails again and again, with backoff.
    let out = tmp.path().join("hook-env");
    let first = tmp.path().join("hook-env.1");
    let script = tmp.path().join("on-failure.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nf=\"{}.$TAHOE_JOB_FAILURES\"\nenv | grep '^TAHOE_JOB' > \"$f.tmp\"\nmv \"$f.tmp\" \"$f\"\necho \"alerted about $TAHOE_JOB_ID\"\n",
            out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The first POST is answered 503: the event must come again.
    let receiver = Receiver::start(vec![503]);
    let toml = format!(
        "[jobs]\nnotify.url = \"{url}\"\nhooks.timeout = \"2s\"\n\n\
         [backup.broken]\nsource = \"{src}\"\ntarget = \"hk_no_such_alias:x\"\nfrequency = \"1week\"\n\
         on_failure = \"{script}\"\n\n\
         [backup.hangs]\nsource = \"{src}\"\ntarget = \"hk_ok:hangs\"\nfrequency = \"1week\"\n\
         on_success = \"echo about to hang; sleep 600\"\n\n\
         [backup.fails]\nsource = \"{src}\"\ntarget = \"hk_ok:fails\"\nfrequency = \"1week\"\n\
         on_success = \"echo hook went wrong >&2; exit 7\"\n",
        url = receiver.url,
        src = src.display(),
        script = script.display(),
    );
    let d = Daemon::on_node(grid.node_dir(), &toml);

    // The failing job's hook ran, with the event in its environment.
    let env = wait_for("the on_failure hook's output", &d, || {
        std::fs::read_to_string(&first).ok()
    });
    let env = env_file(&env);
    assert_eq!(env["TAHOE_JOB_EVENT"], "failure", "{env:?}");
    assert_eq!(env["TAHOE_JOB_ID"], "backup.broken");
    assert_eq!(env["TAHOE_JOB_TYPE"], "backup");
    assert_eq!(env["TAHOE_JOB_NAME"], "broken");
    assert_eq!(env["TAHOE_JOB_OUTCOME"], "failed");
    assert_eq!(env["TAHOE_JOB_FAILURES"], "1");
    assert!(env["TAHOE_JOB_DURATION_SECS"].parse::<u64>().is_ok());
    assert!(env.contains_key("TAHOE_JOB_STARTED"));
    let error = &env["TAHOE_JOB_ERROR"];
    assert!(error.contains("hk_no_such_alias"), "{error}");
    let job = d.job_json("backup.broken");
    assert_eq!(job["last_outcome"], "failed", "{job}");

    // Its event was POSTed, refused once, and came again.
    let event = receiver.wait_for("about backup.broken", LIMIT, |b| {
        b["job"] == "backup.broken" && b["event"] == "failure"
    });
    assert_eq!(event["outcome"], "failed");
    assert_eq!(event["task_type"], "backup");
    assert_eq!(event["consecutive_failures"], 1);
    assert!(event["error"]
        .as_str()
        .unwrap()
        .contains("hk_no_such_alias"));
    wait_for("the retried notification", &d, || {
        let n = receiver
            .bodies()
            .iter()
            .filter(|b| b["job"] == "backup.broken" && b["consecutive_failures"] == 1)
            .count();
        (n >= 2).then_some(())
    });

    // The completed jobs' events arrive; their bad hooks are reported, and change nothing.
    for job in ["backup.hangs", "backup.fails"] {
        let event = receiver.wait_for(&format!("about {job}"), LIMIT, |b| {
            b["job"] == job && b["event"] == "success"
        });
        assert_eq!(event["outcome"], "completed");
        assert_eq!(event["counters"]["files_seen"], 3, "{event}");
        assert!(event["error"].is_null());
    }
    let log = wait_for("both bad hooks reported", &d, || {
        let log = d.log_text();
        (log.contains("did not finish within 2s") && log.contains("failed with exit code 7"))
            .then_some(log)
    });
    assert!(
        log.contains("hook output: alerted about backup.broken"),
        "{log}"
    );
    assert!(log.contains("hook output: hook went wrong"), "{log}");
    assert!(log.contains("hook output: about to hang"), "{log}");
    for job in ["backup.hangs", "backup.fails"] {
        let j = d.job_json(job);
        assert_eq!(j["last_outcome"], "completed", "{j}");
        assert_eq!(j["consecutive_failures"], 0, "{j}");
        assert!(j["last_error"].is_null(), "{j}");
    }
    // The webhook's path (its secret) never reaches the log.
    assert!(!log.contains("private-topic"), "{log}");
    assert!(!log.contains("URI:"), "{log}");
}

#[test]
fn an_overdue_job_runs_its_on_overdue_hook() {
    // The window never opens, so the job never runs: overdue a second after it was first seen,
    // and the job looks again at that instant.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("overdue-env");
    let job_file = format!(
        "[backup]\nlate.source = {src}\nlate.target = hk_unused:x\nlate.frequency = 1s\n\
         late.allowed_times = none\nlate.overdue_after = 1s\n\
         late.on_overdue = env | grep '^TAHOE_JOB' > '{out}.tmp' && mv '{out}.tmp' '{out}'\n",
        src = tmp.path().display(),
        out = out.display(),
    );
    let d = Daemon::with_job_file(&job_file);
    let env = env_file(&wait_for("the on_overdue hook's output", &d, || {
        std::fs::read_to_string(&out).ok()
    }));
    assert_eq!(env["TAHOE_JOB_EVENT"], "overdue", "{env:?}");
    assert_eq!(env["TAHOE_JOB_ID"], "backup.late");
    assert_eq!(env["TAHOE_JOB_OUTCOME"], "overdue");
    assert!(env.contains_key("TAHOE_JOB_OVERDUE_SINCE"), "{env:?}");
    assert!(!env.contains_key("TAHOE_JOB_ERROR"), "{env:?}");
    assert!(
        !env.contains_key("TAHOE_JOB_LAST_COMPLETED"),
        "never completed: {env:?}"
    );
    let job = d.job_json("backup.late");
    assert!(!job["overdue"].is_null(), "{job}");
}
