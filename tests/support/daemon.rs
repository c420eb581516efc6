//! A `tahoe-jobs run` daemon process for the tests, with its own port, state directory and
//! log, and a blocking HTTP client for its pages; started and stopped (or killed) as a test
//! needs, and stopped when dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;

use super::process::tahoe_jobs_command;

/// How long the daemon may take to answer after it starts (CI runs many builds on two cores).
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// A free loopback port (the small race with other processes is acceptable in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A job file with one backup job that never starts by itself (its window never opens), so the
/// tests drive it by hand and it never needs a node.
pub fn idle_job_file(source: &Path) -> String {
    format!(
        "[backup]\nb1.source = {}\nb1.target = web-tests:b1\nb1.frequency = 1week\n\
         b1.allowed_times = none\nb1.bandwidth = 1MiB/s\n\n[budget]\nupload = 2MiB/s\n",
        source.display()
    )
}

/// A `tahoe-jobs run` process with its own node directory (or a given one), state directory,
/// port and log file; stopped on drop.
pub struct Daemon {
    child: Option<Child>,
    pub dir: TempDir,
    pub node_dir: PathBuf,
    pub state_dir: PathBuf,
    pub addr: SocketAddr,
    config_file: Option<PathBuf>,
    log: PathBuf,
    /// Directories the daemon's jobs use, kept as long as it runs.
    pub keep: Vec<TempDir>,
}

impl Daemon {
    /// A daemon on a fresh node directory holding `job_file` as its `tahoe-jobs.cfg`.
    pub fn with_job_file(job_file: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("a temp dir");
        let node_dir = dir.path().join("node");
        std::fs::create_dir_all(&node_dir).unwrap();
        std::fs::write(node_dir.join("tahoe-jobs.cfg"), job_file).unwrap();
        Self::start_in(dir, node_dir, None)
    }

    /// A daemon on an existing node directory (the grid's client), with jobs from a TOML file.
    pub fn on_node(node_dir: &Path, config_toml: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("a temp dir");
        let state_dir = dir.path().join("state");
        let mut d = Self::new_with_toml(dir, node_dir, config_toml, state_dir);
        d.start();
        d
    }

    /// As [`Daemon::on_node`], with its state in `state_dir`, and not started yet:
    /// [`Daemon::start`] starts it (again, after [`Daemon::kill9`] or [`Daemon::stop`]).
    pub fn unstarted_on_node(node_dir: &Path, config_toml: &str, state_dir: PathBuf) -> Daemon {
        let dir = tempfile::tempdir().expect("a temp dir");
        Self::new_with_toml(dir, node_dir, config_toml, state_dir)
    }

    fn new_with_toml(
        dir: TempDir,
        node_dir: &Path,
        config_toml: &str,
        state_dir: PathBuf,
    ) -> Daemon {
        let config = dir.path().join("jobs.toml");
        std::fs::write(&config, config_toml).unwrap();
        Self::new_in(dir, node_dir.to_path_buf(), Some(config), state_dir)
    }

    fn start_in(dir: TempDir, node_dir: PathBuf, config_file: Option<PathBuf>) -> Daemon {
        let state_dir = dir.path().join("state");
        let mut d = Self::new_in(dir, node_dir, config_file, state_dir);
        d.start();
        d
    }

    fn new_in(
        dir: TempDir,
        node_dir: PathBuf,
        config_file: Option<PathBuf>,
        state_dir: PathBuf,
    ) -> Daemon {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = dir.path().join("daemon.log");
        Daemon {
            child: None,
            dir,
            node_dir,
            state_dir,
            addr,
            config_file,
            log,
            keep: Vec::new(),
        }
    }

    /// The global options every command of this daemon gets.
    pub fn global_args(&self) -> Vec<String> {
        let mut args = vec![
            "-d".to_string(),
            self.node_dir.display().to_string(),
            "--set".into(),
            format!("jobs.web.port={}", self.addr),
            "--set".into(),
            format!("jobs.state_dir={}", self.state_dir.display()),
        ];
        if let Some(c) = &self.config_file {
            args.push("--config".into());
            args.push(c.display().to_string());
        }
        args
    }

    /// Starts (again) and waits until the status page answers.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = tahoe_jobs_command()
            .args(self.global_args())
            .arg("run")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start tahoe-jobs run");
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the daemon exited ({status}):\n{}", self.log_text());
            }
            if http().get(&self.url("/")).0 == StatusCode::OK {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not answer within {READY_TIMEOUT:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, as a crash or power loss would end it; waits until it is gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: plain syscall on our own child, not yet reaped.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the daemon did not stop within 30 s:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "the daemon exited with {status}:\n{}",
            self.log_text()
        );
    }

    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("control.token"))
            .expect("the daemon writes control.token")
            .trim()
            .to_string()
    }

    /// `/control/<token>/` + `rest`.
    pub fn control(&self, rest: &str) -> String {
        self.url(&format!("/control/{}/{rest}", self.token()))
    }

    /// The CSRF token, as the control page's forms carry it.
    pub fn csrf(&self) -> String {
        let page = http().get(&self.control("")).2;
        let at = page
            .find("name=\"csrf\" value=\"")
            .expect("a form with the CSRF token");
        page[at + 19..].split('"').next().unwrap().to_string()
    }

    /// `tahoe-jobs <global args> ARGS...`.
    pub fn cli(&self, args: &[&str]) -> Output {
        tahoe_jobs_command()
            .args(self.global_args())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run tahoe-jobs")
    }

    /// One job as its owner sees it: its public JSON with the control view's private part
    /// under `private`, and the whole last error (paths included) as `last_error`.
    pub fn job_json(&self, id: &str) -> Value {
        let (status, _, body) = http().get(&self.control("api/status"));
        assert_eq!(status, StatusCode::OK, "{body}");
        let view: Value = serde_json::from_str(&body).unwrap();
        let mut job = view["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id)
            .unwrap_or_else(|| panic!("no job {id} in {view}"))
            .clone();
        let private = view["private"]["jobs"][id].clone();
        if !private["last_error"].is_null() {
            job["last_error"] = private["last_error"].clone();
        }
        job["private"] = private;
        job
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A blocking HTTP client that does not follow redirects (the tests look at them).
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

pub fn http() -> Http {
    Http {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        client: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            // Each request on a new connection: the tests restart daemons on the same port.
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    }
}

impl Http {
    fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, String) {
        self.rt.block_on(async {
            match req.send().await {
                Ok(r) => {
                    let status = r.status();
                    let headers = r.headers().clone();
                    (status, headers, r.text().await.unwrap_or_default())
                }
                // Not up yet, for the start-up poll.
                Err(_) => (
                    StatusCode::from_u16(599).unwrap(),
                    HeaderMap::new(),
                    String::new(),
                ),
            }
        })
    }

    pub fn get(&self, url: &str) -> (StatusCode, HeaderMap, String) {
        self.send(self.client.get(url))
    }

    /// A form post with the given headers.
    pub fn post_form(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = self.client.post(url).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req)
    }

    pub fn post_json(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = self.client.post(url).json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req)
    }
}
