//! Where a backup's immutable objects go: one [`UploadSink`] with two implementations, chosen
//! once per run, so the walk never branches on the data path.
//!
//! - [`NodeSink`]: the node's web API (`PUT /uri`, `t=mkdir-immutable`), for any node;
//! - [`DirectSink`]: tahoe-jobs encodes and sends the shares to the storage servers itself
//!   (`tahoe_jobs_lafs::upload`), with the node's convergence secret, encoding and lease
//!   secrets, so caps and leases are the ones the node would make; immutable directories are
//!   packed here too. The mutable directories (target, Archives, Latest) are still linked
//!   through the node by the caller. Each share write waits on the job's budget as it goes
//!   ([`BudgetPacer`]), charged to the server it goes to, so job, total and per-server limits
//!   hold exactly for this traffic, and a stop ends the upload between writes, its unfinished
//!   shares left for the next run to continue.
//!
//! A directory's body is packed child by child, and a wide one's goes to a temporary file
//! (unnamed, in the node's `private/`, since it holds the children's caps) once it passes
//! [`SPILL_AT`]: a directory of 100,000 files has a body of about 24 MB, which would otherwise
//! sit in memory beside its children while it is encoded.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tahoe_jobs_config::NodeFacts;

use crate::data_path::{open_direct_grid, DataPath, DirectGrid, PathUsed};
use tahoe_jobs_engine::{ByteRequest, TaskContext};
use tahoe_jobs_lafs::chk::{ChkError, EncodingParams, DEFAULT_MAX_SEGMENT_SIZE};
use tahoe_jobs_lafs::dirnode::{nfc_order, push_immutable_child, DirnodeError, JsonValue};
use tahoe_jobs_lafs::discovery::load_servers;
use tahoe_jobs_lafs::lease::ClientLeaseSecrets;
use tahoe_jobs_lafs::upload::{
    Convergence, Pace, Pacer, ShareWrite, StopUpload, UploadError, Uploader,
};

use super::backupdb::LostName;
use super::keeper::ShareKeeper;
use super::metadata::FileStat;
use super::summary::counter;
use super::tree::{lost_children, may_collide, Kid};
use super::uploader::{open_for_upload, upload_file, UploadOutcome, CHUNK};
use crate::tahoe::{Cap, TahoeClient, TahoeError};

/// Why a sink could not store an object. Never holds a cap or a secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SinkError {
    /// The node failed.
    #[error(transparent)]
    Node(#[from] TahoeError),
    /// The direct upload failed.
    #[error(transparent)]
    Direct(#[from] UploadError),
}

impl SinkError {
    /// The run's stop signal ended the upload (a stop, not a failure).
    pub(crate) fn is_stopped(&self) -> bool {
        matches!(self, SinkError::Direct(UploadError::Stopped))
    }
}

/// Stores files and immutable directories on the grid.
#[async_trait]
pub(crate) trait UploadSink: Send + Sync {
    /// Uploads the regular file at `path`, whose stat before the upload was `stat`, within
    /// `ctx`'s budget, adding to its `bytes_uploaded` as the file's bytes go out.
    async fn upload_file(
        &self,
        ctx: &TaskContext,
        path: &Path,
        stat: &FileStat,
    ) -> Result<UploadOutcome, SinkError>;

    /// Makes an immutable directory of `children`; also says which children it could not
    /// hold (names equal after NFC normalisation keep one entry).
    async fn mkdir_immutable(
        &self,
        ctx: &TaskContext,
        children: &[(String, Kid)],
    ) -> Result<(Cap, Vec<LostName>), SinkError>;

    /// `direct` or `node`, for the log.
    fn name(&self) -> &'static str;

    /// Uploads in flight when the job does not say (`concurrency`).
    fn default_concurrency(&self) -> usize;
}

/// The sink for `wanted`: the direct one when it can be set up, else the node's with one
/// warning saying why. The run's progress says which (see [`PathUsed`]), and gets the warning.
pub(crate) fn choose(
    wanted: DataPath,
    node_dir: &Path,
    client: &TahoeClient,
    keeper: Option<&ShareKeeper>,
    ctx: &TaskContext,
) -> Arc<dyn UploadSink> {
    let node = || Arc::new(NodeSink(client.clone())) as Arc<dyn UploadSink>;
    let warn = |message: String| {
        tracing::warn!("{message}");
        ctx.progress().warn(ctx.now(), message);
    };
    let (sink, used) = match wanted {
        DataPath::Node => (node(), PathUsed::Node),
        DataPath::Direct => match DirectSink::new(node_dir, client.clone()) {
            Ok((direct, warning)) => {
                if let Some(warning) = warning {
                    warn(warning);
                }
                (
                    Arc::new(direct.keeping(keeper)) as Arc<dyn UploadSink>,
                    PathUsed::Direct,
                )
            }
            Err(reason) => {
                warn(format!(
                    "data_path = direct, but {reason}: uploading through the node for this run"
                ));
                (node(), PathUsed::Fallback(reason))
            }
        },
    };
    used.show(ctx.progress());
    sink
}

/// Through the node's web API.
pub(crate) struct NodeSink(pub TahoeClient);

#[async_trait]
impl UploadSink for NodeSink {
    async fn upload_file(
        &self,
        ctx: &TaskContext,
        path: &Path,
        stat: &FileStat,
    ) -> Result<UploadOutcome, SinkError> {
        Ok(upload_file(&self.0, ctx.budget(), ctx.progress(), path, stat).await?)
    }

    async fn mkdir_immutable(
        &self,
        _ctx: &TaskContext,
        children: &[(String, Kid)],
    ) -> Result<(Cap, Vec<LostName>), SinkError> {
        node_mkdir(&self.0, children).await
    }

    fn name(&self) -> &'static str {
        "node"
    }

    fn default_concurrency(&self) -> usize {
        super::params::DEFAULT_CONCURRENCY
    }
}

async fn node_mkdir(
    client: &TahoeClient,
    children: &[(String, Kid)],
) -> Result<(Cap, Vec<LostName>), SinkError> {
    let cap = client
        .mkdir_immutable(children.iter().map(|(n, c)| (n.as_str(), c)))
        .await?;
    let lost = if may_collide(children) {
        lost_children(children, &client.list(&cap, "").await?)
    } else {
        Vec::new()
    };
    Ok((cap, lost))
}

/// Straight to the storage servers.
pub(crate) struct DirectSink {
    uploader: Uploader,
    /// For the directories the packer cannot make as the node would (see `mkdir_immutable`).
    node: TahoeClient,
    /// Where a wide directory's body is written while it is uploaded (the node's `private/`).
    spill_dir: PathBuf,
}

impl DirectSink {
    /// Reads the node's servers, secrets and encoding; the reason when direct uploads are not
    /// possible (no server announces the HTTPS storage protocol, say: the rule is
    /// [`crate::data_path::direct_decision`]'s). Also the warning to give once for this run
    /// (servers that speak only Foolscap get no shares from it).
    pub(crate) fn new(
        node_dir: &Path,
        node: TahoeClient,
    ) -> Result<(DirectSink, Option<String>), String> {
        let servers = load_servers(node_dir).map_err(|e| e.to_string())?;
        let DirectGrid { grid, warning, .. } = open_direct_grid(&servers)?;
        let lease = ClientLeaseSecrets::from_node_dir(node_dir).map_err(|e| e.to_string())?;
        let convergence = Convergence::from_node_dir(node_dir)?;
        let encoding = NodeFacts::read(node_dir)
            .map_err(|e| e.to_string())?
            .encoding;
        let needed = u16::try_from(encoding.needed).map_err(|_| "shares.needed is too big")?;
        let total = u16::try_from(encoding.total).map_err(|_| "shares.total is too big")?;
        let params = EncodingParams {
            needed,
            total,
            max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
        };
        if needed == 0 || needed > total {
            return Err("shares.needed must be between 1 and shares.total".into());
        }
        let uploader = Uploader::new(&grid, lease, convergence, params, encoding.happy as usize);
        Ok((
            DirectSink {
                uploader,
                node,
                spill_dir: node_dir.join("private"),
            },
            warning,
        ))
    }

    /// The same sink, leaving the partial shares of files it is stopped in to `keeper` (and
    /// starting its keep-alive loop if it does not run yet).
    pub(crate) fn keeping(self, keeper: Option<&ShareKeeper>) -> DirectSink {
        let Some(keeper) = keeper else {
            return self;
        };
        keeper.ensure_running();
        DirectSink {
            uploader: self.uploader.with_partial_shares(keeper.shares().clone()),
            ..self
        }
    }
}

#[async_trait]
impl UploadSink for DirectSink {
    async fn upload_file(
        &self,
        ctx: &TaskContext,
        path: &Path,
        stat: &FileStat,
    ) -> Result<UploadOutcome, SinkError> {
        let file = match tokio::task::spawn_blocking({
            let path = path.to_path_buf();
            move || open_for_upload(&path)
        })
        .await
        {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => return Ok(UploadOutcome::Unreadable(e)),
            Err(e) => {
                return Ok(UploadOutcome::Unreadable(std::io::Error::other(format!(
                    "opening the file failed: {e}"
                ))))
            }
        };
        let pacer = BudgetPacer {
            ctx,
            progress: true,
        };
        let uploaded = match self.uploader.upload_open_file_paced(&file, &pacer).await {
            Ok(uploaded) => uploaded,
            Err(UploadError::Encoding(ChkError::ContentChanged)) => {
                return Ok(UploadOutcome::Shrunk)
            }
            Err(UploadError::Encoding(ChkError::Io(e))) => return Ok(UploadOutcome::Unreadable(e)),
            Err(e) => return Err(e.into()),
        };
        if uploaded.shares_restarted > 0 {
            tracing::info!(
                "{} partial share(s) of {} had been dropped by their storage server: sent \
                 again from the start",
                uploaded.shares_restarted,
                path.display()
            );
            ctx.progress().add(
                super::summary::counter::SHARES_RESTARTED,
                uploaded.shares_restarted as u64,
            );
        }
        let changed = match std::fs::symlink_metadata(path) {
            Ok(m) => !FileStat::from_metadata(&m).same_content_as(stat),
            Err(_) => true,
        };
        Ok(UploadOutcome::Uploaded {
            cap: Cap::new(uploaded.cap),
            changed,
        })
    }

    async fn mkdir_immutable(
        &self,
        ctx: &TaskContext,
        children: &[(String, Kid)],
    ) -> Result<(Cap, Vec<LostName>), SinkError> {
        // The body is written child by child: a wide directory's children are already held once
        // (with typed metadata); a second, JSON-tree copy of each would double that.
        let body = match pack_directory(children, &self.spill_dir, SPILL_AT) {
            Some(Ok(body)) => body,
            // Names equal after NFC: the node keeps one of them; it knows which.
            Some(Err(PackError::Dirnode(DirnodeError::DuplicateName { .. }))) => {
                return node_mkdir(&self.node, children).await
            }
            Some(Err(PackError::Dirnode(e))) => return Err(UploadError::Directory(e).into()),
            Some(Err(PackError::Spill(e))) => {
                return Err(UploadError::Encoding(ChkError::Io(e)).into())
            }
            // Metadata the packer cannot write as the node would: let the node do it.
            None => return node_mkdir(&self.node, children).await,
        };
        let pacer = BudgetPacer {
            ctx,
            progress: false,
        };
        let uploaded = match &body {
            Body::Memory(bytes) => {
                self.uploader
                    .upload_directory_body_paced(bytes, &pacer)
                    .await
            }
            Body::File(file) => {
                self.uploader
                    .upload_directory_file_paced(file, &pacer)
                    .await
            }
        };
        match uploaded {
            Ok(uploaded) => Ok((Cap::new(uploaded.cap), Vec::new())),
            Err(e) => Err(e.into()),
        }
    }

    fn name(&self) -> &'static str {
        "direct"
    }

    fn default_concurrency(&self) -> usize {
        super::params::DIRECT_CONCURRENCY
    }
}

/// Paces a direct upload by the job's budget: each share write is a [`ByteRequest`] for
/// exactly its bytes, charged to the server that receives them (the job's, that server's and
/// the total limit), and each segment passes the CPU governor first. A stop signal ends the
/// wait at once and the upload with it ([`UploadError::Stopped`]).
struct BudgetPacer<'a> {
    ctx: &'a TaskContext,
    /// Whether the file's bytes count as `bytes_uploaded` (files do, directories do not, as
    /// through the node).
    progress: bool,
}

impl Pacer for BudgetPacer<'_> {
    fn before_write<'b>(&'b self, write: ShareWrite<'b>) -> Pace<'b> {
        let request = ByteRequest::direct_upload(write.server_id, write.bytes);
        Box::pin(async move { self.ctx.acquire(request).await.map_err(|_| StopUpload) })
    }

    fn before_segment(&self, _segnum: u64, _segments: u64) -> Pace<'_> {
        Box::pin(async move { self.ctx.cpu_checkpoint().await.map_err(|_| StopUpload) })
    }

    fn segment_sent(&self, plaintext: u64) {
        if self.progress {
            self.ctx.progress().add(counter::BYTES_UPLOADED, plaintext);
        }
    }
}

/// Directory bodies up to this size are packed in memory; a larger one goes to a temporary
/// file. Few directories reach it (about 4,000 children), and for those the file costs a write
/// and two reads of what the upload encodes anyway.
const SPILL_AT: usize = 1 << 20;

/// A packed directory body.
enum Body {
    Memory(Vec<u8>),
    /// An unnamed temporary file (it disappears when closed).
    File(std::fs::File),
}

/// Why a directory body could not be packed.
enum PackError {
    Dirnode(DirnodeError),
    /// The temporary file could not be written.
    Spill(io::Error),
}

/// The body of the immutable directory of `children`, as the node would pack it, in memory up
/// to `spill_at` bytes, else in a temporary file in `spill_dir`; `None` when a metadata value
/// has no exact [`JsonValue`] (an integer past i64).
fn pack_directory(
    children: &[(String, Kid)],
    spill_dir: &Path,
    spill_at: usize,
) -> Option<Result<Body, PackError>> {
    let order = match nfc_order(children.iter().map(|(name, _)| name.as_str())) {
        Ok(order) => order,
        Err(e) => return Some(Err(PackError::Dirnode(e))),
    };
    let mut body = BodyWriter {
        memory: Vec::new(),
        file: None,
        spill_dir,
        spill_at,
    };
    let mut entry = Vec::new();
    for (name, i) in order {
        let kid = &children[i].1;
        let metadata = child_metadata(kid)?;
        entry.clear();
        if let Err(e) = push_immutable_child(&mut entry, &name, kid.cap.expose(), &metadata) {
            return Some(Err(PackError::Dirnode(e)));
        }
        if let Err(e) = body.write(&entry) {
            return Some(Err(PackError::Spill(e)));
        }
    }
    Some(body.finish().map_err(PackError::Spill))
}

/// A directory body as it is packed: in memory until it would pass `spill_at` bytes, then in
/// an unnamed temporary file in `spill_dir`.
struct BodyWriter<'a> {
    memory: Vec<u8>,
    file: Option<BufWriter<std::fs::File>>,
    spill_dir: &'a Path,
    spill_at: usize,
}

impl BodyWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() && self.memory.len() + bytes.len() > self.spill_at {
            let file = tempfile::tempfile_in(self.spill_dir)
                .map_err(|e| spill_error(self.spill_dir, e))?;
            let mut file = BufWriter::with_capacity(CHUNK, file);
            file.write_all(&self.memory)
                .map_err(|e| spill_error(self.spill_dir, e))?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file
                .write_all(bytes)
                .map_err(|e| spill_error(self.spill_dir, e)),
            None => {
                self.memory.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    fn finish(self) -> io::Result<Body> {
        match self.file {
            None => Ok(Body::Memory(self.memory)),
            Some(file) => match file.into_inner() {
                Ok(file) => Ok(Body::File(file)),
                Err(e) => Err(spill_error(self.spill_dir, e.into_error())),
            },
        }
    }
}

/// A temporary file's error, saying what was being written where.
fn spill_error(dir: &Path, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "cannot write a wide directory's listing to a temporary file in {}: {e}",
            dir.display()
        ),
    )
}

/// A child's metadata in the order the node would have received it (the keys of
/// [`super::metadata::TahoeMetadata`] come out sorted); `None` when a value has no exact
/// [`JsonValue`].
fn child_metadata(kid: &Kid) -> Option<Vec<(String, JsonValue)>> {
    match serde_json::to_value(kid.metadata) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| Some((k, json(v)?)))
            .collect::<Option<Vec<_>>>(),
        Ok(serde_json::Value::Null) => Some(Vec::new()),
        _ => None,
    }
}

fn json(value: serde_json::Value) -> Option<JsonValue> {
    use serde_json::Value;
    Some(match value {
        Value::Null => JsonValue::Null,
        Value::Bool(b) => JsonValue::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => JsonValue::Int(i),
            None if n.is_f64() => JsonValue::Float(n.as_f64()?),
            None => return None,
        },
        Value::String(s) => JsonValue::String(s),
        Value::Array(items) => {
            JsonValue::Array(items.into_iter().map(json).collect::<Option<_>>()?)
        }
        Value::Object(map) => JsonValue::Object(
            map.into_iter()
                .map(|(k, v)| Some((k, json(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::metadata::TahoeMetadata;
    use crate::tahoe::types::NewChild;
    use crate::tahoe::NodeKind;

    fn kid(metadata: Option<TahoeMetadata>) -> Kid {
        NewChild {
            kind: NodeKind::File,
            cap: Cap::literal(b"x"),
            metadata,
        }
    }

    #[test]
    fn metadata_keeps_the_order_and_types_the_node_receives() {
        let stat = FileStat {
            size: 1,
            mtime_ns: 1_700_000_000_250_000_000,
            ctime_ns: 1_700_000_001_000_000_000,
            ino: 42,
            dev: 7,
            mode: 0o100644,
            uid: 1000,
            gid: 100,
        };
        let children = [
            ("a".to_string(), kid(Some(TahoeMetadata(stat)))),
            ("b".to_string(), kid(None)),
        ];
        let first = child_metadata(&children[0].1).unwrap();
        let keys: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["ctime", "mtime", "st_dev", "st_gid", "st_ino", "st_mode", "st_uid"]
        );
        assert_eq!(first[1].1, JsonValue::Float(1_700_000_000.25));
        assert_eq!(first[4].1, JsonValue::Int(42));
        assert!(child_metadata(&children[1].1).unwrap().is_empty());
        // Written child by child, the body is the one the whole-directory packer makes.
        let whole = tahoe_jobs_lafs::dirnode::pack_immutable_children(&[
            tahoe_jobs_lafs::dirnode::ImmutableChild {
                name: "b".into(),
                ro_uri: Cap::literal(b"x").expose().to_string(),
                metadata: Vec::new(),
            },
            tahoe_jobs_lafs::dirnode::ImmutableChild {
                name: "a".into(),
                ro_uri: Cap::literal(b"x").expose().to_string(),
                metadata: first,
            },
        ])
        .unwrap();
        let spill_dir = tempfile::tempdir().unwrap();
        let in_memory = |spill_at| match pack_directory(&children, spill_dir.path(), spill_at) {
            Some(Ok(Body::Memory(bytes))) => bytes,
            _ => panic!("packed in memory"),
        };
        assert_eq!(in_memory(whole.len()), whole);
        // Past the spill size, the same bytes are in the temporary file.
        for spill_at in [0, 10, whole.len() - 1] {
            match pack_directory(&children, spill_dir.path(), spill_at) {
                Some(Ok(Body::File(mut file))) => {
                    use std::io::{Read, Seek};
                    file.seek(std::io::SeekFrom::Start(0)).unwrap();
                    let mut spilled = Vec::new();
                    file.read_to_end(&mut spilled).unwrap();
                    assert_eq!(spilled, whole, "spilled past {spill_at} bytes");
                }
                _ => panic!("spilled to a file past {spill_at} bytes"),
            }
        }
        // The file is unnamed: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(spill_dir.path()).unwrap().count(), 0);
        // A directory the file cannot be made in is an error that names it.
        let missing = spill_dir.path().join("missing");
        match pack_directory(&children, &missing, 0) {
            Some(Err(PackError::Spill(e))) => {
                assert!(e.to_string().contains("temporary file in"), "{e}")
            }
            _ => panic!("a spill directory that does not exist is an error"),
        }
    }

    #[test]
    fn an_integer_past_i64_is_left_to_the_node() {
        assert_eq!(json(serde_json::json!(u64::MAX)), None);
        assert_eq!(json(serde_json::json!(-3)), Some(JsonValue::Int(-3)));
    }
}
