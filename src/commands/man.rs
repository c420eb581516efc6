//! `tahoe-jobs man`: the manual page (roff), generated from the clap definitions: to stdout, or
//! with `--out-dir`, one page per command (`tahoe-jobs.1`, `tahoe-jobs-run.1`, ...) for
//! packagers and `man -l`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, CommandFactory};

use crate::cli::Cli;

#[derive(Debug, Args)]
#[command(after_help = "Read it with: tahoe-jobs man | man -l -")]
pub struct ManArgs {
    /// Write tahoe-jobs.1 and a page per subcommand into DIR instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn run(args: &ManArgs) -> anyhow::Result<i32> {
    let command = Cli::command();
    match &args.out_dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .context("cannot render the manual page")?;
            super::completions::print_or_pipe_closed(&page)
                .context("cannot write the manual page")?;
        }
        Some(dir) => {
            for written in write_pages(command, dir)? {
                println!("{}", written.display());
            }
        }
    }
    Ok(0)
}

/// Writes the page of `command` and of each of its subcommands into `dir`; answers the files.
fn write_pages(command: clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let command = command.flatten_help(false);
    let mut written = Vec::new();
    let mut pages = vec![(command.get_name().to_string(), command.clone())];
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("{}-{}", command.get_name(), sub.get_name());
        pages.push((name, sub.clone()));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(page)
            .title(name.to_uppercase())
            .render(&mut out)
            .context("cannot render a manual page")?;
        std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_written_for_the_command_and_each_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_pages(Cli::command(), dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for name in [
            "tahoe-jobs.1",
            "tahoe-jobs-run.1",
            "tahoe-jobs-doctor.1",
            "tahoe-jobs-man.1",
        ] {
            assert!(names.contains(&name.to_string()), "{names:?}");
        }
        let main = std::fs::read_to_string(dir.path().join("tahoe-jobs.1")).unwrap();
        assert!(main.contains(".TH TAHOE-JOBS 1"), "{main}");
        assert!(main.contains("doctor"));
        let run = std::fs::read_to_string(dir.path().join("tahoe-jobs-run.1")).unwrap();
        assert!(run.contains(".TH TAHOE-JOBS-RUN 1"), "{run}");
        assert!(run.contains("json\\-logs"), "{run}");
    }
}
