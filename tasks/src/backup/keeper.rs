//! The keeper of a node directory's partial shares, one per daemon: created where the backup
//! task type is registered and handed to every run's direct uploads, so it outlives the runs.
//!
//! A run stopped mid-file (its window closed, a pause) leaves the file's partial shares on the
//! servers and in the keeper's record (`tahoe_jobs_lafs::upload::partial`); the keeper's loop
//! (`tahoe_jobs_lafs::upload::keepalive`) rewrites each one's first byte 25 minutes after its
//! last write, so the servers, which drop a partial share after 30 idle minutes, keep it until
//! the next window's run continues it. See `docs/backup.md` ("Partial shares").

use std::fmt;
use std::sync::{Arc, Mutex};

use tahoe_jobs_lafs::upload::keepalive::{KeepAlivePolicy, Keeper, StorageKeepAlive};
use tahoe_jobs_lafs::upload::partial::PartialShares;
use tokio::task::JoinHandle;

/// Shares one record of partial shares and its keep-alive loop between runs (cheap to clone).
#[derive(Clone, Default)]
pub struct ShareKeeper {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    shares: Arc<PartialShares>,
    running: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(handle) = self.running.get_mut().ok().and_then(Option::take) {
            handle.abort();
        }
    }
}

impl fmt::Debug for ShareKeeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareKeeper({:?})", self.inner.shares)
    }
}

impl ShareKeeper {
    /// A keeper with an empty record; its loop starts with the first direct run.
    pub fn new() -> ShareKeeper {
        ShareKeeper::default()
    }

    /// The record the uploads fill.
    pub fn shares(&self) -> &Arc<PartialShares> {
        &self.inner.shares
    }

    /// Starts the keep-alive loop on the current tokio runtime (the one tasks run on) unless
    /// it runs already; again if that runtime has ended since.
    pub fn ensure_running(&self) {
        let mut running = self.inner.running.lock().expect("never poisoned");
        if running.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let keeper = Keeper::new(
            self.inner.shares.clone(),
            StorageKeepAlive,
            KeepAlivePolicy::default(),
        );
        *running = Some(runtime.spawn(keeper.run()));
    }
}
