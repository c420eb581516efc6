//! The client side of the running daemon's private API, for `status`, `pause`, `resume`, `start`
//! and `control-url`: it finds the daemon where the configuration says it listens, reads the
//! control token the daemon keeps in the state directory, and talks over loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tahoe_jobs_config::Config;

use crate::cli::GlobalArgs;
use crate::web::api::ApiReply;
use crate::web::security::CSRF_HEADER;
use crate::web::token;
use crate::web::view::ControlView;

/// How long the daemon gets to answer.
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Client {
    /// `http://ADDR` without a trailing slash.
    origin: String,
    /// `/control/<token>/`.
    control_path: String,
    csrf: String,
    state_dir: PathBuf,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    pub config: Config,
}

/// Where to connect for a daemon listening on `addr`: a wildcard address is reached on loopback.
pub fn connect_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

impl Client {
    /// Reads the configuration and the control token; does not contact the daemon yet.
    pub fn new(global: &GlobalArgs) -> anyhow::Result<Client> {
        let config = super::load_config(global).map_err(|e| anyhow!("{e}"))?;
        let state_dir = config.daemon.state_dir.clone();
        let token = token::read(&state_dir).map_err(|e| {
            anyhow!(
                "cannot read the control token {}: {e}. Is `tahoe-jobs run` running? It creates \
                 the token when it starts, in [jobs] state_dir (give this command the same -d \
                 NODEDIR and --config as the daemon).",
                token::token_path(&state_dir).display()
            )
        })?;
        let origin = format!("http://{}", connect_addr(config.daemon.web_addr));
        let http = reqwest::Client::builder()
            // The daemon is on loopback: a proxy from the environment must not see the token.
            .no_proxy()
            .timeout(TIMEOUT)
            .build()
            .context("cannot build an HTTP client")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start an async runtime")?;
        Ok(Client {
            control_path: format!("/control/{}/", token.as_str()),
            csrf: token.csrf(),
            origin,
            state_dir,
            http,
            runtime,
            config,
        })
    }

    /// The control page's address (a secret).
    pub fn control_url(&self) -> String {
        format!("{}{}", self.origin, self.control_path)
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        anyhow!(
            "cannot reach the tahoe-jobs daemon at {}/: is `tahoe-jobs run` running, with the \
             same -d NODEDIR and --config as this command? ({e})",
            self.origin
        )
    }

    fn check_found(&self, status: reqwest::StatusCode) -> anyhow::Result<()> {
        if status == reqwest::StatusCode::NOT_FOUND {
            bail!(
                "the daemon at {}/ does not accept this control token: is it running with the \
                 state directory {}?",
                self.origin,
                self.state_dir.display()
            );
        }
        Ok(())
    }

    /// The control page's view: the public view and the private part.
    pub fn status(&self) -> anyhow::Result<ControlView> {
        let url = format!("{}api/status", self.control_url());
        self.runtime.block_on(async {
            let resp = self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| self.unreachable(e))?;
            self.check_found(resp.status())?;
            if !resp.status().is_success() {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                bail!("the daemon answered {status}: {}", text.trim());
            }
            resp.json::<ControlView>()
                .await
                .context("the daemon's status could not be read")
        })
    }

    /// Posts to the API (`path` below `api/`) and returns what the daemon says it did.
    pub fn post(&self, path: &str, body: serde_json::Value) -> anyhow::Result<String> {
        let url = format!("{}api/{path}", self.control_url());
        self.runtime.block_on(async {
            let resp = self
                .http
                .post(&url)
                .header("Origin", &self.origin)
                .header(CSRF_HEADER, &self.csrf)
                .json(&body)
                .send()
                .await
                .map_err(|e| self.unreachable(e))?;
            let status = resp.status();
            let reply: Option<ApiReply> = resp.json().await.ok();
            match reply {
                Some(r) if r.ok => Ok(r.message),
                Some(r) => bail!("{}", r.message),
                None => {
                    self.check_found(status)?;
                    bail!("the daemon answered {status}")
                }
            }
        })
    }
}

/// `jobs/<job>` with the job's name percent-encoded for a path segment.
pub fn job_path(job: &str) -> String {
    let mut out = String::from("jobs/");
    for b in job.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_address_is_reached_on_loopback() {
        let a: SocketAddr = "0.0.0.0:3457".parse().unwrap();
        assert_eq!(connect_addr(a), "127.0.0.1:3457".parse().unwrap());
        let a: SocketAddr = "[::]:3457".parse().unwrap();
        assert_eq!(connect_addr(a), "[::1]:3457".parse().unwrap());
        let a: SocketAddr = "192.168.1.2:80".parse().unwrap();
        assert_eq!(connect_addr(a), a);
    }

    #[test]
    fn job_names_are_encoded_for_the_path() {
        assert_eq!(job_path("backup.b1"), "jobs/backup.b1");
        assert_eq!(job_path("a b/c"), "jobs/a%20b%2Fc");
    }
}
