//! The values of the hook keys: `[jobs] notify.url` and `hooks.timeout`, and each job's
//! `on_success`, `on_failure` and `on_overdue` commands.

/// What `notify.url` accepts.
pub const NOTIFY_URL_ACCEPTED: &str = "an http:// or https:// URL that accepts a JSON POST, or off";
/// What a hook command accepts.
pub const HOOK_ACCEPTED: &str =
    "a shell command, run with sh -c, with the event in TAHOE_JOB_* environment variables";

/// Parses `notify.url`: `off` (or empty) for none.
pub fn parse_notify_url(s: &str) -> Result<Option<String>, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| "not an http:// or https:// URL".to_string())?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("the URL has no host".into());
    }
    if s.chars().any(char::is_whitespace) {
        return Err("a URL cannot contain spaces".into());
    }
    Ok(Some(s.to_string()))
}

/// The URL as shown by `tahoe-jobs config` and in logs: scheme and host only, since the path
/// or query of a webhook is often its secret (a chat webhook's token, a private topic).
pub fn shown_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    if rest.len() > host.len() || rest.contains('@') {
        format!("{scheme}://{host}/…")
    } else {
        format!("{scheme}://{host}")
    }
}

/// Parses a hook command: any non-empty text; `off` or empty for none (to switch off a hook
/// another layer set).
pub fn parse_hook(s: &str) -> Result<Option<String>, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    Ok(Some(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_urls_are_http_or_https_with_a_host() {
        assert_eq!(
            parse_notify_url("https://ntfy.example/backups").unwrap(),
            Some("https://ntfy.example/backups".into())
        );
        assert_eq!(
            parse_notify_url(" http://127.0.0.1:8080/hook ").unwrap(),
            Some("http://127.0.0.1:8080/hook".into())
        );
        assert_eq!(parse_notify_url("off").unwrap(), None);
        assert_eq!(parse_notify_url("").unwrap(), None);
        assert!(parse_notify_url("ftp://x/").is_err());
        assert!(parse_notify_url("example.org/hook").is_err());
        assert!(parse_notify_url("https:///hook").is_err());
        assert!(parse_notify_url("https://:80/hook").is_err());
        assert!(parse_notify_url("https://a b/").is_err());
    }

    #[test]
    fn a_shown_url_keeps_only_scheme_and_host() {
        assert_eq!(
            shown_url("https://hooks.example/services/T0/B0/secret"),
            "https://hooks.example/…"
        );
        assert_eq!(
            shown_url("https://user:pw@hooks.example"),
            "https://hooks.example/…"
        );
        assert_eq!(shown_url("http://127.0.0.1:9/"), "http://127.0.0.1:9/…");
        assert_eq!(shown_url("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }

    #[test]
    fn a_hook_is_any_command_or_off() {
        assert_eq!(
            parse_hook("  notify-send backup done ").unwrap(),
            Some("notify-send backup done".into())
        );
        assert_eq!(parse_hook("off").unwrap(), None);
        assert_eq!(parse_hook("").unwrap(), None);
    }
}
