//! `tahoe-jobs backup SOURCE ALIAS:PATH`: a one-shot backup.

use clap::Args;

use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct BackupArgs {}

pub fn run(_global: &GlobalArgs, _args: &BackupArgs) -> anyhow::Result<i32> {
    anyhow::bail!("the backup task arrives with issue 4")
}
