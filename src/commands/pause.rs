//! `tahoe-jobs pause JOB [--for 2h]`: stops the job's work and holds it, until resumed or for a
//! while; the pause survives daemon restarts.

use clap::Args;
use serde_json::json;

use super::client::{job_path, Client};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// The job, by id (`backup.b1`) or by name (`b1`).
    pub job: String,
    /// Resume by itself after this long (`2h`, `30min`, `1d`); without it, until `resume`.
    #[arg(long = "for", value_name = "DURATION")]
    pub for_: Option<String>,
}

pub fn run(global: &GlobalArgs, args: &PauseArgs) -> anyhow::Result<i32> {
    let client = Client::new(global)?;
    let message = client.post(
        &format!("{}/pause", job_path(&args.job)),
        json!({ "for": args.for_ }),
    )?;
    println!("{message}");
    Ok(0)
}
