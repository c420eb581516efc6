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

use std::path::Path;
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
use super::uploader::{open_for_upload, upload_file, UploadOutcome};
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
        Ok((DirectSink { uploader, node }, warning))
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
        let body = match pack_directory(children) {
            Some(Ok(body)) => body,
            // Names equal after NFC: the node keeps one of them; it knows which.
            Some(Err(DirnodeError::DuplicateName { .. })) => {
                return node_mkdir(&self.node, children).await
            }
            Some(Err(e)) => return Err(UploadError::Directory(e).into()),
            // Metadata the packer cannot write as the node would: let the node do it.
            None => return node_mkdir(&self.node, children).await,
        };
        let pacer = BudgetPacer {
            ctx,
            progress: false,
        };
        match self
            .uploader
            .upload_directory_body_paced(&body, &pacer)
            .await
        {
            Ok(uploaded) => Ok((Cap::new(uploaded.cap), Vec::new())),
            Err(e) => Err(e.into()),
        }
    }

    fn name(&self) -> &'static str {
        "direct"
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

/// The body of the immutable directory of `children`, as the node would pack it; `None` when
/// a metadata value has no exact [`JsonValue`] (an integer past i64).
fn pack_directory(children: &[(String, Kid)]) -> Option<Result<Vec<u8>, DirnodeError>> {
    let order = match nfc_order(children.iter().map(|(name, _)| name.as_str())) {
        Ok(order) => order,
        Err(e) => return Some(Err(e)),
    };
    let mut body = Vec::new();
    for (name, i) in order {
        let kid = &children[i].1;
        let metadata = child_metadata(kid)?;
        if let Err(e) = push_immutable_child(&mut body, &name, kid.cap.expose(), &metadata) {
            return Some(Err(e));
        }
    }
    Some(Ok(body))
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
        assert_eq!(pack_directory(&children).unwrap().unwrap(), whole);
    }

    #[test]
    fn an_integer_past_i64_is_left_to_the_node() {
        assert_eq!(json(serde_json::json!(u64::MAX)), None);
        assert_eq!(json(serde_json::json!(-3)), Some(JsonValue::Int(-3)));
    }
}
