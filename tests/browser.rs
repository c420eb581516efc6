//! A real browser on the pages: headless Chromium, driven by ChromeDriver over the WebDriver
//! protocol, opens the public page and the control page, presses Pause, sees the job paused,
//! and saves a screenshot under `target/` that must not be blank.
//!
//! Chromium and ChromeDriver come from Debian's `chromium` and `chromium-driver` packages, which
//! `scripts/test` installs. Without them this test fails (it never skips), saying so.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::daemon::{free_port, idle_job_file, Daemon};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// ChromeDriver on a loopback port, killed on drop.
struct Driver {
    child: Child,
    base: String,
    http: Wire,
}

/// WebDriver commands over HTTP: blocking calls on an async reqwest client.
struct Wire {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Wire {
    fn new() -> Wire {
        Wire {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    /// One command: its `value`, or the driver's error message.
    fn call(&self, method: Method, url: &str, body: Option<Value>) -> Result<Value, String> {
        self.rt.block_on(async {
            let mut req = self.client.request(method, url);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let ok = resp.status().is_success();
            let v: Value = resp.json().await.map_err(|e| e.to_string())?;
            if ok {
                Ok(v["value"].clone())
            } else {
                Err(v["value"]["message"].to_string())
            }
        })
    }
}

impl Driver {
    fn start() -> Driver {
        for (bin, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the browser test needs Debian's {package} package. Run \
                 scripts/test, which installs chromium and chromium-driver, or: apt-get install \
                 -y chromium chromium-driver"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver");
        let d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: Wire::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while d
            .http
            .call(Method::GET, &format!("{}/status", d.base), None)
            .map(|v| v["ready"] != true)
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    /// A headless Chromium session with the flags this machine needs.
    fn session(&self, profile: &Path) -> Session<'_> {
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1200,1000".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
                }
            }
        });
        let v = self
            .http
            .call(Method::POST, &format!("{}/session", self.base), Some(caps))
            .unwrap_or_else(|e| panic!("Chromium did not start: {e}"));
        Session {
            driver: self,
            url: format!("{}/session/{}", self.base, v["sessionId"].as_str().unwrap()),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Session<'a> {
    driver: &'a Driver,
    url: String,
}

impl Session<'_> {
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        self.driver
            .http
            .call(method, &format!("{}{path}", self.url), body)
    }

    fn go(&self, url: &str) {
        self.call(Method::POST, "/url", Some(json!({ "url": url })))
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The element's id, if one matches the CSS selector now.
    fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .ok()?;
        v.as_object()?.values().next()?.as_str().map(str::to_string)
    }

    fn text(&self, element: &str) -> String {
        self.call(Method::GET, &format!("/element/{element}/text"), None)
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.call(
            Method::GET,
            &format!("/element/{element}/attribute/{name}"),
            None,
        )
        .ok()?
        .as_str()
        .map(str::to_string)
    }

    fn click(&self, element: &str) {
        self.call(
            Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .unwrap_or_else(|e| panic!("cannot click: {e}"));
    }

    fn source(&self) -> String {
        self.call(Method::GET, "/source", None)
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    fn screenshot(&self) -> Vec<u8> {
        let v = self
            .call(Method::GET, "/screenshot", None)
            .unwrap_or_else(|e| panic!("no screenshot: {e}"));
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .expect("a base64 PNG")
    }

    /// Waits until the job's state on the current page reads `state` (the page may reload).
    fn wait_for_state(&self, state: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(el) = self.find("span[data-state]") {
                if self.attribute(&el, "data-state").as_deref() == Some(state) {
                    return self.text(&el);
                }
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed the job {state}:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self.call(Method::DELETE, "", None);
    }
}

/// Distinct colours in a PNG, and its size.
fn png_colours(png: &[u8]) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(png);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let bpp = info.line_size / info.width as usize;
    let colours: std::collections::HashSet<&[u8]> =
        buf[..info.buffer_size()].chunks(bpp.max(1)).collect();
    (info.width, info.height, colours.len())
}

fn screenshot_path(name: &str) -> PathBuf {
    // <target>/tmp: under target/, as CI keeps it.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_browser_pauses_a_job_from_the_control_page() {
    let src = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::with_job_file(&idle_job_file(src.path()));
    daemon.keep.push(src);
    let driver = Driver::start();
    let profile = daemon.dir.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let browser = driver.session(&profile);
    let addr: SocketAddr = daemon.addr;

    // The public page: the job, its state, no controls.
    browser.go(&format!("http://{addr}/"));
    let state = browser.wait_for_state("waiting_for_window");
    assert_eq!(state, "waiting for a window that never opens");
    let heading = browser
        .find("h2")
        .map(|h| browser.text(&h))
        .unwrap_or_default();
    assert!(heading.contains("backup.b1"), "{heading}");
    assert!(
        browser.find("form").is_none(),
        "the public page has no forms"
    );

    // The control page: press Pause, come back to the page, see it paused.
    browser.go(&daemon.control(""));
    browser.wait_for_state("waiting_for_window");
    let button = browser
        .find("form[action=\"jobs/backup.b1/pause\"] button")
        .expect("a Pause button");
    assert_eq!(browser.text(&button), "Pause");
    browser.click(&button);
    let state = browser.wait_for_state("paused");
    assert_eq!(state, "paused until resumed");
    assert!(
        browser
            .find("form[action=\"jobs/backup.b1/resume\"] button")
            .is_some(),
        "a paused job offers Resume"
    );
    assert_eq!(daemon.job_json("backup.b1")["paused"], true);

    let png = browser.screenshot();
    let path = screenshot_path("browser-control-paused.png");
    std::fs::write(&path, &png).unwrap();
    let (w, h, colours) = png_colours(&png);
    assert!(w >= 800 && h >= 600, "{w}x{h}");
    assert!(png.len() > 10_000, "{} bytes: blank?", png.len());
    assert!(
        colours > 8,
        "{colours} colours: blank? see {}",
        path.display()
    );
    drop(browser);
    daemon.stop();
}
