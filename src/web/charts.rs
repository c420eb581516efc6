//! The pictures' sections of the pages, as HTML around the SVG of [`super::svg`]: a running
//! job's progress bars, its week strip, the rate graphs of a job or a storage server, and the
//! run history (a bar chart and a table). Pure functions from the view to HTML; every text is
//! escaped.

use std::fmt::Write;
use std::time::Duration;

use tahoe_jobs_config::jiff::tz::TimeZone;
use tahoe_jobs_config::jiff::{Timestamp, ToSpan};

use super::eta::{short_duration, short_time};
use super::graphs::{Graphs, RunView};
use super::html::{bytes, esc, limit, rate};
use super::rate_history::{Point, Series, Span, HOUR, TEN_MINUTES};
use super::svg::{self, Bar, Marker, RateGraph, RatePoint, WeekStrip};
use super::view::JobView;

/// Runs shown in the table before the rest fold away.
const TABLE_RUNS: usize = 10;

fn secs_between(a: Timestamp, b: Timestamp) -> f64 {
    b.duration_since(a).as_secs_f64()
}

/// A bar per counter with an estimate (files, then bytes), with the counts beside it; nothing
/// when the run has no estimate (a first run) or the job is not running.
pub fn progress_bars(job: &JobView) -> String {
    if job.progress.is_none() {
        return String::new();
    }
    let mut out = String::new();
    for (counter, what, as_bytes) in [
        ("files_seen", "Files", false),
        ("bytes_seen", "Bytes", true),
    ] {
        let Some(&total) = job.estimates.get(counter).filter(|t| **t > 0) else {
            continue;
        };
        let done = job.counters.get(counter).copied().unwrap_or(0);
        let show = |v: u64| if as_bytes { bytes(v) } else { v.to_string() };
        let pct = (done as f64 / total as f64 * 100.0).min(100.0).floor();
        let text = if done > total {
            format!(
                "{} (more than the {} of the last run)",
                show(done),
                show(total)
            )
        } else {
            format!("{} of about {} ({pct}%)", show(done), show(total))
        };
        let label = format!("{what}: {text}");
        let _ = write!(
            out,
            "<div class=\"progress\" data-counter=\"{}\"><span class=\"plabel\">{what}</span>{}\
             <span class=\"pcount\">{}</span></div>",
            esc(counter),
            svg::progress_bar(done, total, &label),
            esc(&text)
        );
    }
    if out.is_empty() {
        return out;
    }
    format!("<div class=\"bars\">{out}</div>")
}

/// The week ahead: open windows as bands, now, the next due time and the projected finish.
pub fn week_strip(job: &JobView, now: Timestamp, tz: &TimeZone) -> String {
    let Some(week) = &job.week else {
        return String::new();
    };
    let span = secs_between(week.from, week.to);
    let open: Vec<(f64, f64)> = week
        .open
        .iter()
        .map(|b| {
            (
                secs_between(week.from, b.start),
                secs_between(week.from, b.end),
            )
        })
        .collect();
    let start_day = week.from.to_zoned(tz.clone()).date();
    let days: Vec<(f64, String)> = (0..super::graphs::WEEK_DAYS)
        .filter_map(|d| {
            let date = start_day.checked_add(d.days()).ok()?;
            let at = date.to_zoned(tz.clone()).ok()?.timestamp();
            Some((
                secs_between(week.from, at),
                date.strftime("%a %-d").to_string(),
            ))
        })
        .collect();
    let eta = job.progress.as_ref().and_then(|p| p.eta.as_ref());
    let mut legend = vec![format!("now {}", short_time(now, now, tz))];
    let due_label = match job.next_due {
        Some(at) => format!("next due {}", short_time(at, now, tz)),
        // A running job is due now by definition: nothing to add.
        None if job.progress.is_some() => String::new(),
        None => "due now".to_string(),
    };
    legend.push(due_label.clone());
    let eta_label = eta.map(|e| format!("finish {}", short_time(e.at, now, tz)));
    let mut markers = vec![Marker {
        x: secs_between(week.from, now),
        class: "now",
        label: "now",
    }];
    if let Some(at) = job.next_due {
        markers.push(Marker {
            x: secs_between(week.from, at),
            class: "due",
            label: &due_label,
        });
    }
    if let (Some(e), Some(label)) = (eta, &eta_label) {
        markers.push(Marker {
            x: secs_between(week.from, e.at),
            class: "eta",
            label,
        });
        legend.push(label.clone());
    }
    let label = format!("{}: allowed windows of the next 7 days", job.id);
    let strip = svg::week_strip(&WeekStrip {
        label: &label,
        span,
        open: &open,
        days: &days,
        markers: &markers,
    });
    let mut keys = String::from("<span class=\"key open-key\"></span>window open ");
    let classes = ["now", "due", "eta"];
    for (text, class) in legend.iter().zip(classes) {
        if text.is_empty() {
            continue;
        }
        if class == "due" && job.next_due.is_none() {
            let _ = write!(keys, "<span>{}</span> ", esc(text));
            continue;
        }
        let _ = write!(
            keys,
            "<span class=\"key mark-key {class}\"></span>{} ",
            esc(text)
        );
    }
    format!(
        "<figure class=\"weekfig\" data-job=\"{}\">{strip}<figcaption>{keys}</figcaption></figure>",
        esc(&job.id)
    )
}

fn points(points: &[Point], now: Timestamp, span: Span) -> Vec<RatePoint> {
    let start = now.as_second() - span.secs();
    points
        .iter()
        .map(|p| RatePoint {
            x: (p.at - start) as f64,
            rate: p.rate,
            limit: p.limit.map(|l| l as f64),
        })
        .collect()
}

fn one_graph(what: &str, series: &Series, now: Timestamp, span: Span) -> String {
    let (title, labels): (&str, Vec<(f64, String)>) = if span == TEN_MINUTES {
        (
            "last 10 minutes",
            vec![
                (0.0, "-10 min".into()),
                (0.5, "-5 min".into()),
                (1.0, "now".into()),
            ],
        )
    } else if span == HOUR {
        (
            "last hour",
            vec![
                (0.0, "-60 min".into()),
                (0.5, "-30 min".into()),
                (1.0, "now".into()),
            ],
        )
    } else {
        (
            "last 24 hours",
            vec![
                (0.0, "-24 h".into()),
                (0.25, "-18 h".into()),
                (0.5, "-12 h".into()),
                (0.75, "-6 h".into()),
                (1.0, "now".into()),
            ],
        )
    };
    let up = points(&series.upload, now, span);
    let down = points(&series.download, now, span);
    let label = format!("{what}: upload and download, {title}");
    // Axis labels are short: "500 KiB/s", not "500.0 KiB/s".
    let format = |v: f64| rate(v).replace(".0 ", " ");
    let svg = svg::rate_graph(&RateGraph {
        label: &label,
        span: span.secs() as f64,
        step: span.step_secs as f64,
        upload: &up,
        download: &down,
        x_labels: &labels,
        format: &format,
        empty: &format!("no transfers in the {title}"),
    });
    let limits = |s: &[Point]| s.last().map(|p| limit(p.limit));
    let caption = match (limits(&series.upload), limits(&series.download)) {
        (Some(u), Some(d)) => format!("{title}; limits now: upload {u}, download {d}"),
        (Some(u), None) => format!("{title}; upload limit now {u}"),
        (None, Some(d)) => format!("{title}; download limit now {d}"),
        (None, None) => title.to_string(),
    };
    format!(
        "<figure class=\"chart\">{svg}<figcaption>{}</figcaption></figure>",
        esc(&caption)
    )
}

/// The rate graphs of a job or a storage server: the last ten minutes (what is happening now),
/// the last hour and the last 24 hours.
pub fn rate_graphs(kind: &str, id: &str, graphs: &Graphs, now: Timestamp) -> String {
    format!(
        "<div class=\"charts\" data-{kind}=\"{}\">{}{}{}</div>",
        esc(id),
        one_graph(id, &graphs.ten_minutes, now, TEN_MINUTES),
        one_graph(id, &graphs.hour, now, HOUR),
        one_graph(id, &graphs.day, now, super::rate_history::DAY)
    )
}

fn outcome_text(outcome: &str) -> &str {
    match outcome {
        "completed" => "completed",
        "stopped_early" => "stopped early",
        "failed" => "failed",
        other => other,
    }
}

/// The last runs: a bar per run (its duration, coloured by outcome) and a table, newest first.
pub fn history(job: &JobView, now: Timestamp, tz: &TimeZone) -> String {
    if job.history.is_empty() {
        return "<p class=\"muted\">No runs yet.</p>".to_string();
    }
    let bars: Vec<Bar> = job
        .history
        .iter()
        .rev()
        .map(|r| Bar {
            value: r.duration_secs as f64,
            class: match r.outcome.as_str() {
                "completed" => "completed",
                "failed" => "failed",
                _ => "stopped",
            },
            label: format!(
                "{}: {}, {}",
                short_time(r.started, now, tz),
                outcome_text(&r.outcome),
                short_duration(Duration::from_secs(r.duration_secs))
            ),
        })
        .collect();
    let chart = svg::history_bars(
        &format!("{}: the last {} runs", job.id, job.history.len()),
        &bars,
        "",
    );
    let mut out = format!(
        "<figure class=\"runsfig\" data-job=\"{}\">{chart}<figcaption>\
         Duration of each run, oldest left: \
         <span class=\"key completed\"></span>completed \
         <span class=\"key stopped\"></span>stopped early \
         <span class=\"key failed-key\"></span>failed</figcaption></figure>",
        esc(&job.id)
    );
    let header = "<tr><th>Start</th><th>End</th><th>Outcome</th><th>Files</th><th>Bytes</th>\
                  <th>Uploaded</th><th>Duration</th></tr>";
    let row = |r: &RunView| {
        let opt = |v: Option<u64>, f: &dyn Fn(u64) -> String| v.map_or("-".to_string(), f);
        format!(
            "<tr class=\"run-row\"><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&short_time(r.started, now, tz)),
            esc(&short_time(r.ended, now, tz)),
            if r.outcome == "failed" { "failed" } else { "" },
            esc(outcome_text(&r.outcome)),
            esc(&opt(r.files, &|v| v.to_string())),
            esc(&opt(r.bytes, &bytes)),
            esc(&opt(r.uploaded, &bytes)),
            esc(&short_duration(Duration::from_secs(r.duration_secs))),
        )
    };
    let _ = write!(out, "<table class=\"history\">{header}");
    for r in job.history.iter().take(TABLE_RUNS) {
        out.push_str(&row(r));
    }
    out.push_str("</table>");
    if job.history.len() > TABLE_RUNS {
        let _ = write!(
            out,
            "<details><summary>{} earlier runs</summary><table class=\"history\">{header}",
            job.history.len() - TABLE_RUNS
        );
        for r in job.history.iter().skip(TABLE_RUNS) {
            out.push_str(&row(r));
        }
        out.push_str("</table></details>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    fn job() -> (JobView, super::super::view::StatusView) {
        let v = fixture::view_with_budget(&fixture::status());
        (v.jobs[0].clone(), v)
    }

    #[test]
    fn a_running_job_with_an_estimate_has_bars_with_counts() {
        let (job, _) = job();
        let html = progress_bars(&job);
        assert!(html.contains("data-counter=\"files_seen\""));
        assert!(html.contains("500 of about 1000 (50%)"), "{html}");
        assert!(html.contains("4.7 GiB of about 9.3 GiB (50%)"), "{html}");
        assert_eq!(html.matches("<svg class=\"bar\"").count(), 2);
    }

    #[test]
    fn no_estimate_or_not_running_means_no_bars() {
        let mut status = fixture::status();
        status.jobs[0].progress.estimates.clear();
        let v = fixture::view(&status, None);
        assert_eq!(progress_bars(&v.jobs[0]), "");
        let v = fixture::view(&fixture::overdue_status(), None);
        assert_eq!(progress_bars(&v.jobs[0]), "");
    }

    #[test]
    fn the_week_strip_marks_now_and_the_finish() {
        let (job, v) = job();
        let tz = fixture::config().daemon.timezone;
        let html = week_strip(&job, v.now, &tz);
        assert!(html.contains("class=\"mark now\""));
        assert!(html.contains("class=\"mark eta\""), "{html}");
        assert!(html.contains("finish Sun 00:53"), "{html}");
        assert!(
            html.contains(">Thu 8<") && html.contains(">Wed 14<"),
            "{html}"
        );
        assert!(
            !html.contains("due now"),
            "a running job is due now: not said"
        );
        let v = fixture::view(&fixture::overdue_status(), None);
        let idle = week_strip(&v.jobs[0], v.now, &tz);
        assert!(
            idle.contains("due now") && !idle.contains("mark eta"),
            "{idle}"
        );
    }

    #[test]
    fn graphs_and_history_are_drawn_from_the_view() {
        let (job, v) = job();
        let g = rate_graphs("job", &job.id, &v.graphs.jobs[&job.id], v.now);
        assert_eq!(g.matches("<svg class=\"graph\"").count(), 3);
        assert!(g.contains("<polyline class=\"up\""));
        assert!(g.contains("class=\"limit up-limit\""));
        assert!(g.contains("limits now: upload 256.0 KiB/s"), "{g}");
        let s = rate_graphs(
            "server",
            "v0-parents",
            &v.graphs.servers["v0-parents"],
            v.now,
        );
        assert!(s.contains("upload limit now 64.0 KiB/s") || s.contains("upload 64.0 KiB/s"));
        let tz = fixture::config().daemon.timezone;
        let h = history(&job, v.now, &tz);
        assert_eq!(h.matches("<rect class=\"run ").count(), 4);
        assert_eq!(h.matches("<tr class=\"run-row\">").count(), 4);
        assert!(h.contains("stopped early") && h.contains("9.3 GiB"));
    }
}
