//! One backup run from start to end: source checks, target preparation, the tree, the links,
//! and the totals kept for the next run's estimates and unplugged-source check.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backup::params::BackupParams;
use tahoe_jobs_engine::TaskContext;

use super::backupdb::{BackupDb, RecheckPolicy, RunTotals};
use super::excludes::Excludes;
use super::layout::{archive_name, TargetDir};
use super::summary::{counter, BackupSummary};
use super::tree::{backup_dir, Child, Halt, Shared};
use super::walk::{scan_dir, DirScan};
use super::{BackupError, BackupOptions};
use crate::tahoe::{Aliases, TahoeClient};

/// How a run that did not fail ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// Linked as `Archives/<name>` and `Latest`.
    Completed(BackupSummary),
    /// The stop signal fired: nothing was linked; finished files are in the backupdb.
    Stopped(BackupSummary),
}

/// Runs one backup of `params` with the engine's context (stop signal, budget, progress, store).
pub async fn run_backup(
    node_dir: &Path,
    params: &BackupParams,
    options: &BackupOptions,
    ctx: &TaskContext,
) -> Result<RunEnd, BackupError> {
    let source = absolute(&params.source)?;
    let excludes = Excludes::from_options(
        &params.exclude,
        params.exclude_from.as_deref(),
        params.exclude_vcs,
    )?;
    let db = BackupDb::new(ctx.store().clone());
    let previous = db.totals()?;
    let scan = scan_source(&source, &excludes, previous).await?;
    let source_id = identity(&source);

    let client = TahoeClient::from_node_dir(node_dir, &options.client)?;
    let (root, path) = Aliases::read(node_dir)?.resolve(&params.target)?;
    let target = TargetDir { root, path };
    tracing::info!(job = ctx.job_id(), target = %params.target, source = %source.display(), "backup starting");

    if let Some(prev) = previous {
        let p = ctx.progress();
        p.set_estimate(counter::FILES_SEEN, prev.files);
        p.set_estimate(counter::DIRS_SEEN, prev.dirs);
        p.set_estimate(counter::BYTES_SEEN, prev.bytes);
    }
    let sink = super::sink::choose(
        params.data_path,
        node_dir,
        &client,
        options.keeper.as_ref(),
        ctx,
    );
    let concurrency = params
        .concurrency
        .unwrap_or_else(|| sink.default_concurrency());
    tracing::debug!(
        job = ctx.job_id(),
        data_path = sink.name(),
        concurrency,
        "backup data path"
    );
    let sh = Arc::new(Shared::new(
        client.clone(),
        sink,
        db.clone(),
        ctx.clone(),
        excludes,
        RecheckPolicy::of(params),
        options.observer.clone(),
        concurrency,
    ));
    let summary = |sh: &Shared| BackupSummary::from_progress(ctx.progress(), sh.started.elapsed());

    // `Archives` is made sure of while the tree is built: a bad target still stops the run
    // before anything is linked, without costing an unchanged run a round trip.
    let prepare = async {
        target.prepare(&client).await.map_err(|e| {
            sh.fail(BackupError::Node {
                during: format!("preparing {}/Archives", params.target),
                source: e,
            })
        })
    };
    let (prepared, tree) = tokio::join!(sh.until_halt(prepare), build(&sh, source.clone(), scan));
    let tree = match (prepared, tree) {
        (Ok(Ok(prepared)), Ok(tree)) => Ok((prepared, tree)),
        (Err(halt) | Ok(Err(halt)), Ok(_)) => Err(halt),
        (_, Err(halt)) => Err(halt),
    };
    let (prepared, backup) = match tree {
        Ok(both) => both,
        Err(Halt::Stopped) => {
            db.flush().await?;
            tracing::info!(
                job = ctx.job_id(),
                "backup stopped; finished files are remembered"
            );
            return Ok(RunEnd::Stopped(summary(&sh)));
        }
        Err(Halt::Failed) => {
            db.flush().await?;
            return Err(sh.take_error());
        }
    };

    // A source that went away during the run (a drive unplugged, the directory moved) left a
    // tree of vanished files behind: that must never become `Latest`.
    if identity(&source) != source_id {
        db.flush().await?;
        return Err(BackupError::SourceVanished { path: source });
    }

    // Everything is uploaded: the time of completion names the archive, as in `tahoe backup`.
    let name = archive_name(ctx.now());
    prepared
        .link(&client, &name, &backup)
        .await
        .map_err(|e| BackupError::Node {
            during: format!("linking the new backup into {}", params.target),
            source: e,
        })?;
    let mut done = summary(&sh);
    done.archive = Some(name);
    db.set_totals(&RunTotals {
        files: done.files_seen,
        dirs: ctx.progress().get(counter::DIRS_SEEN),
        bytes: done.bytes_seen,
        completed_at: ctx.now().as_second(),
    })?;
    db.flush().await?;
    Ok(RunEnd::Completed(done))
}

/// Builds the tree and waits for the root directory's capability.
async fn build(
    sh: &Arc<Shared>,
    source: PathBuf,
    scan: DirScan,
) -> Result<crate::tahoe::Cap, Halt> {
    let root = backup_dir(sh.clone(), source, None, scan).await?;
    let root = match root {
        Child::Ready(c) => c,
        pending => sh.until_halt(pending.resolve(sh)).await??.ok_or_else(|| {
            sh.fail(BackupError::Internal(
                "the source produced no directory".into(),
            ))
        })?,
    };
    Ok(root.cap)
}

/// The device and inode of the directory at `path`, if there is one.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

fn absolute(source: &Path) -> Result<PathBuf, BackupError> {
    std::path::absolute(source).map_err(|e| BackupError::SourceUnreadable {
        path: source.to_path_buf(),
        message: e.to_string(),
    })
}

/// Lists the source, refusing a missing one, and an empty one where the last completed run saw
/// files (an unplugged drive's empty mount point must not become an empty `Latest`).
async fn scan_source(
    source: &Path,
    excludes: &Excludes,
    previous: Option<RunTotals>,
) -> Result<DirScan, BackupError> {
    match std::fs::metadata(source) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::SourceMissing {
                path: source.to_path_buf(),
            })
        }
        Err(e) => {
            return Err(BackupError::SourceUnreadable {
                path: source.to_path_buf(),
                message: e.to_string(),
            })
        }
        Ok(m) if !m.is_dir() => {
            return Err(BackupError::SourceNotDirectory {
                path: source.to_path_buf(),
            })
        }
        Ok(_) => {}
    }
    let (path, ex) = (source.to_path_buf(), excludes.clone());
    let scan = tokio::task::spawn_blocking(move || scan_dir(&path, &ex))
        .await
        .map_err(|e| BackupError::Internal(format!("listing failed: {e}")))?
        .map_err(|e| BackupError::SourceUnreadable {
            path: source.to_path_buf(),
            message: e.to_string(),
        })?;
    let previous_files = previous.map_or(0, |p| p.files);
    if scan.raw_count == 0 && previous_files > 0 {
        return Err(BackupError::SourceEmpty {
            path: source.to_path_buf(),
            previous_files,
        });
    }
    Ok(scan)
}
