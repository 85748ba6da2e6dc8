//! Admission limits of one connection: the checks made before a byte is read (the source's
//! connection rate, the cap on connections still waiting for CONNECT) and the publish rate
//! applied to every PUBLISH read, with its overload action.

use std::sync::Arc;
use std::time::Instant;

use mquictt_protocol::{Disconnect, ReasonCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::OwnedSemaphorePermit;

use super::Driver;
use crate::broker::{PeerInfo, Shared};
use crate::config::PublishOverload;
use crate::metrics::Metrics;

/// A place among the connections still waiting for CONNECT; frees itself and its gauge.
#[derive(Debug)]
pub(super) struct PendingSlot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        Metrics::decrement(&self.metrics.connections_pending);
    }
}

/// The admission checks made before a byte is read: the source's connection rate and the cap
/// on connections that have not completed CONNECT. `None` closes the connection.
pub(super) fn admit_pending(
    shared: &Arc<Shared>,
    peer: &PeerInfo,
    now: Instant,
) -> Option<PendingSlot> {
    if let Some(addr) = peer.remote_addr {
        let admitted = shared
            .source_rate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(addr.ip(), now);
        if !admitted {
            Metrics::add(&shared.metrics.connection_rate_rejections, 1);
            tracing::debug!(peer = %addr, "connection rate exceeded, closed");
            return None;
        }
    }
    let Ok(permit) = shared.pending_slots.clone().try_acquire_owned() else {
        Metrics::add(&shared.metrics.pending_limit_rejections, 1);
        tracing::debug!(peer = ?peer.remote_addr, "too many connections waiting for CONNECT, closed");
        return None;
    };
    Metrics::add(&shared.metrics.connections_pending, 1);
    Some(PendingSlot {
        _permit: permit,
        metrics: shared.metrics.clone(),
    })
}

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Counts a PUBLISH against the client's rate; false when it must not be processed.
    pub(super) fn within_publish_rate(&mut self, now: Instant) -> bool {
        let Some(bucket) = &mut self.publish_bucket else {
            return true;
        };
        let Some(resume) = bucket.take(now) else {
            return true;
        };
        Metrics::add(&self.shared.metrics.publish_rate_exceeded, 1);
        match self.shared.config.publish_overload {
            PublishOverload::Throttle => {
                // This PUBLISH is processed; nothing more is read until the debt is paid.
                self.throttled_until = Some(resume);
                true
            }
            PublishOverload::Disconnect => {
                tracing::debug!(peer = ?self.peer.remote_addr, "publish rate exceeded, disconnecting");
                let _ = self
                    .session
                    .disconnect(Disconnect::new(ReasonCode::MessageRateTooHigh));
                false
            }
        }
    }
}
