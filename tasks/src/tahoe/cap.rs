//! Capabilities: the secret strings (`URI:...`) that name and grant access to grid objects.
//!
//! [`Cap`] keeps the string out of every `Debug`/`Display` so a capability cannot reach a log
//! line, an error message or a panic by accident; only its kind (`URI:CHK:…`) shows. Code that
//! must send the secret to the node asks for it by name with [`Cap::expose`].
//!
//! Why not `tahoe_jobs_lafs::cap::Capability`, the crate's parsed cap: a [`Cap`] holds whatever
//! the node answered, as the node wrote it, and never fails to make (a kind this version does
//! not parse, a future one, still passes through a backup and into its directories); it is a
//! map key (`Hash`, `Ord`) and the backup database stores its text. Code that needs the parsed
//! form (the direct paths: storage index, coding) parses it there with `Capability::parse`,
//! and literal caps are written by the lafs crate.

use std::fmt;

/// A capability string. Its `Debug` and `Display` show only the kind.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cap(String);

impl Cap {
    /// Wraps a capability as the node returned it (surrounding whitespace removed).
    pub fn new(s: impl Into<String>) -> Cap {
        let s: String = s.into();
        let trimmed = s.trim();
        if trimmed.len() == s.len() {
            Cap(s)
        } else {
            Cap(trimmed.to_string())
        }
    }

    /// The secret itself, for a request to the node or the backup database. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The kind, such as `URI:CHK` or `URI:DIR2-CHK` (safe to show).
    pub fn kind(&self) -> &str {
        cap_kind(&self.0)
    }

    /// True for a capability that does not grant writing (what immutable directories accept).
    pub fn is_immutable(&self) -> bool {
        matches!(
            self.kind(),
            "URI:CHK" | "URI:LIT" | "URI:DIR2-CHK" | "URI:DIR2-LIT"
        )
    }

    /// True for a directory capability of any kind.
    pub fn is_directory(&self) -> bool {
        self.kind().starts_with("URI:DIR2")
    }

    /// The literal capability of `data`: Tahoe keeps a file of at most 55 bytes in its
    /// capability, `URI:LIT:` and the bytes in Tahoe's base32 (RFC 4648 alphabet, lower case,
    /// unpadded), which is exactly what the node answers when such a file is uploaded.
    pub fn literal(data: &[u8]) -> Cap {
        Cap(tahoe_jobs_lafs::chk::lit_cap(data))
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:…", self.kind())
    }
}

impl fmt::Debug for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cap({self})")
    }
}

/// The part of a capability string before its secret fields: `URI:CHK` of `URI:CHK:abc:...`.
fn cap_kind(s: &str) -> &str {
    let mut colons = s.match_indices(':').map(|(i, _)| i);
    match (colons.next(), colons.next()) {
        (Some(_), Some(second)) => &s[..second],
        _ if s.starts_with("URI") => "URI",
        _ => "capability",
    }
}

/// Replaces every capability in a text (a node's error message, say) by its kind, so the text
/// can be shown and logged.
pub fn redact_caps(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("URI:") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        // A cap runs until a character that never appears in one: base32, digits and ':' do.
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '-' || c == '_'))
            .unwrap_or(tail.len());
        out.push_str(cap_kind(&tail[..end]));
        out.push_str(":…");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHK: &str = "URI:CHK:z25un5jsqav24vaig4abzk6gea:cko5yoqbsdnsxwljzhijcgimjxxhv4vs7sdtcgzurnzolbzmv5sq:1:1:1000";

    #[test]
    fn display_and_debug_hide_the_secret() {
        let cap = Cap::new(format!("{CHK}\n"));
        assert_eq!(cap.expose(), CHK);
        assert_eq!(cap.to_string(), "URI:CHK:…");
        assert_eq!(format!("{cap:?}"), "Cap(URI:CHK:…)");
        assert!(!format!("{cap:?} {cap}").contains("z25un"));
        assert_eq!(Cap::new("URI:DIR2-CHK:a:b").kind(), "URI:DIR2-CHK");
        assert!(Cap::new("URI:DIR2-LIT:a").is_immutable());
        assert!(!Cap::new("URI:DIR2:a:b").is_immutable());
        assert!(Cap::new("URI:DIR2:a:b").is_directory());
        assert_eq!(Cap::new("junk").to_string(), "capability:…");
    }

    #[test]
    fn literal_caps_are_tahoes_base32() {
        assert_eq!(Cap::literal(b"").expose(), "URI:LIT:");
        assert_eq!(Cap::literal(b"hello").expose(), "URI:LIT:nbswy3dp");
        assert_eq!(Cap::literal(b"f").expose(), "URI:LIT:my");
        assert_eq!(Cap::literal(b"foobar").expose(), "URI:LIT:mzxw6ytboi");
        assert_eq!(Cap::literal(&[0xff; 3]).expose(), "URI:LIT:77776");
        assert_eq!(Cap::literal(b"x").kind(), "URI:LIT");
    }

    #[test]
    fn redacts_caps_inside_text() {
        let text = format!("b'{CHK}' doesn't look like a cap; also URI:DIR2:abc:def/x");
        let red = redact_caps(&text);
        assert_eq!(
            red,
            "b'URI:CHK:…' doesn't look like a cap; also URI:DIR2:…/x"
        );
        assert_eq!(redact_caps("no caps"), "no caps");
    }
}
