//! `tahoe-jobs status [--json] [JOB]`: the running daemon's jobs, from its private API.

use anyhow::bail;
use clap::Args;
use tahoe_jobs_config::jiff::tz::TimeZone;

use super::client::Client;
use crate::cli::GlobalArgs;
use crate::web::eta::short_time;
use crate::web::html::{bytes, rate};
use crate::web::view::{ControlView, JobPrivate, JobView, StatusView};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the JSON the control page's `?t=json` gives (of one job with JOB).
    #[arg(long)]
    pub json: bool,
    /// One job, by id (`backup.b1`) or by name (`b1`).
    pub job: Option<String>,
}

pub fn run(global: &GlobalArgs, args: &StatusArgs) -> anyhow::Result<i32> {
    let client = Client::new(global)?;
    let view = client.status()?;
    let jobs: Vec<&JobView> = match &args.job {
        None => view.jobs.iter().collect(),
        Some(name) => {
            let found = find(&view, name);
            if found.is_empty() {
                let known: Vec<&str> = view.jobs.iter().map(|j| j.id.as_str()).collect();
                bail!("there is no job {name} (jobs: {})", known.join(", "));
            }
            found
        }
    };
    if args.json {
        let with_private = |job: &'_ JobView| JobJson {
            job: job.clone(),
            private: view.job_private(&job.id).cloned(),
        };
        let text = match (&args.job, jobs.as_slice()) {
            (Some(_), [one]) => serde_json::to_string_pretty(&with_private(one))?,
            (Some(_), many) => serde_json::to_string_pretty(
                &many.iter().map(|j| with_private(j)).collect::<Vec<_>>(),
            )?,
            (None, _) => serde_json::to_string_pretty(&view)?,
        };
        println!("{text}");
        return Ok(0);
    }
    let tz = client.config.daemon.timezone.clone();
    for job in jobs {
        print!("{}", render_job(job, &view, &tz));
    }
    if args.job.is_none() && view.jobs.is_empty() {
        println!("no jobs are configured");
    }
    Ok(0)
}

/// One job in `--json JOB`: its public view with its private part beside it, as `private`.
#[derive(serde::Serialize)]
struct JobJson {
    #[serde(flatten)]
    job: JobView,
    private: Option<JobPrivate>,
}

/// Jobs matching `name`: the job with that id, else the jobs with that name.
fn find<'a>(view: &'a StatusView, name: &str) -> Vec<&'a JobView> {
    if let Some(job) = view.job(name) {
        return vec![job];
    }
    view.jobs
        .iter()
        .filter(|j| j.id.split_once('.').is_some_and(|(_, n)| n == name))
        .collect()
}

/// One job as a few lines of text.
pub fn render_job(job: &JobView, view: &ControlView, tz: &TimeZone) -> String {
    let when = |t: Option<tahoe_jobs_config::jiff::Timestamp>, none: &str| {
        t.map_or(none.to_string(), |t| short_time(t, view.now, tz))
    };
    // Overdue is the one thing a glance must not miss: it leads the job's first line. The exit
    // code stays 0 (the command worked; monitoring reads `overdue` from --json or /metrics).
    let flag = if job.overdue.is_some() {
        " OVERDUE"
    } else {
        ""
    };
    let mut out = format!("{} ({}){flag}: {}\n", job.id, job.task_type, job.state_text);
    if let Some(o) = &job.overdue {
        let prefix = format!("{} is overdue: ", job.id);
        out.push_str(&format!(
            "  overdue since {}: {}\n",
            short_time(o.since, view.now, tz),
            o.text.strip_prefix(&prefix).unwrap_or(&o.text)
        ));
    }
    out.push_str(&format!(
        "  window {}; last completed {}; next due {}\n",
        job.window.text,
        when(job.last_completed, "never"),
        when(job.next_due, "now")
    ));
    let counters: Vec<String> = job
        .counters
        .iter()
        .filter(|(k, _)| !k.ends_with("_per_second"))
        .map(|(k, v)| {
            let shown = if k.starts_with("bytes_") {
                bytes(*v)
            } else {
                v.to_string()
            };
            format!("{} {shown}", k.replace('_', " "))
        })
        .collect();
    let which = if job.progress.is_some() {
        "this run"
    } else {
        "last run"
    };
    for (name, value) in &job.labels {
        out.push_str(&format!(
            "  {} ({which}): {value}\n",
            name.replace('_', " ")
        ));
    }
    if !counters.is_empty() {
        out.push_str(&format!("  {which}: {}\n", counters.join(", ")));
    }
    if let Some(p) = &job.progress {
        let mut parts = Vec::new();
        if let Some(r) = p.upload_bytes_per_second {
            parts.push(format!("uploading {}", rate(r)));
        }
        match (p.files_left, p.bytes_left) {
            (Some(f), Some(b)) => parts.push(format!("about {f} files, {} left", bytes(b))),
            (Some(f), None) => parts.push(format!("about {f} files left")),
            (None, Some(b)) => parts.push(format!("about {} left", bytes(b))),
            (None, None) => {}
        }
        match (&p.eta, &p.eta_missing) {
            (Some(eta), _) => parts.push(eta.text.clone()),
            (None, Some(why)) => parts.push(format!("no estimate yet: {why}")),
            (None, None) => {}
        }
        if !parts.is_empty() {
            out.push_str(&format!("  {}\n", parts.join("; ")));
        }
    }
    // The whole message, paths included: this is the owner's command.
    let private_error = view
        .job_private(&job.id)
        .and_then(|p| p.last_error.as_ref());
    if let Some(e) = private_error.or(job.last_error.as_ref()) {
        out.push_str(&format!(
            "  last error ({}): {}\n",
            short_time(e.at, view.now, tz),
            e.message
        ));
    }
    let live: Vec<String> = job
        .settings
        .iter()
        .filter(|s| s.live_since.is_some())
        .map(|s| format!("{} = {} (file: {})", s.key, s.value, s.file_value))
        .collect();
    if !live.is_empty() {
        out.push_str(&format!("  changed live: {}\n", live.join(", ")));
    }
    if job.warnings_total > 0 {
        out.push_str(&format!(
            "  {} warnings in this run (see the control page)\n",
            job.warnings_total
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::fixture;

    fn view(status: &tahoe_jobs_engine::EngineStatus) -> ControlView {
        fixture::control_view(status, false)
    }

    #[test]
    fn an_overdue_job_says_so_on_its_first_line() {
        let tz = fixture::config().daemon.timezone;
        let v = view(&fixture::overdue_status());
        let text = render_job(&v.jobs[0], &v, &tz);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("backup.b1 (backup) OVERDUE: waiting for the window (opens Fri 22:00)")
        );
        assert_eq!(
            lines.next(),
            Some("  overdue since Wed 23:00: last completed 16 days ago, expected every 1 week")
        );
    }

    #[test]
    fn the_data_path_of_the_run_has_a_line() {
        let tz = fixture::config().daemon.timezone;
        let v = view(&fixture::status());
        let text = render_job(&v.jobs[0], &v, &tz);
        assert!(
            text.lines().any(|l| l
                == "  data path (this run): node (fallback: cannot read <path>: <capability>)"),
            "{text}"
        );
    }

    #[test]
    fn a_job_on_time_has_no_overdue_mark() {
        let tz = fixture::config().daemon.timezone;
        let v = view(&fixture::status());
        let text = render_job(&v.jobs[0], &v, &tz);
        assert!(
            text.starts_with("backup.b1 (backup): running since 22:00\n"),
            "{text}"
        );
        assert!(!text.to_lowercase().contains("overdue"), "{text}");
    }
}
