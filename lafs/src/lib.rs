//! Tahoe-LAFS's formats and its storage protocol, usable on their own.
//!
//! This crate knows Tahoe-LAFS and nothing else: no actix, no tahoe-jobs engine or configuration.
//! The format code (base32, netstrings, tagged hashes, capabilities, encodings) is pure functions
//! over bytes, testable against known answers with no server; the network client is a thin layer
//! that moves those bytes.
#![warn(missing_docs)]

pub mod base32;
pub mod cap;
pub mod checker;
pub mod chk;
pub mod dirnode;
pub mod discovery;
pub mod grid;
pub mod hashutil;
pub mod lease;
pub mod netstring;
pub mod nurl;
pub mod spki;
pub mod storage;
pub mod upload;
pub mod zfec;
