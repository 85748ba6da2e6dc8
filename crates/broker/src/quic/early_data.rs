//! The 0-RTT replay policy of a QUIC listener. Bytes a resuming client sends in 0-RTT arrive
//! before the TLS handshake has proven who sent them, and an attacker who captured them can
//! send them again. [`EarlyDataPolicy`] says which MQTT packets the broker acts on before the
//! handshake completes; [`EarlyDataGate`] applies it on one connection: a packet the policy
//! does not admit waits (with everything after it on its stream) until the handshake is
//! complete, and is dropped with the connection if the handshake fails.

use mquictt_protocol::{Packet, QoS};
use mquictt_transport::QuicConnection;
use tokio::sync::watch;

/// Which packets a QUIC listener acts on before the TLS handshake completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyDataPolicy {
    /// Decline 0-RTT in the TLS handshake: resuming clients send everything again after it,
    /// and nothing can be replayed. Costs one round trip per reconnect.
    Refuse,
    /// Act at once on CONNECT and on every packet whose replay MQTT already tolerates: QoS 0
    /// and QoS 1 PUBLISH (at most a duplicate, which QoS 1 allows), SUBSCRIBE, UNSUBSCRIBE,
    /// acknowledgements of the broker's own messages, PINGREQ and DISCONNECT. Hold what is
    /// not idempotent, a QoS 2 PUBLISH and its PUBREL ("exactly once"), and AUTH, until the
    /// handshake completes. The default: CONNACK and QoS 0/1 traffic save a round trip.
    #[default]
    Idempotent,
    /// Act on CONNECT only (so CONNACK still saves a round trip); every later packet waits
    /// for the handshake.
    ConnectOnly,
}

impl EarlyDataPolicy {
    /// Whether the listener accepts 0-RTT at all.
    pub fn accepts_zero_rtt(self) -> bool {
        self != EarlyDataPolicy::Refuse
    }

    /// Whether `packet` may be acted on before the handshake completes.
    pub fn admits(self, packet: &Packet) -> bool {
        match self {
            EarlyDataPolicy::Refuse => false,
            EarlyDataPolicy::ConnectOnly => matches!(packet, Packet::Connect(_)),
            EarlyDataPolicy::Idempotent => match packet {
                Packet::Publish(publish) => publish.qos != QoS::ExactlyOnce,
                Packet::Connect(_)
                | Packet::Subscribe(_)
                | Packet::Unsubscribe(_)
                | Packet::PubAck(_)
                | Packet::PubRec(_)
                | Packet::PubComp(_)
                | Packet::PingReq
                | Packet::Disconnect(_) => true,
                _ => false,
            },
        }
    }
}

/// How far the handshake of one connection has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handshake {
    Running,
    Complete,
    Failed,
}

/// The policy applied to one connection whose handshake was still running when it was
/// accepted. Cheap to clone: the control stream and every data stream hold one.
#[derive(Debug, Clone)]
pub(crate) struct EarlyDataGate {
    policy: EarlyDataPolicy,
    handshake: watch::Receiver<Handshake>,
}

impl EarlyDataGate {
    /// The gate for `connection`, or `None` when its handshake is already complete (then
    /// nothing it sends can be a replay).
    pub(crate) fn for_connection(
        policy: EarlyDataPolicy,
        connection: &QuicConnection,
    ) -> Option<Self> {
        if connection.is_handshake_complete() {
            return None;
        }
        let (tx, handshake) = watch::channel(Handshake::Running);
        let connection = connection.clone();
        tokio::spawn(async move {
            let outcome = match connection.handshake_complete().await {
                Ok(()) => Handshake::Complete,
                Err(_) => Handshake::Failed,
            };
            // Nobody waiting any more is fine.
            let _ = tx.send(outcome);
        });
        Some(Self { policy, handshake })
    }

    /// A gate driven by the returned sender: `true` completes the handshake, dropping the
    /// sender fails it. For tests without a QUIC connection.
    #[cfg(test)]
    pub(crate) fn manual(policy: EarlyDataPolicy) -> (watch::Sender<bool>, Self) {
        let (complete_tx, mut complete) = watch::channel(false);
        let (tx, handshake) = watch::channel(Handshake::Running);
        tokio::spawn(async move {
            let outcome = match complete.wait_for(|done| *done).await {
                Ok(_) => Handshake::Complete,
                Err(_) => Handshake::Failed,
            };
            let _ = tx.send(outcome);
        });
        (complete_tx, Self { policy, handshake })
    }

    /// Whether `packet` must wait for the handshake.
    pub(crate) fn must_hold(&self, packet: &Packet) -> bool {
        *self.handshake.borrow() != Handshake::Complete && !self.policy.admits(packet)
    }

    /// Waits until the handshake is over: `true` when it completed, `false` when the
    /// connection failed first (held packets are then dropped, never acted on).
    pub(crate) async fn wait(&mut self) -> bool {
        match self
            .handshake
            .wait_for(|state| *state != Handshake::Running)
            .await
        {
            Ok(state) => *state == Handshake::Complete,
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use mquictt_protocol::{Properties, Publish, TopicName};

    use super::*;

    fn publish(qos: QoS) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: TopicName::new("t").unwrap(),
            packet_id: mquictt_protocol::PacketId::new(1).filter(|_| qos != QoS::AtMostOnce),
            properties: Properties::default(),
            payload: Bytes::new(),
        })
    }

    #[test]
    fn the_default_holds_only_what_is_not_idempotent() {
        let policy = EarlyDataPolicy::default();
        assert_eq!(policy, EarlyDataPolicy::Idempotent);
        assert!(policy.accepts_zero_rtt());
        assert!(policy.admits(&publish(QoS::AtMostOnce)));
        assert!(policy.admits(&publish(QoS::AtLeastOnce)));
        assert!(!policy.admits(&publish(QoS::ExactlyOnce)));
        assert!(policy.admits(&Packet::PingReq));
        let release =
            mquictt_protocol::PubAck::success(mquictt_protocol::PacketId::new(1).unwrap());
        assert!(!policy.admits(&Packet::PubRel(release)));
    }

    #[test]
    fn connect_only_holds_every_publish() {
        let policy = EarlyDataPolicy::ConnectOnly;
        assert!(!policy.admits(&publish(QoS::AtMostOnce)));
        assert!(!policy.admits(&Packet::PingReq));
        assert!(!EarlyDataPolicy::Refuse.accepts_zero_rtt());
    }

    #[tokio::test]
    async fn the_gate_opens_when_the_handshake_completes() {
        let (complete, mut gate) = EarlyDataGate::manual(EarlyDataPolicy::Idempotent);
        assert!(gate.must_hold(&publish(QoS::ExactlyOnce)));
        assert!(!gate.must_hold(&publish(QoS::AtLeastOnce)));
        complete.send_replace(true);
        assert!(gate.wait().await);
        assert!(!gate.must_hold(&publish(QoS::ExactlyOnce)));
    }

    #[tokio::test]
    async fn a_failed_handshake_releases_nothing() {
        let (complete, mut gate) = EarlyDataGate::manual(EarlyDataPolicy::Idempotent);
        drop(complete);
        assert!(!gate.wait().await);
        assert!(gate.must_hold(&publish(QoS::ExactlyOnce)));
    }
}
