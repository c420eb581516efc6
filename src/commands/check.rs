//! `tahoe-jobs check [--verify] [--repair] [--add-lease] [--data-path direct|node] [ALIAS:PATH]`: one pass of the check
//! task over a tree, printed like `tahoe deep-check` (progress every 100 objects, the objects
//! that are not healthy, the same `done:` summary), with the exit code 0 when every object is
//! healthy (after repair, with `--repair`) and 1 otherwise.
//!
//! Its traversal (frontier, visited directories, records) lives in a sled database in
//! `NODEDIR/private/tahoe-jobs/oneshot-check`, emptied at the start and the end of each run:
//! memory stays flat on any tree, and nothing is kept between runs, so every run checks every
//! object. (A scheduled `[check]` job keeps its records and resumes; this command does not.)

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tahoe_jobs_config::NodeFacts;
use tahoe_jobs_tasks::backup::walk::quote;
use tahoe_jobs_tasks::check::summary::describe;
use tahoe_jobs_tasks::check::CheckParams;
use tahoe_jobs_tasks::check::{
    check_once, oneshot_db_dir, CheckObserver, CheckOptions, ObjectRecord,
};
use tahoe_jobs_tasks::sled;
use tahoe_jobs_tasks::DataPath;

use super::oneshot::{
    block_on, client_options, parse_concurrency, parse_target, parse_timeout, print_lines,
};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Download and verify every share, not just ask the servers whether they hold them.
    #[arg(long)]
    pub verify: bool,
    /// Repair unhealthy objects, and re-place the shares of healthy ones that sit on fewer than
    /// shares.happy servers.
    #[arg(long)]
    pub repair: bool,
    /// Renew this node's leases on every share found.
    #[arg(long = "add-lease")]
    pub add_lease: bool,
    /// How long the node may stay silent on one request before it counts as unreachable (a
    /// verify or repair of a large file answers only when it is done). Default: [jobs]
    /// node.timeout from NODEDIR/tahoe-jobs.cfg (10min when not set there).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// How many objects to check at once. Default: 16 on the direct path, 4 through the node.
    #[arg(long, value_name = "N", value_parser = parse_concurrency)]
    pub concurrency: Option<usize>,
    /// How immutable objects are checked: `direct` asks the storage servers over Tahoe's HTTPS
    /// storage protocol (falling back to the node, with a warning, when no server speaks it);
    /// `node` sends every check through the node. Mutable objects, --verify and --repair always
    /// go through the node.
    #[arg(long = "data-path", value_name = "direct|node", default_value = "direct", value_parser = parse_data_path)]
    pub data_path: DataPath,
    /// Print every object, not only the ones that are not healthy.
    #[arg(short, long)]
    pub verbose: bool,
    /// What to check: ALIAS:PATH, a directory capability, or a path below the `tahoe:` alias.
    #[arg(value_name = "ALIAS:PATH", default_value = "tahoe:")]
    pub target: String,
}

fn parse_data_path(s: &str) -> Result<DataPath, String> {
    s.parse()
}

pub fn run(global: &GlobalArgs, args: &CheckArgs) -> anyhow::Result<i32> {
    let node_dir = super::node_dir(global)?;
    let params = CheckParams {
        target: parse_target(&args.target)?,
        verify: args.verify,
        repair: args.repair,
        add_lease: args.add_lease,
        recheck_after: std::time::Duration::ZERO,
        data_path: args.data_path,
    };
    let client = client_options(global, args.timeout)?;
    let happy = NodeFacts::read(&node_dir)
        .with_context(|| format!("cannot read the node's settings in {}", node_dir.display()))?
        .encoding
        .happy;
    let (db, tree) = open_fresh(&node_dir, super::oneshot::cache_size(global))?;
    let options = CheckOptions {
        observer: Arc::new(Printer {
            verbose: args.verbose,
            seen: AtomicU64::new(0),
        }),
        concurrency: args.concurrency,
        client,
    };
    let result = block_on(check_once(&node_dir, &params, tree.clone(), &options))?;
    // The traversal is of no use once the run is over, whether it finished or not.
    let _ = db.drop_tree(tree.name());
    let summary = result?;
    print_lines(summary.lines(args.repair, happy))?;
    Ok(summary.exit_code())
}

/// Opens the one-shot database with an empty tree.
fn open_fresh(node_dir: &Path, cache_bytes: u64) -> anyhow::Result<(sled::Db, sled::Tree)> {
    let dir = oneshot_db_dir(node_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db = sled::Config::new()
        .path(&dir)
        // Each frontier entry is read about once: a bounded cache keeps memory flat.
        .cache_capacity(cache_bytes)
        .open()
        .with_context(|| {
            format!(
                "cannot open {} (is another `tahoe-jobs check` running?)",
                dir.display()
            )
        })?;
    db.drop_tree("oneshot")?;
    let tree = db.open_tree("oneshot")?;
    Ok((db, tree))
}

/// Prints as `tahoe deep-check` does: a progress line every 100 objects, every object with
/// `-v`, and always the ones that are not healthy (deep-check always prints corrupt shares).
/// Paths are quoted as `deep-check` and `tahoe-jobs backup -v` quote them, with control
/// characters escaped, so a newline in a name cannot split (or forge) a line.
struct Printer {
    verbose: bool,
    seen: AtomicU64,
}

impl Printer {
    fn count(&self) {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(100) {
            println!("{n} objects checked..");
        }
    }
}

impl CheckObserver for Printer {
    fn checked(&self, path: &str, record: &ObjectRecord) {
        self.count();
        if self.verbose || !record.fine() {
            println!("{}: {}", quote(Path::new(path)), describe(record));
        }
    }

    fn literal(&self, path: &str) {
        self.count();
        if self.verbose {
            println!("{}: healthy (LIT)", quote(Path::new(path)));
        }
    }

    fn warning(&self, message: &str) {
        eprintln!("WARNING: {message}");
    }
}
