//! The broker's TOML config file: its schema, defaults and the translation into the broker
//! library's typed `BrokerConfig`. Unknown keys and bad values are errors that name the key and
//! the file; every key is documented in `docs/configuration.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mquictt_broker::{
    BrokerConfig, EarlyDataPolicy, IdleWithoutDescriptor, PublishOverload, RateLimit,
};
use mquictt_protocol::QoS;
use serde::Deserialize;

use crate::quic_datagrams;

/// Where the broker listens when neither the config file nor `--listen` says otherwise:
/// loopback only, so a fresh install is never reachable from the network.
pub const DEFAULT_LISTENERS: &[&str] = &[
    "tcp://127.0.0.1:1883",
    "quic://127.0.0.1:14567",
    "ws://127.0.0.1:8083/mqtt",
];

/// Where durable data lives when nothing else is configured.
pub const DEFAULT_DATA_DIR: &str = "./mquictt-data";

/// A config error, always naming the file it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type; the
    /// message from the parser names the key and the line.
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value parsed but is not acceptable.
    #[error("config file {path}: key `{key}`: {message}")]
    Value {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

/// The whole config file. Every field is optional; absent fields keep the broker's defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Directory for durable data and the generated dev certificate.
    pub data_dir: Option<PathBuf>,
    /// `"durable"` (default): state in `data_dir`, acknowledged messages survive a crash;
    /// `"memory"`: nothing survives a restart.
    pub storage: Option<StorageName>,
    /// What to do when the store in `data_dir` is damaged: `"move-aside"` (default) or
    /// `"refuse"`.
    pub on_corrupt_store: Option<OnCorruptName>,
    /// Clients without credentials: absent, they are allowed only from loopback addresses
    /// (and a non-loopback listener without authentication refuses to start); `true` allows
    /// them everywhere, `false` nowhere.
    pub allow_anonymous: Option<bool>,
    /// Password file written by `mquictt passwd` (argon2id hashes and SCRAM-SHA-256
    /// credentials); reloaded when it changes or on SIGHUP.
    pub password_file: Option<PathBuf>,
    /// ACL file (see docs/security.md); once set, whatever it does not allow is denied.
    /// Reloaded when it changes or on SIGHUP.
    pub acl_file: Option<PathBuf>,
    /// `[[listener]]` tables; absent: the loopback defaults.
    #[serde(default)]
    pub listener: Vec<ListenerSection>,
    /// Connection and resource limits.
    #[serde(default)]
    pub limits: LimitsSection,
    /// MQTT features announced in CONNACK.
    #[serde(default)]
    pub mqtt: MqttSection,
    /// `$SYS` topics.
    #[serde(default)]
    pub sys: SysSection,
    /// Prometheus metrics endpoint.
    #[serde(default)]
    pub metrics: MetricsSection,
}

/// One `[[listener]]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    /// `tcp://`, `ws://`, `tls://`, `wss://` or `quic://` with a host and port.
    pub url: String,
    /// PEM certificate chain for tls/wss/quic; absent: the generated dev certificate.
    pub cert: Option<PathBuf>,
    /// PEM private key matching `cert`.
    pub key: Option<PathBuf>,
    /// PEM CA certificates that client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    /// Client certificates: `"none"` (default), `"optional"` or `"required"`.
    pub client_auth: Option<ClientAuthName>,
    /// TLS versions for tls/wss: `"1.2+1.3"` (default), `"1.2"` or `"1.3"`.
    pub tls_versions: Option<TlsVersionsName>,
    /// QUIC 0-RTT replay policy: `"idempotent"` (default), `"connect-only"` or `"refuse"`
    /// (see docs/quic.md).
    pub quic_zero_rtt: Option<ZeroRttName>,
    /// QUIC idle timeout; default 60 s, raised to 1.5 x `mqtt.server_keep_alive` if larger.
    #[serde(default, with = "opt_duration")]
    pub quic_idle_timeout: Option<Duration>,
    /// Bidirectional streams a QUIC client may have open at once (the control stream plus
    /// data streams in multi-stream mode); default 14, at most [`MAX_QUIC_STREAMS`].
    pub quic_max_streams: Option<u32>,
    /// QUIC path MTU discovery; default off (every datagram stays at 1,200 bytes), on when
    /// `quic_max_udp_payload` is set.
    pub quic_mtu_discovery: Option<bool>,
    /// Ceiling of QUIC path MTU discovery, in UDP payload bytes (1200 to 65527), which it
    /// switches on; absent: quinn's 1452 when discovery is on. Datagrams beyond 1,472 bytes
    /// need a ceiling on the client too.
    pub quic_max_udp_payload: Option<u32>,
    /// Receive and send buffer requested for the QUIC listener's UDP socket, in bytes;
    /// default 4 MiB, within [`quic_datagrams::SOCKET_BUFFER_RANGE`].
    pub quic_socket_buffer: Option<u64>,
    /// Threads of the QUIC listener's own, each serving the connections placed on it (up to
    /// [`MAX_QUIC_THREADS`]); 0 serves them on the worker threads; default: as many as
    /// worker threads.
    pub quic_threads: Option<u32>,
    /// Use a verified client certificate's `"cn"` (Common Name) or `"san"` (first e-mail,
    /// DNS or URI Subject Alternative Name) as the user name; absent: certificates name nobody.
    pub certificate_username: Option<CertificateUsernameName>,
}

/// The QUIC listener's idle timeout when the file does not set one: long enough for clients
/// that ping every 15 to 40 s, short enough that a vanished device frees its slot soon.
pub const DEFAULT_QUIC_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest `quic_max_streams` accepted: quinn reserves room for every stream a client may
/// open in every connection (about 40 bytes each), so a typo must not cost megabytes.
pub const MAX_QUIC_STREAMS: u32 = 1000;

/// The largest `quic_threads` accepted: the most threads a QUIC listener may have.
pub const MAX_QUIC_THREADS: u32 = mquictt_transport::quic::MAX_SERVER_THREADS as u32;

impl ListenerSection {
    /// Whether QUIC path MTU discovery is on: as set, otherwise exactly when a ceiling for it
    /// (`quic_max_udp_payload`) is set.
    pub fn quic_mtu_discovery_enabled(&self) -> bool {
        self.quic_mtu_discovery
            .unwrap_or(self.quic_max_udp_payload.is_some())
    }

    /// The listener's `quic_max_udp_payload`, checked: `None` keeps quinn's ceiling.
    pub fn checked_quic_max_udp_payload(&self, path: &Path) -> Result<Option<u16>, ConfigError> {
        self.quic_max_udp_payload
            .map(|size| quic_datagrams::check_max_udp_payload(size.into()))
            .transpose()
            .map_err(|message| ConfigError::Value {
                path: path.to_path_buf(),
                key: "listener.quic_max_udp_payload",
                message,
            })
    }

    /// The listener's `quic_socket_buffer`, checked: `None` keeps the default.
    pub fn checked_quic_socket_buffer(&self, path: &Path) -> Result<Option<usize>, ConfigError> {
        self.quic_socket_buffer
            .map(quic_datagrams::check_socket_buffer)
            .transpose()
            .map_err(|message| ConfigError::Value {
                path: path.to_path_buf(),
                key: "listener.quic_socket_buffer",
                message,
            })
    }

    /// The listener's `quic_threads`, checked: `None` keeps the default.
    pub fn checked_quic_threads(&self, path: &Path) -> Result<Option<usize>, ConfigError> {
        match self.quic_threads {
            Some(n) if n > MAX_QUIC_THREADS => Err(ConfigError::Value {
                path: path.to_path_buf(),
                key: "listener.quic_threads",
                message: format!(
                    "must be 0..={MAX_QUIC_THREADS} (0 serves QUIC connections on the worker \
                     threads)"
                ),
            }),
            other => Ok(other.map(|n| n as usize)),
        }
    }

    /// The listener's `quic_max_streams`, checked: `None` keeps the default.
    pub fn checked_quic_max_streams(&self, path: &Path) -> Result<Option<u32>, ConfigError> {
        match self.quic_max_streams {
            Some(n) if n == 0 || n > MAX_QUIC_STREAMS => Err(ConfigError::Value {
                path: path.to_path_buf(),
                key: "listener.quic_max_streams",
                message: format!(
                    "must be 1..={MAX_QUIC_STREAMS} (a client needs at least its control stream)"
                ),
            }),
            other => Ok(other),
        }
    }
}

/// QUIC 0-RTT replay policies as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZeroRttName {
    Refuse,
    Idempotent,
    ConnectOnly,
}

impl ZeroRttName {
    /// The broker library's policy.
    pub fn policy(self) -> EarlyDataPolicy {
        match self {
            ZeroRttName::Refuse => EarlyDataPolicy::Refuse,
            ZeroRttName::Idempotent => EarlyDataPolicy::Idempotent,
            ZeroRttName::ConnectOnly => EarlyDataPolicy::ConnectOnly,
        }
    }
}

/// Which certificate name becomes the user name, as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateUsernameName {
    Cn,
    San,
}

/// Client certificate policy as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuthName {
    None,
    Optional,
    Required,
}

/// TLS versions as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TlsVersionsName {
    #[serde(rename = "1.2+1.3")]
    Both,
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

/// `[limits]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    #[serde(default, with = "opt_duration")]
    pub connect_timeout: Option<Duration>,
    pub max_connections: Option<usize>,
    pub max_packet_size: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub v3_inflight: Option<u16>,
    pub max_queued_messages: Option<usize>,
    pub max_queued_bytes: Option<usize>,
    #[serde(default, with = "opt_duration")]
    pub max_session_expiry: Option<Duration>,
    pub topic_alias_maximum: Option<u16>,
    pub max_client_id_len: Option<usize>,
    #[serde(default, with = "opt_duration")]
    pub shutdown_grace: Option<Duration>,
    pub max_pending_connections: Option<usize>,
    /// New connections per second per source address; 0 switches the limit off.
    pub connection_rate: Option<u32>,
    pub connection_burst: Option<u32>,
    pub max_sessions: Option<usize>,
    pub max_inflight: Option<u16>,
    pub max_topic_length: Option<usize>,
    pub max_topic_levels: Option<usize>,
    pub max_subscriptions_per_client: Option<usize>,
    /// PUBLISH packets per second per connection; 0 switches the limit off.
    pub publish_rate: Option<u32>,
    pub publish_burst: Option<u32>,
    pub publish_overload: Option<PublishOverloadName>,
    /// Bytes of messages durable storage may hold; 0: no limit.
    pub max_storage_bytes: Option<u64>,
    /// When a parked TCP socket leaves the table of file descriptors.
    pub idle_without_descriptor: Option<IdleWithoutDescriptorName>,
}

/// `idle_without_descriptor` as written in the file.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdleWithoutDescriptorName {
    Auto,
    Always,
    Never,
}

/// What happens to a client publishing too fast, as written in the file.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublishOverloadName {
    Throttle,
    Disconnect,
}

/// Storage kinds as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageName {
    Durable,
    Memory,
}

/// Damaged-store policies as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnCorruptName {
    MoveAside,
    Refuse,
}

/// `[mqtt]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    #[serde(default, with = "opt_duration")]
    pub server_keep_alive: Option<Duration>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<bool>,
    pub wildcard_subscription_available: Option<bool>,
    pub subscription_identifiers_available: Option<bool>,
    pub shared_subscription_available: Option<bool>,
}

/// `[sys]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SysSection {
    /// How often `$SYS` topics are published; `"0s"` switches them off.
    #[serde(default, with = "opt_duration")]
    pub interval: Option<Duration>,
}

/// `[metrics]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Address of the Prometheus `/metrics` endpoint, e.g. `"127.0.0.1:9183"`; absent: off.
    pub listen: Option<std::net::SocketAddr>,
}

impl FileConfig {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses TOML text that came from `path` (used in error messages only).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Applies the file's settings on top of the library defaults.
    pub fn broker_config(&self, path: &Path) -> Result<BrokerConfig, ConfigError> {
        let value_error = |key: &'static str, message: &str| ConfigError::Value {
            path: path.to_path_buf(),
            key,
            message: message.to_string(),
        };
        let mut config = BrokerConfig::default();
        let limits = &self.limits;
        if let Some(v) = limits.connect_timeout {
            if v.is_zero() {
                return Err(value_error(
                    "limits.connect_timeout",
                    "must be greater than 0",
                ));
            }
            config.connect_timeout = v;
        }
        if let Some(v) = limits.max_connections {
            config.max_connections = v;
        }
        if let Some(v) = limits.max_packet_size {
            if v < 64 {
                return Err(value_error(
                    "limits.max_packet_size",
                    "must be at least 64 bytes (a CONNECT with a short client id needs about 20)",
                ));
            }
            config.max_packet_size = v;
        }
        if let Some(v) = limits.receive_maximum {
            if v == 0 {
                return Err(value_error(
                    "limits.receive_maximum",
                    "must be 1..=65535 (0 is a protocol error in MQTT 5)",
                ));
            }
            config.receive_maximum = v;
        }
        if let Some(v) = limits.v3_inflight {
            if v == 0 {
                return Err(value_error("limits.v3_inflight", "must be 1..=65535"));
            }
            config.v3_inflight = v;
        }
        if let Some(v) = limits.max_queued_messages {
            if v == 0 {
                return Err(value_error(
                    "limits.max_queued_messages",
                    "must be at least 1",
                ));
            }
            config.max_queued_messages = v;
        }
        if let Some(v) = limits.max_queued_bytes {
            if v == 0 {
                return Err(value_error("limits.max_queued_bytes", "must be at least 1"));
            }
            config.max_queued_bytes = v;
        }
        if let Some(v) = limits.max_session_expiry {
            config.max_session_expiry = v;
        }
        if let Some(v) = limits.topic_alias_maximum {
            config.topic_alias_maximum = v;
        }
        if let Some(v) = limits.max_client_id_len {
            if v < 23 {
                return Err(value_error(
                    "limits.max_client_id_len",
                    "must be at least 23: every MQTT server must accept ids of 1 to 23 characters",
                ));
            }
            config.max_client_id_len = v;
        }
        if let Some(v) = limits.shutdown_grace {
            config.shutdown_grace = v;
        }
        if let Some(v) = limits.max_pending_connections {
            if v == 0 {
                return Err(value_error(
                    "limits.max_pending_connections",
                    "must be at least 1 (0 would refuse every client)",
                ));
            }
            config.max_pending_connections = v;
        }
        config.connection_rate = rate(
            config.connection_rate,
            limits.connection_rate,
            limits.connection_burst,
        )
        .map_err(|m| value_error("limits.connection_burst", m))?;
        if let Some(v) = limits.max_sessions {
            config.max_sessions = v;
        }
        if let Some(v) = limits.max_inflight {
            if v == 0 {
                return Err(value_error("limits.max_inflight", "must be 1..=65535"));
            }
            config.max_inflight = v;
        }
        if let Some(v) = limits.max_topic_length {
            if v == 0 || v > usize::from(u16::MAX) {
                return Err(value_error("limits.max_topic_length", "must be 1..=65535"));
            }
            config.max_topic_length = v;
        }
        if let Some(v) = limits.max_topic_levels {
            if v == 0 {
                return Err(value_error("limits.max_topic_levels", "must be at least 1"));
            }
            config.max_topic_levels = v;
        }
        if let Some(v) = limits.max_subscriptions_per_client {
            config.max_subscriptions_per_client = v;
        }
        config.publish_rate = rate(
            config.publish_rate,
            limits.publish_rate,
            limits.publish_burst,
        )
        .map_err(|m| value_error("limits.publish_burst", m))?;
        if let Some(v) = limits.publish_overload {
            config.publish_overload = match v {
                PublishOverloadName::Throttle => PublishOverload::Throttle,
                PublishOverloadName::Disconnect => PublishOverload::Disconnect,
            };
        }
        if let Some(v) = limits.max_storage_bytes {
            config.max_storage_bytes = (v != 0).then_some(v);
        }
        if let Some(v) = limits.idle_without_descriptor {
            config.idle_without_descriptor = match v {
                IdleWithoutDescriptorName::Auto => IdleWithoutDescriptor::Auto,
                IdleWithoutDescriptorName::Always => IdleWithoutDescriptor::Always,
                IdleWithoutDescriptorName::Never => IdleWithoutDescriptor::Never,
            };
        }
        let mqtt = &self.mqtt;
        if let Some(v) = mqtt.server_keep_alive {
            if v.as_secs() > u64::from(u16::MAX) {
                return Err(value_error(
                    "mqtt.server_keep_alive",
                    "must be at most 65535 s",
                ));
            }
            config.server_keep_alive = Some(v);
        }
        if let Some(v) = mqtt.maximum_qos {
            config.maximum_qos = QoS::from_u8(v)
                .ok_or_else(|| value_error("mqtt.maximum_qos", "must be 0, 1 or 2"))?;
        }
        if let Some(v) = mqtt.retain_available {
            config.retain_available = v;
        }
        if let Some(v) = mqtt.wildcard_subscription_available {
            config.wildcard_subscription_available = v;
        }
        if let Some(v) = mqtt.subscription_identifiers_available {
            config.subscription_identifiers_available = v;
        }
        if let Some(v) = mqtt.shared_subscription_available {
            config.shared_subscription_available = v;
        }
        if let Some(v) = self.sys.interval {
            config.sys_interval = (!v.is_zero()).then_some(v);
        }
        Ok(config)
    }
}

/// A rate limit from its `*_rate` and `*_burst` keys on top of `default`: a rate of 0 switches
/// it off; a burst alone changes only the burst.
fn rate(
    default: Option<RateLimit>,
    per_second: Option<u32>,
    burst: Option<u32>,
) -> Result<Option<RateLimit>, &'static str> {
    if burst == Some(0) {
        return Err("must be at least 1");
    }
    let limit = match (per_second, default) {
        (Some(0), _) => return Ok(None),
        (Some(per_second), Some(d)) => RateLimit { per_second, ..d },
        (Some(per_second), None) => RateLimit {
            per_second,
            burst: per_second,
        },
        (None, Some(d)) => d,
        (None, None) => return Ok(None),
    };
    Ok(Some(RateLimit {
        burst: burst.unwrap_or(limit.burst),
        ..limit
    }))
}

/// Durations written as human-readable strings: `"10s"`, `"500ms"`, `"7d"`, `"1h 30m"`.
mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map(Some).map_err(|e| {
            serde::de::Error::custom(format!("{e} (expected e.g. \"10s\", \"500ms\", \"7d\")"))
        })
    }
}

#[cfg(test)]
mod tests;
