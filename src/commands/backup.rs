//! `tahoe-jobs backup SOURCE ALIAS:PATH`: a one-shot backup, a drop-in for `tahoe backup` with
//! the same result on the grid, the same summary line and the same exit codes (0 ok, 2 when
//! something was skipped, 1 on error).
//!
//! Its backupdb is a sled database in `NODEDIR/private/tahoe-jobs/oneshot`, one tree per target,
//! so running it again over an unchanged tree uploads nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use tahoe_jobs_tasks::backup::walk::quote;
use tahoe_jobs_tasks::backup::{
    backup_once, oneshot_db_dir, open_backupdb_with_cache, BackupObserver, BackupOptions,
    DirAction, FileAction,
};
use tahoe_jobs_tasks::backup::{BackupParams, DEFAULT_RECHECK_AFTER, DEFAULT_RECHECK_ALL_AFTER};
use tahoe_jobs_tasks::DataPath;

use super::oneshot::{
    block_on, cache_size, client_options, parse_concurrency, parse_target, parse_timeout,
    print_lines,
};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Ignore files and directories whose name matches this glob (may be repeated).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Ignore the files and directories of version control systems (.git, .svn, CVS, ...).
    #[arg(long = "exclude-vcs")]
    pub exclude_vcs: bool,
    /// Ignore names matching the globs in FILE, one a line.
    #[arg(
        long = "exclude-from",
        visible_alias = "exclude-from-utf-8",
        value_name = "FILE"
    )]
    pub exclude_from: Option<PathBuf>,
    /// How many files to upload at once [default: 16 on the direct data path, 4 through the
    /// node].
    #[arg(long, value_name = "N", value_parser = parse_concurrency)]
    pub concurrency: Option<usize>,
    /// How long the node may stay silent on one request (not reading an upload, or not
    /// answering) before it counts as unreachable. An upload's answer comes only once the node
    /// has encoded and stored the whole file, so this must cover the largest file. Default:
    /// [jobs] node.timeout from NODEDIR/tahoe-jobs.cfg (10min when not set there).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// Use a file or directory uploaded or checked less than this long ago again without
    /// checking it.
    #[arg(long = "recheck-after", value_name = "DURATION", default_value_t = HumanDurationOrZero(DEFAULT_RECHECK_AFTER), value_parser = parse_recheck)]
    pub recheck_after: HumanDurationOrZero,
    /// Always check a file or directory last checked at least this long ago before using it
    /// again (an unhealthy one is uploaded again); between the two, the chance grows linearly.
    /// Both 0s: check everything on every run.
    #[arg(long = "recheck-all-after", value_name = "DURATION", default_value_t = HumanDurationOrZero(DEFAULT_RECHECK_ALL_AFTER), value_parser = parse_recheck)]
    pub recheck_all_after: HumanDurationOrZero,
    /// How files and immutable directories reach the grid: direct (encoded here and sent to
    /// the storage servers; the node still links the mutable directories) or node (through
    /// the node's web API). Direct falls back to node, with a warning, when no storage server
    /// announces the HTTPS storage protocol.
    #[arg(long = "data-path", value_name = "direct|node", default_value = "direct", value_parser = |s: &str| s.parse::<DataPath>())]
    pub data_path: DataPath,
    /// Print every file and directory as it is handled.
    #[arg(short, long)]
    pub verbose: bool,
    /// The local directory to back up.
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,
    /// Where on the grid: ALIAS:PATH (the backup goes to PATH/Archives/<time> and PATH/Latest).
    #[arg(value_name = "ALIAS:PATH")]
    pub target: String,
}

pub fn run(global: &GlobalArgs, args: &BackupArgs) -> anyhow::Result<i32> {
    let node_dir = super::node_dir(global)?;
    let target = parse_target(&args.target)?;
    let (recheck_after, recheck_all_after) = (args.recheck_after.0, args.recheck_all_after.0);
    if recheck_all_after < recheck_after {
        anyhow::bail!(
            "--recheck-all-after ({}) is shorter than --recheck-after ({}): a capability last \
             checked at least recheck-all-after ago is always checked, so it must be at least \
             recheck-after",
            args.recheck_all_after,
            args.recheck_after
        );
    }
    let client = client_options(global, args.timeout)?;
    let params = BackupParams {
        source: args.source.clone(),
        target: target.clone(),
        exclude: args.exclude.clone(),
        exclude_from: args.exclude_from.clone(),
        exclude_vcs: args.exclude_vcs,
        concurrency: args.concurrency,
        recheck_after,
        recheck_all_after,
        data_path: args.data_path,
    };
    let tree = open_backupdb_with_cache(&oneshot_db_dir(&node_dir), &target, cache_size(global))?;
    let options = BackupOptions {
        observer: Arc::new(Printer {
            verbose: args.verbose,
        }),
        client,
        ..BackupOptions::default()
    };
    let summary = block_on(backup_once(&node_dir, &params, tree, &options))??;
    let mut lines = vec![summary.summary_line()];
    if args.verbose {
        lines.push(summary.checked_line());
    }
    lines.push(summary.elapsed_line());
    print_lines(lines)?;
    Ok(summary.exit_code())
}

/// A duration flag where zero is allowed, shown in whole days when it is some (`60d`, not
/// humantime's `1month 29days 13h 26m 24s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDurationOrZero(pub std::time::Duration);

impl std::fmt::Display for HumanDurationOrZero {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.as_secs();
        if self.0.is_zero() {
            f.write_str("0s")
        } else if secs.is_multiple_of(86_400) && self.0.subsec_nanos() == 0 {
            write!(f, "{}d", secs / 86_400)
        } else {
            tahoe_jobs_config::HumanDuration(self.0).fmt(f)
        }
    }
}

fn parse_recheck(s: &str) -> Result<HumanDurationOrZero, String> {
    tahoe_jobs_config::parse_duration_or_zero(s)
        .map(HumanDurationOrZero)
        .map_err(|_| format!("{s:?} is not a duration, such as 30d, 8weeks or 0s"))
}

/// Prints warnings as `tahoe backup` does, and with `-v` every file and directory, its path
/// quoted as in warnings (`tahoe backup -v` quotes them too) so that a newline or an escape
/// sequence in a name can neither split a line nor reach the terminal.
struct Printer {
    verbose: bool,
}

impl BackupObserver for Printer {
    fn warning(&self, message: &str) {
        eprintln!("WARNING: {message}");
    }

    fn file(&self, path: &Path, action: FileAction) {
        if self.verbose {
            let verb = match action {
                FileAction::Uploaded => "uploaded",
                FileAction::Reused => "skipping",
                FileAction::Changed => "uploaded (changed while read)",
            };
            println!("{verb} {}", quote(path));
        }
    }

    fn directory(&self, path: &Path, action: DirAction) {
        if self.verbose {
            let verb = match action {
                DirAction::Created => "created directory for",
                DirAction::Reused => "re-using old directory for",
            };
            println!(" {verb} {}", quote(path));
        }
    }
}
