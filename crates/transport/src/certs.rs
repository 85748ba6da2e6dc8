//! Certificates: loading PEM certificate chains and private keys from files (errors name the
//! file), a small certificate authority that issues ECDSA P-256 server and client certificates,
//! the development certificates a broker creates on first start and re-uses afterwards, and the
//! SHA-256 fingerprint printed for them. Builds no TLS configuration (that is `tls.rs`).
//! Loading is always built in; making certificates needs the `cert-gen` feature.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
#[cfg(feature = "cert-gen")]
use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(feature = "cert-gen")]
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::pem::{self, PemObject};
#[cfg(feature = "cert-gen")]
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// Why certificates or keys could not be loaded, generated or written.
#[derive(Debug, Error)]
pub enum CertError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file or directory could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not valid PEM.
    #[error("{path} is not valid PEM: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        message: String,
    },
    /// The file holds no `CERTIFICATE` block.
    #[error("{0} contains no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate(PathBuf),
    /// The file holds no private key block.
    #[error("{0} contains no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoPrivateKey(PathBuf),
    /// The key in the file cannot sign certificates (not a key rcgen supports).
    #[cfg(feature = "cert-gen")]
    #[error("{path} holds a key that cannot sign certificates: {source}")]
    UnusableKey {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rcgen::Error,
    },
    /// Some of the development certificate files exist and others don't: refuse to overwrite.
    #[error("{dir} holds some development certificate files but {missing} is missing; remove the directory's certificate files to have them created again")]
    IncompleteDevCertificates {
        /// The directory.
        dir: PathBuf,
        /// The first file that is missing.
        missing: PathBuf,
    },
    /// Certificate generation failed.
    #[cfg(feature = "cert-gen")]
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Reads every `CERTIFICATE` block of a PEM file, end-entity certificate first.
pub fn load_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = read_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|err| CertError::Pem {
            path: path.to_owned(),
            message: err.to_string(),
        })?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate(path.to_owned()));
    }
    Ok(chain)
}

/// Reads the first private key (PKCS#8, PKCS#1 RSA or SEC1 EC) of a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let bytes = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| match err {
        pem::Error::NoItemsFound => CertError::NoPrivateKey(path.to_owned()),
        other => CertError::Pem {
            path: path.to_owned(),
            message: other.to_string(),
        },
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, CertError> {
    fs::read(path).map_err(|source| CertError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The SHA-256 fingerprint of a DER certificate as colon-separated upper-case hex, the form
/// `openssl x509 -fingerprint -sha256` prints, so users can compare the two.
#[cfg(feature = "cert-gen")]
pub fn fingerprint_sha256(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// A certificate chain with its private key: what a server presents, or a client presents for
/// client-certificate authentication.
pub struct TlsIdentity {
    /// End-entity certificate first, then intermediates.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The end-entity certificate's private key.
    pub key: PrivateKeyDer<'static>,
}

impl TlsIdentity {
    /// Loads a certificate chain and a private key from two PEM files (they may be the same
    /// file).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, CertError> {
        Ok(TlsIdentity {
            cert_chain: load_cert_chain(cert)?,
            key: load_private_key(key)?,
        })
    }
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        TlsIdentity {
            cert_chain: self.cert_chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        f.debug_struct("TlsIdentity")
            .field("certificates", &self.cert_chain.len())
            .finish_non_exhaustive()
    }
}

/// A certificate and key issued by a [`CertificateAuthority`].
#[cfg(feature = "cert-gen")]
pub struct IssuedCertificate {
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The certificate, PEM.
    pub cert_pem: String,
    key: KeyPair,
}

#[cfg(feature = "cert-gen")]
impl IssuedCertificate {
    /// The private key, PEM (PKCS#8).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The certificate and key as an identity to present.
    pub fn identity(&self) -> TlsIdentity {
        TlsIdentity {
            cert_chain: vec![self.cert_der.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der())),
        }
    }

    /// Writes the certificate and the key as PEM files; the key file is readable by its owner
    /// only.
    pub fn write_pem(&self, cert_path: &Path, key_path: &Path) -> Result<(), CertError> {
        write_file(cert_path, self.cert_pem.as_bytes(), false)?;
        write_file(key_path, self.key_pem().as_bytes(), true)
    }

    /// SHA-256 fingerprint of the certificate.
    pub fn fingerprint(&self) -> String {
        fingerprint_sha256(&self.cert_der)
    }
}

#[cfg(feature = "cert-gen")]
impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// The subject of every CA this crate creates. Loading a CA re-creates its issuer name from
/// this constant, so certificates issued later chain to the stored CA certificate without
/// parsing it (which would need an X.509 parser).
#[cfg(feature = "cert-gen")]
const CA_COMMON_NAME: &str = "MQuicTT CA";

/// A certificate authority that issues ECDSA P-256 certificates. Only CAs created by
/// [`CertificateAuthority::generate`] can be loaded back.
#[cfg(feature = "cert-gen")]
pub struct CertificateAuthority {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    key: KeyPair,
}

#[cfg(feature = "cert-gen")]
impl CertificateAuthority {
    /// Creates a new CA with a fresh ECDSA P-256 key, valid for ten years.
    pub fn generate() -> Result<Self, CertError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = ca_params(10).self_signed(&key)?;
        Ok(CertificateAuthority {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            key,
        })
    }

    /// Loads a CA created by [`CertificateAuthority::generate`] from its PEM certificate and
    /// key files.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, CertError> {
        let cert_der = load_cert_chain(cert_path)?
            .into_iter()
            .next()
            .ok_or_else(|| CertError::NoCertificate(cert_path.to_owned()))?;
        let cert_pem = String::from_utf8_lossy(&read_file(cert_path)?).into_owned();
        let key_text = String::from_utf8_lossy(&read_file(key_path)?).into_owned();
        let key = KeyPair::from_pem(&key_text).map_err(|source| CertError::UnusableKey {
            path: key_path.to_owned(),
            source,
        })?;
        Ok(CertificateAuthority {
            cert_der,
            cert_pem,
            key,
        })
    }

    /// The CA certificate, DER: what clients (or servers, for client certificates) trust.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes the CA certificate and key as PEM files; the key file is readable by its owner
    /// only.
    pub fn write_pem(&self, cert_path: &Path, key_path: &Path) -> Result<(), CertError> {
        write_file(cert_path, self.cert_pem.as_bytes(), false)?;
        write_file(key_path, self.key.serialize_pem().as_bytes(), true)
    }

    /// Issues a server certificate for `names` (DNS names or IP addresses), valid for five
    /// years.
    pub fn issue_server(&self, names: &[&str]) -> Result<IssuedCertificate, CertError> {
        let sans: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name = common_name(names.first().copied().unwrap_or("server"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(params)
    }

    /// Issues a client certificate with the given common name, valid for five years.
    pub fn issue_client(&self, name: &str) -> Result<IssuedCertificate, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(params)
    }

    fn issue(&self, mut params: CertificateParams) -> Result<IssuedCertificate, CertError> {
        set_validity(&mut params, 5);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let issuer = Issuer::new(ca_params(10), &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(IssuedCertificate {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            key,
        })
    }
}

#[cfg(feature = "cert-gen")]
impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("fingerprint", &fingerprint_sha256(&self.cert_der))
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "cert-gen")]
fn ca_params(years: i32) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, years);
    params
}

#[cfg(feature = "cert-gen")]
fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

/// From yesterday (tolerating clocks a little behind) to `years` from now.
#[cfg(feature = "cert-gen")]
fn set_validity(params: &mut CertificateParams, years: i32) {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() / 86_400)
        .unwrap_or(0);
    let (year, month, day) = civil_from_days(days.saturating_sub(1) as i64);
    params.not_before = rcgen::date_time_ymd(year, month, day);
    // Day 28 exists in every month, so the end date is always valid.
    params.not_after = rcgen::date_time_ymd(year + years, month, day.min(28));
}

/// Days since 1970-01-01 to a (year, month, day) civil date (proleptic Gregorian), after
/// Howard Hinnant's `civil_from_days`.
#[cfg(feature = "cert-gen")]
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month as u8, day as u8)
}

#[cfg(feature = "cert-gen")]
fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), CertError> {
    let write_error = |source| CertError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(write_error)?;
    io::Write::write_all(&mut file, contents).map_err(write_error)
}

/// The names the development server certificate is valid for: loopback only, as the broker
/// listens on loopback by default.
#[cfg(feature = "cert-gen")]
pub const DEV_SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The development CA and server certificate in one directory: `ca.pem`, `ca.key`,
/// `server.pem`, `server.key`.
#[cfg(feature = "cert-gen")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertificates {
    /// The CA certificate clients trust (`--cafile`).
    pub ca_cert: PathBuf,
    /// The CA key, to issue client certificates.
    pub ca_key: PathBuf,
    /// The server certificate.
    pub server_cert: PathBuf,
    /// The server key.
    pub server_key: PathBuf,
    /// True if this call created the files, false if it found them.
    pub created: bool,
    /// SHA-256 fingerprint of the server certificate, for printing.
    pub server_fingerprint: String,
}

#[cfg(feature = "cert-gen")]
impl DevCertificates {
    /// Returns the development certificates in `dir`, creating the directory and a new CA and
    /// server certificate (ECDSA P-256, for `localhost`, `127.0.0.1` and `::1`) if none of the
    /// four files exist. Files that exist are never overwritten: if only some exist this fails.
    pub fn load_or_create(dir: &Path) -> Result<Self, CertError> {
        let mut certs = DevCertificates {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            created: false,
            server_fingerprint: String::new(),
        };
        let files = [
            &certs.ca_cert,
            &certs.ca_key,
            &certs.server_cert,
            &certs.server_key,
        ];
        let present = files.iter().filter(|path| path.exists()).count();
        if present == 0 {
            fs::create_dir_all(dir).map_err(|source| CertError::Write {
                path: dir.to_owned(),
                source,
            })?;
            let authority = CertificateAuthority::generate()?;
            let server = authority.issue_server(&DEV_SERVER_NAMES)?;
            authority.write_pem(&certs.ca_cert, &certs.ca_key)?;
            server.write_pem(&certs.server_cert, &certs.server_key)?;
            certs.created = true;
        } else if let Some(missing) = files.iter().find(|path| !path.exists()) {
            return Err(CertError::IncompleteDevCertificates {
                dir: dir.to_owned(),
                missing: (*missing).clone(),
            });
        }
        let server_chain = load_cert_chain(&certs.server_cert)?;
        let leaf = server_chain
            .first()
            .ok_or_else(|| CertError::NoCertificate(certs.server_cert.clone()))?;
        certs.server_fingerprint = fingerprint_sha256(leaf);
        Ok(certs)
    }

    /// The server certificate and key, to configure a listener.
    pub fn server_identity(&self) -> Result<TlsIdentity, CertError> {
        TlsIdentity::from_pem_files(&self.server_cert, &self.server_key)
    }

    /// The CA certificate(s), for a client to trust.
    pub fn ca_certificates(&self) -> Result<Vec<CertificateDer<'static>>, CertError> {
        load_cert_chain(&self.ca_cert)
    }

    /// The CA, to issue client certificates signed by it.
    pub fn authority(&self) -> Result<CertificateAuthority, CertError> {
        CertificateAuthority::load(&self.ca_cert, &self.ca_key)
    }
}

#[cfg(feature = "cert-gen")]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn fingerprint_is_colon_hex_of_sha256() {
        let cert = CertificateDer::from(b"abc".to_vec());
        assert_eq!(
            fingerprint_sha256(&cert),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }
}
