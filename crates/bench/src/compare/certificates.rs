//! The certificate both brokers of a comparison present on their TLS (and, for MQuicTT, QUIC)
//! listeners: one CA and one ECDSA P-256 server certificate for `127.0.0.1` and `localhost`,
//! made with the transport crate's certificate authority in a temporary directory that lives as
//! long as the comparison, so that both brokers do the same handshake work.

use std::path::PathBuf;

use mquictt_transport::certs::CertificateAuthority;
use mquictt_transport::ClientTlsSettings;

use crate::error::BenchError;

/// A CA and a server certificate on disk, removed when dropped.
#[derive(Debug)]
pub struct BenchCertificates {
    /// The CA certificate, PEM: what the bench's clients trust.
    pub ca_cert: PathBuf,
    /// The server certificate, PEM.
    pub server_cert: PathBuf,
    /// The server's private key, PEM (PKCS#8), readable by its owner only.
    pub server_key: PathBuf,
    client_tls: ClientTlsSettings,
    _dir: tempfile::TempDir,
}

impl BenchCertificates {
    /// Makes a fresh CA and server certificate in a new temporary directory.
    pub fn generate() -> Result<Self, BenchError> {
        let fail = |message: String| BenchError::Certificates(message);
        let dir = tempfile::tempdir().map_err(|e| fail(format!("temporary directory: {e}")))?;
        let authority = CertificateAuthority::generate().map_err(|e| fail(e.to_string()))?;
        let server = authority
            .issue_server(&["127.0.0.1", "localhost"])
            .map_err(|e| fail(e.to_string()))?;
        let ca_cert = dir.path().join("ca.pem");
        let server_cert = dir.path().join("server.pem");
        let server_key = dir.path().join("server.key");
        std::fs::write(&ca_cert, authority.cert_pem())
            .map_err(|e| fail(format!("{}: {e}", ca_cert.display())))?;
        server
            .write_pem(&server_cert, &server_key)
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            client_tls: ClientTlsSettings::trusting(vec![authority.cert_der().clone()]),
            ca_cert,
            server_cert,
            server_key,
            _dir: dir,
        })
    }

    /// Client settings that trust the CA.
    pub fn client_tls(&self) -> &ClientTlsSettings {
        &self.client_tls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_exist_and_the_client_trusts_one_ca() {
        let certs = BenchCertificates::generate().unwrap();
        for path in [&certs.ca_cert, &certs.server_cert, &certs.server_key] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN "), "{}", path.display());
        }
        assert_eq!(certs.client_tls().trusted_cas.len(), 1);
    }
}
