//! Embeds the engine with a task type of its own and its own keys (`[hello] h1.greeting`).
//! `cargo run -p tahoe-jobs-engine --example hello_task`; walked through in docs/writing-a-task.md.

use async_trait::async_trait;
use serde::Deserialize;
use tahoe_jobs_config::{load, KeyDoc, LoadOptions, TaskKeys};
use tahoe_jobs_engine::{Engine, EngineOptions, Outcome, Registry, Task, TaskContext, TaskError};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// A `[hello]` job's keys: the loader checks them, with "did you mean" and line numbers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct HelloKeys {
    greeting: String,
    #[serde(default)]
    excited: bool,
}

impl TaskKeys for HelloKeys {
    fn keys() -> Vec<KeyDoc> {
        vec![
            KeyDoc::required("greeting", "any text", "what to say"),
            KeyDoc::optional("excited", "false", "true or false", "end with a !"),
        ]
    }
}

struct Hello(HelloKeys, UnboundedSender<String>);

#[async_trait]
impl Task for Hello {
    async fn run(&mut self, ctx: &TaskContext) -> Result<Outcome, TaskError> {
        let end = if self.0.excited { "!" } else { "." };
        println!("{}{end} from {}", self.0.greeting, ctx.job_id());
        let _ = self.1.send(ctx.job_id().to_string());
        Ok(Outcome::Completed)
    }
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let jobs = "[hello]\nh1.greeting = hello\nh2.greeting = bonjour\nh2.excited = yes\n";
    std::fs::write(dir.path().join("tahoe-jobs.cfg"), jobs)?;
    let (done, mut finished) = unbounded_channel();
    let mut registry = Registry::new();
    registry.register("hello", move |_job, keys: &HelloKeys| {
        Ok(Box::new(Hello(keys.clone(), done.clone())) as Box<dyn Task>)
    });
    let mut options = LoadOptions::default();
    (options.node_dir, options.task_types) = (dir.path().into(), registry.schemas());
    let config = load(&options)?; // a typo in tahoe-jobs.cfg fails here, with its line
    actix_rt::System::new().block_on(async move {
        let state = dir.path().join("state");
        let engine = Engine::start(EngineOptions::new(state, registry, config.jobs))?;
        let both = (finished.recv().await, finished.recv().await);
        println!("completed: {both:?}"); // a long task would watch ctx.stop() as it goes
        Ok::<_, Box<dyn std::error::Error>>(engine.shutdown().await?)
    })
}
