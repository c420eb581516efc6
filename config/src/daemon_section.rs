//! `[jobs]`: the daemon's own settings (web address, state directory, time zone, shaping
//! proxy, node timeout, store cache size, hook time limit and notification URL). Keys added here are daemon-wide; a task type's keys go in its schema.

use std::net::SocketAddr;

use jiff::tz::TimeZone;

use crate::duration::HumanDuration;
use crate::hooks::{parse_notify_url, shown_url, NOTIFY_URL_ACCEPTED};
use crate::load::{DEFAULT_NODE_TIMEOUT, DEFAULT_WEB_ADDR};
use crate::model::{DaemonSettings, HookSettings};
use crate::origins::Leaf;
use crate::validate::Validator;
use crate::values::{parse_duration_or_zero, parse_path, parse_web_addr};

pub(crate) const JOBS_KEYS: &[&str] = &[
    "web.port",
    "state_dir",
    "timezone",
    "shaping.port",
    "node.timeout",
    "cache_size",
    "hooks.timeout",
    "notify.url",
];

impl Validator<'_> {
    pub(crate) fn daemon(&mut self, leaves: &[Leaf]) -> DaemonSettings {
        for leaf in leaves {
            if !JOBS_KEYS.contains(&leaf.key.as_str()) {
                self.unknown_key("jobs", leaf, &leaf.key.clone(), JOBS_KEYS);
            }
        }
        let find = |k: &str| leaves.iter().find(|l| l.key == k);
        let default_addr: SocketAddr = DEFAULT_WEB_ADDR.parse().expect("valid default");
        let web_addr = self
            .field(
                find("web.port"),
                "jobs.web.port",
                Some((default_addr, DEFAULT_WEB_ADDR.into())),
                parse_web_addr,
                "HOST:PORT such as 127.0.0.1:3457, a port number, or tcp:PORT:interface=ADDR",
            )
            .unwrap_or(default_addr);
        let node_dir = self.options.node_dir.clone();
        let default_state = node_dir.join("private").join("tahoe-jobs");
        let state_dir = self
            .field(
                find("state_dir"),
                "jobs.state_dir",
                Some((default_state.clone(), default_state.display().to_string())),
                |s| parse_path(s, &node_dir),
                "a directory path (relative paths are below the node directory)",
            )
            .unwrap_or(default_state);
        let system = TimeZone::system();
        let system_name = system.iana_name().unwrap_or("UTC").to_string();
        let (timezone, timezone_name) = self
            .field(
                find("timezone"),
                "jobs.timezone",
                Some((
                    (system.clone(), system_name.clone()),
                    format!("{system_name} (system)"),
                )),
                |s| {
                    TimeZone::get(s.trim())
                        .map(|tz| (tz, s.trim().to_string()))
                        .map_err(|_| format!("{s:?} is not a known time zone"))
                },
                "an IANA time zone name such as Europe/Berlin or America/New_York",
            )
            .unwrap_or((system, system_name));
        let shaping_addr = self
            .field(
                find("shaping.port"),
                "jobs.shaping.port",
                Some((None, "off".into())),
                |s| {
                    if s.trim().eq_ignore_ascii_case("off") || s.trim().is_empty() {
                        return Ok(None);
                    }
                    let addr = parse_web_addr(s)?;
                    if !addr.ip().is_loopback() {
                        return Err(format!(
                            "{addr} is not a loopback address; the proxy would relay for anyone who can reach it"
                        ));
                    }
                    Ok(Some(addr))
                },
                "off, or a loopback HOST:PORT (or port) for the SOCKS5 shaping proxy, such as 127.0.0.1:3458",
            )
            .flatten();
        let node_timeout = self
            .field(
                find("node.timeout"),
                "jobs.node.timeout",
                Some((
                    HumanDuration(DEFAULT_NODE_TIMEOUT),
                    HumanDuration(DEFAULT_NODE_TIMEOUT).to_string(),
                )),
                |s| match parse_duration_or_zero(s) {
                    Ok(d) if d.is_zero() => {
                        Err("a timeout of zero would give up on every request at once".to_string())
                    }
                    other => other.map(HumanDuration),
                },
                "a duration such as 10min or 1h: how long the node may stay silent on one request",
            )
            .map_or(DEFAULT_NODE_TIMEOUT, HumanDuration::as_duration);
        let cache_size = self
            .field(
                find("cache_size"),
                "jobs.cache_size",
                Some((
                    crate::size::DEFAULT_CACHE_SIZE,
                    format!("{}MiB", crate::size::DEFAULT_CACHE_SIZE >> 20),
                )),
                crate::size::parse_cache_size,
                crate::size::CACHE_SIZE_ACCEPTED,
            )
            .unwrap_or(crate::size::DEFAULT_CACHE_SIZE);
        DaemonSettings {
            web_addr,
            state_dir,
            timezone,
            timezone_name,
            shaping_addr,
            node_timeout,
            cache_size,
        }
    }

    /// `[jobs] hooks.timeout` and `notify.url` (the URL shown by scheme and host only).
    pub(crate) fn hook_settings(&mut self, leaves: &[Leaf]) -> HookSettings {
        let find = |k: &str| leaves.iter().find(|l| l.key == k);
        let default = HookSettings::default();
        let timeout = self
            .field(
                find("hooks.timeout"),
                "jobs.hooks.timeout",
                Some((
                    HumanDuration(default.timeout),
                    HumanDuration(default.timeout).to_string(),
                )),
                |s| match parse_duration_or_zero(s) {
                    Ok(d) if d.is_zero() => Err("a hook needs some time to run".to_string()),
                    other => other.map(HumanDuration),
                },
                "a duration such as 30s or 5min: how long a hook command may run before it is killed",
            )
            .map_or(default.timeout, HumanDuration::as_duration);
        let before = self.settings.len();
        let notify_url = self
            .field(
                find("notify.url"),
                "jobs.notify.url",
                Some((None, "off".into())),
                parse_notify_url,
                NOTIFY_URL_ACCEPTED,
            )
            .flatten();
        if let (Some(url), Some(setting)) = (&notify_url, self.settings.get_mut(before)) {
            setting.value = shown_url(url);
        }
        HookSettings {
            timeout,
            notify_url,
            commands: Default::default(),
        }
    }
}
