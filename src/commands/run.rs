//! `tahoe-jobs run`: the daemon in the foreground.

use crate::cli::{GlobalArgs, RunArgs};

pub fn run(_global: &GlobalArgs, _args: &RunArgs) -> anyhow::Result<i32> {
    anyhow::bail!("the daemon arrives with the engine (issue 3)")
}
