//! The `lafs` crate's storage-protocol client against a real Tahoe-LAFS 1.20 grid: it finds the
//! servers where the node does (its introducer cache), trusts only their SPKI pins, and agrees
//! with the node on storage indexes, share listings and leases.

use std::process::Command;

use base64::Engine;
use tahoe_jobs_lafs::cap::Capability;
use tahoe_jobs_lafs::discovery::{load_servers, ServerInfo};
use tahoe_jobs_lafs::lease::ClientLeaseSecrets;
use tahoe_jobs_lafs::storage::{LeaseOutcome, StorageClient, StorageError, Timeouts};

use crate::support::{grid::tahoe_bin, http_client, shared_grid};

/// `PUT /uri` of `data` through the node; the cap (a secret: never printed).
async fn put(web_url: &str, data: Vec<u8>) -> String {
    let response = http_client()
        .put(format!("{web_url}/uri"))
        .header("Accept", "text/plain")
        .body(data)
        .send()
        .await
        .expect("PUT /uri did not reach the node");
    assert!(
        response.status().is_success(),
        "PUT /uri: {}",
        response.status()
    );
    response.text().await.unwrap().trim().to_string()
}

/// The node's `t=check` JSON for `cap`.
async fn node_check(web_url: &str, cap: &str) -> serde_json::Value {
    let response = http_client()
        .post(format!("{web_url}/uri/{cap}?t=check&output=JSON"))
        .send()
        .await
        .expect("t=check did not reach the node");
    assert!(
        response.status().is_success(),
        "t=check: {}",
        response.status()
    );
    response.json().await.unwrap()
}

fn the_server() -> ServerInfo {
    let grid = shared_grid();
    let servers = load_servers(grid.node_dir()).expect("the node's server files");
    assert_eq!(servers.len(), 1, "one storage server in the 1-of-1 grid");
    let server = servers.into_iter().next().unwrap();
    assert_eq!(server.server_id, grid.server_id(0));
    assert!(
        !server.nurls.is_empty(),
        "Tahoe 1.20 announces a NURL by default"
    );
    server
}

fn client(server: &ServerInfo) -> StorageClient {
    StorageClient::new(
        &server.nurls[0],
        &server.display_name(),
        Timeouts::default(),
    )
    .unwrap()
}

/// Every form a secret of this server could take in a message.
fn secret_forms(server: &ServerInfo) -> Vec<String> {
    let swissnum = server.nurls[0].expose_swissnum().to_string();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&swissnum);
    vec![swissnum, b64]
}

#[tokio::test]
async fn version_and_share_listing_agree_with_the_node() {
    let grid = shared_grid();
    let server = the_server();
    let storage = client(&server);

    let version = storage.version().await.expect("GET /storage/v1/version");
    assert_eq!(
        version.application_version.as_deref(),
        Some("tahoe-lafs/1.20.0")
    );
    assert!(version.maximum_immutable_share_size.unwrap_or(0) > 0);

    let cap_text = put(grid.web_url(), (0..20_000u32).map(|i| i as u8).collect()).await;
    let cap = Capability::parse(&cap_text).expect("the node's cap parses");
    let si = cap.storage_index().expect("a CHK cap has a storage index");
    let check = node_check(grid.web_url(), &cap_text).await;
    assert_eq!(
        check["storage-index"],
        si.to_string(),
        "SI derived as the node does"
    );

    let shares = storage.immutable_shares(&si).await.unwrap();
    let sharemap = check["results"]["sharemap"].as_object().unwrap();
    let node_view: std::collections::BTreeSet<u16> = sharemap
        .iter()
        .filter(|(_, servers)| {
            servers
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == server.server_id.as_str())
        })
        .map(|(n, _)| n.parse().unwrap())
        .collect();
    assert_eq!(shares, node_view);
    assert_eq!(shares.len(), 1);

    // A ranged read returns the share's first bytes: the v1 immutable share header starts with
    // the version number 1 (allmydata/storage/immutable.py).
    let head = storage.read_immutable_share(&si, 0, 0, 12).await.unwrap();
    assert_eq!(&head[..4], &[0, 0, 0, 1]);
    assert!(storage
        .read_immutable_share(&si, 0, 1 << 30, 10)
        .await
        .unwrap()
        .is_empty());
    let missing = storage
        .read_immutable_share(&si, 7, 0, 10)
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(404), "{missing}");

    // An object nobody stored has no shares.
    let unknown = tahoe_jobs_lafs::cap::StorageIndex([0x5a; 16]);
    assert!(storage.immutable_shares(&unknown).await.unwrap().is_empty());
}

#[tokio::test]
async fn renewing_a_lease_renews_the_nodes_own_lease() {
    let grid = shared_grid();
    let server = the_server();
    let storage = client(&server);
    let cap_text = put(grid.web_url(), vec![42u8; 3_000]).await;
    let si = Capability::parse(&cap_text)
        .unwrap()
        .storage_index()
        .unwrap();

    let secrets = ClientLeaseSecrets::from_node_dir(grid.node_dir()).unwrap();
    let lease = secrets.for_share(&si, &server.lease_seed);
    let outcome = storage.add_or_renew_lease(&si, &lease).await.unwrap();
    assert_eq!(outcome, LeaseOutcome::Renewed);

    // The node's upload made one lease with the node's secrets; renewing with the same secrets
    // leaves one lease, where any other secrets would have added a second.
    let share = grid
        .shares_dir(0)
        .join(&si.to_string()[..2])
        .join(si.to_string())
        .join("0");
    let dump = Command::new(tahoe_bin())
        .args(["debug", "dump-share"])
        .arg(&share)
        .output()
        .expect("tahoe debug dump-share");
    let text = String::from_utf8_lossy(&dump.stdout);
    let leases = text
        .lines()
        .filter(|l| l.trim_start().starts_with("Lease #"))
        .count();
    assert_eq!(leases, 1, "lease lines in dump-share: {leases}");

    let nothing = tahoe_jobs_lafs::cap::StorageIndex([0x3c; 16]);
    let lease = secrets.for_share(&nothing, &server.lease_seed);
    assert_eq!(
        storage.add_or_renew_lease(&nothing, &lease).await.unwrap(),
        LeaseOutcome::NoShares
    );
}

#[tokio::test]
async fn a_certificate_that_does_not_match_the_pin_is_refused() {
    let server = the_server();
    let mut wrong = server.nurls[0].clone();
    // The pin of another key (Tahoe's own SPKI test vector).
    wrong.spki_hash = "JIj6ezHkdSBlHhrnezAgIC_mrVQHy4KAFyL-8ZNPGPM".into();
    let storage = StorageClient::new(&wrong, "pinned-elsewhere", Timeouts::default()).unwrap();
    let err = storage.version().await.unwrap_err();
    assert!(matches!(err, StorageError::PinRefused { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("pinned-elsewhere") && message.contains("pin"),
        "{message}"
    );
    for secret in secret_forms(&server) {
        assert!(!message.contains(&secret) && !format!("{err:?}").contains(&secret));
    }
}

#[tokio::test]
async fn errors_name_the_server_and_hold_no_secret() {
    let server = the_server();

    // A bad swissnum: the server answers 401; the message must not carry either swissnum.
    let mut bad = server.nurls[0].clone();
    bad = tahoe_jobs_lafs::nurl::Nurl::parse(&format!(
        "pb://{}@{}:{}/{}#v=1",
        bad.spki_hash, bad.host, bad.port, "wrongswissnumwrongswissnum"
    ))
    .unwrap();
    let wrong = StorageClient::new(&bad, &server.display_name(), Timeouts::default()).unwrap();
    let err = wrong.version().await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(!err.to_string().contains("wrongswissnum"), "{err}");

    // A server that is not there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut gone = server.nurls[0].clone();
    gone.port = port;
    let down = StorageClient::new(&gone, "gone", Timeouts::default()).unwrap();
    let err = down.version().await.unwrap_err();
    assert!(err.is_connection(), "{err:?}");
    assert!(err.to_string().contains("unreachable"), "{err}");

    let err_401 = wrong.version().await.unwrap_err();
    for e in [err, err_401] {
        let shown = format!("{e} {e:?}");
        for secret in secret_forms(&server) {
            assert!(!shown.contains(&secret), "{shown}");
        }
    }
}

/// A server announcing several locations, the first ones useless (nothing listening there, a
/// certificate that does not match the pin): the client moves on to the next in order, and
/// keeps the one that answered.
#[tokio::test]
async fn every_announced_location_is_tried_in_order() {
    let mut server = the_server();
    let real = server.nurls[0].clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut gone = real.clone();
    gone.port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut pinned_elsewhere = real.clone();
    pinned_elsewhere.spki_hash = "JIj6ezHkdSBlHhrnezAgIC_mrVQHy4KAFyL-8ZNPGPM".into();
    server.nurls = vec![gone, pinned_elsewhere, real.clone()];
    let grid =
        tahoe_jobs_lafs::grid::StorageGrid::new(std::slice::from_ref(&server), Timeouts::default())
            .unwrap();
    let storage = grid.servers()[0].client.clone().expect("a storage client");
    let version = storage.version().await.expect("the third location answers");
    assert!(version.application_version.is_some(), "{:?}", version.raw);
    let shown = format!("{storage:?}");
    assert!(shown.contains(&real.base_url()), "{shown}");
    // The next request goes straight to it.
    assert!(storage
        .immutable_shares(&tahoe_jobs_lafs::cap::StorageIndex([0x42; 16]))
        .await
        .unwrap()
        .is_empty());
}
