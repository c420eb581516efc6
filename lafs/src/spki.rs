//! The SPKI pin of a storage server (`allmydata/storage/http_common.py: get_spki_hash`):
//! SHA-256 of the DER SubjectPublicKeyInfo of its certificate, in unpadded URL-safe base64.
//!
//! Tahoe's certificates are X.509 v1, self-signed and often expired, so nothing but this pin is
//! checked; the few lines of DER reading below find the SubjectPublicKeyInfo in any version.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// A certificate whose SubjectPublicKeyInfo cannot be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server's certificate is not well-formed DER X.509 ({0})")]
pub struct CertificateError(&'static str);

/// The pin of a DER certificate, as it appears in a NURL.
pub fn spki_hash(certificate_der: &[u8]) -> Result<String, CertificateError> {
    Ok(spki_hash_of_key(subject_public_key_info(certificate_der)?))
}

/// The pin of a DER SubjectPublicKeyInfo.
pub fn spki_hash_of_key(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(spki_der))
}

/// The DER SubjectPublicKeyInfo (tag and length included) inside a DER certificate.
pub fn subject_public_key_info(certificate_der: &[u8]) -> Result<&[u8], CertificateError> {
    let (certificate, _) = element(certificate_der, 0x30)?;
    let (tbs, _) = element(contents(certificate)?, 0x30)?;
    let mut rest = contents(tbs)?;
    // Certificate ::= SEQUENCE { tbsCertificate, ... }; TBSCertificate ::= SEQUENCE {
    //   [0] version OPTIONAL (absent in v1), serialNumber, signature, issuer, validity, subject,
    //   subjectPublicKeyInfo, ... }
    if rest.first() == Some(&0xa0) {
        rest = element(rest, 0xa0)?.1;
    }
    for _ in 0..5 {
        let tag = *rest.first().ok_or(CertificateError("truncated"))?;
        rest = element(rest, tag)?.1;
    }
    Ok(element(rest, 0x30)?.0)
}

/// Splits one DER element with the expected tag off `der`: (the whole element, what follows).
fn element(der: &[u8], tag: u8) -> Result<(&[u8], &[u8]), CertificateError> {
    if der.first() != Some(&tag) {
        return Err(CertificateError("unexpected element"));
    }
    let (header, length) = header_and_length(der)?;
    let end = header
        .checked_add(length)
        .filter(|&end| end <= der.len())
        .ok_or(CertificateError("truncated"))?;
    Ok((&der[..end], &der[end..]))
}

/// The contents of one DER element (after its tag and length).
fn contents(element: &[u8]) -> Result<&[u8], CertificateError> {
    let (header, _) = header_and_length(element)?;
    Ok(&element[header..])
}

fn header_and_length(der: &[u8]) -> Result<(usize, usize), CertificateError> {
    let first = *der.get(1).ok_or(CertificateError("truncated"))?;
    if first < 0x80 {
        return Ok((2, usize::from(first)));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > 4 {
        return Err(CertificateError("unsupported length"));
    }
    let bytes = der.get(2..2 + count).ok_or(CertificateError("truncated"))?;
    let length = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok((2 + count, length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    /// Tahoe 1.20's own SPKI test data (`../shared/vectors/spki-hash-test-vectors.yaml`, copied
    /// to `lafs/tests/data/`): certificates with the pin Tahoe computes for each.
    const VECTORS: &str = include_str!("../tests/data/spki-hash-test-vectors.yaml");

    #[derive(serde::Deserialize)]
    struct Vectors {
        vector: Vec<Vector>,
    }
    #[derive(serde::Deserialize)]
    struct Vector {
        #[serde(rename = "expected-hash")]
        expected_hash: String,
        #[serde(rename = "expected-spki")]
        expected_spki: String,
        certificate: String,
    }

    fn pem_to_der(pem: &str) -> Vec<u8> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        STANDARD.decode(body).unwrap()
    }

    #[test]
    fn pins_equal_tahoes() {
        let vectors: Vectors = serde_yaml::from_str(VECTORS).unwrap();
        assert!(!vectors.vector.is_empty());
        for v in &vectors.vector {
            let der = pem_to_der(&v.certificate);
            let spki = subject_public_key_info(&der).unwrap();
            assert_eq!(STANDARD.encode(spki), v.expected_spki.trim());
            assert_eq!(spki_hash(&der).unwrap(), v.expected_hash.trim());
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x03\x30\x01\x00",
        ] {
            assert!(spki_hash(bad).is_err());
        }
    }
}
