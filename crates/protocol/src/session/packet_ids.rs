//! Allocation of the packet identifiers we send: one space per direction shared by PUBLISH
//! (QoS 1 and 2), SUBSCRIBE and UNSUBSCRIBE, where an identifier stays taken until its exchange
//! completes. "Each time a Client sends a new SUBSCRIBE, UNSUBSCRIBE, or PUBLISH (where QoS > 0)
//! MQTT Control Packet it MUST assign it a non-zero Packet Identifier that is currently unused"
//! [MQTT-2.2.1-3]; the server does the same for PUBLISH [MQTT-2.2.1-4].

use rustc_hash::FxHashSet;

use crate::types::PacketId;

/// The identifiers in use and where the search for the next free one starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct PacketIdAllocator {
    in_use: FxHashSet<PacketId>,
    /// Where the next search starts, as a raw value; 0 stands for 1.
    next: u16,
}

impl PacketIdAllocator {
    /// Takes the next free identifier after the last one handed out, so a just-released
    /// identifier is not reused at once (a late acknowledgement for it stays unambiguous).
    pub(crate) fn allocate(&mut self) -> Option<PacketId> {
        let mut raw = self.next;
        for _ in 0..=u16::MAX {
            if let Some(candidate) = PacketId::new(raw) {
                if self.in_use.insert(candidate) {
                    self.next = raw.wrapping_add(1);
                    return Some(candidate);
                }
            }
            raw = raw.wrapping_add(1);
        }
        None
    }

    /// Marks an identifier restored from a stored session as taken; `false` if it already was.
    pub(crate) fn reserve(&mut self, id: PacketId) -> bool {
        self.in_use.insert(id)
    }

    /// Frees an identifier whose exchange is complete.
    pub(crate) fn release(&mut self, id: PacketId) {
        self.in_use.remove(&id);
    }

    /// Whether an identifier is taken.
    #[cfg(test)]
    pub(crate) fn is_in_use(&self, id: PacketId) -> bool {
        self.in_use.contains(&id)
    }

    /// How many identifiers are taken.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.len()
    }

    /// What an allocator with no identifier in use keeps while its connection is idle (see
    /// `server/idle.rs`): where the next search starts. `None` while identifiers are taken.
    pub(crate) fn idle(&self) -> Option<u16> {
        let Self { in_use, next } = self;
        in_use.is_empty().then_some(*next)
    }

    /// The allocator [`Self::idle`] described.
    pub(crate) fn from_idle(next: u16) -> Self {
        Self {
            in_use: FxHashSet::default(),
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(value: u16) -> PacketId {
        PacketId::new(value).unwrap()
    }

    #[test]
    fn never_hands_out_an_identifier_in_use() {
        let mut ids = PacketIdAllocator::default();
        assert!(ids.reserve(id(2)));
        assert_eq!(ids.allocate(), Some(id(1)));
        // 2 is restored from a session: skipped.
        assert_eq!(ids.allocate(), Some(id(3)));
        ids.release(id(1));
        // 1 is free again but the search goes on from 4 first.
        assert_eq!(ids.allocate(), Some(id(4)));
        assert!(ids.is_in_use(id(2)));
        assert!(!ids.is_in_use(id(1)));
    }

    #[test]
    fn wraps_and_reports_exhaustion() {
        let mut ids = PacketIdAllocator::default();
        for expected in 1..=u16::MAX {
            assert_eq!(ids.allocate(), Some(id(expected)));
        }
        assert_eq!(ids.in_use(), 65_535);
        assert_eq!(ids.allocate(), None);
        ids.release(id(7));
        assert_eq!(ids.allocate(), Some(id(7)));
    }
}
