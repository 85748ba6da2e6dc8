//! The MQuicTT lab: a packet-level link emulator on which kernel TCP, TLS over TCP and QUIC
//! all cross the same emulated links, for the experiments of the MQuicTT study.
//!
//! This kernel offers no `netem` qdisc, so links are emulated in user space. Every host is a
//! network namespace with one TUN interface (`mql0`, in 10.200.0.0/16); one relay thread in
//! the root namespace holds all TUN descriptors and forwards IP packets between them across a
//! star, running each packet through the link model of each link direction it crosses:
//!
//! ```text
//!   namespace mqlab-<pid>-<n>-c0          namespace mqlab-<pid>-<n>-broker
//!   +-------------------------+           +-------------------------+
//!   | client 0   10.200.1.1   |           | broker     10.200.0.1   |
//!   |   mql0 (TUN)            |           |   mql0 (TUN)            |
//!   +-----|-------------------+           +-----------------|-------+
//!         | client 0 link                  broker link      |
//!         |  up: loss -> FIFO -> delay     (shared          |
//!         |  down: <- same, own stream      bottleneck)     |
//!   +-----|-----------------------------------------------|-------+
//!   |     +----------------> switch (relay) <---------------+     |
//!   |     +---- client 1 link ... client N-1 link ----------+     |
//!   |                 relay thread, root namespace                |
//!   +-------------------------------------------------------------+
//! ```
//!
//! A packet from client `i` to the broker crosses client `i`'s uplink, then the broker's
//! downlink; the reply crosses the broker's uplink, then client `i`'s downlink. All clients'
//! traffic meets in the broker link's queues, the congested link of the study's dumbbell.
//! Each link direction applies random loss (Bernoulli or Gilbert-Elliott), then a drop-tail
//! FIFO queue served at the link rate, then a fixed one-way delay ([`link`]); loss draws come
//! from one seeded ChaCha stream per link direction, so a seed fixes which packets are lost.
//!
//! Namespaces are fresh for each run, have IPv6 switched off and TCP congestion control pinned
//! to cubic, and are deleted when the [`LabGuard`] is finished or dropped (also while a panic
//! unwinds), on SIGINT/SIGTERM/SIGHUP, and at the next start if a lab process died without
//! cleaning up. Scenario links come from `links.toml` ([`profile`]).
//!
//! ```no_run
//! use mquictt_lab::{HostLink, Lab, LinkProfiles, QueueLimit, Topology};
//!
//! let profiles = LinkProfiles::builtin();
//! let wifi = profiles.scenario("smart_home").and_then(|s| s.link("wifi")).unwrap();
//! let link = HostLink::symmetric(wifi.link_config(QueueLimit::default()));
//! let lab = Lab::start(Topology::star(HostLink::default(), vec![link]).with_seed(7))?;
//! let status = lab.client(0).unwrap().command("ping")
//!     .args(["-c", "3", &lab.broker().addr().to_string()])
//!     .status();
//! let stats = lab.finish()?;
//! println!("{} packets, {} lost at random", stats.packets, stats.random_drops);
//! # Ok::<(), mquictt_lab::LabError>(())
//! ```

// Nothing a peer sends may panic the process: outside tests, a fallible call is handled or
// carries an `allow` with the reason it cannot fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod lab;
pub mod link;
pub mod loss;
mod netns;
pub mod profile;
mod relay;
mod stats;
mod teardown;
mod tun;

pub use error::LabError;
pub use lab::{
    Host, HostLink, HostRole, Lab, LabGuard, LabOptions, Topology, BROKER_ADDR, FIRST_CLIENT_ADDR,
    INTERFACE, LAB_NETWORK, MAX_CLIENTS, PREFIX_LEN,
};
pub use link::{
    Bandwidth, DropReason, LinkConfig, LinkCounters, LinkDirection, QueueLimit, Verdict,
};
pub use loss::{GilbertElliott, LossModel, Probability};
pub use netns::{list_namespaces, InsideThread, NetNamespace};
pub use profile::{LinkProfile, LinkProfiles, ProfileError, Scenario};
pub use stats::{HostLinkStats, LatenessSummary, RunStats};
pub use teardown::teardown_all;
