//! Parking an idle connection whose transport is not a plain socket: TLS, WebSocket, and the
//! control stream of a QUIC connection. Such a stream cannot leave Tokio's reactor (or quinn's
//! connection) for the lot's readiness set, so it stays as it is and is polled one last time
//! with a waker from the lot (`ParkingLot::waker`): the stream keeps that waker where it keeps
//! any reader's, and input, the end of the stream or the loss of the connection later wakes it,
//! which resumes the connection. A QUIC connection's loop accepting data streams (the work
//! *beside* its control stream's driver) parks the same way, so that a new data stream resumes
//! it too. What is saved is the connection's task: several KiB, most of an idle QUIC
//! connection's own memory outside quinn and rustls.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use mquictt_transport::BoxStream;

use super::park::{IdleDriver, ParkedConnection};
use super::{read, Driver, QuicStreamHooks, RunEnd};
use crate::parking::ParkingLot;

/// Work that lives as long as a connection beside its driver, polled with it and parked with
/// it: a QUIC connection's loop accepting data streams. It ends when the connection does.
pub(crate) type Beside = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A parked stream, what runs beside it, and its QUIC hooks if it is a QUIC control stream.
pub(super) struct ParkedStream {
    pub(super) stream: BoxStream,
    pub(super) beside: Option<Beside>,
    pub(super) quic: Option<Box<QuicStreamHooks>>,
}

/// What became of an attempt to park.
enum Parking {
    /// The connection is in the lot (or resumed in a task of its own already).
    Parked,
    /// Something came meanwhile: the driver goes on.
    Busy(Box<Driver<BoxStream>>, Option<Beside>),
    /// The stream ended or failed while being readied to park.
    Ended(Box<Driver<BoxStream>>),
}

/// Runs a connection's driver (with `beside`, if any) until the connection ends or, idle,
/// parks: the driver then carries on in tasks of the lot's making.
///
/// Not an `async fn`, which would keep its arguments twice in its future (see `drive_tcp`).
#[allow(clippy::manual_async_fn)]
pub(crate) fn drive_stream(
    driver: Driver<BoxStream>,
    beside: Option<Beside>,
) -> impl Future<Output = ()> + Send {
    async move {
        let lot = driver.shared.parking.clone();
        // Boxed once, so that a failed attempt to park hands back a pointer, not the driver.
        let mut driver = Box::new(driver);
        let mut beside = beside;
        loop {
            match run_beside(&mut driver, lot.is_some(), &mut beside).await {
                RunEnd::Closed => break,
                RunEnd::Idle => {
                    let Some(lot) = &lot else {
                        // `run` reports idleness only to a driver that may park.
                        break;
                    };
                    match park(driver, beside, lot) {
                        Parking::Parked => return,
                        Parking::Busy(busy, still) => {
                            driver = busy;
                            beside = still;
                        }
                        Parking::Ended(ended) => {
                            driver = ended;
                            break;
                        }
                    }
                }
            }
        }
        // Dropping `beside` after this stops accepting streams on a connection that the
        // control stream's end has closed.
        Box::pin(driver.finish()).await;
    }
}

/// Runs the driver, polling `beside` alongside it until that ends.
async fn run_beside(
    driver: &mut Driver<BoxStream>,
    may_park: bool,
    beside: &mut Option<Beside>,
) -> RunEnd {
    let mut run = pin!(driver.run(may_park));
    loop {
        let Some(work) = beside.as_mut() else {
            return run.await;
        };
        tokio::select! {
            end = &mut run => return end,
            // The QUIC connection ended or refuses further streams: the control stream's
            // driver sees that on its own.
            () = work => *beside = None,
        }
    }
}

/// Polls the stream and `beside` once with the lot's waker and, if neither has anything,
/// hands the connection to the lot.
fn park(
    mut driver: Box<Driver<BoxStream>>,
    mut beside: Option<Beside>,
    lot: &Arc<ParkingLot>,
) -> Parking {
    if driver.attached.is_none() {
        // `is_parkable` requires a session; nothing else reaches here.
        return Parking::Busy(driver, beside);
    }
    let token = lot.reserve();
    let waker = lot.waker(token);
    let mut cx = Context::from_waker(&waker);
    let Driver {
        stream,
        read_buf,
        shared,
        ..
    } = &mut *driver;
    match read::poll_read_into(stream, &mut cx, read_buf) {
        Poll::Pending => {}
        Poll::Ready(Ok(n)) if n > 0 => {
            shared.metrics.bytes_received.add(n as u64);
            lot.release(token);
            driver.decode_input();
            return Parking::Busy(driver, beside);
        }
        Poll::Ready(_) => {
            lot.release(token);
            return Parking::Ended(driver);
        }
    }
    if let Some(work) = beside.as_mut() {
        if work.as_mut().poll(&mut cx).is_ready() {
            lot.release(token);
            return Parking::Busy(driver, None);
        }
    }
    let Some((state, stream, quic)) = IdleDriver::from_idle(*driver) else {
        lot.release(token);
        return Parking::Parked;
    };
    let parked = ParkedConnection::stream(
        state,
        Box::new(ParkedStream {
            stream,
            beside,
            quic,
        }),
    );
    if let Err(woken) = lot.park(parked, Some(token)) {
        woken.resume(lot.runtime(), false);
    }
    Parking::Parked
}
