//! Keep alive (3.1.2.10) as deadlines, never as a clock: the client must send something at
//! least every Keep Alive and waits a bounded time for PINGRESP; the server gives up on a
//! client it has heard nothing from for one and a half Keep Alives. A Keep Alive of 0 turns
//! the mechanism off on both sides.

use std::time::{Duration, Instant};

/// What the client should do when its keep-alive deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PingAction {
    /// Nothing is due yet.
    None,
    /// Send PINGREQ: "If Keep Alive is non-zero and in the absence of sending any other MQTT
    /// Control Packets, the Client MUST send a PINGREQ packet" [MQTT-3.1.2-22].
    SendPing,
    /// The PINGREQ went unanswered for this long.
    Expired(Duration),
}

/// The client's side: when to ping, and how long to wait for the answer.
#[derive(Debug, Clone)]
pub(crate) struct ClientKeepAlive {
    interval: Option<Duration>,
    /// How long a PINGREQ may wait for its PINGRESP; `None` means one Keep Alive.
    ping_timeout: Option<Duration>,
    last_sent: Instant,
    ping_sent_at: Option<Instant>,
}

impl ClientKeepAlive {
    pub(crate) fn new(keep_alive_secs: u16, ping_timeout: Option<Duration>, now: Instant) -> Self {
        Self {
            interval: interval(keep_alive_secs),
            ping_timeout,
            last_sent: now,
            ping_sent_at: None,
        }
    }

    /// "If the Server returns a Server Keep Alive on the CONNACK packet, the Client MUST use
    /// that value instead of the value it sent as the Keep Alive" [MQTT-3.1.2-23].
    pub(crate) fn set_keep_alive(&mut self, keep_alive_secs: u16) {
        self.interval = interval(keep_alive_secs);
    }

    pub(crate) fn keep_alive(&self) -> Option<Duration> {
        self.interval
    }

    /// A packet left for the server.
    pub(crate) fn on_sent(&mut self, now: Instant) {
        self.last_sent = now;
    }

    /// The PINGRESP arrived.
    pub(crate) fn on_ping_response(&mut self) {
        self.ping_sent_at = None;
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        let interval = self.interval?;
        match self.ping_sent_at {
            Some(sent) => Some(sent + self.ping_timeout.unwrap_or(interval)),
            None => Some(self.last_sent + interval),
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> PingAction {
        let Some(deadline) = self.deadline() else {
            return PingAction::None;
        };
        if now < deadline {
            return PingAction::None;
        }
        match self.ping_sent_at {
            Some(sent) => PingAction::Expired(now.saturating_duration_since(sent)),
            None => {
                self.ping_sent_at = Some(now);
                PingAction::SendPing
            }
        }
    }
}

/// The server's side: the time the client has left to show signs of life.
#[derive(Debug, Clone)]
pub(crate) struct ServerKeepAlive {
    interval: Option<Duration>,
    last_received: Instant,
}

impl ServerKeepAlive {
    pub(crate) fn new(keep_alive_secs: u16, now: Instant) -> Self {
        Self {
            interval: interval(keep_alive_secs),
            last_received: now,
        }
    }

    pub(crate) fn keep_alive(&self) -> Option<Duration> {
        self.interval
    }

    pub(crate) fn on_received(&mut self, now: Instant) {
        self.last_received = now;
    }

    /// "If the Keep Alive value is non-zero and the Server does not receive an MQTT Control
    /// Packet from the Client within one and a half times the Keep Alive time period, it MUST
    /// close the Network Connection to the Client as if the network had failed"
    /// [MQTT-3.1.2-24].
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.interval
            .map(|interval| self.last_received + interval + interval / 2)
    }

    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|deadline| now >= deadline)
    }
}

fn interval(keep_alive_secs: u16) -> Option<Duration> {
    (keep_alive_secs > 0).then(|| Duration::from_secs(u64::from(keep_alive_secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_pings_after_silence_and_expires_without_answer() {
        let start = Instant::now();
        let mut keep_alive = ClientKeepAlive::new(10, Some(Duration::from_secs(5)), start);
        assert_eq!(keep_alive.deadline(), Some(start + Duration::from_secs(10)));
        keep_alive.on_sent(start + Duration::from_secs(4));
        assert_eq!(
            keep_alive.on_timeout(start + Duration::from_secs(10)),
            PingAction::None
        );
        assert_eq!(
            keep_alive.on_timeout(start + Duration::from_secs(14)),
            PingAction::SendPing
        );
        assert_eq!(keep_alive.deadline(), Some(start + Duration::from_secs(19)));
        assert_eq!(
            keep_alive.on_timeout(start + Duration::from_secs(19)),
            PingAction::Expired(Duration::from_secs(5))
        );
    }

    #[test]
    fn zero_disables_and_server_waits_one_and_a_half() {
        let start = Instant::now();
        assert_eq!(ClientKeepAlive::new(0, None, start).deadline(), None);
        assert_eq!(ServerKeepAlive::new(0, start).deadline(), None);
        let server = ServerKeepAlive::new(10, start);
        assert!(!server.is_expired(start + Duration::from_millis(14_999)));
        assert!(server.is_expired(start + Duration::from_secs(15)));
    }
}
