//! The direct data path of the check task: immutable objects (CHK files, DIR2-CHK directories)
//! are checked by asking every storage server which shares it holds, over Tahoe's HTTPS storage
//! protocol (`tahoe_jobs_lafs`), with the node's own lease secrets when leases are renewed.
//! Mutable objects, verification and repair stay with the node.
//!
//! The answers come back as the node's [`CheckReport`], so the rest of the task (records,
//! summaries, repair and rebalance decisions) cannot tell the two paths apart.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tahoe_jobs_lafs::cap::Capability;
use tahoe_jobs_lafs::discovery::ServerList;
use tahoe_jobs_lafs::grid::{CheckedObject, StorageGrid};
use tahoe_jobs_lafs::lease::ClientLeaseSecrets;

use super::CheckObserver;
use crate::data_path::{open_direct_grid, DirectGrid};
use crate::tahoe::{Cap, CheckReport, CheckResults};

/// How often the server files are looked at for changes, at most.
const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// Checks immutable objects straight at the storage servers.
pub struct DirectChecker {
    node_dir: PathBuf,
    servers: Mutex<(ServerList, Instant)>,
    grid: Mutex<Arc<StorageGrid>>,
    leases: Option<ClientLeaseSecrets>,
    observer: Arc<dyn CheckObserver>,
    /// Servers already named in a warning during this run (one warning each).
    warned: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for DirectChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectChecker")
            .field("node_dir", &self.node_dir)
            .finish_non_exhaustive()
    }
}

impl DirectChecker {
    /// The direct path for the node at `node_dir`, or why it cannot be used (then the caller
    /// falls back to the node with one warning): no server announces the storage protocol
    /// (the rule is [`crate::data_path::direct_decision`]'s), or a server file or the lease
    /// secret cannot be read. Servers that speak only Foolscap are named in one warning.
    pub fn new(
        node_dir: &Path,
        add_lease: bool,
        observer: Arc<dyn CheckObserver>,
    ) -> Result<DirectChecker, String> {
        let servers = ServerList::load(node_dir).map_err(|e| e.to_string())?;
        let opened = open_direct_grid(servers.servers())?;
        let leases = if add_lease {
            Some(ClientLeaseSecrets::from_node_dir(node_dir).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let checker = DirectChecker {
            node_dir: node_dir.to_path_buf(),
            servers: Mutex::new((servers, Instant::now())),
            grid: Mutex::new(Arc::new(StorageGrid::default())),
            leases,
            observer,
            warned: Mutex::new(HashSet::new()),
        };
        checker.use_grid(opened);
        Ok(checker)
    }

    /// Checks go to `opened` from now on. Its Foolscap-only servers are named in one warning
    /// (unless they all were already), not once each as servers that fail to answer are.
    fn use_grid(&self, opened: DirectGrid) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        let mut new = false;
        for id in opened.foolscap_only {
            new |= warned.insert(id);
        }
        drop(warned);
        if let (Some(warning), true) = (opened.warning, new) {
            tracing::warn!("{warning}");
            self.observer.warning(&warning);
        }
        *self.grid.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(opened.grid);
    }

    /// Checks `cap` directly if it is an immutable object with shares; `None` for anything
    /// else (mutable, literal, unparsable), which the node checks as before.
    pub async fn check(&self, cap: &Cap) -> Option<CheckReport> {
        let parsed = Capability::parse(cap.expose()).ok()?;
        parsed.chk_params()?;
        let grid = self.current_grid();
        let checked = grid
            .check_immutable(&parsed, self.leases.as_ref())
            .await
            .ok()?;
        self.warn_failures(&checked);
        Some(report(&checked))
    }

    /// The grid, rebuilt when the node's server files changed (not more often than every
    /// [`REFRESH_EVERY`]); a file that became unreadable keeps the last good list, with a
    /// warning.
    fn current_grid(&self) -> Arc<StorageGrid> {
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        if servers.1.elapsed() >= REFRESH_EVERY {
            servers.1 = Instant::now();
            match servers.0.refresh() {
                Ok(true) => match open_direct_grid(servers.0.servers()) {
                    Ok(opened) => self.use_grid(opened),
                    Err(e) => {
                        self.warn_once("servers", &format!("{e}; keeping the last server list"))
                    }
                },
                Ok(false) => {}
                Err(e) => self.warn_once("servers", &format!("{e}; keeping the last server list")),
            }
        }
        drop(servers);
        self.grid.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn warn_failures(&self, checked: &CheckedObject) {
        for (server_id, error) in &checked.failures {
            self.warn_once(
                server_id,
                &format!("{error}; it counts as holding no shares in this check"),
            );
        }
    }

    fn warn_once(&self, key: &str, message: &str) {
        let first = self
            .warned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string());
        if first {
            tracing::warn!("{message}");
            self.observer.warning(message);
        }
    }
}

/// The node's report for what the servers said.
fn report(checked: &CheckedObject) -> CheckReport {
    let r = &checked.results;
    CheckReport {
        storage_index: checked.storage_index.to_string(),
        summary: r.summary.clone(),
        results: CheckResults {
            healthy: r.healthy,
            recoverable: Some(r.recoverable),
            count_happiness: Some(r.count_happiness),
            count_shares_good: Some(r.count_shares_good),
            count_shares_needed: Some(r.count_shares_needed),
            count_shares_expected: Some(r.count_shares_expected),
            count_good_share_hosts: Some(r.count_good_share_hosts),
            count_corrupt_shares: Some(0),
            count_wrong_shares: Some(0),
            count_recoverable_versions: Some(u64::from(r.recoverable)),
            count_unrecoverable_versions: Some(u64::from(!r.recoverable)),
            servers_responding: r.servers_responding.clone(),
            sharemap: r
                .sharemap
                .iter()
                .map(|(share, servers)| (share.to_string(), servers.iter().cloned().collect()))
                .collect(),
        },
        repair: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An introducer cache whose only server announces Foolscap alone (`force_foolscap`-era
    /// servers, or `[storage] ... ` without the HTTP protocol).
    const FOOLSCAP_ONLY: &str = "\
- ann:
    anonymous-storage-FURL: pb://jkx3bripnioaumcaep3iyyl66wchmtdt@tcp:localhost:47602/bpqvfvxo2mqe3hrpwc327jqlzhvn2rln
    nickname: attic
    permutation-seed-base32: nu3gy2lxnnwxcz32nbxdeyzwofxhk4zspa2wc4zxo5vwo5tioj3xum3nnfudo3duouzti3tdmf4wm2juo5qq
    service-name: storage
  key_s: v0-m6liwkmqgzhn2c6qnus2x5as7wkgvhrwz3mih7ltu34ncayfi4wa
";

    /// A server that announces the storage protocol beside its Foolscap FURL.
    const SPEAKS_HTTPS: &str = "\
- ann:
    anonymous-storage-FURL: pb://jkx3bripnioaumcaep3iyyl66wchmtdt@tcp:localhost:47603/bpqvfvxo2mqe3hrpwc327jqlzhvn2rln
    anonymous-storage-NURLs:
    - pb://CsVT0HoLClGZeLVcZ-EgSU-ckIA4MrCy66h3g4qHacQ@localhost:47603/bpqvfvxo2mqe3hrpwc327jqlzhvn2rln#v=1
    nickname: cellar
    permutation-seed-base32: nu3gy2lxnnwxcz32nbxdeyzwofxhk4zspa2wc4zxo5vwo5tioj3xum3nnfudo3duouzti3tdmf4wm2juo5qa
    service-name: storage
  key_s: v0-m6liwkmqgzhn2c6qnus2x5as7wkgvhrwz3mih7ltu34ncayfi4wb
";

    #[derive(Default)]
    struct Warnings(Mutex<Vec<String>>);

    impl CheckObserver for Warnings {
        fn warning(&self, message: &str) {
            self.0.lock().unwrap().push(message.to_string());
        }
    }

    #[test]
    fn one_server_speaking_https_is_enough_and_the_others_are_named_once() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        std::fs::create_dir_all(&private).unwrap();
        std::fs::write(
            private.join("introducer_default_cache.yaml"),
            format!("{SPEAKS_HTTPS}{FOOLSCAP_ONLY}"),
        )
        .unwrap();
        let warnings = Arc::new(Warnings::default());
        let checker = DirectChecker::new(dir.path(), false, warnings.clone()).unwrap();
        assert_eq!(checker.current_grid().servers().len(), 2);
        let said = warnings.0.lock().unwrap().clone();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].starts_with("1 of 2 storage servers"), "{said:?}");
        assert!(
            said[0].contains("attic") && !said[0].contains("cellar"),
            "{said:?}"
        );
        assert!(!said[0].contains("bpqvfvxo"), "{said:?}");
        // The same grid again (the server files changed, say): no second warning.
        let again = open_direct_grid(checker.servers.lock().unwrap().0.servers()).unwrap();
        checker.use_grid(again);
        assert_eq!(warnings.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn no_storage_protocol_means_the_node_path_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        std::fs::create_dir_all(&private).unwrap();
        let none = DirectChecker::new(dir.path(), false, Arc::new(super::super::Silent));
        assert!(none.unwrap_err().contains("no storage servers"));
        std::fs::write(private.join("introducer_default_cache.yaml"), FOOLSCAP_ONLY).unwrap();
        let why =
            DirectChecker::new(dir.path(), false, Arc::new(super::super::Silent)).unwrap_err();
        assert!(
            why.contains("attic") && why.contains("only Foolscap"),
            "{why}"
        );
        assert!(!why.contains("bpqvfvxo"), "{why}");
    }
}
