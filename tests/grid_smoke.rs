//! Smoke tests of the real-grid harness (`support::grid`): if these fail, every test that needs
//! Tahoe-LAFS will, so they pin down the harness itself and the few web API calls it relies on.

use std::ffi::OsStr;
use std::path::Path;

use crate::support::{http_client, shared_grid, Grid, GridSpec};

/// `PUT /uri` of `data`; returns the new file cap.
async fn put(web_url: &str, data: &[u8]) -> String {
    let response = http_client()
        .put(format!("{web_url}/uri"))
        .header("Accept", "text/plain")
        .body(data.to_vec())
        .send()
        .await
        .expect("PUT /uri did not reach the node");
    let status = response.status();
    let body = response.text().await.expect("PUT /uri body");
    // The body is a cap on success (a secret) or an error message; print it only on failure.
    assert!(status.is_success(), "PUT /uri answered {status}: {body}");
    body.trim().to_owned()
}

/// `GET /uri/<cap>`; returns the file's bytes.
async fn get(web_url: &str, cap: &str) -> Vec<u8> {
    let response = http_client()
        .get(format!("{web_url}/uri/{cap}"))
        .header("Accept", "text/plain")
        .send()
        .await
        .expect("GET /uri/<cap> did not reach the node");
    let status = response.status();
    let body = response.bytes().await.expect("GET /uri/<cap> body");
    assert!(
        status.is_success(),
        "GET /uri/<cap> answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    body.to_vec()
}

/// `POST /uri/<cap>?t=check&output=JSON`; returns the `results` object.
async fn check(web_url: &str, cap: &str) -> serde_json::Value {
    let response = http_client()
        .post(format!("{web_url}/uri/{cap}?t=check&output=JSON"))
        .header("Accept", "text/plain")
        .send()
        .await
        .expect("t=check did not reach the node");
    let status = response.status();
    let body = response.text().await.expect("t=check body");
    assert!(status.is_success(), "t=check answered {status}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("t=check JSON");
    json["results"].clone()
}

/// The cap's kind (`URI:CHK`, ...) without the secret part, for assertion messages.
fn cap_kind(cap: &str) -> String {
    cap.split(':').take(2).collect::<Vec<_>>().join(":")
}

/// Deterministic bytes that do not compress to nothing, so a mix-up shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Share files below a storage node's `shares` directory (uploads in progress excluded).
fn count_share_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name() != "incoming")
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                count_share_files(&path)
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test]
async fn shared_grid_stores_and_returns_a_file() {
    let grid = shared_grid();
    let url = grid.web_url();

    let data = pattern(100_000);
    let cap = put(url, &data).await;
    assert!(cap.starts_with("URI:CHK:"), "got a {}", cap_kind(&cap));
    let back = get(url, &cap).await;
    assert!(
        back == data,
        "downloaded {} bytes that differ from the {} uploaded",
        back.len(),
        data.len()
    );

    // Files of at most 55 bytes live inside the cap itself.
    let small = b"small enough to be a literal cap".to_vec();
    let lit = put(url, &small).await;
    assert!(lit.starts_with("URI:LIT:"), "got a {}", cap_kind(&lit));
    assert_eq!(get(url, &lit).await, small);
}

#[test]
fn shared_grid_serves_the_stock_cli() {
    let grid = shared_grid();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in.bin");
    let dst = tmp.path().join("out.bin");
    let data = pattern(5_000);
    std::fs::write(&src, &data).unwrap();

    grid.create_alias("smoke-cli");
    let cap = grid
        .alias_cap("smoke-cli")
        .expect("alias in private/aliases");
    assert!(
        cap.starts_with("URI:DIR2:"),
        "alias is a {}",
        cap_kind(&cap)
    );

    let put = grid.tahoe([
        OsStr::new("put"),
        src.as_os_str(),
        OsStr::new("smoke-cli:f.bin"),
    ]);
    assert!(
        put.status.success(),
        "tahoe put failed: {}",
        String::from_utf8_lossy(&put.stderr)
    );
    let got = grid.tahoe([
        OsStr::new("get"),
        OsStr::new("smoke-cli:f.bin"),
        dst.as_os_str(),
    ]);
    assert!(
        got.status.success(),
        "tahoe get failed: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(
        std::fs::read(&dst).unwrap() == data,
        "tahoe get returned other bytes"
    );
}

#[tokio::test]
async fn two_of_three_grid_survives_a_storage_node_restart() {
    let grid = Grid::start(GridSpec {
        storage_nodes: 3,
        needed: 2,
        happy: 3,
        total: 3,
    });
    let url = grid.web_url().to_owned();
    let grid_dir = grid.dir().to_path_buf();
    let ids: Vec<&str> = (0..3).map(|i| grid.server_id(i)).collect();
    assert!(
        ids.iter().all(|id| id.starts_with("v0-")),
        "server ids: {ids:?}"
    );

    let data = pattern(300_000);
    let cap = put(&url, &data).await;
    assert!(cap.starts_with("URI:CHK:"), "got a {}", cap_kind(&cap));
    // happy = total = number of servers: exactly one share on each.
    for i in 0..3 {
        assert_eq!(
            count_share_files(&grid.shares_dir(i)),
            1,
            "shares on storage{i}"
        );
    }
    let healthy = check(&url, &cap).await;
    assert_eq!(healthy["healthy"], true);
    assert_eq!(healthy["count-shares-good"], 3);

    grid.stop_node(2);
    assert!(!grid.is_running(2));
    assert!(get(&url, &cap).await == data, "2 of 3 shares must suffice");
    let degraded = check(&url, &cap).await;
    assert_eq!(degraded["healthy"], false);
    assert_eq!(degraded["count-shares-good"], 2);

    grid.start_node(2);
    assert!(grid.is_running(2));
    assert_eq!(check(&url, &cap).await["count-shares-good"], 3);

    let pids = grid.node_pids();
    assert_eq!(pids.len(), 4, "introducer and three storage nodes");
    drop(grid);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "node process {pid} outlived its grid"
        );
    }
    assert!(!grid_dir.exists(), "grid directory left behind");
}
