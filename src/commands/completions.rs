//! `tahoe-jobs completions SHELL`: prints the shell's completion script for every subcommand
//! and option, generated from the same clap definitions the command line is parsed with.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;

#[derive(Debug, Args)]
#[command(after_help = "Install:\n  \
    bash: tahoe-jobs completions bash > ~/.local/share/bash-completion/completions/tahoe-jobs\n  \
    zsh:  tahoe-jobs completions zsh > ~/.zfunc/_tahoe-jobs  (with fpath+=~/.zfunc before compinit)\n  \
    fish: tahoe-jobs completions fish > ~/.config/fish/completions/tahoe-jobs.fish")]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &CompletionsArgs) -> anyhow::Result<i32> {
    print_or_pipe_closed(&script(args.shell))?;
    Ok(0)
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tahoe-jobs", &mut out);
    out
}

/// Writes to stdout; a reader that stopped early (`| head`) is not an error.
pub fn print_or_pipe_closed(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shell_completes_the_subcommands_and_their_options() {
        let text = |shell| String::from_utf8(script(shell)).unwrap();
        let bash = text(Shell::Bash);
        assert!(bash.contains("complete -F _tahoe-jobs") || bash.contains("_tahoe__jobs"));
        for word in [
            "doctor",
            "completions",
            "shaping",
            "--node-directory",
            "--ignore-window",
        ] {
            assert!(bash.contains(word), "bash lacks {word}");
        }
        let zsh = text(Shell::Zsh);
        assert!(zsh.starts_with("#compdef tahoe-jobs"), "{}", &zsh[..40]);
        assert!(zsh.contains("doctor") && zsh.contains("--node-directory"));
        let fish = text(Shell::Fish);
        assert!(fish.contains("complete -c tahoe-jobs"));
        assert!(fish.contains("doctor") && fish.contains("node-directory"));
    }
}
