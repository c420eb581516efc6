//! Where task work runs. The actors carry messages on the actix System's own thread, which
//! must never wait on anything slow; a task's `run`, and everything it spawns, goes to a
//! multi-threaded tokio runtime instead, so tasks use every core and a busy task cannot delay a
//! window close, a pause or the status page.
//!
//! The engine does not build that runtime: the binary does ([`task_runtime`]), so the daemon and
//! the one-shot commands run tasks on the same kind of runtime, and tests may leave it out
//! ([`TaskRuntime::current`]: tasks then run on the System's thread, as before).

use std::future::Future;

use tokio::task::JoinHandle;

/// A handle to the runtime tasks run on; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TaskRuntime {
    handle: Option<tokio::runtime::Handle>,
}

impl TaskRuntime {
    /// Tasks run on this runtime.
    pub fn on(handle: tokio::runtime::Handle) -> TaskRuntime {
        TaskRuntime {
            handle: Some(handle),
        }
    }

    /// Tasks run on whatever runtime spawns them (the actix System's thread in the engine):
    /// for tests.
    pub fn current() -> TaskRuntime {
        TaskRuntime::default()
    }

    /// Starts `work` on the task runtime.
    pub fn spawn<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.handle {
            Some(handle) => handle.spawn(work),
            None => tokio::spawn(work),
        }
    }

    /// Whether tasks run on a runtime of their own, off the actors' thread. Without one (tests
    /// on a paused clock), the engine also flushes its store in place: waiting on another
    /// thread would let a paused clock run ahead meanwhile.
    pub fn is_separate(&self) -> bool {
        self.handle.is_some()
    }

    /// Runs blocking `work` (a sled flush) on the task runtime's blocking pool.
    pub fn spawn_blocking<F, R>(&self, work: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        match &self.handle {
            Some(handle) => handle.spawn_blocking(work),
            None => tokio::task::spawn_blocking(work),
        }
    }
}

/// The runtime task work runs on: one worker thread per core the process may use (at least
/// two, so one slow poll never holds up all the others), with timers and I/O.
pub fn task_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let threads = std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(2)
        .max(2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("tahoe-jobs-task")
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_the_task_runtime_not_the_callers_thread() {
        let runtime = task_runtime().unwrap();
        let tasks = TaskRuntime::on(runtime.handle().clone());
        let caller = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let name = caller
            .block_on(tasks.spawn(async { std::thread::current().name().map(str::to_string) }))
            .unwrap();
        assert_eq!(name.as_deref(), Some("tahoe-jobs-task"));
    }
}
