//! Typed errors of the web API client. Messages never contain a capability: URLs are stripped
//! from transport errors and the node's own messages pass through [`redact_caps`].

use std::path::PathBuf;

use reqwest::StatusCode;
use tahoe_jobs_engine::TaskError;

use super::cap::redact_caps;

/// What went wrong talking to the node.
#[derive(Debug, thiserror::Error)]
pub enum TahoeError {
    /// 404: a path component or the object does not exist.
    #[error("no such child: {0}")]
    NoSuchChild(String),
    /// 409: the name exists and replacing it was not allowed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 410: not enough shares could be found to read the object.
    #[error("unrecoverable: {0}")]
    Unrecoverable(String),
    /// 400: the node refused the request's arguments.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Connection refused, reset, or no answer in time.
    #[error("the Tahoe node at {url} is unreachable: {message}")]
    NodeUnreachable {
        /// The node's web API URL (`node.url`), which holds no capability.
        url: String,
        /// What failed, without the request URL and with capabilities redacted.
        message: String,
    },
    /// Any other failure the node reported (500: for instance not enough storage servers).
    #[error("the Tahoe node answered {status}: {message}")]
    ServerError {
        /// The HTTP status the node answered; 0 for a failed request that got no status.
        status: u16,
        /// The node's message (or the request's failure), with capabilities redacted.
        message: String,
    },
    /// The node answered 2xx with something that is not what the API promises.
    #[error("unexpected answer from the Tahoe node: {0}")]
    Protocol(String),
    /// A file in the node directory could not be read.
    #[error("cannot read {path}: {message}")]
    NodeDir {
        /// The file that could not be read.
        path: PathBuf,
        /// Why: the I/O error.
        message: String,
    },
    /// The directory is read-only (a read capability, or an immutable directory): nothing can
    /// be linked into it.
    #[error("{0} is read-only: give a writable directory (an alias made with `tahoe create-alias`, or a write capability)")]
    NotWritable(String),
    /// An `alias:` that `private/aliases` does not define.
    #[error(
        "unknown alias {alias:?}: create it with `tahoe create-alias {alias}` or check {path}"
    )]
    UnknownAlias {
        /// The alias name, without its colon.
        alias: String,
        /// The aliases file that was read (`private/aliases` of the node directory).
        path: PathBuf,
    },
}

impl TahoeError {
    /// Builds the error for a non-2xx answer from its status and body.
    pub(crate) fn from_status(status: StatusCode, body: &str) -> TahoeError {
        if body.contains("NotWriteableError") {
            return TahoeError::NotWritable("the directory".into());
        }
        let mut message = node_message(body);
        if body.contains("UploadUnhappinessError") && body.contains("placed 0 shares") {
            // Tahoe keeps the partial shares of an interrupted upload (a killed or stopped
            // client, a dropped connection) for 30 minutes, and will not place the same file
            // on those servers meanwhile.
            message.push_str(
                " (if an upload of this file was interrupted lately, the storage servers keep \
                 its partial shares for up to 30 minutes, or until they restart, and refuse the \
                 same file meanwhile)",
            );
        }
        match status.as_u16() {
            404 => TahoeError::NoSuchChild(message),
            409 => TahoeError::Conflict(message),
            410 => TahoeError::Unrecoverable(message),
            400 => TahoeError::BadRequest(message),
            s => TahoeError::ServerError { status: s, message },
        }
    }

    /// Builds the error for a failed request, keeping the URL (which may hold a cap) out.
    pub(crate) fn from_transport(node_url: &str, err: reqwest::Error) -> TahoeError {
        let unreachable = err.is_connect() || err.is_timeout() || err.is_request();
        let message = redact_caps(&error_chain(&err.without_url()));
        if unreachable {
            TahoeError::NodeUnreachable {
                url: node_url.to_string(),
                message,
            }
        } else {
            TahoeError::ServerError { status: 0, message }
        }
    }

    /// The node could not place enough shares (`UploadUnhappinessError`): too few servers
    /// connected, or a server still busy writing the same share from an upload that was
    /// stopped a moment ago (convergent encryption gives it the same storage index).
    pub fn is_upload_unhappy(&self) -> bool {
        matches!(self, TahoeError::ServerError { message, .. } if message.contains("UploadUnhappinessError"))
    }

    /// True when a later attempt may succeed without any change (the node was down).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, TahoeError::NodeUnreachable { .. })
    }
}

impl From<TahoeError> for TaskError {
    fn from(e: TahoeError) -> TaskError {
        match e {
            TahoeError::NodeUnreachable { .. } => node_unavailable(e.to_string()),
            TahoeError::UnknownAlias { .. }
            | TahoeError::NodeDir { .. }
            | TahoeError::NotWritable(_) => TaskError::Config(e.to_string()),
            other => TaskError::Failed(other.to_string()),
        }
    }
}

/// The task error that makes the engine wait for the node (it retries the job with growing
/// delays) rather than count a failure; `message` says what failed.
fn node_unavailable(message: String) -> TaskError {
    TaskError::Unavailable {
        what: "the Tahoe node".into(),
        message,
    }
}

/// For a task's `failure` caused by the node error `source` (if any): the task error that waits
/// for the node when the node was unreachable, whatever step failed, with the whole failure
/// (its context included) as the message; `None` when the failure is something else.
pub(crate) fn unreachable_node_error(
    failure: &dyn std::fmt::Display,
    source: Option<&TahoeError>,
) -> Option<TaskError> {
    source
        .is_some_and(TahoeError::is_unreachable)
        .then(|| node_unavailable(failure.to_string()))
}

/// The useful line of a node's error body: Tahoe sends a traceback (whose last line is the
/// exception) or a short HTML page; either may quote capabilities.
fn node_message(body: &str) -> String {
    let text = strip_tags(body);
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("(no message)");
    let mut message = redact_caps(line);
    if message.len() > 400 {
        let mut cut = 400;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

fn strip_tags(body: &str) -> String {
    if !body.trim_start().starts_with('<') {
        return body.to_string();
    }
    let mut out = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push('\n');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    // The HTML pages put the explanation in a paragraph before the closing tags.
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        s.push_str(": ");
        s.push_str(&e.to_string());
        source = e.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhappy_uploads_are_recognised_from_the_node_message() {
        let body = "Traceback (most recent call last):\nallmydata.interfaces.UploadUnhappinessError: server selection failed: shares could be placed or found on only 0 server(s)\n";
        let e = TahoeError::from_status(StatusCode::INTERNAL_SERVER_ERROR, body);
        assert!(e.is_upload_unhappy(), "{e}");
        let other = TahoeError::from_status(StatusCode::INTERNAL_SERVER_ERROR, "boom\n");
        assert!(!other.is_upload_unhappy());
    }

    #[test]
    fn maps_statuses_and_keeps_the_last_traceback_line_without_caps() {
        let body = "Traceback (most recent call last):\n  File \"x.py\"\nallmydata.uri.BadURIError: b'URI:SSK:abc:def' doesn't look like a cap\n";
        match TahoeError::from_status(StatusCode::INTERNAL_SERVER_ERROR, body) {
            TahoeError::ServerError { status, message } => {
                assert_eq!(status, 500);
                assert_eq!(
                    message,
                    "allmydata.uri.BadURIError: b'URI:SSK:…' doesn't look like a cap"
                );
            }
            e => panic!("{e:?}"),
        }
        let html = "<html>\n<head><title>404 - No Such Resource</title></head>\n<body><h1>No Such Resource</h1>\n<p>Sorry. No luck finding that resource.</p></body></html>";
        assert!(matches!(
            TahoeError::from_status(StatusCode::NOT_FOUND, html),
            TahoeError::NoSuchChild(m) if m == "Sorry. No luck finding that resource."
        ));
        assert!(matches!(
            TahoeError::from_status(StatusCode::GONE, "x"),
            TahoeError::Unrecoverable(_)
        ));
        assert!(matches!(
            TahoeError::from_status(StatusCode::CONFLICT, "x"),
            TahoeError::Conflict(_)
        ));
        assert!(matches!(
            TahoeError::from_status(StatusCode::BAD_REQUEST, "x"),
            TahoeError::BadRequest(_)
        ));
    }

    #[test]
    fn a_file_placed_nowhere_mentions_interrupted_uploads() {
        let body = "Traceback (most recent call last):\nallmydata.interfaces.UploadUnhappinessError: server selection failed: shares could be placed or found on only 0 server(s). (placed 0 shares out of 1 total (1 homeless), want more)\n";
        let e = TahoeError::from_status(StatusCode::INTERNAL_SERVER_ERROR, body);
        assert!(e.to_string().contains("interrupted lately"), "{e}");
        let partial = body.replace("placed 0 shares", "placed 2 shares");
        let e = TahoeError::from_status(StatusCode::INTERNAL_SERVER_ERROR, &partial);
        assert!(!e.to_string().contains("interrupted"), "{e}");
    }

    #[test]
    fn unreachable_maps_to_unavailable() {
        let e = TahoeError::NodeUnreachable {
            url: "http://127.0.0.1:1/".into(),
            message: "connection refused".into(),
        };
        match TaskError::from(e) {
            TaskError::Unavailable { what, .. } => assert_eq!(what, "the Tahoe node"),
            e => panic!("{e:?}"),
        }
    }
}
