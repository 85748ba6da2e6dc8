//! The relay: one thread, one poll loop, no async runtime. It reads IP packets from every
//! host's TUN device, routes each by destination address across the star (sender's uplink to
//! the switch, then the receiver's downlink), lets the link model of each hop decide its fate
//! and timing, and writes surviving packets into the receiver's TUN at their scheduled time.
//! Each hop is a timed event, so packets from several hosts enter a shared downlink's queue in
//! the order they reach the switch. The relay owns the TUN descriptors and link states for
//! the run and hands back its [`RunStats`] when told to stop.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::time::TimeSpec;

use crate::error::LabError;
use crate::link::{DropReason, LinkDirection, Verdict};
use crate::stats::{HostLinkStats, LatenessSummary, RunStats};
use crate::tun::TunDevice;

/// Largest packet read from a TUN; the MTU keeps real ones far smaller.
const MAX_PACKET: usize = 65_535;

/// One host's attachment to the switch.
#[derive(Debug)]
pub(crate) struct Port {
    pub(crate) host: String,
    pub(crate) addr: Ipv4Addr,
    pub(crate) tun: TunDevice,
    /// Host -> switch.
    pub(crate) uplink: LinkDirection,
    /// Switch -> host.
    pub(crate) downlink: LinkDirection,
}

/// How the relay runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelaySettings {
    pub(crate) realtime_priority: bool,
    pub(crate) lateness_threshold: Duration,
}

/// Where a packet is on its way.
#[derive(Debug, PartialEq, Eq)]
enum Hop {
    /// It has crossed the sender's uplink and reaches the switch.
    AtSwitch { to: usize },
    /// It has crossed the receiver's downlink and is handed to the receiver.
    Deliver { to: usize },
}

#[derive(Debug)]
struct Event {
    /// Simulated time since the relay's epoch.
    at: Duration,
    /// Tie-breaker keeping events of equal time in the order they were made.
    seq: u64,
    hop: Hop,
    packet: Vec<u8>,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The relay's state during a run.
#[derive(Debug)]
pub(crate) struct Relay {
    ports: Vec<Port>,
    by_addr: HashMap<Ipv4Addr, usize>,
    /// The lab closes its end of this socket to stop the relay.
    stop: UnixStream,
    settings: RelaySettings,
    epoch: Instant,
    events: BinaryHeap<Reverse<Event>>,
    next_seq: u64,
    packets: u64,
    delivered: u64,
    unroutable: u64,
    write_errors: u64,
    lateness: Vec<Duration>,
    realtime_priority: bool,
}

impl Relay {
    pub(crate) fn new(ports: Vec<Port>, stop: UnixStream, settings: RelaySettings) -> Relay {
        let by_addr = ports
            .iter()
            .enumerate()
            .map(|(index, port)| (port.addr, index))
            .collect();
        Relay {
            ports,
            by_addr,
            stop,
            settings,
            epoch: Instant::now(),
            events: BinaryHeap::new(),
            next_seq: 0,
            packets: 0,
            delivered: 0,
            unroutable: 0,
            write_errors: 0,
            lateness: Vec::new(),
            realtime_priority: false,
        }
    }

    /// Runs until the stop socket becomes readable or is closed.
    pub(crate) fn run(mut self) -> Result<RunStats, LabError> {
        if self.settings.realtime_priority {
            self.realtime_priority = try_realtime_priority();
        }
        // Without real-time priority, timers may fire up to the thread's slack (50 us by
        // default) late; ask for the finest slack the kernel allows (0 would mean default).
        let _ = nix::sys::prctl::set_timerslack(1);
        self.stop
            .set_nonblocking(true)
            .map_err(|e| LabError::io("relay: stop socket", e))?;
        self.epoch = Instant::now();
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            self.process_due_events();
            let readable = match self.wait()? {
                Wakeup::Stop => break,
                Wakeup::Ready(readable) => readable,
            };
            for index in readable {
                self.drain(index, &mut buf)?;
            }
        }
        Ok(self.into_stats())
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn push(&mut self, at: Duration, hop: Hop, packet: Vec<u8>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.events.push(Reverse(Event {
            at,
            seq,
            hop,
            packet,
        }));
    }

    /// Handles every event whose time has come, earliest first.
    fn process_due_events(&mut self) {
        loop {
            let now = self.now();
            let due = matches!(self.events.peek(), Some(Reverse(event)) if event.at <= now);
            if !due {
                return;
            }
            let Some(Reverse(event)) = self.events.pop() else {
                return;
            };
            match event.hop {
                Hop::AtSwitch { to } => {
                    let Some(port) = self.ports.get_mut(to) else {
                        continue;
                    };
                    // The packet enters the downlink at the simulated time it reached the
                    // switch, not at the (slightly later) moment we got round to it.
                    if let Verdict::Delivered { at } =
                        port.downlink.offer(event.at, event.packet.len())
                    {
                        self.push(at, Hop::Deliver { to }, event.packet);
                    }
                }
                Hop::Deliver { to } => {
                    let Some(port) = self.ports.get(to) else {
                        continue;
                    };
                    match port.tun.send(&event.packet) {
                        Ok(_) => {
                            self.delivered += 1;
                            self.lateness.push(now.saturating_sub(event.at));
                        }
                        Err(_) => self.write_errors += 1,
                    }
                }
            }
        }
    }

    /// Sleeps until a TUN has packets, the stop socket fires, or the next event is due.
    fn wait(&mut self) -> Result<Wakeup, LabError> {
        let timeout = self
            .events
            .peek()
            .map(|Reverse(event)| TimeSpec::from_duration(event.at.saturating_sub(self.now())));
        let mut fds = Vec::with_capacity(self.ports.len() + 1);
        fds.push(PollFd::new(self.stop.as_fd(), PollFlags::POLLIN));
        for port in &self.ports {
            fds.push(PollFd::new(port.tun.as_fd(), PollFlags::POLLIN));
        }
        match ppoll(&mut fds, timeout, None) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(Wakeup::Ready(Vec::new())),
            Err(errno) => return Err(LabError::io("relay: ppoll", errno.into())),
        }
        let fired = |fd: &PollFd<'_>| fd.revents().unwrap_or(PollFlags::empty());
        if fds.first().map(fired).is_some_and(|r| !r.is_empty()) {
            return Ok(Wakeup::Stop);
        }
        let mut readable = Vec::new();
        for (index, fd) in fds.iter().skip(1).enumerate() {
            let revents = fired(fd);
            if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
                let host = self.ports.get(index).map_or("?", |p| p.host.as_str());
                return Err(LabError::Relay(format!(
                    "the TUN device of {host} failed ({revents:?})"
                )));
            }
            if revents.contains(PollFlags::POLLIN) {
                readable.push(index);
            }
        }
        Ok(Wakeup::Ready(readable))
    }

    /// Reads every waiting packet of host `from` and sends each onto its uplink.
    fn drain(&mut self, from: usize, buf: &mut [u8]) -> Result<(), LabError> {
        loop {
            let Some(port) = self.ports.get(from) else {
                return Ok(());
            };
            let len = match port.tun.recv(buf) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(LabError::io(
                        format!("relay: reading the TUN of {}", port.host),
                        e,
                    ))
                }
            };
            let arrival = self.now();
            self.packets += 1;
            let packet = buf.get(..len).unwrap_or_default();
            let Some(to) = ipv4_destination(packet).and_then(|dst| self.by_addr.get(&dst)) else {
                self.unroutable += 1;
                continue;
            };
            let to = *to;
            let Some(port) = self.ports.get_mut(from) else {
                return Ok(());
            };
            match port.uplink.offer(arrival, len) {
                Verdict::Delivered { at } => {
                    let packet = packet.to_vec();
                    self.push(at, Hop::AtSwitch { to }, packet);
                }
                Verdict::Dropped(DropReason::RandomLoss | DropReason::QueueFull) => {}
            }
        }
    }

    fn into_stats(self) -> RunStats {
        let links: Vec<HostLinkStats> = self
            .ports
            .iter()
            .map(|port| HostLinkStats {
                host: port.host.clone(),
                uplink: port.uplink.counters(),
                downlink: port.downlink.counters(),
            })
            .collect();
        let sum = |pick: fn(&HostLinkStats) -> u64| links.iter().map(pick).sum::<u64>();
        RunStats {
            duration: self.epoch.elapsed(),
            packets: self.packets,
            delivered: self.delivered,
            random_drops: sum(|l| l.uplink.random_drops + l.downlink.random_drops),
            queue_drops: sum(|l| l.uplink.queue_drops + l.downlink.queue_drops),
            unroutable: self.unroutable,
            write_errors: self.write_errors,
            in_flight_at_stop: self.events.len() as u64,
            lateness: LatenessSummary::from_samples(self.lateness),
            lateness_threshold: self.settings.lateness_threshold,
            realtime_priority: self.realtime_priority,
            links,
        }
    }
}

enum Wakeup {
    Stop,
    Ready(Vec<usize>),
}

/// The destination of an IPv4 packet; `None` for anything else or a truncated header.
fn ipv4_destination(packet: &[u8]) -> Option<Ipv4Addr> {
    let version = packet.first()? >> 4;
    if version != 4 {
        return None;
    }
    let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
    Some(Ipv4Addr::from(dst))
}

/// Asks for SCHED_FIFO for the calling thread with `chrt`, so the relay's timers preempt
/// ordinary work on a busy machine. Returns whether it was granted; a refusal (no
/// CAP_SYS_NICE, a container without real-time budget) is not an error.
fn try_realtime_priority() -> bool {
    let tid = nix::unistd::gettid();
    Command::new("chrt")
        .args(["--fifo", "--pid", "10", &tid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_of_ipv4_packets_only() {
        let mut header = [0u8; 20];
        header[0] = 0x45;
        header[16..20].copy_from_slice(&[10, 200, 1, 7]);
        assert_eq!(
            ipv4_destination(&header),
            Some(Ipv4Addr::new(10, 200, 1, 7))
        );
        assert_eq!(ipv4_destination(&header[..19]), None);
        header[0] = 0x60;
        assert_eq!(ipv4_destination(&header), None);
        assert_eq!(ipv4_destination(&[]), None);
    }

    #[test]
    fn events_pop_in_time_then_creation_order() {
        let event = |at_ms: u64, seq: u64| {
            Reverse(Event {
                at: Duration::from_millis(at_ms),
                seq,
                hop: Hop::Deliver { to: 0 },
                packet: Vec::new(),
            })
        };
        let mut heap = BinaryHeap::from([event(5, 0), event(1, 2), event(1, 1), event(3, 3)]);
        let order: Vec<u64> = std::iter::from_fn(|| heap.pop().map(|Reverse(e)| e.seq)).collect();
        assert_eq!(order, [1, 2, 3, 0]);
    }
}
