//! What the storage nodes of a test grid hold on disk for one file: the share data by server
//! (to compare with what an uploader sent or a budget was charged) and unfinished shares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tahoe_jobs_lafs::base32;
use tahoe_jobs_lafs::cap::{Capability, StorageIndex};

use super::Grid;

/// Files below `dir`, at any depth (none when it does not exist).
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                files_below(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// The share data each storage node of `grid` holds for the storage index of `cap` (a CHK
/// file or directory cap), by server id, leaving out nodes that hold none: each share file
/// less its 12-byte container header and its 72-byte leases (`storage/immutable.py`).
pub fn stored_share_bytes(grid: &Grid, cap: &str) -> BTreeMap<String, u64> {
    let si = Capability::parse(cap)
        .expect("a capability")
        .storage_index()
        .expect("a cap with a storage index");
    let si = base32::encode(&si.0);
    (0..grid.storage_nodes())
        .map(|i| {
            let dir = grid.shares_dir(i).join(&si[..2]).join(&si);
            let bytes = files_below(&dir)
                .iter()
                .map(|path| {
                    let file = std::fs::read(path).unwrap();
                    let leases = u32::from_be_bytes(file[8..12].try_into().unwrap()) as u64;
                    file.len() as u64 - 12 - 72 * leases
                })
                .sum();
            (grid.server_id(i).to_string(), bytes)
        })
        .filter(|(_, bytes)| *bytes > 0)
        .collect()
}

/// How many shares of `si` the storage nodes hold unfinished (`shares/incoming/...`).
pub fn incoming_shares(grid: &Grid, si: &StorageIndex) -> usize {
    let si = base32::encode(&si.0);
    (0..grid.storage_nodes())
        .map(|i| {
            let dir = grid.shares_dir(i).join("incoming").join(&si[..2]).join(&si);
            files_below(&dir).len()
        })
        .sum()
}
