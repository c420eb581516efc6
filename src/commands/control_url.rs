//! `tahoe-jobs control-url`: prints the control page's address. The address is a secret: anyone
//! who has it can control the jobs, so it is printed only here, never logged.

use super::client::Client;
use crate::cli::GlobalArgs;

pub fn run(global: &GlobalArgs) -> anyhow::Result<i32> {
    println!("{}", Client::new(global)?.control_url());
    Ok(0)
}
