//! Authentication and authorization hooks. `Authenticator` decides whether a CONNECT may
//! proceed and whether a client may publish or subscribe to a topic; `AllowAll` says yes to
//! everything. Password files and ACLs implement the same trait elsewhere.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use mquictt_protocol::{ReasonCode, TopicFilter, TopicName};

/// What the authenticator sees of a CONNECT.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRequest<'a> {
    /// The client identifier (possibly assigned by the broker).
    pub client_id: &'a str,
    /// User name, if given.
    pub username: Option<&'a str>,
    /// Password, if given.
    pub password: Option<&'a Bytes>,
    /// The peer's address, when the transport has one.
    pub peer: Option<SocketAddr>,
}

/// The verdict on a CONNECT: accept, or refuse with a CONNACK reason code such as 0x86 Bad
/// User Name or Password or 0x87 Not authorized.
pub type AuthResult = Result<(), ReasonCode>;

/// Decides who may connect and what they may do.
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// Whether this CONNECT may proceed.
    fn authenticate(&self, request: &ConnectRequest<'_>) -> AuthResult;

    /// Whether `client_id` may publish to `topic`. A refusal is answered with PUBACK/PUBREC
    /// 0x87 Not authorized (5.0) or by dropping the message (3.1.1).
    fn authorize_publish(&self, client_id: &str, topic: &TopicName) -> bool {
        let _ = (client_id, topic);
        true
    }

    /// Whether `client_id` may subscribe to `filter`; a refusal is SUBACK 0x87 (5.0) or 0x80.
    fn authorize_subscribe(&self, client_id: &str, filter: &TopicFilter) -> bool {
        let _ = (client_id, filter);
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
            match request.username {
                Some("alice") => Ok(()),
                _ => Err(ReasonCode::BadUserNameOrPassword),
            }
        }
    }

    fn request(username: Option<&str>) -> ConnectRequest<'_> {
        ConnectRequest {
            client_id: "c",
            username,
            password: None,
            peer: None,
        }
    }

    #[test]
    fn allow_all_allows_everything() {
        let auth = AllowAll;
        assert_eq!(auth.authenticate(&request(None)), Ok(()));
        assert!(auth.authorize_publish("c", &TopicName::new("a").unwrap()));
        assert!(auth.authorize_subscribe("c", &TopicFilter::new("#").unwrap()));
    }

    #[test]
    fn custom_authenticator_keeps_default_authorization() {
        let auth = OnlyAlice;
        assert_eq!(auth.authenticate(&request(Some("alice"))), Ok(()));
        assert_eq!(
            auth.authenticate(&request(Some("bob"))),
            Err(ReasonCode::BadUserNameOrPassword)
        );
        assert!(auth.authorize_publish("c", &TopicName::new("a").unwrap()));
    }
}
