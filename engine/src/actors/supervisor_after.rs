//! `after`: a job whose configuration names other jobs (`p1.after = backup.b1`) is asked to run
//! when one of them completes, inside its own window, not while it is paused or disabled, and
//! once more after its current run if it is running then (that run may predate the completion). The supervisor listens to the jobs' own success events, so
//! a job actor knows nothing of the jobs that follow it.
//!
//! The request lives in the job actor's memory, like any run-now: a daemon restarted before
//! the following job ran leaves it to its frequency.

use actix::prelude::*;
use tokio::sync::broadcast::error::RecvError;
use tracing::{info, warn};

use super::{Command, JobCommand, Supervisor};
use crate::events::EventKind;

/// A job completed a run.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct Completed(pub String);

impl Supervisor {
    /// Forwards every job's completions to this actor, for as long as it lives.
    pub(super) fn follow_completions(&self, ctx: &mut Context<Self>) {
        let mut events = self.events.subscribe();
        let me = ctx.address();
        ctx.spawn(
            async move {
                loop {
                    match events.recv().await {
                        Ok(event) if event.kind == EventKind::Success => {
                            me.do_send(Completed(event.job))
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(missed)) => warn!(
                            missed,
                            "job events came faster than they were read: jobs with `after` may \
                             miss a completion and wait for their frequency"
                        ),
                        Err(RecvError::Closed) => break,
                    }
                }
            }
            .into_actor(self),
        );
    }

    /// The jobs to run after `done` completes: those whose `after` names it, enabled.
    fn followers(&self, done: &str) -> Vec<(String, Addr<super::JobActor>)> {
        self.jobs
            .iter()
            .filter(|(_, entry)| {
                let config = self.overrides.apply_job(&entry.config);
                config.schedule.enabled && config.schedule.after.iter().any(|id| id == done)
            })
            .map(|(id, entry)| (id.clone(), entry.addr.clone()))
            .collect()
    }
}

impl Handler<Completed> for Supervisor {
    type Result = ();

    fn handle(&mut self, Completed(done): Completed, ctx: &mut Context<Self>) {
        for (id, addr) in self.followers(&done) {
            let done = done.clone();
            info!(job = %id, after = %done, "runs next: the job it follows completed");
            let request = addr.send(Command(JobCommand::RunNext));
            ctx.spawn(
                async move {
                    if let Ok(Err(e)) = request.await {
                        info!(job = %id, after = %done, "not run after it: {e}");
                    }
                }
                .into_actor(self),
            );
        }
    }
}
