//! A webhook receiver on loopback: accepts HTTP/1.1 POSTs, answers each with the next status
//! of a list (then 200), and keeps the JSON bodies for the test to read.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Receiver {
    pub url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    /// Starts on a free loopback port; `first_statuses` are answered in order, then 200.
    pub fn start(first_statuses: Vec<u16>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!(
            "http://{}/notify/private-topic",
            listener.local_addr().unwrap()
        );
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            let mut statuses = first_statuses.into_iter();
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let body = read_body(&mut conn);
                let status = statuses.next().unwrap_or(200);
                if let Ok(v) = serde_json::from_slice(&body) {
                    kept.lock().unwrap().push(v);
                }
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, bodies }
    }

    /// Every body received so far (including those answered with an error status).
    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Waits until a body satisfies `probe` (at most `limit`, a guard against a hang).
    pub fn wait_for(&self, what: &str, limit: Duration, probe: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = self.bodies().into_iter().find(|b| probe(b)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no notification {what} arrived; received: {:?}",
                self.bodies()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn read_body(conn: &mut TcpStream) -> Vec<u8> {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match conn.read(&mut buf) {
            Ok(n) => n,
            Err(_) => return Vec::new(),
        };
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&data, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return data[end + 4..end + 4 + length].to_vec();
            }
        }
        if n == 0 {
            return Vec::new();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
