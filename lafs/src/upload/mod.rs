//! Immutable uploads straight to the storage servers, without the node: what `tahoe put` does
//! for a file (and `t=mkdir-immutable` for a directory), with the node's convergence secret,
//! encoding parameters and lease secrets, so the caps and leases are the node's own.
//!
//! - [`placement`]: permuted order, placement and happiness as pure functions;
//! - `select`: asking the servers and allocating (happiness below `shares.happy` fails with
//!   [`UploadError::NotEnoughServers`] and leaves no allocation behind);
//! - `stream`: reading the file twice (the convergent key, then the encoder), sending each
//!   share's header with its first block, the blocks segment by segment (up to
//!   [`SEGMENTS_IN_FLIGHT`] segments' writes under way at once), and the last block with the
//!   trailer. Memory is a few segments and their blocks, whatever the file size, and at most
//!   [`IN_FLIGHT_BYTES`] of blocks under way over all uploads of one [`Uploader`].
//!
//! A server lost while writing is dropped with its shares; the upload goes on while the rest
//! stays happy, and fails (aborting every unfinished share) when it does not.
//!
//! Every share write first awaits the upload's [`Pacer`] (`pace`), with the server and the
//! exact bytes: budgets live with the caller. A pacer that says stop ends the upload with
//! [`UploadError::Stopped`] and aborts nothing, so the next upload of the file continues it.
//!
//! - [`partial`]: the record of partial shares an uploader keeps when given one
//!   ([`Uploader::with_partial_shares`]): a stopped upload leaves its shares there, and
//!   [`keepalive`] keeps them alive on the servers until the upload resumes. A share a server
//!   dropped anyway is allocated again from scratch ([`Uploaded::shares_restarted`]).

pub mod keepalive;
pub mod pace;
pub mod partial;
pub mod placement;
mod select;
mod stream;

pub use pace::{NoPacing, Pace, Pacer, ShareWrite, StopUpload};
pub use stream::{IN_FLIGHT_BYTES, SEGMENTS_IN_FLIGHT};

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::chk::{ChkError, EncodingParams};
use crate::dirnode::{pack_immutable_children, DirnodeError, ImmutableChild};
use crate::grid::{GridServer, StorageGrid};
use crate::lease::{ClientLeaseSecrets, LeaseSecrets};
use crate::storage::UploadSecret;

/// The upload secret for the shares of one file on one server: derived from that lease's
/// renew secret (itself from the node's private lease secret, the storage index and the
/// server), so a run that was killed mid-file and the next run use the same secret, and the
/// next run can continue the shares the first one began instead of waiting for the server to
/// drop them (30 minutes). No other client can derive it; the server it is sent to also
/// holds the renew secret it comes from.
pub fn upload_secret_for(lease: &LeaseSecrets) -> UploadSecret {
    let bytes = crate::hashutil::tagged_hash(UPLOAD_SECRET_TAG, &lease.renew, 32);
    UploadSecret(bytes.try_into().expect("32 bytes"))
}

const UPLOAD_SECRET_TAG: &[u8] = b"tahoe-jobs_upload_secret_v1";

/// Why an upload failed. No message holds a cap, a secret or a swissnum.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// No server announces the storage protocol (HTTPS NURL).
    #[error("no storage server announces the HTTPS storage protocol, so nothing can be uploaded directly (upload through the node instead)")]
    NoServers,
    /// Shares could not be placed happily.
    #[error("not enough storage servers: {message}{}", failures_text(.failures))]
    NotEnoughServers {
        /// Tahoe's explanation.
        message: String,
        /// What the servers that failed said.
        failures: Vec<String>,
    },
    /// The file could not be read, or changed while it was read.
    #[error("{0}")]
    Encoding(#[from] ChkError),
    /// The children cannot make an immutable directory.
    #[error("{0}")]
    Directory(#[from] DirnodeError),
    /// The [`Pacer`] said stop. The shares begun stay on their servers, unfinished and not
    /// aborted: the next upload of the same file continues them.
    #[error(
        "the upload was stopped; its unfinished shares are left for the next upload to continue"
    )]
    Stopped,
}

fn failures_text(failures: &[String]) -> String {
    if failures.is_empty() {
        String::new()
    } else {
        format!(" (servers that failed: {})", failures.join("; "))
    }
}

/// What an upload made.
#[derive(Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The cap: `URI:CHK:`, `URI:LIT:`, or for directories `URI:DIR2-CHK:`/`URI:DIR2-LIT:`. A
    /// secret: not shown by `Debug`.
    pub cap: String,
    /// Shares written by this upload.
    pub shares_written: usize,
    /// Shares the servers already held (their leases renewed).
    pub shares_existing: usize,
    /// Share bytes sent: every write's body, the header rewrites that claim an interrupted
    /// upload's shares included (the sum of [`ShareWrite::bytes`] handed to the pacer, less
    /// writes to servers that failed).
    pub bytes_sent: u64,
    /// Servers of happiness reached.
    pub happiness: usize,
    /// Shares a server had dropped while partial (restarted, or its idle limit passed while
    /// the upload was stopped), written again from the start.
    pub shares_restarted: usize,
}

impl fmt::Debug for Uploaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uploaded")
            .field("cap", &"…")
            .field("shares_written", &self.shares_written)
            .field("shares_existing", &self.shares_existing)
            .field("bytes_sent", &self.bytes_sent)
            .field("happiness", &self.happiness)
            .field("shares_restarted", &self.shares_restarted)
            .finish()
    }
}

/// The node's convergence secret (`private/convergence`). Never shown.
#[derive(Clone)]
pub struct Convergence(Vec<u8>);

impl Convergence {
    /// From the secret's bytes.
    pub fn new(secret: Vec<u8>) -> Convergence {
        Convergence(secret)
    }

    /// Reads `NODEDIR/private/convergence` (base32 text); the message names the file only.
    pub fn from_node_dir(node_dir: &Path) -> Result<Convergence, String> {
        let path = node_dir.join("private").join("convergence");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        crate::base32::decode(text.trim())
            .map(Convergence)
            .map_err(|_| format!("{} is not base32", path.display()))
    }
}

impl fmt::Debug for Convergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Convergence(…)")
    }
}

/// Uploads immutable files and directories to a grid's servers. Share it between concurrent
/// uploads (`&self` methods); it remembers each server's `/version` answer.
pub struct Uploader {
    servers: Vec<GridServer>,
    lease: ClientLeaseSecrets,
    convergence: Convergence,
    params: EncodingParams,
    happy: usize,
    versions: Mutex<HashMap<String, Option<u64>>>,
    /// Where partial shares are recorded for the keeper, if anywhere.
    partial: Option<Arc<partial::PartialShares>>,
    /// Room for share bytes under way, shared by all uploads ([`stream::IN_FLIGHT_BYTES`]).
    in_flight: tokio::sync::Semaphore,
}

impl fmt::Debug for Uploader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Uploader({} servers, {}-of-{}, happy {})",
            self.servers.len(),
            self.params.needed,
            self.params.total,
            self.happy
        )
    }
}

/// What to upload: a file on disk (read twice) or bytes in memory.
pub(crate) enum Source<'a> {
    File(&'a Path),
    Open(&'a std::fs::File),
    Bytes(&'a [u8]),
}

impl Uploader {
    /// An uploader to `grid`'s servers with the node's secrets, `k`/`N`/segment size and
    /// `shares.happy`.
    pub fn new(
        grid: &StorageGrid,
        lease: ClientLeaseSecrets,
        convergence: Convergence,
        params: EncodingParams,
        happy: usize,
    ) -> Uploader {
        Uploader {
            servers: grid.servers().to_vec(),
            lease,
            convergence,
            params,
            happy,
            versions: Mutex::new(HashMap::new()),
            partial: None,
            in_flight: stream::in_flight_room(),
        }
    }

    /// The same uploader, recording its partial shares in `shares` (shared with a
    /// [`keepalive::Keeper`] and with later uploaders, so that a stopped upload's shares are
    /// kept alive until the next one continues them).
    pub fn with_partial_shares(mut self, shares: Arc<partial::PartialShares>) -> Uploader {
        self.partial = Some(shares);
        self
    }

    /// True when at least one server speaks the storage protocol.
    pub fn has_servers(&self) -> bool {
        self.servers.iter().any(|s| s.client.is_some())
    }

    /// Uploads the file at `path` (its cap is `tahoe put`'s for the same bytes). Fails with
    /// [`ChkError::ContentChanged`] when the file changes while it is read.
    pub async fn upload_file(&self, path: &Path) -> Result<Uploaded, UploadError> {
        self.upload(Source::File(path), &NoPacing).await
    }

    /// Uploads the file open as `file`, read from its start twice (the caller opened it, so it
    /// decides what may be read: no symlink followed, no FIFO).
    pub async fn upload_open_file(&self, file: &std::fs::File) -> Result<Uploaded, UploadError> {
        self.upload(Source::Open(file), &NoPacing).await
    }

    /// [`Self::upload_open_file`], each write paced by `pacer`.
    pub async fn upload_open_file_paced(
        &self,
        file: &std::fs::File,
        pacer: &dyn Pacer,
    ) -> Result<Uploaded, UploadError> {
        self.upload(Source::Open(file), pacer).await
    }

    /// Uploads `data` as an immutable file.
    pub async fn upload_bytes(&self, data: &[u8]) -> Result<Uploaded, UploadError> {
        self.upload(Source::Bytes(data), &NoPacing).await
    }

    /// [`Self::upload_bytes`], each write paced by `pacer`.
    pub async fn upload_bytes_paced(
        &self,
        data: &[u8],
        pacer: &dyn Pacer,
    ) -> Result<Uploaded, UploadError> {
        self.upload(Source::Bytes(data), pacer).await
    }

    /// Packs and uploads an immutable directory of `children` (its cap is the node's
    /// `t=mkdir-immutable` for the same children).
    pub async fn upload_directory(
        &self,
        children: &[ImmutableChild],
    ) -> Result<Uploaded, UploadError> {
        let body = pack_immutable_children(children)?;
        self.upload_directory_body(&body).await
    }

    /// Uploads a directory body already packed ([`crate::dirnode::push_immutable_child`]).
    pub async fn upload_directory_body(&self, body: &[u8]) -> Result<Uploaded, UploadError> {
        self.upload_directory_body_paced(body, &NoPacing).await
    }

    /// [`Self::upload_directory_body`], each write paced by `pacer`.
    pub async fn upload_directory_body_paced(
        &self,
        body: &[u8],
        pacer: &dyn Pacer,
    ) -> Result<Uploaded, UploadError> {
        Ok(as_directory(self.upload_bytes_paced(body, pacer).await?))
    }

    /// [`Uploader::upload_directory_body`] for a body written to `file` (read from its start
    /// twice), so that a wide directory's body need not be held in memory.
    pub async fn upload_directory_file(
        &self,
        file: &std::fs::File,
    ) -> Result<Uploaded, UploadError> {
        self.upload_directory_file_paced(file, &NoPacing).await
    }

    /// [`Self::upload_directory_file`], each write paced by `pacer`.
    pub async fn upload_directory_file_paced(
        &self,
        file: &std::fs::File,
        pacer: &dyn Pacer,
    ) -> Result<Uploaded, UploadError> {
        Ok(as_directory(
            self.upload_open_file_paced(file, pacer).await?,
        ))
    }
}

/// The directory cap of an uploaded directory body (uploaded as a file).
fn as_directory(mut uploaded: Uploaded) -> Uploaded {
    uploaded.cap = match uploaded.cap.strip_prefix("URI:CHK:") {
        Some(rest) => format!("URI:DIR2-CHK:{rest}"),
        None => match uploaded.cap.strip_prefix("URI:LIT:") {
            Some(rest) => format!("URI:DIR2-LIT:{rest}"),
            None => uploaded.cap,
        },
    };
    uploaded
}
