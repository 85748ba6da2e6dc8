//! Building and running one emulated network: the [`Topology`] (a broker and N clients, each
//! with its own link to a central switch), [`Lab::start`] which creates fresh namespaces, TUN
//! devices and addresses and starts the relay, and the [`LabGuard`] that gives access to the
//! hosts and tears everything down when it is finished, dropped or unwound by a panic.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::LabError;
use crate::link::{LinkConfig, LinkDirection};
use crate::netns::{InsideThread, NetNamespace};
use crate::relay::{Port, Relay, RelaySettings};
use crate::stats::RunStats;
use crate::teardown::{self, NAMESPACE_PREFIX};
use crate::tun::TunDevice;

/// The broker's address.
pub const BROKER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
/// The first client's address; client `i` has this plus `i`.
pub const FIRST_CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 200, 1, 1);
/// The lab's network, 10.200.0.0/16: every host address is in it.
pub const LAB_NETWORK: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 0);
/// The prefix length of the lab's network.
pub const PREFIX_LEN: u8 = 16;
/// The most clients one lab builds: every client is a namespace and a TUN device.
pub const MAX_CLIENTS: usize = 1000;
/// The name of the TUN interface inside every host.
pub const INTERFACE: &str = "mql0";

/// Both directions of one host's link to the switch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HostLink {
    /// Host -> switch.
    pub uplink: LinkConfig,
    /// Switch -> host.
    pub downlink: LinkConfig,
}

impl HostLink {
    /// The same settings in both directions.
    pub fn symmetric(config: LinkConfig) -> HostLink {
        HostLink {
            uplink: config,
            downlink: config,
        }
    }
}

/// A star: every host hangs off one switch through its own link. A client's packets to the
/// broker cross the client's uplink and then the broker's downlink, so the broker's link is
/// the bottleneck all clients share (the congested link of the study's dumbbell).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Topology {
    /// The broker's link.
    pub broker: HostLink,
    /// One link per client host.
    pub clients: Vec<HostLink>,
    /// Seeds every link direction's loss stream; the same seed loses the same packet numbers.
    pub seed: u64,
}

impl Topology {
    /// A star with the given links and seed 0.
    pub fn star(broker: HostLink, clients: Vec<HostLink>) -> Topology {
        Topology {
            broker,
            clients,
            seed: 0,
        }
    }

    /// The same topology with another seed.
    pub fn with_seed(self, seed: u64) -> Topology {
        Topology { seed, ..self }
    }
}

/// How the lab runs, beyond the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabOptions {
    /// A run whose p99 lateness exceeds this is flagged ([`RunStats::is_flagged`]). Default
    /// 2 ms: a tenth of the 20 ms 4G round trip of the study's profiles, and far above the
    /// tens of microseconds the relay usually needs, so only a machine under real pressure
    /// trips it.
    pub lateness_threshold: Duration,
    /// Ask for SCHED_FIFO for the relay thread (carry on without it if refused). Default on.
    pub realtime_priority: bool,
    /// Install SIGINT/SIGTERM/SIGHUP handlers that delete the namespaces before the process
    /// dies. Default on; turn it off if your program handles those signals itself, and call
    /// [`crate::teardown_all`] from your handler.
    pub handle_signals: bool,
    /// MTU of the hosts' interfaces. Default 1500, an Ethernet link's.
    pub mtu: u16,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            lateness_threshold: Duration::from_millis(2),
            realtime_priority: true,
            handle_signals: true,
            mtu: 1500,
        }
    }
}

/// Which host of the star.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostRole {
    /// The broker's host.
    Broker,
    /// Client host number `n`, from 0.
    Client(usize),
}

/// One emulated host: a network namespace with one interface into the emulated network.
#[derive(Debug)]
pub struct Host {
    role: HostRole,
    addr: Ipv4Addr,
    namespace: NetNamespace,
}

impl Host {
    /// Broker or client.
    pub fn role(&self) -> HostRole {
        self.role
    }

    /// The host's address in 10.200.0.0/16.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The host's namespace name (for `ip netns exec`).
    pub fn namespace_name(&self) -> &str {
        self.namespace.name()
    }

    /// A command that runs `program` inside this host (`ip netns exec`).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        self.namespace.command(program)
    }

    /// Runs `f` on a new thread inside this host; sockets it opens belong to the host.
    pub fn spawn<F, R>(&self, f: F) -> Result<InsideThread<R>, LabError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.namespace.spawn(f)
    }

    /// Runs `f` inside this host and waits for it.
    pub fn run<F, R>(&self, f: F) -> Result<R, LabError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.namespace.run(f)
    }

    /// Reads `/proc/sys/<key>` as this host sees it, e.g. `net/ipv4/tcp_congestion_control`.
    pub fn sysctl(&self, key: &str) -> Result<String, LabError> {
        self.namespace.sysctl(key)
    }
}

/// Entry point of the lab.
#[derive(Debug)]
pub struct Lab;

/// Numbers the labs of this process, so several can run side by side.
static NEXT_LAB: AtomicU64 = AtomicU64::new(0);

impl Lab {
    /// Checks that this machine can host a lab: root, `/dev/net/tun` and iproute2's `ip`.
    /// The error says what is missing.
    pub fn check_prerequisites() -> Result<(), LabError> {
        let uid = nix::unistd::geteuid();
        if !uid.is_root() {
            return Err(LabError::Unavailable(format!(
                "it needs root (network namespaces and TUN devices), running as uid {uid}"
            )));
        }
        if let Err(e) = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
        {
            return Err(LabError::Unavailable(format!(
                "/dev/net/tun cannot be opened: {e}"
            )));
        }
        let ip = Command::new("ip")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !ip.is_ok_and(|status| status.success()) {
            return Err(LabError::Unavailable(
                "iproute2's `ip` command is not installed".to_owned(),
            ));
        }
        Ok(())
    }

    /// Builds `topology` with default options and starts the relay.
    pub fn start(topology: Topology) -> Result<LabGuard, LabError> {
        Lab::start_with(topology, LabOptions::default())
    }

    /// Builds `topology` in fresh namespaces and starts the relay.
    pub fn start_with(topology: Topology, options: LabOptions) -> Result<LabGuard, LabError> {
        if topology.clients.len() > MAX_CLIENTS {
            return Err(LabError::Topology(format!(
                "{} clients, at most {MAX_CLIENTS}",
                topology.clients.len()
            )));
        }
        Lab::check_prerequisites()?;
        if options.handle_signals {
            teardown::install_signal_handlers()?;
        }
        teardown::remove_stale_namespaces();

        let lab = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{NAMESPACE_PREFIX}{}-{lab}-", std::process::id());
        let roles = std::iter::once(HostRole::Broker)
            .chain((0..topology.clients.len()).map(HostRole::Client));
        let links = std::iter::once(topology.broker).chain(topology.clients.iter().copied());

        let mut hosts = Vec::with_capacity(topology.clients.len() + 1);
        let mut ports = Vec::with_capacity(topology.clients.len() + 1);
        for (index, (role, link)) in roles.zip(links).enumerate() {
            let (host, tun) = build_host(&prefix, role, options.mtu)?;
            // Streams 2i and 2i+1 of the seed: every direction of every link draws its own.
            let stream = 2 * index as u64;
            ports.push(Port {
                host: host.namespace_name().to_owned(),
                addr: host.addr,
                tun,
                uplink: LinkDirection::new(link.uplink, topology.seed, stream),
                downlink: LinkDirection::new(link.downlink, topology.seed, stream + 1),
            });
            hosts.push(host);
        }

        let (stop, relay_stop) = UnixStream::pair()
            .map_err(|e| LabError::io("cannot make the relay's stop socket", e))?;
        let settings = RelaySettings {
            realtime_priority: options.realtime_priority,
            lateness_threshold: options.lateness_threshold,
        };
        let relay = Relay::new(ports, relay_stop, settings);
        let thread = std::thread::Builder::new()
            .name("lab relay".to_owned())
            .spawn(move || relay.run())
            .map_err(|e| LabError::io("cannot start the relay thread", e))?;
        Ok(LabGuard {
            hosts,
            relay: Some(RelayHandle { stop, thread }),
        })
    }
}

/// Creates one host: namespace, sysctls, TUN device, address.
fn build_host(prefix: &str, role: HostRole, mtu: u16) -> Result<(Host, TunDevice), LabError> {
    let (suffix, addr) = match role {
        HostRole::Broker => ("broker".to_owned(), BROKER_ADDR),
        HostRole::Client(n) => {
            // n <= MAX_CLIENTS keeps this inside 10.200.1.1 ..= 10.200.4.233.
            let addr = Ipv4Addr::from(u32::from(FIRST_CLIENT_ADDR) + n as u32);
            (format!("c{n}"), addr)
        }
    };
    let namespace = NetNamespace::create(format!("{prefix}{suffix}"))?;
    // IPv6 off before the interface exists, so it never gets a link-local address and the
    // stacks under test speak IPv4 only, as the study's testbed did. A kernel without IPv6
    // has nothing to switch off.
    namespace.set_sysctl("net/ipv6/conf/all/disable_ipv6", "1")?;
    namespace.set_sysctl("net/ipv6/conf/default/disable_ipv6", "1")?;
    // Cubic, like quinn's default congestion controller, so TCP and QUIC compete with the
    // same algorithm. The namespace default (per namespace since Linux 4.15) may only be set
    // to an algorithm the root namespace allows (`tcp_allowed_congestion_control`), which we
    // do not change; the route below pins cubic either way.
    match namespace.set_sysctl("net/ipv4/tcp_congestion_control", "cubic") {
        Ok(_) => {}
        Err(LabError::Io { source, .. })
            if source.raw_os_error() == Some(nix::errno::Errno::EPERM as i32) => {}
        Err(e) => return Err(e),
    }
    let tun = TunDevice::create_in(&namespace, INTERFACE, mtu)?;
    namespace.ip(&[
        "addr",
        "add",
        &format!("{addr}/{PREFIX_LEN}"),
        "dev",
        tun.name(),
        "noprefixroute",
    ])?;
    namespace.ip(&["link", "set", tun.name(), "up"])?;
    // The lab's one route, with cubic as its congestion control: the kernel uses a route's
    // `congctl` for every TCP connection over it, whatever the namespace default.
    namespace.ip(&[
        "route",
        "add",
        &format!("{}/{PREFIX_LEN}", LAB_NETWORK),
        "dev",
        tun.name(),
        "src",
        &addr.to_string(),
        "congctl",
        "cubic",
    ])?;
    Ok((
        Host {
            role,
            addr,
            namespace,
        },
        tun,
    ))
}

#[derive(Debug)]
struct RelayHandle {
    /// Dropping it tells the relay to stop.
    stop: UnixStream,
    thread: JoinHandle<Result<RunStats, LabError>>,
}

impl RelayHandle {
    fn stop(self) -> Result<RunStats, LabError> {
        drop(self.stop);
        match self.thread.join() {
            Ok(result) => result,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panicked".to_owned());
                Err(LabError::Relay(message))
            }
        }
    }
}

/// A running lab. Dropping it stops the relay and deletes the namespaces; [`finish`] does the
/// same and returns the run's statistics.
///
/// [`finish`]: LabGuard::finish
#[derive(Debug)]
pub struct LabGuard {
    hosts: Vec<Host>,
    relay: Option<RelayHandle>,
}

impl LabGuard {
    /// The broker's host.
    pub fn broker(&self) -> &Host {
        // `start_with` always builds the broker first, and `hosts` is only emptied by
        // `finish`, which consumes the guard.
        &self.hosts[0]
    }

    /// Client host `n` (from 0).
    pub fn client(&self, n: usize) -> Option<&Host> {
        self.hosts.get(n + 1)
    }

    /// Host `i` where 0 is the broker and `i >= 1` is client `i - 1`.
    pub fn host(&self, i: usize) -> Option<&Host> {
        self.hosts.get(i)
    }

    /// All hosts, broker first.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Stops the relay, deletes the namespaces and returns what the relay counted.
    pub fn finish(mut self) -> Result<RunStats, LabError> {
        let stats = match self.relay.take() {
            Some(relay) => relay.stop(),
            None => Err(LabError::Relay("already stopped".to_owned())),
        };
        let mut deleted = Ok(());
        for host in std::mem::take(&mut self.hosts) {
            if let Err(e) = host.namespace.delete() {
                deleted = Err(e);
            }
        }
        let stats = stats?;
        deleted.map(|()| stats)
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        // The relay first: it holds the TUN devices, which keep their namespaces alive.
        if let Some(relay) = self.relay.take() {
            let _ = relay.stop();
        }
        // Then `hosts` drops, deleting each namespace.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_clients_is_refused_before_touching_the_system() {
        let topology = Topology::star(
            HostLink::default(),
            vec![HostLink::default(); MAX_CLIENTS + 1],
        );
        match Lab::start(topology) {
            Err(LabError::Topology(message)) => assert!(message.contains("1001"), "{message}"),
            other => panic!("expected a topology error, got {other:?}"),
        }
    }

    #[test]
    fn client_addresses_stay_in_the_lab_network() {
        let last = Ipv4Addr::from(u32::from(FIRST_CLIENT_ADDR) + MAX_CLIENTS as u32 - 1);
        let mask = u32::MAX << (32 - u32::from(PREFIX_LEN));
        assert_eq!(u32::from(last) & mask, u32::from(LAB_NETWORK));
        assert_eq!(u32::from(BROKER_ADDR) & mask, u32::from(LAB_NETWORK));
        assert_ne!(last, BROKER_ADDR);
    }
}
