//! The server machine at rest. A broker may hold a connection that has nothing to do for hours
//! (a sensor that publishes once an hour, a device waiting for commands), and for all that time
//! it keeps the connection's machine. Most of a machine is then queues and maps with nothing in
//! them: of its 624 bytes, 184 are settings, counters and deadlines.
//! [`IdleServerSession`] keeps those alone when every queue and map is empty, and the whole
//! machine otherwise (an exchange not yet acknowledged, a topic alias in use, a request
//! awaiting its answer). Turned back into a machine, it carries on exactly where it stopped.

use std::sync::Arc;
use std::time::Instant;

use crate::types::QoS;

use super::super::config::ServerConfig;
use super::super::delivery::{Delivery, IdleDelivery, Limits};
use super::super::keep_alive::ServerKeepAlive;
use super::handshake::ConnectTerms;
use super::{next_deadline, ServerSession, ServerState};

/// A server machine put aside while its connection is idle; see the documentation of the
/// `idle` module.
#[derive(Debug)]
pub struct IdleServerSession(Form);

// The compact form is the common one and stays inline: boxing it would add an allocation
// to what it saves.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Form {
    /// Every queue and map was empty: what the machine is made of besides them.
    Compact(Compact),
    /// Something was under way; kept whole, out of line, so the compact form sets the size.
    Whole(Box<ServerSession>),
}

/// A machine's fields other than its (empty) queues and maps.
#[derive(Debug)]
struct Compact {
    config: Arc<ServerConfig>,
    state: ServerState,
    delivery: IdleDelivery,
    connect: Option<ConnectTerms>,
    keep_alive: Option<ServerKeepAlive>,
    maximum_qos: QoS,
    retain_available: bool,
    limits: Option<Limits>,
    data_stream: bool,
}

impl ServerSession {
    /// Puts the machine aside for a connection that will stay idle: compact when nothing is
    /// under way, whole otherwise. [`IdleServerSession::into_session`] gives it back.
    pub fn into_idle(self) -> IdleServerSession {
        let Some(delivery) = self.idle_delivery() else {
            return IdleServerSession(Form::Whole(Box::new(self)));
        };
        // Every field is named, so a field added to the machine must be placed here; those
        // left out are the ones `idle_delivery` found empty.
        let ServerSession {
            config,
            state,
            delivery: _,
            connect,
            keep_alive,
            early: _,
            maximum_qos,
            retain_available,
            pending_subscribes: _,
            pending_unsubscribes: _,
            events: _,
            error: _,
            limits,
            data_stream,
        } = self;
        IdleServerSession(Form::Compact(Compact {
            config,
            state,
            delivery,
            connect,
            keep_alive,
            maximum_qos,
            retain_available,
            limits,
            data_stream,
        }))
    }

    /// The delivery's compact form, if it and every other queue and map are empty and no
    /// error is pending.
    fn idle_delivery(&self) -> Option<IdleDelivery> {
        let vacant = self.early.is_empty()
            && self.pending_subscribes.is_empty()
            && self.pending_unsubscribes.is_empty()
            && self.events.is_empty()
            && self.error.is_none();
        if vacant {
            self.delivery.idle()
        } else {
            None
        }
    }
}

impl IdleServerSession {
    /// The machine again, as it was put aside.
    pub fn into_session(self) -> ServerSession {
        let compact = match self.0 {
            Form::Whole(session) => return *session,
            Form::Compact(compact) => compact,
        };
        let Compact {
            config,
            state,
            delivery,
            connect,
            keep_alive,
            maximum_qos,
            retain_available,
            limits,
            data_stream,
        } = compact;
        ServerSession {
            config,
            state,
            delivery: Delivery::from_idle(delivery),
            connect,
            keep_alive,
            early: Vec::new(),
            maximum_qos,
            retain_available,
            pending_subscribes: Default::default(),
            pending_unsubscribes: Default::default(),
            events: Default::default(),
            error: None,
            limits,
            data_stream,
        }
    }

    /// When the machine must run again even if nothing arrives, as
    /// [`ServerSession::poll_timeout`] would say.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.0 {
            Form::Whole(session) => session.poll_timeout(),
            Form::Compact(compact) => {
                next_deadline(compact.state, &compact.config, compact.keep_alive.as_ref())
            }
        }
    }

    /// Whether only settings, counters and deadlines were kept.
    pub fn is_compact(&self) -> bool {
        matches!(self.0, Form::Compact(_))
    }
}
