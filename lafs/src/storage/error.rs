//! What can go wrong talking to a storage server. Every message names the server (nickname or
//! short id) and never holds its swissnum or a secret sent to it.

/// A failed storage-protocol request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// No TCP or TLS connection (refused, timed out, reset).
    #[error("storage server {server} at {address} is unreachable: {reason}")]
    Unreachable {
        /// The server's display name.
        server: String,
        /// `https://host:port`.
        address: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The certificate does not match the pin the server announced.
    #[error("storage server {server} at {address} presented a certificate whose public key does not match the pin in its announcement: refusing to talk to it (if the server was re-created, the client node's introducer cache refreshes when it hears the new announcement)")]
    PinRefused {
        /// The server's display name.
        server: String,
        /// `https://host:port`.
        address: String,
    },
    /// The server answered with an error status.
    #[error("storage server {server} answered {status} to {request}: {message}")]
    Status {
        /// The server's display name.
        server: String,
        /// The HTTP status.
        status: u16,
        /// The request, without secrets (`GET /storage/v1/version`).
        request: String,
        /// The server's message, with anything that looks like a secret removed.
        message: String,
    },
    /// The answer is not what the protocol specifies.
    #[error("storage server {server} sent an answer to {request} that the protocol does not allow: {reason}")]
    Protocol {
        /// The server's display name.
        server: String,
        /// The request, without secrets.
        request: String,
        /// What is wrong.
        reason: String,
    },
}

impl StorageError {
    /// True when the server could not be reached or refused the pin: for checking, a server that
    /// holds no shares as far as we can tell (as Tahoe counts it).
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            StorageError::Unreachable { .. } | StorageError::PinRefused { .. }
        )
    }

    /// The HTTP status, for [`StorageError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            StorageError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}
