//! One run of the check task: resume the current pass (or start a new one at the target), then
//! visit frontier entries until the frontier is empty or the stop signal fires.
//!
//! Visiting a directory lists it (children go onto the frontier), then checks it like a file.
//! Up to `concurrency` entries are visited at once (directories at most a quarter of them), each
//! finished in its own atomic step. Before starting an entry the run passes the budget's CPU
//! checkpoint and looks at the stop signal; a stop drops the visits in flight, whose entries,
//! still on the frontier, are visited again next run. (With a concurrency of 1, a stop between
//! objects leaves no request in flight.)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use tahoe_jobs_config::Target;
use tahoe_jobs_engine::TaskContext;

use super::caps::{object_key, storage_of, Storage};
use super::db::{CheckDb, Step};
use super::inspect::Inspector;
use super::listing::parse_listing;
use super::policy::{recheck, Recheck};
use super::record::{FrontierEntry, ObjectKind, PassState};
use super::summary::{describe, CheckSummary};
use super::{CheckError, CheckObserver};
use crate::tahoe::{Cap, TahoeError};

/// How often a run makes its records durable, at most.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// How a run that did not fail ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassEnd {
    /// The frontier ran empty: the pass is complete, with these counts.
    Completed(CheckSummary),
    /// The stop signal fired; the counts of the pass so far.
    Stopped(CheckSummary),
}

/// Everything a run needs besides the context.
pub struct Pass {
    /// Checks each object.
    pub inspector: Inspector,
    /// The job's target, for names in warnings (it redacts a capability target).
    pub target: Target,
    /// The directory cap and path below it that the target names.
    pub root: (Cap, String),
    /// An object checked less than this long ago, with nothing found to do, is skipped.
    pub recheck_after: Duration,
    /// Hears of every object checked and every warning.
    pub observer: Arc<dyn CheckObserver>,
    /// Objects visited at once.
    pub concurrency: usize,
}

impl Pass {
    /// Resumes or starts a pass and runs it until done or stopped.
    pub async fn run(&self, ctx: &TaskContext) -> Result<PassEnd, CheckError> {
        let db = CheckDb::new(ctx.store().clone());
        let mut pass = match db.pass()? {
            Some(p) if !p.is_finished() => {
                tracing::info!(job = ctx.job_id(), pass = p.id, "check pass resumed");
                p
            }
            last => {
                let root = tokio::select! {
                    _ = ctx.stop().stopped() => return Ok(PassEnd::Stopped(CheckSummary::default())),
                    r = self.resolve_root() => r?,
                };
                let id = last.map_or(1, |p| p.id + 1);
                tracing::info!(job = ctx.job_id(), pass = id, "check pass starting");
                db.begin_pass(id, ctx.now().as_second(), root)?
            }
        };
        pass.counts.to_progress(ctx.progress());
        let mut last_checkpoint = Instant::now();
        // Entries being visited, by frontier key and by object key: never two visits of one
        // object at once (a second path to an object in flight is simply dropped).
        let mut flying_entries: HashSet<Vec<u8>> = HashSet::new();
        let mut flying_objects: HashSet<String> = HashSet::new();
        // Directories being listed: at most a quarter of the visits, so that the servers go on
        // answering share listings while the node lists (a directory listing is slow, the
        // more so behind a long round trip, and the stack's top is often all directories).
        let mut flying_dirs = 0;
        let max_dirs = (self.concurrency / 4).max(1);
        let mut visits = FuturesUnordered::new();
        loop {
            while visits.len() < self.concurrency {
                if ctx.cpu_checkpoint().await.is_err() || ctx.stop().is_stopped() {
                    return self.stopped(&db, pass).await;
                }
                let Some((fkey, entry)) =
                    db.next_except(&flying_entries, flying_dirs < max_dirs)?
                else {
                    break;
                };
                let okey = object_key(entry.verify_cap.as_deref(), &Cap::new(entry.cap.clone()));
                if flying_objects.contains(&okey) {
                    db.finish_entry(&mut pass, &fkey, Step::default())?;
                    continue;
                }
                ctx.progress().set_current(Some(self.display(&entry.path)));
                flying_entries.insert(fkey.clone());
                flying_objects.insert(okey.clone());
                let is_dir = entry.kind == ObjectKind::Directory;
                flying_dirs += usize::from(is_dir);
                let pass_id = pass.id;
                let db = &db;
                visits.push(async move {
                    let mut counts = CheckSummary::default();
                    let step = self.visit(ctx, db, pass_id, &mut counts, &entry).await;
                    (fkey, okey, is_dir, step.map(|s| (s, counts)))
                });
            }
            if visits.is_empty() {
                break;
            }
            let (fkey, okey, was_dir, result) = tokio::select! {
                _ = ctx.stop().stopped() => return self.stopped(&db, pass).await,
                Some(done) = visits.next() => done,
            };
            flying_entries.remove(&fkey);
            flying_objects.remove(&okey);
            flying_dirs -= usize::from(was_dir);
            let (step, counts) = result?;
            pass.counts.add(&counts);
            db.finish_entry(&mut pass, &fkey, step)?;
            pass.counts.to_progress(ctx.progress());
            if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                db.flush().await?;
                last_checkpoint = Instant::now();
            }
        }
        db.finish_pass(&mut pass, ctx.now().as_second())?;
        db.flush().await?;
        ctx.progress().set_current(None);
        Ok(PassEnd::Completed(pass.counts))
    }

    /// Ends a run on the stop signal: visits in flight are dropped (their entries stay on the
    /// frontier), what finished is made durable.
    async fn stopped(&self, db: &CheckDb, pass: PassState) -> Result<PassEnd, CheckError> {
        db.flush().await?;
        Ok(PassEnd::Stopped(pass.counts))
    }

    /// The frontier entry of the target itself.
    async fn resolve_root(&self) -> Result<FrontierEntry, CheckError> {
        let (cap, path) = &self.root;
        let listing = match self.inspector.client.list_raw(cap, path).await {
            Ok(v) => parse_listing(&v)?,
            Err(TahoeError::NoSuchChild(_)) => {
                return Err(CheckError::TargetMissing {
                    target: self.target.to_string(),
                })
            }
            Err(e) => {
                return Err(CheckError::Node {
                    during: format!("looking up {}", self.target),
                    source: e,
                })
            }
        };
        Ok(listing.node.entry(String::new()))
    }

    /// Visits one frontier entry of pass `pass_id`; `counts` gets the counts of what was done.
    async fn visit(
        &self,
        ctx: &TaskContext,
        db: &CheckDb,
        pass_id: u64,
        counts: &mut CheckSummary,
        entry: &FrontierEntry,
    ) -> Result<Step, CheckError> {
        let cap = Cap::new(entry.cap.clone());
        let key = object_key(entry.verify_cap.as_deref(), &cap);
        let mut step = Step::default();
        if entry.kind == ObjectKind::Directory {
            if db.visited(&key)? {
                return Ok(step);
            }
            step.visited = Some(key.clone());
            self.list(ctx, db, counts, entry, &cap, &mut step).await?;
        }
        let storage = storage_of(&cap);
        if storage == Storage::Literal {
            counts.add_literal();
            self.observer.literal(&self.display(&entry.path));
            return Ok(step);
        }
        if storage == Storage::Unknown {
            return Ok(step);
        }
        let last = db.record(&key)?;
        match recheck(
            last.as_ref(),
            pass_id,
            ctx.now().as_second(),
            self.recheck_after,
        ) {
            Recheck::SeenThisPass => {}
            Recheck::Recent => counts.skipped_recent += 1,
            Recheck::Check => match self
                .inspector
                .inspect(ctx, entry, last.as_ref(), pass_id)
                .await
            {
                Ok(record) => {
                    counts.add_record(&record);
                    let path = self.display(&entry.path);
                    if !record.fine() {
                        // The observer hears of it through `checked`; the private page here.
                        tracing::debug!(job = ctx.job_id(), "{path}: {}", describe(&record));
                        ctx.progress()
                            .warn(ctx.now(), format!("{path}: {}", describe(&record)));
                    }
                    self.observer.checked(&path, &record);
                    step.record = Some((key, record));
                }
                Err(e) if e.is_unreachable() => return Err(e.into()),
                Err(e) => {
                    counts.errors += 1;
                    self.warn(
                        ctx,
                        format!("cannot check {}: {e}", self.display(&entry.path)),
                    );
                }
            },
        }
        Ok(step)
    }

    /// Lists a directory: its children not yet visited in this pass go on the frontier.
    async fn list(
        &self,
        ctx: &TaskContext,
        db: &CheckDb,
        counts: &mut CheckSummary,
        entry: &FrontierEntry,
        cap: &Cap,
        step: &mut Step,
    ) -> Result<(), CheckError> {
        let listing = match self.inspector.client.list_raw(cap, "").await {
            Ok(v) => parse_listing(&v),
            Err(e) => Err(e),
        };
        match listing {
            Ok(listing) => {
                counts.dirs_listed += 1;
                for (name, child) in listing.children {
                    if child.kind == ObjectKind::Directory
                        && db.visited(&object_key(child.verify_cap.as_deref(), &child.cap))?
                    {
                        continue;
                    }
                    step.push.push(child.entry(join(&entry.path, &name)));
                }
                Ok(())
            }
            Err(e) if e.is_unreachable() => Err(e.into()),
            Err(e) => {
                counts.errors += 1;
                self.warn(
                    ctx,
                    format!(
                        "cannot list {}: {e}; what it holds was not checked",
                        self.display(&entry.path)
                    ),
                );
                Ok(())
            }
        }
    }

    /// `alias:path/below` for a path below the target (a cap target shows as `<capability>`).
    fn display(&self, path: &str) -> String {
        let target = self.target.to_string();
        match (
            path.is_empty(),
            target.ends_with(':') || target.ends_with('/'),
        ) {
            (true, _) => target,
            (false, true) => format!("{target}{path}"),
            (false, false) => format!("{target}/{path}"),
        }
    }

    fn warn(&self, ctx: &TaskContext, message: String) {
        tracing::debug!(job = ctx.job_id(), "{message}");
        self.observer.warning(&message);
        ctx.progress().warn(ctx.now(), message);
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_below_the_target() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a", "b c"), "a/b c");
    }
}
