//! Helpers shared by the tests of the `integration` test binary.
//!
//! Everything here is an API for many test modules, and each module uses only part of it, so
//! dead-code warnings would only reflect which tests happen to exist today.
#![allow(dead_code)]

pub mod backup_run;
pub mod daemon;
pub mod files;
pub mod grid;
pub mod node;
pub mod process;
pub mod receiver;
pub mod relay;
pub mod shares;

pub use grid::{http_client, shared_grid, Grid, GridSpec};
