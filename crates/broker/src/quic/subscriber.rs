//! Who a data stream's subscriptions belong to. In multi-stream mode a subscription made on a
//! data stream is delivered on that stream only, so each data stream is a subscriber of its
//! own in the subscription tree and the session registry: a transient session (expiry 0,
//! never stored) keyed by `{client id}\0{connection}/{stream}`. MQTT strings cannot contain
//! U+0000 [MQTT-1.5.4-2], so such a key never equals a real client identifier, and the part
//! before the NUL names the client for No Local and authorization. This file owns the key
//! format and nothing else.

use crate::message::ClientId;
use crate::registry::ConnectionId;

/// Separates the client identifier from the stream part of a data-stream subscriber key.
const SEPARATOR: char = '\0';

/// The subscriber key of QUIC stream `stream_id` of connection `connection` of `client`.
pub(crate) fn data_stream_subscriber(
    client: &str,
    connection: ConnectionId,
    stream_id: u64,
) -> ClientId {
    ClientId::from(format!("{client}{SEPARATOR}{}/{stream_id}", connection.0))
}

/// The client a subscriber key belongs to: the key itself for an ordinary session.
pub(crate) fn owner(subscriber: &str) -> &str {
    subscriber
        .split_once(SEPARATOR)
        .map_or(subscriber, |(client, _)| client)
}

/// Whether `subscriber` is the key of a data stream rather than a client's session.
pub(crate) fn is_data_stream(subscriber: &str) -> bool {
    subscriber.contains(SEPARATOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(id: u64) -> ConnectionId {
        ConnectionId(std::num::NonZeroU64::new(id).unwrap())
    }

    #[test]
    fn data_stream_keys_name_their_client() {
        let key = data_stream_subscriber("sensor-1", connection(7), 4);
        assert!(is_data_stream(&key));
        assert_eq!(owner(&key), "sensor-1");
        assert_ne!(&*key, "sensor-1");
        assert!(!is_data_stream("sensor-1"));
        assert_eq!(owner("sensor-1"), "sensor-1");
        // Two streams, or the same stream id on a later connection, never share a key.
        assert_ne!(key, data_stream_subscriber("sensor-1", connection(7), 8));
        assert_ne!(key, data_stream_subscriber("sensor-1", connection(8), 4));
    }
}
