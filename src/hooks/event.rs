//! What a hook or a notification is told about an event: the environment variables of a hook
//! command and the JSON body of a notification, both from the same redacted event.
//!
//! The variables are named `TAHOE_JOB_*`, not `TAHOE_JOBS_*`: a hook that runs `tahoe-jobs`
//! itself must not have the event read as configuration.

use serde_json::{json, Value};
use tahoe_jobs_config::JobHooks;
use tahoe_jobs_engine::{EventKind, JobEvent};

use crate::web::redact::public_text;

/// The event with its error message as the public page shows it: no capability, no path. A
/// notification leaves the machine, and a hook's environment is passed on to whatever it runs.
pub fn redacted(mut event: JobEvent) -> JobEvent {
    event.error = event.error.as_deref().map(public_text);
    event
}

/// The configuration key of the hook for `kind`.
pub fn hook_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Success => "on_success",
        EventKind::Failure => "on_failure",
        EventKind::Overdue => "on_overdue",
    }
}

/// The command to run for `kind`, if the job has one.
pub fn hook_for(kind: EventKind, hooks: &JobHooks) -> Option<&str> {
    match kind {
        EventKind::Success => hooks.on_success.as_deref(),
        EventKind::Failure => hooks.on_failure.as_deref(),
        EventKind::Overdue => hooks.on_overdue.as_deref(),
    }
    .filter(|c| !c.trim().is_empty())
}

/// How the run ended, in one word: `completed`, `failed`, or `overdue`.
pub fn outcome(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Success => "completed",
        EventKind::Failure => "failed",
        EventKind::Overdue => "overdue",
    }
}

/// A counter's variable name: `files_uploaded` -> `TAHOE_JOB_COUNT_FILES_UPLOADED`.
fn counter_var(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("TAHOE_JOB_COUNT_{upper}")
}

/// The hook's environment variables (added to the daemon's own). Variables with no value for
/// this event (the error of a success, say) are left out.
pub fn environment(event: &JobEvent) -> Vec<(String, String)> {
    let (task_type, name) = event
        .job
        .split_once('.')
        .unwrap_or((event.task_type.as_str(), event.job.as_str()));
    let mut env: Vec<(String, String)> = vec![
        ("TAHOE_JOB_EVENT".into(), event.kind.as_str().into()),
        ("TAHOE_JOB_ID".into(), event.job.clone()),
        ("TAHOE_JOB_TYPE".into(), task_type.to_string()),
        ("TAHOE_JOB_NAME".into(), name.to_string()),
        ("TAHOE_JOB_OUTCOME".into(), outcome(event.kind).into()),
        ("TAHOE_JOB_AT".into(), event.at.to_string()),
        (
            "TAHOE_JOB_FAILURES".into(),
            event.consecutive_failures.to_string(),
        ),
    ];
    let mut optional = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            env.push((key.to_string(), v));
        }
    };
    optional("TAHOE_JOB_STARTED", event.started.map(|t| t.to_string()));
    optional(
        "TAHOE_JOB_DURATION_SECS",
        event.duration.map(|d| d.as_secs().to_string()),
    );
    optional("TAHOE_JOB_ERROR", event.error.clone());
    optional(
        "TAHOE_JOB_LAST_COMPLETED",
        event.last_completed.map(|t| t.to_string()),
    );
    optional(
        "TAHOE_JOB_OVERDUE_SINCE",
        event.overdue_since.map(|t| t.to_string()),
    );
    for (counter, value) in &event.counters {
        env.push((counter_var(counter), value.to_string()));
    }
    env
}

/// The JSON body of a notification.
pub fn payload(event: &JobEvent) -> Value {
    json!({
        "event": event.kind.as_str(),
        "job": event.job,
        "task_type": event.task_type,
        "outcome": outcome(event.kind),
        "at": event.at,
        "started": event.started,
        "duration_secs": event.duration.map(|d| d.as_secs_f64()),
        "counters": event.counters,
        "error": event.error,
        "consecutive_failures": event.consecutive_failures,
        "last_completed": event.last_completed,
        "overdue_since": event.overdue_since,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    fn failure() -> JobEvent {
        JobEvent {
            kind: EventKind::Failure,
            job: "backup.b1".into(),
            task_type: "backup".into(),
            at: "2026-01-10T12:05:00Z".parse().unwrap(),
            started: Some("2026-01-10T12:00:00Z".parse().unwrap()),
            duration: Some(Duration::from_secs(300)),
            counters: BTreeMap::from([
                ("files_uploaded".to_string(), 12),
                ("bytes_uploaded".to_string(), 3_000),
            ]),
            error: Some(
                "cannot read /home/alice/Pictures/x.jpg: permission denied (in URI:DIR2:abc:def)"
                    .into(),
            ),
            consecutive_failures: 2,
            last_completed: None,
            overdue_since: None,
        }
    }

    fn var<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_failure_is_described_by_variables_without_paths_or_capabilities() {
        let event = redacted(failure());
        let env = environment(&event);
        assert_eq!(var(&env, "TAHOE_JOB_EVENT"), Some("failure"));
        assert_eq!(var(&env, "TAHOE_JOB_ID"), Some("backup.b1"));
        assert_eq!(var(&env, "TAHOE_JOB_TYPE"), Some("backup"));
        assert_eq!(var(&env, "TAHOE_JOB_NAME"), Some("b1"));
        assert_eq!(var(&env, "TAHOE_JOB_OUTCOME"), Some("failed"));
        assert_eq!(var(&env, "TAHOE_JOB_DURATION_SECS"), Some("300"));
        assert_eq!(var(&env, "TAHOE_JOB_FAILURES"), Some("2"));
        assert_eq!(var(&env, "TAHOE_JOB_STARTED"), Some("2026-01-10T12:00:00Z"));
        assert_eq!(var(&env, "TAHOE_JOB_COUNT_FILES_UPLOADED"), Some("12"));
        assert_eq!(var(&env, "TAHOE_JOB_COUNT_BYTES_UPLOADED"), Some("3000"));
        assert_eq!(var(&env, "TAHOE_JOB_LAST_COMPLETED"), None);
        let error = var(&env, "TAHOE_JOB_ERROR").unwrap();
        assert!(error.contains("permission denied"), "{error}");
        for (k, v) in &env {
            assert!(!v.contains("URI:") && !v.contains("/home"), "{k}={v}");
            assert!(
                !k.starts_with("TAHOE_JOBS_"),
                "{k} would be read as configuration"
            );
        }
    }

    #[test]
    fn the_payload_carries_the_same_event() {
        let body = payload(&redacted(failure()));
        assert_eq!(body["event"], "failure");
        assert_eq!(body["job"], "backup.b1");
        assert_eq!(body["outcome"], "failed");
        assert_eq!(body["duration_secs"], 300.0);
        assert_eq!(body["counters"]["files_uploaded"], 12);
        assert_eq!(body["consecutive_failures"], 2);
        assert_eq!(body["started"], "2026-01-10T12:00:00Z");
        let text = body.to_string();
        assert!(!text.contains("URI:") && !text.contains("/home"), "{text}");
    }

    #[test]
    fn each_kind_picks_its_own_hook() {
        let hooks = JobHooks {
            on_success: Some("ok".into()),
            on_failure: None,
            on_overdue: Some("  ".into()),
        };
        assert_eq!(hook_for(EventKind::Success, &hooks), Some("ok"));
        assert_eq!(hook_for(EventKind::Failure, &hooks), None);
        assert_eq!(hook_for(EventKind::Overdue, &hooks), None);
        assert_eq!(counter_var("files-seen.x"), "TAHOE_JOB_COUNT_FILES_SEEN_X");
    }
}
