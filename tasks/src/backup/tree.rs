//! Building the immutable tree for a source directory: a depth-first walk that decides each
//! file from the backupdb, starts at most `concurrency` uploads at a time, and turns each
//! directory into an immutable directory as soon as all its children's capabilities are known.
//!
//! The walk never waits for an upload, only for a free upload slot; each directory whose
//! children are still uploading becomes a small task that waits for them and then creates the
//! directory, so directory creation is pipelined behind the uploads. What is held in memory is
//! the directories on the walk's path and those waiting for uploads in flight, never a list of
//! the whole tree.
//!
//! Every spawned task is owned through an [`Owned`] handle or a directory's `JoinSet`, both of
//! which abort their tasks when dropped, so when a run stops (or fails) dropping the walk
//! cancels everything still in flight.
//!
//! Memory per child of a wide directory: a child is kept as its name, capability and stat
//! ([`Kid`]) until its directory is sent, and the metadata JSON is written only into the
//! request body. A child's upload task is reaped as soon as it finishes: a finished task that
//! nobody has joined yet keeps its whole cell (about 4 KB with the upload's state inline), which
//! on a directory of 100,000 files was 410 MB of the 570 MB heap peak.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::Value;
use tahoe_jobs_engine::{TaskContext, TaskError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::backupdb::{
    decide_dir, decide_file, dir_hash, BackupDb, DbError, Decision, LostName, RecheckPolicy,
};
use super::excludes::Excludes;
use super::metadata::{FileStat, TahoeMetadata};
use super::sink::{SinkError, UploadSink};
use super::summary::counter;
use super::uploader::UploadOutcome;
use super::walk::{cannot_read, quote, scan_dir, DirScan, Entry};
use super::{BackupError, BackupObserver, DirAction, FileAction};
use crate::tahoe::{Cap, CheckOptions, DirListing, ListedChild, NewChild, NodeKind, TahoeClient};

/// Why the tree could not be finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Halt {
    /// The stop signal fired.
    Stopped,
    /// Something failed; the error is in [`Shared::take_error`].
    Failed,
}

/// What every part of one run shares.
pub(crate) struct Shared {
    pub client: TahoeClient,
    /// Where files and immutable directories go (chosen once per run).
    pub sink: Arc<dyn UploadSink>,
    pub db: BackupDb,
    pub ctx: TaskContext,
    pub excludes: Excludes,
    pub policy: RecheckPolicy,
    pub observer: Arc<dyn BackupObserver>,
    pub started: Instant,
    uploads: Arc<Semaphore>,
    mkdirs: Arc<Semaphore>,
    /// Directories whose children are all known and that wait to be created (or checked): each
    /// holds its whole list of children until then. Over small or unchanged files the walk is
    /// far faster than the node makes directories, so without this bound the lists of every
    /// directory in the tree would pile up (361 MB at a million files in 1,000 directories).
    dirs_queued: Arc<Semaphore>,
    /// Subdirectories walked beside the main walk (one per spare core): an unchanged tree is
    /// all CPU, a stat and a backupdb lookup per file.
    walkers: Arc<Semaphore>,
    /// Cancelled on the first failure, so the walk and the other uploads stop.
    abort: CancellationToken,
    first_error: Mutex<Option<BackupError>>,
    last_checkpoint: Mutex<Instant>,
}

/// Directories that may wait for creation per `mkdir-immutable` slot: enough to keep the node
/// busy while the walk goes on, few enough that their lists of children stay small.
const DIRS_QUEUED_PER_MKDIR: usize = 4;

/// How often finished uploads are made durable: a `kill -9` loses at most this much work
/// besides the uploads in flight.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: TahoeClient,
        sink: Arc<dyn UploadSink>,
        db: BackupDb,
        ctx: TaskContext,
        excludes: Excludes,
        policy: RecheckPolicy,
        observer: Arc<dyn BackupObserver>,
        concurrency: usize,
    ) -> Shared {
        let concurrency = concurrency.max(1);
        Shared {
            client,
            sink,
            db,
            ctx,
            excludes,
            policy,
            observer,
            started: Instant::now(),
            uploads: Arc::new(Semaphore::new(concurrency)),
            mkdirs: Arc::new(Semaphore::new(concurrency)),
            dirs_queued: Arc::new(Semaphore::new(DIRS_QUEUED_PER_MKDIR * concurrency)),
            walkers: Arc::new(Semaphore::new(
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get().saturating_sub(1).max(1)),
            )),
            abort: CancellationToken::new(),
            first_error: Mutex::new(None),
            last_checkpoint: Mutex::new(Instant::now()),
        }
    }

    /// Records a failure (the first one wins) and halts the run.
    pub fn fail(&self, err: impl Into<BackupError>) -> Halt {
        let mut first = self.first_error.lock().expect("error lock");
        if first.is_none() {
            *first = Some(err.into());
        }
        self.abort.cancel();
        Halt::Failed
    }

    pub fn take_error(&self) -> BackupError {
        self.first_error
            .lock()
            .expect("error lock")
            .take()
            .unwrap_or_else(|| BackupError::Internal("a run halted without an error".into()))
    }

    fn halted_now(&self) -> Option<Halt> {
        if self.ctx.stop().is_stopped() {
            Some(Halt::Stopped)
        } else if self.abort.is_cancelled() {
            Some(Halt::Failed)
        } else {
            None
        }
    }

    /// Runs `fut` unless the run halts first.
    pub async fn until_halt<T>(
        &self,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T, Halt> {
        tokio::select! {
            biased;
            _ = self.ctx.stop().stopped() => Err(Halt::Stopped),
            _ = self.abort.cancelled() => Err(Halt::Failed),
            v = fut => Ok(v),
        }
    }

    async fn permit(&self, pool: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit, Halt> {
        self.until_halt(pool.clone().acquire_owned())
            .await
            .map(|p| p.expect("the semaphores are never closed"))
    }

    fn now(&self) -> i64 {
        self.ctx.now().as_second()
    }

    fn count(&self, name: &str, n: u64) {
        self.ctx.progress().add(name, n);
    }

    pub fn warn(&self, message: String) {
        tracing::warn!(job = self.ctx.job_id(), "{message}");
        self.observer.warning(&message);
        self.ctx.progress().warn(self.ctx.now(), message);
    }

    /// Flushes the backupdb when the last flush is older than [`CHECKPOINT_EVERY`].
    async fn maybe_checkpoint(&self) -> Result<(), Halt> {
        {
            let mut last = self.last_checkpoint.lock().expect("checkpoint lock");
            if last.elapsed() < CHECKPOINT_EVERY {
                return Ok(());
            }
            *last = Instant::now();
        }
        self.ctx.checkpoint().await.map_err(|e| {
            self.fail(match e {
                TaskError::Store(s) => BackupError::Db(DbError::Sled(s)),
                e => BackupError::Internal(format!("saving progress: {e}")),
            })
        })
    }

    fn update_rate(&self) {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            let bytes = self.ctx.progress().get(counter::BYTES_UPLOADED) as f64;
            self.ctx
                .progress()
                .set(counter::UPLOAD_RATE, (bytes / secs) as u64);
        }
    }
}

/// A spawned task that is aborted when its handle is dropped.
pub(crate) struct Owned<T>(JoinHandle<T>);

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A child of a new immutable directory as it waits for the directory to be sent: its stat
/// stands for the metadata until the body is serialized (`None` only for the source itself,
/// which is nobody's child).
pub(crate) type Kid = NewChild<Option<TahoeMetadata>>;

type ChildResult = Result<Option<Kid>, Halt>;

/// A directory being built: known now, or once a task finishes. `None` results are children
/// that turned out to be skipped (an unreadable file).
pub(crate) enum Child {
    Ready(Kid),
    Pending(Owned<ChildResult>),
}

/// A child as the walk of its directory returns it: known now, or the work that will know it.
enum Next {
    Ready(Kid),
    Later(BoxFuture<'static, ChildResult>),
}

/// A child's place in its directory's list, which is in name order.
enum Slot {
    Ready(Kid),
    /// Its task is in the directory's `JoinSet`.
    Waiting,
    /// It turned out to be skipped.
    Skipped,
}

/// The children of one directory while it is walked and until it is sent. Work in flight runs
/// in `pending`, whose tasks are joined as soon as they finish, so what stays per child is its
/// [`Slot`], not a finished task.
struct Kids {
    slots: Vec<(String, Slot)>,
    pending: JoinSet<(usize, ChildResult)>,
}

impl Kids {
    fn with_capacity(n: usize) -> Kids {
        Kids {
            slots: Vec::with_capacity(n),
            pending: JoinSet::new(),
        }
    }

    fn push(&mut self, name: String, next: Next) {
        let slot = match next {
            Next::Ready(kid) => Slot::Ready(kid),
            Next::Later(work) => {
                let index = self.slots.len();
                self.pending.spawn(async move { (index, work.await) });
                Slot::Waiting
            }
        };
        self.slots.push((name, slot));
    }

    /// Takes in the results of the tasks that have finished, without waiting.
    fn reap(&mut self, sh: &Shared) -> Result<(), Halt> {
        while let Some(joined) = self.pending.try_join_next() {
            self.settle(sh, joined)?;
        }
        Ok(())
    }

    /// Waits for every task still in flight.
    async fn wait_all(&mut self, sh: &Shared) -> Result<(), Halt> {
        while let Some(joined) = self.pending.join_next().await {
            self.settle(sh, joined)?;
        }
        Ok(())
    }

    fn settle(
        &mut self,
        sh: &Shared,
        joined: Result<(usize, ChildResult), JoinError>,
    ) -> Result<(), Halt> {
        let (index, result) = match joined {
            Ok(done) => done,
            Err(e) if e.is_cancelled() => return Err(Halt::Stopped),
            Err(e) => {
                return Err(sh.fail(BackupError::Internal(format!("a backup task failed: {e}"))))
            }
        };
        self.slots[index].1 = match result? {
            Some(kid) => Slot::Ready(kid),
            None => Slot::Skipped,
        };
        Ok(())
    }

    fn all_ready(&self) -> bool {
        self.pending.is_empty()
    }

    /// The children to send, in name order, once nothing is pending.
    fn into_ready(self) -> Vec<(String, Kid)> {
        debug_assert!(self.pending.is_empty());
        self.slots
            .into_iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Ready(kid) => Some((name, kid)),
                Slot::Waiting | Slot::Skipped => None,
            })
            .collect()
    }
}

impl Child {
    /// Waits for the child's capability.
    pub async fn resolve(self, sh: &Shared) -> ChildResult {
        match self {
            Child::Ready(c) => Ok(Some(c)),
            Child::Pending(mut owned) => match (&mut owned.0).await {
                Ok(r) => r,
                Err(e) if e.is_cancelled() => Err(Halt::Stopped),
                Err(e) => Err(sh.fail(BackupError::Internal(format!("a backup task failed: {e}")))),
            },
        }
    }
}

fn spawn(fut: impl std::future::Future<Output = ChildResult> + Send + 'static) -> Child {
    Child::Pending(Owned(tokio::spawn(fut)))
}

/// Backs up the directory at `path`, already listed as `scan`; `metadata` is what its parent
/// records for it (nothing for the source itself).
pub(crate) fn backup_dir(
    sh: Arc<Shared>,
    path: PathBuf,
    metadata: Option<TahoeMetadata>,
    scan: DirScan,
) -> BoxFuture<'static, Result<Child, Halt>> {
    Box::pin(async move {
        sh.count(counter::DIRS_SEEN, 1);
        for odd in &scan.odd {
            sh.count(
                if odd.is_dir() {
                    counter::DIRS_SKIPPED
                } else {
                    counter::FILES_SKIPPED
                },
                1,
            );
            sh.warn(odd.warning());
        }
        let mut kids = Kids::with_capacity(scan.entries.len());
        let mut ahead = ScanAhead::new(&path, &scan.entries, &sh.excludes);
        for (i, Entry { name, is_dir, stat }) in scan.entries.into_iter().enumerate() {
            if let Some(halt) = sh.halted_now() {
                return Err(halt);
            }
            if i % 256 == 255 {
                sh.until_halt(sh.ctx.budget().cpu_checkpoint()).await?;
                // Over an unchanged directory nothing below waits, so without this the loop
                // would hold its worker thread for the whole directory.
                tokio::task::yield_now().await;
            }
            let entry = Found {
                path: path.join(&name),
                stat,
            };
            let next = if is_dir {
                let listing = ahead.take();
                walk_subdir(&sh, entry, listing).await?
            } else {
                Some(backup_file(&sh, entry).await?)
            };
            if let Some(next) = next {
                kids.push(name, next);
            }
            kids.reap(&sh)?;
        }
        finish_dir(sh, path, metadata, kids).await
    })
}

/// Walks a subdirectory beside this walk when a core is spare, else here and now. Trying (not
/// waiting) for the permit means a walk never waits on its own subwalks.
async fn walk_subdir(
    sh: &Arc<Shared>,
    entry: Found,
    listing: JoinHandle<std::io::Result<DirScan>>,
) -> Result<Option<Next>, Halt> {
    let sh = sh.clone();
    if let Ok(walker) = sh.walkers.clone().try_acquire_owned() {
        return Ok(Some(Next::Later(Box::pin(async move {
            let child = backup_subdir(&sh, entry, listing).await;
            drop(walker);
            match child? {
                None => Ok(None),
                Some(child) => child.resolve(&sh).await,
            }
        }))));
    }
    Ok(match backup_subdir(&sh, entry, listing).await? {
        None => None,
        Some(Child::Ready(kid)) => Some(Next::Ready(kid)),
        Some(pending) => Some(Next::Later(Box::pin(
            async move { pending.resolve(&sh).await },
        ))),
    })
}

/// How many subdirectories of a directory are listed ahead of the walk.
const SCAN_AHEAD: usize = 2;

/// Lists the next subdirectories of a directory on the blocking pool while the walk is busy
/// with the earlier ones. On an unchanged tree the walk is all CPU (a `stat` per entry, then a
/// backupdb lookup per file), so listing on one core while deciding on the other shortens it;
/// a few listings ahead are enough to keep both busy without holding many in memory.
struct ScanAhead {
    /// Subdirectories not listed yet, in the order the walk takes them.
    upcoming: std::collections::VecDeque<PathBuf>,
    listing: std::collections::VecDeque<JoinHandle<std::io::Result<DirScan>>>,
    excludes: Excludes,
}

impl ScanAhead {
    fn new(dir: &Path, entries: &[Entry], excludes: &Excludes) -> ScanAhead {
        ScanAhead {
            upcoming: entries
                .iter()
                .filter(|e| e.is_dir)
                .map(|e| dir.join(&e.name))
                .collect(),
            listing: std::collections::VecDeque::new(),
            excludes: excludes.clone(),
        }
    }

    fn start_more(&mut self) {
        while self.listing.len() < SCAN_AHEAD {
            let Some(path) = self.upcoming.pop_front() else {
                return;
            };
            let excludes = self.excludes.clone();
            self.listing.push_back(tokio::task::spawn_blocking(move || {
                scan_dir(&path, &excludes)
            }));
        }
    }

    /// The listing of the next subdirectory, for a walk that takes them in order.
    fn take(&mut self) -> JoinHandle<std::io::Result<DirScan>> {
        self.start_more();
        let listing = self
            .listing
            .pop_front()
            .expect("as many subdirectories taken as there are");
        self.start_more();
        listing
    }
}

async fn backup_subdir(
    sh: &Arc<Shared>,
    entry: Found,
    listing: JoinHandle<std::io::Result<DirScan>>,
) -> Result<Option<Child>, Halt> {
    let scan = {
        match sh.until_halt(listing).await? {
            Ok(Ok(scan)) => scan,
            Ok(Err(e)) => {
                sh.count(counter::DIRS_SKIPPED, 1);
                sh.warn(cannot_read("directory", &entry.path, &e));
                return Ok(None);
            }
            Err(e) => return Err(sh.fail(BackupError::Internal(format!("listing failed: {e}")))),
        }
    };
    let metadata = Some(TahoeMetadata(entry.stat));
    // Each directory level is walked in a task of its own: awaiting a task does not poll it on
    // this stack, whereas awaiting the nested future would, one frame chain per level (a tree
    // 1,000 directories deep would overflow a 2 MiB thread stack).
    let mut walk = Owned(tokio::spawn(backup_dir(
        sh.clone(),
        entry.path,
        metadata,
        scan,
    )));
    match (&mut walk.0).await {
        Ok(result) => result.map(Some),
        Err(e) if e.is_cancelled() => Err(Halt::Stopped),
        Err(e) => Err(sh.fail(BackupError::Internal(format!(
            "walking a directory failed: {e}"
        )))),
    }
}

/// A listed entry as the walk reaches it: with its full path.
struct Found {
    path: PathBuf,
    stat: FileStat,
}

async fn backup_file(sh: &Arc<Shared>, entry: Found) -> Result<Next, Halt> {
    sh.count(counter::FILES_SEEN, 1);
    sh.count(counter::BYTES_SEEN, entry.stat.size);
    let record = sh.db.file(&entry.path).map_err(|e| sh.fail(e))?;
    let decision = decide_file(
        record.as_ref(),
        &entry.stat,
        sh.now(),
        &sh.policy,
        fastrand::f64(),
    );
    if let Decision::Reuse(cap) = decision {
        sh.count(counter::FILES_REUSED, 1);
        sh.observer.file(&entry.path, FileAction::Reused);
        return Ok(Next::Ready(file_child(cap, entry.stat)));
    }
    let permit = sh.permit(&sh.uploads).await?;
    let sh2 = sh.clone();
    // Boxed, so the task's cell holds a pointer and the upload's state is freed as it ends.
    Ok(Next::Later(Box::pin(async move {
        let _permit = permit;
        let result = sh2
            .until_halt(upload_or_check(&sh2, &entry, decision))
            .await;
        result.and_then(|r| r)
    })))
}

fn file_child(cap: Cap, stat: FileStat) -> Kid {
    NewChild {
        kind: NodeKind::File,
        cap,
        metadata: Some(TahoeMetadata(stat)),
    }
}

/// Checks a due capability (reusing it when healthy), else uploads the file.
async fn upload_or_check(sh: &Shared, entry: &Found, decision: Decision) -> ChildResult {
    if let Decision::Check(cap) = decision {
        sh.count(counter::FILES_CHECKED, 1);
        match sh.client.check(&cap, "", CheckOptions::default()).await {
            Ok(report) if report.healthy_now() => {
                sh.db
                    .file_checked(&entry.path, sh.now())
                    .map_err(|e| sh.fail(e))?;
                sh.count(counter::FILES_REUSED, 1);
                sh.observer.file(&entry.path, FileAction::Reused);
                return Ok(Some(file_child(cap, entry.stat)));
            }
            Err(e) if e.is_unreachable() => return Err(sh.fail(e)),
            // Unhealthy, or the check itself failed: upload again, as `tahoe backup` does.
            _ => {}
        }
    }
    sh.ctx
        .progress()
        .set_current(Some(entry.path.display().to_string()));
    let outcome = sh
        .sink
        .upload_file(&sh.ctx, &entry.path, &entry.stat)
        .await
        .map_err(|e| sink_halt(sh, || format!("uploading {}", quote(&entry.path)), e))?;
    sh.update_rate();
    match outcome {
        UploadOutcome::Uploaded { cap, changed } => {
            sh.count(counter::FILES_UPLOADED, 1);
            if changed {
                // Linked as read, but not remembered: the next run uploads it again.
                sh.count(counter::FILES_CHANGED, 1);
                sh.observer.file(&entry.path, FileAction::Changed);
                sh.warn(format!(
                    "file changed while it was uploaded: {}",
                    quote(&entry.path)
                ));
            } else {
                sh.db
                    .record_file(&entry.path, &entry.stat, &cap, sh.now())
                    .map_err(|e| sh.fail(e))?;
                sh.maybe_checkpoint().await?;
                sh.observer.file(&entry.path, FileAction::Uploaded);
            }
            Ok(Some(file_child(cap, entry.stat)))
        }
        UploadOutcome::Unreadable(e) => {
            sh.count(counter::FILES_SKIPPED, 1);
            sh.warn(cannot_read("file", &entry.path, &e));
            Ok(None)
        }
        UploadOutcome::Shrunk => {
            sh.count(counter::FILES_CHANGED, 1);
            sh.count(counter::FILES_SKIPPED, 1);
            sh.warn(format!(
                "file shrank while it was uploaded, left out of this backup: {}",
                quote(&entry.path)
            ));
            Ok(None)
        }
    }
}

/// The directory's capability once its children are known: reused from the backupdb when it
/// can be decided at once, else from a task that waits for the children.
async fn finish_dir(
    sh: Arc<Shared>,
    path: PathBuf,
    metadata: Option<TahoeMetadata>,
    kids: Kids,
) -> Result<Child, Halt> {
    if kids.all_ready() {
        let ready = kids.into_ready();
        let hash = dir_hash(ready.iter().map(|(n, c)| (n.as_str(), &c.cap)));
        let record = match sh.db.dir(&hash) {
            Ok(r) => r,
            Err(e) => return Err(sh.fail(e)),
        };
        let decision = decide_dir(record.as_ref(), sh.now(), &sh.policy, fastrand::f64());
        let known_lost = record.map(|r| r.lost).unwrap_or_default();
        if let Decision::Reuse(cap) = decision {
            reused_dir(&sh, &path, &known_lost);
            return Ok(Child::Ready(dir_child(cap, metadata)));
        }
        // The walk waits here for a place in the queue, so it never runs far ahead of the node.
        let queued = sh.permit(&sh.dirs_queued).await?;
        return Ok(spawn(async move {
            let result = sh
                .until_halt(create_dir(&sh, &path, ready, hash, decision, known_lost))
                .await;
            drop(queued);
            result.and_then(|r| r.map(|cap| Some(dir_child(cap, metadata))))
        }));
    }
    Ok(spawn(async move {
        let mut kids = kids;
        kids.wait_all(&sh).await?;
        let ready = kids.into_ready();
        let hash = dir_hash(ready.iter().map(|(n, c)| (n.as_str(), &c.cap)));
        let record = sh.db.dir(&hash).map_err(|e| sh.fail(e))?;
        let decision = decide_dir(record.as_ref(), sh.now(), &sh.policy, fastrand::f64());
        let known_lost = record.map(|r| r.lost).unwrap_or_default();
        if let Decision::Reuse(cap) = decision {
            reused_dir(&sh, &path, &known_lost);
            return Ok(Some(dir_child(cap, metadata)));
        }
        let _queued = sh.permit(&sh.dirs_queued).await?;
        let result = sh
            .until_halt(create_dir(&sh, &path, ready, hash, decision, known_lost))
            .await;
        result.and_then(|r| r.map(|cap| Some(dir_child(cap, metadata))))
    }))
}

fn dir_child(cap: Cap, metadata: Option<TahoeMetadata>) -> Kid {
    NewChild {
        kind: NodeKind::Directory,
        cap,
        metadata,
    }
}

/// Counts a directory reused from the backupdb, repeating the warnings of its creation.
fn reused_dir(sh: &Shared, path: &Path, lost: &[LostName]) {
    sh.count(counter::DIRS_REUSED, 1);
    sh.observer.directory(path, DirAction::Reused);
    report_lost(sh, path, lost);
}

/// Warns about children a directory could not hold, and counts them as skipped.
fn report_lost(sh: &Shared, path: &Path, lost: &[LostName]) {
    for l in lost {
        let (counter, kind) = if l.is_dir {
            (counter::DIRS_SKIPPED, "directory")
        } else {
            (counter::FILES_SKIPPED, "file")
        };
        sh.count(counter, 1);
        sh.warn(format!(
            "cannot backup {kind} {}: after Unicode normalisation (NFC) its name is the same \
             as another entry's in this directory, and the grid keeps one entry per name",
            quote(&path.join(&l.name))
        ));
    }
}

/// Whether two of `children` may have names that are equal after NFC, as the node stores
/// them: only possible when one of the names is not ASCII.
pub(super) fn may_collide(children: &[(String, Kid)]) -> bool {
    children.len() > 1 && children.iter().any(|(name, _)| !name.is_ascii())
}

/// The children of a new immutable directory that its `listing` does not hold: the node
/// NFC-normalises names, and of names that become equal it keeps one. A kept child is found
/// by its name, else by its capability and metadata (its name was normalised).
pub(super) fn lost_children(children: &[(String, Kid)], listing: &DirListing) -> Vec<LostName> {
    if listing.children.len() >= children.len() {
        return Vec::new();
    }
    let same = |listed: &ListedChild, child: &Kid| {
        // The JSON the node was sent, made again: this runs only after a listing that lacks
        // children, which is rare.
        let ours = serde_json::to_value(child.metadata).unwrap_or(Value::Null);
        listed.ro_cap.as_ref() == Some(&child.cap)
            && ours
                .as_object()
                .is_none_or(|ours| ours.iter().all(|(k, v)| listed.metadata.get(k) == Some(v)))
    };
    let mut taken: Vec<&str> = Vec::new();
    let mut unmatched = Vec::new();
    for (name, child) in children {
        match listing.children.get(name) {
            Some(listed) if same(listed, child) => taken.push(name),
            _ => unmatched.push((name, child)),
        }
    }
    let mut lost = Vec::new();
    for (name, child) in unmatched {
        let found = listing
            .children
            .iter()
            .find(|(n, listed)| !taken.contains(&n.as_str()) && same(listed, child));
        match found {
            Some((n, _)) => taken.push(n),
            None => lost.push(LostName {
                name: name.clone(),
                is_dir: child.kind == NodeKind::Directory,
            }),
        }
    }
    lost
}

/// How a sink's error halts the run: a stop ends it as stopped (nothing is recorded for the
/// object), anything else fails it, saying what was being done.
fn sink_halt(sh: &Shared, during: impl FnOnce() -> String, e: SinkError) -> Halt {
    if e.is_stopped() {
        Halt::Stopped
    } else {
        sh.fail(sink_error(during(), e))
    }
}

/// A sink's failure as the run's error, saying what was being done.
fn sink_error(during: String, e: SinkError) -> BackupError {
    match e {
        SinkError::Node(source) => BackupError::Node { during, source },
        SinkError::Direct(source) => BackupError::Direct { during, source },
    }
}

/// Checks a due directory (reusing it when healthy), else makes it immutable through the sink.
async fn create_dir(
    sh: &Shared,
    path: &Path,
    children: Vec<(String, Kid)>,
    hash: [u8; 32],
    decision: Decision,
    known_lost: Vec<LostName>,
) -> Result<Cap, Halt> {
    let _permit = sh.permit(&sh.mkdirs).await?;
    if let Decision::Check(cap) = decision {
        sh.count(counter::DIRS_CHECKED, 1);
        match sh.client.check(&cap, "", CheckOptions::default()).await {
            Ok(report) if report.healthy_now() => {
                sh.db.dir_checked(&hash, sh.now()).map_err(|e| sh.fail(e))?;
                reused_dir(sh, path, &known_lost);
                return Ok(cap);
            }
            Err(e) if e.is_unreachable() => return Err(sh.fail(e)),
            _ => {}
        }
    }
    let (cap, lost) = sh
        .sink
        .mkdir_immutable(&sh.ctx, &children)
        .await
        .map_err(|e| {
            sink_halt(
                sh,
                || format!("creating the directory for {}", quote(path)),
                e,
            )
        })?;
    sh.db
        .record_dir(&hash, &cap, sh.now(), &lost)
        .map_err(|e| sh.fail(e))?;
    sh.count(counter::DIRS_CREATED, 1);
    sh.observer.directory(path, DirAction::Created);
    report_lost(sh, path, &lost);
    Ok(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::metadata::FileStat;
    use crate::tahoe::types::mkdir_immutable_json;

    /// The `mkdir-immutable` body built from the compact children is byte for byte the one
    /// built from JSON maps, as before: same keys, values and order as `tahoe backup`'s.
    #[test]
    fn the_directory_body_from_compact_children_is_unchanged() {
        let stat = |i: u64| FileStat {
            size: i,
            mtime_ns: 1_700_000_000_123_456_789 + i as i128 * 1_000_000_007,
            ctime_ns: 1_700_000_100_000_000_000 - i as i128,
            ino: 1000 + i,
            dev: 2049,
            mode: if i.is_multiple_of(3) {
                0o40755
            } else {
                0o100644
            },
            uid: 1000,
            gid: 100 + i as u32,
        };
        let entries: Vec<Entry> = (0..50u64)
            .map(|i| Entry {
                name: format!("n\u{e9}\"\n{}", 49 - i),
                is_dir: i.is_multiple_of(3),
                stat: stat(i),
            })
            .collect();
        let cap = |i: usize| Cap::literal(format!("content {i}").as_bytes());
        let compact: Vec<(String, Kid)> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let kid = if e.is_dir {
                    dir_child(cap(i), Some(TahoeMetadata(e.stat)))
                } else {
                    file_child(cap(i), e.stat)
                };
                (e.name.clone(), kid)
            })
            .collect();
        let maps: Vec<(String, NewChild)> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let kind = if e.is_dir {
                    NodeKind::Directory
                } else {
                    NodeKind::File
                };
                let child = NewChild {
                    kind,
                    cap: cap(i),
                    metadata: e.stat.tahoe_metadata(),
                };
                (e.name.clone(), child)
            })
            .collect();
        let new = mkdir_immutable_json(compact.iter().map(|(n, c)| (n.as_str(), c))).unwrap();
        let old = mkdir_immutable_json(maps.iter().map(|(n, c)| (n.as_str(), c))).unwrap();
        assert_eq!(
            String::from_utf8(new).unwrap(),
            String::from_utf8(old).unwrap()
        );
    }
}
