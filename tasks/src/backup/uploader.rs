//! Uploading one local file as an immutable file: the body is streamed from disk in chunks,
//! each chunk admitted by the job's budget first, and the file is stat'ed again afterwards to
//! tell whether it changed while it was being read. A file of at most 55 bytes is a literal
//! (`URI:LIT:`): its capability is computed here and nothing goes to the node.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream;
use tahoe_jobs_engine::{BudgetHandle, ProgressSink};
use tokio::io::AsyncReadExt;

use super::metadata::FileStat;
use crate::tahoe::servers::{self, Placement};
use crate::tahoe::{Cap, TahoeClient, TahoeError};

/// Bytes read and admitted by the budget at a time: small enough that a rate limiter paces
/// smoothly, large enough that the per-chunk overhead does not show.
pub const CHUNK: usize = 64 * 1024;

/// How an upload ended, when the node did not fail.
#[derive(Debug)]
pub enum UploadOutcome {
    /// The node stored the file. `changed` is true when its stat differs afterwards: what was
    /// stored may be a mix of old and new content, so it must not be remembered as current.
    Uploaded { cap: Cap, changed: bool },
    /// The file could not be opened or read.
    Unreadable(io::Error),
    /// The file got shorter than its stat said while being read, so the upload was abandoned.
    Shrunk,
}

/// What went wrong on the local side of a streamed body (the node only sees a broken body).
#[derive(Debug, Default)]
enum LocalFailure {
    #[default]
    None,
    Read(io::Error),
    Shrunk,
}

/// Waits before each further try of an upload the node could not place. A storage server that
/// is still writing the same share (from an upload stopped a moment ago) frees it within
/// seconds; a grid that really lacks servers fails the run after these, and the engine's
/// backoff takes over.
const UNHAPPY_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(9),
];

/// Uploads `path`, whose stat before the upload was `stat`. `progress` gets `bytes_uploaded`
/// per chunk sent.
pub async fn upload_file(
    client: &TahoeClient,
    budget: &BudgetHandle,
    progress: &ProgressSink,
    path: &Path,
    stat: &FileStat,
) -> Result<UploadOutcome, TahoeError> {
    let mut delays = UNHAPPY_RETRY_DELAYS.iter();
    loop {
        match upload_once(client, budget, progress, path, stat).await {
            Err(e) if e.is_upload_unhappy() => match delays.next() {
                Some(delay) => {
                    tracing::debug!(path = %path.display(), "shares could not be placed; trying again");
                    tokio::time::sleep(*delay).await;
                }
                None => return Err(e),
            },
            other => return other,
        }
    }
}

async fn upload_once(
    client: &TahoeClient,
    budget: &BudgetHandle,
    progress: &ProgressSink,
    path: &Path,
    stat: &FileStat,
) -> Result<UploadOutcome, TahoeError> {
    // It was a regular file when listed; should it have been replaced by a FIFO since, opening
    // it would block, so look again right before (symlinks are not followed either).
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => {}
        Ok(_) => {
            return Ok(UploadOutcome::Unreadable(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is no longer a regular file",
            )))
        }
        Err(e) => return Ok(UploadOutcome::Unreadable(e)),
    }
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) => return Ok(UploadOutcome::Unreadable(e)),
    };
    if stat.size <= servers::LIT_MAX {
        return Ok(literal(file, path, stat).await);
    }
    let failure = Arc::new(Mutex::new(LocalFailure::None));
    // Per-server estimates for feed pacing (used when exact shaping is off).
    let placement = servers::upload_placement(client, stat.size).await;
    let body = body_stream(
        file,
        stat.size,
        budget.clone(),
        placement,
        progress.clone(),
        failure.clone(),
    );
    let result = client.upload_stream(body, stat.size).await;
    let local = std::mem::take(&mut *failure.lock().expect("upload failure lock"));
    match (result, local) {
        (_, LocalFailure::Read(e)) => Ok(UploadOutcome::Unreadable(e)),
        (_, LocalFailure::Shrunk) => Ok(UploadOutcome::Shrunk),
        (Err(e), LocalFailure::None) => Err(e),
        (Ok(cap), LocalFailure::None) => {
            servers::learn_coding(client, &cap);
            let changed = match std::fs::symlink_metadata(path) {
                Ok(m) => !FileStat::from_metadata(&m).same_content_as(stat),
                Err(_) => true,
            };
            Ok(UploadOutcome::Uploaded { cap, changed })
        }
    }
}

/// A file small enough to live in its capability (`URI:LIT:`): its capability is made here,
/// exactly as the node would make it, so nothing is sent.
async fn literal(file: tokio::fs::File, path: &Path, stat: &FileStat) -> UploadOutcome {
    let mut data = Vec::with_capacity(stat.size as usize);
    if let Err(e) = file.take(stat.size).read_to_end(&mut data).await {
        return UploadOutcome::Unreadable(e);
    }
    if (data.len() as u64) < stat.size {
        return UploadOutcome::Shrunk;
    }
    let changed = match std::fs::symlink_metadata(path) {
        Ok(m) => !FileStat::from_metadata(&m).same_content_as(stat),
        Err(_) => true,
    };
    UploadOutcome::Uploaded {
        cap: Cap::literal(&data),
        changed,
    }
}

struct BodyState {
    file: tokio::fs::File,
    remaining: u64,
    budget: BudgetHandle,
    placement: Placement,
    progress: ProgressSink,
    failure: Arc<Mutex<LocalFailure>>,
}

/// Exactly `len` bytes of `file`, or an error (recorded in `failure`) if it cannot give them.
/// Bytes the file gained since the stat are not sent: the Content-Length is already promised.
fn body_stream(
    file: tokio::fs::File,
    len: u64,
    budget: BudgetHandle,
    placement: Placement,
    progress: ProgressSink,
    failure: Arc<Mutex<LocalFailure>>,
) -> impl futures::Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    let state = BodyState {
        file,
        remaining: len,
        budget,
        placement,
        progress,
        failure,
    };
    stream::try_unfold(state, |mut s| async move {
        if s.remaining == 0 {
            return Ok(None);
        }
        let want = (s.remaining as usize).min(CHUNK);
        let mut buf = BytesMut::zeroed(want);
        let mut filled = 0;
        while filled < want {
            match s.file.read(&mut buf[filled..]).await {
                Ok(0) => {
                    *s.failure.lock().expect("upload failure lock") = LocalFailure::Shrunk;
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
                }
                Ok(n) => filled += n,
                Err(e) => {
                    let copy = io::Error::new(e.kind(), e.to_string());
                    *s.failure.lock().expect("upload failure lock") = LocalFailure::Read(e);
                    return Err(copy);
                }
            }
        }
        // A duty-cycle point per chunk: the node's CPU follows what it is fed.
        s.budget.cpu_checkpoint().await;
        s.budget.acquire(s.placement.request(want as u64)).await;
        s.remaining -= want as u64;
        s.progress.add("bytes_uploaded", want as u64);
        Ok(Some((buf.freeze(), s)))
    })
}
