//! The TUN device of one host: created by a thread that has entered the host's namespace, so
//! the interface lives there from the start, while its file descriptor stays with the relay
//! in the root namespace. The `TUNSETIFF` ioctl is left to the `tun-rs` crate, so this crate
//! needs no unsafe code. This file owns the device's creation and raw packet IO only;
//! addresses and routes are set with iproute2 by the caller.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use tun_rs::{DeviceBuilder, SyncDevice};

use crate::error::LabError;
use crate::netns::NetNamespace;

/// A layer-3 TUN device without packet-information header: each read returns one IP packet.
pub(crate) struct TunDevice {
    device: SyncDevice,
    name: String,
}

impl TunDevice {
    /// Creates TUN interface `name` inside `namespace`, down and without addresses, its file
    /// descriptor in non-blocking mode.
    pub(crate) fn create_in(
        namespace: &NetNamespace,
        name: &str,
        mtu: u16,
    ) -> Result<TunDevice, LabError> {
        let interface = name.to_owned();
        let device = namespace
            .run(move || {
                // No offloads: the kernel hands over wire-sized packets, never GSO batches,
                // so each packet meets the link model as it would meet a real link.
                DeviceBuilder::new()
                    .name(interface)
                    .mtu(mtu)
                    .offload(false)
                    .packet_information(false)
                    .inherit_enable_state()
                    .build_sync()
            })?
            .map_err(|e| {
                LabError::io(
                    format!("cannot create TUN {name} in {}", namespace.name()),
                    e,
                )
            })?;
        device
            .set_nonblocking(true)
            .map_err(|e| LabError::io(format!("TUN {name}: cannot set non-blocking"), e))?;
        Ok(TunDevice {
            device,
            name: name.to_owned(),
        })
    }

    /// The interface's name inside its namespace.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Reads one packet; `WouldBlock` when none is waiting.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.device.recv(buf)
    }

    /// Writes one packet into the host's network stack.
    pub(crate) fn send(&self, packet: &[u8]) -> io::Result<usize> {
        self.device.send(packet)
    }
}

impl std::fmt::Debug for TunDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunDevice")
            .field("name", &self.name)
            .field("fd", &self.device.as_fd())
            .finish()
    }
}

impl AsFd for TunDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.device.as_fd()
    }
}
