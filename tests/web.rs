//! The status and control pages against a real daemon process (`tahoe-jobs run`): every page and
//! JSON form, the 404 a wrong token gets, CSRF and Origin refusals, the CLI clients, live limits
//! across a restart, and a real backup on the grid whose public outputs and logs never show the
//! token, a capability or a file name.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::daemon::{http, idle_job_file, Daemon};
use crate::support::process::describe_output;
use crate::support::shared_grid;

/// Everything about a response that a client could compare: status, body and headers (the date
/// aside, which differs from one second to the next).
fn fingerprint(r: &(StatusCode, HeaderMap, String)) -> (StatusCode, String, BTreeSet<String>) {
    let headers =
        r.1.iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
            .collect();
    (r.0, r.2.clone(), headers)
}

fn idle_daemon() -> Daemon {
    let src = tempfile::tempdir().unwrap();
    let mut d = Daemon::with_job_file(&idle_job_file(src.path()));
    d.keep.push(src);
    d
}

#[test]
fn every_page_and_its_json_form_answers() {
    let d = idle_daemon();
    let h = http();
    let token = d.token();
    assert_eq!(token.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.state_dir.join("control.token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (status, headers, page) = h.get(&d.url("/"));
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.contains("backup.b1") && page.contains("waiting for a window that never opens"));
    assert!(page.contains("http-equiv=\"refresh\""));
    assert!(!page.contains(&token) && !page.contains("<form"));

    let (status, _, body) = h.get(&d.url("/?t=json"));
    assert_eq!(status, StatusCode::OK);
    let public: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(public["jobs"][0]["id"], "backup.b1");
    assert_eq!(public["jobs"][0]["state"], "waiting_for_window");
    assert_eq!(public["jobs"][0]["window"]["open"], false);
    // Just set up: not overdue (that comes 15 days after it was first seen), and said so.
    assert!(public["jobs"][0]["overdue"].is_null());
    assert!(public["jobs"][0]["last_completed"].is_null());
    assert_eq!(public["jobs"][0]["overdue_after_secs"], 15 * 86_400);
    assert!(public["jobs"][0]["first_seen"].is_string());
    assert!(public.get("private").is_none());
    assert!(public["jobs"][0].get("private").is_none());
    // The week ahead (no window ever opens: no band) and the run history (none yet).
    let week = &public["jobs"][0]["week"];
    assert!(week["from"].is_string() && week["to"].is_string(), "{week}");
    assert_eq!(week["open"], json!([]));
    assert_eq!(public["jobs"][0]["history"], json!([]));
    assert_eq!(
        public["budget"]["jobs"]["backup.b1"]["upload"]["limit_bytes_per_second"],
        1024 * 1024
    );
    assert!(!body.contains(&token));

    let (status, headers, metrics) = h.get(&d.url("/metrics"));
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    for line in [
        "tahoe_jobs_job_info{job=\"backup.b1\",type=\"backup\"} 1",
        "tahoe_jobs_job_state{job=\"backup.b1\",state=\"waiting_for_window\"} 1",
        "tahoe_jobs_job_overdue{job=\"backup.b1\"} 0",
        "tahoe_jobs_budget_total_limit_bytes_per_second{direction=\"upload\"} 2097152",
    ] {
        assert!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
    assert!(!metrics.contains(&token));
    assert!(
        !metrics.contains("tahoe_jobs_last_completed_timestamp_seconds{"),
        "never completed: no sample"
    );

    let (status, _, control) = h.get(&d.control(""));
    assert_eq!(status, StatusCode::OK);
    assert!(control.contains("action=\"jobs/backup.b1/pause\""));
    assert!(control.contains("Configuration") && control.contains("backup.b1.source"));

    let (status, _, body) = h.get(&d.control("?t=json"));
    assert_eq!(status, StatusCode::OK);
    let private: Value = serde_json::from_str(&body).unwrap();
    assert!(private["private"]["settings"].as_array().unwrap().len() > 5);
    assert!(private["private"]["jobs"]["backup.b1"].is_object());
    let (status, _, api) = h.get(&d.control("api/status"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&api).unwrap()["jobs"][0]["id"],
        "backup.b1"
    );

    // Without the slash, the control address redirects to the page.
    let (status, headers, _) = h.get(&d.url(&format!("/control/{token}")));
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers["location"], format!("/control/{token}/").as_str());
}

#[test]
fn a_wrong_or_missing_token_answers_exactly_like_an_unknown_path() {
    let d = idle_daemon();
    let h = http();
    let token = d.token();
    let mut near = token.clone().into_bytes();
    near[63] = if near[63] == b'0' { b'1' } else { b'0' };
    let near = String::from_utf8(near).unwrap();
    let csrf = d.csrf();
    let origin = d.origin();
    let big = "a".repeat(200_000);
    type Send<'a> = Box<dyn Fn(&str) -> (StatusCode, HeaderMap, String) + 'a>;
    let get: Send = Box::new(|url| h.get(url));
    let form: Send = Box::new(|url| h.post_form(url, &[("Origin", &origin)], &[("csrf", &csrf)]));
    let api: Send = Box::new(|url| {
        h.post_json(
            url,
            &[("Origin", &origin), ("X-CSRF-Token", &csrf)],
            &json!({}),
        )
    });
    let odd: Send = Box::new(|url| h.post_form(url, &[], &[("%zz", "\u{0}")]));
    let huge: Send = Box::new(|url| h.post_form(url, &[], &[("v", &big)]));
    // Each request, sent with a wrong or missing token and to a path that does not exist.
    let cases: Vec<(&str, String, &Send)> = vec![
        ("/control/", "/control/".into(), &get),
        ("/control", "/control".into(), &get),
        (
            "a wrong token",
            format!("/control/{}/", "ab".repeat(32)),
            &get,
        ),
        ("the token but one digit", format!("/control/{near}/"), &get),
        (
            "a prefix of the token",
            format!("/control/{}/", &token[..32]),
            &get,
        ),
        ("the CSRF token", format!("/control/{csrf}/"), &get),
        ("no slash", format!("/control/{near}"), &get),
        ("the API", format!("/control/{near}/api/status"), &get),
        (
            "a GET of an action",
            format!("/control/{near}/jobs/backup.b1/pause"),
            &get,
        ),
        (
            "a complete form post",
            format!("/control/{near}/jobs/backup.b1/pause"),
            &form,
        ),
        (
            "a complete API post",
            format!("/control/{near}/api/jobs/backup.b1/pause"),
            &api,
        ),
        (
            "a malformed post",
            format!("/control/{near}/jobs/backup.b1/pause"),
            &odd,
        ),
        (
            "a huge post",
            format!("/control/{near}/jobs/backup.b1/set"),
            &huge,
        ),
    ];
    for (what, path, send) in cases {
        let answer = fingerprint(&send(&d.url(&path)));
        assert_eq!(answer.0, StatusCode::NOT_FOUND, "{what}");
        let unknown = fingerprint(&send(&d.url("/no/such/page")));
        assert_eq!(answer, unknown, "{what}");
    }
    assert_eq!(
        d.job_json("backup.b1")["paused"],
        false,
        "nothing was paused"
    );
}

#[test]
fn posts_without_the_csrf_token_or_from_another_origin_change_nothing() {
    let d = idle_daemon();
    let h = http();
    let csrf = d.csrf();
    let origin = d.origin();
    let pause = d.control("jobs/backup.b1/pause");
    let api_pause = d.control("api/jobs/backup.b1/pause");
    let refused = [
        (
            "no CSRF token",
            h.post_form(&pause, &[("Origin", &origin)], &[("for", "1h")]),
        ),
        (
            "a wrong CSRF token",
            h.post_form(&pause, &[("Origin", &origin)], &[("csrf", &"0".repeat(32))]),
        ),
        (
            "a foreign Origin",
            h.post_form(
                &pause,
                &[("Origin", "http://evil.example")],
                &[("csrf", &csrf)],
            ),
        ),
        (
            "another port on loopback",
            h.post_form(
                &pause,
                &[("Origin", "http://127.0.0.1:1")],
                &[("csrf", &csrf)],
            ),
        ),
        (
            "a foreign Referer",
            h.post_form(
                &pause,
                &[("Referer", "http://evil.example/x")],
                &[("csrf", &csrf)],
            ),
        ),
        (
            "neither Origin nor Referer",
            h.post_form(&pause, &[], &[("csrf", &csrf)]),
        ),
        (
            "Origin null",
            h.post_form(&pause, &[("Origin", "null")], &[("csrf", &csrf)]),
        ),
        (
            "an API call without the header",
            h.post_json(&api_pause, &[("Origin", &origin)], &json!({})),
        ),
        (
            "an API call from another origin",
            h.post_json(
                &api_pause,
                &[("Origin", "http://evil.example"), ("X-CSRF-Token", &csrf)],
                &json!({}),
            ),
        ),
    ];
    for (what, (status, _, body)) in refused {
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
        assert_eq!(
            d.job_json("backup.b1")["paused"],
            false,
            "{what} paused the job"
        );
    }
    // GET never changes anything.
    let (status, _, _) = h.get(&pause);
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(d.job_json("backup.b1")["paused"], false);

    // The same post from the page itself works, and comes back to the page.
    let (status, headers, _) = h.post_form(&pause, &[("Origin", &origin)], &[("csrf", &csrf)]);
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers["location"],
        format!("/control/{}/", d.token()).as_str()
    );
    assert_eq!(d.job_json("backup.b1")["state"], "paused");

    // A bad value is explained, not applied.
    let (status, _, body) = h.post_form(
        &d.control("jobs/backup.b1/set"),
        &[("Origin", &origin)],
        &[
            ("csrf", &csrf),
            ("key", "bandwidth"),
            ("value", "very fast"),
        ],
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("bandwidth"), "{body}");
}

#[test]
fn the_cli_pauses_resumes_and_starts_jobs_in_the_running_daemon() {
    let d = idle_daemon();
    let out = d.cli(&["pause", "b1", "--for", "2h"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("paused b1 for 2h"));
    let job = d.job_json("backup.b1");
    assert_eq!(job["state"], "paused");
    let until: tahoe_jobs_config::jiff::Timestamp =
        job["paused_until"].as_str().unwrap().parse().unwrap();
    let secs = until.as_second() - tahoe_jobs_config::jiff::Timestamp::now().as_second();
    assert!((7100..=7200).contains(&secs), "{secs}");

    let out = d.cli(&["status"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("backup.b1 (backup): paused until"),
        "{stdout}"
    );

    let out = d.cli(&["status", "--json", "backup.b1"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["paused"], true);

    // A paused job cannot be started.
    let out = d.cli(&["start", "backup.b1"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("resume it first"));

    let out = d.cli(&["resume", "backup.b1"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert_eq!(d.job_json("backup.b1")["paused"], false);

    // Started outside its window, it runs (and fails at once: there is no node here).
    let out = d.cli(&["start", "b1", "--ignore-window"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = d.job_json("backup.b1");
        if let Some(message) = job["last_error"]["message"].as_str() {
            assert!(message.contains("node.url"), "{message}");
            assert!(!job["last_started"].is_null());
            // The public page shows the error without the path in it.
            let public = http().get(&d.url("/?t=json")).2;
            let public: Value = serde_json::from_str(&public).unwrap();
            let shown = public["jobs"][0]["last_error"]["message"].as_str().unwrap();
            assert!(shown.contains("<path>") && !shown.contains(&d.node_dir.display().to_string()));
            break;
        }
        assert!(Instant::now() < deadline, "the job never started: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = d.cli(&["start", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no job nope"),
        "{}",
        describe_output(&out)
    );

    let out = d.cli(&["control-url"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(url, d.control(""));
    assert_eq!(http().get(&url).0, StatusCode::OK);
}

#[test]
fn the_cli_says_what_to_do_when_the_daemon_is_not_running() {
    let mut d = idle_daemon();
    d.stop();
    let out = d.cli(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is `tahoe-jobs run` running"), "{stderr}");

    std::fs::remove_file(d.state_dir.join("control.token")).unwrap();
    let out = d.cli(&["pause", "b1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("control.token") && stderr.contains("tahoe-jobs run"),
        "{stderr}"
    );
}

#[test]
fn live_limits_are_persisted_across_a_restart_and_reset_to_the_file() {
    let mut d = idle_daemon();
    let h = http();
    let origin = d.origin();
    let csrf = d.csrf();
    let set = |path: &str, key: &str, value: Value| {
        let (status, _, body) = h.post_json(
            &d.control(path),
            &[("Origin", &origin), ("X-CSRF-Token", &csrf)],
            &json!({ "key": key, "value": value }),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
    };
    set("api/jobs/b1/override", "bandwidth", json!("64KiB/s"));
    set(
        "api/jobs/backup.b1/override",
        "allowed_times",
        json!("2200-0600"),
    );
    set("api/budget/override", "upload", json!("512KiB/s"));

    let check_live = |d: &Daemon| {
        let (_, _, body) = http().get(&d.url("/?t=json"));
        let v: Value = serde_json::from_str(&body).unwrap();
        let job = &v["jobs"][0];
        let bw = job["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "bandwidth")
            .unwrap();
        assert_eq!(bw["value"], "64KiB/s");
        assert_eq!(bw["file_value"], "1MiB/s");
        assert!(!bw["live_since"].is_null());
        assert_eq!(
            v["budget"]["jobs"]["backup.b1"]["upload"]["limit_bytes_per_second"],
            64 * 1024
        );
        assert_eq!(
            v["budget"]["total"]["upload"]["limit_bytes_per_second"],
            512 * 1024
        );
        assert_ne!(
            job["window"]["text"], "never opens",
            "the live window is in force"
        );
        let page = http().get(&d.control("")).2;
        assert!(page.contains("64KiB/s (live)"));
    };
    check_live(&d);
    d.restart();
    check_live(&d);

    // Back to the file, through the page's forms this time.
    let csrf = d.csrf();
    for (path, key) in [
        ("jobs/backup.b1/reset", "bandwidth"),
        ("jobs/backup.b1/reset", "allowed_times"),
        ("budget/reset", "upload"),
    ] {
        let (status, _, body) = h.post_form(
            &d.control(path),
            &[("Origin", &origin)],
            &[("csrf", &csrf), ("key", key)],
        );
        assert_eq!(status, StatusCode::SEE_OTHER, "{path} {key}: {body}");
    }
    d.restart();
    let (_, _, body) = http().get(&d.url("/?t=json"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["jobs"][0]["settings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["live_since"].is_null() && s["value"] == s["file_value"]));
    assert_eq!(
        v["budget"]["jobs"]["backup.b1"]["upload"]["limit_bytes_per_second"],
        1024 * 1024
    );
    assert_eq!(v["jobs"][0]["window"]["text"], "never opens");
}

/// A unique-enough name for the shared grid's aliases.
fn alias_name() -> String {
    format!("web{}", std::process::id())
}

#[test]
fn a_real_backup_shows_its_progress_and_never_leaks_the_token_or_a_capability() {
    let grid = shared_grid();
    let alias = alias_name();
    grid.create_alias(&alias);
    let src = tempfile::tempdir().unwrap();
    let secret_name = "confidential-name-7Q2";
    for d in 0..4 {
        let dir = src.path().join(format!("{secret_name}-dir{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..25 {
            let body = vec![b'a' + (f % 26) as u8; 200 + 97 * f as usize + d * 13];
            std::fs::write(dir.join(format!("{secret_name}-{f}.txt")), body).unwrap();
        }
    }
    // An unreadable file gives a warning naming its path (root reads anything: use a FIFO,
    // which the backup skips with a warning).
    let fifo = src.path().join(format!("{secret_name}.fifo"));
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

    let toml = format!(
        "[backup.w]\nsource = \"{}\"\ntarget = \"{alias}:web\"\nfrequency = \"1week\"\n",
        src.path().display()
    );
    let d = Daemon::on_node(grid.node_dir(), &toml);
    let token = d.token();
    let h = http();

    // Watch the public outputs for the whole run.
    let mut public = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let job = loop {
        public.push(h.get(&d.url("/")).2);
        public.push(h.get(&d.url("/?t=json")).2);
        public.push(h.get(&d.url("/metrics")).2);
        let job = d.job_json("backup.w");
        if !job["last_completed"].is_null() {
            break job;
        }
        assert!(
            job["consecutive_failures"] == 0,
            "the backup failed: {job}\n{}",
            d.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "the backup did not finish: {job}"
        );
        std::thread::sleep(Duration::from_millis(150));
    };
    public.push(h.get(&d.url("/")).2);
    public.push(h.get(&d.url("/metrics")).2);
    assert!(
        public.iter().any(|b| b.contains("\"state\": \"running\"")),
        "the pages were never seen while the backup ran"
    );
    assert_eq!(job["counters"]["files_uploaded"], 100, "{job}");
    assert_eq!(job["counters"]["files_skipped"], 1, "{job}");
    // The run says which way it reached the grid: every server speaks HTTPS, so directly.
    assert_eq!(job["labels"]["data_path"], "direct", "{job}");
    let page = &public[public.len() - 2];
    assert!(page.contains("<th>Data path</th><td>direct</td>"), "{page}");
    // The run is in the history, with its figures.
    let run = &job["history"][0];
    assert_eq!(run["outcome"], "completed", "{job}");
    assert_eq!(run["files"], job["counters"]["files_seen"], "{job}");
    assert_eq!(run["uploaded"], job["counters"]["bytes_uploaded"], "{job}");
    assert!(
        run["duration_secs"].is_u64() && run["started"].is_string(),
        "{run}"
    );
    let (_, _, api) = h.get(&d.control("api/status"));
    let api: Value = serde_json::from_str(&api).unwrap();
    let warnings = api["private"]["jobs"]["backup.w"]["warnings"].to_string();
    assert!(
        warnings.contains(secret_name),
        "the control page names the file: {warnings}"
    );
    let metrics = public.last().unwrap();
    assert!(
        metrics.contains("tahoe_jobs_run_files_uploaded_total{job=\"backup.w\"} 100"),
        "{metrics}"
    );

    // A second run, with every file changed and a live bandwidth limit that makes it last:
    // the previous run's totals give what is left, the recent pace an ETA.
    for d in 0..4 {
        let dir = src.path().join(format!("{secret_name}-dir{d}"));
        for f in 0..25 {
            let body = vec![b'A' + (f % 26) as u8; 300 + 97 * f as usize + d * 13];
            std::fs::write(dir.join(format!("{secret_name}-{f}.txt")), body).unwrap();
        }
    }
    let (origin, csrf) = (d.origin(), d.csrf());
    let limit = |value: Value| {
        let (status, _, body) = h.post_json(
            &d.control("api/jobs/backup.w/override"),
            &[("Origin", &origin), ("X-CSRF-Token", &csrf)],
            &json!({ "key": "bandwidth", "value": value }),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
    };
    limit(json!("16KiB/s"));
    let out = d.cli(&["start", "backup.w"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let deadline = Instant::now() + Duration::from_secs(120);
    let eta = loop {
        let body = h.get(&d.url("/?t=json")).2;
        public.push(body.clone());
        let view: Value = serde_json::from_str(&body).unwrap();
        let job = &view["jobs"][0];
        if let Some(text) = job["progress"]["eta"]["text"].as_str() {
            assert!(
                job["progress"]["files_left"].as_u64().unwrap() <= 100,
                "{job}"
            );
            break text.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no ETA while the second run went on: {job}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(eta.starts_with("done around "), "{eta}");
    let page = h.get(&d.url("/")).2;
    assert!(
        page.contains("Finish") && page.contains("Upload rate"),
        "{page}"
    );
    public.push(page);
    let metrics = h.get(&d.url("/metrics")).2;
    assert!(metrics.contains("tahoe_jobs_eta_timestamp_seconds{job=\"backup.w\"}"));
    public.push(metrics);
    // Lifting the limit lets it finish.
    limit(Value::Null);
    let first_completed = job["last_completed"].clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    while d.job_json("backup.w")["last_completed"] == first_completed {
        assert!(Instant::now() < deadline, "the second run did not finish");
        public.push(h.get(&d.url("/")).2);
        std::thread::sleep(Duration::from_millis(200));
    }

    let cap = grid.alias_cap(&alias).unwrap();
    let src_path = src.path().display().to_string();
    for body in &public {
        for secret in [
            token.as_str(),
            "URI:",
            cap.as_str(),
            secret_name,
            src_path.as_str(),
        ] {
            assert!(!body.contains(secret), "a public output shows {secret:?}");
        }
    }
    let log = d.log_text();
    for secret in [token.as_str(), "URI:", cap.as_str()] {
        assert!(!log.contains(secret), "the daemon's log shows {secret:?}");
    }
}
