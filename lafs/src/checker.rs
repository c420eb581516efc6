//! The verdict on an immutable object from its share listings, computed as Tahoe's own checker
//! does without `verify` (`allmydata/immutable/checker.py: Checker._format_results`,
//! `util/happinessutil.py: servers_of_happiness`): it believes what each server says it holds.
//!
//! - healthy: all N distinct shares found; recoverable: at least k;
//! - good share hosts: servers holding at least one share;
//! - happiness: the size of a maximum matching of servers to distinct shares;
//! - a server that did not answer counts as holding nothing and is not "responding".

use std::collections::{BTreeMap, BTreeSet};

use crate::cap::ChkParams;

/// What one server said (or that it did not answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerListing {
    /// Its server id (`v0-...`).
    pub server_id: String,
    /// The share numbers it holds; `None` when it did not answer.
    pub shares: Option<BTreeSet<u16>>,
}

/// The checker's results for one immutable object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmutableCheck {
    /// All N shares are there.
    pub healthy: bool,
    /// At least k shares are there.
    pub recoverable: bool,
    /// Servers-of-happiness of the placement found.
    pub count_happiness: u64,
    /// Distinct shares found.
    pub count_shares_good: u64,
    /// k.
    pub count_shares_needed: u64,
    /// N.
    pub count_shares_expected: u64,
    /// Servers holding at least one share.
    pub count_good_share_hosts: u64,
    /// Ids of the servers that answered, sorted.
    pub servers_responding: Vec<String>,
    /// Share number to the servers holding it.
    pub sharemap: BTreeMap<u16, BTreeSet<String>>,
    /// Tahoe's summary: `Healthy` or `Not Healthy: 2 shares (enc 3-of-10)`.
    pub summary: String,
}

/// The results Tahoe's checker gives for an object coded as `params` with these listings.
/// Share numbers at or above N (which a sane server never has) are ignored, where Tahoe would
/// stop on an assertion.
pub fn immutable_check(params: ChkParams, listings: &[ServerListing]) -> ImmutableCheck {
    let mut sharemap: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    let mut good_hosts = BTreeSet::new();
    let mut responding = BTreeSet::new();
    for listing in listings {
        let Some(shares) = &listing.shares else {
            continue;
        };
        responding.insert(listing.server_id.clone());
        for &share in shares.iter().filter(|&&s| s < params.total) {
            sharemap
                .entry(share)
                .or_default()
                .insert(listing.server_id.clone());
            good_hosts.insert(listing.server_id.clone());
        }
    }
    let good = sharemap.len() as u64;
    let healthy = good == u64::from(params.total);
    let summary = if healthy {
        "Healthy".to_string()
    } else {
        format!(
            "Not Healthy: {good} shares (enc {}-of-{})",
            params.needed, params.total
        )
    };
    ImmutableCheck {
        healthy,
        recoverable: good >= u64::from(params.needed),
        count_happiness: servers_of_happiness(&sharemap),
        count_shares_good: good,
        count_shares_needed: params.needed.into(),
        count_shares_expected: params.total.into(),
        count_good_share_hosts: good_hosts.len() as u64,
        servers_responding: responding.into_iter().collect(),
        sharemap,
        summary,
    }
}

/// The size of a maximum matching between shares and the servers holding them (each server
/// counts for one share at most), by augmenting paths.
pub fn servers_of_happiness(sharemap: &BTreeMap<u16, BTreeSet<String>>) -> u64 {
    let shares: Vec<Vec<&str>> = sharemap
        .values()
        .map(|servers| servers.iter().map(String::as_str).collect())
        .collect();
    let mut owner: BTreeMap<&str, usize> = BTreeMap::new();
    let mut matched = 0;
    for share in 0..shares.len() {
        let mut seen = BTreeSet::new();
        if augment(share, &shares, &mut owner, &mut seen) {
            matched += 1;
        }
    }
    matched
}

fn augment<'a>(
    share: usize,
    shares: &[Vec<&'a str>],
    owner: &mut BTreeMap<&'a str, usize>,
    seen: &mut BTreeSet<&'a str>,
) -> bool {
    for &server in &shares[share] {
        if !seen.insert(server) {
            continue;
        }
        let free = match owner.get(server) {
            None => true,
            Some(&other) => augment(other, shares, owner, seen),
        };
        if free {
            owner.insert(server, share);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(id: &str, shares: &[u16]) -> ServerListing {
        ServerListing {
            server_id: id.into(),
            shares: Some(shares.iter().copied().collect()),
        }
    }

    fn map(entries: &[(u16, &[&str])]) -> BTreeMap<u16, BTreeSet<String>> {
        entries
            .iter()
            .map(|(s, ids)| (*s, ids.iter().map(|i| i.to_string()).collect()))
            .collect()
    }

    #[test]
    fn happiness_equals_tahoes() {
        // Known answers from Tahoe 1.20's allmydata.util.happinessutil.servers_of_happiness,
        // e.g. servers_of_happiness({0: {"a"}, 1: {"a"}, 2: {"b"}}) == 2.
        assert_eq!(servers_of_happiness(&map(&[])), 0);
        assert_eq!(
            servers_of_happiness(&map(&[(0, &["a"]), (1, &["a"]), (2, &["b"])])),
            2
        );
        assert_eq!(
            servers_of_happiness(&map(&[(0, &["a", "b"]), (1, &["a"]), (2, &["b", "c"])])),
            3
        );
        assert_eq!(servers_of_happiness(&map(&[(0, &["a", "b", "c"])])), 1);
        assert_eq!(
            servers_of_happiness(&map(&[
                (0, &["a"]),
                (1, &["a", "b"]),
                (2, &["b"]),
                (3, &["c"])
            ])),
            3
        );
    }

    #[test]
    fn verdicts_follow_the_checker() {
        let p = ChkParams {
            needed: 2,
            total: 3,
            size: 1000,
        };
        let all = immutable_check(p, &[listing("a", &[0, 1]), listing("b", &[2])]);
        assert!(all.healthy && all.recoverable);
        assert_eq!((all.count_happiness, all.count_good_share_hosts), (2, 2));
        assert_eq!(all.summary, "Healthy");

        let down = ServerListing {
            server_id: "b".into(),
            shares: None,
        };
        let two = immutable_check(p, &[listing("a", &[0, 1]), down, listing("c", &[])]);
        assert!(!two.healthy && two.recoverable);
        assert_eq!(two.summary, "Not Healthy: 2 shares (enc 2-of-3)");
        assert_eq!(two.servers_responding, ["a", "c"]);
        assert_eq!(two.count_good_share_hosts, 1);

        let extra = immutable_check(p, &[listing("a", &[0]), listing("b", &[0, 1, 2, 9])]);
        assert!(extra.healthy);
        assert_eq!(extra.count_shares_good, 3);
        assert_eq!(extra.sharemap[&0].len(), 2);
        assert_eq!(extra.count_happiness, 2);

        let none = immutable_check(p, &[listing("a", &[1])]);
        assert!(!none.recoverable);
    }
}
