//! A client for Tahoe-LAFS's HTTPS storage protocol ("Great Black Swamp",
//! `allmydata/storage/http_client.py` and `http_server.py`), one [`StorageClient`] per server.
//!
//! - trust: only the SPKI pin of the server's NURL ([`tls::PinVerifier`]);
//! - every request carries `Authorization: Tahoe-LAFS <base64(swissnum)>`, and the operations that
//!   need them `X-Tahoe-Authorization: <name> <base64(secret)>` headers ([`Secret`]), exactly the
//!   set the endpoint expects;
//! - bodies and answers are CBOR ([`cbor`]);
//! - each client keeps its connections alive (reqwest's pool), so a pass over many objects pays
//!   one TLS handshake per server, not one per request.
//!
//! Errors ([`StorageError`]) name the server and never hold its swissnum or a secret: the server's
//! own message is cleaned of anything we sent it before it is kept. Upload endpoints (allocate,
//! `PATCH` writes, abort) build on [`StorageClient::request`] the same way the ones here do.

pub mod cbor;
mod error;
pub mod tls;
pub mod upload;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// A client of one storage server, cheap to clone (clones share the connections).
#[derive(Clone)]
pub struct StorageClient {
    http: reqwest::Client,
    base: String,
    name: String,
    authorization: HeaderValue,
    swissnum: String,
    pin_refused: Arc<AtomicBool>,
}

impl std::fmt::Debug for StorageClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StorageClient({} at {})", self.name, self.base)
    }
}

impl StorageClient {
    /// A client for the server at `nurl`, shown in messages as `name`.
    pub fn new(nurl: &Nurl, name: &str, timeouts: Timeouts) -> Result<StorageClient, StorageError> {
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
        Ok(StorageClient {
            http,
            base: nurl.base_url(),
            name: name.to_string(),
            authorization,
            swissnum: nurl.expose_swissnum().to_string(),
            pin_refused,
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
            .request(Method::GET, &path, &[])
            .header(RANGE, range)
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
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
        let response = self
            .request(Method::PUT, &path, &secrets)
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(LeaseOutcome::Renewed),
            StatusCode::NOT_FOUND => Ok(LeaseOutcome::NoShares),
            _ => Err(self.status_error(response, &what, &secrets).await),
        }
    }

    /// A request to `path` with the swissnum and `secrets`: the building block of every
    /// endpoint, including the upload ones (allocate, `PATCH` writes, abort).
    pub fn request(
        &self,
        method: Method,
        path: &str,
        secrets: &[Secret],
    ) -> reqwest::RequestBuilder {
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

    /// Sends a request with an optional CBOR body and decodes a CBOR answer.
    pub async fn cbor_request(
        &self,
        method: Method,
        path: &str,
        secrets: &[Secret<'_>],
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), StorageError> {
        let what = format!("{method} {path}");
        let mut request = self.request(method, path, secrets);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, CBOR).body(cbor::encode(body));
        }
        let response = request.send().await.map_err(|e| self.send_error(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(response, &what, secrets).await);
        }
        let bytes = response.bytes().await.map_err(|e| self.send_error(e))?;
        let value = cbor::decode(&bytes).map_err(|reason| self.protocol(&what, reason))?;
        Ok((status, value))
    }

    fn protocol(&self, what: &str, reason: String) -> StorageError {
        StorageError::Protocol {
            server: self.name.clone(),
            request: what.to_string(),
            reason,
        }
    }

    fn send_error(&self, e: reqwest::Error) -> StorageError {
        if self.pin_refused.load(Ordering::SeqCst) {
            return StorageError::PinRefused {
                server: self.name.clone(),
                address: self.base.clone(),
            };
        }
        StorageError::Unreachable {
            server: self.name.clone(),
            address: self.base.clone(),
            reason: self.scrub(&innermost(&e)),
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

    /// Removes the swissnum (plain or base64) from a text.
    fn scrub(&self, text: &str) -> String {
        text.replace(&STANDARD.encode(self.swissnum.as_bytes()), "…")
            .replace(&self.swissnum, "…")
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
