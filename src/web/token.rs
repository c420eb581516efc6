//! The control token: 256 random bits, hex in `state_dir/control.token` (mode 0600), the secret
//! part of the control page's address; and the CSRF token derived from it.
//!
//! Anyone who can read the file (the user, root) can control the daemon, which is the same trust
//! as reading the state store. The CSRF token is a one-way derivation, so the copy embedded in
//! the control page's forms cannot be turned back into the address.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The file in `state_dir`.
pub const TOKEN_FILE: &str = "control.token";
/// Hex digits in a token (256 bits).
const TOKEN_HEX_LEN: usize = 64;

/// The secret in the control page's address. `Debug` never shows it.
#[derive(Clone)]
pub struct ControlToken(String);

impl std::fmt::Debug for ControlToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlToken(<secret>)")
    }
}

impl ControlToken {
    /// A fresh random token.
    pub fn generate() -> io::Result<ControlToken> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(ControlToken(hex(&bytes)))
    }

    /// Parses a token as stored (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Option<ControlToken> {
        let t = text.trim();
        (t.len() == TOKEN_HEX_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| ControlToken(t.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this token, in time independent of where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        // The length is public (always 64), so comparing it first leaks nothing.
        candidate.len() == self.0.len() && bool::from(self.0.as_bytes().ct_eq(candidate.as_bytes()))
    }

    /// The CSRF token for the control page's forms and the private API.
    pub fn csrf(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"tahoe-jobs csrf v1\0");
        h.update(self.0.as_bytes());
        hex(&h.finalize()[..16])
    }

    /// Whether `candidate` is the CSRF token, in constant time.
    pub fn csrf_matches(&self, candidate: &str) -> bool {
        let want = self.csrf();
        candidate.len() == want.len() && bool::from(want.as_bytes().ct_eq(candidate.as_bytes()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the token lives.
pub fn token_path(state_dir: &Path) -> PathBuf {
    state_dir.join(TOKEN_FILE)
}

/// Reads the token, for clients of the private API.
pub fn read(state_dir: &Path) -> io::Result<ControlToken> {
    let path = token_path(state_dir);
    let text = fs::read_to_string(&path)?;
    ControlToken::parse(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} does not hold a control token", path.display()),
        )
    })
}

/// Reads the token, creating it (0600) when missing or unreadable as a token, and narrowing
/// the file's mode when it is wider than 0600. The daemon calls this at start.
pub fn load_or_create(state_dir: &Path) -> io::Result<ControlToken> {
    let path = token_path(state_dir);
    match fs::read_to_string(&path) {
        Ok(text) => {
            if let Some(token) = ControlToken::parse(&text) {
                make_private(&path)?;
                return Ok(token);
            }
            tracing::warn!(
                path = %path.display(),
                "the control token file does not hold a token; writing a new one"
            );
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let token = ControlToken::generate()?;
    write_private(&path, token.as_str())?;
    Ok(token)
}

#[cfg(unix)]
fn make_private(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "the control token was readable by other users; made it 0600"
        );
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_: &Path) -> io::Result<()> {
    Ok(())
}

/// Writes through a temporary file created 0600 and renamed, so the token is never readable by
/// others, not even for an instant, and a crash leaves either no file or a whole one.
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{TOKEN_FILE}.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(format!("{text}\n").as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_bits_in_hex() {
        let a = ControlToken::generate().unwrap();
        let b = ControlToken::generate().unwrap();
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.as_str(), b.as_str());
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    #[test]
    fn matching_is_exact() {
        let t = ControlToken::parse(&"ab".repeat(32)).unwrap();
        assert!(t.matches(&"ab".repeat(32)));
        assert!(!t.matches(&"ab".repeat(31)));
        assert!(!t.matches(&format!("{}ac", "ab".repeat(31))));
        assert!(!t.matches(""));
        assert!(ControlToken::parse("short").is_none());
        assert!(ControlToken::parse(&"zz".repeat(32)).is_none());
    }

    #[test]
    fn the_csrf_token_is_derived_and_not_the_token() {
        let t = ControlToken::generate().unwrap();
        let csrf = t.csrf();
        assert_eq!(csrf.len(), 32);
        assert!(!t.as_str().contains(&csrf));
        assert!(t.csrf_matches(&csrf));
        assert!(!t.csrf_matches(t.as_str()));
        assert!(!t.csrf_matches(""));
        assert_ne!(csrf, ControlToken::generate().unwrap().csrf());
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_created_0600_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let t1 = load_or_create(&state).unwrap();
        let mode = fs::metadata(token_path(&state))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let t2 = load_or_create(&state).unwrap();
        assert_eq!(t1.as_str(), t2.as_str());
        assert_eq!(read(&state).unwrap().as_str(), t1.as_str());

        fs::set_permissions(token_path(&state), fs::Permissions::from_mode(0o644)).unwrap();
        load_or_create(&state).unwrap();
        let mode = fs::metadata(token_path(&state))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "narrowed");

        fs::write(token_path(&state), "garbage").unwrap();
        let t3 = load_or_create(&state).unwrap();
        assert_ne!(t3.as_str(), t1.as_str());
    }
}
