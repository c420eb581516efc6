//! Server selection for one immutable upload (`immutable/upload.py`,
//! `Tahoe2ServerSelector.get_shareholders`): ask the first 2N servers of the permuted order what
//! they hold and whether a share of this size fits, place the shares ([`super::placement`]),
//! allocate them (which adds the node's lease, or renews it on shares already there), and place
//! again what a server refused, until every share has a home or no server is left to ask.
//! Happiness below `shares.happy` aborts every allocation made and fails.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use bytes::Bytes;

use futures::future::join_all;

use super::pace::{Pacer, ShareWrite};
use super::placement::{failure_message, place_shares, servers_of_happiness, Candidate};
use super::{UploadError, Uploader};
use crate::cap::StorageIndex;
use crate::grid::GridServer;
use crate::lease::LeaseSecrets;
use crate::storage::{StorageClient, StorageError, UploadSecret};
use crate::upload::partial::{KeepAliveTarget, ShareKey};

/// One server taking part in an upload.
#[derive(Debug)]
pub(crate) struct Shareholder {
    pub client: StorageClient,
    pub name: String,
    /// The server's id, for the pacer and the partial-share record.
    pub server_id: String,
    pub upload_secret: UploadSecret,
    /// Shares allocated to us on it: to write.
    pub allocated: BTreeSet<u16>,
    /// Shares it already holds complete (lease renewed).
    pub already_have: BTreeSet<u16>,
    /// Of the allocated shares, those an earlier, interrupted upload began: the byte ranges
    /// still missing (the others need every byte).
    pub required: BTreeMap<u16, Vec<Range<u64>>>,
}

/// The outcome of selection: who writes what, and the happiness it gives.
#[derive(Debug)]
pub(crate) struct Selection {
    pub holders: Vec<Shareholder>,
    pub happiness: usize,
    /// Bytes sent by the header rewrites that claimed an interrupted upload's shares.
    pub claim_bytes: u64,
    /// Allocated shares the partial-share record held: partial shares of a stopped upload
    /// that their server dropped, now written again from the start.
    pub restarted: usize,
}

impl Selection {
    /// Happiness if the holders at `lost` indices are gone.
    pub fn happiness_without(&self, lost: &BTreeSet<usize>) -> usize {
        let map: BTreeMap<usize, BTreeSet<u16>> = self
            .holders
            .iter()
            .enumerate()
            .filter(|(i, _)| !lost.contains(i))
            .map(|(i, h)| (i, &h.allocated | &h.already_have))
            .collect();
        servers_of_happiness(&map)
    }

    /// Aborts every allocated share on the holders not in `skip` (best effort: a server that
    /// cannot be told drops the partial share itself after 30 idle minutes).
    pub async fn abort(&self, si: &StorageIndex, skip: &BTreeSet<usize>) {
        let aborts = self
            .holders
            .iter()
            .enumerate()
            .filter(|(i, _)| !skip.contains(i))
            .flat_map(|(_, h)| {
                h.allocated.iter().map(move |&shnum| async move {
                    if let Err(e) = h.client.abort_immutable(si, shnum, &h.upload_secret).await {
                        tracing::debug!("abort of share {shnum} on {} failed: {e}", h.name);
                    }
                })
            });
        join_all(aborts).await;
    }
}

struct Probe<'a> {
    server: &'a GridServer,
    client: &'a StorageClient,
    lease: LeaseSecrets,
    candidate: Candidate,
    allocated: BTreeSet<u16>,
    already_have: BTreeSet<u16>,
    required: BTreeMap<u16, Vec<Range<u64>>>,
    upload_secret: UploadSecret,
    failed: bool,
}

impl Uploader {
    /// Selects servers for `allocated_size`-byte shares of `si`, whose shares all start with
    /// `header`; the header rewrites that claim an interrupted upload's shares wait on `pacer`
    /// (a stop there leaves the allocations for the next upload).
    pub(crate) async fn select(
        &self,
        si: &StorageIndex,
        allocated_size: u64,
        header: &[u8],
        pacer: &dyn Pacer,
    ) -> Result<Selection, UploadError> {
        let total = self.params.total;
        let speaking: Vec<(&GridServer, &StorageClient)> = self
            .servers
            .iter()
            .filter_map(|s| s.client.as_ref().map(|c| (s, c)))
            .collect();
        if speaking.is_empty() {
            return Err(UploadError::NoServers);
        }
        let seeds: Vec<&[u8]> = speaking
            .iter()
            .map(|(s, _)| s.info.permutation_seed.as_slice())
            .collect();
        let order = super::placement::permuted_order(&si.0, &seeds);
        let chosen: Vec<(&GridServer, &StorageClient)> = order
            .into_iter()
            .take(2 * usize::from(total))
            .map(|i| speaking[i])
            .collect();

        let answers = join_all(chosen.iter().map(|(server, client)| async move {
            let max = self.max_share_size(server, client).await?;
            let holds = client.immutable_shares(si).await?;
            Ok::<_, StorageError>((max, holds))
        }))
        .await;
        let mut failures: Vec<StorageError> = Vec::new();
        // Servers that announce less free space than a share needs (a full disk, or
        // `reserved_space`): named when the upload cannot be happy, as Tahoe does.
        let mut no_room: Vec<String> = Vec::new();
        let mut probes: Vec<Probe> = Vec::new();
        let mut claim_bytes = 0u64;
        for ((server, client), answer) in chosen.iter().zip(answers) {
            let lease = self.lease.for_share(si, &server.info.lease_seed);
            let mut probe = Probe {
                server,
                client,
                upload_secret: super::upload_secret_for(&lease),
                lease,
                candidate: Candidate::default(),
                allocated: BTreeSet::new(),
                already_have: BTreeSet::new(),
                required: BTreeMap::new(),
                failed: false,
            };
            match answer {
                Ok((max, holds)) => {
                    probe.candidate.writable = max.is_none_or(|m| m >= allocated_size);
                    if !probe.candidate.writable {
                        no_room.push(format!(
                            "{} has no room for a share of {allocated_size} bytes",
                            server.info.display_name()
                        ));
                    }
                    probe.candidate.holds = holds;
                }
                Err(e) => {
                    probe.failed = true;
                    failures.push(e);
                }
            }
            probes.push(probe);
        }

        // Place, allocate, and place again what was refused, while that makes progress.
        let mut restarted = 0;
        loop {
            let candidates: Vec<Candidate> = probes
                .iter()
                .map(|p| {
                    if p.failed {
                        Candidate::default()
                    } else {
                        Candidate {
                            writable: p.candidate.writable,
                            holds: &(&p.candidate.holds | &p.allocated) | &p.already_have,
                        }
                    }
                })
                .collect();
            let placement = place_shares(total, &candidates);
            let asks: Vec<(usize, BTreeSet<u16>)> = placement
                .into_iter()
                .filter_map(|(i, shares)| {
                    let p = &probes[i];
                    let new: BTreeSet<u16> = shares
                        .difference(&(&p.allocated | &p.already_have))
                        .copied()
                        .collect();
                    (!new.is_empty()).then_some((i, new))
                })
                .collect();
            if asks.is_empty() {
                break;
            }
            let results = join_all(asks.iter().map(|(i, shares)| {
                let p = &probes[*i];
                p.client
                    .allocate_immutable(si, &p.upload_secret, &p.lease, shares, allocated_size)
            }))
            .await;
            let mut unplaced: Vec<(usize, u16)> = Vec::new();
            for ((i, asked), result) in asks.into_iter().zip(results) {
                let p = &mut probes[i];
                match result {
                    Ok(allocation) => {
                        for &shnum in &allocation.allocated {
                            restarted += usize::from(self.record_partial(si, p, shnum, header));
                        }
                        p.allocated.extend(&allocation.allocated);
                        p.already_have.extend(&allocation.already_have);
                        unplaced.extend(
                            asked
                                .iter()
                                .filter(|s| {
                                    !allocation.allocated.contains(s)
                                        && !allocation.already_have.contains(s)
                                })
                                .map(|&s| (i, s)),
                        );
                    }
                    Err(e) => {
                        p.failed = true;
                        failures.push(e);
                    }
                }
            }
            // A share a server neither has nor took is being uploaded already: by an earlier
            // run of ours (the upload secret is derived, so it is the same), which this one
            // continues, or by someone else, or there is no room: then ask that server for
            // nothing new again. Rewriting the header (the same bytes) tells which, and what
            // the server still requires.
            let header = Bytes::copy_from_slice(header);
            let claims = join_all(unplaced.iter().map(|&(i, shnum)| {
                let p = &probes[i];
                let header = header.clone();
                async move {
                    let write = ShareWrite {
                        server_id: &p.server.info.server_id,
                        shnum,
                        offset: 0,
                        bytes: header.len() as u64,
                    };
                    if pacer.before_write(write).await.is_err() {
                        return None;
                    }
                    Some(
                        p.client
                            .write_immutable(si, shnum, &p.upload_secret, 0, header)
                            .await,
                    )
                }
            }))
            .await;
            if claims.iter().any(Option::is_none) {
                // Stopped: what is allocated stays, for the next upload to claim.
                return Err(UploadError::Stopped);
            }
            for ((i, shnum), claim) in unplaced.into_iter().zip(claims.into_iter().flatten()) {
                let p = &mut probes[i];
                if claim.is_ok() {
                    claim_bytes += header.len() as u64;
                }
                match claim {
                    Ok(progress) if !progress.finished => {
                        tracing::debug!(
                            "continuing an interrupted upload of share {shnum} on {}",
                            p.server.info.display_name()
                        );
                        self.record_partial(si, p, shnum, &header);
                        p.allocated.insert(shnum);
                        p.required.insert(shnum, progress.required);
                    }
                    _ => {
                        p.candidate.writable = false;
                        p.candidate.holds.remove(&shnum);
                    }
                }
            }
        }

        let holders: Vec<Shareholder> = probes
            .into_iter()
            .filter(|p| !p.failed && (!p.allocated.is_empty() || !p.already_have.is_empty()))
            .map(|p| Shareholder {
                client: p.client.clone(),
                name: p.server.info.display_name(),
                server_id: p.server.info.server_id.clone(),
                upload_secret: p.upload_secret,
                allocated: p.allocated,
                already_have: p.already_have,
                required: p.required,
            })
            .collect();
        let mut selection = Selection {
            holders,
            happiness: 0,
            claim_bytes,
            restarted,
        };
        selection.happiness = selection.happiness_without(&BTreeSet::new());
        if selection.happiness < self.happy {
            selection.abort(si, &BTreeSet::new()).await;
            self.forget_partial(si, &selection);
            return Err(UploadError::NotEnoughServers {
                message: failure_message(
                    selection.holders.len(),
                    self.params.needed,
                    self.happy,
                    selection.happiness,
                ),
                failures: failures
                    .iter()
                    .map(ToString::to_string)
                    .chain(no_room)
                    .collect(),
            });
        }
        for e in &failures {
            tracing::debug!("a server left out of an upload: {e}");
        }
        Ok(selection)
    }

    /// Records share `shnum` of `si`, just allocated on (or taken over from) `p`'s server, in
    /// the partial-share record if there is one: its keep-alive write is the share's first
    /// byte, the first byte of `header`. True when the record held it already.
    fn record_partial(&self, si: &StorageIndex, p: &Probe, shnum: u16, header: &[u8]) -> bool {
        let Some(partial) = &self.partial else {
            return false;
        };
        partial.allocated(
            KeepAliveTarget {
                key: ShareKey {
                    server_id: p.server.info.server_id.clone(),
                    storage_index: *si,
                    shnum,
                },
                server: p.server.info.display_name(),
                client: p.client.clone(),
                upload_secret: p.upload_secret.clone(),
                offset: 0,
                data: Bytes::copy_from_slice(&header[..1]),
            },
            tokio::time::Instant::now(),
        )
    }

    /// Takes every share `selection` allocated out of the partial-share record: the upload is
    /// over (complete, aborted or failed), so none is left for the keeper.
    pub(crate) fn forget_partial(&self, si: &StorageIndex, selection: &Selection) {
        let Some(partial) = &self.partial else {
            return;
        };
        for h in &selection.holders {
            for &shnum in &h.allocated {
                partial.remove(&ShareKey {
                    server_id: h.server_id.clone(),
                    storage_index: *si,
                    shnum,
                });
            }
        }
    }

    /// The largest share `server` accepts (its free space), asked once per uploader.
    async fn max_share_size(
        &self,
        server: &GridServer,
        client: &StorageClient,
    ) -> Result<Option<u64>, StorageError> {
        let id = &server.info.server_id;
        if let Some(max) = self.versions.lock().expect("not poisoned").get(id) {
            return Ok(*max);
        }
        let max = client.version().await?.maximum_immutable_share_size;
        self.versions
            .lock()
            .expect("not poisoned")
            .insert(id.clone(), max);
        Ok(max)
    }
}
