//! `tahoe-jobs resume JOB`: lifts a pause.

use clap::Args;
use serde_json::json;

use super::client::{job_path, Client};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The job, by id (`backup.b1`) or by name (`b1`).
    pub job: String,
}

pub fn run(global: &GlobalArgs, args: &ResumeArgs) -> anyhow::Result<i32> {
    let client = Client::new(global)?;
    let message = client.post(&format!("{}/resume", job_path(&args.job)), json!({}))?;
    println!("{message}");
    Ok(0)
}
