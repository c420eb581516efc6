//! The two HTML pages: the public status page, rendered from the public [`StatusView`] alone,
//! and the private control page, rendered from a [`ControlView`] (the same sections plus the
//! controls, warnings and configuration). Pure functions: the handlers only fetch the view and
//! send what these return.

use std::fmt::Write;

use tahoe_jobs_config::jiff::tz::TimeZone;
use tahoe_jobs_config::jiff::Timestamp;

use super::charts;
use super::eta::short_time;
use super::graphs::GraphsView;
use super::html::{bytes, esc, limit, page, rate, row, seconds, share, Refresh};
use super::view::{
    BudgetView, ControlView, FlowView, JobPrivate, JobView, LiveSetting, PrivateView, StatusView,
};

/// Seconds between refreshes of the public page.
pub const PUBLIC_REFRESH_SECS: u32 = 5;

/// Reloads the control page every 5 s unless the user is typing into one of its fields.
pub const CONTROL_REFRESH_SCRIPT: &str = "function r(){for(const i of document.querySelectorAll(\
'input[type=text]'))if(i===document.activeElement||i.value!==i.defaultValue)return setTimeout(r,5000);\
location.replace(location.pathname)}setTimeout(r,5000);";

/// The public status page.
pub fn public_page(view: &StatusView, tz: &TimeZone) -> String {
    let mut body = String::from("<h1>tahoe-jobs status</h1>");
    overdue_banner(&mut body, view);
    let _ = write!(
        body,
        "<p class=\"muted\">{} ({}). Refreshes every {PUBLIC_REFRESH_SECS} s. \
         Also as <a href=\"?t=json\">JSON</a> and <a href=\"/metrics\">Prometheus metrics</a>.</p>",
        esc(&view
            .now
            .to_zoned(tz.clone())
            .strftime("%a %Y-%m-%d %H:%M:%S")
            .to_string()),
        esc(&view.timezone),
    );
    jobs_html(&mut body, view, tz, None);
    if let Some(budget) = &view.budget {
        budget_html(&mut body, budget, &view.graphs, view.now, None);
    }
    page(
        &title("tahoe-jobs status", view),
        Refresh::Meta(PUBLIC_REFRESH_SECS),
        &body,
    )
}

/// The control page; `csrf` goes into every form.
pub fn control_page(control: &ControlView, tz: &TimeZone, csrf: &str) -> String {
    let view = &control.public;
    let mut body = String::from("<h1>tahoe-jobs control</h1>");
    overdue_banner(&mut body, view);
    let _ = write!(
        body,
        "<p><strong>This page's address is a secret:</strong> anyone who \
         has it can pause, start and reconfigure your jobs. The <a href=\"/\">public status page</a> \
         shows the same without file names or controls.</p><p class=\"muted\">{} ({}). Refreshes \
         every 5 s while you are not typing. Also as <a href=\"?t=json\">JSON</a>.</p>",
        esc(&view.now.to_zoned(tz.clone()).strftime("%a %Y-%m-%d %H:%M:%S").to_string()),
        esc(&view.timezone),
    );
    jobs_html(&mut body, view, tz, Some((&control.private, csrf)));
    if let Some(budget) = &view.budget {
        budget_html(&mut body, budget, &view.graphs, view.now, Some(csrf));
    }
    {
        let private = &control.private;
        let _ = write!(
            body,
            "<h2>Configuration</h2><p class=\"muted\">Node directory {}, state directory {}. \
             Values changed live are marked; they apply above the files until reset.</p>\
             <table><tr><th>Key</th><th>Value</th><th>Source</th></tr>",
            esc(&private.node_dir),
            esc(&private.state_dir)
        );
        for s in &private.settings {
            let value = match &s.live {
                Some(live) => format!(
                    "<span class=\"live\">{}</span> <span class=\"muted\">(changed live; file: {})</span>",
                    esc(live),
                    esc(&s.value)
                ),
                None => esc(&s.value),
            };
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{value}</td><td class=\"muted\">{}</td></tr>",
                esc(&s.key),
                esc(&s.origin)
            );
        }
        body.push_str("</table>");
    }
    page(
        &title("tahoe-jobs control", view),
        Refresh::Script(CONTROL_REFRESH_SCRIPT),
        &body,
    )
}

/// The page title, which also says how many jobs are overdue, so a tab or a bookmark shows it.
fn title(base: &str, view: &StatusView) -> String {
    match view.jobs.iter().filter(|j| j.overdue.is_some()).count() {
        0 => base.to_string(),
        1 => format!("{base}: 1 job overdue"),
        n => format!("{base}: {n} jobs overdue"),
    }
}

/// The loud part: every overdue job, first thing on the page, linking to the job.
fn overdue_banner(out: &mut String, view: &StatusView) {
    let overdue: Vec<(&str, &str)> = view
        .jobs
        .iter()
        .filter_map(|j| j.overdue.as_ref().map(|o| (j.id.as_str(), o.text.as_str())))
        .collect();
    if overdue.is_empty() {
        return;
    }
    out.push_str(
        "<div class=\"banner\" id=\"overdue\" role=\"alert\"><strong>Overdue: these jobs have \
         not completed for longer than their overdue_after.</strong><ul>",
    );
    for (id, text) in overdue {
        let _ = write!(
            out,
            "<li><a href=\"#job-{}\">{}</a></li>",
            esc(id),
            esc(text)
        );
    }
    out.push_str("</ul></div>");
}

/// The jobs; with `control` (the private part and the CSRF token), their controls and what
/// only the owner sees.
fn jobs_html(
    out: &mut String,
    view: &StatusView,
    tz: &TimeZone,
    control: Option<(&PrivateView, &str)>,
) {
    if view.jobs.is_empty() {
        out.push_str(
            "<p>No jobs are configured. Add some to NODEDIR/tahoe-jobs.cfg and send the daemon \
             SIGHUP.</p>",
        );
    }
    for job in &view.jobs {
        let control = control.map(|(p, csrf)| (p.jobs.get(&job.id), csrf));
        job_html(out, job, view, tz, control);
    }
}

fn when(at: Option<Timestamp>, now: Timestamp, tz: &TimeZone, none: &str) -> String {
    at.map_or_else(|| none.to_string(), |t| short_time(t, now, tz))
}

fn state_class(state: &str) -> &'static str {
    match state {
        "running" | "stopping" => "running",
        "failed" => "failed",
        "paused" => "paused",
        _ => "",
    }
}

fn job_html(
    out: &mut String,
    job: &JobView,
    view: &StatusView,
    tz: &TimeZone,
    control: Option<(Option<&JobPrivate>, &str)>,
) {
    let now = view.now;
    let private = control.and_then(|(p, _)| p);
    let badge = if job.overdue.is_some() {
        " <span class=\"badge\">OVERDUE</span>"
    } else {
        ""
    };
    let _ = write!(
        out,
        "<h2 id=\"job-{}\">{} <span class=\"muted\">{}</span>{badge}</h2><table>",
        esc(&job.id),
        esc(&job.id),
        esc(&job.task_type)
    );
    if let Some(o) = &job.overdue {
        out.push_str(&row(
            "Overdue",
            &format!(
                "<span class=\"failed\">since {}, for {}</span>",
                esc(&short_time(o.since, now, tz)),
                esc(&super::eta::long_duration(std::time::Duration::from_secs(
                    o.for_secs
                )))
            ),
        ));
    }
    out.push_str(&row(
        "State",
        &format!(
            "<span class=\"state {}\" data-state=\"{}\">{}</span>",
            state_class(&job.state),
            esc(&job.state),
            esc(&job.state_text)
        ),
    ));
    out.push_str(&row("Window", &esc(&job.window.text)));
    out.push_str(&row(
        "Frequency",
        &esc(&super::eta::short_duration(std::time::Duration::from_secs(
            job.frequency_secs,
        ))),
    ));
    out.push_str(&row(
        "Last completed",
        &esc(&when(job.last_completed, now, tz, "never")),
    ));
    out.push_str(&row("Next due", &esc(&when(job.next_due, now, tz, "now"))));
    if let Some(since) = job.unfinished_since {
        out.push_str(&row(
            "Unfinished run",
            &esc(&format!(
                "started {}, resumes at the next opportunity",
                short_time(since, now, tz)
            )),
        ));
    }
    // The control page shows the whole message, paths included.
    let last_error = private.and_then(|p| p.last_error.as_ref());
    let error = match last_error.or(job.last_error.as_ref()) {
        Some(e) => format!(
            "<span class=\"failed\">{}</span> <span class=\"muted\">({}{})</span>",
            esc(&e.message),
            esc(&short_time(e.at, now, tz)),
            if job.consecutive_failures > 1 {
                format!(", {} failures in a row", job.consecutive_failures)
            } else {
                String::new()
            }
        ),
        None => "none".into(),
    };
    out.push_str(&row("Last error", &error));
    let changed: Vec<String> = job
        .settings
        .iter()
        .filter(|s| s.live_since.is_some())
        .map(|s| format!("{} = {}", s.key, s.value))
        .collect();
    if !changed.is_empty() {
        out.push_str(&row(
            "Changed live",
            &format!("<span class=\"live\">{}</span>", esc(&changed.join(", "))),
        ));
    }
    out.push_str("</table>");
    out.push_str(&charts::progress_bars(job));
    out.push_str(&charts::week_strip(job, now, tz));
    progress_html(out, job);
    if let Some(graphs) = view.graphs.jobs.get(&job.id) {
        let _ = write!(out, "<h3>Transfer rates of {}</h3>", esc(&job.id));
        out.push_str(&charts::rate_graphs("job", &job.id, graphs, now));
    }
    let _ = write!(out, "<h3>Runs of {}</h3>", esc(&job.id));
    out.push_str(&charts::history(job, now, tz));
    if let Some((_, csrf)) = control {
        controls_html(out, job, csrf);
        settings_html(out, &format!("jobs/{}", job.id), &job.settings, csrf, false);
        if let Some(private) = private {
            if let Some(current) = &private.current {
                let _ = write!(
                    out,
                    "<p>Working on <span class=\"warn\">{}</span></p>",
                    esc(current)
                );
            }
            if !private.warnings.is_empty() {
                let _ = write!(
                    out,
                    "<details><summary>{} recent warnings ({} in this run)</summary><ul>",
                    private.warnings.len(),
                    job.warnings_total
                );
                for w in &private.warnings {
                    let _ = write!(
                        out,
                        "<li class=\"warn\">{} <span class=\"muted\">{}</span></li>",
                        esc(&w.message),
                        esc(&short_time(w.at, now, tz))
                    );
                }
                out.push_str("</ul></details>");
            }
        }
    } else if job.warnings_total > 0 {
        let _ = write!(
            out,
            "<p class=\"muted\">{} warnings in this run (listed on the control page).</p>",
            job.warnings_total
        );
    }
}

/// A counter's label, and whether it counts bytes.
fn counter_label(name: &str) -> (String, bool) {
    let known = match name {
        "files_seen" => "Files seen",
        "files_uploaded" => "Files uploaded",
        "files_reused" => "Files reused (unchanged)",
        "files_skipped" => "Files skipped",
        "files_changed" => "Files changed while read",
        "files_checked" => "Files re-checked",
        "dirs_seen" => "Directories seen",
        "dirs_created" => "Directories created",
        "dirs_reused" => "Directories reused",
        "dirs_skipped" => "Directories skipped",
        "dirs_checked" => "Directories re-checked",
        "bytes_seen" => "Bytes seen",
        "bytes_uploaded" => "Bytes uploaded",
        "shares_restarted" => "Partial shares sent again (dropped by a server)",
        "objects_checked" => "Objects checked",
        "objects_healthy" | "healthy" => "Healthy",
        "objects_unhealthy" | "unhealthy" => "Unhealthy",
        "objects_repaired" | "repaired" => "Repaired",
        _ => "",
    };
    let is_bytes = name.starts_with("bytes_") || name.ends_with("_bytes");
    if !known.is_empty() {
        return (known.to_string(), is_bytes);
    }
    let mut label = name.replace('_', " ");
    if let Some(first) = label.get(..1) {
        label = format!("{}{}", first.to_uppercase(), &label[1..]);
    }
    (label, is_bytes)
}

fn progress_html(out: &mut String, job: &JobView) {
    let counters: Vec<_> = job
        .counters
        .iter()
        // Averages since the start are replaced by the recent rate below.
        .filter(|(name, _)| !name.ends_with("_per_second"))
        .collect();
    if counters.is_empty() && job.labels.is_empty() && job.progress.is_none() {
        return;
    }
    let title = if job.progress.is_some() {
        "This run"
    } else {
        "Last run"
    };
    let _ = write!(out, "<table><tr><th colspan=\"2\">{title}</th></tr>");
    // What the task says about the run ("Data path: direct"), before its counts.
    for (name, value) in &job.labels {
        out.push_str(&row(&counter_label(name).0, &esc(value)));
    }
    for (name, value) in counters {
        let (label, is_bytes) = counter_label(name);
        let show = |v: u64| if is_bytes { bytes(v) } else { v.to_string() };
        let mut text = show(*value);
        if job.progress.is_some() {
            if let Some(est) = job.estimates.get(name).filter(|e| **e > 0) {
                text = format!("{text} of about {}", show(*est));
            }
        }
        out.push_str(&row(&label, &esc(&text)));
    }
    if let Some(p) = &job.progress {
        if let Some(r) = p.upload_bytes_per_second {
            out.push_str(&row("Upload rate (last minute)", &esc(&rate(r))));
        }
        let left = match (p.files_left, p.bytes_left) {
            (Some(f), Some(b)) => Some(format!("about {f} files, {}", bytes(b))),
            (Some(f), None) => Some(format!("about {f} files")),
            (None, Some(b)) => Some(format!("about {}", bytes(b))),
            (None, None) => None,
        };
        if let Some(left) = left {
            out.push_str(&row("Left", &esc(&left)));
        }
        let eta = match (&p.eta, &p.eta_missing) {
            (Some(eta), _) => eta.text.clone(),
            (None, Some(why)) => format!("unknown: {why}"),
            (None, None) => "unknown".into(),
        };
        out.push_str(&row("Finish", &esc(&eta)));
    }
    out.push_str("</table>");
}

fn hidden(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

fn controls_html(out: &mut String, job: &JobView, csrf: &str) {
    let id = esc(&job.id);
    let h = hidden(csrf);
    out.push_str("<div>");
    if job.paused {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"jobs/{id}/resume\">{h}\
             <button type=\"submit\">Resume</button></form>"
        );
    } else {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"jobs/{id}/pause\">{h}\
             <input type=\"text\" name=\"for\" placeholder=\"for (e.g. 2h); empty: until resumed\" \
             aria-label=\"pause for\"> <button type=\"submit\">Pause</button></form>"
        );
    }
    let _ = write!(
        out,
        "<form method=\"post\" action=\"jobs/{id}/run\">{h}<label><input type=\"checkbox\" \
         name=\"ignore_window\" value=\"1\"> ignore the window</label> \
         <button type=\"submit\">Run now</button></form></div>"
    );
}

/// The table of live settings with a form per key; `extra` adds a row to set a new key.
fn settings_html(out: &mut String, base: &str, settings: &[LiveSetting], csrf: &str, extra: bool) {
    let base = esc(base);
    let h = hidden(csrf);
    out.push_str(
        "<table><tr><th>Setting</th><th>In force</th><th>File</th><th>Change live</th></tr>",
    );
    for s in settings {
        let key = esc(&s.key);
        let value = if s.live_since.is_some() {
            format!("<span class=\"live\">{} (live)</span>", esc(&s.value))
        } else {
            esc(&s.value)
        };
        let reset = if s.live_since.is_some() {
            format!(
                "<form method=\"post\" action=\"{base}/reset\">{h}\
                 <input type=\"hidden\" name=\"key\" value=\"{key}\">\
                 <button type=\"submit\">Reset to file</button></form>"
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<tr><td>{key}</td><td>{value}</td><td class=\"muted\">{}</td><td>\
             <form method=\"post\" action=\"{base}/set\">{h}\
             <input type=\"hidden\" name=\"key\" value=\"{key}\">\
             <input type=\"text\" name=\"value\" value=\"{}\" aria-label=\"{key}\"> \
             <button type=\"submit\">Set</button></form>{reset}</td></tr>",
            esc(&s.file_value),
            esc(&s.value),
        );
    }
    if extra {
        let _ = write!(
            out,
            "<tr><td colspan=\"4\"><form method=\"post\" action=\"{base}/set\">{h}\
             <input type=\"text\" name=\"key\" placeholder=\"server.NAME.upload\" aria-label=\"key\"> \
             <input type=\"text\" name=\"value\" placeholder=\"64KiB/s\" aria-label=\"value\"> \
             <button type=\"submit\">Set</button></form></td></tr>"
        );
    }
    out.push_str("</table>");
}

fn flow_cells(f: &FlowView) -> String {
    format!(
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        esc(&rate(f.rate_bytes_per_second)),
        esc(&bytes(f.bytes)),
        esc(&limit(f.limit_bytes_per_second)),
        esc(&seconds(f.throttled_seconds)),
    )
}

const FLOW_HEADER: &str =
    "<th>Direction</th><th>Rate</th><th>Bytes</th><th>Limit now</th><th>Throttled</th>";

fn budget_html(
    out: &mut String,
    b: &BudgetView,
    graphs: &GraphsView,
    now: Timestamp,
    csrf: Option<&str>,
) {
    let _ = write!(
        out,
        "<h2 id=\"budget\">Budget</h2><p class=\"muted\">Server figures are {}{}. CPU: limit {}, \
         recent use {}{}.</p>",
        esc(&b.accounting),
        if b.accounting == "exact" {
            " (metered by the shaping proxy)"
        } else {
            " (from what jobs fed to the node)"
        },
        esc(&share(b.cpu_limit)),
        esc(&b
            .cpu_recent_share
            .map_or("not measured".to_string(), |s| share(Some(s)))),
        b.cpu_error
            .as_ref()
            .map(|e| format!(" (not measured: {})", esc(e)))
            .unwrap_or_default(),
    );
    if !b.notes.is_empty() {
        out.push_str("<ul>");
        for note in &b.notes {
            let _ = write!(out, "<li>{}</li>", esc(note));
        }
        out.push_str("</ul>");
    }
    let _ = write!(out, "<table><tr><th>Total</th>{FLOW_HEADER}</tr>");
    for (dir, f) in [("upload", &b.total.upload), ("download", &b.total.download)] {
        let _ = write!(out, "<tr><td></td><td>{dir}</td>{}</tr>", flow_cells(f));
    }
    let _ = write!(out, "<tr><th>Job</th>{FLOW_HEADER}</tr>");
    for (id, j) in &b.jobs {
        for (dir, f) in [("upload", &j.upload), ("download", &j.download)] {
            let _ = write!(
                out,
                "<tr><td class=\"id\">{}</td><td>{dir}</td>{}</tr>",
                esc(id),
                flow_cells(f)
            );
        }
        if j.cpu_limit.is_some() || j.cpu_paused_seconds > 0.0 {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>cpu</td><td colspan=\"2\"></td><td>{}</td><td>{}</td></tr>",
                esc(id),
                esc(&share(j.cpu_limit)),
                esc(&seconds(j.cpu_paused_seconds))
            );
        }
    }
    if !b.servers.is_empty() {
        let _ = write!(out, "<tr><th>Server</th>{FLOW_HEADER}</tr>");
        for (id, s) in &b.servers {
            for (dir, f) in [("upload", &s.upload), ("download", &s.download)] {
                let _ = write!(
                    out,
                    "<tr><td class=\"id\">{} <span class=\"muted\">{}</span></td><td>{dir}</td>{}</tr>",
                    esc(id),
                    esc(&s.accounting),
                    flow_cells(f)
                );
            }
        }
    }
    out.push_str("</table>");
    for (id, g) in &graphs.servers {
        let _ = write!(out, "<h3>Storage server {}</h3>", esc(id));
        out.push_str(&charts::rate_graphs("server", id, g, now));
    }
    match csrf {
        Some(csrf) => settings_html(out, "budget", &b.settings, csrf, true),
        None => {
            let changed: Vec<String> = b
                .settings
                .iter()
                .filter(|s| s.live_since.is_some())
                .map(|s| format!("{} = {}", s.key, s.value))
                .collect();
            if !changed.is_empty() {
                let _ = write!(
                    out,
                    "<p>Changed live: <span class=\"live\">{}</span></p>",
                    esc(&changed.join(", "))
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    fn view() -> StatusView {
        fixture::view_with_budget(&fixture::status())
    }

    fn control() -> ControlView {
        fixture::control_view(&fixture::status(), true)
    }

    #[test]
    fn the_public_page_shows_progress_eta_and_budget_without_controls() {
        let tz = fixture::config().daemon.timezone;
        let page = public_page(&view(), &tz);
        for text in [
            "backup.b1",
            "running since 22:00",
            "open until Fri 04:00",
            "Files uploaded",
            "<th>Data path</th><td>node (fallback: cannot read &lt;path&gt;: &lt;capability&gt;)",
            "about 500 files, 4.7 GiB",
            "about 2 more windows, done around Sun 00:53",
            "48.8 KiB/s",
            "v0-parents",
            "64.0 KiB/s",
            "bandwidth = 256KiB/s",
            "http-equiv=\"refresh\"",
        ] {
            assert!(page.contains(text), "missing {text:?}");
        }
        assert!(!page.contains("<form"));
        assert!(!page.contains("csrf"));
    }

    #[test]
    fn both_pages_draw_the_bars_strip_graphs_and_history() {
        let tz = fixture::config().daemon.timezone;
        let public = public_page(&view(), &tz);
        let control = control_page(&control(), &tz, "c5rf");
        for page in [&public, &control] {
            for part in [
                "<svg class=\"bar\"",
                "<svg class=\"week\"",
                "<div class=\"charts\" data-job=\"backup.b1\">",
                "<div class=\"charts\" data-server=\"v0-parents\">",
                "<svg class=\"runs\"",
                "<table class=\"history\">",
            ] {
                assert!(page.contains(part), "missing {part}");
            }
            // Nothing the style sheet's hash does not cover: no inline style, no script.
            assert!(!page.contains(" style="));
        }
        assert_eq!(public.matches("<script").count(), 0);
        assert_eq!(
            control.matches("<script").count(),
            1,
            "only the refresh script"
        );
    }

    #[test]
    fn the_control_page_has_a_form_for_every_control() {
        let tz = fixture::config().daemon.timezone;
        let page = control_page(&control(), &tz, "c5rf");
        for action in [
            "jobs/backup.b1/pause",
            "jobs/backup.b1/run",
            "jobs/backup.b1/set",
            "jobs/backup.b1/reset",
            "budget/set",
        ] {
            assert!(
                page.contains(&format!("method=\"post\" action=\"{action}\"")),
                "{action}"
            );
        }
        assert_eq!(
            page.matches("name=\"csrf\" value=\"c5rf\"").count(),
            page.matches("<form").count(),
            "every form carries the CSRF token"
        );
        assert!(page.contains("name=\"ignore_window\""));
        assert!(page.contains("256KiB/s (live)"));
        assert!(page.contains("(changed live; file: 1MiB/s)"));
        assert!(page.contains(CONTROL_REFRESH_SCRIPT));
    }

    #[test]
    fn everything_from_the_outside_is_escaped() {
        let mut status = fixture::status();
        status.jobs[0].progress.warnings[0].message = "<script>alert(1)</script>".into();
        status.jobs[0].last_error.as_mut().unwrap().message = "\"><img src=x>".into();
        let v = fixture::control_view(&status, false);
        let page = control_page(&v, &fixture::config().daemon.timezone, "x");
        assert!(!page.contains("<script>alert"));
        assert!(!page.contains("<img"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    const SENTENCE: &str =
        "backup.b1 is overdue: last completed 16 days ago, expected every 1 week";

    #[test]
    fn an_overdue_job_gets_a_banner_at_the_top_and_a_badge() {
        let tz = fixture::config().daemon.timezone;
        let page = public_page(&fixture::view_with_budget(&fixture::overdue_status()), &tz);
        let banner = page
            .find("role=\"alert\"")
            .expect("a banner on the public page");
        let first_job = page.find("<h2 id=\"job-").unwrap();
        assert!(banner < first_job, "the banner comes before the jobs");
        assert!(
            page.contains(&format!("<a href=\"#job-backup.b1\">{SENTENCE}</a>")),
            "{page}"
        );
        assert!(page.contains(
            "<h2 id=\"job-backup.b1\">backup.b1 <span class=\"muted\">backup</span> \
             <span class=\"badge\">OVERDUE</span></h2>"
        ));
        assert!(page.contains("since Wed 23:00, for 1 day"));
        assert!(page.contains("<title>tahoe-jobs status: 1 job overdue</title>"));

        let control = control_page(
            &fixture::control_view(&fixture::overdue_status(), true),
            &tz,
            "c5rf",
        );
        assert!(control.contains("role=\"alert\""));
        assert!(control.contains(SENTENCE));
        assert!(control.contains("<span class=\"badge\">OVERDUE</span>"));
    }

    #[test]
    fn no_banner_while_nothing_is_overdue() {
        let tz = fixture::config().daemon.timezone;
        let page = public_page(&view(), &tz);
        assert!(page.contains("backup.b1"));
        assert!(!page.contains("role=\"alert\""));
        assert!(!page.contains("OVERDUE"));
        assert!(page.contains("<title>tahoe-jobs status</title>"));
    }
}
