//! Loopback tests of the shaping proxy: a local echo or sink server behind it and a minimal
//! SOCKS5 client in front. They check byte counts and that the limiter is in the path, never
//! how long anything took (the machines running them are too noisy for that); waits are bounded
//! only so a broken proxy fails instead of hanging.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;
use crate::limits::policy::{LimitsNow, PairLimits};
use crate::limits::stats::Accounting;

const PATIENCE: Duration = Duration::from_secs(30);

struct Running {
    addr: SocketAddr,
    control: ShapingControl,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the proxy stops when told")
            .unwrap();
    }
}

async fn start_proxy() -> Running {
    let proxy = ShapingProxy::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = proxy.local_addr();
    let control = proxy.control();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(proxy.run(async {
        let _ = rx.await;
    }));
    Running {
        addr,
        control,
        stop: Some(tx),
        task,
    }
}

/// Echoes every connection back to itself.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// Swallows and counts what it receives.
async fn sink_server() -> (SocketAddr, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    counter.fetch_add(n as u64, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, received)
}

/// A minimal SOCKS5 client: CONNECT to `host:port` by name; the reply code on refusal.
async fn socks_connect(proxy: SocketAddr, host: &str, port: u16) -> Result<TcpStream, u8> {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await.unwrap();
    assert_eq!(choice, [5, 0]);
    let mut req = vec![5, 1, 0, 3, host.len() as u8];
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.unwrap();
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head[0], 5);
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        other => panic!("address type {other} in reply"),
    };
    let mut bound = vec![0u8; rest];
    s.read_exact(&mut bound).await.unwrap();
    if head[1] == 0 {
        Ok(s)
    } else {
        Err(head[1])
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// Writes `data` and reads the echo back, concurrently so neither side's buffers fill.
async fn round_trip(s: &mut TcpStream, data: &[u8]) {
    let (mut r, mut w) = s.split();
    let mut back = vec![0u8; data.len()];
    let (wrote, read) = tokio::join!(w.write_all(data), r.read_exact(&mut back));
    wrote.unwrap();
    read.unwrap();
    assert!(back == data, "the echo differs");
}

fn limits(destinations: &[(&str, PairLimits)]) -> LimitsNow {
    let mut l = LimitsNow::unlimited(jiff::Timestamp::UNIX_EPOCH);
    for (id, p) in destinations {
        l.destinations.insert(id.to_string(), *p);
    }
    l
}

#[tokio::test]
async fn relays_and_counts_every_byte_by_target() {
    let echo = echo_server().await;
    let proxy = start_proxy().await;
    let mut s = socks_connect(proxy.addr, "localhost", echo.port())
        .await
        .expect("the proxy reaches the echo server");
    let data = pattern(300_000);
    round_trip(&mut s, &data).await;
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    drop(s);
    let control = proxy.control.clone();
    wait_until("the connection closes", || {
        control.stats().open_connections == 0
    })
    .await;

    let stats = proxy.control.stats();
    let key = format!("localhost:{}", echo.port());
    let d = stats.destinations[&key];
    assert_eq!(d.mode, Accounting::Exact);
    assert_eq!(d.upload.bytes, 300_000);
    assert_eq!(d.download.bytes, 300_000);
    assert_eq!(d.upload.limit, None);
    assert_eq!(stats.total.upload.bytes, 300_000);
    assert_eq!(stats.total.download.bytes, 300_000);
    assert_eq!(stats.accepted_connections, 1);
    assert_eq!(stats.failed_connections, 0);
    assert_eq!(stats.listening, proxy.addr);
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["destinations"][&key]["mode"], "exact");
    proxy.stop().await;
}

#[tokio::test]
async fn routes_name_destinations_even_when_learnt_after_connecting() {
    let echo = echo_server().await;
    let proxy = start_proxy().await;
    let mut s = socks_connect(proxy.addr, "LocalHost", echo.port())
        .await
        .unwrap();
    round_trip(&mut s, &pattern(1_000)).await;
    // The node's status names the server only once it is connected.
    let routes: HashMap<String, String> =
        [(format!("localhost:{}", echo.port()), "v0-abc".to_string())].into();
    proxy.control.set_routes(routes);
    round_trip(&mut s, &pattern(500)).await;
    round_trip(&mut s, &pattern(700)).await;
    drop(s);
    let control = proxy.control.clone();
    wait_until("the connection closes", || {
        control.stats().open_connections == 0
    })
    .await;
    let stats = proxy.control.stats();
    assert_eq!(stats.destinations.len(), 1, "{:?}", stats.destinations);
    assert_eq!(stats.destinations["v0-abc"].upload.bytes, 2_200);
    assert_eq!(stats.destinations["v0-abc"].download.bytes, 2_200);
    proxy.stop().await;
}

#[tokio::test]
async fn a_limited_destination_is_throttled_and_another_is_not() {
    let (slow_addr, slow_received) = sink_server().await;
    let (fast_addr, fast_received) = sink_server().await;
    let proxy = start_proxy().await;
    let routes: HashMap<String, String> = [
        (
            format!("localhost:{}", slow_addr.port()),
            "slow".to_string(),
        ),
        (
            format!("localhost:{}", fast_addr.port()),
            "fast".to_string(),
        ),
    ]
    .into();
    proxy.control.set_routes(routes);
    proxy.control.apply(&limits(&[(
        "slow",
        PairLimits {
            upload: Some(4_000),
            download: None,
        },
    )]));

    let mut slow = socks_connect(proxy.addr, "localhost", slow_addr.port())
        .await
        .unwrap();
    let mut fast = socks_connect(proxy.addr, "localhost", fast_addr.port())
        .await
        .unwrap();
    let data = pattern(12_000);
    let (a, b) = tokio::join!(slow.write_all(&data), fast.write_all(&data));
    a.unwrap();
    b.unwrap();
    let control = proxy.control.clone();
    wait_until("both sinks have everything, and it is counted", || {
        let t = control.stats().total.upload.bytes;
        slow_received.load(Ordering::SeqCst) == 12_000
            && fast_received.load(Ordering::SeqCst) == 12_000
            && t == 24_000
    })
    .await;

    let stats = proxy.control.stats();
    let s = stats.destinations["slow"];
    assert_eq!(s.upload.bytes, 12_000);
    assert_eq!(s.upload.limit, Some(4_000));
    assert!(s.upload.throttled_seconds > 0.0, "{s:?}");
    let f = stats.destinations["fast"];
    assert_eq!(f.upload.bytes, 12_000);
    assert_eq!(f.upload.limit, None);
    assert_eq!(f.upload.throttled_seconds, 0.0);
    assert_eq!(stats.total.upload.bytes, 24_000);
    proxy.stop().await;
}

#[tokio::test]
async fn the_total_limit_is_in_the_path_too() {
    let (addr, received) = sink_server().await;
    let proxy = start_proxy().await;
    let mut l = limits(&[]);
    l.total.upload = Some(4_000);
    proxy.control.apply(&l);
    let mut s = socks_connect(proxy.addr, "127.0.0.1", addr.port())
        .await
        .unwrap();
    s.write_all(&pattern(6_000)).await.unwrap();
    let control = proxy.control.clone();
    wait_until("the sink has everything, and it is counted", || {
        received.load(Ordering::SeqCst) == 6_000 && control.stats().total.upload.bytes == 6_000
    })
    .await;
    let stats = proxy.control.stats();
    assert_eq!(stats.total.upload.limit, Some(4_000));
    assert!(stats.total.upload.throttled_seconds > 0.0);
    assert_eq!(stats.total.upload.bytes, 6_000);
    proxy.stop().await;
}

#[tokio::test]
async fn lifting_a_limit_frees_a_connection_at_once() {
    let (addr, received) = sink_server().await;
    let proxy = start_proxy().await;
    let key = format!("localhost:{}", addr.port());
    // Unnamed targets can be limited by their host:port.
    proxy.control.apply(&limits(&[(
        key.as_str(),
        PairLimits {
            upload: Some(200),
            download: None,
        },
    )]));
    let s = socks_connect(proxy.addr, "localhost", addr.port())
        .await
        .unwrap();
    let writer = tokio::spawn(async move {
        let mut s = s;
        // 250 s at 200 B/s.
        s.write_all(&pattern(50_000)).await.unwrap();
        s
    });
    wait_until("some bytes arrive", || received.load(Ordering::SeqCst) > 0).await;
    assert!(received.load(Ordering::SeqCst) < 50_000);
    proxy.control.apply(&limits(&[]));
    let control = proxy.control.clone();
    wait_until("the rest arrives once the limit is off", || {
        received.load(Ordering::SeqCst) == 50_000 && control.stats().total.upload.bytes == 50_000
    })
    .await;
    drop(writer.await.unwrap());
    let stats = proxy.control.stats();
    assert_eq!(stats.destinations[&key].upload.bytes, 50_000);
    assert_eq!(stats.destinations[&key].upload.limit, None);
    proxy.stop().await;
}

#[tokio::test]
async fn unreachable_targets_get_a_socks_failure_reply() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let proxy = start_proxy().await;
    let reply = socks_connect(proxy.addr, "127.0.0.1", closed.port())
        .await
        .expect_err("nothing listens there");
    assert_eq!(reply, 5, "connection refused");
    let control = proxy.control.clone();
    wait_until("the failure is counted", || {
        control.stats().failed_connections == 1
    })
    .await;
    proxy.stop().await;
}

#[tokio::test]
async fn only_loopback_addresses_are_accepted() {
    let err = ShapingProxy::bind("0.0.0.0:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ShapingError::NotLoopback(_)));
    assert!(err.to_string().contains("127.0.0.1"));
}
