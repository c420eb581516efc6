//! The private JSON API's requests and replies, shared by the server and the CLI client, and
//! its paths below `/control/<token>/api/`:
//!
//! - `GET status`: the control page's [`ControlView`](super::view::ControlView);
//! - `POST jobs/<job>/pause` ([`PauseRequest`]), `jobs/<job>/resume`, `jobs/<job>/run`
//!   ([`RunRequest`]), `jobs/<job>/override` and `budget/override` ([`OverrideRequest`]).
//!
//! Every POST needs the CSRF token in the `X-CSRF-Token` header and an `Origin` naming the
//! server; every reply to a POST is an [`ApiReply`].

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRequest {
    /// A duration like `2h`; absent for a pause until resumed.
    #[serde(rename = "for", default)]
    pub for_: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    #[serde(default)]
    pub ignore_window: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideRequest {
    pub key: String,
    /// The new value; absent or null to go back to the file's value.
    #[serde(default)]
    pub value: Option<String>,
}

/// The answer to a POST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiReply {
    pub ok: bool,
    /// What was done, or why not.
    pub message: String,
}
