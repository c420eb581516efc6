//! The checks a state-changing request must pass besides the token in its path: it comes from
//! our own origin, and it carries the CSRF token. Pure functions of the request's headers.
//!
//! - Same origin: a browser names the page a POST comes from in `Origin` (or, failing that,
//!   `Referer`). It must be this server as the request addressed it (`Host`), so a page on
//!   another site cannot drive the controls through the user's browser. The host must also be
//!   an IP address or `localhost`: with a DNS name, an attacker's name re-bound to 127.0.0.1
//!   would be "same origin" with itself.
//! - CSRF token: derived from the control token (see [`super::token`]); the forms carry it in a
//!   field, the CLI in the [`CSRF_HEADER`] header.
//!
//! The headers every response gets, including 404s (so a wrong token cannot be told from an
//! unknown path by its headers), are here too.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

/// The header the private API's clients put the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Why a state-changing request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Checks that a request comes from this server's own origin.
pub fn same_origin(
    origin: Option<&str>,
    referer: Option<&str>,
    host: Option<&str>,
) -> Result<(), Refusal> {
    let refuse = |why: &str| Err(Refusal(why.to_string()));
    let claimed = match (origin, referer) {
        (Some("null"), _) => return refuse("the request's Origin is null (a sandboxed page?)"),
        (Some(o), _) => o.to_string(),
        (None, Some(r)) => match origin_of_url(r) {
            Some(o) => o,
            None => return refuse("the request's Referer is not a URL"),
        },
        (None, None) => {
            return refuse(
                "the request has neither Origin nor Referer: send Origin: http://HOST:PORT",
            )
        }
    };
    let Some(host) = host else {
        return refuse("the request has no Host header");
    };
    let Some(claimed) = claimed
        .strip_prefix("http://")
        .map(|a| normalize_authority(a.trim_end_matches('/')))
    else {
        return refuse("the request comes from another origin");
    };
    let host = normalize_authority(host);
    if !claimed.eq_ignore_ascii_case(&host) {
        return refuse("the request comes from another origin");
    }
    if !rebinding_safe(&host) {
        return refuse(
            "the control page answers changes only when addressed by IP address or localhost",
        );
    }
    Ok(())
}

/// `scheme://authority` of a URL.
fn origin_of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// `host:port` with the default port 80 made explicit.
fn normalize_authority(a: &str) -> String {
    let has_port = match a.rfind(':') {
        Some(i) => !a[i..].contains(']'),
        None => false,
    };
    if has_port {
        a.to_string()
    } else {
        format!("{a}:80")
    }
}

fn rebinding_safe(authority: &str) -> bool {
    let host = match authority.rfind(':') {
        Some(i) => &authority[..i],
        None => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok()
}

/// What the pages may load and where forms may go; with hashes of the only inline style and
/// script, so injected markup could not run anything even if escaping failed somewhere.
pub fn content_security_policy(style: &str, script: &str) -> String {
    format!(
        "default-src 'none'; style-src '{}'; script-src '{}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
        csp_hash(style),
        csp_hash(script)
    )
}

fn csp_hash(text: &str) -> String {
    use base64::Engine as _;
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Headers on every response. `Referrer-Policy: same-origin` keeps the control page's address
/// out of other sites' logs, while same-origin form posts still carry `Origin` (with
/// `no-referrer`, browsers would send `Origin: null`).
pub fn common_headers(csp: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Cache-Control", "no-store".into()),
        ("Referrer-Policy", "same-origin".into()),
        ("X-Content-Type-Options", "nosniff".into()),
        ("X-Frame-Options", "DENY".into()),
        ("Content-Security-Policy", csp.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_origin_passes() {
        let host = Some("127.0.0.1:3457");
        assert_eq!(
            same_origin(Some("http://127.0.0.1:3457"), None, host),
            Ok(())
        );
        assert_eq!(
            same_origin(None, Some("http://127.0.0.1:3457/control/x/"), host),
            Ok(())
        );
        assert_eq!(
            same_origin(Some("http://localhost:3457"), None, Some("localhost:3457")),
            Ok(())
        );
        assert_eq!(
            same_origin(Some("http://[::1]:3457"), None, Some("[::1]:3457")),
            Ok(())
        );
        assert_eq!(
            same_origin(Some("http://192.168.1.5"), None, Some("192.168.1.5:80")),
            Ok(())
        );
    }

    #[test]
    fn foreign_and_missing_origins_are_refused() {
        let host = Some("127.0.0.1:3457");
        for origin in [
            "http://evil.example",
            "http://127.0.0.1:8080",
            "https://127.0.0.1:3457",
            "null",
        ] {
            assert!(same_origin(Some(origin), None, host).is_err(), "{origin}");
        }
        assert!(same_origin(None, Some("http://evil.example/page"), host).is_err());
        assert!(same_origin(None, None, host).is_err());
        assert!(same_origin(Some("http://127.0.0.1:3457"), None, None).is_err());
        // Origin wins over Referer.
        assert!(same_origin(
            Some("http://evil.example"),
            Some("http://127.0.0.1:3457/"),
            host
        )
        .is_err());
    }

    #[test]
    fn a_rebound_dns_name_is_refused_even_when_consistent() {
        let r = same_origin(
            Some("http://attacker.example:3457"),
            None,
            Some("attacker.example:3457"),
        );
        assert!(r.unwrap_err().0.contains("IP address"));
    }

    #[test]
    fn the_policy_names_hashes() {
        let csp = content_security_policy("a{}", "x()");
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}
