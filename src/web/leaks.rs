//! The rule the public outputs live by, checked on every one of them: no capability, no path,
//! no file name, no token, while the control page has them all.

use super::fixture::{self, SECRET_CAP, SECRET_PATH};
use super::metrics;
use super::pages::{control_page, public_page};
use super::view::StatusView;

fn view() -> StatusView {
    fixture::view_with_budget(&fixture::status())
}

fn assert_clean(what: &str, text: &str) {
    for secret in [
        "URI:",
        "secretsecret",
        SECRET_PATH,
        "/home/alice",
        "diary",
        "Private",
    ] {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

#[test]
fn the_public_page_json_and_metrics_hold_no_secrets() {
    let tz = fixture::config().daemon.timezone;
    let public = view();
    assert_clean("the public page", &public_page(&public, &tz));
    assert_clean("the public JSON", &serde_json::to_string(&public).unwrap());
    assert_clean("the metrics", &metrics::render(&public));
    // The error is there, with what was hidden marked.
    let error = &public.jobs[0].last_error.as_ref().unwrap().message;
    assert_eq!(error, "could not link <capability> under <path>");
}

#[test]
fn the_control_page_shows_what_the_public_one_hides() {
    let tz = fixture::config().daemon.timezone;
    let private = fixture::control_view(&fixture::status(), true);
    let page = control_page(&private, &tz, "csrf-value");
    assert!(page.contains(SECRET_PATH), "the warning and current file");
    assert!(page.contains("/home/alice/Private"), "the configuration");
    assert!(page.contains("value=\"csrf-value\""));
    let json = serde_json::to_string(&private).unwrap();
    assert!(json.contains(SECRET_PATH));
    assert!(json.contains("\"private\""));
    assert!(
        json.contains("could not link <capability> under /home/alice"),
        "the control page has the whole error, capabilities hidden: {json}"
    );
    // Capabilities are hidden even here.
    assert!(!page.contains("URI:") && !json.contains("URI:"));
    assert!(!json.contains(SECRET_CAP));
}

#[test]
fn an_overdue_job_s_banner_and_metrics_hold_no_secrets() {
    let tz = fixture::config().daemon.timezone;
    let public = fixture::view_with_budget(&fixture::overdue_status());
    let page = public_page(&public, &tz);
    assert!(page.contains("role=\"alert\""), "the banner is there");
    assert_clean("the public page with the banner", &page);
    assert_clean("the public JSON", &serde_json::to_string(&public).unwrap());
    assert_clean("the metrics", &metrics::render(&public));
}
