//! The `tahoe-jobs` command: the daemon (`run`), one-shot commands (`backup`, `check`), the
//! configuration viewer (`config`), and clients of a running daemon's private API.

mod cli;
mod commands;
mod hooks;
mod logging;
mod web;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tahoe-jobs: {}", error_text(&err));
            1
        }
    };
    std::process::exit(code);
}

/// The error and its causes on one line, as anyhow's `{:#}` prints them, leaving out a cause
/// whose text the line already ends with: an error that reads "{during}: {source}" also names
/// that source as its cause, and the user would read the reason twice.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[derive(Debug, thiserror::Error)]
    #[error("uploading 'a': {source}")]
    struct During {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let inner = std::io::Error::other("not enough storage servers");
        let err = anyhow::Error::from(During { source: inner });
        assert_eq!(
            error_text(&err),
            "uploading 'a': not enough storage servers"
        );
        let err = err.context("backup failed");
        assert_eq!(
            error_text(&err),
            "backup failed: uploading 'a': not enough storage servers"
        );
    }
}
