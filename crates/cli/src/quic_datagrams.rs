//! The QUIC datagram settings a user can give: the ceiling of path MTU discovery and the UDP
//! socket buffer size. Their accepted ranges and checks live here once, for the broker's
//! config file (`quic_max_udp_payload`, `quic_socket_buffer`) and for the client flags of
//! `mquictt pub`, `sub` and `bench` (`--quic-max-udp-payload`, `--quic-socket-buffer`).

use std::ops::RangeInclusive;

use mquictt_client::{MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD};

/// The socket buffer sizes accepted, in bytes. At least 64 KiB: one datagram of the largest
/// size QUIC allows must fit, and a smaller buffer only drops bursts. At most 256 MiB: the
/// kernel grants no more than `net.core.rmem_max`/`wmem_max` (a few MiB unless an
/// administrator raised them), so a larger value is far more likely a typo than a need.
pub const SOCKET_BUFFER_RANGE: RangeInclusive<u64> = (64 << 10)..=(256 << 20);

/// `size` as a ceiling of path MTU discovery, or why not.
pub fn check_max_udp_payload(size: u64) -> Result<u16, String> {
    u16::try_from(size)
        .ok()
        .filter(|size| (MIN_UDP_PAYLOAD..=MAX_UDP_PAYLOAD).contains(size))
        .ok_or_else(|| {
            format!(
                "must be {MIN_UDP_PAYLOAD}..={MAX_UDP_PAYLOAD} bytes (every QUIC path carries \
                 {MIN_UDP_PAYLOAD}; {MAX_UDP_PAYLOAD} is the largest UDP payload QUIC allows)"
            )
        })
}

/// `bytes` as a socket buffer size, or why not.
pub fn check_socket_buffer(bytes: u64) -> Result<usize, String> {
    SOCKET_BUFFER_RANGE
        .contains(&bytes)
        .then(|| usize::try_from(bytes).ok())
        .flatten()
        .ok_or_else(|| {
            format!(
                "must be {}..={} bytes (64 KiB to 256 MiB; the default is 4 MiB)",
                SOCKET_BUFFER_RANGE.start(),
                SOCKET_BUFFER_RANGE.end()
            )
        })
}

/// The `--quic-max-udp-payload` flag.
pub fn parse_max_udp_payload(text: &str) -> Result<u16, String> {
    let size = text
        .parse::<u64>()
        .map_err(|_| format!("`{text}` is not a number of bytes"))?;
    check_max_udp_payload(size)
}

/// The `--quic-socket-buffer` flag.
pub fn parse_socket_buffer(text: &str) -> Result<usize, String> {
    let bytes = text
        .parse::<u64>()
        .map_err(|_| format!("`{text}` is not a number of bytes"))?;
    check_socket_buffer(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_is_checked_against_quic_s_limits() {
        assert_eq!(parse_max_udp_payload("1200"), Ok(1200));
        assert_eq!(parse_max_udp_payload("6500"), Ok(6500));
        assert_eq!(parse_max_udp_payload("65527"), Ok(65527));
        for bad in ["0", "1199", "65528", "70000", "-1", "big", ""] {
            assert!(parse_max_udp_payload(bad).is_err(), "{bad}");
        }
        assert!(parse_max_udp_payload("100")
            .unwrap_err()
            .contains("1200..=65527"));
    }

    #[test]
    fn the_socket_buffer_is_checked_against_its_range() {
        assert_eq!(parse_socket_buffer("65536"), Ok(64 << 10));
        assert_eq!(parse_socket_buffer("4194304"), Ok(4 << 20));
        assert_eq!(parse_socket_buffer("268435456"), Ok(256 << 20));
        for bad in ["0", "65535", "268435457", "4MiB", "-4"] {
            assert!(parse_socket_buffer(bad).is_err(), "{bad}");
        }
    }
}
