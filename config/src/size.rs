//! Sizes in bytes (`64MiB`, `512 KiB`, `1GB`): `[jobs] cache_size`.

/// `[jobs] cache_size` when none is given: the most the state store's page cache may hold.
/// Measured (docs/benchmarks.md, "The daemon", C1 and "Memory"): a first backup of 100,000
/// files peaked at 95 MB with 16 MiB, 114-115 MB with 64 or 256 MiB, and took no longer (each
/// record is read about once a run, so a bigger cache buys no speed); a directory of 100,000
/// files at 72-77 MB with 4 MiB against 93-97 MB with 16 MiB, with the same CPU time and wall
/// time for an unchanged re-run of 10,000 files.
pub const DEFAULT_CACHE_SIZE: u64 = 4 * 1024 * 1024;
/// The smallest cache accepted: sled needs some room to work at all.
pub const MIN_CACHE_SIZE: u64 = 1024 * 1024;
/// The largest cache accepted.
pub const MAX_CACHE_SIZE: u64 = 64 * 1024 * 1024 * 1024;
/// What `[jobs] cache_size` accepts, for error messages.
pub const CACHE_SIZE_ACCEPTED: &str =
    "a size from 1MiB to 64GiB, such as 16MiB or 512MB: the most memory the state store caches";

const UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("KB", 1_000),
    ("kB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("", 1),
];

/// Parses a byte size: a whole number with an optional unit (B, kB/KB, MB, GB, KiB, MiB, GiB).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of bytes with a unit"))?;
    let factor = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, f)| *f)
        .ok_or_else(|| format!("{unit:?} is not a unit (B, kB, MB, GB, KiB, MiB or GiB)"))?;
    n.checked_mul(factor)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses `[jobs] cache_size`: a size within [`MIN_CACHE_SIZE`] and [`MAX_CACHE_SIZE`].
pub fn parse_cache_size(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n < MIN_CACHE_SIZE {
        return Err(format!("{s} is below 1MiB, too little for the state store"));
    }
    if n > MAX_CACHE_SIZE {
        return Err(format!("{s} is above 64GiB"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_and_without_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size(" 512 KiB "), Ok(512 << 10));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("1.5MiB").unwrap_err().contains("not a unit"));
        assert!(parse_size("lots")
            .unwrap_err()
            .contains("not a whole number"));
        assert!(parse_size("64 parsecs").unwrap_err().contains("not a unit"));
        assert!(parse_size("99999999999GiB")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn cache_sizes_are_bounded() {
        assert_eq!(parse_cache_size("4MiB"), Ok(DEFAULT_CACHE_SIZE));
        assert!(parse_cache_size("1KiB").unwrap_err().contains("below 1MiB"));
        assert!(parse_cache_size("65GiB")
            .unwrap_err()
            .contains("above 64GiB"));
    }
}
