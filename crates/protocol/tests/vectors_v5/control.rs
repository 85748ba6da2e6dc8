//! PINGREQ/PINGRESP, DISCONNECT and AUTH, short forms and every property.

use super::*;

#[test]
fn ping() {
    assert_vector(V5, &[0xC0, 0x00], &Packet::PingReq);
    assert_vector(V5, &[0xD0, 0x00], &Packet::PingResp);
}

#[test]
fn disconnect_short_forms() {
    // "The Reason Code and Property Length can be omitted if the Reason Code is 0x00 (Normal
    // disconnection) and there are no Properties. In this case the DISCONNECT has a Remaining
    // Length of 0" (3.14.2.1).
    assert_vector(
        V5,
        &[0xE0, 0x00],
        &Packet::Disconnect(Disconnect::default()),
    );
    // "If the Remaining Length is less than 2, a value of 0 is used" for the property length.
    assert_vector(
        V5,
        &[0xE0, 0x01, 0x04],
        &Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWillMessage)),
    );
    let normal = Packet::Disconnect(Disconnect::default());
    assert_alternate(V5, &[0xE0, 0x01, 0x00], &normal, &[0xE0, 0x00]);
    assert_alternate(V5, &[0xE0, 0x02, 0x00, 0x00], &normal, &[0xE0, 0x00]);
}

#[test]
fn disconnect_with_every_disconnect_property() {
    #[rustfmt::skip]
    let from_client = [
        0xE0, 0x14, 0x04, // DISCONNECT, remaining length 20, Disconnect with Will Message
        0x12, // property length 18
        0x11, 0x00, 0x00, 0x00, 0x3C, // session expiry interval 60
        0x1F, 0x00, 0x03, b'b', b'y', b'e', // reason string
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
    ];
    let expected = Disconnect {
        reason_code: ReasonCode::DisconnectWithWillMessage,
        properties: Properties::from(PropertySet {
            session_expiry_interval: Some(60),
            reason_string: Some(s("bye")),
            user_properties: vec![(s("k"), s("v"))],
            ..props()
        }),
    };
    assert_vector(V5, &from_client, &Packet::Disconnect(expected));

    let from_server = [
        0xE0, 0x0A, 0x9C, 0x08, 0x1C, 0x00, 0x05, b'o', b't', b'h', b'e', b'r',
    ];
    let expected = Disconnect {
        reason_code: ReasonCode::UseAnotherServer,
        properties: Properties::from(PropertySet {
            server_reference: Some(s("other")),
            ..props()
        }),
    };
    assert_vector(V5, &from_server, &Packet::Disconnect(expected));
}

#[test]
fn auth_short_form_and_exchange() {
    // "The Reason Code and Property Length can be omitted if the Reason Code is 0x00 (Success)
    // and there are no Properties. In this case the AUTH has a Remaining Length of 0."
    let success = Packet::Auth(Auth {
        reason_code: ReasonCode::Success,
        properties: Properties::default(),
    });
    assert_vector(V5, &[0xF0, 0x00], &success);

    #[rustfmt::skip]
    let continue_auth = [
        0xF0, 0x1B, 0x18, // AUTH, remaining length 27, Continue authentication
        0x19, // property length 25
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // authentication method
        0x16, 0x00, 0x03, 0x01, 0x02, 0x03, // authentication data
        0x1F, 0x00, 0x01, b'c', // reason string
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
    ];
    let expected = Packet::Auth(Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        properties: Properties::from(PropertySet {
            authentication_method: Some(s("SCRAM")),
            authentication_data: Some(bin(&[1, 2, 3])),
            reason_string: Some(s("c")),
            user_properties: vec![(s("k"), s("v"))],
            ..props()
        }),
    });
    assert_vector(V5, &continue_auth, &expected);

    let reauthenticate = [
        0xF0, 0x0A, 0x19, 0x08, 0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M',
    ];
    let expected = Packet::Auth(Auth {
        reason_code: ReasonCode::ReAuthenticate,
        properties: Properties::from(PropertySet {
            authentication_method: Some(s("SCRAM")),
            ..props()
        }),
    });
    assert_vector(V5, &reauthenticate, &expected);
}
