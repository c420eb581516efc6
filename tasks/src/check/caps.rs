//! What the check task reads from a capability string without asking the node: whether it has
//! shares at all (LIT caps hold their data inline), whether it is mutable, the erasure coding
//! and size written into CHK caps, and the CHK file underneath an immutable directory.
//!
//! Everything here returns kinds and numbers, never the secret parts of a cap.

use sha2::{Digest, Sha256};
use tahoe_jobs_engine::limits::expansion::Coding;

use crate::tahoe::Cap;

/// How the grid stores an object, as far as checking and repairing it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `URI:LIT`, `URI:DIR2-LIT`: the data is in the cap; nothing to check.
    Literal,
    /// `URI:CHK`, `URI:DIR2-CHK`: immutable shares, re-uploadable from their plaintext.
    Immutable,
    /// SDMF/MDMF files and mutable directories.
    Mutable,
    /// A kind this version does not know (a future Tahoe's).
    Unknown,
}

/// The storage of the object named by `cap`.
pub fn storage_of(cap: &Cap) -> Storage {
    match cap.kind() {
        "URI:LIT" | "URI:DIR2-LIT" => Storage::Literal,
        "URI:CHK" | "URI:DIR2-CHK" => Storage::Immutable,
        "URI:SSK" | "URI:SSK-RO" | "URI:MDMF" | "URI:MDMF-RO" | "URI:DIR2" | "URI:DIR2-RO"
        | "URI:DIR2-MDMF" | "URI:DIR2-MDMF-RO" => Storage::Mutable,
        _ => Storage::Unknown,
    }
}

/// True unless `cap` is a read-only cap of a mutable object (which Tahoe cannot repair).
pub fn repairable_with(cap: &Cap) -> bool {
    !(storage_of(cap) == Storage::Mutable && cap.kind().ends_with("-RO"))
}

/// The fields of a CHK cap (`URI:CHK:key:ueb:k:N:size`, or the same after `URI:DIR2-CHK:`) that
/// are not secret: coding and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChkParams {
    /// The erasure coding: k shares needed of N.
    pub coding: Coding,
    /// The size of the file (for a DIR2-CHK cap, of the directory's contents), in bytes.
    pub size: u64,
}

/// Coding and size of a CHK or DIR2-CHK cap; `None` for other kinds or a malformed cap.
pub fn chk_params(cap: &Cap) -> Option<ChkParams> {
    if storage_of(cap) != Storage::Immutable {
        return None;
    }
    let fields: Vec<&str> = cap.expose().rsplitn(4, ':').collect();
    // rsplitn yields size, N, k, then the rest.
    let size = fields.first()?.parse().ok()?;
    let total = fields.get(1)?.parse().ok()?;
    let needed = fields.get(2)?.parse().ok()?;
    Some(ChkParams {
        coding: Coding::new(needed, total)?,
        size,
    })
}

/// The CHK file cap that holds an immutable object's bytes: the cap itself for a file, and for
/// an immutable directory the same fields under `URI:CHK:` (a DIR2-CHK cap wraps a CHK cap).
/// Downloading it gives the bytes the node would upload again to the same storage index.
pub fn underlying_chk(cap: &Cap) -> Option<Cap> {
    let s = cap.expose();
    match cap.kind() {
        "URI:CHK" => Some(cap.clone()),
        "URI:DIR2-CHK" => s
            .strip_prefix("URI:DIR2-CHK:")
            .map(|rest| Cap::new(format!("URI:CHK:{rest}"))),
        _ => None,
    }
}

/// The key under which the task remembers an object: its verify cap when the node gave one
/// (one per object, whichever path or cap led to it), else a digest of its cap (literal
/// objects, which have no verify cap, and answers from older nodes).
pub fn object_key(verify_cap: Option<&str>, cap: &Cap) -> String {
    match verify_cap {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => {
            let digest = Sha256::digest(cap.expose().as_bytes());
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256:{hex}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHK: &str = "URI:CHK:z25un5jsqav24vaig4abzk6gea:cko5yoqbsdnsxwljzhijcgimjxxhv4vs7sdtcgzurnzolbzmv5sq:2:3:200000";

    #[test]
    fn kinds() {
        assert_eq!(storage_of(&Cap::new("URI:LIT:nbuq")), Storage::Literal);
        assert_eq!(storage_of(&Cap::new("URI:DIR2-LIT:")), Storage::Literal);
        assert_eq!(storage_of(&Cap::new(CHK)), Storage::Immutable);
        assert_eq!(storage_of(&Cap::new("URI:DIR2:a:b")), Storage::Mutable);
        assert_eq!(storage_of(&Cap::new("URI:DIR2-RO:a:b")), Storage::Mutable);
        assert_eq!(storage_of(&Cap::new("URI:MDMF:a:b")), Storage::Mutable);
        assert_eq!(storage_of(&Cap::new("URI:NEW:a")), Storage::Unknown);
        assert!(repairable_with(&Cap::new("URI:DIR2:a:b")));
        assert!(repairable_with(&Cap::new(CHK)));
        assert!(!repairable_with(&Cap::new("URI:DIR2-RO:a:b")));
        assert!(!repairable_with(&Cap::new("URI:SSK-RO:a:b")));
    }

    #[test]
    fn chk_fields_and_underlying_file() {
        let p = chk_params(&Cap::new(CHK)).unwrap();
        assert_eq!((p.coding.needed, p.coding.total, p.size), (2, 3, 200000));
        let dir = Cap::new(CHK.replacen("URI:CHK:", "URI:DIR2-CHK:", 1));
        assert_eq!(chk_params(&dir), Some(p));
        assert_eq!(underlying_chk(&dir).unwrap().expose(), CHK);
        assert_eq!(underlying_chk(&Cap::new(CHK)).unwrap().expose(), CHK);
        assert_eq!(underlying_chk(&Cap::new("URI:DIR2:a:b")), None);
        assert_eq!(chk_params(&Cap::new("URI:CHK:a:b:x:3:10")), None);
        assert_eq!(chk_params(&Cap::new("URI:CHK:a:b:4:3:10")), None);
        assert_eq!(chk_params(&Cap::new("URI:DIR2:a:b")), None);
    }

    #[test]
    fn keys_prefer_the_verify_cap_and_never_hold_the_read_cap() {
        let cap = Cap::new("URI:LIT:secretbytes");
        assert_eq!(
            object_key(Some("URI:CHK-Verifier:x"), &cap),
            "URI:CHK-Verifier:x"
        );
        let k = object_key(None, &cap);
        assert!(k.starts_with("sha256:") && !k.contains("secret"), "{k}");
        assert_eq!(k, object_key(Some(""), &cap));
    }
}
