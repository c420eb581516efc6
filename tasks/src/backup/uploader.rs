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
    Uploaded {
        /// The file's capability.
        cap: Cap,
        /// Whether the file's stat changed during the upload.
        changed: bool,
    },
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
    let file = match tokio::task::spawn_blocking({
        let path = path.to_path_buf();
        move || open_for_upload(&path)
    })
    .await
    {
        Ok(Ok(f)) => tokio::fs::File::from_std(f),
        Ok(Err(e)) => return Ok(UploadOutcome::Unreadable(e)),
        Err(e) => {
            return Ok(UploadOutcome::Unreadable(io::Error::other(format!(
                "opening the file failed: {e}"
            ))))
        }
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

/// What [`open_for_upload`] says of anything that is not a regular file (any more).
const NOT_REGULAR: &str = "it is no longer a regular file";

/// Opens `path` for reading, refusing anything that is not a regular file, without ever
/// blocking on one. The entry was a regular file when its directory was listed, but it may
/// have been replaced since: opening a FIFO without a writer blocks forever, and a symlink
/// must not be followed. So the open itself carries `O_NONBLOCK` (a FIFO opens at once) and
/// `O_NOFOLLOW` (a symlink fails with `ELOOP`), and the type is judged by `fstat` of the
/// descriptor actually opened, leaving no gap between the check and the open.
pub fn open_for_upload(path: &Path) -> io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, NOT_REGULAR))
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.file_type().is_file() {
        // Dropping `file` closes it; a FIFO or device opened without reading is harmless.
        return Err(io::Error::new(io::ErrorKind::InvalidInput, NOT_REGULAR));
    }
    // Regular files ignore O_NONBLOCK, but clear it so reads never see EAGAIN should that
    // ever change (a network file system, say).
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is a descriptor this function owns (through `file`) for the whole call.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Runs `open_for_upload` on a thread of its own and waits a few seconds for it: a broken
    /// open that blocks (on a FIFO without a writer) fails the test instead of hanging it.
    /// The timeout guards against a hang; it is not a performance bound.
    fn open_with_hang_guard(path: &Path) -> io::Result<std::fs::File> {
        let (tx, rx) = mpsc::channel();
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(open_for_upload(&path));
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("open_for_upload blocked instead of refusing the file")
    }

    fn assert_not_regular(result: io::Result<std::fs::File>) {
        let err = result.expect_err("only a regular file may be opened for upload");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), NOT_REGULAR);
    }

    fn mkfifo(path: &Path) {
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn a_fifo_is_refused_at_once_instead_of_blocking_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        assert_not_regular(open_with_hang_guard(&fifo));
    }

    #[test]
    fn a_symlink_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"secret elsewhere").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_not_regular(open_with_hang_guard(&link));
        // A link to a FIFO neither blocks nor is followed.
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let fifo_link = dir.path().join("fifo-link");
        std::os::unix::fs::symlink(&fifo, &fifo_link).unwrap();
        assert_not_regular(open_with_hang_guard(&fifo_link));
    }

    #[test]
    fn a_regular_file_opens_for_blocking_reads() {
        use std::io::Read;
        use std::os::fd::AsRawFd;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let mut file = open_with_hang_guard(&path).unwrap();
        // SAFETY: `file` owns the descriptor.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0, "O_NONBLOCK is cleared");
        let mut data = String::new();
        file.read_to_string(&mut data).unwrap();
        assert_eq!(data, "hello");
        let missing = open_with_hang_guard(&dir.path().join("missing")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
