//! The UDP side of a QUIC endpoint: the socket it is bound to (with receive and send buffers
//! large enough that a burst of datagrams is queued, not dropped) and how large its datagrams
//! may grow. Datagram size is never assumed: path MTU discovery (RFC 9000 section 14.3) finds
//! it, and this file only sets the ceiling of that search: quinn's default of 1452 bytes, or
//! what the options name explicitly ([`LOOPBACK_MAX_UDP_PAYLOAD`] is the value for loopback
//! paths). It touches no stream or connection state.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use quinn::{Endpoint, EndpointConfig, MtuDiscoveryConfig, TransportConfig};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::quic::{MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD};

/// The ceiling of path MTU discovery to use on a loopback path, in UDP payload bytes (set it
/// with `max_udp_payload` on both ends; it is not applied by itself, see docs/decisions.md).
/// Loopback's
/// MTU is 65,536 bytes on Linux, but quinn hands the kernel up to ten datagrams per send
/// (UDP segmentation offload, one system call for all of them), and one such send may carry
/// at most 65,507 bytes of payload: ten datagrams of 6,500 bytes fit. Larger datagrams would
/// need segmentation offload switched off, which costs one system call per datagram; on
/// loopback with 1 KiB messages that measured slower at QoS 1 (every PUBACK its own system
/// call) and no faster at QoS 0 (docs/decisions.md).
pub const LOOPBACK_MAX_UDP_PAYLOAD: u16 = 6_500;

/// What quinn receives by default: an Ethernet frame minus the IPv4 and UDP headers.
const DEFAULT_RECEIVE_PAYLOAD: u16 = 1_472;

/// Payload bytes one send with UDP segmentation offload may carry: a UDP datagram's length
/// field covers at most 65,535 bytes including its 8-byte header, and IPv4's total length
/// also counts its 20-byte header.
const SEGMENTATION_OFFLOAD_BYTES: usize = 65_507;

/// Datagrams quinn puts into one send with segmentation offload (`MAX_TRANSMIT_SEGMENTS` in
/// quinn 0.11).
const SEGMENTS_PER_SEND: usize = 10;

/// The ceiling of path MTU discovery: `explicit` clamped to what QUIC allows, or `None`
/// (quinn's default of 1452).
pub(crate) fn max_udp_payload(explicit: Option<u16>) -> Option<u16> {
    explicit.map(|size| size.clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD))
}

/// Whether quinn's segmentation offload can send datagrams of up to `max_udp_payload` bytes:
/// ten of them must fit in one send, or the kernel refuses the whole send and QUIC sees every
/// datagram in it lost.
pub(crate) fn segmentation_offload_fits(max_udp_payload: u16) -> bool {
    usize::from(max_udp_payload) * SEGMENTS_PER_SEND <= SEGMENTATION_OFFLOAD_BYTES
}

/// Lets path MTU discovery search up to `max_udp_payload` bytes, switching segmentation
/// offload off when such datagrams cannot be batched (see [`segmentation_offload_fits`]).
pub(crate) fn raise_mtu_ceiling(transport: &mut TransportConfig, max_udp_payload: u16) {
    let mut discovery = MtuDiscoveryConfig::default();
    discovery.upper_bound(max_udp_payload);
    transport.mtu_discovery_config(Some(discovery));
    if !segmentation_offload_fits(max_udp_payload) {
        transport.enable_segmentation_offload(false);
    }
}

/// Endpoint settings that announce (transport parameter `max_udp_payload_size`) and accept
/// datagrams of up to `max_udp_payload` bytes; quinn's defaults without one. The peer's path
/// MTU discovery never searches beyond what we announce.
pub(crate) fn endpoint_config(max_udp_payload: Option<u16>) -> EndpointConfig {
    let mut config = EndpointConfig::default();
    if let Some(size) = max_udp_payload {
        // In range by construction (`max_udp_payload` clamps); an error would only keep
        // quinn's default, which is always safe.
        let _ = config.max_udp_payload_size(size.max(DEFAULT_RECEIVE_PAYLOAD));
    }
    config
}

/// A UDP socket bound to `addr` with `buffer_size` requested for its receive and send
/// buffers, sharing the port with other sockets of this process when `reuse_port`
/// (`SO_REUSEPORT`; see `quic_routing.rs`). An IPv6 socket also takes IPv4 where the system
/// allows, as quinn's own client endpoints do.
pub(crate) fn bind_udp(
    addr: SocketAddr,
    buffer_size: usize,
    reuse_port: bool,
) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        if let Err(e) = socket.set_only_v6(false) {
            tracing::debug!(%e, "UDP socket is IPv6 only");
        }
    }
    set_buffer_sizes(&SockRef::from(&socket), buffer_size);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Requests `size` bytes of receive and send buffer. A refusal is not fatal: the socket
/// works with the system's default, only drops more under bursts.
fn set_buffer_sizes(socket: &SockRef<'_>, size: usize) {
    if let Err(e) = socket.set_recv_buffer_size(size) {
        tracing::debug!(%e, size, "UDP receive buffer size not set");
    }
    if let Err(e) = socket.set_send_buffer_size(size) {
        tracing::debug!(%e, size, "UDP send buffer size not set");
    }
}

/// A quinn endpoint on `socket` driven by tokio.
pub(crate) fn endpoint(
    config: EndpointConfig,
    server: Option<quinn::ServerConfig>,
    socket: std::net::UdpSocket,
) -> io::Result<Endpoint> {
    Endpoint::new(config, server, socket, Arc::new(quinn::TokioRuntime))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn the_ceiling_is_quinns_unless_set_and_stays_within_quic_s_limits() {
        assert_eq!(max_udp_payload(None), None);
        assert_eq!(max_udp_payload(Some(9000)), Some(9000));
        assert_eq!(
            max_udp_payload(Some(LOOPBACK_MAX_UDP_PAYLOAD)),
            Some(LOOPBACK_MAX_UDP_PAYLOAD)
        );
        assert_eq!(max_udp_payload(Some(500)), Some(MIN_UDP_PAYLOAD));
        assert_eq!(max_udp_payload(Some(u16::MAX)), Some(MAX_UDP_PAYLOAD));
    }

    #[test]
    fn segmentation_offload_is_kept_while_ten_datagrams_fit_one_send() {
        assert!(segmentation_offload_fits(1452));
        assert!(segmentation_offload_fits(LOOPBACK_MAX_UDP_PAYLOAD));
        assert!(!segmentation_offload_fits(9000));
        assert!(!segmentation_offload_fits(MAX_UDP_PAYLOAD));
    }

    #[test]
    fn the_endpoint_announces_the_ceiling_and_never_less_than_the_default() {
        let default = EndpointConfig::default().get_max_udp_payload_size();
        assert_eq!(endpoint_config(None).get_max_udp_payload_size(), default);
        assert_eq!(endpoint_config(Some(6500)).get_max_udp_payload_size(), 6500);
        assert_eq!(
            endpoint_config(Some(1300)).get_max_udp_payload_size(),
            u64::from(DEFAULT_RECEIVE_PAYLOAD)
        );
    }

    #[test]
    fn the_socket_gets_the_requested_buffers_up_to_the_system_cap() {
        let requested = 1 << 20;
        let socket = bind_udp((Ipv4Addr::LOCALHOST, 0).into(), requested, false).unwrap();
        let socket = SockRef::from(&socket);
        // Linux reports twice the granted size (bookkeeping overhead) and caps the request at
        // net.core.rmem_max / wmem_max; elsewhere the request is granted as is.
        let cap = |name: &str| {
            std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
                .ok()
                .and_then(|text| text.trim().parse::<usize>().ok())
                .unwrap_or(usize::MAX)
        };
        assert!(socket.recv_buffer_size().unwrap() >= requested.min(cap("rmem_max")));
        assert!(socket.send_buffer_size().unwrap() >= requested.min(cap("wmem_max")));
    }
}
