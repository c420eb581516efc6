//! Uploads the node has started are let finish, even when their caller gives up on them.
//!
//! Once the node has a whole upload request it encodes the file and asks the storage servers
//! to hold its shares. Cutting the connection at that point (a job stopped by its window, a
//! run that failed elsewhere) makes the node abort the upload, and Tahoe 1.20's servers do not
//! always let go of the unfinished shares: they then refuse the same file, which has the same
//! storage index, for up to 30 minutes (`UploadUnhappinessError: placed 0 shares`; see
//! docs/guarantees.md). So an upload runs on a task of its own; if its caller is dropped
//! after the whole request went out, the task carries on to the node's answer (bounded by the
//! request timeout), and only an upload whose body was still being sent is cut off - the node
//! stores nothing before it has the whole body.
//!
//! A process that ends cuts off everything it has not waited for. So the daemon's clean
//! shutdown first calls [`let_uploads_finish`] (from then on an upload still sending its body
//! is let finish too, rather than redone after the restart), stops its tasks, and then waits in
//! [`finish_uploads`] for the uploads left running, within its shutdown budget. A window close
//! or a pause does not: it must stop sending within a second.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::error::TahoeError;

/// The process's requests running on tasks of their own, and whether the process is ending.
struct InFlight {
    count: watch::Sender<usize>,
    /// Set by [`let_uploads_finish`]: uploads still sending their body are not cut off.
    finishing: AtomicBool,
}

fn in_flight() -> &'static InFlight {
    static IN_FLIGHT: std::sync::OnceLock<InFlight> = std::sync::OnceLock::new();
    IN_FLIGHT.get_or_init(|| InFlight {
        count: watch::Sender::new(0),
        finishing: AtomicBool::new(false),
    })
}

/// Counts one request as in flight for as long as it lives (it goes with its task).
struct Counted;

impl Counted {
    fn new() -> Counted {
        in_flight().count.send_modify(|n| *n += 1);
        Counted
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        in_flight().count.send_modify(|n| *n -= 1);
    }
}

/// From now on, an upload whose caller goes away is let finish even if its body is still being
/// sent: the process is shutting down cleanly, and [`finish_uploads`] will wait for it. Called
/// once, before the tasks are stopped; there is no going back.
pub fn let_uploads_finish() {
    in_flight().finishing.store(true, Ordering::SeqCst);
}

/// Waits until no upload is running any more, or `deadline`; answers how many still run then
/// (they are cut off when the process ends).
pub async fn finish_uploads(deadline: tokio::time::Instant) -> usize {
    let mut count = in_flight().count.subscribe();
    let _ = tokio::time::timeout_at(deadline, count.wait_for(|n| *n == 0)).await;
    let left = *count.borrow();
    left
}

/// A request running on its own task; see the module documentation for what dropping it does.
pub(crate) struct FinishOnceSent<T: Send + 'static> {
    handle: Option<JoinHandle<T>>,
    /// True once the node has the whole request.
    sent: Arc<AtomicBool>,
    /// How long a request left to itself may still take.
    grace: Duration,
}

impl<T: Send + 'static> FinishOnceSent<T> {
    /// Starts `request` on its own task. `sent` tells, when the caller goes away, whether the
    /// node already has all of it.
    pub(crate) fn spawn(
        request: impl Future<Output = T> + Send + 'static,
        sent: Arc<AtomicBool>,
        grace: Duration,
    ) -> FinishOnceSent<T> {
        let counted = Counted::new();
        FinishOnceSent {
            handle: Some(tokio::spawn(async move {
                let _counted = counted;
                request.await
            })),
            sent,
            grace,
        }
    }

    /// The request's result.
    pub(crate) async fn join(mut self) -> Result<T, TahoeError> {
        self.join_ref().await
    }

    /// The request's result, waited for by reference so that waiting can be given up (in a
    /// `select!`) and taken up again; once it has returned, dropping does nothing.
    pub(crate) async fn join_ref(&mut self) -> Result<T, TahoeError> {
        let handle = self.handle.as_mut().expect("not joined yet");
        let result = handle.await;
        self.handle = None;
        result.map_err(|e| TahoeError::Protocol(format!("the request's task ended early: {e}")))
    }

    /// Gives up on the request whatever it has sent (the node is not answering).
    pub(crate) fn abort(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

impl<T: Send + 'static> Drop for FinishOnceSent<T> {
    fn drop(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        if handle.is_finished() {
            return;
        }
        if !self.sent.load(Ordering::SeqCst) && !in_flight().finishing.load(Ordering::SeqCst) {
            handle.abort();
            return;
        }
        // Left to finish, but not forever: a node that stopped answering is dropped after
        // the request timeout, as the caller would have done.
        let grace = self.grace;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let abort = handle.abort_handle();
                runtime.spawn(async move {
                    if tokio::time::timeout(grace, handle).await.is_err() {
                        abort.abort();
                        tracing::debug!("a request left to finish got no answer in time");
                    }
                });
            }
            Err(_) => handle.abort(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    /// A request that waits for `go`, then reports on `done`. `done` fails when the request is
    /// dropped without finishing (its sender goes with it).
    async fn request(go: oneshot::Receiver<()>, done: oneshot::Sender<()>) -> u8 {
        let _ = go.await;
        let _ = done.send(());
        7
    }

    #[tokio::test]
    async fn a_sent_request_finishes_after_its_caller_is_dropped() {
        let (go_tx, go_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let sent = Arc::new(AtomicBool::new(true));
        let req = FinishOnceSent::spawn(request(go_rx, done_tx), sent, Duration::from_secs(60));
        drop(req);
        go_tx.send(()).unwrap();
        assert!(done_rx.await.is_ok(), "the request was cut off");
    }

    #[tokio::test]
    async fn a_request_still_sending_is_cut_off_when_its_caller_is_dropped() {
        let (_go_tx, go_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel();
        let sent = Arc::new(AtomicBool::new(false));
        let req = FinishOnceSent::spawn(request(go_rx, done_tx), sent, Duration::from_secs(60));
        drop(req);
        assert!(done_rx.await.is_err(), "the request went on");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_left_to_finish_is_dropped_after_the_grace() {
        let (_go_tx, go_rx) = oneshot::channel::<()>();
        let (done_tx, mut done_rx) = oneshot::channel();
        let sent = Arc::new(AtomicBool::new(true));
        let req = FinishOnceSent::spawn(request(go_rx, done_tx), sent, Duration::from_secs(60));
        drop(req);
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert_eq!(
            done_rx.try_recv(),
            Err(oneshot::error::TryRecvError::Empty),
            "still waiting within the grace"
        );
        assert!(done_rx.await.is_err(), "dropped after the grace");
    }

    #[tokio::test]
    async fn join_gives_the_result_and_abort_cuts_off() {
        let (go_tx, go_rx) = oneshot::channel();
        let (done_tx, _done_rx) = oneshot::channel();
        let sent = Arc::new(AtomicBool::new(true));
        let req = FinishOnceSent::spawn(request(go_rx, done_tx), sent.clone(), Duration::ZERO);
        go_tx.send(()).unwrap();
        assert_eq!(req.join().await.unwrap(), 7);

        let (_go_tx, go_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel();
        let req = FinishOnceSent::spawn(request(go_rx, done_tx), sent, Duration::from_secs(60));
        req.abort();
        assert!(done_rx.await.is_err(), "abort cuts off even a sent request");
    }
}
