//! Exact shaping: a loopback SOCKS5 proxy that a store node sends its traffic through, so that
//! every byte to and from each destination is counted and paced, whoever caused it.
//!
//! [`ShapingProxy::bind`] then [`ShapingProxy::run`]; the caller keeps a [`ShapingControl`] to
//! say which `host:port` is which destination ([`ShapingControl::set_routes`]), to put limits in
//! force ([`ShapingControl::apply`], the same [`crate::limits::LimitsNow`] the feed-pacing gate
//! takes) and to read [`ShapingStats`]. Destinations are opaque ids; the proxy knows nothing of
//! what they store.

pub mod proxy;
pub mod socks5;

#[cfg(test)]
mod tests;

pub use proxy::{ShapingControl, ShapingError, ShapingProxy, ShapingStats};
pub use socks5::{target_key, Socks5Error, TargetAddr};
