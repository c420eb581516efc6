//! `/metrics` in the Prometheus text format, from the public view: only what the public page
//! shows, so nothing secret can reach a scraper.
//!
//! Names follow Prometheus conventions: `tahoe_jobs_` prefix, base units, `_total` for counters
//! (a run's counters start again at zero with each run, which `rate()` treats as a reset),
//! `_bytes` and `_seconds` for units, timestamps as `_timestamp_seconds`.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::view::{FlowView, StatusView};

/// States a job can be in, for the one-hot `tahoe_jobs_job_state` gauge.
const STATES: [&str; 10] = [
    "new",
    "disabled",
    "paused",
    "not_due",
    "waiting_for_window",
    "running",
    "stopping",
    "stopped_early",
    "completed",
    "failed",
];

/// A metric family being written: HELP and TYPE once, then samples.
struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", label_value(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
    }
}

/// Escapes a label value as the text format requires.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A metric name for a task counter: `files_uploaded` -> `tahoe_jobs_run_files_uploaded_total`,
/// `bytes_uploaded` -> `tahoe_jobs_run_uploaded_bytes_total`. `None` for derived figures
/// (averages per second), which scrapers compute better themselves.
pub fn counter_metric(counter: &str) -> Option<String> {
    let clean: String = counter
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if clean.ends_with("_per_second") || clean.is_empty() {
        return None;
    }
    Some(match clean.strip_prefix("bytes_") {
        Some(rest) => format!("tahoe_jobs_run_{rest}_bytes_total"),
        None => format!("tahoe_jobs_run_{clean}_total"),
    })
}

/// The whole `/metrics` text.
pub fn render(view: &StatusView) -> String {
    let mut o = Out {
        text: String::new(),
    };
    jobs(&mut o, view);
    counters(&mut o, view);
    if let Some(b) = &view.budget {
        budget(&mut o, b);
    }
    o.text
}

fn ts(t: Option<tahoe_jobs_config::jiff::Timestamp>) -> Option<f64> {
    t.map(|t| t.as_millisecond() as f64 / 1000.0)
}

fn jobs(o: &mut Out, view: &StatusView) {
    o.family(
        "tahoe_jobs_job_info",
        "gauge",
        "A configured job, labelled with its task type.",
    );
    for j in &view.jobs {
        o.sample(
            "tahoe_jobs_job_info",
            &[("job", &j.id), ("type", &j.task_type)],
            1.0,
        );
    }
    o.family(
        "tahoe_jobs_job_state",
        "gauge",
        "1 for the state the job is in, 0 for the others.",
    );
    for j in &view.jobs {
        for s in STATES {
            let v = if j.state == s { 1.0 } else { 0.0 };
            o.sample("tahoe_jobs_job_state", &[("job", &j.id), ("state", s)], v);
        }
    }
    type Flag = fn(&super::view::JobView) -> bool;
    let flags: [(&str, &str, Flag); 3] = [
        (
            "tahoe_jobs_job_paused",
            "1 while the job is paused by the user.",
            |j| j.paused,
        ),
        (
            "tahoe_jobs_job_overdue",
            "1 while the job has not completed for longer than its overdue_after.",
            |j| j.overdue.is_some(),
        ),
        (
            "tahoe_jobs_job_window_open",
            "1 while the job's allowed-times window is open.",
            |j| j.window.open,
        ),
    ];
    for (name, help, f) in flags {
        o.family(name, "gauge", help);
        for j in &view.jobs {
            o.sample(name, &[("job", &j.id)], if f(j) { 1.0 } else { 0.0 });
        }
    }
    type Stamp = fn(&super::view::JobView) -> Option<f64>;
    let stamps: [(&str, &str, Stamp); 5] = [
        (
            "tahoe_jobs_last_completed_timestamp_seconds",
            "When the job last completed a run (absent when it never has).",
            |j| ts(j.last_completed),
        ),
        (
            "tahoe_jobs_last_started_timestamp_seconds",
            "When the job last started a run.",
            |j| ts(j.last_started),
        ),
        (
            "tahoe_jobs_next_due_timestamp_seconds",
            "When the job becomes due by its frequency (absent when due now).",
            |j| ts(j.next_due),
        ),
        (
            "tahoe_jobs_window_next_change_timestamp_seconds",
            "When the job's window next opens or closes.",
            |j| ts(j.window.next_change),
        ),
        (
            "tahoe_jobs_eta_timestamp_seconds",
            "When the running job is estimated to finish, counting only open windows.",
            |j| {
                ts(j.progress
                    .as_ref()
                    .and_then(|p| p.eta.as_ref())
                    .map(|e| e.at))
            },
        ),
    ];
    for (name, help, f) in stamps {
        o.family(name, "gauge", help);
        for j in &view.jobs {
            if let Some(v) = f(j) {
                o.sample(name, &[("job", &j.id)], v);
            }
        }
    }
    o.family(
        "tahoe_jobs_consecutive_failures",
        "gauge",
        "Failed runs since the last completed one.",
    );
    for j in &view.jobs {
        o.sample(
            "tahoe_jobs_consecutive_failures",
            &[("job", &j.id)],
            f64::from(j.consecutive_failures),
        );
    }
    o.family(
        "tahoe_jobs_run_warnings_total",
        "counter",
        "Warnings (skipped files and the like) in the current or last run.",
    );
    for j in &view.jobs {
        o.sample(
            "tahoe_jobs_run_warnings_total",
            &[("job", &j.id)],
            j.warnings_total as f64,
        );
    }
    type Figure = fn(&super::view::ProgressView) -> Option<f64>;
    let left: [(&str, &str, Figure); 3] = [
        (
            "tahoe_jobs_run_remaining_files",
            "Files the running job is estimated to have left (from the previous run).",
            |p| p.files_left.map(|v| v as f64),
        ),
        (
            "tahoe_jobs_run_remaining_bytes",
            "Bytes the running job is estimated to have left (from the previous run).",
            |p| p.bytes_left.map(|v| v as f64),
        ),
        (
            "tahoe_jobs_run_upload_rate_bytes_per_second",
            "Bytes the running job uploaded per second over the last minute.",
            |p| p.upload_bytes_per_second,
        ),
    ];
    for (name, help, f) in left {
        o.family(name, "gauge", help);
        for j in &view.jobs {
            if let Some(v) = j.progress.as_ref().and_then(f) {
                o.sample(name, &[("job", &j.id)], v);
            }
        }
    }
}

fn counters(o: &mut Out, view: &StatusView) {
    // One family per counter name, across jobs.
    let mut families: BTreeMap<String, Vec<(&str, u64)>> = BTreeMap::new();
    for j in &view.jobs {
        for (name, value) in &j.counters {
            if let Some(metric) = counter_metric(name) {
                families.entry(metric).or_default().push((&j.id, *value));
            }
        }
    }
    for (metric, samples) in families {
        o.family(
            &metric,
            "counter",
            "A task counter of the current or last run.",
        );
        for (job, value) in samples {
            o.sample(&metric, &[("job", job)], value as f64);
        }
    }
}

fn flows<'a>(
    o: &mut Out,
    what: &str,
    label: &str,
    rows: impl Iterator<Item = (&'a str, [(&'static str, &'a FlowView); 2])> + Clone,
) {
    let prefix = format!("tahoe_jobs_budget_{what}");
    type Get = fn(&FlowView) -> Option<f64>;
    let figures: [(&str, &str, &str, Get); 4] = [
        (
            "bytes_total",
            "counter",
            "Bytes moved through the budget.",
            |f| Some(f.bytes as f64),
        ),
        (
            "rate_bytes_per_second",
            "gauge",
            "Bytes per second over the last few seconds.",
            |f| Some(f.rate_bytes_per_second),
        ),
        (
            "limit_bytes_per_second",
            "gauge",
            "The limit in force now (absent when unlimited).",
            |f| f.limit_bytes_per_second.map(|l| l as f64),
        ),
        (
            "throttled_seconds_total",
            "counter",
            "Seconds spent waiting on the limits.",
            |f| Some(f.throttled_seconds),
        ),
    ];
    for (suffix, kind, help, get) in figures {
        let name = format!("{prefix}_{suffix}");
        o.family(&name, kind, help);
        for (id, pair) in rows.clone() {
            for (direction, flow) in pair {
                if let Some(v) = get(flow) {
                    let mut labels = vec![("direction", direction)];
                    if !label.is_empty() {
                        labels.insert(0, (label, id));
                    }
                    o.sample(&name, &labels, v);
                }
            }
        }
    }
}

fn budget(o: &mut Out, b: &super::view::BudgetView) {
    flows(
        o,
        "total",
        "",
        std::iter::once((
            "",
            [("upload", &b.total.upload), ("download", &b.total.download)],
        )),
    );
    flows(
        o,
        "job",
        "job",
        b.jobs.iter().map(|(id, j)| {
            (
                id.as_str(),
                [("upload", &j.upload), ("download", &j.download)],
            )
        }),
    );
    flows(
        o,
        "server",
        "server",
        b.servers.iter().map(|(id, s)| {
            (
                id.as_str(),
                [("upload", &s.upload), ("download", &s.download)],
            )
        }),
    );
    o.family(
        "tahoe_jobs_budget_job_cpu_paused_seconds_total",
        "counter",
        "Seconds the job was paused to keep the CPU share under its limit.",
    );
    for (id, j) in &b.jobs {
        o.sample(
            "tahoe_jobs_budget_job_cpu_paused_seconds_total",
            &[("job", id)],
            j.cpu_paused_seconds,
        );
    }
    o.family(
        "tahoe_jobs_budget_cpu_limit_ratio",
        "gauge",
        "The CPU share allowed, in cores (absent when unlimited).",
    );
    if let Some(l) = b.cpu_limit {
        o.sample("tahoe_jobs_budget_cpu_limit_ratio", &[], l);
    }
    o.family(
        "tahoe_jobs_budget_cpu_recent_ratio",
        "gauge",
        "The CPU share used recently, in cores (absent when not measured).",
    );
    if let Some(s) = b.cpu_recent_share {
        o.sample("tahoe_jobs_budget_cpu_recent_ratio", &[], s);
    }
    o.family(
        "tahoe_jobs_budget_exact_shaping",
        "gauge",
        "1 when the shaping proxy meters the storage servers exactly.",
    );
    let exact = if b.accounting == "exact" { 1.0 } else { 0.0 };
    o.sample("tahoe_jobs_budget_exact_shaping", &[], exact);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_names_follow_the_conventions() {
        assert_eq!(
            counter_metric("files_uploaded").as_deref(),
            Some("tahoe_jobs_run_files_uploaded_total")
        );
        assert_eq!(
            counter_metric("bytes_uploaded").as_deref(),
            Some("tahoe_jobs_run_uploaded_bytes_total")
        );
        assert_eq!(counter_metric("upload_bytes_per_second"), None);
        assert_eq!(
            counter_metric("Odd-Name").as_deref(),
            Some("tahoe_jobs_run_odd_name_total")
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
    }
}

#[cfg(test)]
mod render_tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn jobs_runs_and_budgets_are_exported() {
        let view = fixture::view_with_budget(&fixture::status());
        let text = render(&view);
        for line in [
            "tahoe_jobs_job_info{job=\"backup.b1\",type=\"backup\"} 1",
            "tahoe_jobs_job_state{job=\"backup.b1\",state=\"running\"} 1",
            "tahoe_jobs_job_state{job=\"backup.b1\",state=\"paused\"} 0",
            "tahoe_jobs_job_window_open{job=\"backup.b1\"} 1",
            "tahoe_jobs_run_files_uploaded_total{job=\"backup.b1\"} 120",
            "tahoe_jobs_run_uploaded_bytes_total{job=\"backup.b1\"} 1200000000",
            "tahoe_jobs_run_remaining_bytes{job=\"backup.b1\"} 5000000000",
            "tahoe_jobs_budget_job_limit_bytes_per_second{job=\"backup.b1\",direction=\"upload\"} 262144",
            "tahoe_jobs_budget_job_throttled_seconds_total{job=\"backup.b1\",direction=\"upload\"} 3600",
            "tahoe_jobs_budget_server_bytes_total{server=\"v0-parents\",direction=\"upload\"} 400000000",
            "tahoe_jobs_budget_total_rate_bytes_per_second{direction=\"upload\"} 150000",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        assert!(text.contains("# TYPE tahoe_jobs_run_files_uploaded_total counter"));
        assert!(text.contains("tahoe_jobs_eta_timestamp_seconds{job=\"backup.b1\"} "));
        // Every sample belongs to a family announced before it.
        let mut announced = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                announced.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(announced.contains(name), "{name} before its TYPE");
            }
        }
    }

    fn render_status(status: &tahoe_jobs_engine::EngineStatus) -> String {
        render(&fixture::view(status, None))
    }

    #[test]
    fn overdue_and_last_completion_are_exported() {
        let text = render_status(&fixture::overdue_status());
        assert!(text.contains("# TYPE tahoe_jobs_job_overdue gauge"));
        assert!(text.contains("tahoe_jobs_job_overdue{job=\"backup.b1\"} 1\n"));
        // 2025-12-23T22:00:00Z.
        assert!(text.contains(
            "tahoe_jobs_last_completed_timestamp_seconds{job=\"backup.b1\"} 1766527200\n"
        ));

        let text = render_status(&fixture::status());
        assert!(text.contains("tahoe_jobs_job_overdue{job=\"backup.b1\"} 0\n"));
    }

    #[test]
    fn a_job_never_completed_has_no_last_completion_sample() {
        let mut status = fixture::overdue_status();
        status.jobs[0].last_completed = None;
        let text = render_status(&status);
        assert!(text.contains("# TYPE tahoe_jobs_last_completed_timestamp_seconds gauge"));
        assert!(
            !text.contains("tahoe_jobs_last_completed_timestamp_seconds{"),
            "absent, not NaN or 0:\n{text}"
        );
        assert!(!text.contains("NaN"));
        assert!(text.contains("tahoe_jobs_job_overdue{job=\"backup.b1\"} 1\n"));
    }
}
