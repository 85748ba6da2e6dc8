//! Framing: two packets in one buffer, and a packet exactly at the size limit.

use super::*;

#[test]
fn two_packets_back_to_back_in_one_buffer() {
    let mut buf = BytesMut::from(
        &[
            0x30, 0x05, 0x00, 0x01, b't', 0x00, b'x', // PUBLISH
            0x40, 0x03, 0x00, 0x01, 0x10, // PUBACK, No matching subscribers
        ][..],
    );
    let first = decode(&mut buf, V5, NO_LIMIT)
        .expect("valid")
        .expect("complete");
    assert_eq!(buf.len(), 5, "the PUBLISH consumed exactly its 7 bytes");
    assert!(matches!(first, Packet::Publish(ref p) if p.payload == b"x"[..]));
    let second = decode(&mut buf, V5, NO_LIMIT)
        .expect("valid")
        .expect("complete");
    assert_eq!(
        second,
        Packet::PubAck(ack(
            1,
            ReasonCode::NoMatchingSubscribers,
            Properties::default()
        ))
    );
    assert!(buf.is_empty());
}

#[test]
fn packet_exactly_at_the_size_limit_is_accepted() {
    // Maximum Packet Size counts the whole packet, fixed header included (3.1.2.11.4): this
    // PUBLISH is 7 bytes.
    let bytes = [0x30, 0x05, 0x00, 0x01, b't', 0x00, b'x'];
    let mut buf = BytesMut::from(&bytes[..]);
    let packet = decode(&mut buf, V5, 7).expect("within the limit");
    assert!(packet.is_some());
}
