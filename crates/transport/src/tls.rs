//! TLS settings for servers ([`ServerTlsSettings`]) and clients ([`ClientTlsSettings`]) and
//! their translation into rustls configurations for TLS-over-TCP (TLS 1.2 and 1.3), WSS and
//! QUIC (TLS 1.3 only, ALPN `mqtt`; a build without `tls` has no TLS 1.2 code at all). Always
//! the `ring` crypto provider, passed explicitly so that another provider enabled elsewhere in
//! a build cannot make rustls pick at random. The settings types exist in every build; the
//! rustls translation only in builds with `tls` or `quic`.

use std::path::Path;
#[cfg(any(feature = "tls", feature = "quic"))]
use std::sync::Arc;

#[cfg(any(feature = "tls", feature = "quic"))]
use rustls::crypto::CryptoProvider;
#[cfg(any(feature = "tls", feature = "quic"))]
use rustls::server::WebPkiClientVerifier;
#[cfg(any(feature = "tls", feature = "quic"))]
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::CertificateDer;
#[cfg(feature = "tls")]
use rustls_pki_types::ServerName;

#[cfg(feature = "cert-gen")]
use crate::certs::DevCertificates;
use crate::certs::{load_cert_chain, CertError, TlsIdentity};
#[cfg(any(feature = "tls", feature = "quic"))]
use crate::error::TransportError;
#[cfg(feature = "tls")]
use crate::stream::TlsVersion;
#[cfg(any(feature = "tls", feature = "quic"))]
use crate::url::TransportKind;

/// The ALPN protocol of MQTT over QUIC, as EMQX uses it.
pub const MQTT_ALPN: &[u8] = b"mqtt";

/// Which TLS versions TLS-over-TCP and WSS offer. QUIC always uses TLS 1.3 (RFC 9001).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsVersions {
    /// TLS 1.2 and 1.3; the peers pick 1.3 when both can. The default: many embedded TLS
    /// stacks still stop at 1.2.
    #[default]
    Tls12AndTls13,
    /// TLS 1.2 only.
    OnlyTls12,
    /// TLS 1.3 only.
    OnlyTls13,
}

// TLS 1.2 exists only in builds with `tls`: QUIC needs TLS 1.3 alone (RFC 9001, section 4.2),
// so a QUIC-only build leaves rustls' TLS 1.2 code out.
#[cfg(feature = "tls")]
const TLS12_AND_TLS13: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
#[cfg(feature = "tls")]
const ONLY_TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
#[cfg(any(feature = "tls", feature = "quic"))]
const ONLY_TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

#[cfg(feature = "tls")]
impl TlsVersions {
    fn rustls(self) -> &'static [&'static SupportedProtocolVersion] {
        match self {
            TlsVersions::Tls12AndTls13 => TLS12_AND_TLS13,
            TlsVersions::OnlyTls12 => ONLY_TLS12,
            TlsVersions::OnlyTls13 => ONLY_TLS13,
        }
    }
}

/// The versions for a connection: TLS 1.3 alone on QUIC, `versions` on TLS and WSS.
#[cfg(feature = "tls")]
fn protocol_versions(
    quic: bool,
    versions: TlsVersions,
) -> &'static [&'static SupportedProtocolVersion] {
    if quic {
        ONLY_TLS13
    } else {
        versions.rustls()
    }
}

/// Without `tls` every rustls connection is QUIC: TLS-over-TCP and WSS fail before this with
/// `TransportError::NotBuiltIn`.
#[cfg(all(feature = "quic", not(feature = "tls")))]
fn protocol_versions(
    _quic: bool,
    _versions: TlsVersions,
) -> &'static [&'static SupportedProtocolVersion] {
    ONLY_TLS13
}

/// Whether a server asks clients for certificates, and which CAs it accepts them from.
#[derive(Debug, Clone, Default)]
pub enum ClientAuth {
    /// Clients are not asked for a certificate. The default: MQTT user name and password (or
    /// nothing, on loopback) authenticate clients.
    #[default]
    None,
    /// Clients may present a certificate; if they do, it must chain to one of these CAs.
    Optional(Vec<CertificateDer<'static>>),
    /// Clients must present a certificate chaining to one of these CAs (mutual TLS).
    Required(Vec<CertificateDer<'static>>),
}

/// What a server presents and asks for on TLS, WSS and QUIC listeners. TCP and WS listeners
/// ignore it, so [`ServerTlsSettings::default`] (no certificate) serves them.
#[derive(Debug, Clone, Default)]
pub struct ServerTlsSettings {
    /// The server certificate chain and key; required for encrypted transports.
    pub identity: Option<TlsIdentity>,
    /// Client certificate policy.
    pub client_auth: ClientAuth,
    /// TLS versions for TLS-over-TCP and WSS.
    pub versions: TlsVersions,
    /// Accept QUIC 0-RTT data from resuming clients. Off by default: data in 0-RTT can be
    /// replayed by an attacker, so a server that accepts it must decide what it may act on
    /// before the handshake completes (see `quic.rs`).
    pub quic_zero_rtt: bool,
}

impl ServerTlsSettings {
    /// Settings presenting `identity`, without client certificates.
    pub fn new(identity: TlsIdentity) -> Self {
        ServerTlsSettings {
            identity: Some(identity),
            ..Default::default()
        }
    }

    /// Settings presenting the certificate chain and key in two PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, CertError> {
        Ok(Self::new(TlsIdentity::from_pem_files(cert, key)?))
    }

    /// Settings presenting the development server certificate.
    #[cfg(feature = "cert-gen")]
    pub fn from_dev_certificates(dev: &DevCertificates) -> Result<Self, CertError> {
        Ok(Self::new(dev.server_identity()?))
    }

    /// The same settings with a client certificate policy.
    pub fn with_client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// The same settings with QUIC 0-RTT acceptance switched on or off.
    pub fn with_quic_zero_rtt(mut self, accept: bool) -> Self {
        self.quic_zero_rtt = accept;
        self
    }

    /// The rustls configuration for `kind`: TLS-over-TCP and WSS use [`Self::versions`];
    /// QUIC uses TLS 1.3 with ALPN `mqtt` (a client offering no `mqtt` is refused).
    #[cfg(any(feature = "tls", feature = "quic"))]
    pub(crate) fn rustls_config(
        &self,
        kind: TransportKind,
    ) -> Result<Arc<ServerConfig>, TransportError> {
        let identity = self
            .identity
            .as_ref()
            .ok_or(TransportError::MissingServerCertificate(kind))?;
        let provider = ring_provider();
        let versions = protocol_versions(kind == TransportKind::Quic, self.versions);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)?;
        let builder = match &self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(cas) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(root_store(cas)?, provider)
                    .allow_unauthenticated()
                    .build()?,
            ),
            ClientAuth::Required(cas) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(root_store(cas)?, provider).build()?,
            ),
        };
        let mut config =
            builder.with_single_cert(identity.cert_chain.clone(), identity.key.clone_key())?;
        if kind == TransportKind::Quic {
            config.alpn_protocols = vec![MQTT_ALPN.to_vec()];
            if self.quic_zero_rtt {
                // quinn accepts only 0 or u32::MAX here: the QUIC flow control limits early
                // data, not TLS.
                config.max_early_data_size = u32::MAX;
            }
        }
        Ok(Arc::new(config))
    }
}

/// What a client trusts and presents.
#[derive(Debug, Clone, Default)]
pub struct ClientTlsSettings {
    /// The CA certificates the server certificate must chain to. No system roots are loaded:
    /// give the system bundle as a CA file to use them.
    pub trusted_cas: Vec<CertificateDer<'static>>,
    /// A client certificate and key to present when the server asks.
    pub identity: Option<TlsIdentity>,
    /// TLS versions for TLS-over-TCP and WSS.
    pub versions: TlsVersions,
    /// The name to verify the server certificate against and send as SNI, when it differs
    /// from the URL's host.
    pub server_name: Option<String>,
}

impl ClientTlsSettings {
    /// Trust these CA certificates.
    pub fn trusting(trusted_cas: Vec<CertificateDer<'static>>) -> Self {
        ClientTlsSettings {
            trusted_cas,
            ..Default::default()
        }
    }

    /// Trust the CA certificates in a PEM file (`--cafile`).
    pub fn trusting_ca_file(path: &Path) -> Result<Self, CertError> {
        Ok(Self::trusting(load_cert_chain(path)?))
    }

    /// Trust the development CA of a broker whose certificates are in `dir`.
    pub fn trusting_dev_ca(dir: &Path) -> Result<Self, CertError> {
        Self::trusting_ca_file(&dir.join("ca.pem"))
    }

    /// The same settings presenting a client certificate.
    pub fn with_identity(mut self, identity: TlsIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The same settings limited to some TLS versions (TLS-over-TCP and WSS).
    pub fn with_versions(mut self, versions: TlsVersions) -> Self {
        self.versions = versions;
        self
    }

    /// The rustls configuration for TLS-over-TCP/WSS (`quic == false`) or QUIC (TLS 1.3,
    /// ALPN `mqtt`, early data enabled so that a resumed session can carry 0-RTT).
    #[cfg(any(feature = "tls", feature = "quic"))]
    pub(crate) fn rustls_config(&self, quic: bool) -> Result<ClientConfig, TransportError> {
        if self.trusted_cas.is_empty() {
            return Err(TransportError::NoTrustedCa);
        }
        let versions = protocol_versions(quic, self.versions);
        let builder = ClientConfig::builder_with_provider(ring_provider())
            .with_protocol_versions(versions)?
            .with_root_certificates(root_store(&self.trusted_cas)?);
        let mut config = match &self.identity {
            Some(identity) => builder
                .with_client_auth_cert(identity.cert_chain.clone(), identity.key.clone_key())?,
            None => builder.with_no_client_auth(),
        };
        if quic {
            config.alpn_protocols = vec![MQTT_ALPN.to_vec()];
            config.enable_early_data = true;
        }
        Ok(config)
    }

    /// The TLS server name for a URL host.
    #[cfg(feature = "tls")]
    pub(crate) fn server_name_for(
        &self,
        url_host: &str,
    ) -> Result<ServerName<'static>, TransportError> {
        let name = self.server_name.as_deref().unwrap_or(url_host);
        ServerName::try_from(name.to_owned())
            .map_err(|_| TransportError::InvalidServerName(name.to_owned()))
    }
}

#[cfg(any(feature = "tls", feature = "quic"))]
pub(crate) fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(any(feature = "tls", feature = "quic"))]
fn root_store(cas: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>, TransportError> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca.clone())?;
    }
    Ok(Arc::new(roots))
}

/// The peer certificate and TLS version of an established TLS session.
#[cfg(feature = "tls")]
pub(crate) fn session_facts(
    common: &rustls::CommonState,
) -> (Option<CertificateDer<'static>>, Option<TlsVersion>) {
    let cert = common
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.clone().into_owned());
    (cert, TlsVersion::from_rustls(common.protocol_version()))
}
