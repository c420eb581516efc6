//! The job actor: one per configured job. It walks the [`JobState`] machine, runs a fresh task
//! from the registry for each run, stops it when its window closes, it is paused, or it is
//! retired, and keeps the job's [`JobRecord`] in the store.
//!
//! It does not evaluate its windows: it starts a [`WindowActor`] and acts on what that says
//! ([`WindowChanged`]). A window state it heard holds until its announced change; should the job
//! look past that instant before the news arrives, it asks ([`CurrentWindow`]) rather than guess.
//!
//! The task's `run` future is spawned as its own tokio task on the task runtime (not this
//! actor's thread, which only carries messages; see [`crate::runtime`]), so a panic is caught as a
//! `JoinError` and only this job backs off; a task that ignores its stop signal is aborted after
//! [`STOP_GRACE`].

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::channel::oneshot;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use tahoe_jobs_config::{JobConfig, WindowState};
use tokio::task::{AbortHandle, JoinError};
use tracing::{error, info, warn};

use crate::actors::window::{CurrentWindow, SetWindows, StopWindow, WindowActor, WindowChanged};
use crate::budget::{BudgetGate, BudgetHandle};
use crate::clock::SharedClock;
use crate::error::EngineError;
use crate::events::{self, EventKind, EventSender, JobEvent};
use crate::history::{RunEntry, RunHistory, RunOutcome};
use crate::policy::{self, OverdueWatch, Plan, RunCheck, RunNow};
use crate::progress::ProgressSink;
use crate::record::{JobRecord, LastError, LastOutcome, PauseState};
use crate::runtime::TaskRuntime;
use crate::state::{short, JobState};
use crate::status::{JobStatus, OutcomeView, OverdueView};
use crate::stop::{StopReason, StopSignal};
use crate::store::Store;
use crate::task::{Outcome, Registry, TaskContext, TaskError};

/// How long a task has to return after its stop signal fires before it is dropped.
pub const STOP_GRACE: Duration = Duration::from_millis(500);

/// Everything a job actor needs, from the supervisor.
pub struct JobSetup {
    /// The job's configuration, with live overrides applied.
    pub config: JobConfig,
    /// The job's record as stored (empty for a new job).
    pub record: JobRecord,
    /// The state store, for the record, the run history and the task's own tree.
    pub store: Store,
    /// The task types, to create a fresh task for each run.
    pub registry: Registry,
    /// The clock the job plans by.
    pub clock: SharedClock,
    /// The zone in which the job's windows are read.
    pub timezone: TimeZone,
    /// The shared budget the job's tasks draw bytes and CPU from.
    pub budget: Arc<dyn BudgetGate>,
    /// Where the job announces its runs' ends and its overdue spells.
    pub events: EventSender,
    /// Where the task runs (not this actor's thread).
    pub task_runtime: TaskRuntime,
    /// Dropped with the actor, after its store handle: tells the supervisor the database is no
    /// longer held by this job.
    pub gone: oneshot::Sender<()>,
}

/// A run in progress.
struct ActiveRun {
    id: u64,
    started: Timestamp,
    stop: StopSignal,
    abort: AbortHandle,
    ignore_window: bool,
    stopping: Option<StopReason>,
}

/// The actor that runs one job (see the module documentation).
pub struct JobActor {
    id: String,
    config: JobConfig,
    record: JobRecord,
    /// The last runs, kept in the store beside the record.
    history: RunHistory,
    store: Store,
    registry: Registry,
    clock: SharedClock,
    timezone: TimeZone,
    budget: Arc<dyn BudgetGate>,
    events: EventSender,
    task_runtime: TaskRuntime,
    state: JobState,
    /// Tells this job when its window opens and closes; started with the actor.
    windows: Option<Addr<WindowActor>>,
    /// What the window actor last said; `None` until it first has.
    window: Option<WindowState>,
    /// A [`CurrentWindow`] question is on its way; the answer re-plans.
    asking_window: bool,
    /// When the current state may change by itself (for the status and logs; the timer leaves
    /// window instants to the window actor).
    wake: Option<Timestamp>,
    timer: Option<SpawnHandle>,
    run_now: Option<RunNow>,
    run: Option<ActiveRun>,
    runs_started: u64,
    /// The current run's progress, kept after it ends for the status.
    progress: ProgressSink,
    /// Which overdue spell was logged already, so the warning is given once per spell.
    overdue_watch: OverdueWatch,
    /// Set once the actor is told to go: no new runs, stop when the current one ends.
    retiring: Option<StopReason>,
    retire_waiters: Vec<oneshot::Sender<()>>,
    // Last, so that it drops after `store`.
    _gone: oneshot::Sender<()>,
}

impl JobActor {
    /// An actor for the job in `setup`, with the job's run history read from the store (an
    /// unreadable one is started afresh).
    pub fn new(setup: JobSetup) -> Self {
        let id = setup.config.id();
        // A history that cannot be read costs the pages their past, not the job its runs.
        let history = setup.store.load_history(&id).unwrap_or_else(|e| {
            warn!(job = %id, error = %e, "the run history is unreadable; starting a new one");
            RunHistory::default()
        });
        JobActor {
            id,
            config: setup.config,
            record: setup.record,
            history,
            store: setup.store,
            registry: setup.registry,
            clock: setup.clock,
            timezone: setup.timezone,
            budget: setup.budget,
            events: setup.events,
            task_runtime: setup.task_runtime,
            state: JobState::New,
            windows: None,
            window: None,
            asking_window: false,
            wake: None,
            timer: None,
            run_now: None,
            run: None,
            runs_started: 0,
            progress: ProgressSink::new(),
            overdue_watch: OverdueWatch::default(),
            retiring: None,
            retire_waiters: Vec::new(),
            _gone: setup.gone,
        }
    }

    /// Asks the window actor for the window now, and re-plans with the answer. While the
    /// question is out, nothing else is handled, so no decision is taken on an old window.
    fn ask_window(&mut self, ctx: &mut Context<Self>) {
        let Some(windows) = self.windows.clone() else {
            return;
        };
        if self.asking_window {
            return;
        }
        self.asking_window = true;
        ctx.wait(
            fut::wrap_future::<_, Self>(windows.send(CurrentWindow)).map(|answer, act, ctx| {
                act.asking_window = false;
                match answer {
                    Ok(window) => {
                        act.window = Some(window.state());
                        act.evaluate(ctx);
                    }
                    Err(e) => {
                        // Only while the job is going away; look again later rather than spin.
                        warn!(job = %act.id, error = %e, "the window actor did not answer");
                        let now = act.clock.now();
                        act.schedule(now, None, ctx);
                    }
                }
            }),
        );
    }

    /// Looks at the situation and acts: the one place where the plan is applied.
    fn evaluate(&mut self, ctx: &mut Context<Self>) {
        if self.retiring.is_some() {
            return;
        }
        let now = self.clock.now();
        // Here because the job looks at least once a minute whatever its state (MAX_SLEEP), and
        // an idle job at the instant it becomes overdue (`rest`), so the warning and the event
        // come at that instant, or within a minute while a run goes on.
        self.note_overdue(now);
        let Some(window) = self.window.filter(|w| policy::window_still_holds(*w, now)) else {
            self.ask_window(ctx);
            return;
        };
        self.expire_pause(now);
        if self.run.is_none() {
            let plan = policy::plan(
                &self.record,
                &self.config.schedule,
                window,
                now,
                self.run_now,
            );
            match plan {
                Plan::Start { ignore_window } => {
                    if !self.start_run(ignore_window, window, now, ctx) {
                        // The task could not even be built: that is a failure with backoff,
                        // so planning again cannot start it at once.
                        let plan =
                            policy::plan(&self.record, &self.config.schedule, window, now, None);
                        self.rest(plan, now, ctx);
                        return;
                    }
                }
                other => {
                    self.rest(other, now, ctx);
                    return;
                }
            }
        }
        let wake = match self.run.as_ref() {
            Some(run) if run.stopping.is_none() => {
                match policy::while_running(&self.record, window, now, run.ignore_window) {
                    RunCheck::Continue { until } => until,
                    RunCheck::Stop(reason) => {
                        self.stop_run(reason, ctx);
                        None
                    }
                }
            }
            _ => None,
        };
        self.wake = wake;
        // A running job changes by itself only when its window closes: the window actor's news.
        self.schedule(now, None, ctx);
    }

    /// Enters the waiting state of an idle plan and sets the timer for its end, or for the
    /// instant the job becomes overdue if that comes first (so the overdue event and warning
    /// come at that instant, not up to a minute later).
    fn rest(&mut self, plan: Plan, now: Timestamp, ctx: &mut Context<Self>) {
        if let Some(state) = JobState::from_plan(plan) {
            self.set_state(state, plan.wake_at());
        }
        let overdue_at = policy::overdue_at(
            self.record.last_completed,
            self.record.first_seen,
            self.config.schedule.overdue_after,
            self.config.schedule.enabled,
        )
        .filter(|at| *at > now);
        let wake = match (plan.timer_at(), overdue_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.schedule(now, wake, ctx);
    }

    fn schedule(&mut self, now: Timestamp, wake: Option<Timestamp>, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        let delay = policy::timer_delay(now, wake);
        self.timer = Some(ctx.run_later(delay, |act, ctx| {
            act.timer = None;
            act.evaluate(ctx);
        }));
    }

    fn set_state(&mut self, state: JobState, next: Option<Timestamp>) {
        self.wake = next;
        if state == self.state {
            return;
        }
        // The next transition is only worth its own field when the state does not name it.
        match next.filter(|n| Some(*n) != state.instant()) {
            Some(next) => info!(job = %self.id, state = %state, next = %short(next), "job state"),
            None => info!(job = %self.id, state = %state, "job state"),
        }
        self.state = state;
    }

    /// The job's overdue-ness at `now`, by the policy.
    fn overdue(&self, now: Timestamp) -> Option<policy::Overdue> {
        policy::overdue(
            now,
            self.record.last_completed,
            self.record.first_seen,
            self.config.schedule.overdue_after,
            self.config.schedule.enabled,
        )
    }

    /// Logs a warning when the job has just become overdue (once per spell).
    fn note_overdue(&mut self, now: Timestamp) {
        let current = self.overdue(now);
        let Some(o) = self.overdue_watch.observe(current) else {
            return;
        };
        self.announce(JobEvent {
            overdue_since: Some(o.since),
            ..self.event(EventKind::Overdue, now)
        });
        // Only the job id, instants and a duration: nothing here can hold a capability or a
        // path.
        let after_secs = self
            .config
            .schedule
            .overdue_after
            .map_or(0, |d| d.as_secs());
        match self.record.last_completed {
            Some(at) => warn!(
                job = %self.id,
                since = %short(o.since),
                last_completed = %short(at),
                overdue_after_secs = after_secs,
                "job is overdue: it has not completed for longer than overdue_after"
            ),
            None => warn!(
                job = %self.id,
                since = %short(o.since),
                first_seen = ?self.record.first_seen.map(short),
                overdue_after_secs = after_secs,
                "job is overdue: it has never completed"
            ),
        }
    }

    fn expire_pause(&mut self, now: Timestamp) {
        if let Some(pause @ PauseState::Until { .. }) = self.record.pause {
            if !pause.active_at(now) {
                info!(job = %self.id, "pause ended");
                self.record.pause = None;
                self.persist(true);
            }
        }
    }

    /// Starts a run; `false` when the task could not be set up (recorded as a failure).
    fn start_run(
        &mut self,
        ignore_window: bool,
        window: WindowState,
        now: Timestamp,
        ctx: &mut Context<Self>,
    ) -> bool {
        self.run_now = None;
        let setup = self
            .registry
            .build(&self.config)
            .and_then(|task| Ok((task, self.store.task_tree(&self.id).map_err(store_err)?)));
        let (mut task, tree) = match setup {
            Ok(ok) => ok,
            Err(e) => {
                self.record.last_started = Some(now);
                self.record.unfinished_run.get_or_insert(now);
                self.record_failure(now, e.to_string());
                self.remember_run(RunEntry {
                    started: now,
                    ended: now,
                    outcome: RunOutcome::Failed,
                    counters: Default::default(),
                    labels: Default::default(),
                });
                self.persist(true);
                self.announce_run_end(EventKind::Failure, now);
                return false;
            }
        };
        self.runs_started += 1;
        let run_id = self.runs_started;
        let stop = StopSignal::new();
        let progress = ProgressSink::new();
        for (counter, total) in &self.record.last_completed_totals {
            progress.set_estimate(counter, *total);
        }
        self.progress = progress.clone();
        let task_ctx = TaskContext::new(
            self.id.clone(),
            stop.clone(),
            BudgetHandle::new(self.id.clone(), self.budget.clone()),
            progress,
            tree,
            self.clock.clone(),
        )
        .with_timezone(self.timezone.clone());
        self.record.last_started = Some(now);
        self.record.unfinished_run.get_or_insert(now);
        self.persist(true);

        let handle = self
            .task_runtime
            .spawn(async move { task.run(&task_ctx).await });
        let abort = handle.abort_handle();
        ctx.spawn(
            fut::wrap_future::<_, Self>(handle)
                .map(move |result, act, ctx| act.run_ended(run_id, result, ctx)),
        );
        self.run = Some(ActiveRun {
            id: run_id,
            started: now,
            stop,
            abort,
            ignore_window,
            stopping: None,
        });
        let closes = if ignore_window {
            None
        } else {
            window.next_change
        };
        self.set_state(JobState::Running { since: now }, closes);
        true
    }

    fn stop_run(&mut self, reason: StopReason, ctx: &mut Context<Self>) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        if run.stopping.is_some() {
            return;
        }
        run.stopping = Some(reason);
        run.stop.stop(reason);
        let run_id = run.id;
        self.set_state(JobState::Stopping { reason }, None);
        ctx.run_later(STOP_GRACE, move |act, _| {
            if let Some(run) = act.run.as_ref().filter(|r| r.id == run_id) {
                warn!(
                    job = %act.id,
                    grace_ms = STOP_GRACE.as_millis() as u64,
                    "the task did not stop in time; cancelling it"
                );
                run.abort.abort();
            }
        });
    }

    fn run_ended(
        &mut self,
        run_id: u64,
        result: Result<Result<Outcome, TaskError>, JoinError>,
        ctx: &mut Context<Self>,
    ) {
        let Some(run) = self.run.take_if(|r| r.id == run_id) else {
            return;
        };
        let now = self.clock.now();
        let asked = run.stop.reason();
        let snapshot = self.progress.snapshot();
        let counters = snapshot.counters;
        self.record.last_run_counters = counters.clone();
        let state = match result {
            Ok(Ok(Outcome::Completed)) => {
                self.record.last_completed = Some(now);
                self.record.unfinished_run = None;
                self.record.consecutive_failures = 0;
                self.record.last_error = None;
                self.record.last_completed_totals = counters;
                self.record.last_outcome = Some(LastOutcome::Completed { at: now });
                JobState::Completed
            }
            Ok(Ok(Outcome::StoppedEarly)) => {
                self.record.last_outcome = Some(LastOutcome::StoppedEarly {
                    at: now,
                    reason: asked,
                });
                if asked.is_none() {
                    // Resuming at once would spin; back off as after a failure.
                    self.note_failure(now, "the task stopped early without being asked to".into());
                }
                JobState::StoppedEarly { reason: asked }
            }
            Ok(Err(e)) => {
                self.record_failure(now, e.to_string());
                self.failed_state()
            }
            Err(join) if join.is_cancelled() => {
                self.record.last_outcome = Some(LastOutcome::StoppedEarly {
                    at: now,
                    reason: asked,
                });
                JobState::StoppedEarly { reason: asked }
            }
            Err(join) => {
                self.record_failure(now, format!("the task panicked: {}", panic_message(join)));
                self.failed_state()
            }
        };
        let outcome = match state {
            JobState::Completed => RunOutcome::Completed,
            JobState::Failed { .. } => RunOutcome::Failed,
            _ if matches!(self.record.last_outcome, Some(LastOutcome::Failed { .. })) => {
                RunOutcome::Failed
            }
            _ => RunOutcome::StoppedEarly,
        };
        self.remember_run(RunEntry {
            started: run.started,
            ended: now,
            outcome,
            counters: self.record.last_run_counters.clone(),
            labels: snapshot.labels,
        });
        self.persist(true);
        match &state {
            JobState::Completed => self.announce_run_end(EventKind::Success, now),
            JobState::Failed { .. } => self.announce_run_end(EventKind::Failure, now),
            JobState::StoppedEarly { reason: None } => {
                self.announce_run_end(EventKind::Failure, now)
            }
            _ => {}
        }
        self.set_state(state, None);
        for waiter in self.retire_waiters.drain(..) {
            let _ = waiter.send(());
        }
        if self.retiring.is_some() {
            ctx.stop();
        } else {
            self.evaluate(ctx);
        }
    }

    fn failed_state(&self) -> JobState {
        match policy::retry_at(&self.record) {
            Some(retry_at) => JobState::Failed { retry_at },
            None => JobState::StoppedEarly { reason: None },
        }
    }

    fn record_failure(&mut self, now: Timestamp, message: String) {
        self.record.last_outcome = Some(LastOutcome::Failed {
            at: now,
            message: message.clone(),
        });
        self.note_failure(now, message);
    }

    fn note_failure(&mut self, now: Timestamp, message: String) {
        self.record.consecutive_failures = self.record.consecutive_failures.saturating_add(1);
        let retry_in = policy::backoff_delay(self.record.consecutive_failures);
        // The message is the task's own, meant for the user (no file contents, no secrets).
        warn!(
            job = %self.id,
            failures = self.record.consecutive_failures,
            retry_in_secs = retry_in.as_secs(),
            error = %message,
            "run failed"
        );
        self.record.last_error = Some(LastError { at: now, message });
    }

    /// Adds a run to the history and writes it (made durable by the next flush).
    fn remember_run(&mut self, run: RunEntry) {
        self.history.push(run);
        if let Err(e) = self.store.save_history(&self.id, &self.history) {
            error!(job = %self.id, error = %e, "could not save the run history");
        }
    }

    /// An event about this job at `now`, with what the record says.
    fn event(&self, kind: EventKind, now: Timestamp) -> JobEvent {
        JobEvent {
            kind,
            job: self.id.clone(),
            task_type: self.config.task_type.clone(),
            at: now,
            started: None,
            duration: None,
            counters: Default::default(),
            error: None,
            consecutive_failures: self.record.consecutive_failures,
            last_completed: self.record.last_completed,
            overdue_since: None,
        }
    }

    /// Announces the end of the run that began at `last_started` (record already updated).
    fn announce_run_end(&self, kind: EventKind, now: Timestamp) {
        let started = self.record.last_started;
        let duration = started
            .and_then(|s| std::time::Duration::try_from(now.duration_since(s)).ok())
            .unwrap_or_default();
        let error = match kind {
            EventKind::Failure => self.record.last_error.as_ref().map(|e| e.message.clone()),
            _ => None,
        };
        self.announce(JobEvent {
            started,
            duration: Some(duration),
            counters: self.record.last_run_counters.clone(),
            error,
            ..self.event(kind, now)
        });
    }

    fn announce(&self, event: JobEvent) {
        events::announce(&self.events, event);
    }

    /// Writes the record; a write error is logged, not fatal: the job goes on in memory and
    /// the next write tries again. With `flush`, it is made durable on the task runtime, not
    /// this actor's thread: the write is in the store at once (a later read sees it), and the
    /// engine's shutdown waits for the flushes still pending.
    fn persist(&self, flush: bool) {
        if let Err(e) = self.store.save(&self.id, &self.record) {
            error!(job = %self.id, error = %e, "could not save the job record");
            return;
        }
        if !flush {
            return;
        }
        if !self.task_runtime.is_separate() {
            if let Err(e) = self.store.flush() {
                error!(job = %self.id, error = %e, "could not save the job record");
            }
        } else if let Some(flush) = self.store.flush_later() {
            let id = self.id.clone();
            self.task_runtime.spawn(async move {
                if let Err(e) = flush.await {
                    error!(job = %id, error = %e, "could not save the job record");
                }
            });
        }
    }

    fn status(&self) -> JobStatus {
        let now = self.clock.now();
        let pause = self.record.active_pause(now);
        JobStatus {
            id: self.id.clone(),
            task_type: self.config.task_type.clone(),
            enabled: self.config.schedule.enabled,
            frequency_secs: self.config.schedule.frequency.as_secs(),
            state: self.state.into(),
            next_transition: self.wake,
            // Until the window actor first answers (a moment after the start), shown as shut.
            window: self
                .window
                .unwrap_or(WindowState {
                    open: false,
                    next_change: None,
                })
                .into(),
            last_started: self.record.last_started,
            last_completed: self.record.last_completed,
            last_outcome: self.record.last_outcome.as_ref().map(OutcomeView::from),
            unfinished_run_since: self.record.unfinished_run,
            next_due: policy::next_due(&self.record, self.config.schedule.frequency)
                .filter(|due| *due > now),
            last_error: self
                .record
                .last_error
                .as_ref()
                .map(|e| crate::status::ErrorView {
                    at: e.at,
                    message: e.message.clone(),
                }),
            consecutive_failures: self.record.consecutive_failures,
            paused: pause.is_some(),
            paused_until: pause.and_then(PauseState::until),
            progress: self.progress.snapshot(),
            last_run_counters: self.record.last_run_counters.clone(),
            last_completed_totals: self.record.last_completed_totals.clone(),
            first_seen: self.record.first_seen,
            overdue_after_secs: self.config.schedule.overdue_after.map(|d| d.as_secs()),
            overdue: self.overdue(now).map(OverdueView::from),
            history: self.history.runs().cloned().collect(),
        }
    }
}

fn store_err(e: crate::store::StoreError) -> TaskError {
    TaskError::Failed(format!("could not open the job's state: {e}"))
}

fn panic_message(join: JoinError) -> String {
    match join.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into()),
        Err(join) => join.to_string(),
    }
}

impl Actor for JobActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.record.unfinished_run.is_some() {
            info!(job = %self.id, "an unfinished run will be resumed");
        }
        if self.record.first_seen.is_none() {
            // A new job, or a record from before `first_seen` existed: either way, a job that
            // never completed counts as overdue from now, not from some unknown past.
            self.record.first_seen = Some(self.clock.now());
            self.persist(true);
        }
        let windows = WindowActor::new(
            self.id.clone(),
            self.config.schedule.allowed_times.clone(),
            self.timezone.clone(),
            self.clock.clone(),
            ctx.address().recipient(),
        )
        .start();
        self.windows = Some(windows);
        // The first plan waits for the window actor's answer.
        self.ask_window(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(windows) = self.windows.take() {
            windows.do_send(StopWindow);
        }
        self.persist(true);
        info!(job = %self.id, "job stopped");
    }
}

/// A user's command to one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobCommand {
    /// Stop work and hold; `Some(d)` resumes by itself after `d`.
    Pause(Option<Duration>),
    /// Lift a pause.
    Resume,
    /// Start a run now, whatever the frequency says; refused while the job is paused.
    RunNow {
        /// Run even outside the allowed window.
        ignore_window: bool,
    },
    /// Run once more, inside the window: now, or when the current run ends (a job this one
    /// follows with `after` completed, and a run under way may have started before that);
    /// refused while the job is paused.
    RunNext,
}

/// The message that gives a [`JobCommand`] to a job actor.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct Command(pub JobCommand);

impl Handler<Command> for JobActor {
    type Result = Result<(), EngineError>;

    fn handle(&mut self, Command(command): Command, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        match command {
            JobCommand::Pause(duration) => {
                let pause = match duration {
                    None => PauseState::Indefinite,
                    Some(d) => PauseState::Until {
                        until: now
                            .checked_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
                            .unwrap_or(Timestamp::MAX),
                    },
                };
                match pause.until() {
                    Some(until) => info!(job = %self.id, %until, "paused"),
                    None => info!(job = %self.id, "paused until resumed"),
                }
                self.record.pause = Some(pause);
                self.run_now = None;
                self.persist(true);
            }
            JobCommand::Resume => {
                if self.record.pause.take().is_some() {
                    info!(job = %self.id, "resumed");
                    self.persist(true);
                }
            }
            JobCommand::RunNow { ignore_window } => {
                if self.record.active_pause(now).is_some() {
                    return Err(EngineError::Paused(self.id.clone()));
                }
                info!(job = %self.id, ignore_window, "run now requested");
                match self.run.as_mut() {
                    // Already running: at most widen the run to ignore the window.
                    Some(run) if run.stopping.is_none() => run.ignore_window |= ignore_window,
                    _ => self.run_now = Some(RunNow { ignore_window }),
                }
            }
            JobCommand::RunNext => {
                if self.record.active_pause(now).is_some() {
                    return Err(EngineError::Paused(self.id.clone()));
                }
                // Kept through a run under way: `start_run` clears it only when the next run
                // starts, so the job runs again once this one ends.
                self.run_now.get_or_insert(RunNow {
                    ignore_window: false,
                });
            }
        }
        self.evaluate(ctx);
        Ok(())
    }
}

/// A snapshot of the job's status.
#[derive(Debug, Message)]
#[rtype(result = "JobStatus")]
pub struct GetStatus;

impl Handler<GetStatus> for JobActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status())
    }
}

/// Stops the job for good (removed, changed, or shutting down): stops the run with `reason`,
/// saves the record, and stops the actor. Resolves once the run has ended.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Retire(pub StopReason);

impl Handler<Retire> for JobActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, Retire(reason): Retire, ctx: &mut Context<Self>) -> Self::Result {
        self.retiring.get_or_insert(reason);
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        if self.run.is_none() {
            ctx.stop();
            return Box::pin(async {});
        }
        let (tx, rx) = oneshot::channel();
        self.retire_waiters.push(tx);
        self.stop_run(reason, ctx);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

/// Replaces the job's configuration in place (a live override of its `allowed_times` or
/// limits): a run in progress goes on, and the job re-plans at once, so a window that closed
/// stops it and one that opened starts it. The task keeps the configuration it was built with,
/// which is fine for the fields a live change may touch: windows are the actor's business and
/// limits the budget's.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct UpdateConfig(pub JobConfig);

impl Handler<UpdateConfig> for JobActor {
    type Result = ();

    fn handle(&mut self, UpdateConfig(config): UpdateConfig, ctx: &mut Context<Self>) {
        if config == self.config {
            return;
        }
        info!(job = %self.id, "configuration changed live");
        let new_windows = config.schedule.allowed_times != self.config.schedule.allowed_times;
        self.config = config;
        match self.windows.clone().filter(|_| new_windows) {
            Some(windows) => {
                windows.do_send(SetWindows(self.config.schedule.allowed_times.clone()));
                // Asked after the new windows, so the answer is already about them.
                self.ask_window(ctx);
            }
            None => self.evaluate(ctx),
        }
    }
}

impl Handler<WindowChanged> for JobActor {
    type Result = ();

    fn handle(&mut self, window: WindowChanged, ctx: &mut Context<Self>) {
        self.window = Some(window.state());
        self.evaluate(ctx);
    }
}
