//! The QUIC multi-stream clients of the delivery and head-of-line experiments, spoken raw:
//! CONNECT on the control stream, then one data stream per topic, each carrying its own
//! SUBSCRIBE or PUBLISHes and their acknowledgements (EMQX's multi-stream mode, which the
//! client library does not offer). QoS 1 and 2 flows are answered here packet by packet;
//! there is no reconnect, so a lost connection ends the run's delivery.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mquictt_protocol::{Packet, PubAck, QoS};
use mquictt_transport::{
    ConnectOptions, Connector, QuicClientConnection, QuicStream, TransportUrl,
};
use tokio::io::WriteHalf;
use tokio::sync::{oneshot, Mutex, Semaphore};

use crate::brokers::{BrokerFiles, RunningBroker};
use crate::connection::lab_options;
use crate::delivery::{Flow, FlowOptions, SETUP_BUDGET};
use crate::error::ExperimentError;
use crate::probe::{publish_packet, write_packet, MqttLine, PacketReader, ProbeError};
use crate::run::ClientThread;
use crate::settings::Settings;
use crate::transports::{BrokerKind, Transport};

/// How long one connection attempt waits for its CONNACK: the broker's default handshake and
/// connect timeout, after which a broker that has not answered has given the connection up.
const CONNACK_WAIT: Duration = Duration::from_secs(10);

/// A connected multi-stream client: the control stream stays open (keep alive off, QUIC's
/// own PINGs keep the connection) while data streams come and go.
pub(crate) struct MultiStreamClient {
    connection: QuicClientConnection,
    /// The broker's Receive Maximum: QoS 1 and 2 publishes it takes unacknowledged, per data
    /// stream (each stream has its own flow control in multi-stream mode).
    receive_maximum: u16,
    /// Held, never used again: dropping it would close the control stream and with it the
    /// connection. The mutex makes the client shareable between tasks.
    _control: std::sync::Mutex<MqttLine<mquictt_transport::BoxStream>>,
}

impl std::fmt::Debug for MultiStreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiStreamClient").finish_non_exhaustive()
    }
}

impl MultiStreamClient {
    /// Connects and sends CONNECT on the control stream, retrying within `budget`.
    pub(crate) async fn connect(
        options: &FlowOptions,
        client_id: &str,
        budget: Duration,
    ) -> Result<Self, String> {
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            match Self::connect_once(options, client_id).await {
                Ok(client) => return Ok(client),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(format!("{client_id}: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    async fn connect_once(options: &FlowOptions, client_id: &str) -> Result<Self, ProbeError> {
        let url =
            TransportUrl::parse(&options.url).map_err(|e| ProbeError::Invalid(e.to_string()))?;
        let connector = Connector::with_options(
            &options.tls,
            ConnectOptions {
                timeout: Duration::from_secs(10),
                ..ConnectOptions::default()
            },
        )
        .map_err(|e| ProbeError::Invalid(e.to_string()))?;
        let connected = connector
            .connect(&url)
            .await
            .map_err(|e| ProbeError::Invalid(e.to_string()))?;
        let connection = connected
            .quic
            .ok_or_else(|| ProbeError::Invalid("not a QUIC connection".to_owned()))?;
        let mut control = MqttLine::new(connected.stream);
        // A QUIC client counts its handshake done before the server does: if the server's
        // side takes longer than the broker's handshake timeout on a lossy link, the server
        // drops the connection, and the CONNECTION_CLOSE telling so may be lost too. Waiting
        // no longer than that timeout (or until the connection is known closed) leaves room
        // in the budget for a fresh attempt instead of waiting on a dead one.
        let connack = tokio::time::timeout(CONNACK_WAIT, async {
            tokio::select! {
                answer = control.connect(client_id, Duration::ZERO) => answer,
                reason = connection.connection().closed() => {
                    Err(ProbeError::Invalid(format!("connection closed: {reason}")))
                }
            }
        });
        let receive_maximum = connack
            .await
            .map_err(|_| ProbeError::Invalid("no CONNACK".to_owned()))??;
        Ok(MultiStreamClient {
            connection,
            receive_maximum,
            _control: std::sync::Mutex::new(control),
        })
    }

    /// Opens a data stream.
    pub(crate) async fn data_stream(&self) -> Result<MqttLine<QuicStream>, String> {
        self.connection
            .open_data_stream()
            .await
            .map(MqttLine::new)
            .map_err(|e| format!("data stream: {e}"))
    }

    /// Closes the connection.
    pub(crate) fn close(&self) {
        self.connection.connection().close(0u32.into(), b"done");
    }
}

/// Subscribes on a data stream and records every PUBLISH that arrives there.
pub(crate) async fn subscribe_side(
    options: FlowOptions,
    flow: Flow,
    ready: oneshot::Sender<()>,
) -> Result<(), String> {
    let spec = options.spec.clone();
    let client =
        MultiStreamClient::connect(&options, &format!("sub-{}", options.id), SETUP_BUDGET).await?;
    let mut stream = client.data_stream().await?;
    tokio::time::timeout(
        SETUP_BUDGET,
        stream.subscribe(&spec.workload.filter_for(options.id), spec.qos, 1),
    )
    .await
    .map_err(|_| "sub: no SUBACK".to_owned())?
    .map_err(|e| format!("sub: {e}"))?;
    let _ = ready.send(());
    let (mut reader, writer) = stream.into_split();
    let writer = Arc::new(Mutex::new(writer));
    loop {
        match tokio::time::timeout(Duration::from_millis(50), reader.recv()).await {
            Ok(Ok(packet)) => {
                if answer_inbound(&packet, &writer, &flow).await? {
                    break;
                }
            }
            Ok(Err(_)) => break,
            Err(_) if flow.drained(spec.drain) => break,
            Err(_) => {}
        }
    }
    client.close();
    Ok(())
}

/// Acknowledges an inbound PUBLISH or PUBREL; returns whether every message has arrived.
async fn answer_inbound(
    packet: &Packet,
    writer: &Mutex<WriteHalf<QuicStream>>,
    flow: &Flow,
) -> Result<bool, String> {
    let reply = match packet {
        Packet::Publish(publish) => {
            let all = flow.mark_received(&publish.payload);
            let reply = match (publish.qos, publish.packet_id) {
                (QoS::AtLeastOnce, Some(id)) => Some(Packet::PubAck(PubAck::success(id))),
                (QoS::ExactlyOnce, Some(id)) => Some(Packet::PubRec(PubAck::success(id))),
                _ => None,
            };
            if let Some(reply) = reply {
                write_packet(&mut *writer.lock().await, &reply)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            return Ok(all);
        }
        Packet::PubRel(rel) => Packet::PubComp(PubAck::success(rel.packet_id)),
        _ => return Ok(false),
    };
    write_packet(&mut *writer.lock().await, &reply)
        .await
        .map_err(|e| e.to_string())?;
    Ok(false)
}

/// Publishes the run's messages on one data stream, answering PUBRECs with PUBRELs and
/// keeping at most the broker's Receive Maximum of QoS 1/2 publishes unacknowledged (a
/// broker closes a stream that exceeds it [MQTT-3.3.4-9]; on a lossy link acks come late).
pub(crate) async fn publish_side(
    options: FlowOptions,
    flow: Flow,
    ready: oneshot::Receiver<()>,
) -> Result<(), String> {
    let spec = options.spec.clone();
    let connected =
        MultiStreamClient::connect(&options, &format!("pub-{}", options.id), SETUP_BUDGET).await;
    let subscribed = tokio::time::timeout(2 * SETUP_BUDGET, ready).await;
    let client = match (connected, subscribed) {
        (Ok(client), Ok(Ok(()))) => client,
        (Err(e), _) => {
            flow.publishing_done();
            return Err(e);
        }
        (Ok(_), _) => {
            flow.publishing_done();
            return Err("sub: not subscribed in time".to_owned());
        }
    };
    let stream = client.data_stream().await?;
    let (reader, writer) = stream.into_split();
    let writer = Arc::new(Mutex::new(writer));
    let window = Arc::new(Semaphore::new(usize::from(client.receive_maximum)));
    let acks = tokio::spawn(acknowledge_outbound(reader, writer.clone(), window.clone()));
    let mut ticker = tokio::time::interval(spec.interval.max(Duration::from_nanos(1)));
    for seq in 0..spec.count {
        if !spec.interval.is_zero() {
            ticker.tick().await;
        }
        // Packet ids 1..=count: a run never has more than 65,535 messages.
        let id = u16::try_from(seq % 65_535 + 1).unwrap_or(1);
        let packet = publish_packet(
            &spec.workload.topic_for(options.id),
            spec.payload(seq),
            spec.qos,
            (spec.qos != QoS::AtMostOnce).then_some(id),
        )
        .map_err(|e| e.to_string())?;
        if spec.qos != QoS::AtMostOnce {
            // Returned by `acknowledge_outbound` when the flow's last ack arrives.
            window
                .acquire()
                .await
                .map_err(|e| format!("pub: {e}"))?
                .forget();
        }
        flow.mark_sent(seq);
        write_packet(&mut *writer.lock().await, &packet)
            .await
            .map_err(|e| format!("pub: {e}"))?;
    }
    flow.publishing_done();
    while !flow.drained(spec.drain) && !flow.is_complete() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    acks.abort();
    client.close();
    Ok(())
}

/// Reads the broker's acknowledgements on a publishing data stream; PUBREC gets PUBREL.
/// A flow's final ack (PUBACK, PUBCOMP) gives its place in the send window back.
async fn acknowledge_outbound(
    mut reader: PacketReader<tokio::io::ReadHalf<QuicStream>>,
    writer: Arc<Mutex<WriteHalf<QuicStream>>>,
    window: Arc<Semaphore>,
) {
    while let Ok(packet) = reader.recv().await {
        match packet {
            Packet::PubRec(rec) => {
                let rel = Packet::PubRel(PubAck::success(rec.packet_id));
                if write_packet(&mut *writer.lock().await, &rel).await.is_err() {
                    break;
                }
            }
            Packet::PubAck(_) | Packet::PubComp(_) => window.add_permits(1),
            _ => {}
        }
    }
}

/// Publishes `count` messages of `size` bytes on `topic` over its own data stream, one
/// every `interval`, calling `sent(seq)` before each; for the head-of-line experiment.
pub(crate) async fn publish_topic(
    client: &MultiStreamClient,
    topic: String,
    count: u32,
    size: usize,
    interval: Duration,
    sent: impl Fn(u32),
) -> Result<(), String> {
    let mut stream = client.data_stream().await?;
    let mut ticker = tokio::time::interval(interval);
    for seq in 0..count {
        ticker.tick().await;
        let payload: Bytes = crate::workload::sized_payload(seq, size);
        sent(seq);
        stream
            .publish_qos0(&topic, payload)
            .await
            .map_err(|e| format!("publish {topic}: {e}"))?;
    }
    Ok(())
}

/// Subscribes to `filter` on its own data stream and calls `received(payload)` for each
/// message until `stop()` says so.
pub(crate) async fn receive_topic(
    client: &MultiStreamClient,
    filter: String,
    subscribed: oneshot::Sender<()>,
    received: impl Fn(&[u8]),
    stop: impl Fn() -> bool,
) -> Result<(), String> {
    let mut stream = client.data_stream().await?;
    stream
        .subscribe(&filter, QoS::AtMostOnce, 1)
        .await
        .map_err(|e| format!("subscribe {filter}: {e}"))?;
    let _ = subscribed.send(());
    let (mut reader, _writer) = stream.into_split();
    loop {
        match tokio::time::timeout(Duration::from_millis(50), reader.recv()).await {
            Ok(Ok(Packet::Publish(publish))) => received(&publish.payload),
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Ok(()),
            Err(_) if stop() => return Ok(()),
            Err(_) => {}
        }
    }
}

/// Whether our broker speaks multi-stream mode: a client subscribes on a data stream and
/// publishes on another, and the message must come back on the first. Checked once per
/// process in a lab of its own with ideal links.
pub(crate) fn broker_supports(
    settings: &Settings,
    files: &BrokerFiles,
) -> Result<bool, ExperimentError> {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if let Some(&known) = SUPPORTED.get() {
        return Ok(known);
    }
    let lab = mquictt_lab::Lab::start_with(
        mquictt_lab::Topology::star(Default::default(), vec![Default::default()]),
        lab_options(),
    )?;
    let broker = RunningBroker::start(
        BrokerKind::Mquictt,
        lab.broker(),
        files,
        &settings.broker_program,
        None,
    )?;
    let client_host = lab
        .client(0)
        .ok_or_else(|| ExperimentError::Client("no client host".to_owned()))?;
    let options = FlowOptions {
        url: BrokerKind::Mquictt.url(Transport::QuicMultiStream),
        tls: Transport::QuicMultiStream.client_tls(files.client_tls()?),
        transport: Transport::QuicMultiStream,
        id: 0,
        spec: crate::delivery::probe_spec(),
    };
    let supported = ClientThread::spawn(client_host, move || async move {
        let attempt = async {
            let client =
                MultiStreamClient::connect(&options, "multi-stream-probe", Duration::from_secs(5))
                    .await?;
            let mut sub = client.data_stream().await?;
            sub.subscribe("probe/#", QoS::AtMostOnce, 1)
                .await
                .map_err(|e| e.to_string())?;
            let mut publ = client.data_stream().await?;
            publ.publish_qos0("probe/1", Bytes::from_static(b"x"))
                .await
                .map_err(|e| e.to_string())?;
            loop {
                if let Packet::Publish(_) = sub.recv().await.map_err(|e| e.to_string())? {
                    client.close();
                    return Ok::<bool, String>(true);
                }
            }
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(5), attempt).await,
            Ok(Ok(true))
        )
    })?
    .join()?;
    drop(broker);
    lab.finish()?;
    Ok(*SUPPORTED.get_or_init(|| supported))
}
