//! `tahoe-jobs config`: the effective configuration, one value a line with its source.

use crate::cli::GlobalArgs;

pub fn run(global: &GlobalArgs) -> anyhow::Result<i32> {
    let config = match super::load_config(global) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tahoe-jobs: {e}");
            return Ok(1);
        }
    };
    println!("# node directory: {}", config.node_dir.display());
    println!("# jobs: {}", config.jobs.len());
    let width = config
        .settings
        .iter()
        .map(|s| s.key.len())
        .max()
        .unwrap_or(0);
    for setting in &config.settings {
        println!(
            "{:width$} = {:30}  # {}",
            setting.key,
            setting.value,
            setting.origin,
            width = width
        );
    }
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(0)
}
