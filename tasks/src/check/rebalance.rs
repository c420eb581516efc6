//! Rebalancing an immutable object: stream its bytes from the node back into the node.
//!
//! Tahoe never repairs a healthy file, but an upload of the same bytes through the node that
//! first uploaded them gets the same storage index (convergent encryption), finds the shares
//! already placed and puts the missing ones on servers holding none, until `shares.happy`
//! servers are used. Nothing passes through memory beyond one chunk: the download's body is the
//! upload's body, and each chunk waits for the budget in both directions.

use futures::StreamExt;
use tahoe_jobs_engine::{ByteRequest, TaskContext};

use super::caps::underlying_chk;
use super::record::{Findings, Rebalance};
use crate::tahoe::{Cap, CheckOptions, TahoeClient, TahoeError};

/// Re-uploads the object at `cap` (`size` bytes, as its cap says) and checks it again. Errors
/// that may pass (the node is unreachable) are returned; the node's refusals become
/// [`Rebalance::Failed`].
///
/// A stop ends the work at once: the budget's waits give way to it, and the upload, whose body
/// is still coming from the download, is cut off rather than left to run on by itself. Nothing
/// more reaches the node; the future then waits to be dropped, as the check run drops every
/// visit in flight on a stop (the object stays on the frontier).
pub async fn reupload(
    client: &TahoeClient,
    ctx: &TaskContext,
    cap: &Cap,
    size: u64,
    hosts_before: u64,
) -> Result<Rebalance, TahoeError> {
    let Some(chk) = underlying_chk(cap) else {
        return Ok(Rebalance::Impossible {
            reason: "only immutable objects can be uploaded again".into(),
        });
    };
    let copied = tokio::select! {
        // First: once stopped, a copy that failed because of the stop is no failure to record.
        biased;
        _ = ctx.stop().stopped() => std::future::pending().await,
        copied = copy_through(client, ctx, &chk, size) => copied,
    };
    match copied {
        Ok(new) if new == chk => {}
        Ok(_) => {
            return Ok(Rebalance::Impossible {
                reason: "this node encrypts the same bytes differently (the original upload used another convergence secret): no share was re-placed".into(),
            })
        }
        Err(e) if e.is_unreachable() => return Err(e),
        Err(e) => {
            return Ok(Rebalance::Failed {
                error: e.to_string(),
            })
        }
    }
    let after = client.check(cap, "", CheckOptions::default()).await?;
    Ok(Rebalance::Done {
        hosts_before,
        hosts_after: Findings::from_results(&after.results).good_hosts,
    })
}

/// Streams the download into the upload, each chunk admitted by the budget in both directions
/// first. Through [`TahoeClient::upload_stream`]: a paced body is not cut by a read timeout,
/// and an upload dropped before its whole body went out is cut off, not left to finish.
async fn copy_through(
    client: &TahoeClient,
    ctx: &TaskContext,
    chk: &Cap,
    size: u64,
) -> Result<Cap, TahoeError> {
    let response = client.download(chk).await?;
    let ctx = ctx.clone();
    let body = response.bytes_stream().then(move |chunk| {
        let ctx = ctx.clone();
        async move {
            let bytes = chunk.map_err(std::io::Error::other)?;
            let n = bytes.len() as u64;
            let admitted = async {
                ctx.acquire(ByteRequest::download(n)).await?;
                ctx.acquire(ByteRequest::upload(n)).await
            };
            admitted
                .await
                .map_err(|_| std::io::Error::other("stopped"))?;
            Ok(bytes)
        }
    });
    client.upload_stream(body, size).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tahoe_jobs_engine::BudgetHandle;
    use tahoe_jobs_engine::{StopReason, TaskContext};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{mpsc, oneshot};

    const HALF: usize = 1000;

    /// What the fake node saw of the re-upload (`PUT /uri`).
    #[derive(Debug, PartialEq)]
    enum Put {
        /// This many body bytes have arrived so far.
        Got(usize),
        /// The connection was closed after this many.
        Closed(usize),
    }

    async fn read_head(s: &mut TcpStream) -> (String, Vec<u8>) {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request ended in its head");
            got.extend_from_slice(&buf[..n]);
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).into_owned();
                return (head, got.split_off(end + 4));
            }
        }
    }

    /// A node on loopback for one re-upload of a `2 * HALF`-byte file: its download sends the
    /// first half at once and the second only when `more` fires; what arrives in the upload is
    /// reported on the channel.
    async fn fake_node(more: oneshot::Receiver<()>) -> (String, mpsc::UnboundedReceiver<Put>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut more = Some(more);
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let (head, rest) = read_head(&mut s).await;
                if head.starts_with("GET ") {
                    let more = more.take().expect("one download");
                    tokio::spawn(async move {
                        let answer =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 2 * HALF);
                        s.write_all(answer.as_bytes()).await.unwrap();
                        s.write_all(&[1u8; HALF]).await.unwrap();
                        if more.await.is_ok() {
                            // The client may have gone: that is fine.
                            let _ = s.write_all(&[2u8; HALF]).await;
                        }
                        let _ = s.read(&mut [0u8; 1]).await;
                    });
                } else {
                    assert!(head.starts_with("PUT /uri"), "{head}");
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let mut total = rest.len();
                        let mut buf = [0u8; 4096];
                        let _ = tx.send(Put::Got(total));
                        loop {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => {
                                    let _ = tx.send(Put::Closed(total));
                                    return;
                                }
                                Ok(n) => {
                                    total += n;
                                    let _ = tx.send(Put::Got(total));
                                }
                            }
                        }
                    });
                }
            }
        });
        (url, rx)
    }

    fn context() -> TaskContext {
        let db = sled::Config::new().temporary(true).open().unwrap();
        TaskContext::standalone("check.c1", db.open_tree("t").unwrap())
    }

    /// A stop in the middle of a re-upload ends it: the upload's connection is closed and
    /// nothing more reaches the node, even when the download goes on giving bytes (the upload
    /// is not left to run on by itself, as a whole request would be).
    #[tokio::test]
    async fn a_stop_cuts_a_reupload_off_and_sends_nothing_more() {
        let (more_tx, more_rx) = oneshot::channel();
        let (url, mut put) = fake_node(more_rx).await;
        let client = TahoeClient::new(&url, &crate::tahoe::ClientOptions::default()).unwrap();
        let ctx = context();
        let cap = Cap::new(format!("URI:CHK:aaaa:bbbb:1:1:{}", 2 * HALF));
        let mut run = Box::pin(reupload(&client, &ctx, &cap, 2 * HALF as u64, 1));
        // Until the first half has reached the node.
        loop {
            tokio::select! {
                r = &mut run => panic!("the re-upload ended early: {r:?}"),
                p = put.recv() => if p == Some(Put::Got(HALF)) { break },
            }
        }
        ctx.stop().stop(StopReason::Paused);
        // As the check run does: it drops whatever is still in flight once stopped.
        tokio::select! {
            _ = &mut run => {}
            _ = ctx.stop().stopped() => {}
        }
        drop(run);
        // The download now offers the rest; none of it may reach the node.
        let _ = more_tx.send(());
        let mut last = None;
        while let Some(p) = put.recv().await {
            match p {
                Put::Got(n) => assert!(n <= HALF, "{n} bytes reached the node after the stop"),
                Put::Closed(n) => {
                    last = Some(n);
                    break;
                }
            }
        }
        assert_eq!(last, Some(HALF), "the upload's connection was closed");
    }

    /// A budget that never admits a byte holds the re-upload, but not a stop: the upload's
    /// connection is closed as soon as the stop fires, before the paused clock has moved a
    /// second (an upload left to itself would hold it until the request timeout).
    #[tokio::test(start_paused = true)]
    async fn a_stop_is_not_held_up_by_the_budget() {
        struct Shut;
        #[async_trait::async_trait]
        impl tahoe_jobs_engine::BudgetGate for Shut {
            async fn acquire(&self, _: &str, _: ByteRequest) {
                futures::future::pending::<()>().await
            }
            async fn cpu_checkpoint(&self, _: &str) {}
        }
        let (_more_tx, more_rx) = oneshot::channel();
        let (url, mut put) = fake_node(more_rx).await;
        let client = TahoeClient::new(&url, &crate::tahoe::ClientOptions::default()).unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let ctx = TaskContext::new(
            "check.c1",
            tahoe_jobs_engine::StopSignal::new(),
            BudgetHandle::new("check.c1", std::sync::Arc::new(Shut)),
            tahoe_jobs_engine::ProgressSink::new(),
            db.open_tree("t").unwrap(),
            std::sync::Arc::new(tahoe_jobs_engine::SystemClock),
        );
        let cap = Cap::new(format!("URI:CHK:aaaa:bbbb:1:1:{}", 2 * HALF));
        let started = tokio::time::Instant::now();
        let mut run = Box::pin(reupload(&client, &ctx, &cap, 2 * HALF as u64, 1));
        tokio::select! {
            r = &mut run => panic!("the re-upload ended early: {r:?}"),
            p = put.recv() => assert_eq!(p, Some(Put::Got(0)), "the upload started, without a byte"),
        }
        ctx.stop().stop(StopReason::WindowClosed);
        tokio::select! {
            r = &mut run => panic!("a stopped re-upload gave a result: {r:?}"),
            _ = ctx.stop().stopped() => {}
        }
        drop(run);
        assert_eq!(put.recv().await, Some(Put::Closed(0)));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the upload was held open for {:?} of the paused clock after the stop",
            started.elapsed()
        );
    }
}
