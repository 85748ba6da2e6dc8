//! `mquictt pub`: publishes one message, a file, or every line of standard input, waits until
//! each is acknowledged (QoS 1 and 2) or written (QoS 0), and disconnects. Also owns the
//! connection flags `pub` and `sub` share ([`ConnectionArgs`]) and their error type.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use mquictt_client::{
    CertError, Client, ClientError, ClientOptions, ClientTlsSettings, Message, ProtocolVersion,
    PublishOutcome, QoS, ReasonCode, ReconnectPolicy, TlsIdentity, TransportUrl,
};

use crate::quic_datagrams::{parse_max_udp_payload, parse_socket_buffer};

/// Where the broker keeps its development CA when started without a data directory
/// (`mquictt broker` writes `<data dir>/certs/ca.pem`).
const DEV_CA: &str = "mquictt-data/certs/ca.pem";

/// Why `pub` or `sub` failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientCommandError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Certificate(#[from] CertError),
    #[error("cannot read {what}: {source}")]
    Read {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot write to standard output: {0}")]
    Write(std::io::Error),
    #[error("{0}")]
    Usage(String),
    #[error("the broker refused the message on `{topic}`: {reason_code}{}", reason(.reason_string))]
    PublishRefused {
        topic: String,
        reason_code: ReasonCode,
        reason_string: Option<String>,
    },
    #[error("the broker refused the subscription to `{filter}`: {reason_code}")]
    SubscribeRefused {
        filter: String,
        reason_code: ReasonCode,
    },
}

fn reason(reason_string: &Option<String>) -> String {
    reason_string
        .as_ref()
        .map(|text| format!(" ({text})"))
        .unwrap_or_default()
}

/// The MQTT version flag: `5` or `311` (also `mqttv5`, `mqttv311`, `3.1.1`, `5.0`).
pub fn parse_version(text: &str) -> Result<ProtocolVersion, String> {
    match text.to_ascii_lowercase().as_str() {
        "5" | "5.0" | "mqttv5" => Ok(ProtocolVersion::V5),
        "311" | "3.1.1" | "mqttv311" => Ok(ProtocolVersion::V3_1_1),
        "31" | "3.1" | "mqttv31" => Ok(ProtocolVersion::V3_1),
        _ => Err(format!("`{text}` is not an MQTT version: use 5 or 311")),
    }
}

/// The QoS flag: 0, 1 or 2.
pub fn parse_qos(text: &str) -> Result<QoS, String> {
    text.parse::<u8>()
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("`{text}` is not a QoS: use 0, 1 or 2"))
}

/// The flags that say where the broker is and who we are.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// Broker URL: mqtt://, mqtts://, ws://, wss:// or quic:// HOST[:PORT]; default ports
    /// 1883, 8883, 8083, 8084, 14567.
    #[arg(long, value_name = "URL", default_value = "mqtt://127.0.0.1:1883")]
    pub url: String,

    /// MQTT version: 5 or 311.
    #[arg(short = 'V', long = "protocol-version", value_name = "5|311", default_value = "5", value_parser = parse_version)]
    pub version: ProtocolVersion,

    /// CA certificate(s) (PEM) to verify the broker with on mqtts://, wss:// and quic://.
    /// Without it, the development CA of a broker started in this directory is used if found.
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,

    /// Client certificate (PEM) for brokers that require one; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// User name.
    #[arg(short = 'u', long = "username", value_name = "USER")]
    pub username: Option<String>,

    /// Password; needs -u.
    #[arg(short = 'P', long = "pw", value_name = "PASS", requires = "username")]
    pub password: Option<String>,

    /// Client identifier; by default the broker assigns one.
    #[arg(short = 'i', long = "id", value_name = "ID", default_value = "")]
    pub client_id: String,

    /// Keep alive in seconds (0 switches it off).
    #[arg(
        short = 'k',
        long = "keepalive",
        value_name = "SECONDS",
        default_value_t = 60
    )]
    pub keep_alive: u16,

    /// quic:// only: no path MTU discovery, every datagram stays at 1,200 bytes (for
    /// narrowband links, where the probes cost airtime).
    #[arg(long)]
    pub no_quic_mtu_discovery: bool,

    /// quic:// only: the ceiling of path MTU discovery, in UDP payload bytes (1200 to 65527;
    /// default 1452, an Ethernet path). Datagrams grow only as far as the path is found to
    /// carry and the broker allows (its `quic_max_udp_payload`); 6500 suits loopback.
    #[arg(long, value_name = "BYTES", value_parser = parse_max_udp_payload)]
    pub quic_max_udp_payload: Option<u16>,

    /// quic:// only: receive and send buffer to request for the UDP socket, in bytes (65536
    /// to 268435456; default 4 MiB, capped by the system's net.core.rmem_max/wmem_max).
    #[arg(long, value_name = "BYTES", value_parser = parse_socket_buffer)]
    pub quic_socket_buffer: Option<usize>,
}

impl ConnectionArgs {
    /// Client options for these flags; reconnecting is the caller's choice.
    pub fn options(&self) -> Result<ClientOptions, ClientCommandError> {
        let url = TransportUrl::parse(&self.url).map_err(ClientError::from)?;
        let mut tls = match &self.cafile {
            Some(path) => ClientTlsSettings::trusting_ca_file(path)?,
            None if url.kind.is_encrypted() && Path::new(DEV_CA).exists() => {
                eprintln!("mquictt: trusting the development CA {DEV_CA} (use --cafile to choose)");
                ClientTlsSettings::trusting_ca_file(Path::new(DEV_CA))?
            }
            None => ClientTlsSettings::default(),
        };
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            tls = tls.with_identity(TlsIdentity::from_pem_files(cert, key)?);
        }
        let mut options = ClientOptions::with_url(url)
            .tls(tls)
            .protocol(self.version)
            .client_id(self.client_id.clone())
            .keep_alive(Duration::from_secs(u64::from(self.keep_alive)));
        if self.no_quic_mtu_discovery {
            options = options.quic_mtu_discovery(false);
        }
        if let Some(size) = self.quic_max_udp_payload {
            options = options.quic_max_udp_payload(size);
        }
        if let Some(bytes) = self.quic_socket_buffer {
            options = options.quic_socket_buffer(bytes);
        }
        if let Some(username) = &self.username {
            let password = self.password.clone().map(Bytes::from);
            options = options.credentials(username.clone(), password);
        }
        Ok(options)
    }
}

/// `mquictt pub`
#[derive(Debug, clap::Args)]
#[command(disable_version_flag = true)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["message", "file", "lines", "null"])))]
pub struct PubArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Topic to publish to.
    #[arg(short = 't', long = "topic", value_name = "TOPIC")]
    pub topic: String,

    /// The message.
    #[arg(short = 'm', long = "message", value_name = "MSG")]
    pub message: Option<String>,

    /// Send the whole file as one message.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Send each line of standard input as a message.
    #[arg(short = 'l', long = "stdin-line")]
    pub lines: bool,

    /// Send an empty message (with -r, clears the retained message of the topic).
    #[arg(short = 'n', long = "null-message")]
    pub null: bool,

    /// Quality of service: 0, 1 or 2.
    #[arg(short = 'q', long = "qos", value_name = "QOS", default_value = "0", value_parser = parse_qos)]
    pub qos: QoS,

    /// Ask the broker to retain the message.
    #[arg(short = 'r', long = "retain")]
    pub retain: bool,

    /// Publish the message (or each line) this many times.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: u32,
}

/// Runs `mquictt pub`.
pub async fn run(args: PubArgs) -> Result<(), ClientCommandError> {
    // Validate the topic before connecting, so a typo costs no connection.
    Message::new(&args.topic, Bytes::new())?;
    let options = args
        .connection
        .options()?
        .reconnect(ReconnectPolicy::disabled());
    let (client, _messages) = Client::connect(options).await?;
    let result = publish_all(&client, &args).await;
    // Disconnect normally even after a refusal, so the broker discards our will (if any).
    client.disconnect().await?;
    result
}

async fn publish_all(client: &Client, args: &PubArgs) -> Result<(), ClientCommandError> {
    if args.lines {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let line = line.map_err(|source| ClientCommandError::Read {
                what: "standard input".into(),
                source,
            })?;
            publish_repeated(client, args, Bytes::from(line)).await?;
        }
        return Ok(());
    }
    let payload = match (&args.message, &args.file) {
        (Some(message), _) => Bytes::from(message.clone()),
        (None, Some(path)) => {
            Bytes::from(
                std::fs::read(path).map_err(|source| ClientCommandError::Read {
                    what: path.display().to_string(),
                    source,
                })?,
            )
        }
        (None, None) => Bytes::new(),
    };
    publish_repeated(client, args, payload).await
}

async fn publish_repeated(
    client: &Client,
    args: &PubArgs,
    payload: Bytes,
) -> Result<(), ClientCommandError> {
    let mut handles = VecDeque::new();
    for _ in 0..args.repeat {
        let message = Message::new(&args.topic, payload.clone())?
            .qos(args.qos)
            .retain(args.retain);
        loop {
            match client.publish(message.clone()) {
                Ok(handle) => {
                    handles.push_back(handle);
                    break;
                }
                // Many repeats outrun the broker: wait for the oldest to complete.
                Err(ClientError::OfflineQueueFull { .. }) if !handles.is_empty() => {
                    if let Some(oldest) = handles.pop_front() {
                        check(args, oldest.await?)?;
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
    for handle in handles {
        check(args, handle.await?)?;
    }
    Ok(())
}

fn check(args: &PubArgs, outcome: PublishOutcome) -> Result<(), ClientCommandError> {
    if outcome.is_success() {
        return Ok(());
    }
    Err(ClientCommandError::PublishRefused {
        topic: args.topic.clone(),
        reason_code: outcome.reason_code,
        reason_string: outcome
            .properties
            .reason_string
            .as_ref()
            .map(|text| text.to_string()),
    })
}
