//! Delivering a notification: one JSON POST to `[jobs] notify.url`, retried with backoff when
//! the receiver is unreachable, slow or says it failed (5xx, 408, 429); a refusal (any other
//! 4xx) is final. The retry schedule is a plain function; the sleeping is handed in so the
//! schedule is tested without waiting.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

/// How many times a notification is tried in all.
pub const ATTEMPTS: u32 = 6;
/// The wait before the first retry; each next one doubles, up to [`RETRY_CAP`].
pub const RETRY_BASE: Duration = Duration::from_secs(2);
pub const RETRY_CAP: Duration = Duration::from_secs(60);
/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The wait after failed attempt number `attempt` (1-based) before the next; `None` when that
/// was the last.
pub fn retry_delay(attempt: u32) -> Option<Duration> {
    if attempt == 0 || attempt >= ATTEMPTS {
        return None;
    }
    let shift = (attempt - 1).min(16);
    Some((RETRY_BASE * (1u32 << shift)).min(RETRY_CAP))
}

/// Whether an answer with this status is worth trying again.
pub fn retryable(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotifyError {
    #[error("the receiver refused it with HTTP {0}")]
    Refused(u16),
    #[error("gave up after {attempts} attempts; the last: {last}")]
    GaveUp { attempts: u32, last: String },
}

/// The HTTP client for notifications.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .user_agent(concat!("tahoe-jobs/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// The daemon's sleep.
pub async fn real_sleep(d: Duration) {
    tokio::time::sleep(d).await
}

/// POSTs `body` to `url` until it is accepted (any 2xx), refused, or [`ATTEMPTS`] are used;
/// answers how many attempts it took. `sleep` waits between attempts.
pub async fn deliver<S, F>(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    sleep: S,
) -> Result<u32, NotifyError>
where
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let last = match client.post(url).json(body).send().await {
            Ok(resp) if resp.status().is_success() => return Ok(attempt),
            Ok(resp) if !retryable(resp.status().as_u16()) => {
                return Err(NotifyError::Refused(resp.status().as_u16()))
            }
            Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
            // Without the URL, whose path may be a secret.
            Err(e) => describe(e),
        };
        match retry_delay(attempt) {
            Some(delay) => sleep(delay).await,
            None => {
                return Err(NotifyError::GaveUp {
                    attempts: attempt,
                    last,
                })
            }
        }
    }
}

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {}s", ATTEMPT_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        e.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;

    #[test]
    fn retries_double_from_two_seconds_up_to_a_minute_six_tries_in_all() {
        let delays: Vec<_> = (1..=ATTEMPTS).map(retry_delay).collect();
        let s = Duration::from_secs;
        assert_eq!(
            delays,
            vec![
                Some(s(2)),
                Some(s(4)),
                Some(s(8)),
                Some(s(16)),
                Some(s(32)),
                None
            ]
        );
        assert_eq!(retry_delay(0), None);
        assert!(retryable(500) && retryable(503) && retryable(429) && retryable(408));
        assert!(!retryable(400) && !retryable(404) && !retryable(410));
    }

    /// A receiver on loopback answering each request with the next status of `statuses`,
    /// keeping the bodies.
    fn receiver(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Value>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/hook/secret-token",
            listener.local_addr().unwrap()
        );
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for status in statuses {
                let Ok((mut conn, _)) = listener.accept() else {
                    return;
                };
                let body = read_request(&mut conn);
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        (url, bodies)
    }

    fn read_request(conn: &mut std::net::TcpStream) -> Vec<u8> {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).unwrap();
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
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

    fn recorder() -> (
        Arc<Mutex<Vec<Duration>>>,
        impl Fn(Duration) -> std::future::Ready<()>,
    ) {
        let slept = Arc::new(Mutex::new(Vec::new()));
        let s = slept.clone();
        (slept, move |d| {
            s.lock().unwrap().push(d);
            std::future::ready(())
        })
    }

    #[tokio::test]
    async fn a_failing_receiver_is_retried_with_backoff_until_it_accepts() {
        let (url, bodies) = receiver(vec![503, 500, 204]);
        let (slept, sleep) = recorder();
        let body = json!({"event": "failure", "job": "backup.b1"});
        let attempts = deliver(&client(), &url, &body, sleep).await.unwrap();
        assert_eq!(attempts, 3);
        assert_eq!(
            *slept.lock().unwrap(),
            vec![Duration::from_secs(2), Duration::from_secs(4)]
        );
        let bodies = bodies.lock().unwrap();
        assert_eq!(bodies.len(), 3);
        assert!(bodies.iter().all(|b| *b == body));
    }

    #[tokio::test]
    async fn a_refusal_is_final_and_an_unreachable_receiver_is_given_up_on() {
        let (url, bodies) = receiver(vec![404]);
        let (slept, sleep) = recorder();
        let err = deliver(&client(), &url, &json!({}), sleep)
            .await
            .unwrap_err();
        assert_eq!(err, NotifyError::Refused(404));
        assert!(slept.lock().unwrap().is_empty());
        assert_eq!(bodies.lock().unwrap().len(), 1);

        // A port nobody listens on: every attempt fails to connect.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/hook/secret-token");
        let (slept, sleep) = recorder();
        let err = deliver(&client(), &url, &json!({}), sleep)
            .await
            .unwrap_err();
        let NotifyError::GaveUp { attempts, last } = &err else {
            panic!("{err}")
        };
        assert_eq!(*attempts, ATTEMPTS);
        assert_eq!(slept.lock().unwrap().len() as u32, ATTEMPTS - 1);
        assert!(!err.to_string().contains("secret-token"), "{last}");
    }
}
