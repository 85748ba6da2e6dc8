//! Authentication and authorization hooks. [`Authenticator`] decides whether a CONNECT may
//! proceed, which enhanced authentication methods (MQTT 5 AUTH exchanges) it offers, and
//! whether a client may publish, subscribe or read a retained message; [`AllowAll`] says yes to
//! everything. The files that implement it for real live beside this one: argon2id password
//! files ([`password`]), ACL rules ([`acl`]), SCRAM-SHA-256 ([`scram`]), certificate names
//! ([`certificate`]) and the reloadable combination of them ([`FileAuthenticator`]).

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use mquictt_protocol::{ReasonCode, TopicFilter, TopicName};

pub mod acl;
pub mod certificate;
mod file_auth;
pub mod password;
pub mod scram;

pub use acl::{Acl, AclError};
pub use certificate::{certificate_username, CertificateField};
pub use file_auth::{AuthFileError, FileAuthenticator, FileAuthenticatorConfig};
pub use password::{PasswordEntry, PasswordError, PasswordFile};
pub use scram::{ScramClient, ScramCredentials, SCRAM_SHA_256};

/// What the authenticator sees of a CONNECT.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRequest<'a> {
    /// The client identifier as sent (empty when the broker will assign one).
    pub client_id: &'a str,
    /// User name, if given.
    pub username: Option<&'a str>,
    /// Password, if given.
    pub password: Option<&'a Bytes>,
    /// The peer's address, when the transport has one.
    pub peer: Option<SocketAddr>,
    /// The user name a verified client certificate vouches for (its CN or a SAN, as the
    /// listener is configured); `None` without a certificate or without that mapping.
    pub certificate_username: Option<&'a str>,
}

impl ConnectRequest<'_> {
    /// The user name the client acts as: the certificate's, when one vouches for it (the
    /// CONNECT's user name is then ignored), else the CONNECT's.
    pub fn effective_username(&self) -> Option<&str> {
        self.certificate_username.or(self.username)
    }
}

/// The verdict on a CONNECT: accept, or refuse with a CONNACK reason code such as 0x86 Bad
/// User Name or Password or 0x87 Not authorized.
pub type AuthResult = Result<(), ReasonCode>;

/// Who is asking, for authorization: the client identifier and the user name it
/// authenticated as (none for anonymous clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal<'a> {
    /// The client identifier in use (assigned by the broker if the client sent none).
    pub client_id: &'a str,
    /// The authenticated user name.
    pub username: Option<&'a str>,
}

/// One step of an enhanced authentication exchange (4.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Send AUTH 0x18 Continue authentication with this Authentication Data and wait for the
    /// client's next AUTH.
    Continue(Bytes),
    /// Authenticated as `username`; the final Authentication Data, if any, goes in the CONNACK
    /// (or in AUTH 0x00 after re-authentication).
    Success {
        /// The user name the client proved it is.
        username: String,
        /// Data for the client to check the server (SCRAM's server signature).
        data: Option<Bytes>,
    },
    /// Refused with this reason code (CONNACK, or DISCONNECT after re-authentication).
    Failure(ReasonCode),
}

/// The server side of one enhanced authentication exchange, fed with the Authentication Data
/// of the CONNECT and then of each AUTH packet.
pub trait AuthExchange: Send + Sync + fmt::Debug {
    /// Takes the client's next Authentication Data and says what to answer.
    fn step(&mut self, data: Option<&Bytes>) -> AuthStep;
}

/// Decides who may connect and what they may do.
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// Whether this CONNECT (without an Authentication Method) may proceed.
    fn authenticate(&self, request: &ConnectRequest<'_>) -> AuthResult;

    /// Starts an exchange for the Authentication Method a 5.0 CONNECT (or a re-authentication)
    /// names, or `None` when the method is not offered; the client then gets 0x8C Bad
    /// authentication method.
    fn start_exchange(&self, method: &str) -> Option<Box<dyn AuthExchange>> {
        let _ = method;
        None
    }

    /// Whether `client` may publish to `topic`. A refusal is answered with PUBACK/PUBREC
    /// 0x87 Not authorized (5.0) or by dropping the message (3.1.1).
    fn authorize_publish(&self, client: &Principal<'_>, topic: &TopicName) -> bool {
        let _ = (client, topic);
        true
    }

    /// Whether `client` may subscribe to `filter`; a refusal is SUBACK 0x87 (5.0) or 0x80.
    fn authorize_subscribe(&self, client: &Principal<'_>, filter: &TopicFilter) -> bool {
        let _ = (client, filter);
        true
    }

    /// Whether `client` may receive the retained message on `topic` when it subscribes; a
    /// refused retained message is skipped silently.
    fn authorize_retained(&self, client: &Principal<'_>, topic: &TopicName) -> bool {
        let _ = (client, topic);
        true
    }
}

/// Lets every client connect, publish and subscribe.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authenticator for AllowAll {
    fn authenticate(&self, _request: &ConnectRequest<'_>) -> AuthResult {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct OnlyAlice;

    impl Authenticator for OnlyAlice {
        fn authenticate(&self, request: &ConnectRequest<'_>) -> AuthResult {
            match request.effective_username() {
                Some("alice") => Ok(()),
                _ => Err(ReasonCode::BadUserNameOrPassword),
            }
        }
    }

    fn request<'a>(username: Option<&'a str>, certificate: Option<&'a str>) -> ConnectRequest<'a> {
        ConnectRequest {
            client_id: "c",
            username,
            password: None,
            peer: None,
            certificate_username: certificate,
        }
    }

    const CLIENT: Principal<'static> = Principal {
        client_id: "c",
        username: None,
    };

    #[test]
    fn allow_all_allows_everything() {
        let auth = AllowAll;
        assert_eq!(auth.authenticate(&request(None, None)), Ok(()));
        assert!(auth.authorize_publish(&CLIENT, &TopicName::new("a").unwrap()));
        assert!(auth.authorize_subscribe(&CLIENT, &TopicFilter::new("#").unwrap()));
        assert!(auth.authorize_retained(&CLIENT, &TopicName::new("a").unwrap()));
        assert!(auth.start_exchange(SCRAM_SHA_256).is_none());
    }

    #[test]
    fn custom_authenticator_keeps_default_authorization() {
        let auth = OnlyAlice;
        assert_eq!(auth.authenticate(&request(Some("alice"), None)), Ok(()));
        assert_eq!(
            auth.authenticate(&request(Some("bob"), None)),
            Err(ReasonCode::BadUserNameOrPassword)
        );
        assert!(auth.authorize_publish(&CLIENT, &TopicName::new("a").unwrap()));
    }

    #[test]
    fn a_certificate_name_replaces_the_connect_user_name() {
        let auth = OnlyAlice;
        assert_eq!(
            auth.authenticate(&request(Some("bob"), Some("alice"))),
            Ok(())
        );
        assert_eq!(
            auth.authenticate(&request(Some("alice"), Some("bob"))),
            Err(ReasonCode::BadUserNameOrPassword)
        );
    }
}
