//! How many bytes reach the wire, and each destination, when a task feeds `plaintext` bytes into
//! an erasure-coded store that splits data into `total` shares of which any `needed` rebuild it.
//!
//! Each share is about plaintext / needed bytes, so the wire carries plaintext x total / needed,
//! and a destination holding m shares receives m / needed of the plaintext. (For Tahoe-LAFS:
//! needed = k = `shares.needed`, total = N = `shares.total`, a destination is a storage server,
//! and the share map comes from a check's sharemap.) The per-share overhead (under 1% for files
//! over a megabyte) is ignored.

use std::collections::BTreeMap;

/// Erasure-coding parameters: any `needed` of `total` shares rebuild the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coding {
    /// Shares needed to rebuild the data (Tahoe's k).
    pub needed: u32,
    /// Shares written (Tahoe's N).
    pub total: u32,
}

impl Coding {
    /// `needed` of `total`; `None` unless 1 <= needed <= total.
    pub fn new(needed: u32, total: u32) -> Option<Coding> {
        (needed >= 1 && needed <= total).then_some(Coding { needed, total })
    }
}

/// Bytes on the wire for `plaintext` bytes fed in, rounded up.
pub fn wire_bytes(plaintext: u64, coding: Coding) -> u64 {
    scale(plaintext, coding.total, coding.needed)
}

/// Bytes a destination holding `shares` shares receives, rounded up.
pub fn destination_bytes(plaintext: u64, coding: Coding, shares: u32) -> u64 {
    scale(plaintext, shares, coding.needed)
}

/// Shares assumed per destination when the placement is unknown: ceil(total / destinations),
/// at most `total`. Shares are spread as evenly as the store can, so this is what the busiest
/// destination gets; per-destination limits therefore err on the safe side.
pub fn assumed_shares(coding: Coding, destinations: usize) -> u32 {
    if destinations == 0 {
        return coding.total;
    }
    let d = u32::try_from(destinations).unwrap_or(u32::MAX);
    coding.total.div_ceil(d).min(coding.total)
}

/// Per-destination byte estimates from a known share map (destination -> shares held).
/// Destinations holding no share are left out.
pub fn from_share_map(
    plaintext: u64,
    coding: Coding,
    shares: &BTreeMap<String, u32>,
) -> Vec<(String, u64)> {
    shares
        .iter()
        .filter(|(_, m)| **m > 0)
        .map(|(d, m)| (d.clone(), destination_bytes(plaintext, coding, *m)))
        .collect()
}

/// Per-destination byte estimates when only the set of destinations is known:
/// [`assumed_shares`] each.
pub fn spread_evenly(
    plaintext: u64,
    coding: Coding,
    destinations: &[String],
) -> Vec<(String, u64)> {
    let m = assumed_shares(coding, destinations.len());
    destinations
        .iter()
        .map(|d| (d.clone(), destination_bytes(plaintext, coding, m)))
        .collect()
}

fn scale(bytes: u64, num: u32, den: u32) -> u64 {
    let den = u128::from(den.max(1));
    let v = (u128::from(bytes) * u128::from(num)).div_ceil(den);
    u64::try_from(v).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(k: u32, n: u32) -> Coding {
        Coding::new(k, n).unwrap()
    }

    #[test]
    fn wire_bytes_follow_total_over_needed() {
        assert_eq!(wire_bytes(3_000_000, c(3, 10)), 10_000_000);
        assert_eq!(wire_bytes(1, c(3, 10)), 4, "rounded up");
        assert_eq!(wire_bytes(1_000, c(1, 1)), 1_000);
        assert_eq!(wire_bytes(u64::MAX, c(1, 10)), u64::MAX, "saturates");
    }

    #[test]
    fn a_destination_gets_m_over_needed() {
        // 3-of-10, a server holding 2 shares of a 3 MB file receives 2 MB.
        assert_eq!(destination_bytes(3_000_000, c(3, 10), 2), 2_000_000);
        // 1-of-2: each server holds one whole copy (the recipe's measured 3,000,000 -> ~3,008,818).
        assert_eq!(destination_bytes(3_000_000, c(1, 2), 1), 3_000_000);
    }

    #[test]
    fn assumed_shares_is_ceil_total_over_destinations() {
        assert_eq!(assumed_shares(c(3, 10), 4), 3);
        assert_eq!(assumed_shares(c(3, 10), 10), 1);
        assert_eq!(assumed_shares(c(3, 10), 25), 1);
        assert_eq!(assumed_shares(c(3, 10), 1), 10);
        assert_eq!(assumed_shares(c(3, 10), 0), 10);
    }

    #[test]
    fn share_map_and_even_spread() {
        let map: BTreeMap<String, u32> = [("a", 4), ("b", 3), ("c", 3), ("d", 0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let est = from_share_map(300, c(3, 10), &map);
        assert_eq!(
            est,
            vec![("a".into(), 400), ("b".into(), 300), ("c".into(), 300)]
        );
        let total: u64 = est.iter().map(|(_, b)| b).sum();
        assert_eq!(total, wire_bytes(300, c(3, 10)));

        let dests: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let est = spread_evenly(300, c(3, 10), &dests);
        assert!(est.iter().all(|(_, b)| *b == 300), "{est:?}");
    }

    #[test]
    fn coding_rejects_nonsense() {
        assert!(Coding::new(0, 10).is_none());
        assert!(Coding::new(11, 10).is_none());
        assert!(Coding::new(10, 10).is_some());
    }
}
