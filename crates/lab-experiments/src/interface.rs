//! Byte and packet counters of a host's lab interface, read from `/proc/thread-self/net/dev`
//! by a thread inside the host's namespace (`/proc/net` would show the namespace of the
//! process's main thread). They count IP packets in both directions at the host's edge, the
//! way a capture on the host would see them, and can be read at any moment of a run, which
//! the relay's totals cannot.

use std::ops::Sub;

use mquictt_lab::INTERFACE;

/// What crossed the interface so far, both directions together and IP headers included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WireCount {
    /// IP bytes sent and received.
    pub bytes: u64,
    /// IP packets sent and received.
    pub packets: u64,
}

impl WireCount {
    /// The same traffic counted as Ethernet frames, as a capture on a wired host shows it:
    /// 14 bytes of Ethernet header per packet (no preamble, no frame check sequence).
    pub fn ethernet_bytes(&self) -> u64 {
        self.bytes + 14 * self.packets
    }
}

impl Sub for WireCount {
    type Output = WireCount;

    fn sub(self, earlier: WireCount) -> WireCount {
        WireCount {
            bytes: self.bytes.saturating_sub(earlier.bytes),
            packets: self.packets.saturating_sub(earlier.packets),
        }
    }
}

/// Reads the lab interface's counters as the calling thread's namespace sees them; zero if
/// the interface is not there (the caller runs outside a lab host).
pub(crate) fn read_counters() -> WireCount {
    std::fs::read_to_string("/proc/thread-self/net/dev")
        .map(|text| parse_dev(&text, INTERFACE))
        .unwrap_or_default()
}

/// Finds `interface` in the text of `/proc/net/dev`: after `name:` come 8 receive columns
/// (bytes, packets, ...) and 8 transmit columns (bytes, packets, ...).
fn parse_dev(text: &str, interface: &str) -> WireCount {
    for line in text.lines() {
        let Some((name, columns)) = line.split_once(':') else {
            continue;
        };
        if name.trim() != interface {
            continue;
        }
        let numbers: Vec<u64> = columns
            .split_whitespace()
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        let at = |i: usize| numbers.get(i).copied().unwrap_or(0);
        return WireCount {
            bytes: at(0) + at(8),
            packets: at(1) + at(9),
        };
    }
    WireCount::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     120       2    0    0    0     0          0         0      120       2    0    0    0     0       0          0
  mql0:    5000      40    0    0    0     0          0         0     3000      30    0    0    0     0       0          0
";

    #[test]
    fn both_directions_of_the_named_interface_are_added() {
        let count = parse_dev(SAMPLE, "mql0");
        assert_eq!(
            count,
            WireCount {
                bytes: 8000,
                packets: 70
            }
        );
        assert_eq!(count.ethernet_bytes(), 8000 + 14 * 70);
        assert_eq!(parse_dev(SAMPLE, "eth9"), WireCount::default());
    }

    #[test]
    fn differences_never_go_negative() {
        let later = WireCount {
            bytes: 10,
            packets: 1,
        };
        let earlier = WireCount {
            bytes: 4,
            packets: 2,
        };
        assert_eq!(
            later - earlier,
            WireCount {
                bytes: 6,
                packets: 0
            }
        );
    }
}
