//! Maps keyed by what peers choose: client identifiers, topic levels, share group names and
//! addresses. Their hash keeps a random seed, as `std`'s does, so a peer cannot pick keys that
//! collide and turn lookups into scans; it is foldhash rather than `std`'s SipHash because the
//! router hashes several such keys for every message and SipHash was a sixth of the broker's
//! instructions per routed message (docs/decisions.md).

use std::collections::HashMap;

/// The hasher of maps keyed by what peers choose.
pub(crate) type PeerKeyed = foldhash::fast::RandomState;

/// A map keyed by what peers choose.
pub(crate) type PeerKeyedMap<K, V> = HashMap<K, V, PeerKeyed>;
