//! A client of a Tahoe-LAFS node's web API, and the capability type that keeps secrets out of
//! logs. Nothing here knows about jobs: the check task and the backup task both build on it.

pub mod cap;
pub mod client;
mod detach;
pub mod error;
pub mod node_dir;
pub mod servers;
pub mod types;

pub use cap::{redact_caps, Cap};
pub use client::{ClientOptions, SharedClientOptions, TahoeClient};
pub use detach::{finish_uploads, let_uploads_finish};
pub use error::TahoeError;
pub use node_dir::{read_node_url, Aliases, DEFAULT_ALIAS};
pub use types::{
    CheckOptions, CheckReport, CheckResults, DirListing, ListedChild, NewChild, NodeKind,
    RepairReport,
};
