//! A tiny task type, registered and run by the engine for a few seconds.
//!
//! `cargo run -p tahoe-jobs-engine --example hello_task`
//!
//! Walked through in `docs/writing-a-task.md`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use tahoe_jobs_config::{CpuShare, JobConfig, JobLimits, RateSchedule, Schedule, TaskParams};
use tahoe_jobs_engine::{Engine, EngineOptions, Outcome, Registry, Task, TaskContext, TaskError};

/// Greets `count` times, one greeting per tick, and remembers how far it got.
struct Hello {
    greeting: String,
    count: u64,
}

impl Hello {
    /// The factory: reads the job's own keys (`hello.h1.greeting = ...`).
    fn from_config(job: &JobConfig) -> Result<Box<dyn Task>, TaskError> {
        let TaskParams::Other(params) = &job.params else {
            return Err(TaskError::Config("hello jobs take plain keys".into()));
        };
        let greeting = params.get("greeting").cloned().unwrap_or("hello".into());
        let count = match params.get("count") {
            None => 5,
            Some(n) => n
                .parse()
                .map_err(|_| TaskError::Config(format!("count {n:?} is not a number")))?,
        };
        Ok(Box::new(Hello { greeting, count }))
    }
}

const DONE: &[u8] = b"done";

#[async_trait]
impl Task for Hello {
    async fn run(&mut self, ctx: &TaskContext) -> Result<Outcome, TaskError> {
        // Resume from the job's own tree: a run stopped by a window close, a pause or a
        // restart carries on where it was.
        let mut done = match ctx.store().get(DONE)? {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])),
            None => 0,
        };
        ctx.progress().set_estimate("greetings", self.count);
        ctx.progress().set("greetings", done);
        while done < self.count {
            tokio::select! {
                // Stop promptly: return StoppedEarly, the engine resumes us later.
                _ = ctx.stop().stopped() => return Ok(Outcome::StoppedEarly),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            done += 1;
            println!("{} #{done} from job {}", self.greeting, ctx.job_id());
            ctx.progress().add("greetings", 1);
            ctx.store().insert(DONE, &done.to_be_bytes())?;
            ctx.checkpoint().await?;
        }
        // Completed: the next run starts from scratch.
        ctx.store().remove(DONE)?;
        Ok(Outcome::Completed)
    }
}

fn hello_job(name: &str, greeting: &str) -> JobConfig {
    JobConfig {
        task_type: "hello".into(),
        name: name.into(),
        schedule: Schedule {
            frequency: Duration::from_secs(3600),
            allowed_times: "".parse().expect("always"),
            enabled: true,
            overdue_after: None,
        },
        limits: JobLimits {
            bandwidth: RateSchedule::unlimited(),
            cpu: CpuShare::UNLIMITED,
        },
        params: TaskParams::Other(BTreeMap::from([
            ("greeting".to_string(), greeting.to_string()),
            ("count".to_string(), "4".to_string()),
        ])),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let state_dir = tempfile::tempdir()?;

    let mut registry = Registry::new();
    registry.register("hello", Hello::from_config);

    actix_rt::System::new().block_on(async {
        let engine = Engine::start(EngineOptions::new(
            state_dir.path().join("state"),
            registry,
            vec![hello_job("h1", "hello"), hello_job("h2", "bonjour")],
        ))?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        for job in engine.status().await?.jobs {
            println!(
                "{}: {:?}, {} greetings, next due {:?}",
                job.id,
                job.state.kind,
                job.progress.counters.get("greetings").unwrap_or(&0),
                job.next_due
            );
        }
        engine.shutdown().await?;
        Ok(())
    })
}
