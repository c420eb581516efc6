//! One run of the check task: resume the current pass (or start a new one at the target), then
//! visit frontier entries until the frontier is empty or the stop signal fires.
//!
//! Visiting a directory lists it (children go onto the frontier), then checks it like a file.
//! Before each entry the run passes the budget's CPU checkpoint and looks at the stop signal, so
//! a stop between objects never leaves a request in flight; a stop during one cancels it, and
//! the entry, still on the frontier, is visited again next run.

use std::sync::Arc;
use std::time::{Duration, Instant};

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
    pub inspector: Inspector,
    /// The job's target, for names in warnings (it redacts a capability target).
    pub target: Target,
    /// The directory cap and path below it that the target names.
    pub root: (Cap, String),
    pub recheck_after: Duration,
    pub observer: Arc<dyn CheckObserver>,
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
        loop {
            if ctx.cpu_checkpoint().await.is_err() || ctx.stop().is_stopped() {
                db.flush().await?;
                return Ok(PassEnd::Stopped(pass.counts));
            }
            let Some((key, entry)) = db.next()? else {
                break;
            };
            ctx.progress().set_current(Some(self.display(&entry.path)));
            let mut next = pass.clone();
            let step = tokio::select! {
                _ = ctx.stop().stopped() => {
                    db.flush().await?;
                    return Ok(PassEnd::Stopped(pass.counts));
                }
                step = self.visit(ctx, &db, &mut next, &entry) => step?,
            };
            db.finish_entry(&mut next, &key, step)?;
            pass = next;
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

    /// Visits one frontier entry; `pass` gets the counts of what was done.
    async fn visit(
        &self,
        ctx: &TaskContext,
        db: &CheckDb,
        pass: &mut PassState,
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
            self.list(ctx, db, pass, entry, &cap, &mut step).await?;
        }
        let storage = storage_of(&cap);
        if storage == Storage::Literal {
            pass.counts.add_literal();
            self.observer.literal(&self.display(&entry.path));
            return Ok(step);
        }
        if storage == Storage::Unknown {
            return Ok(step);
        }
        let last = db.record(&key)?;
        match recheck(
            last.as_ref(),
            pass.id,
            ctx.now().as_second(),
            self.recheck_after,
        ) {
            Recheck::SeenThisPass => {}
            Recheck::Recent => pass.counts.skipped_recent += 1,
            Recheck::Check => match self
                .inspector
                .inspect(ctx, entry, last.as_ref(), pass.id)
                .await
            {
                Ok(record) => {
                    pass.counts.add_record(&record);
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
                    pass.counts.errors += 1;
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
        pass: &mut PassState,
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
                pass.counts.dirs_listed += 1;
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
                pass.counts.errors += 1;
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
