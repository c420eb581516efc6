//! The real backup task obeys a stop promptly, on tokio's paused clock: after the stop no new
//! request reaches the node, and the task returns before the clock has moved on a second (the
//! engine's promise: a window close stops a job within a second). The node is a small HTTP
//! server on loopback that answers what a backup asks (the target's listing, uploads) and holds
//! the answers to the first uploads until the stop, so a task that ignored the stop would send
//! new uploads once they are answered.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tahoe_jobs_config::Target;
use tahoe_jobs_engine::{
    BudgetHandle, Outcome, ProgressSink, StopReason, StopSignal, SystemClock, Task, TaskContext,
};
use tahoe_jobs_tasks::backup::BackupParams;
use tahoe_jobs_tasks::backup::{BackupOptions, BackupTask};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How many uploads the node holds unanswered before the test stops the task.
const HELD: usize = 2;

/// What the fake node saw: each request's method and path, and whether it came after the stop.
#[derive(Default)]
struct Seen {
    requests: Vec<(String, String, bool)>,
    stopped: bool,
}

struct FakeNode {
    seen: Mutex<Seen>,
    /// Told when `HELD` uploads are waiting for their answers.
    uploads_held: Notify,
    /// Told once the task has been stopped: the held uploads are answered.
    release: Notify,
    released: Mutex<bool>,
}

impl FakeNode {
    fn uploads(&self) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.requests
            .iter()
            .filter(|(m, p, _)| m == "PUT" && p.starts_with("/uri"))
            .count()
    }
}

/// Reads one request: its head and a Content-Length body.
async fn read_request(s: &mut TcpStream) -> Option<(String, String)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let (head, body_len) = loop {
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            got.drain(..end + 4);
            break (head, len);
        }
    };
    while got.len() < body_len {
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let mut first = head.lines().next()?.split(' ');
    Some((first.next()?.to_string(), first.next()?.to_string()))
}

async fn answer(s: &mut TcpStream, status: &str, body: &str) {
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(reply.as_bytes()).await;
}

async fn serve(node: Arc<FakeNode>, mut s: TcpStream) {
    while let Some((method, path)) = read_request(&mut s).await {
        let n = {
            let mut seen = node.seen.lock().unwrap();
            let stopped = seen.stopped;
            seen.requests.push((method.clone(), path.clone(), stopped));
            seen.requests.len()
        };
        if method == "PUT" && path.starts_with("/uri") && !path.contains("t=uri") {
            if node.uploads() >= HELD {
                node.uploads_held.notify_one();
            }
            // Held until the stop, then answered: a task that ignored the stop would go on.
            loop {
                let released = node.release.notified();
                if *node.released.lock().unwrap() {
                    break;
                }
                released.await;
            }
            answer(
                &mut s,
                "200 OK",
                &format!("URI:CHK:{n:04}aaaa:bbbb:1:1:2000"),
            )
            .await;
        } else if method == "GET" && path.contains("t=json") && path.starts_with("/uri/") {
            // The target exists and has its Archives already.
            let body = r#"["dirnode", {"rw_uri": "URI:DIR2:cccc:dddd", "mutable": true,
                "children": {"Archives": ["dirnode", {"rw_uri": "URI:DIR2:eeee:ffff",
                "mutable": true, "children": {}, "metadata": {}}]}}]"#;
            answer(&mut s, "200 OK", body).await;
        } else {
            answer(&mut s, "404 Not Found", "not in this fake node").await;
        }
    }
}

async fn fake_node() -> (String, Arc<FakeNode>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let node = Arc::new(FakeNode {
        seen: Mutex::default(),
        uploads_held: Notify::new(),
        release: Notify::new(),
        released: Mutex::new(false),
    });
    let n = node.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(n.clone(), s));
        }
    });
    (url, node)
}

fn node_dir(dir: &Path, url: &str) -> std::path::PathBuf {
    let node = dir.join("node");
    std::fs::create_dir_all(node.join("private")).unwrap();
    std::fs::write(node.join("node.url"), format!("{url}\n")).unwrap();
    std::fs::write(node.join("private/aliases"), "b: URI:DIR2:cccc:dddd\n").unwrap();
    std::fs::write(node.join("tahoe.cfg"), "[client]\nshares.needed = 1\n").unwrap();
    node
}

#[tokio::test(start_paused = true)]
async fn a_stopped_backup_sends_nothing_more_and_returns_within_a_second() {
    let (url, node) = fake_node().await;
    let tmp = tempfile::tempdir().unwrap();
    let node_dir = node_dir(tmp.path(), &url);
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..40u8 {
        // Above the 55 bytes a literal capability holds: each file is an upload.
        std::fs::write(src.join(format!("f{i:02}")), vec![i; 2000]).unwrap();
    }
    let params = BackupParams {
        source: src,
        target: Target::Alias {
            alias: "b".into(),
            path: "x".into(),
        },
        exclude: Vec::new(),
        exclude_from: None,
        exclude_vcs: false,
        concurrency: Some(HELD),
        recheck_after: tahoe_jobs_tasks::backup::DEFAULT_RECHECK_AFTER,
        recheck_all_after: tahoe_jobs_tasks::backup::DEFAULT_RECHECK_ALL_AFTER,
        // The fake node has no storage servers: this is the node's path.
        data_path: tahoe_jobs_tasks::DataPath::Node,
    };
    let db = tahoe_jobs_tasks::sled::Config::new()
        .temporary(true)
        .open()
        .unwrap();
    let stop = StopSignal::new();
    let ctx = TaskContext::new(
        "backup.b1",
        stop.clone(),
        BudgetHandle::unlimited("backup.b1"),
        ProgressSink::new(),
        db.open_tree("backup.b1").unwrap(),
        Arc::new(SystemClock),
    );
    let mut task = BackupTask::new(&node_dir, params, BackupOptions::default());
    let mut run = tokio::spawn(async move { task.run(&ctx).await });

    tokio::select! {
        _ = node.uploads_held.notified() => {}
        ended = &mut run => panic!(
            "the run ended before {HELD} uploads reached the node: {ended:?}; requests: {:?}",
            node.seen.lock().unwrap().requests
        ),
    }
    let stopped_at = Instant::now();
    node.seen.lock().unwrap().stopped = true;
    stop.stop(StopReason::WindowClosed);
    *node.released.lock().unwrap() = true;
    node.release.notify_waiters();

    let outcome = run.await.expect("the task ran to its end");
    let took = stopped_at.elapsed();
    assert_eq!(
        outcome.expect("a stopped run is no error"),
        Outcome::StoppedEarly
    );
    assert!(
        took < Duration::from_secs(1),
        "the task returned {took:?} (tokio's time) after the stop"
    );
    assert_eq!(node.uploads(), HELD);
    let seen = node.seen.lock().unwrap();
    let after: Vec<_> = seen
        .requests
        .iter()
        .filter(|(_, _, after)| *after)
        .collect();
    assert!(
        after.is_empty(),
        "requests reached the node after the stop: {after:?}"
    );
}
