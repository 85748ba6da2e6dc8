//! How the driver authenticates a client: a plain CONNECT's credentials are checked on the
//! blocking pool (password hashes are slow on purpose) with a bounded number of checks at
//! once; a 5.0 CONNECT naming an Authentication Method runs that method's exchange over AUTH
//! packets (4.12), and a connected client may re-authenticate the same way (4.12.1). Every
//! step is bounded by the connect deadline; the connection is admitted by `events.rs` once the
//! client is known.

use std::future::Future;

use bytes::Bytes;
use mquictt_protocol::{
    Auth, Connect, Disconnect, MqttString, Properties, PropertySet, ReasonCode,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Driver;
use crate::auth::{AuthExchange, AuthStep, ConnectRequest};
use crate::connect::{self, Checked};
use crate::metrics::Metrics;

/// An enhanced authentication exchange waiting for the client's next AUTH.
#[derive(Debug)]
pub(super) struct PendingAuth {
    method: String,
    exchange: Box<dyn AuthExchange>,
    /// The CONNECT being authenticated, or `None` for re-authentication of a connected client.
    connecting: Option<(Connect, Checked)>,
}

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// The first checks on a CONNECT, then authentication: plain or enhanced.
    pub(super) async fn on_connect(&mut self, connect: Connect) {
        let checked = match connect::check(&self.shared, &connect, self.slot.is_some()) {
            Ok(checked) => checked,
            Err(reason) => return self.refuse_connect(reason, &connect),
        };
        if let Some(method) = &connect.properties.authentication_method {
            let method = method.as_str().to_owned();
            // "If the Server does not support the Authentication Method supplied by the
            // Client, it MAY send a CONNACK with a Reason Code of 0x8C (Bad authentication
            // method)" (3.1.2.11.9).
            let Some(mut exchange) = self.shared.authenticator.start_exchange(&method) else {
                Metrics::add(&self.shared.metrics.authentication_failures, 1);
                return self.refuse_connect(ReasonCode::BadAuthenticationMethod, &connect);
            };
            let step = exchange.step(connect.properties.authentication_data.as_ref());
            self.auth = Some(Box::new(PendingAuth {
                method,
                exchange,
                connecting: Some((connect, checked)),
            }));
            return self.on_auth_step(step).await;
        }
        match self.check_credentials(&connect).await {
            Ok(()) => {
                let username = connect::request(&connect, &self.peer)
                    .effective_username()
                    .map(str::to_owned);
                self.complete_connect(connect, checked, username, None)
                    .await;
            }
            Err(reason) => {
                Metrics::add(&self.shared.metrics.authentication_failures, 1);
                self.refuse_connect(reason, &connect);
            }
        }
    }

    /// Runs the authenticator on the blocking pool, at most `password_checks` at once, and
    /// no later than the connect deadline. The future owns what it needs, so the driver is
    /// not borrowed while the check runs.
    fn check_credentials(
        &self,
        connect: &Connect,
    ) -> impl Future<Output = Result<(), ReasonCode>> + Send + 'static {
        let shared = self.shared.clone();
        let metrics = self.shared.metrics.clone();
        let deadline = self.connect_deadline;
        let client_id = connect.client_id.as_str().to_owned();
        let username = connect.username.as_deref().map(str::to_owned);
        let password = connect.password.clone();
        let peer = self.peer.remote_addr;
        let certificate_username = self.peer.certificate_username.clone();
        let check = async move {
            let Ok(_permit) = shared.password_checks.clone().acquire_owned().await else {
                return Err(ReasonCode::ServerUnavailable);
            };
            let authenticator = shared.authenticator.clone();
            tokio::task::spawn_blocking(move || {
                authenticator.authenticate(&ConnectRequest {
                    client_id: &client_id,
                    username: username.as_deref(),
                    password: password.as_ref(),
                    peer,
                    certificate_username: certificate_username.as_deref(),
                })
            })
            .await
            .unwrap_or(Err(ReasonCode::UnspecifiedError))
        };
        async move {
            tokio::time::timeout_at(deadline.into(), check)
                .await
                .unwrap_or_else(|_| {
                    Metrics::add(&metrics.connect_timeouts, 1);
                    Err(ReasonCode::ServerBusy)
                })
        }
    }

    /// An AUTH from the client: the next step of the exchange in progress, or the start of a
    /// re-authentication.
    pub(super) async fn on_auth(&mut self, auth: Auth) {
        let method = auth
            .properties
            .authentication_method
            .as_ref()
            .map(MqttString::as_str);
        if let Some(pending) = &mut self.auth {
            // "If the Client ... sends an AUTH packet ... it MUST set the Reason Code to 0x18
            // (Continue authentication)" during an exchange [MQTT-4.12.0-3], with the same
            // Authentication Method [MQTT-4.12.0-5].
            if auth.reason_code != ReasonCode::ContinueAuthentication
                || method != Some(pending.method.as_str())
            {
                return self.fail_auth(ReasonCode::ProtocolError);
            }
            let step = pending
                .exchange
                .step(auth.properties.authentication_data.as_ref());
            return self.on_auth_step(step).await;
        }
        let Some(attached) = &self.attached else {
            return self.fail_auth(ReasonCode::ProtocolError);
        };
        // "If the Client supplied an Authentication Method in the CONNECT packet it can
        // initiate a re-authentication at any time after receiving a CONNACK. It does this by
        // sending an AUTH packet with a Reason Code of 0x19 (Re-authentication). The Client
        // MUST set the Authentication Method to the same value as the Authentication Method
        // originally used to authenticate the Network Connection" [MQTT-4.12.1-1].
        let same_method =
            attached.auth_method.is_some() && attached.auth_method.as_deref() == method;
        if auth.reason_code != ReasonCode::ReAuthenticate || !same_method {
            return self.fail_auth(ReasonCode::ProtocolError);
        }
        let method = attached
            .auth_method
            .as_deref()
            .unwrap_or_default()
            .to_owned();
        let Some(mut exchange) = self.shared.authenticator.start_exchange(&method) else {
            return self.fail_auth(ReasonCode::NotAuthorized);
        };
        let step = exchange.step(auth.properties.authentication_data.as_ref());
        self.auth = Some(Box::new(PendingAuth {
            method,
            exchange,
            connecting: None,
        }));
        self.on_auth_step(step).await;
    }

    async fn on_auth_step(&mut self, step: AuthStep) {
        match step {
            AuthStep::Continue(data) => {
                let method = self
                    .auth
                    .as_ref()
                    .map(|p| p.method.clone())
                    .unwrap_or_default();
                // "If the Server requires additional information to complete the
                // authentication, it can send an AUTH packet to the Client ... with a Reason
                // Code of 0x18 (Continue authentication)" [MQTT-4.12.0-2].
                let _ = self.session.auth(auth_packet(
                    ReasonCode::ContinueAuthentication,
                    &method,
                    Some(data),
                ));
            }
            AuthStep::Success { username, data } => {
                let Some(pending) = self.auth.take() else {
                    return;
                };
                match pending.connecting {
                    Some((connect, checked)) => {
                        self.complete_connect(connect, checked, Some(username), data)
                            .await;
                    }
                    None => self.reauthenticated(&pending.method, username, data),
                }
            }
            AuthStep::Failure(reason) => self.fail_auth(reason),
        }
    }

    /// A successful re-authentication: AUTH 0x00 with the final data. The client must stay
    /// the same user; becoming another would bypass the ACL decisions already made.
    fn reauthenticated(&mut self, method: &str, username: String, data: Option<Bytes>) {
        let same_user = self
            .attached
            .as_ref()
            .is_some_and(|a| a.username.as_deref() == Some(username.as_str()));
        if !same_user {
            return self.fail_auth(ReasonCode::NotAuthorized);
        }
        let _ = self
            .session
            .auth(auth_packet(ReasonCode::Success, method, data));
    }

    /// Ends a failed exchange: CONNACK with `reason` while connecting; DISCONNECT after a
    /// failed re-authentication [MQTT-4.12.1-2] or a protocol error.
    fn fail_auth(&mut self, reason: ReasonCode) {
        let pending = self.auth.take();
        if reason != ReasonCode::ProtocolError {
            Metrics::add(&self.shared.metrics.authentication_failures, 1);
        }
        if let Some((connect, _)) = pending.and_then(|p| p.connecting) {
            return self.refuse_connect(reason, &connect);
        }
        let _ = self.session.disconnect(Disconnect::new(reason));
    }
}

fn auth_packet(reason_code: ReasonCode, method: &str, data: Option<Bytes>) -> Auth {
    Auth {
        reason_code,
        properties: Properties::from(PropertySet {
            authentication_method: MqttString::new(method).ok(),
            authentication_data: data,
            ..PropertySet::default()
        }),
    }
}
