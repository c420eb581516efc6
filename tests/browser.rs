//! A real browser on the pages: headless Chromium, driven by ChromeDriver over the WebDriver
//! protocol, opens the public page and the control page, presses Pause, sees the job paused,
//! and saves a screenshot under `target/` that must not be blank. During a running, throttled
//! backup on a real grid it finds the progress bars, rate graphs (with their limits), week strip
//! and run history on both pages, and keeps full-page screenshots of both at desktop and phone
//! widths in `target/screenshots/`.
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

use crate::support::daemon::{free_port, http, idle_job_file, Daemon};
use crate::support::files::seeded_bytes;
use crate::support::grid::shared_grid;

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
        self.session_as(profile, None)
    }

    /// A session as a phone of this CSS width would show the pages (Chromium's device
    /// emulation: the viewport's width, a pixel ratio of 2, touch).
    fn phone_session(&self, profile: &Path, width: u32) -> Session<'_> {
        self.session_as(
            profile,
            Some(json!({ "deviceMetrics": { "width": width, "height": 844, "pixelRatio": 2.0 } })),
        )
    }

    fn session_as(&self, profile: &Path, mobile: Option<Value>) -> Session<'_> {
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
        let mut options = json!({ "binary": CHROMIUM, "args": args });
        if let Some(m) = mobile {
            options["mobileEmulation"] = m;
        }
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": options
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

    /// A DevTools protocol command.
    fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            Method::POST,
            "/goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    /// Shows the pages as a browser set to dark mode would (`prefers-color-scheme: dark`).
    fn dark_mode(&self, dark: bool) {
        let value = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": value }] }),
        );
    }

    /// The whole page, not only the viewport, as a PNG (through the DevTools protocol).
    fn full_screenshot(&self) -> Vec<u8> {
        let cdp = |cmd: &str, params: Value| self.cdp(cmd, params);
        let metrics = cdp("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let (w, h) = (
            size["width"].as_f64().unwrap_or(1200.0),
            size["height"].as_f64().unwrap_or(1000.0),
        );
        let shot = cdp(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": w, "height": h, "scale": 1 }
            }),
        );
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("a base64 PNG")
    }

    /// Waits until an element matches the CSS selector on the current page (which may reload)
    /// and returns it.
    fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(el) = self.find(css) {
                return el;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {css}:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
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

/// `target/screenshots/`, where the page screenshots are kept for people to look at.
fn screenshots_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Checks a screenshot is a real picture of at least `min_w` pixels across, and keeps it.
fn keep_screenshot(png: &[u8], name: &str, min_w: u32) -> PathBuf {
    let path = screenshots_dir().join(name);
    std::fs::write(&path, png).unwrap();
    let (w, h, colours) = png_colours(png);
    assert!(w >= min_w && h >= 800, "{name}: {w}x{h}");
    assert!(png.len() > 20_000, "{name}: {} bytes: blank?", png.len());
    assert!(
        colours > 32,
        "{name}: {colours} colours: blank? see {}",
        path.display()
    );
    path
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

/// What the pictures must show on either page while the backup runs throttled: a progress bar
/// per estimated counter, the job's rate graphs with a line and the limit drawn, the server's
/// graphs, the week strip with its windows and "now", and the run history.
const PICTURES: [&str; 9] = [
    "div.progress[data-counter=files_seen] svg.bar rect.bar-fill",
    "div.progress[data-counter=bytes_seen] svg.bar rect.bar-fill",
    "div.charts[data-job=\"backup.s\"] svg.graph polyline.up",
    "div.charts[data-job=\"backup.s\"] svg.graph path.up-limit",
    "div.charts[data-server] svg.graph path.up-limit",
    "figure.weekfig svg.week rect.open",
    "figure.weekfig svg.week g.mark.now",
    "figure.runsfig svg.runs rect.run.completed",
    "table.history tr.run-row",
];

#[test]
fn screenshots_of_both_pages_during_a_throttled_backup_show_bars_graphs_strip_and_history() {
    let grid = shared_grid();
    let alias = format!("shots{}", std::process::id());
    grid.create_alias(&alias);
    let src = tempfile::tempdir().unwrap();
    let write_tree = |seed: u64| {
        for d in 0..3 {
            let dir = src.path().join(format!("d{d}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..20u64 {
                let len = 8_000 + 1_700 * f as usize;
                std::fs::write(
                    dir.join(format!("f{f}.bin")),
                    seeded_bytes(seed * 1000 + d * 100 + f, len),
                )
                .unwrap();
            }
        }
    };
    write_tree(1);
    // Windows in UTC around the present hour and later today, so the strip has bands and the
    // run is inside one of them (three hours: far more than the test takes).
    let hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600
        % 24;
    let h = |plus: u64| (hour + plus) % 24;
    let windows = format!("{:02}00-{:02}00,{:02}00-{:02}00", h(0), h(3), h(8), h(11));
    let toml = format!(
        "[jobs]\ntimezone = \"UTC\"\n\n[backup.s]\nsource = \"{}\"\ntarget = \"{alias}:s\"\n\
         frequency = \"1week\"\nallowed_times = \"{windows}\"\n\n\
         [budget.server.storage0]\nupload = \"64KiB/s\"\n",
        src.path().display()
    );
    let d = Daemon::on_node(grid.node_dir(), &toml);

    // A first run, at full speed: its totals are the second run's estimates.
    let deadline = Instant::now() + Duration::from_secs(300);
    let first = loop {
        let job = d.job_json("backup.s");
        if !job["last_completed"].is_null() {
            break job;
        }
        assert!(
            job["consecutive_failures"] == 0,
            "the first backup failed: {job}\n{}",
            d.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "the first backup did not finish: {job}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        first["history"].as_array().map(Vec::len),
        Some(1),
        "{first}"
    );

    // The second run, every file changed, throttled to 8 KiB/s: about 1.4 MB lasts minutes,
    // and the limit is a visible share of the first run's rate on the graphs.
    write_tree(2);
    let h = http();
    let (status, _, body) = h.post_json(
        &d.control("api/jobs/backup.s/override"),
        &[("Origin", &d.origin()), ("X-CSRF-Token", &d.csrf())],
        &json!({ "key": "bandwidth", "value": "8KiB/s" }),
    );
    assert_eq!(status.as_u16(), 200, "{body}");
    let out = d.cli(&["start", "backup.s"]);
    assert!(out.status.success(), "{out:?}");
    // Wait until it runs with an estimate, a pace and an ETA, and the graphs have samples.
    let deadline = Instant::now() + Duration::from_secs(180);
    let uploaded = |job: &Value| job["counters"]["bytes_uploaded"].as_u64().unwrap_or(0);
    let at_eta = loop {
        let job = d.job_json("backup.s");
        let running = job["state"] == "running";
        if running && job["progress"]["eta"]["at"].is_string() {
            break uploaded(&job);
        }
        assert!(
            Instant::now() < deadline,
            "the throttled run never showed an ETA: {job}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Then until another 256 KiB went through at the limit (half a minute), so the graphs show
    // the rate lying on its limit rather than a dot.
    loop {
        let job = d.job_json("backup.s");
        if uploaded(&job) >= at_eta + 256 * 1024 {
            assert_eq!(job["state"], "running", "{job}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the throttled run stalled: {job}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let driver = Driver::start();
    let profile = d.dir.path().join("chromium-profile");
    let phone_profile = d.dir.path().join("chromium-phone");
    std::fs::create_dir_all(&profile).unwrap();
    std::fs::create_dir_all(&phone_profile).unwrap();
    let public = format!("http://{}/", d.addr);
    let control = d.control("");
    let mut kept = Vec::new();
    {
        let desktop = driver.session(&profile);
        desktop
            .call(
                Method::POST,
                "/window/rect",
                Some(json!({ "width": 1280, "height": 1000 })),
            )
            .unwrap();
        for (url, name) in [(&public, "public"), (&control, "control")] {
            desktop.go(url);
            desktop.wait_for_state("running");
            for css in PICTURES {
                desktop.wait_for(css);
            }
            let png = desktop.full_screenshot();
            kept.push(keep_screenshot(&png, &format!("{name}-desktop.png"), 1200));
        }
        // In dark mode too.
        desktop.dark_mode(true);
        desktop.go(&public);
        for css in PICTURES {
            desktop.wait_for(css);
        }
        let png = desktop.full_screenshot();
        kept.push(keep_screenshot(&png, "public-desktop-dark.png", 1200));
        desktop.dark_mode(false);
        // The public page still has no form, no token and no path.
        desktop.go(&public);
        desktop.wait_for(PICTURES[2]);
        let source = desktop.source();
        assert!(!source.contains("<form"), "the public page has no forms");
        assert!(!source.contains(&d.token()));
        assert!(!source.contains(&src.path().display().to_string()));
    }
    {
        let phone = driver.phone_session(&phone_profile, 390);
        for (url, name) in [(&public, "public"), (&control, "control")] {
            phone.go(url);
            phone.wait_for_state("running");
            for css in PICTURES {
                phone.wait_for(css);
            }
            // Nothing is wider than the phone's screen but the tables, which scroll.
            let png = phone.full_screenshot();
            let path = keep_screenshot(&png, &format!("{name}-phone.png"), 390);
            let (w, _, _) = png_colours(&png);
            assert!(
                w <= 2 * 390 + 2,
                "{name} on a phone is {w} px wide: it overflows"
            );
            kept.push(path);
        }
    }
    for path in &kept {
        println!("screenshot: {}", path.display());
    }
    // Lift the limit, so the run can end with the daemon.
    let _ = h.post_json(
        &d.control("api/jobs/backup.s/override"),
        &[("Origin", &d.origin()), ("X-CSRF-Token", &d.csrf())],
        &json!({ "key": "bandwidth", "value": null }),
    );
}
