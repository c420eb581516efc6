//! `tahoe-jobs start JOB [--ignore-window]`: runs a job now, whatever its frequency says: as soon
//! as its window is open, or at once with `--ignore-window` (and then a window close does not
//! stop it).

use clap::Args;
use serde_json::json;

use super::client::{job_path, Client};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The job, by id (`backup.b1`) or by name (`b1`).
    pub job: String,
    /// Start at once even outside the job's allowed times, and do not stop at a window close.
    #[arg(long)]
    pub ignore_window: bool,
}

pub fn run(global: &GlobalArgs, args: &StartArgs) -> anyhow::Result<i32> {
    let client = Client::new(global)?;
    let message = client.post(
        &format!("{}/run", job_path(&args.job)),
        json!({ "ignore_window": args.ignore_window }),
    )?;
    println!("{message}");
    Ok(0)
}
