//! What a grid's client node holds and counts, read through the stock `tahoe` CLI and the web
//! API: directory listings, the cap `Latest` links to, restores with `tahoe cp -r`, GETs below
//! a cap, and the node's statistics counters.
//!
//! Listings and caps are secrets: the helpers compare and return them, never print them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::grid::{http_client, Grid};
use super::process::{lossy_text, runtime, unique_name};

/// Restores `target/Latest` (`alias:` or `alias:path`) with stock `tahoe cp -r` into a fresh
/// directory below `into`; returns the restored tree's root.
pub fn restore(grid: &Grid, target: &str, into: &Path) -> PathBuf {
    let out_dir = into.join(format!("restored-{}", unique_name()));
    let latest = if target.ends_with(':') {
        format!("{target}Latest")
    } else {
        format!("{target}/Latest")
    };
    let out = grid.tahoe([
        OsStr::new("cp"),
        OsStr::new("-r"),
        OsStr::new(&latest),
        out_dir.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "tahoe cp -r failed: {}",
        lossy_text(&out.stderr)
    );
    // `tahoe cp -r DIR OUT` copies DIR into OUT under DIR's own name.
    out_dir.join("Latest")
}

/// `tahoe ls --json TARGET`: the node's JSON for a directory. Holds caps: never print it.
pub fn ls_json(grid: &Grid, target: &str) -> serde_json::Value {
    let out = grid.tahoe(["ls", "--json", target]);
    assert!(
        out.status.success(),
        "tahoe ls: {}",
        lossy_text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("tahoe ls --json")
}

/// The capability `target/Latest` links to, if any (a secret: compare it, never print it).
pub fn latest_cap(grid: &Grid, target: &str) -> Option<String> {
    let out = grid.tahoe(["ls", "--json", target]);
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v[1]["children"]["Latest"][1]["ro_uri"]
        .as_str()
        .map(str::to_owned)
}

/// GETs `/uri/<cap>` + `suffix` from the web API at `web_url`; the body, or the status.
pub fn get_below_cap(web_url: &str, cap: &str, suffix: &str) -> Result<Vec<u8>, u16> {
    let url = format!("{web_url}/uri/{}{suffix}", cap.replace(':', "%3A"));
    runtime().block_on(async {
        let resp = http_client().get(url).send().await.expect("GET");
        if !resp.status().is_success() {
            return Err(resp.status().as_u16());
        }
        Ok(resp.bytes().await.expect("body").to_vec())
    })
}

/// One counter of the client node's `/statistics` (0 while it has not counted anything),
/// e.g. `uploader.files_uploaded` or `storage_server.get`.
pub fn node_counter(grid: &Grid, name: &str) -> u64 {
    let url = format!("{}/statistics?t=json", grid.web_url());
    let stats: serde_json::Value = runtime().block_on(async {
        http_client()
            .get(url)
            .send()
            .await
            .expect("statistics")
            .json()
            .await
            .expect("statistics JSON")
    });
    stats["counters"][name].as_u64().unwrap_or(0)
}
