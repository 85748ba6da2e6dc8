//! The broker's answer to a CONNECT: whether it is admitted (connection limit, shutdown,
//! client identifier rules per version, will limits before authentication; will
//! authorization and the session limit after it), the client identifier and session expiry
//! it gets, its will, and the CONNACK properties that announce the broker's limits (3.1.3,
//! 3.2.2.3). Pure policy; the connection driver runs authentication and applies the verdict.

use mquictt_protocol::PropertySet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mquictt_protocol::{Connect, MqttString, Properties, ProtocolVersion, QoS, ReasonCode};

use crate::auth::{ConnectRequest, Principal};
use crate::broker::{PeerInfo, Shared};
use crate::config::BrokerConfig;
use crate::limits::topic_within_limits;
use crate::message::{ClientId, Message};
use crate::metrics::Metrics;
use crate::session::WillSpec;

/// The longest client identifier MQTT 3.1 allows.
const V3_1_MAX_CLIENT_ID: usize = 23;

/// A CONNECT that passed the checks made before authentication.
#[derive(Debug)]
pub(crate) struct Checked {
    client_id: String,
    assigned: bool,
}

/// An accepted CONNECT.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) client_id: ClientId,
    pub(crate) expiry: Duration,
    pub(crate) will: Option<WillSpec>,
    pub(crate) connack_properties: Properties,
}

/// The checks that need no credentials: shutdown, the connection limit (`has_slot` is false
/// when `max_connections` is reached), client identifier rules per version and will limits.
/// A refusal carries the CONNACK reason code (which the codec maps to a 3.1.1 return code).
pub(crate) fn check(
    shared: &Shared,
    connect: &Connect,
    has_slot: bool,
) -> Result<Checked, ReasonCode> {
    let config = &shared.config;
    if *shared.shutting_down.borrow() {
        return Err(ReasonCode::ServerUnavailable);
    }
    if !has_slot {
        return Err(ReasonCode::ServerBusy);
    }
    let (client_id, assigned) = client_id(connect, config)?;
    if let Some(will) = &connect.will {
        // "If the Server receives a CONNECT packet containing a Will QoS that exceeds its
        // capabilities, it MUST reject the connection" [MQTT-3.2.2-12]; likewise a retained
        // will when retain is not available [MQTT-3.2.2-13].
        if will.qos > config.maximum_qos {
            return Err(ReasonCode::QoSNotSupported);
        }
        if will.retain && !config.retain_available {
            return Err(ReasonCode::RetainNotSupported);
        }
        // "0x90 Topic Name invalid: The Will Topic Name is not malformed, but is not accepted
        // by this Server" (3.2.2.2).
        if !topic_within_limits(will.topic.as_str(), config) {
            Metrics::add(&shared.metrics.limit_refusals, 1);
            return Err(ReasonCode::TopicNameInvalid);
        }
    }
    Ok(Checked {
        client_id,
        assigned,
    })
}

/// The credentials the authenticator sees for `connect`.
pub(crate) fn request<'a>(connect: &'a Connect, peer: &'a PeerInfo) -> ConnectRequest<'a> {
    ConnectRequest {
        client_id: connect.client_id.as_str(),
        username: connect.username.as_deref(),
        password: connect.password.as_ref(),
        peer: peer.remote_addr,
        certificate_username: peer.certificate_username.as_deref(),
    }
}

/// Decides on an authenticated CONNECT: the will must be authorized for `username`, the
/// session limit respected; returns the session expiry, will and CONNACK properties.
pub(crate) fn admit(
    shared: &Shared,
    connect: &Connect,
    checked: Checked,
    username: Option<&str>,
) -> Result<Admitted, ReasonCode> {
    let config = &shared.config;
    let Checked {
        client_id,
        assigned,
    } = checked;
    let principal = Principal {
        client_id: &client_id,
        username,
    };
    if let Some(will) = &connect.will {
        if !shared
            .authenticator
            .authorize_publish(&principal, &will.topic)
        {
            Metrics::add(&shared.metrics.authorization_denials, 1);
            return Err(ReasonCode::NotAuthorized);
        }
    }
    let client_id: ClientId = ClientId::from(client_id.as_str());
    {
        let router = shared.router();
        if !router.has_session(&client_id) && router.session_count() >= config.max_sessions {
            Metrics::add(&shared.metrics.limit_refusals, 1);
            return Err(ReasonCode::QuotaExceeded);
        }
    }
    let requested_expiry = requested_expiry(connect, config);
    let expiry = capped_expiry(requested_expiry, config);
    let will = connect
        .will
        .as_ref()
        .map(|will| will_spec(will, &client_id));
    let mut properties = connack_properties(config);
    if assigned {
        properties.assigned_client_identifier = MqttString::new(client_id.as_ref()).ok();
    }
    // The client must learn a session expiry lower than it asked for (3.2.2.3.2).
    if u64::from(requested_expiry) > expiry.as_secs() {
        properties.session_expiry_interval = u32::try_from(expiry.as_secs()).ok();
    }
    Ok(Admitted {
        client_id,
        expiry,
        will,
        connack_properties: properties,
    })
}

/// The client identifier, and whether the broker assigned it.
fn client_id(connect: &Connect, config: &BrokerConfig) -> Result<(String, bool), ReasonCode> {
    let id = connect.client_id.as_str();
    if id.is_empty() {
        return match connect.protocol {
            // MQTT 3.1 requires 1 to 23 characters.
            ProtocolVersion::V3_1 => Err(ReasonCode::ClientIdentifierNotValid),
            // "If the Client supplies a zero-byte ClientId with CleanSession set to 0, the
            // Server MUST respond to the CONNECT Packet with a CONNACK return code 0x02
            // (Identifier rejected)" [MQTT-3.1.3-8]; with CleanSession 1 it assigns one
            // [MQTT-3.1.3-6].
            ProtocolVersion::V3_1_1 if !connect.clean_start => {
                Err(ReasonCode::ClientIdentifierNotValid)
            }
            // 5.0: "the Server MUST ... assign a unique ClientID" [MQTT-3.1.3-6] and return it
            // as Assigned Client Identifier [MQTT-3.2.2-16].
            _ => Ok((assign_client_id(), true)),
        };
    }
    let too_long = match connect.protocol {
        ProtocolVersion::V3_1 => id.chars().count() > V3_1_MAX_CLIENT_ID,
        _ => id.len() > config.max_client_id_len,
    };
    if too_long {
        return Err(ReasonCode::ClientIdentifierNotValid);
    }
    Ok((id.to_owned(), false))
}

/// A client identifier unique to this broker process and, through the start time, across
/// restarts.
fn assign_client_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let sequence = NEXT.fetch_add(1, Ordering::Relaxed);
    let epoch_nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    format!("auto-{epoch_nanos:x}-{sequence:x}")
}

/// The session expiry the client asks for, in seconds: the CONNECT property in 5.0 (absent
/// means 0, 3.1.2.11.2); before 5.0, 0 for Clean Session 1 and "as long as allowed" for 0.
fn requested_expiry(connect: &Connect, config: &BrokerConfig) -> u32 {
    if connect.protocol.is_v5() {
        connect.properties.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        u32::try_from(config.max_session_expiry.as_secs()).unwrap_or(u32::MAX)
    }
}

/// A session expiry in seconds (0xFFFFFFFF meaning "never", 3.1.2.11.2) capped by the broker.
pub(crate) fn capped_expiry(secs: u32, config: &BrokerConfig) -> Duration {
    Duration::from_secs(u64::from(secs)).min(config.max_session_expiry)
}

fn will_spec(will: &mquictt_protocol::Will, client_id: &ClientId) -> WillSpec {
    let mut properties = will.properties.clone();
    let delay = properties.will_delay_interval.take().unwrap_or(0);
    let expiry = properties.message_expiry_interval.take();
    WillSpec {
        message: Message {
            topic: will.topic.clone(),
            payload: will.payload.clone(),
            qos: will.qos,
            retain: will.retain,
            properties,
            publisher: Some(client_id.clone()),
            expires_at: None,
        },
        delay: Duration::from_secs(u64::from(delay)),
        expiry: expiry.map(|secs| Duration::from_secs(u64::from(secs))),
    }
}

/// CONNACK properties announcing the broker's limits; absent ones mean the spec default.
fn connack_properties(config: &BrokerConfig) -> Properties {
    let absent_if = |available: bool| (!available).then_some(false);
    Properties::from(PropertySet {
        receive_maximum: (config.receive_maximum != u16::MAX).then_some(config.receive_maximum),
        topic_alias_maximum: (config.topic_alias_maximum > 0).then_some(config.topic_alias_maximum),
        maximum_packet_size: Some(config.max_packet_size),
        maximum_qos: match config.maximum_qos {
            QoS::ExactlyOnce => None,
            other => Some(other as u8),
        },
        retain_available: absent_if(config.retain_available),
        wildcard_subscription_available: absent_if(config.wildcard_subscription_available),
        subscription_identifier_available: absent_if(config.subscription_identifiers_available),
        shared_subscription_available: absent_if(config.shared_subscription_available),
        server_keep_alive: config
            .server_keep_alive
            .map(|k| u16::try_from(k.as_secs()).unwrap_or(u16::MAX)),
        ..PropertySet::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(version: ProtocolVersion, id: &str, clean: bool) -> Connect {
        Connect {
            protocol: version,
            clean_start: clean,
            keep_alive: 30,
            client_id: MqttString::new(id).unwrap(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }
    }

    #[test]
    fn mqtt_3_1_3_8_empty_id_without_clean_session_is_rejected_in_3_1_1() {
        let config = BrokerConfig::default();
        assert_eq!(
            client_id(&connect(ProtocolVersion::V3_1_1, "", false), &config),
            Err(ReasonCode::ClientIdentifierNotValid)
        );
        let (id, assigned) =
            client_id(&connect(ProtocolVersion::V3_1_1, "", true), &config).unwrap();
        assert!(assigned && !id.is_empty());
    }

    #[test]
    fn mqtt_3_1_3_6_empty_id_is_assigned_in_5_0_and_ids_are_unique() {
        let config = BrokerConfig::default();
        let (a, assigned) = client_id(&connect(ProtocolVersion::V5, "", false), &config).unwrap();
        let (b, _) = client_id(&connect(ProtocolVersion::V5, "", false), &config).unwrap();
        assert!(assigned);
        assert_ne!(a, b);
    }

    #[test]
    fn mqtt_3_1_limits_client_ids_to_23_characters() {
        let config = BrokerConfig::default();
        let long = "x".repeat(24);
        assert_eq!(
            client_id(&connect(ProtocolVersion::V3_1, &long, true), &config),
            Err(ReasonCode::ClientIdentifierNotValid)
        );
        assert!(client_id(&connect(ProtocolVersion::V3_1_1, &long, true), &config).is_ok());
        assert_eq!(
            client_id(&connect(ProtocolVersion::V3_1, "", true), &config),
            Err(ReasonCode::ClientIdentifierNotValid)
        );
    }

    #[test]
    fn session_expiry_follows_version_rules_and_the_cap() {
        let config = BrokerConfig {
            max_session_expiry: Duration::from_secs(100),
            ..BrokerConfig::default()
        };
        let mut v5 = connect(ProtocolVersion::V5, "c", false);
        assert_eq!(requested_expiry(&v5, &config), 0, "absent means 0 in 5.0");
        v5.properties.session_expiry_interval = Some(u32::MAX);
        assert_eq!(
            capped_expiry(requested_expiry(&v5, &config), &config),
            Duration::from_secs(100)
        );
        let v3_persistent = connect(ProtocolVersion::V3_1_1, "c", false);
        assert_eq!(requested_expiry(&v3_persistent, &config), 100);
        let v3_clean = connect(ProtocolVersion::V3_1_1, "c", true);
        assert_eq!(requested_expiry(&v3_clean, &config), 0);
    }

    #[test]
    fn connack_announces_only_what_differs_from_the_defaults() {
        let config = BrokerConfig::default();
        let props = connack_properties(&config);
        assert_eq!(props.receive_maximum, Some(config.receive_maximum));
        assert_eq!(props.maximum_packet_size, Some(config.max_packet_size));
        assert_eq!(props.maximum_qos, None);
        assert_eq!(props.retain_available, None);
        let limited = BrokerConfig {
            maximum_qos: QoS::AtLeastOnce,
            retain_available: false,
            ..BrokerConfig::default()
        };
        let props = connack_properties(&limited);
        assert_eq!(props.maximum_qos, Some(1));
        assert_eq!(props.retain_available, Some(false));
    }
}
