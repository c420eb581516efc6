//! `tahoe-jobs doctor`: checks what a new set-up usually gets wrong, one finding per check,
//! each problem with how to fix it. Exit 0 when nothing failed (warnings allowed), 1 otherwise.
//!
//! The checks run in the order a user would fix things: the node directory, the node, its
//! storage servers, the configuration, what the jobs name (aliases, sources), the state
//! directory, shaping. A check that depends on an earlier one that failed is reported as
//! skipped rather than failing for the same reason twice. Nothing is written anywhere, and no
//! capability is ever printed.

mod finding;
mod local;
mod node;

use std::path::PathBuf;

use clap::Args;

pub use finding::{Finding, Level};

use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct DoctorArgs {}

pub fn run(global: &GlobalArgs, _args: &DoctorArgs) -> anyhow::Result<i32> {
    let node_dir = super::node_dir(global)?;
    let findings = examine(global, node_dir.clone());
    println!("tahoe-jobs doctor: node directory {}", node_dir.display());
    for f in &findings {
        print!("{}", f.render());
    }
    let failed = findings.iter().filter(|f| f.level == Level::Fail).count();
    let warned = findings.iter().filter(|f| f.level == Level::Warn).count();
    println!();
    if failed == 0 {
        match warned {
            0 => println!("All is well."),
            n => println!("No problem that stops tahoe-jobs; {n} warning(s) above."),
        }
        Ok(0)
    } else {
        println!("{failed} problem(s) found: fix the FAIL lines above, then run tahoe-jobs doctor again.");
        Ok(1)
    }
}

/// Every check, in order.
fn examine(global: &GlobalArgs, node_dir: PathBuf) -> Vec<Finding> {
    let mut findings = Vec::new();
    let dir_ok = local::node_directory(&node_dir, &mut findings);
    let node = if dir_ok {
        node::examine(&node_dir, &mut findings)
    } else {
        findings.push(Finding::skipped(
            "node",
            "not looked at: there is no node directory to look in",
        ));
        None
    };
    let config = local::configuration(global, &mut findings);
    if let Some(config) = &config {
        local::sources(config, &mut findings);
        node::targets(&node_dir, config, node.as_ref(), &mut findings);
        local::state_directory(&config.daemon.state_dir, &mut findings);
        node::shaping(&node_dir, config, node.as_ref(), &mut findings);
        node::direct_storage(&node_dir, config, &mut findings);
        local::daemon_port(config, &mut findings);
    }
    findings
}
