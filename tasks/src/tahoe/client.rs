//! The web API client: one method per call tahoe-jobs makes to its node.
//!
//! Every request sends `Accept: text/plain` so errors come back as text, not HTML tracebacks.
//! Capabilities go into URLs, so no URL is ever put in an error or a log line.

use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

// tokio's clock, so that tests with the paused clock see the request timeout in their time.
use tokio::time::Instant;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{header, Method, RequestBuilder, Response};
use serde_json::Value;

use super::cap::Cap;
use super::detach::FinishOnceSent;
use super::error::TahoeError;
use super::node_dir::read_node_url;
use super::types::{mkdir_immutable_json, CheckOptions, CheckReport, DirListing, NewChild};

/// Everything but RFC 3986's unreserved characters is escaped in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How long to wait for a connection to the node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of a [`TahoeClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long the node may stay silent on one request. An upload's answer only comes once
    /// the node has encoded and pushed the whole file, so this must cover the largest file.
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            request_timeout: tahoe_jobs_config::DEFAULT_NODE_TIMEOUT,
        }
    }
}

impl ClientOptions {
    /// The options `[jobs]` gives: `node.timeout` is the request timeout.
    pub fn from_settings(daemon: &tahoe_jobs_config::DaemonSettings) -> ClientOptions {
        ClientOptions {
            request_timeout: daemon.node_timeout,
        }
    }
}

/// [`ClientOptions`] shared between whoever sets them (the daemon, from its configuration at
/// start and on reload) and the task factories, which read them each time they build a task:
/// the engine builds a task per run, so a run always uses the options in force when it began.
#[derive(Debug, Clone, Default)]
pub struct SharedClientOptions(Arc<RwLock<ClientOptions>>);

impl SharedClientOptions {
    /// Shares `options`, in force until the next [`set`](Self::set).
    pub fn new(options: ClientOptions) -> SharedClientOptions {
        SharedClientOptions(Arc::new(RwLock::new(options)))
    }

    /// The options in force now.
    pub fn get(&self) -> ClientOptions {
        // A panic elsewhere while holding the lock cannot leave a half-written Duration behind.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the options for tasks built from now on.
    pub fn set(&self, options: ClientOptions) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = options;
    }
}

/// A client of one node's web API.
#[derive(Clone)]
pub struct TahoeClient {
    http: reqwest::Client,
    /// For streamed uploads: no reqwest read timeout, whose clock would run from the start of
    /// the request and so cut off any upload slower than it; [`TahoeClient::upload_stream`]
    /// watches the node's silence instead.
    streaming: reqwest::Client,
    request_timeout: Duration,
    base: String,
}

impl std::fmt::Debug for TahoeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TahoeClient")
            .field("base", &self.base)
            .finish()
    }
}

impl TahoeClient {
    /// A client of the node whose web API is at `node_url` (`http://127.0.0.1:3456/`).
    pub fn new(node_url: &str, options: &ClientOptions) -> Result<TahoeClient, TahoeError> {
        let builder = || {
            let mut headers = header::HeaderMap::new();
            headers.insert(
                header::ACCEPT,
                header::HeaderValue::from_static("text/plain"),
            );
            reqwest::Client::builder()
                .default_headers(headers)
                .connect_timeout(CONNECT_TIMEOUT)
                // The node is local: a proxy from the environment would only add a hop (and a
                // leak).
                .no_proxy()
        };
        let build_error =
            |e: reqwest::Error| TahoeError::Protocol(format!("cannot build an HTTP client: {e}"));
        let http = builder()
            .read_timeout(options.request_timeout)
            .build()
            .map_err(build_error)?;
        let streaming = builder().build().map_err(build_error)?;
        let base = if node_url.ends_with('/') {
            node_url.to_string()
        } else {
            format!("{node_url}/")
        };
        Ok(TahoeClient {
            http,
            streaming,
            request_timeout: options.request_timeout,
            base,
        })
    }

    /// A client of the node in `node_dir`, found through `node.url`.
    pub fn from_node_dir(
        node_dir: &Path,
        options: &ClientOptions,
    ) -> Result<TahoeClient, TahoeError> {
        TahoeClient::new(&read_node_url(node_dir)?, options)
    }

    /// The node's web API root, such as `http://127.0.0.1:3456/` (holds no secret).
    pub fn node_url(&self) -> &str {
        &self.base
    }

    /// `PUT /uri`: uploads an immutable file of exactly `len` bytes from `body`.
    pub async fn upload(&self, body: reqwest::Body, len: u64) -> Result<Cap, TahoeError> {
        let req = self
            .http
            .put(format!("{}uri", self.base))
            .header(header::CONTENT_LENGTH, len)
            .body(body);
        self.send_whole_for_cap(req).await
    }

    /// `PUT /uri` of exactly `len` bytes from `body`, for bodies that may arrive slowly (paced
    /// by a budget). The request fails as [`TahoeError::NodeUnreachable`] only when the node has
    /// been silent for the request timeout: not reading the body, or not answering once it has
    /// all of it. Time the body itself spends waiting (for the budget, the disk) does not count,
    /// so an upload may take as long as its pace needs.
    pub async fn upload_stream<S>(&self, body: S, len: u64) -> Result<Cap, TahoeError>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
    {
        let watch = Arc::new(BodyWatch::new());
        let body = WatchedBody {
            inner: Box::pin(body),
            watch: watch.clone(),
            remaining: len,
        };
        let req = self
            .streaming
            .put(format!("{}uri", self.base))
            .header(header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(body));
        let mut send = Some(self.send_for_cap_to_the_end(req, watch.sent.clone()));
        loop {
            // While the body waits on its own source, look again a timeout later.
            let deadline = if watch.body_waiting() {
                Instant::now() + self.request_timeout
            } else {
                watch.last_activity() + self.request_timeout
            };
            tokio::select! {
                result = send.as_mut().expect("until answered").join_ref() => {
                    return result.and_then(|r| r);
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if !watch.body_waiting() && watch.last_activity() + self.request_timeout
                        <= Instant::now()
                    {
                        // Silent after the whole body, or not reading it: give up on it.
                        if let Some(send) = send.take() {
                            send.abort();
                        }
                        return Err(TahoeError::NodeUnreachable {
                            url: self.base.clone(),
                            message: format!(
                                "no answer for {} s during an upload (the request timeout)",
                                self.request_timeout.as_secs_f64()
                            ),
                        });
                    }
                }
            }
        }
    }

    /// `PUT /uri` of bytes in memory.
    pub async fn upload_bytes(&self, data: impl Into<bytes::Bytes>) -> Result<Cap, TahoeError> {
        let data: bytes::Bytes = data.into();
        let len = data.len() as u64;
        self.upload(reqwest::Body::from(data), len).await
    }

    /// `POST /uri?t=mkdir-immutable`: a new immutable directory holding `children`.
    pub async fn mkdir_immutable<'a, M: serde::Serialize + 'a>(
        &self,
        children: impl IntoIterator<Item = (&'a str, &'a NewChild<M>)>,
    ) -> Result<Cap, TahoeError> {
        let body =
            mkdir_immutable_json(children).map_err(|e| TahoeError::Protocol(e.to_string()))?;
        let req = self
            .http
            .post(format!("{}uri?t=mkdir-immutable", self.base))
            .body(body);
        // A directory is stored like a file: let the node finish it (see `detach`).
        self.send_whole_for_cap(req).await
    }

    /// `POST /uri?t=mkdir`: a new, unlinked mutable directory.
    pub async fn create_mutable_dir(&self) -> Result<Cap, TahoeError> {
        let req = self.http.post(format!("{}uri?t=mkdir", self.base));
        self.send_for_cap(req).await
    }

    /// `POST /uri/$DIRCAP/path?t=mkdir`: makes sure `path` below `dir` is a directory, creating
    /// it and any missing parents as mutable directories. A no-op when it exists.
    pub async fn mkdir_p(&self, dir: &Cap, path: &str) -> Result<(), TahoeError> {
        let req = self.http.post(self.url(dir, path, "t=mkdir"));
        self.send(req).await.map(drop)
    }

    /// `PUT /uri/$DIRCAP/path/NAME?t=uri`: links `child` as `name` in the directory at `path`
    /// below `dir`, replacing an existing child of that name.
    pub async fn link(
        &self,
        dir: &Cap,
        path: &str,
        name: &str,
        child: &Cap,
    ) -> Result<(), TahoeError> {
        let full = join_path(path, name);
        let req = self
            .http
            .put(self.url(dir, &full, "t=uri"))
            .body(child.expose().to_string());
        self.send(req).await.map(drop)
    }

    /// `DELETE /uri/$DIRCAP/path/NAME`: removes the link `name` from the directory at `path`
    /// below `dir` (what it linked to stays on the grid until its leases expire).
    pub async fn unlink(&self, dir: &Cap, path: &str, name: &str) -> Result<(), TahoeError> {
        let full = join_path(path, name);
        let url = self.url(dir, &full, "");
        let url = url.strip_suffix('?').unwrap_or(&url).to_string();
        self.send(self.http.delete(url)).await.map(drop)
    }

    /// `GET /uri/$DIRCAP/path?t=json`.
    pub async fn list(&self, dir: &Cap, path: &str) -> Result<DirListing, TahoeError> {
        let value = self.get_json(self.url(dir, path, "t=json")).await?;
        DirListing::parse(&value)
    }

    /// `POST /uri/$CAP/path?t=check&output=JSON` with the given flags.
    pub async fn check(
        &self,
        cap: &Cap,
        path: &str,
        options: CheckOptions,
    ) -> Result<CheckReport, TahoeError> {
        let flag = |b: bool| if b { "true" } else { "false" };
        let query = format!(
            "t=check&output=JSON&verify={}&repair={}&add-lease={}",
            flag(options.verify),
            flag(options.repair),
            flag(options.add_lease)
        );
        let resp = self
            .send(self.http.post(self.url(cap, path, &query)))
            .await?;
        CheckReport::parse(&self.json_of(resp).await?)
    }

    /// `GET /statistics?t=json`: the node's counters and stats.
    pub async fn statistics(&self) -> Result<Value, TahoeError> {
        self.get_json(format!("{}statistics?t=json", self.base))
            .await
    }

    /// `GET /?t=json`: the node's welcome data (servers and their connection status).
    pub async fn welcome(&self) -> Result<Value, TahoeError> {
        self.get_json(format!("{}?t=json", self.base)).await
    }

    fn url(&self, cap: &Cap, path: &str, query: &str) -> String {
        let mut url = format!(
            "{}uri/{}",
            self.base,
            utf8_percent_encode(cap.expose(), SEGMENT)
        );
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            url.push('/');
            url.extend(utf8_percent_encode(segment, SEGMENT));
        }
        url.push('?');
        url.push_str(query);
        url
    }

    async fn get_json(&self, url: String) -> Result<Value, TahoeError> {
        let resp = self.send(self.http.request(Method::GET, url)).await?;
        self.json_of(resp).await
    }

    async fn json_of(&self, resp: Response) -> Result<Value, TahoeError> {
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| TahoeError::from_transport(&self.base, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| TahoeError::Protocol(format!("the answer is not JSON: {e}")))
    }

    /// [`TahoeClient::send_for_cap`] on a task of its own that is let finish once `sent` says
    /// the node has the whole request, even if the caller goes away (see `detach`).
    fn send_for_cap_to_the_end(
        &self,
        req: RequestBuilder,
        sent: Arc<AtomicBool>,
    ) -> FinishOnceSent<Result<Cap, TahoeError>> {
        let client = self.clone();
        FinishOnceSent::spawn(
            async move { client.send_for_cap(req).await },
            sent,
            self.request_timeout,
        )
    }

    /// [`TahoeClient::send_for_cap`] of a request whose body is in memory, so the node gets
    /// all of it at once: let finish whatever the caller does.
    async fn send_whole_for_cap(&self, req: RequestBuilder) -> Result<Cap, TahoeError> {
        self.send_for_cap_to_the_end(req, Arc::new(AtomicBool::new(true)))
            .join()
            .await?
    }

    async fn send_for_cap(&self, req: RequestBuilder) -> Result<Cap, TahoeError> {
        let resp = self.send(req).await?;
        let text = resp
            .text()
            .await
            .map_err(|e| TahoeError::from_transport(&self.base, e))?;
        let cap = Cap::new(text);
        if !cap.expose().starts_with("URI:") {
            return Err(TahoeError::Protocol(
                "the node answered without a capability".into(),
            ));
        }
        Ok(cap)
    }

    /// Sends and maps a non-2xx answer to its error.
    async fn send(&self, req: RequestBuilder) -> Result<Response, TahoeError> {
        let resp = req
            .send()
            .await
            .map_err(|e| TahoeError::from_transport(&self.base, e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(TahoeError::from_status(status, &body))
    }
}

/// What an upload's body has been doing, for [`TahoeClient::upload_stream`]'s watchdog.
struct BodyWatch {
    last: Mutex<Instant>,
    /// The body's own source is pending (the budget, the disk): not the node's silence.
    waiting: AtomicBool,
    /// Every byte of the body has been handed over: from now on the node may be storing it.
    sent: Arc<AtomicBool>,
}

impl BodyWatch {
    fn new() -> BodyWatch {
        BodyWatch {
            last: Mutex::new(Instant::now()),
            waiting: AtomicBool::new(false),
            sent: Arc::new(AtomicBool::new(false)),
        }
    }

    fn last_activity(&self) -> Instant {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn body_waiting(&self) -> bool {
        self.waiting.load(Ordering::SeqCst)
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

/// A body stream that tells its [`BodyWatch`] when it is polled and what it gave.
struct WatchedBody<S> {
    inner: Pin<Box<S>>,
    watch: Arc<BodyWatch>,
    /// Bytes still to come; the body is complete at zero (with a Content-Length, the HTTP
    /// stack need not ask for the end of the stream).
    remaining: u64,
}

impl<S> futures::Stream for WatchedBody<S>
where
    S: futures::Stream<Item = Result<bytes::Bytes, std::io::Error>>,
{
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let poll = self.inner.as_mut().poll_next(cx);
        // Whatever the answer, the node just asked for more: it is not silent.
        self.watch.touch();
        self.watch
            .waiting
            .store(poll.is_pending(), Ordering::SeqCst);
        if let Poll::Ready(Some(Ok(chunk))) = &poll {
            let len = chunk.len() as u64;
            self.remaining = self.remaining.saturating_sub(len);
            if self.remaining == 0 {
                self.watch.sent.store(true, Ordering::SeqCst);
            }
        }
        poll
    }
}

fn join_path(path: &str, name: &str) -> String {
    let path = path.trim_matches('/');
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}

/// Calls the check task needs beyond the ones above.
impl TahoeClient {
    /// `GET /uri/$CAP/path?t=json` as the node sent it, for fields [`DirListing`] does not keep
    /// (`verify_uri`).
    pub async fn list_raw(&self, cap: &Cap, path: &str) -> Result<Value, TahoeError> {
        self.get_json(self.url(cap, path, "t=json")).await
    }

    /// `GET /uri/$CAP`: a file's bytes; read the body from the response as it arrives.
    pub async fn download(&self, cap: &Cap) -> Result<Response, TahoeError> {
        self.send(self.http.get(self.url(cap, "", ""))).await
    }
}

/// A "node" on loopback that accepts connections and then never reads nor answers, for tests
/// of the request timeout; abort the handle to close it.
#[cfg(test)]
pub(crate) async fn silent_node() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            kept.push(stream);
        }
    });
    (addr, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_escape_cap_and_segments() {
        let c = TahoeClient::new("http://127.0.0.1:1", &ClientOptions::default()).unwrap();
        let url = c.url(&Cap::new("URI:DIR2:ab:cd"), "/x y/Archives/", "t=json");
        assert_eq!(
            url,
            "http://127.0.0.1:1/uri/URI%3ADIR2%3Aab%3Acd/x%20y/Archives?t=json"
        );
        assert_eq!(join_path("", "Latest"), "Latest");
        assert_eq!(join_path("a/b/", "Latest"), "a/b/Latest");
        assert_eq!(
            c.url(&Cap::new("URI:DIR2:ab:cd"), "2024-01-01_10:00:00Z", "t=uri"),
            "http://127.0.0.1:1/uri/URI%3ADIR2%3Aab%3Acd/2024-01-01_10%3A00%3A00Z?t=uri"
        );
    }

    fn options(timeout_ms: u64) -> ClientOptions {
        ClientOptions {
            request_timeout: Duration::from_millis(timeout_ms),
        }
    }

    /// A node that accepts the connection and then never reads nor answers: a streamed upload
    /// fails as unreachable once it has been silent for the request timeout (on the paused
    /// clock, which moves on once the upload is stuck on the full socket).
    #[tokio::test(start_paused = true)]
    async fn a_silent_node_times_out_a_streamed_upload() {
        let (addr, held) = silent_node().await;
        let c = TahoeClient::new(&format!("http://{addr}/"), &options(300)).unwrap();
        // 32 MiB: more than the socket buffers hold, so the body stalls on the silent node.
        let chunks = (0..512).map(|_| Ok(bytes::Bytes::from(vec![0u8; 64 * 1024])));
        let err = c
            .upload_stream(futures::stream::iter(chunks), 32 << 20)
            .await
            .unwrap_err();
        assert!(err.is_unreachable(), "{err:?}");
        assert!(err.to_string().contains("no answer"), "{err}");
        held.abort();
    }

    /// A body that waits on its own source (the budget) longer than the request timeout between
    /// chunks is not cut off: only the node's silence counts (a reqwest read timeout would run
    /// from the start of the request and fail any upload slower than itself). On the paused
    /// clock: the waits are tokio's time, not the machine's.
    #[tokio::test(start_paused = true)]
    async fn a_slowly_fed_upload_is_not_cut_off_by_the_request_timeout() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then a body of Content-Length bytes.
            let body_len = loop {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .unwrap()
                        .trim()
                        .parse()
                        .unwrap();
                    got.drain(..end + 4);
                    break len;
                }
            };
            while got.len() < body_len {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "the body ended early");
                got.extend_from_slice(&buf[..n]);
            }
            let cap = "URI:CHK:aaaa:bbbb:1:1:30";
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{cap}",
                cap.len()
            );
            s.write_all(answer.as_bytes()).await.unwrap();
            got
        });
        let c = TahoeClient::new(&format!("http://{addr}/"), &options(300)).unwrap();
        let body = futures::stream::unfold(0u8, |i| async move {
            if i == 3 {
                return None;
            }
            // Held back by "the budget" longer than the request timeout.
            tokio::time::sleep(Duration::from_millis(450)).await;
            Some((
                Ok::<_, std::io::Error>(bytes::Bytes::from(vec![i; 10])),
                i + 1,
            ))
        });
        let cap = c.upload_stream(body, 30).await.unwrap();
        assert_eq!(cap.expose(), "URI:CHK:aaaa:bbbb:1:1:30");
        let got = server.await.unwrap();
        assert_eq!(got, [[0u8; 10], [1u8; 10], [2u8; 10]].concat());
    }

    #[tokio::test]
    async fn refused_connection_is_unreachable_and_names_no_cap() {
        // Port 1 on loopback: nothing listens there.
        let c = TahoeClient::new("http://127.0.0.1:1/", &ClientOptions::default()).unwrap();
        let err = c
            .list(&Cap::new("URI:DIR2:secret:secret"), "p")
            .await
            .unwrap_err();
        assert!(err.is_unreachable(), "{err:?}");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(!format!("{err:?}").contains("secret"), "{err:?}");
    }
}
