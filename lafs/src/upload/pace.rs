//! The pacing hook of an upload: the uploader asks it before every share write (the header with
//! the first block, each block, the last block with the trailer, and the header rewrites that
//! claim an interrupted upload's shares), naming the server and the exact bytes about to go, and
//! before each segment is read and encoded. A caller that keeps budgets admits each write there,
//! so a rate limit paces what each server really receives, as it is sent; it may also answer
//! [`StopUpload`], which ends the upload with [`super::UploadError::Stopped`] and leaves the
//! unfinished shares on the servers for the next upload of the same file to continue.
//!
//! This crate knows no budget: the hook is all it sees. Without one ([`NoPacing`]) an upload
//! runs at full speed.

use futures::future::BoxFuture;

/// One share write about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareWrite<'a> {
    /// The receiving server's id (`v0-...`, as the node's server list names it).
    pub server_id: &'a str,
    /// The share written.
    pub shnum: u16,
    /// Where in the share the bytes go.
    pub offset: u64,
    /// The share bytes the write sends (the request's body; HTTP and TLS framing not counted).
    pub bytes: u64,
}

/// The hook's answer when the upload must end now: nothing more is sent, nothing is aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopUpload;

/// What the hook's waits resolve to.
pub type Pace<'a> = BoxFuture<'a, Result<(), StopUpload>>;

/// Paces one upload's writes; see the module header. Calls may come concurrently: the writes
/// of one segment to different servers each wait on their own call.
pub trait Pacer: Send + Sync {
    /// Resolves when `write` may be sent, or says stop.
    fn before_write<'a>(&'a self, write: ShareWrite<'a>) -> Pace<'a>;

    /// Resolves when segment `segnum` (of `segments`) may be read and encoded (a point for a
    /// CPU governor), or says stop.
    fn before_segment(&self, _segnum: u64, _segments: u64) -> Pace<'_> {
        Box::pin(async { Ok(()) })
    }

    /// The writes of one more segment were sent: `plaintext` bytes of the file went out (for
    /// progress). A segment every server already held sends nothing and is not reported.
    fn segment_sent(&self, _plaintext: u64) {}
}

/// No pacing: every write goes at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPacing;

impl Pacer for NoPacing {
    fn before_write<'a>(&'a self, _write: ShareWrite<'a>) -> Pace<'a> {
        Box::pin(async { Ok(()) })
    }
}
