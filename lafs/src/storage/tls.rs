//! TLS for the storage protocol: trust is the SPKI pin from the server's NURL and nothing else.
//!
//! Tahoe's certificates are X.509 v1, self-signed and often expired, which webpki refuses, so
//! [`PinVerifier`] checks only that the certificate's SubjectPublicKeyInfo hashes to the pin, and
//! then that the handshake is signed with that very key (so a server that merely replays the
//! certificate cannot pass).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature_with_raw_key, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

use crate::spki;

/// Accepts exactly the certificates whose SPKI hash is the pin.
#[derive(Debug)]
pub struct PinVerifier {
    pin: String,
    provider: Arc<CryptoProvider>,
    /// Set when a certificate was refused, so the client can say so instead of "TLS error".
    refused: Arc<AtomicBool>,
}

impl PinVerifier {
    /// A verifier for `pin` (the NURL's `<spki-hash>`).
    pub fn new(pin: &str) -> PinVerifier {
        PinVerifier {
            pin: pin.to_string(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            refused: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A flag that is true while the last certificate seen was refused.
    pub fn refused_flag(&self) -> Arc<AtomicBool> {
        self.refused.clone()
    }

    /// A rustls client configuration that trusts only this pin.
    pub fn client_config(self) -> rustls::ClientConfig {
        let provider = self.provider.clone();
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(self))
            .with_no_client_auth()
    }

    fn key<'a>(&self, cert: &'a CertificateDer<'_>) -> Result<&'a [u8], Error> {
        spki::subject_public_key_info(cert.as_ref())
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let matches = self
            .key(end_entity)
            .is_ok_and(|key| spki::spki_hash_of_key(key) == self.pin);
        self.refused.store(!matches, Ordering::SeqCst);
        if matches {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        // rustls's own TLS 1.2 check parses the certificate with webpki (which refuses v1):
        // check against the raw key, trying each algorithm the scheme may mean, as rustls does.
        let key = SubjectPublicKeyInfoDer::from(self.key(cert)?);
        let raw = webpki::RawPublicKeyEntity::try_from(&key)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let algorithms = self
            .provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .unwrap_or_default();
        for alg in algorithms {
            if raw.verify_signature(*alg, message, dss.signature()).is_ok() {
                return Ok(HandshakeSignatureValid::assertion());
            }
        }
        Err(Error::InvalidCertificate(CertificateError::BadSignature))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let key = SubjectPublicKeyInfoDer::from(self.key(cert)?);
        verify_tls13_signature_with_raw_key(
            message,
            &key,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
