//! A client for Tahoe-LAFS's HTTPS storage protocol ("Great Black Swamp",
//! `allmydata/storage/http_client.py` and `http_server.py`), one [`StorageClient`] per server.
//!
//! - trust: only the SPKI pin of the server's NURL ([`tls::PinVerifier`]);
//! - every request carries `Authorization: Tahoe-LAFS <base64(swissnum)>`, and the operations that
//!   need them `X-Tahoe-Authorization: <name> <base64(secret)>` headers ([`Secret`]), exactly the
//!   set the endpoint expects;
//! - bodies and answers are CBOR ([`cbor`]);
//! - each client keeps its connections alive (reqwest's pool), so a pass over many objects pays
//!   one TLS handshake per server, not one per request;
//! - a server may announce several NURLs (one per location it listens at): the client uses the
//!   first that answers, in the announced order, and moves on to the next when a connection to
//!   one fails (refused, timed out, refused pin). It keeps using the one that answered.
//!
//! Errors ([`StorageError`]) name the server and never hold its swissnum or a secret: the server's
//! own message is cleaned of anything we sent it before it is kept. Upload endpoints (allocate,
//! `PATCH` writes, abort) build on [`StorageClient::request`] the same way the ones here do.

pub mod cbor;
mod error;
pub mod tls;
pub mod upload;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use ciborium::value::Value;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};

pub use error::StorageError;
pub use upload::{Allocation, UploadSecret, WriteProgress};

use crate::cap::StorageIndex;
use crate::lease::LeaseSecrets;
use crate::nurl::Nurl;

const CBOR: &str = "application/cbor";
const MESSAGE_LIMIT: usize = 300;

/// A per-operation secret, sent as `X-Tahoe-Authorization: <name> <base64>`.
#[derive(Clone, Copy)]
pub enum Secret<'a> {
    /// `lease-renew-secret`.
    LeaseRenew(&'a [u8; 32]),
    /// `lease-cancel-secret`.
    LeaseCancel(&'a [u8; 32]),
    /// `upload-secret`.
    Upload(&'a [u8]),
    /// `write-enabler`.
    WriteEnabler(&'a [u8]),
}

impl Secret<'_> {
    fn name(&self) -> &'static str {
        match self {
            Secret::LeaseRenew(_) => "lease-renew-secret",
            Secret::LeaseCancel(_) => "lease-cancel-secret",
            Secret::Upload(_) => "upload-secret",
            Secret::WriteEnabler(_) => "write-enabler",
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Secret::LeaseRenew(b) | Secret::LeaseCancel(b) => &b[..],
            Secret::Upload(b) | Secret::WriteEnabler(b) => b,
        }
    }
}

/// The parts of a server's `/storage/v1/version` answer a client uses.
#[derive(Debug, Clone)]
pub struct ServerVersion {
    /// Such as `tahoe-lafs/1.20.0`.
    pub application_version: Option<String>,
    /// The largest immutable share it accepts.
    pub maximum_immutable_share_size: Option<u64>,
    /// Free space it reports.
    pub available_space: Option<u64>,
    /// The whole answer.
    pub raw: Value,
}

/// What a lease request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The lease was added or renewed.
    Renewed,
    /// The server holds no share of that storage index (404).
    NoShares,
}

/// Timeouts of one client.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To open a TCP and TLS connection.
    pub connect: Duration,
    /// For one whole request (share reads included).
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(120),
        }
    }
}

/// A client of one storage server, cheap to clone (clones share the connections and which
/// location answers).
#[derive(Clone)]
pub struct StorageClient {
    /// One per announced NURL, in the announced order.
    locations: Arc<[Location]>,
    /// The location in use: the first that answered.
    current: Arc<AtomicUsize>,
    name: String,
}

/// One place a server listens at, with its own pin and connections.
struct Location {
    http: reqwest::Client,
    base: String,
    authorization: HeaderValue,
    swissnum: String,
    pin_refused: Arc<AtomicBool>,
}

impl std::fmt::Debug for StorageClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StorageClient({} at {})",
            self.name,
            self.location().base
        )
    }
}

impl StorageClient {
    /// A client for the server at `nurl`, shown in messages as `name`.
    pub fn new(nurl: &Nurl, name: &str, timeouts: Timeouts) -> Result<StorageClient, StorageError> {
        StorageClient::with_locations(std::slice::from_ref(nurl), name, timeouts)
    }

    /// A client for a server that announced `nurls` (at least one), tried in that order when a
    /// connection fails.
    pub fn with_locations(
        nurls: &[Nurl],
        name: &str,
        timeouts: Timeouts,
    ) -> Result<StorageClient, StorageError> {
        if nurls.is_empty() {
            return Err(StorageError::Unreachable {
                server: name.to_string(),
                address: "(no NURL)".into(),
                reason: "it announces no location for the storage protocol".into(),
            });
        }
        let locations = nurls
            .iter()
            .map(|nurl| Location::new(nurl, name, timeouts))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StorageClient {
            locations: locations.into(),
            current: Arc::new(AtomicUsize::new(0)),
            name: name.to_string(),
        })
    }

    /// The server's display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `GET /storage/v1/version`.
    pub async fn version(&self) -> Result<ServerVersion, StorageError> {
        let (_, answer) = self
            .cbor_request(Method::GET, "/storage/v1/version", &[], None)
            .await?;
        let v1 = cbor::lookup(&answer, "http://allmydata.org/tahoe/protocols/storage/v1");
        let field = |key| v1.and_then(|m| cbor::lookup(m, key)).and_then(cbor::as_u64);
        Ok(ServerVersion {
            application_version: cbor::lookup(&answer, "application-version")
                .and_then(cbor::as_text),
            maximum_immutable_share_size: field("maximum-immutable-share-size"),
            available_space: field("available-space"),
            raw: answer,
        })
    }

    /// `GET /storage/v1/immutable/<si>/shares`: the share numbers this server holds (empty when
    /// it holds none).
    pub async fn immutable_shares(&self, si: &StorageIndex) -> Result<BTreeSet<u16>, StorageError> {
        let path = format!("/storage/v1/immutable/{si}/shares");
        let what = format!("GET {path}");
        let (_, answer) = self.cbor_request(Method::GET, &path, &[], None).await?;
        cbor::to_share_set(&answer).map_err(|reason| self.protocol(&what, reason))
    }

    /// `GET /storage/v1/immutable/<si>/<shnum>` with `Range: bytes=<offset>-<end>`: up to
    /// `length` bytes of a share from `offset` (fewer at its end; none past it).
    pub async fn read_immutable_share(
        &self,
        si: &StorageIndex,
        share: u16,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, StorageError> {
        let path = format!("/storage/v1/immutable/{si}/{share}");
        let what = format!("GET {path}");
        if length == 0 {
            return Ok(Bytes::new());
        }
        let range = format!("bytes={}-{}", offset, offset + length - 1);
        let response = self
            .send(Method::GET, &path, &[], |r| r.header(RANGE, range.clone()))
            .await?;
        match response.status() {
            // The server's way of saying "nothing there" (an empty range cannot be written).
            StatusCode::NO_CONTENT => Ok(Bytes::new()),
            StatusCode::PARTIAL_CONTENT | StatusCode::OK => {
                let body = response.bytes().await.map_err(|e| self.send_error(e))?;
                if body.len() as u64 > length {
                    return Err(self.protocol(&what, "more bytes than the range asked".into()));
                }
                Ok(body)
            }
            _ => Err(self.status_error(response, &what, &[]).await),
        }
    }

    /// `PUT /storage/v1/lease/<si>`: adds a lease with these secrets, or renews the one that
    /// has them.
    pub async fn add_or_renew_lease(
        &self,
        si: &StorageIndex,
        lease: &LeaseSecrets,
    ) -> Result<LeaseOutcome, StorageError> {
        let path = format!("/storage/v1/lease/{si}");
        let what = format!("PUT {path}");
        let secrets = [
            Secret::LeaseRenew(&lease.renew),
            Secret::LeaseCancel(&lease.cancel),
        ];
        let response = self.send(Method::PUT, &path, &secrets, |r| r).await?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(LeaseOutcome::Renewed),
            StatusCode::NOT_FOUND => Ok(LeaseOutcome::NoShares),
            _ => Err(self.status_error(response, &what, &secrets).await),
        }
    }

    /// A request to `path` with the swissnum and `secrets`, to the location in use. It does
    /// not move on to the next location when it fails to connect: [`StorageClient::send`] does.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        secrets: &[Secret],
    ) -> reqwest::RequestBuilder {
        self.location().request(method, path, secrets)
    }

    /// Sends a request to `path` with the swissnum and `secrets` (`finish` adds headers and a
    /// body: it is called again for each location tried): the building block of every
    /// endpoint, including the upload ones (allocate, `PATCH` writes, abort). When a connection
    /// to the location in use fails, the next announced location is tried, in order, each
    /// once; the error is the last location's.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        secrets: &[Secret<'_>],
        finish: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, StorageError> {
        let count = self.locations.len();
        let start = self.current.load(Ordering::Relaxed) % count;
        let mut step = 0;
        loop {
            let at = (start + step) % count;
            let location = &self.locations[at];
            let request = finish(location.request(method.clone(), path, secrets));
            match request.send().await {
                Ok(response) => {
                    if step > 0 {
                        self.current.store(at, Ordering::Relaxed);
                        tracing::info!(
                            "storage server {}: using its location {} ({} of {})",
                            self.name,
                            location.base,
                            at + 1,
                            count
                        );
                    }
                    return Ok(response);
                }
                Err(e) => {
                    let refused = location.pin_refused.load(Ordering::SeqCst);
                    let error = self.send_error_at(location, &e);
                    step += 1;
                    if !(e.is_connect() || refused) || step == count {
                        return Err(error);
                    }
                    tracing::debug!("{error}; trying its next location");
                }
            }
        }
    }

    /// Sends a request with an optional CBOR body and decodes a CBOR answer.
    pub async fn cbor_request(
        &self,
        method: Method,
        path: &str,
        secrets: &[Secret<'_>],
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), StorageError> {
        let what = format!("{method} {path}");
        let body = body.map(|b| Bytes::from(cbor::encode(b)));
        let response = self
            .send(method, path, secrets, |request| match &body {
                Some(body) => request.header(CONTENT_TYPE, CBOR).body(body.clone()),
                None => request,
            })
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(response, &what, secrets).await);
        }
        let bytes = response.bytes().await.map_err(|e| self.send_error(e))?;
        let value = cbor::decode(&bytes).map_err(|reason| self.protocol(&what, reason))?;
        Ok((status, value))
    }

    /// The location in use.
    fn location(&self) -> &Location {
        &self.locations[self.current.load(Ordering::Relaxed) % self.locations.len()]
    }

    fn protocol(&self, what: &str, reason: String) -> StorageError {
        StorageError::Protocol {
            server: self.name.clone(),
            request: what.to_string(),
            reason,
        }
    }

    /// A failure of the location in use (reading an answer, say).
    fn send_error(&self, e: reqwest::Error) -> StorageError {
        self.send_error_at(self.location(), &e)
    }

    fn send_error_at(&self, location: &Location, e: &reqwest::Error) -> StorageError {
        if location.pin_refused.load(Ordering::SeqCst) {
            return StorageError::PinRefused {
                server: self.name.clone(),
                address: location.base.clone(),
            };
        }
        StorageError::Unreachable {
            server: self.name.clone(),
            address: location.base.clone(),
            reason: self.scrub(&innermost(e)),
        }
    }

    async fn status_error(
        &self,
        response: reqwest::Response,
        what: &str,
        secrets: &[Secret<'_>],
    ) -> StorageError {
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        let mut message = String::from_utf8_lossy(&body).trim().to_string();
        for secret in secrets {
            message = message.replace(&STANDARD.encode(secret.bytes()), "…");
        }
        let mut message = self.scrub(&message);
        if message.len() > MESSAGE_LIMIT {
            let mut cut = MESSAGE_LIMIT;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        if message.is_empty() {
            message = "(no message)".into();
        }
        StorageError::Status {
            server: self.name.clone(),
            status,
            request: what.to_string(),
            message,
        }
    }

    /// Removes every location's swissnum (plain or base64) from a text.
    fn scrub(&self, text: &str) -> String {
        self.locations.iter().fold(text.to_string(), |text, l| {
            text.replace(&STANDARD.encode(l.swissnum.as_bytes()), "…")
                .replace(&l.swissnum, "…")
        })
    }
}

impl Location {
    fn new(nurl: &Nurl, name: &str, timeouts: Timeouts) -> Result<Location, StorageError> {
        let verifier = tls::PinVerifier::new(&nurl.spki_hash);
        let pin_refused = verifier.refused_flag();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(verifier.client_config())
            .no_proxy()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| StorageError::Unreachable {
                server: name.to_string(),
                address: nurl.base_url(),
                reason: format!("cannot set up an HTTPS client: {e}"),
            })?;
        let token = STANDARD.encode(nurl.expose_swissnum().as_bytes());
        let mut authorization = HeaderValue::from_str(&format!("Tahoe-LAFS {token}"))
            .expect("base64 is a valid header value");
        authorization.set_sensitive(true);
        Ok(Location {
            http,
            base: nurl.base_url(),
            authorization,
            swissnum: nurl.expose_swissnum().to_string(),
            pin_refused,
        })
    }

    fn request(&self, method: Method, path: &str, secrets: &[Secret]) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, CBOR);
        for secret in secrets {
            let text = format!("{} {}", secret.name(), STANDARD.encode(secret.bytes()));
            let mut value = HeaderValue::from_str(&text).expect("base64 is a valid header value");
            value.set_sensitive(true);
            request = request.header("X-Tahoe-Authorization", value);
        }
        request
    }
}

/// The innermost cause of an error ("Connection refused (os error 111)"), which says more than
/// reqwest's "error sending request".
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nurl(port: u16) -> Nurl {
        Nurl::parse(&format!(
            "pb://CsVT0HoLClGZeLVcZ-EgSU-ckIA4MrCy66h3g4qHacQ@127.0.0.1:{port}/swissnumsecret#v=1"
        ))
        .unwrap()
    }

    /// A server announcing two locations: the first refuses connections, so the second is
    /// asked (here it hangs up during the handshake: the error is then the second's).
    #[tokio::test]
    async fn a_failed_connection_moves_on_to_the_next_announced_location() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open_port = open.local_addr().unwrap().port();
        let tried = Arc::new(AtomicBool::new(false));
        let accepted = tokio::spawn({
            let tried = tried.clone();
            async move {
                let (socket, _) = open.accept().await.unwrap();
                tried.store(true, Ordering::SeqCst);
                drop(socket);
            }
        });
        let client = StorageClient::with_locations(
            &[nurl(closed_port), nurl(open_port)],
            "two-homed",
            Timeouts::default(),
        )
        .unwrap();
        let err = client.version().await.unwrap_err();
        // Set before the second location hung up, which is what ended the request.
        assert!(
            tried.load(Ordering::SeqCst),
            "the second location was tried"
        );
        accepted.abort();
        let shown = err.to_string();
        assert!(err.is_connection(), "{shown}");
        assert!(shown.contains(&format!("127.0.0.1:{open_port}")), "{shown}");
        assert!(!shown.contains("swissnumsecret"), "{shown}");
        assert!(StorageClient::with_locations(&[], "none", Timeouts::default()).is_err());
    }
}
