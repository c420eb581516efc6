//! The storage servers a client node knows, each with its storage-protocol client, and the
//! operations that ask all of them at once: listing an immutable object's shares (a check) and
//! renewing its leases.

use std::collections::BTreeSet;

use futures::future::join_all;

use crate::cap::{Capability, StorageIndex};
use crate::checker::{immutable_check, ImmutableCheck, ServerListing};
use crate::discovery::ServerInfo;
use crate::lease::ClientLeaseSecrets;
use crate::storage::{LeaseOutcome, StorageClient, StorageError, Timeouts};

/// One server and its client (`None` when it announces no NURL: Foolscap only).
#[derive(Debug, Clone)]
pub struct GridServer {
    /// What it announced.
    pub info: ServerInfo,
    /// Its storage-protocol client.
    pub client: Option<StorageClient>,
}

/// What one server said to a check, with the error that made it count as holding nothing.
#[derive(Debug, Clone)]
pub struct CheckedObject {
    /// The checker's results.
    pub results: ImmutableCheck,
    /// The storage index.
    pub storage_index: StorageIndex,
    /// Servers that did not answer (they count as holding no shares), with why.
    pub failures: Vec<(String, StorageError)>,
}

/// Why an object cannot be checked here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridCheckError {
    /// The cap is not CHK or DIR2-CHK (mutable, literal, verify caps with no coding...).
    #[error("a {0} capability is not an immutable object with shares")]
    NotImmutable(crate::cap::CapKind),
}

/// All servers of a node.
#[derive(Debug, Clone, Default)]
pub struct StorageGrid {
    servers: Vec<GridServer>,
}

impl StorageGrid {
    /// Clients for `servers` (each tries the NURLs its server announced, in order).
    pub fn new(servers: &[ServerInfo], timeouts: Timeouts) -> Result<StorageGrid, StorageError> {
        let servers = servers
            .iter()
            .map(|info| {
                let client = match info.nurls.is_empty() {
                    false => Some(StorageClient::with_locations(
                        &info.nurls,
                        &info.display_name(),
                        timeouts,
                    )?),
                    true => None,
                };
                Ok(GridServer {
                    info: info.clone(),
                    client,
                })
            })
            .collect::<Result<_, StorageError>>()?;
        Ok(StorageGrid { servers })
    }

    /// The servers.
    pub fn servers(&self) -> &[GridServer] {
        &self.servers
    }

    /// True when every server speaks the storage protocol (and there is at least one), so that
    /// a check here sees what the node's checker sees.
    pub fn all_speak_http(&self) -> bool {
        !self.servers.is_empty() && self.servers.iter().all(|s| s.client.is_some())
    }

    /// Checks an immutable object (CHK file or DIR2-CHK directory, or their verify caps) by
    /// asking every server which shares it holds, all at once; with `lease` set, first adds or
    /// renews the node's lease on every server, as Tahoe's checker does with add-lease.
    pub async fn check_immutable(
        &self,
        cap: &Capability,
        lease: Option<&ClientLeaseSecrets>,
    ) -> Result<CheckedObject, GridCheckError> {
        let (Some(params), Some(si)) = (cap.chk_params(), cap.storage_index()) else {
            return Err(GridCheckError::NotImmutable(cap.kind()));
        };
        let answers = join_all(self.servers.iter().map(|server| ask(server, si, lease))).await;
        let mut listings = Vec::with_capacity(answers.len());
        let mut failures = Vec::new();
        for (server, answer) in self.servers.iter().zip(answers) {
            let shares = match answer {
                Ok(shares) => Some(shares),
                Err(e) => {
                    failures.push((server.info.server_id.clone(), e));
                    None
                }
            };
            listings.push(ServerListing {
                server_id: server.info.server_id.clone(),
                shares,
            });
        }
        Ok(CheckedObject {
            results: immutable_check(params, &listings),
            storage_index: si,
            failures,
        })
    }
}

async fn ask(
    server: &GridServer,
    si: StorageIndex,
    lease: Option<&ClientLeaseSecrets>,
) -> Result<BTreeSet<u16>, StorageError> {
    let Some(client) = &server.client else {
        return Err(StorageError::Unreachable {
            server: server.info.display_name(),
            address: "(no NURL)".into(),
            reason: "it announces only Foolscap".into(),
        });
    };
    let Some(lease) = lease else {
        return client.immutable_shares(&si).await;
    };
    // The checker sends add-lease to every server and ignores "no such shares"; other failures
    // are only logged there too, and the listing decides. Like the checker
    // (`immutable/checker.py`, `_get_buckets`), both requests go at once: waiting for the lease
    // before listing would cost every object one more round trip per server.
    let secrets = lease.for_share(&si, &server.info.lease_seed);
    let (renewed, listed) = futures::join!(
        client.add_or_renew_lease(&si, &secrets),
        client.immutable_shares(&si)
    );
    match renewed {
        Ok(LeaseOutcome::Renewed | LeaseOutcome::NoShares) => {}
        Err(e) if e.is_connection() => return Err(e),
        Err(e) => tracing::warn!("lease renewal failed: {e}"),
    }
    listed
}
