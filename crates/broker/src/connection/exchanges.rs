//! A connection's QoS 1 and 2 bookkeeping beside its session machine: the outgoing exchanges
//! by packet identifier (the queue entry each one carries, and for shared subscriptions the
//! copy, so that it can go to another member of the group if this client leaves without
//! acknowledging it), and the incoming QoS 2 identifiers recorded in storage as awaiting
//! PUBREL. Both maps live out of line, created by the first exchange and let go when the
//! connection idles with both empty (not when the last exchange ends, which on a busy QoS 1
//! connection happens with every acknowledgement): a QoS 0 connection never has them, and two
//! empty maps inline cost every connection 64 bytes for as long as it lasts.

use rustc_hash::{FxHashMap, FxHashSet};

use mquictt_protocol::PacketId;

use crate::router::InFlight;

/// The bookkeeping; see the [module documentation](self).
#[derive(Debug, Default)]
pub(super) struct Exchanges(Option<Box<Maps>>);

#[derive(Debug, Default)]
struct Maps {
    in_flight: FxHashMap<PacketId, InFlight>,
    inbound_stored: FxHashSet<PacketId>,
}

impl Exchanges {
    /// Bookkeeping resumed with a session.
    pub(super) fn new(
        in_flight: FxHashMap<PacketId, InFlight>,
        inbound_stored: FxHashSet<PacketId>,
    ) -> Self {
        if in_flight.is_empty() && inbound_stored.is_empty() {
            return Self(None);
        }
        Self(Some(Box::new(Maps {
            in_flight,
            inbound_stored,
        })))
    }

    /// Records an outgoing exchange.
    pub(super) fn insert_in_flight(&mut self, packet_id: PacketId, entry: InFlight) {
        self.maps().in_flight.insert(packet_id, entry);
    }

    /// The outgoing exchange under `packet_id`.
    pub(super) fn in_flight_mut(&mut self, packet_id: PacketId) -> Option<&mut InFlight> {
        self.0.as_mut()?.in_flight.get_mut(&packet_id)
    }

    /// Ends the outgoing exchange under `packet_id`.
    pub(super) fn remove_in_flight(&mut self, packet_id: PacketId) -> Option<InFlight> {
        self.0.as_mut()?.in_flight.remove(&packet_id)
    }

    /// Records an incoming QoS 2 identifier as stored awaiting PUBREL.
    pub(super) fn insert_inbound(&mut self, packet_id: PacketId) {
        self.maps().inbound_stored.insert(packet_id);
    }

    /// Forgets an incoming QoS 2 identifier; whether it was recorded.
    pub(super) fn remove_inbound(&mut self, packet_id: PacketId) -> bool {
        self.0
            .as_mut()
            .is_some_and(|maps| maps.inbound_stored.remove(&packet_id))
    }

    /// Lets go of the maps' spare room, and of the maps themselves if both are empty, for a
    /// connection that has been idle for a while.
    pub(super) fn shrink_to_fit(&mut self) {
        let Some(maps) = self.0.as_mut() else {
            return;
        };
        if maps.in_flight.is_empty() && maps.inbound_stored.is_empty() {
            self.0 = None;
        } else {
            maps.in_flight.shrink_to_fit();
            maps.inbound_stored.shrink_to_fit();
        }
    }

    /// The outgoing exchanges, for the session's hand-back.
    pub(super) fn into_in_flight(self) -> FxHashMap<PacketId, InFlight> {
        self.0.map(|maps| maps.in_flight).unwrap_or_default()
    }

    /// The outgoing exchanges, for taking out what may go to another client.
    pub(super) fn in_flight(&mut self) -> Option<&mut FxHashMap<PacketId, InFlight>> {
        self.0.as_mut().map(|maps| &mut maps.in_flight)
    }

    fn maps(&mut self) -> &mut Maps {
        self.0.get_or_insert_with(Box::default)
    }

    /// Whether the maps are held.
    #[cfg(test)]
    pub(super) fn is_held(&self) -> bool {
        self.0.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::InFlightStage;

    fn id(value: u16) -> PacketId {
        PacketId::new(value).unwrap()
    }

    fn entry(seq: u64) -> InFlight {
        InFlight {
            seq,
            stage: InFlightStage::Sent,
            shared: None,
            gate: None,
        }
    }

    #[test]
    fn the_maps_are_made_by_the_first_exchange_and_let_go_when_idle_and_empty() {
        let mut exchanges = Exchanges::new(FxHashMap::default(), FxHashSet::default());
        assert!(!exchanges.is_held());
        exchanges.insert_in_flight(id(1), entry(7));
        exchanges.insert_inbound(id(2));
        assert!(exchanges.is_held());
        assert_eq!(exchanges.in_flight_mut(id(1)).map(|e| e.seq), Some(7));
        assert_eq!(exchanges.remove_in_flight(id(1)).map(|e| e.seq), Some(7));
        exchanges.shrink_to_fit();
        assert!(
            exchanges.is_held(),
            "an incoming identifier is still recorded"
        );
        assert!(!exchanges.remove_inbound(id(3)));
        assert!(exchanges.remove_inbound(id(2)));
        assert!(
            exchanges.is_held(),
            "kept while the connection is busy, for its next exchange"
        );
        exchanges.shrink_to_fit();
        assert!(!exchanges.is_held(), "let go once idle and empty");
        assert!(exchanges.remove_in_flight(id(1)).is_none());
        assert!(exchanges.into_in_flight().is_empty());
    }

    #[test]
    fn resumed_exchanges_are_kept_and_handed_back() {
        let mut in_flight = FxHashMap::default();
        in_flight.insert(id(4), entry(11));
        let exchanges = Exchanges::new(in_flight, FxHashSet::default());
        assert!(exchanges.is_held());
        let back = exchanges.into_in_flight();
        assert_eq!(back.get(&id(4)).map(|e| e.seq), Some(11));
    }
}
