//! Where the shares of an upload go, as pure functions (`storage_client.py`
//! `get_servers_for_psi`, `immutable/happiness_upload.py`, `util/happinessutil.py`):
//!
//! - servers are tried in the file's *permuted order*: sorted by
//!   `sha1(storage index + server's permutation seed)`, so each file spreads differently and
//!   every client agrees where a file's shares should be;
//! - *happiness* is the size of a maximum matching between servers and shares: the number of
//!   distinct servers that can each be credited with a distinct share. An upload succeeds only
//!   when it reaches `shares.happy`;
//! - placement keeps shares where they already are (their leases get renewed), gives each server
//!   without one a new share, and spreads what is left over the least loaded writable servers.

use std::collections::{BTreeMap, BTreeSet};

use sha1::{Digest, Sha1};

/// One candidate server as seen by the placement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    /// It has room for a share of this file (and answered).
    pub writable: bool,
    /// Shares of this file it already holds.
    pub holds: BTreeSet<u16>,
}

/// Indices of `seeds` in the permuted order for `storage_index`.
pub fn permuted_order(storage_index: &[u8; 16], seeds: &[&[u8]]) -> Vec<usize> {
    let mut keyed: Vec<([u8; 20], usize)> = seeds
        .iter()
        .enumerate()
        .map(|(i, seed)| {
            let mut hasher = Sha1::new();
            hasher.update(storage_index);
            hasher.update(seed);
            (hasher.finalize().into(), i)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// Servers of happiness of a map from server to the shares it holds or will hold: the size of a
/// maximum matching between servers and share numbers.
pub fn servers_of_happiness<S: Ord + Clone>(placement: &BTreeMap<S, BTreeSet<u16>>) -> usize {
    let servers: Vec<&BTreeSet<u16>> = placement.values().collect();
    // share -> index of the server it is matched to
    let mut matched: BTreeMap<u16, usize> = BTreeMap::new();
    let mut happiness = 0;
    for server in 0..servers.len() {
        let mut seen = BTreeSet::new();
        if augment(server, &servers, &mut matched, &mut seen) {
            happiness += 1;
        }
    }
    happiness
}

/// Kuhn's augmenting path from `server`.
fn augment(
    server: usize,
    servers: &[&BTreeSet<u16>],
    matched: &mut BTreeMap<u16, usize>,
    seen: &mut BTreeSet<u16>,
) -> bool {
    for &share in servers[server] {
        if !seen.insert(share) {
            continue;
        }
        let free = match matched.get(&share) {
            None => true,
            Some(&other) => augment(other, servers, matched, seen),
        };
        if free {
            matched.insert(share, server);
            return true;
        }
    }
    false
}

/// The shares to ask each candidate (by index, `candidates` in permuted order) to hold: the
/// existing shares of a maximum matching stay where they are, each writable server holding
/// nothing gets one of the shares still homeless, and the rest go to the writable servers with
/// the fewest shares (a server already holding one of them renews it). Shares with no writable
/// server at all stay out of the answer.
pub fn place_shares(total: u16, candidates: &[Candidate]) -> BTreeMap<usize, BTreeSet<u16>> {
    let mut placement: BTreeMap<usize, BTreeSet<u16>> = BTreeMap::new();
    // 1. A maximum matching over what already exists keeps the most servers happy for free.
    let existing: BTreeMap<usize, BTreeSet<u16>> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.holds.is_empty())
        .map(|(i, c)| (i, c.holds.iter().copied().filter(|&s| s < total).collect()))
        .collect();
    let mut homeless: BTreeSet<u16> = (0..total).collect();
    for (server, share) in maximum_matching(&existing) {
        placement.entry(server).or_default().insert(share);
        homeless.remove(&share);
    }
    // 2. One new share for each writable server not used yet, in permuted order.
    for (i, candidate) in candidates.iter().enumerate() {
        if !candidate.writable || placement.contains_key(&i) {
            continue;
        }
        let Some(share) = homeless.pop_first() else {
            break;
        };
        placement.entry(i).or_default().insert(share);
    }
    // 3. The rest: renew where a copy exists, else the least loaded writable server.
    let writable: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].writable)
        .collect();
    for share in homeless {
        if let Some(holder) = writable
            .iter()
            .find(|&&i| candidates[i].holds.contains(&share))
        {
            placement.entry(*holder).or_default().insert(share);
            continue;
        }
        let least = writable
            .iter()
            .min_by_key(|&&i| placement.get(&i).map_or(0, BTreeSet::len));
        if let Some(&server) = least {
            placement.entry(server).or_default().insert(share);
        }
    }
    placement
}

/// A maximum matching as `(server, share)` pairs, servers tried in index order.
fn maximum_matching(placement: &BTreeMap<usize, BTreeSet<u16>>) -> Vec<(usize, u16)> {
    let keys: Vec<usize> = placement.keys().copied().collect();
    let servers: Vec<&BTreeSet<u16>> = placement.values().collect();
    let mut matched: BTreeMap<u16, usize> = BTreeMap::new();
    for server in 0..servers.len() {
        augment(server, &servers, &mut matched, &mut BTreeSet::new());
    }
    matched
        .into_iter()
        .map(|(share, server)| (keys[server], share))
        .collect()
}

/// Tahoe's explanation of an unhappy placement (`happinessutil.failure_message`).
pub fn failure_message(peer_count: usize, needed: u16, happy: usize, effective: usize) -> String {
    let k = usize::from(needed);
    if peer_count < k {
        format!(
            "shares could be placed or found on only {peer_count} server(s). We were asked to \
             place shares on at least {happy} server(s) such that any {k} of them have enough \
             shares to recover the file."
        )
    } else if effective < k {
        format!(
            "shares could be placed or found on {peer_count} server(s), but they are not spread \
             out evenly enough to ensure that any {k} of these servers would have enough shares \
             to recover the file. We were asked to place shares on at least {happy} servers such \
             that any {k} of them have enough shares to recover the file."
        )
    } else {
        format!(
            "shares could be placed on only {effective} server(s) such that any {k} of them have \
             enough shares to recover the file, but we were asked to place shares on at least \
             {happy} such servers."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(shares: &[u16]) -> BTreeSet<u16> {
        shares.iter().copied().collect()
    }

    fn writable(holds: &[u16]) -> Candidate {
        Candidate {
            writable: true,
            holds: set(holds),
        }
    }

    #[test]
    fn permuted_order_sorts_by_sha1_of_index_and_seed() {
        let si = [0u8; 16];
        let seeds: [&[u8]; 3] = [b"a", b"b", b"c"];
        let order = permuted_order(&si, &seeds);
        let digest = |s: &[u8]| -> [u8; 20] {
            let mut h = Sha1::new();
            h.update(si);
            h.update(s);
            h.finalize().into()
        };
        for pair in order.windows(2) {
            assert!(digest(seeds[pair[0]]) < digest(seeds[pair[1]]));
        }
        // hashlib.sha1(bytes(16) + s) for a, b, c: 35b65f..., 19e199..., 0f4431...
        assert_eq!(order, vec![2, 1, 0]);
    }

    #[test]
    fn happiness_is_a_maximum_matching() {
        let map = |entries: &[(u8, &[u16])]| -> BTreeMap<u8, BTreeSet<u16>> {
            entries.iter().map(|(s, sh)| (*s, set(sh))).collect()
        };
        assert_eq!(servers_of_happiness(&map(&[])), 0);
        // Two servers holding the same single share: happiness 1.
        assert_eq!(servers_of_happiness(&map(&[(1, &[0]), (2, &[0])])), 1);
        // A greedy match of server 1 to share 0 would block server 2; augmenting fixes it.
        assert_eq!(servers_of_happiness(&map(&[(1, &[0, 1]), (2, &[0])])), 2);
        assert_eq!(
            servers_of_happiness(&map(&[(1, &[0, 1, 2]), (2, &[3]), (3, &[4])])),
            3
        );
    }

    #[test]
    fn fresh_upload_spreads_one_share_per_server_then_round_robins() {
        let candidates = vec![writable(&[]), writable(&[]), writable(&[])];
        let placement = place_shares(5, &candidates);
        let counts: Vec<usize> = placement.values().map(BTreeSet::len).collect();
        assert_eq!(counts.iter().sum::<usize>(), 5);
        assert!(counts.iter().all(|&c| c == 1 || c == 2), "{placement:?}");
        assert_eq!(servers_of_happiness(&placement), 3);
    }

    #[test]
    fn existing_shares_stay_and_count() {
        // Server 0 holds shares 0 and 1, server 1 is read-only with share 2.
        let candidates = vec![
            writable(&[0, 1]),
            Candidate {
                writable: false,
                holds: set(&[2]),
            },
            writable(&[]),
        ];
        let placement = place_shares(4, &candidates);
        assert!(placement[&0].contains(&0) || placement[&0].contains(&1));
        assert_eq!(placement[&1], set(&[2]));
        assert!(!placement[&2].is_empty());
        let all: BTreeSet<u16> = placement.values().flatten().copied().collect();
        assert_eq!(all, set(&[0, 1, 2, 3]));
    }

    #[test]
    fn no_writable_server_places_nothing_new() {
        let candidates = vec![Candidate::default(), Candidate::default()];
        assert!(place_shares(3, &candidates).is_empty());
    }

    #[test]
    fn failure_messages_follow_tahoe() {
        assert!(
            failure_message(1, 3, 5, 1).starts_with("shares could be placed or found on only 1")
        );
        assert!(failure_message(4, 3, 5, 2).contains("not spread out evenly"));
        assert!(failure_message(4, 3, 5, 4).contains("on only 4 server(s) such that"));
    }
}
