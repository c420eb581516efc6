//! NURLs: how a storage server says where and how to reach its HTTPS storage protocol
//! (`allmydata/storage/http_server.py: build_nurl`): `pb://<spki-hash>@<host>:<port>/<swissnum>#v=1`.
//!
//! The swissnum is the server's password: [`Nurl`] shows it nowhere (`Debug`, `Display`,
//! errors); the client asks for it by name when it builds the `Authorization` header.

use std::fmt;

/// A NURL that cannot be used; never holds the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an HTTPS storage NURL (pb://<spki-hash>@<host>:<port>/<swissnum>#v=1): {0}")]
pub struct NurlError(&'static str);

/// A parsed storage NURL.
#[derive(Clone, PartialEq, Eq)]
pub struct Nurl {
    /// The SPKI pin of the server's certificate (not secret).
    pub spki_hash: String,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    swissnum: String,
}

impl Nurl {
    /// Parses a NURL; only the HTTPS storage protocol version 1 (`#v=1`) over plain TCP is
    /// accepted (a `pb+tor://` subscheme needs a Tor route this client does not have).
    pub fn parse(text: &str) -> Result<Nurl, NurlError> {
        let rest = text
            .trim()
            .strip_prefix("pb://")
            .ok_or(NurlError("scheme is not pb://"))?;
        let (rest, fragment) = rest.split_once('#').ok_or(NurlError("no #v=1"))?;
        if fragment != "v=1" {
            return Err(NurlError("protocol version is not v=1"));
        }
        let (spki_hash, rest) = rest.split_once('@').ok_or(NurlError("no <spki-hash>@"))?;
        let (authority, swissnum) = rest.split_once('/').ok_or(NurlError("no /<swissnum>"))?;
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, port) = v6.split_once("]:").ok_or(NurlError("bad IPv6 host"))?;
            (host, port)
        } else {
            authority.rsplit_once(':').ok_or(NurlError("no :<port>"))?
        };
        let port = port
            .parse()
            .map_err(|_| NurlError("port is not a number"))?;
        let url_safe = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if spki_hash.len() != 43 || !url_safe(spki_hash) {
            return Err(NurlError(
                "SPKI hash is not 43 characters of URL-safe base64",
            ));
        }
        if swissnum.is_empty() || !url_safe(swissnum) {
            return Err(NurlError(
                "swissnum is empty or has characters Tahoe never writes",
            ));
        }
        if host.is_empty() {
            return Err(NurlError("empty host"));
        }
        Ok(Nurl {
            spki_hash: spki_hash.to_string(),
            host: host.to_string(),
            port,
            swissnum: swissnum.to_string(),
        })
    }

    /// The swissnum (the server's password). Only for the `Authorization` header.
    pub fn expose_swissnum(&self) -> &str {
        &self.swissnum
    }

    /// `https://host:port` (safe to show: no swissnum).
    pub fn base_url(&self) -> String {
        if self.host.contains(':') {
            format!("https://[{}]:{}", self.host, self.port)
        } else {
            format!("https://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Nurl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.base_url())
    }
}

impl fmt::Debug for Nurl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nurl({}, pin {})", self.base_url(), self.spki_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A NURL as a Tahoe 1.20 storage node announced it on a loopback test grid.
    const NURL: &str = "pb://CsVT0HoLClGZeLVcZ-EgSU-ckIA4MrCy66h3g4qHacQ@localhost:47602/bpqvfvxo2mqe3hrpwc327jqlzhvn2rln#v=1";

    #[test]
    fn parses_what_the_node_announces() {
        let n = Nurl::parse(NURL).unwrap();
        assert_eq!(n.spki_hash, "CsVT0HoLClGZeLVcZ-EgSU-ckIA4MrCy66h3g4qHacQ");
        assert_eq!((n.host.as_str(), n.port), ("localhost", 47602));
        assert_eq!(n.expose_swissnum(), "bpqvfvxo2mqe3hrpwc327jqlzhvn2rln");
        assert_eq!(n.base_url(), "https://localhost:47602");
        for shown in [n.to_string(), format!("{n:?}")] {
            assert!(!shown.contains("bpqvfvxo"), "{shown}");
        }
        let v6 = Nurl::parse(&NURL.replace("localhost", "[::1]")).unwrap();
        assert_eq!(v6.base_url(), "https://[::1]:47602");
    }

    #[test]
    fn refuses_other_urls_without_quoting_them() {
        for bad in [
            NURL.replace("#v=1", ""),
            NURL.replace("#v=1", "#v=2"),
            NURL.replace("pb://", "pb+tor://"),
            NURL.replace(":47602", ""),
            NURL.replace(":47602", ":port"),
            NURL.replace("CsVT0", "CsV"),
            NURL.replace("/bpqvfvxo2mqe3hrpwc327jqlzhvn2rln", "/"),
        ] {
            let err = Nurl::parse(&bad).unwrap_err().to_string();
            assert!(!err.contains("bpqvfvxo"), "{err}");
        }
    }
}
