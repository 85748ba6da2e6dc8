//! Transport URLs: `tcp://`/`mqtt://`, `tls://`/`mqtts://`/`ssl://`, `ws://`, `wss://` and
//! `quic://`, parsed into a [`TransportUrl`] (a server to connect to, host may be a name) or a
//! [`ListenUrl`] (a local socket address to bind). Owns default ports, the WebSocket path default
//! and the error messages a user sees for a mistyped URL; knows nothing about sockets.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use thiserror::Error;

/// The WebSocket path used when a `ws://` or `wss://` URL has none. `/mqtt` is what mosquitto,
/// EMQX, paho and MQTT.js use by default.
pub const DEFAULT_WS_PATH: &str = "/mqtt";

/// The transport a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// MQTT over plain TCP (`tcp://`, `mqtt://`).
    Tcp,
    /// MQTT over TLS over TCP (`tls://`, `mqtts://`, `ssl://`).
    Tls,
    /// MQTT over WebSocket over TCP (`ws://`).
    Ws,
    /// MQTT over WebSocket over TLS (`wss://`).
    Wss,
    /// MQTT over QUIC (`quic://`), ALPN `mqtt`.
    Quic,
}

impl TransportKind {
    /// Every transport.
    pub const ALL: [TransportKind; 5] = [
        TransportKind::Tcp,
        TransportKind::Tls,
        TransportKind::Ws,
        TransportKind::Wss,
        TransportKind::Quic,
    ];

    /// The IANA/community default port of the transport: 1883 (MQTT), 8883 (MQTT over TLS),
    /// 8083 and 8084 (WebSocket and WebSocket over TLS, as EMQX and NanoMQ use them), 14567 (MQTT
    /// over QUIC, as EMQX uses it).
    pub fn default_port(self) -> u16 {
        match self {
            TransportKind::Tcp => 1883,
            TransportKind::Tls => 8883,
            TransportKind::Ws => 8083,
            TransportKind::Wss => 8084,
            TransportKind::Quic => 14567,
        }
    }

    /// The canonical scheme written back by `Display`.
    pub fn scheme(self) -> &'static str {
        match self {
            TransportKind::Tcp => "mqtt",
            TransportKind::Tls => "mqtts",
            TransportKind::Ws => "ws",
            TransportKind::Wss => "wss",
            TransportKind::Quic => "quic",
        }
    }

    /// Whether the transport carries TLS (QUIC always does).
    pub fn is_encrypted(self) -> bool {
        matches!(
            self,
            TransportKind::Tls | TransportKind::Wss | TransportKind::Quic
        )
    }

    /// Whether the transport is a WebSocket and so has a path.
    pub fn is_websocket(self) -> bool {
        matches!(self, TransportKind::Ws | TransportKind::Wss)
    }

    /// Whether this build carries the transport: TCP always, the others when their Cargo
    /// feature is on ([`Self::cargo_features`]).
    pub fn is_built_in(self) -> bool {
        match self {
            TransportKind::Tcp => true,
            TransportKind::Tls => cfg!(feature = "tls"),
            TransportKind::Ws => cfg!(feature = "ws"),
            TransportKind::Wss => cfg!(all(feature = "tls", feature = "ws")),
            TransportKind::Quic => cfg!(feature = "quic"),
        }
    }

    /// The Cargo features of this crate (forwarded under the same names by the client crate
    /// and the `mquictt` binary) that bring the transport, comma-separated; empty for TCP,
    /// which is always built in.
    pub fn cargo_features(self) -> &'static str {
        match self {
            TransportKind::Tcp => "",
            TransportKind::Tls => "tls",
            TransportKind::Ws => "ws",
            TransportKind::Wss => "tls,ws",
            TransportKind::Quic => "quic",
        }
    }

    fn from_scheme(scheme: &str) -> Option<Self> {
        match scheme.to_ascii_lowercase().as_str() {
            "tcp" | "mqtt" => Some(TransportKind::Tcp),
            "tls" | "mqtts" | "ssl" => Some(TransportKind::Tls),
            "ws" => Some(TransportKind::Ws),
            "wss" => Some(TransportKind::Wss),
            "quic" => Some(TransportKind::Quic),
            _ => None,
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
            TransportKind::Ws => "WebSocket",
            TransportKind::Wss => "WebSocket over TLS",
            TransportKind::Quic => "QUIC",
        })
    }
}

/// Why a URL was refused. Each message names the part of the URL that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UrlError {
    /// No `scheme://` prefix.
    #[error("`{0}` has no scheme: write it as mqtt://, mqtts://, ws://, wss:// or quic:// followed by host[:port]")]
    MissingScheme(String),
    /// A scheme this crate does not serve.
    #[error("unknown scheme `{0}://`: use tcp:// or mqtt://, tls:// or mqtts:// or ssl://, ws://, wss:// or quic://")]
    UnknownScheme(String),
    /// Nothing between `://` and the port or path.
    #[error("`{0}` has no host")]
    MissingHost(String),
    /// `user:password@` in the URL.
    #[error("`{0}` contains credentials (`user@`); pass the user name and password separately")]
    CredentialsInUrl(String),
    /// An IPv6 address without its closing `]`.
    #[error("`{0}`: unterminated `[` in the IPv6 address")]
    UnterminatedIpv6(String),
    /// The text in brackets is not an IPv6 address.
    #[error("`{0}` is not a valid IPv6 address")]
    InvalidIpv6(String),
    /// The port is not a number in 0..=65535.
    #[error("`{0}` is not a valid port (a number from 0 to 65535)")]
    InvalidPort(String),
    /// A host name with characters no host name has.
    #[error("`{0}` is not a valid host name")]
    InvalidHost(String),
    /// A path on a transport that has none.
    #[error("`{path}`: only ws:// and wss:// URLs have a path, {scheme}:// does not")]
    UnexpectedPath {
        /// The scheme as written.
        scheme: String,
        /// The path as written.
        path: String,
    },
    /// `?query` or `#fragment`.
    #[error("`{0}`: query strings and fragments are not supported")]
    QueryOrFragment(String),
    /// A listen URL whose host is a name other than `localhost`: a listener binds an address.
    #[error(
        "cannot listen on `{0}`: give an IP address (127.0.0.1, 0.0.0.0, [::1], [::]) or localhost"
    )]
    ListenHostNotAddress(String),
}

/// Where a host part of a URL points.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP literal (`127.0.0.1`, `[::1]`).
    Ip(IpAddr),
    /// A DNS name, resolved when connecting and used as the TLS server name.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// A server to connect to: transport, host, port and (for WebSocket) path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransportUrl {
    /// Which transport the scheme selects.
    pub kind: TransportKind,
    /// The host as written.
    pub host: Host,
    /// The port, or the transport's default.
    pub port: u16,
    /// The HTTP path of a WebSocket URL (default [`DEFAULT_WS_PATH`]); `/` for other transports.
    pub path: String,
}

impl TransportUrl {
    /// Parses a URL such as `mqtt://broker.local`, `wss://[::1]:9000/ws` or `quic://127.0.0.1`.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let text = text.trim();
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| UrlError::MissingScheme(text.to_owned()))?;
        let kind = TransportKind::from_scheme(scheme)
            .ok_or_else(|| UrlError::UnknownScheme(scheme.to_owned()))?;
        if rest.contains(['?', '#']) {
            return Err(UrlError::QueryOrFragment(text.to_owned()));
        }
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(UrlError::CredentialsInUrl(text.to_owned()));
        }
        let (host, port) = split_host_port(authority, text)?;
        let port = port.unwrap_or_else(|| kind.default_port());
        let path = if kind.is_websocket() {
            if path.is_empty() {
                DEFAULT_WS_PATH.to_owned()
            } else {
                path.to_owned()
            }
        } else if path.is_empty() || path == "/" {
            "/".to_owned()
        } else {
            return Err(UrlError::UnexpectedPath {
                scheme: scheme.to_owned(),
                path: path.to_owned(),
            });
        };
        Ok(TransportUrl {
            kind,
            host,
            port,
            path,
        })
    }

    /// The name to present in TLS SNI and to check the server certificate against: the host
    /// name, or the IP address for an IP literal.
    pub fn server_name(&self) -> String {
        match &self.host {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(name) => name.clone(),
        }
    }
}

impl FromStr for TransportUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TransportUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.kind.scheme(), self.host, self.port)?;
        if self.kind.is_websocket() {
            f.write_str(&self.path)?;
        }
        Ok(())
    }
}

/// A local address to listen on: transport, socket address and (for WebSocket) the one path
/// the listener serves. `localhost` means 127.0.0.1; port 0 asks the OS for a free port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenUrl {
    /// Which transport the scheme selects.
    pub kind: TransportKind,
    /// The address to bind.
    pub addr: SocketAddr,
    /// The WebSocket path served (default [`DEFAULT_WS_PATH`]); `/` for other transports.
    pub path: String,
}

impl ListenUrl {
    /// Parses a URL such as `mqtt://0.0.0.0`, `ws://127.0.0.1:0/mqtt` or `quic://[::]:14567`.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let url = TransportUrl::parse(text)?;
        let ip = match url.host {
            Host::Ip(ip) => ip,
            Host::Name(name) if name.eq_ignore_ascii_case("localhost") => {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
            Host::Name(name) => return Err(UrlError::ListenHostNotAddress(name)),
        };
        Ok(ListenUrl {
            kind: url.kind,
            addr: SocketAddr::new(ip, url.port),
            path: url.path,
        })
    }

    /// A listen URL for `kind` on `addr` with the default WebSocket path.
    pub fn new(kind: TransportKind, addr: SocketAddr) -> Self {
        let path = if kind.is_websocket() {
            DEFAULT_WS_PATH
        } else {
            "/"
        };
        ListenUrl {
            kind,
            addr,
            path: path.to_owned(),
        }
    }
}

impl FromStr for ListenUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ListenUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.kind.scheme(), self.addr)?;
        if self.kind.is_websocket() {
            f.write_str(&self.path)?;
        }
        Ok(())
    }
}

fn split_host_port(authority: &str, url: &str) -> Result<(Host, Option<u16>), UrlError> {
    if authority.is_empty() {
        return Err(UrlError::MissingHost(url.to_owned()));
    }
    let (host, port) = if let Some(after_bracket) = authority.strip_prefix('[') {
        let (inside, after) = after_bracket
            .split_once(']')
            .ok_or_else(|| UrlError::UnterminatedIpv6(url.to_owned()))?;
        let ip: IpAddr = inside
            .parse::<std::net::Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| UrlError::InvalidIpv6(inside.to_owned()))?;
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(UrlError::InvalidPort(after.to_owned())),
            },
        };
        (Host::Ip(ip), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(UrlError::MissingHost(url.to_owned()));
        }
        let host = match host.parse::<Ipv4Addr>() {
            Ok(ip) => Host::Ip(IpAddr::V4(ip)),
            Err(_) if is_host_name(host) => Host::Name(host.to_owned()),
            Err(_) => return Err(UrlError::InvalidHost(host.to_owned())),
        };
        (host, port)
    };
    let port = match port {
        None => None,
        Some(text) => Some(
            text.parse::<u16>()
                .map_err(|_| UrlError::InvalidPort(text.to_owned()))?,
        ),
    };
    Ok((host, port))
}

/// Letters, digits, `-`, `_` and `.`: what DNS names and `/etc/hosts` entries use.
fn is_host_name(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn schemes_select_transports_and_default_ports() {
        let cases = [
            ("tcp://h", TransportKind::Tcp, 1883),
            ("mqtt://h", TransportKind::Tcp, 1883),
            ("tls://h", TransportKind::Tls, 8883),
            ("mqtts://h", TransportKind::Tls, 8883),
            ("ssl://h", TransportKind::Tls, 8883),
            ("ws://h", TransportKind::Ws, 8083),
            ("wss://h", TransportKind::Wss, 8084),
            ("quic://h", TransportKind::Quic, 14567),
            ("QUIC://h", TransportKind::Quic, 14567),
        ];
        for (text, kind, port) in cases {
            let url = TransportUrl::parse(text).unwrap();
            assert_eq!(url.kind, kind, "{text}");
            assert_eq!(url.port, port, "{text}");
            assert_eq!(url.host, Host::Name("h".into()));
        }
    }

    #[test]
    fn websocket_path_defaults_to_mqtt_and_keeps_a_given_one() {
        assert_eq!(TransportUrl::parse("ws://h").unwrap().path, "/mqtt");
        assert_eq!(TransportUrl::parse("wss://h:1/").unwrap().path, "/");
        assert_eq!(TransportUrl::parse("ws://h:9/a/b").unwrap().path, "/a/b");
    }

    #[test]
    fn explicit_ports_and_ip_literals() {
        let url = TransportUrl::parse("mqtts://10.1.2.3:9999").unwrap();
        assert_eq!(url.host, Host::Ip("10.1.2.3".parse().unwrap()));
        assert_eq!(url.port, 9999);
        let url = TransportUrl::parse("quic://[::1]:4433").unwrap();
        assert_eq!(url.host, Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(url.port, 4433);
        assert_eq!(url.server_name(), "::1");
        let url = TransportUrl::parse("quic://[::1]").unwrap();
        assert_eq!(url.port, 14567);
        assert_eq!(url.to_string(), "quic://[::1]:14567");
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "mqtt://h:1",
            "mqtts://1.2.3.4:5",
            "ws://h:8083/mqtt",
            "quic://[::1]:7",
        ] {
            let url = TransportUrl::parse(text).unwrap();
            assert_eq!(url.to_string(), text);
            assert_eq!(TransportUrl::parse(&url.to_string()).unwrap(), url);
        }
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let err = |t: &str| TransportUrl::parse(t).unwrap_err();
        assert!(matches!(err("localhost:1883"), UrlError::MissingScheme(_)));
        assert_eq!(err("http://h"), UrlError::UnknownScheme("http".into()));
        assert!(matches!(err("mqtt://"), UrlError::MissingHost(_)));
        assert!(matches!(err("mqtt://:1883"), UrlError::MissingHost(_)));
        assert_eq!(err("mqtt://h:x"), UrlError::InvalidPort("x".into()));
        assert_eq!(err("mqtt://h:70000"), UrlError::InvalidPort("70000".into()));
        assert!(matches!(err("mqtt://[::1"), UrlError::UnterminatedIpv6(_)));
        assert!(matches!(err("mqtt://[zz]:1"), UrlError::InvalidIpv6(_)));
        assert!(matches!(err("mqtt://[::1]x"), UrlError::InvalidPort(_)));
        assert!(matches!(err("mqtt://u:p@h"), UrlError::CredentialsInUrl(_)));
        assert!(matches!(err("mqtt://h/x"), UrlError::UnexpectedPath { .. }));
        assert!(matches!(err("ws://h/x?y"), UrlError::QueryOrFragment(_)));
        assert!(matches!(err("mqtt://a b"), UrlError::InvalidHost(_)));
        let message = err("http://h").to_string();
        assert!(message.contains("http://"), "{message}");
    }

    #[test]
    fn listen_urls_need_an_address() {
        let url = ListenUrl::parse("quic://0.0.0.0").unwrap();
        assert_eq!(url.addr, "0.0.0.0:14567".parse().unwrap());
        let url = ListenUrl::parse("ws://localhost:0").unwrap();
        assert_eq!(url.addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!(url.path, "/mqtt");
        let url = ListenUrl::parse("mqtts://[::]:8883").unwrap();
        assert_eq!(url.addr, "[::]:8883".parse().unwrap());
        assert_eq!(
            ListenUrl::parse("mqtt://broker.example").unwrap_err(),
            UrlError::ListenHostNotAddress("broker.example".into())
        );
        assert_eq!(
            ListenUrl::new(TransportKind::Wss, "127.0.0.1:1".parse().unwrap()).to_string(),
            "wss://127.0.0.1:1/mqtt"
        );
    }
}
