//! The three client loops of a run, each driving one [`Link`]: a publisher (open-loop at a
//! fixed rate or as fast as the broker takes messages, with a window of unacknowledged QoS 1/2
//! publishes and the QoS 2 PUBREC/PUBREL/PUBCOMP exchange), a subscriber (acknowledges, counts,
//! reads latency from the payload header, tells duplicates from new messages) and an idle
//! holder (PINGREQ only). Every loop waits on reading and writing at once so that neither
//! direction can stall the other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mquictt_protocol::{Packet, PacketId, PubAck, QoS, TopicName};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{interval_at, sleep_until, MissedTickBehavior};

use crate::error::BenchError;
use crate::held::HolderRings;
use crate::link::{read_more, write_some, Link, TcpParts, READ_CHUNK};
use crate::pacer::Pacer;
use crate::payload::{encode_publish, wall_clock_ns, BenchPublish, PayloadHeader};
use crate::stats::{new_histogram, record, LiveCounters, SequenceTracker};

/// Bytes of PUBLISH packets a publisher prepares before writing: large enough that one write
/// carries many small messages, small enough that timestamps stay fresh.
const WRITE_BATCH: usize = 16 * 1024;

/// Read buffer of an idle holder.
const IDLE_READ_CHUNK: usize = 64;

/// Highest per-publisher rate served by one timer tick per message; faster rates tick every
/// millisecond and send several messages per tick.
const MAX_TICKS_PER_SECOND: f64 = 1000.0;

/// What one publisher does.
#[derive(Debug, Clone)]
pub(crate) struct PublisherPlan {
    pub(crate) index: u32,
    pub(crate) topic: TopicName,
    pub(crate) qos: QoS,
    pub(crate) payload_size: usize,
    pub(crate) rate: Option<f64>,
    /// Offset of this publisher's first message, so N publishers at one rate do not all fire
    /// on the same tick.
    pub(crate) phase: Duration,
    pub(crate) inflight: u16,
    pub(crate) keep_alive: Duration,
}

/// When publishing starts and ends, and how long to wait for outstanding acknowledgements.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    pub(crate) ack_grace: Duration,
}

/// What a subscriber measured.
#[derive(Debug)]
pub(crate) struct SubscriberOutcome {
    pub(crate) latency: Histogram<u64>,
    pub(crate) duplicates: u64,
    pub(crate) last_receive: Option<Instant>,
}

/// The packet identifiers of unacknowledged QoS 1/2 publishes.
struct InflightIds {
    in_use: Vec<u64>,
    count: usize,
    next: u16,
}

impl InflightIds {
    fn new() -> Self {
        Self {
            in_use: vec![0; 1024],
            count: 0,
            next: 1,
        }
    }

    fn bit(id: u16) -> (usize, u64) {
        (usize::from(id / 64), 1 << (id % 64))
    }

    fn is_used(&self, id: u16) -> bool {
        let (word, mask) = Self::bit(id);
        self.in_use.get(word).is_some_and(|w| w & mask != 0)
    }

    /// A free identifier, marked used; `None` when all 65,535 are taken.
    fn allocate(&mut self) -> Option<PacketId> {
        if self.count >= usize::from(u16::MAX) {
            return None;
        }
        let mut id = self.next;
        while id == 0 || self.is_used(id) {
            id = id.wrapping_add(1);
        }
        let (word, mask) = Self::bit(id);
        if let Some(w) = self.in_use.get_mut(word) {
            *w |= mask;
        }
        self.count += 1;
        self.next = id.wrapping_add(1);
        PacketId::new(id)
    }

    /// Frees `id`; false if it was not in use (a duplicate or stray acknowledgement).
    fn release(&mut self, id: PacketId) -> bool {
        let (word, mask) = Self::bit(id.get());
        match self.in_use.get_mut(word) {
            Some(w) if *w & mask != 0 => {
                *w &= !mask;
                self.count -= 1;
                true
            }
            _ => false,
        }
    }
}

/// How many messages a rate-limited publisher should have sent by `now`.
fn due_by(plan: &PublisherPlan, rate: f64, start: Instant, now: Instant) -> u64 {
    let first = start + plan.phase;
    if now < first {
        return 0;
    }
    // Open loop: the schedule does not slow down when the broker does, so a stall shows up as
    // latency instead of being hidden (no coordinated omission).
    (rate * now.duration_since(first).as_secs_f64()) as u64 + 1
}

/// Publishes per `plan` from `schedule.start` to `schedule.end`, then waits up to
/// `ack_grace` for outstanding acknowledgements and disconnects.
pub(crate) async fn run_publisher(
    mut link: Link,
    plan: PublisherPlan,
    schedule: Schedule,
    counters: Arc<LiveCounters>,
) -> Result<(), BenchError> {
    let window = usize::from(plan.inflight.min(link.server_receive_maximum).max(1));
    let mut inflight = InflightIds::new();
    let mut sequence: u64 = 0;
    let topic = plan.topic.as_str().to_owned();
    let tick_period = match plan.rate {
        Some(rate) if rate <= MAX_TICKS_PER_SECOND => Duration::from_secs_f64(1.0 / rate),
        _ => Duration::from_millis(1),
    };
    let mut ticker = Pacer::new(schedule.start + plan.phase, tick_period);
    let mut pinger = Pinger::new(plan.keep_alive);
    sleep_until(schedule.start.into()).await;
    let give_up = schedule.end + schedule.ack_grace;
    loop {
        let now = Instant::now();
        let publishing = now < schedule.end;
        if publishing {
            let budget = match plan.rate {
                None => u64::MAX,
                Some(rate) => due_by(&plan, rate, schedule.start, now).saturating_sub(sequence),
            };
            let mut queued: u64 = 0;
            let sent_at_ns = wall_clock_ns();
            while queued < budget && link.outbuf.len() < WRITE_BATCH {
                let packet_id = if plan.qos == QoS::AtMostOnce {
                    None
                } else if inflight.count < window {
                    inflight.allocate()
                } else {
                    break;
                };
                let publish = BenchPublish {
                    topic: &topic,
                    qos: plan.qos,
                    packet_id,
                    payload_len: plan.payload_size,
                    header: PayloadHeader {
                        sent_at_ns,
                        publisher: plan.index,
                        sequence,
                    },
                };
                encode_publish(&publish, link.version, &mut link.outbuf)?;
                sequence += 1;
                queued += 1;
            }
            if queued > 0 {
                pinger.wrote();
                LiveCounters::add(&counters.sent, queued);
            }
        } else if (inflight.count == 0 && link.outbuf.is_empty()) || now >= give_up {
            break;
        }
        tokio::select! {
            biased;
            read = read_more(&mut link.reader, &mut link.inbuf, READ_CHUNK) => {
                read?;
                while let Some(packet) = link.decode()? {
                    handle_publisher_ack(&mut link, &mut inflight, packet, &counters)?;
                }
            }
            written = write_some(&mut link.writer, &mut link.outbuf), if !link.outbuf.is_empty() => {
                written?;
            }
            _ = ticker.tick(), if publishing && plan.rate.is_some() => {}
            () = sleep_until(schedule.end.into()), if publishing => {}
            () = sleep_until(give_up.into()), if !publishing => {}
            _ = pinger.tick() => pinger.ping_if_quiet(&mut link)?,
        }
    }
    link.disconnect().await;
    Ok(())
}

fn handle_publisher_ack(
    link: &mut Link,
    inflight: &mut InflightIds,
    packet: Packet,
    counters: &LiveCounters,
) -> Result<(), BenchError> {
    match packet {
        // A stray or repeated acknowledgement releases nothing and is not counted.
        Packet::PubAck(ack) | Packet::PubComp(ack) if inflight.release(ack.packet_id) => {
            LiveCounters::add(&counters.acked, 1);
        }
        // QoS 2, step 2: answer PUBREC with PUBREL (4.3.3). A PUBREC with a failure reason
        // (5.0) ends the exchange there.
        Packet::PubRec(ack) if ack.reason_code.as_u8() >= 0x80 => {
            inflight.release(ack.packet_id);
        }
        Packet::PubRec(ack) => link.queue(&Packet::PubRel(PubAck::success(ack.packet_id)))?,
        Packet::Disconnect(_) => return Err(BenchError::Closed),
        _ => {}
    }
    Ok(())
}

/// Receives until `stop` turns true, acknowledging QoS 1/2 deliveries and measuring latency.
pub(crate) async fn run_subscriber(
    mut link: Link,
    keep_alive: Duration,
    mut stop: watch::Receiver<bool>,
    counters: Arc<LiveCounters>,
) -> Result<SubscriberOutcome, BenchError> {
    let mut outcome = SubscriberOutcome {
        latency: new_histogram(),
        duplicates: 0,
        last_receive: None,
    };
    let mut tracker = SequenceTracker::default();
    let mut pinger = Pinger::new(keep_alive);
    loop {
        if *stop.borrow_and_update() {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => {}
            read = read_more(&mut link.reader, &mut link.inbuf, READ_CHUNK) => {
                read?;
                // Messages read in one go arrived together: one clock reading serves them all.
                let arrived = Instant::now();
                let now_ns = wall_clock_ns();
                let mut received = 0;
                while let Some(packet) = link.decode()? {
                    match packet {
                        Packet::Publish(publish) => {
                            received += 1;
                            match PayloadHeader::read(&publish.payload) {
                                Some(header) if tracker.is_new(header.publisher, header.sequence) => {
                                    let ns = now_ns.saturating_sub(header.sent_at_ns);
                                    record(&mut outcome.latency, Duration::from_nanos(ns));
                                }
                                Some(_) => outcome.duplicates += 1,
                                None => {}
                            }
                            match (publish.qos, publish.packet_id) {
                                (QoS::AtLeastOnce, Some(id)) => {
                                    link.queue(&Packet::PubAck(PubAck::success(id)))?;
                                }
                                (QoS::ExactlyOnce, Some(id)) => {
                                    link.queue(&Packet::PubRec(PubAck::success(id)))?;
                                }
                                _ => {}
                            }
                        }
                        Packet::PubRel(rel) => {
                            link.queue(&Packet::PubComp(PubAck::success(rel.packet_id)))?;
                        }
                        Packet::Disconnect(_) => return Err(BenchError::Closed),
                        _ => {}
                    }
                }
                if received > 0 {
                    outcome.last_receive = Some(arrived);
                    LiveCounters::add(&counters.received, received);
                }
            }
            written = write_some(&mut link.writer, &mut link.outbuf), if !link.outbuf.is_empty() => {
                written?;
                pinger.wrote();
            }
            _ = pinger.tick() => pinger.ping_if_quiet(&mut link)?,
        }
    }
    link.disconnect().await;
    Ok(outcome)
}

/// Holds a connection open, answering nothing and pinging, until `stop` turns true.
pub(crate) async fn run_holder(
    mut link: Link,
    keep_alive: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<(), BenchError> {
    // An idle connection should cost the bench as little as it costs the broker.
    link.inbuf = bytes::BytesMut::new();
    link.outbuf = bytes::BytesMut::new();
    let mut pinger = Pinger::new(keep_alive);
    loop {
        if *stop.borrow_and_update() {
            break;
        }
        tokio::select! {
            _ = stop.changed() => {}
            // PINGRESP and DISCONNECT are a few bytes: a small buffer keeps 100,000 holders
            // cheap.
            read = read_more(&mut link.reader, &mut link.inbuf, IDLE_READ_CHUNK) => {
                read?;
                while let Some(packet) = link.decode()? {
                    if let Packet::Disconnect(_) = packet {
                        return Err(BenchError::Closed);
                    }
                }
            }
            _ = pinger.tick() => {
                pinger.ping_if_quiet(&mut link)?;
                link.flush().await?;
            }
        }
    }
    link.disconnect().await;
    Ok(())
}

/// Holds a plain TCP connection like [`run_holder`], with its socket waiting in `rings`
/// without a file descriptor while nothing happens (see `held.rs`). A link that is not plain
/// TCP, or a socket the rings refuse, is held as usual.
pub(crate) async fn run_held_holder(
    link: Link,
    rings: Arc<HolderRings>,
    key: u64,
    keep_alive: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<(), BenchError> {
    let TcpParts {
        stream,
        mut decoder,
        mut inbuf,
        version,
    } = match link.into_tcp() {
        Ok(parts) => parts,
        Err(link) => return run_holder(*link, keep_alive, stop).await,
    };
    let mut socket = stream.into_std()?;
    let mut pinger = Pinger::new(keep_alive);
    loop {
        let mut woken = match rings.hold(key, socket) {
            Ok(woken) => woken,
            Err((socket, e)) => {
                tracing::debug!(error = %e, "an idle holder keeps its descriptor");
                let parts = TcpParts {
                    stream: TcpStream::from_std(socket)?,
                    decoder,
                    inbuf,
                    version,
                };
                return run_holder(Link::from_tcp(parts), keep_alive, stop).await;
            }
        };
        let ping = tokio::select! {
            _ = &mut woken => false,
            _ = pinger.tick() => true,
            _ = stop.wait_for(|stopped| *stopped) => {
                rings.let_go(key);
                return Ok(());
            }
        };
        socket = loop {
            if let Some(socket) = rings.release(key)? {
                break socket;
            }
            tokio::select! {
                () = tokio::time::sleep(mquictt_socket_rings::RELEASE_RETRY) => {}
                _ = stop.wait_for(|stopped| *stopped) => {
                    rings.let_go(key);
                    return Ok(());
                }
            }
        };
        // Read on the socket itself: Tokio would report nothing to read on a socket it has
        // only just been given, until its next turn.
        let mut chunk = [0u8; IDLE_READ_CHUNK];
        loop {
            match std::io::Read::read(&mut socket, &mut chunk) {
                Ok(0) => return Err(BenchError::Closed),
                Ok(n) => inbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        while let Some(packet) = decoder.decode(&mut inbuf)? {
            if let Packet::Disconnect(_) = packet {
                return Err(BenchError::Closed);
            }
        }
        if ping {
            let mut request = bytes::BytesMut::new();
            Packet::PingReq.encode(version, &mut request)?;
            let mut stream = TcpStream::from_std(socket)?;
            stream.write_all(&request).await?;
            socket = stream.into_std()?;
        }
    }
}

/// Keep alive from the client side: PINGREQ when nothing was written for half the keep
/// alive, well inside the broker's one and a half times [MQTT-3.1.2-24].
struct Pinger {
    interval: Option<tokio::time::Interval>,
    wrote: bool,
}

impl Pinger {
    fn new(keep_alive: Duration) -> Self {
        let interval = (!keep_alive.is_zero()).then(|| {
            let half = keep_alive / 2;
            let mut interval = interval_at((Instant::now() + half).into(), half);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        Self {
            interval,
            wrote: false,
        }
    }

    fn wrote(&mut self) {
        self.wrote = true;
    }

    async fn tick(&mut self) {
        match &mut self.interval {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    fn ping_if_quiet(&mut self, link: &mut Link) -> Result<(), BenchError> {
        if !std::mem::take(&mut self.wrote) {
            link.queue(&Packet::PingReq)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflight_ids_are_unique_and_reused() {
        let mut ids = InflightIds::new();
        let a = ids.allocate().unwrap();
        let b = ids.allocate().unwrap();
        assert_ne!(a, b);
        assert!(ids.release(a));
        assert!(!ids.release(a), "a second release is a stray ack");
        for _ in 0..u16::MAX - 1 {
            ids.allocate().unwrap();
        }
        assert_eq!(ids.count, usize::from(u16::MAX));
        assert!(
            ids.allocate().is_none(),
            "all 65,535 identifiers are in use"
        );
        assert!(ids.release(b));
        assert_eq!(ids.allocate(), Some(b));
    }
}
