//! Base32 as Tahoe-LAFS writes it (`allmydata/util/base32.py`): RFC 4648's alphabet in lower case,
//! no padding; trailing bits of the last character are zero.

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Text that is not Tahoe base32.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not Tahoe base32 (lower-case a-z and 2-7, canonical length): {reason}")]
pub struct Base32Error {
    reason: &'static str,
}

/// Encodes bytes as lower-case, unpadded base32.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for &byte in data {
        buffer = (buffer << 8) | u64::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes lower-case, unpadded base32. Refuses other characters, lengths no encoding produces
/// and non-zero trailing bits (as Tahoe's `could_be_base32_encoded` does), so every accepted
/// text has exactly one decoding and re-encodes to itself.
pub fn decode(text: &str) -> Result<Vec<u8>, Base32Error> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let value = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => {
                return Err(Base32Error {
                    reason: "unexpected character",
                })
            }
        };
        buffer = (buffer << 5) | u64::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    if bits >= 5 {
        return Err(Base32Error {
            reason: "impossible length",
        });
    }
    if buffer & ((1 << bits) - 1) != 0 {
        return Err(Base32Error {
            reason: "non-zero trailing bits",
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors_in_lower_case() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn a_storage_index_is_26_characters() {
        let si = [0xabu8; 16];
        let text = encode(&si);
        assert_eq!(text.len(), 26);
        assert_eq!(decode(&text).unwrap(), si);
    }

    #[test]
    fn refuses_what_no_encoding_produces() {
        assert!(decode("MZXW6").is_err());
        assert!(decode("m1").is_err());
        assert!(decode("m").is_err());
        assert!(decode("mz").is_err(), "trailing bits set");
    }
}
