//! Parsers for the values the loader itself reads, and helpers task types use for theirs:
//! booleans as configparser reads them, grid targets, durations where zero is allowed, paths,
//! and [`redact`], which hides capabilities wherever a value is shown.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::Target;
use crate::rate::RateSchedule;

/// What a boolean may look like, for error messages.
pub const BOOL_ACCEPTED: &str = "true or false (also yes/no, on/off, 1/0)";
/// What a grid target may look like, for error messages.
pub const TARGET_ACCEPTED: &str =
    "ALIAS:PATH such as backup:pictures, or a directory capability URI:DIR2:...";

/// command-line flags that mirror such keys.
pub fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err("the value is empty".into());
    }
    humantime::parse_duration(trimmed).map_err(|e| e.to_string())
}

/// Job names become parts of keys, URLs and metric labels: keep them plain.
pub(crate) fn valid_job_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Booleans as configparser's getboolean reads them.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean")),
    }
}

/// Hides capabilities wherever a value or message is shown: every `URI:...` (also after `ro.`
/// or `imm.`) becomes `<capability>`, with whatever follows it up to a space, a quote, `<`, `>`,
/// `)`, `,` or `;`: a path below a directory cap goes too (on the public page it would name
/// files), as does anything a future cap kind might hold. The one redaction of the project:
/// the configuration's values and problems, the pages, the hooks and the logs all use it.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("URI:") {
        out.push_str(&rest[..at]);
        out.push_str("<capability>");
        let cap = &rest[at..];
        let end = cap
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ',' | ';')
            })
            .unwrap_or(cap.len());
        rest = &cap[end..];
    }
    out.push_str(rest);
    out
}

pub(crate) fn parse_web_addr(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(port) = t.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    // Tahoe's endpoint form: tcp:3457:interface=127.0.0.1
    if let Some(rest) = t.strip_prefix("tcp:") {
        let mut parts = rest.split(':');
        let port: u16 = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("{t:?} has no port number"))?;
        let mut ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for part in parts {
            if let Some(iface) = part.strip_prefix("interface=") {
                ip = iface
                    .parse()
                    .map_err(|_| format!("{iface:?} is not an IP address"))?;
            }
        }
        return Ok(SocketAddr::new(ip, port));
    }
    Err(format!("{t:?} is not an address"))
}

/// Parses a path, expanding a leading `~/`; a relative path is taken below `base`.
pub fn parse_path(s: &str, base: &Path) -> Result<PathBuf, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("the path is empty".into());
    }
    let expanded = expand_home(t);
    Ok(if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    })
}

/// Parses a path that must be absolute after expanding a leading `~/`.
pub fn parse_absolute_path(s: &str) -> Result<PathBuf, String> {
    let p = expand_home(s.trim());
    if s.trim().is_empty() {
        return Err("the path is empty".into());
    }
    if !p.is_absolute() {
        return Err("the path must be absolute".into());
    }
    Ok(p)
}

/// Replaces a leading `~/` with `$HOME`; anything else (or no `HOME`) is returned unchanged.
pub fn expand_home(t: &str) -> PathBuf {
    if let Some(rest) = t.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(t)
}

/// `alias:path`, `alias:`, or a capability optionally followed by `/path`.
pub fn parse_target(s: &str) -> Result<Target, String> {
    let t = s.trim();
    if t.starts_with("URI:") {
        let (cap, path) = t.split_once('/').unwrap_or((t, ""));
        if !cap.starts_with("URI:DIR2") {
            return Err("the capability is not a directory capability (URI:DIR2...)".into());
        }
        return Ok(Target::Cap {
            cap: cap.to_string(),
            path: path.trim_matches('/').to_string(),
        });
    }
    let (alias, path) = t
        .split_once(':')
        .ok_or_else(|| format!("{t:?} has no alias: write ALIAS:PATH"))?;
    if alias.is_empty() || alias.contains(['/', ' ']) {
        return Err(format!("{alias:?} is not an alias name"));
    }
    Ok(Target::Alias {
        alias: alias.to_string(),
        path: path.trim_matches('/').to_string(),
    })
}

/// Total and per-server limits are absolute: a percentage there has nothing to be a share of.
pub(crate) fn parse_absolute_schedule(s: &str) -> Result<RateSchedule, String> {
    let schedule: RateSchedule = s.parse()?;
    if schedule.uses_percent() {
        return Err("a [budget] limit cannot be a percentage".into());
    }
    Ok(schedule)
}

#[cfg(test)]
mod redact_tests {
    use super::redact;

    #[test]
    fn every_capability_goes_and_the_words_around_stay() {
        assert_eq!(redact("URI:DIR2:abc:def/photos"), "<capability>");
        assert_eq!(
            redact("linked URI:CHK:aa:bb:3:10:99 and URI:LIT:xyz, then done"),
            "linked <capability> and <capability>, then done"
        );
        assert_eq!(redact("no secrets here"), "no secrets here");
        // What either of the two earlier functions hid, this one hides.
        assert_eq!(
            redact("x URI:DIR2:a/sub and \"URI:CHK:b\", (ro.URI:DIR2-RO:c:d) 'imm.URI:LIT:e'"),
            "x <capability> and \"<capability>\", (ro.<capability>) 'imm.<capability>'"
        );
        assert_eq!(redact("URI:SSK:a.b+c=d;"), "<capability>;");
    }
}

/// Field helpers for task types' serde structs: `#[serde(deserialize_with = "...")]`.
pub mod de {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    use crate::duration::HumanDuration;

    /// A duration where zero makes sense (`recheck_after = 0s`).
    pub fn duration_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration_or_zero(&text).map_err(serde::de::Error::custom)
    }

    /// A positive duration (`1week`, `36h`).
    pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        HumanDuration::deserialize(d).map(HumanDuration::as_duration)
    }
}
