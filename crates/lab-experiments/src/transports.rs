//! The transports and brokers the experiments compare, and how a client reaches each: the
//! URL (ports on the lab's broker host), the TLS settings (trusting the run's development CA,
//! verifying the name `localhost` the development certificate carries, pinning the TLS
//! version) and the QUIC options (0-RTT on or off).

use std::fmt;

use mquictt_lab::BROKER_ADDR;
use mquictt_transport::{ClientTlsSettings, TlsVersions, TransportKind};

/// A transport as the experiments distinguish them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// MQTT over TCP.
    Tcp,
    /// MQTT over TLS 1.2 over TCP.
    Tls12,
    /// MQTT over TLS 1.3 over TCP.
    Tls13,
    /// MQTT over QUIC, full handshake, one stream.
    Quic,
    /// MQTT over QUIC resuming with 0-RTT (the CONNECT travels with the first flight).
    QuicZeroRtt,
    /// MQTT over QUIC with a data stream per topic (EMQX's multi-stream mode).
    QuicMultiStream,
}

impl Transport {
    /// The transports of the connection-cost experiment.
    pub const CONNECTION: [Transport; 5] = [
        Transport::Tcp,
        Transport::Tls12,
        Transport::Tls13,
        Transport::Quic,
        Transport::QuicZeroRtt,
    ];

    /// A short label for tables and charts.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::Tls12 => "TLS 1.2",
            Transport::Tls13 => "TLS 1.3",
            Transport::Quic => "QUIC",
            Transport::QuicZeroRtt => "QUIC 0-RTT",
            Transport::QuicMultiStream => "QUIC multi-stream",
        }
    }

    /// The transport layer the URL selects.
    pub fn kind(self) -> TransportKind {
        match self {
            Transport::Tcp => TransportKind::Tcp,
            Transport::Tls12 | Transport::Tls13 => TransportKind::Tls,
            Transport::Quic | Transport::QuicZeroRtt | Transport::QuicMultiStream => {
                TransportKind::Quic
            }
        }
    }

    /// The TLS settings a client uses: trust `ca` and offer only this transport's TLS
    /// version (QUIC is always TLS 1.3). The lab's certificate names the broker's address.
    pub fn client_tls(self, ca: ClientTlsSettings) -> ClientTlsSettings {
        let versions = match self {
            Transport::Tls12 => TlsVersions::OnlyTls12,
            _ => TlsVersions::OnlyTls13,
        };
        ca.with_versions(versions)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The broker a run talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BrokerKind {
    /// `mquictt broker`.
    Mquictt,
    /// Eclipse Mosquitto (TCP and TLS only).
    Mosquitto,
}

impl BrokerKind {
    /// A short label for tables and charts.
    pub fn label(self) -> &'static str {
        match self {
            BrokerKind::Mquictt => "mquictt",
            BrokerKind::Mosquitto => "mosquitto",
        }
    }

    /// Whether this broker speaks `transport`.
    pub fn supports(self, transport: Transport) -> bool {
        match self {
            BrokerKind::Mquictt => true,
            BrokerKind::Mosquitto => matches!(
                transport,
                Transport::Tcp | Transport::Tls12 | Transport::Tls13
            ),
        }
    }

    /// The port this broker listens on for `kind` in the lab (both brokers can run in the
    /// same broker host).
    pub fn port(self, kind: TransportKind) -> u16 {
        match (self, kind) {
            (BrokerKind::Mquictt, TransportKind::Tls) => 8883,
            (BrokerKind::Mquictt, TransportKind::Quic) => 14567,
            (BrokerKind::Mquictt, _) => 1883,
            (BrokerKind::Mosquitto, TransportKind::Tls) => 8884,
            (BrokerKind::Mosquitto, _) => 1884,
        }
    }

    /// The URL a client of this broker connects to over `transport`.
    pub fn url(self, transport: Transport) -> String {
        let kind = transport.kind();
        let scheme = match kind {
            TransportKind::Tls => "mqtts",
            TransportKind::Quic => "quic",
            _ => "mqtt",
        };
        format!("{scheme}://{BROKER_ADDR}:{}", self.port(kind))
    }
}

impl fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_the_transport_and_the_brokers_own_port() {
        assert_eq!(
            BrokerKind::Mquictt.url(Transport::Tcp),
            "mqtt://10.200.0.1:1883"
        );
        assert_eq!(
            BrokerKind::Mquictt.url(Transport::QuicZeroRtt),
            "quic://10.200.0.1:14567"
        );
        assert_eq!(
            BrokerKind::Mosquitto.url(Transport::Tls12),
            "mqtts://10.200.0.1:8884"
        );
        assert!(!BrokerKind::Mosquitto.supports(Transport::Quic));
        assert!(BrokerKind::Mquictt.supports(Transport::QuicMultiStream));
    }

    #[test]
    fn tls_settings_pin_the_version() {
        let tls = Transport::Tls12.client_tls(ClientTlsSettings::default());
        assert_eq!(tls.versions, TlsVersions::OnlyTls12);
        let quic = Transport::Quic.client_tls(ClientTlsSettings::default());
        assert_eq!(quic.versions, TlsVersions::OnlyTls13);
    }
}
