//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as an MQTT 5 enhanced authentication method: the
//! stored credentials ([`ScramCredentials`], kept in the password file beside the argon2id
//! hash), the server side of one exchange ([`ScramServer`]) and the client side
//! ([`ScramClient`]) for tools and tests. The password never crosses the wire and the broker
//! never stores it; a stolen password file lets nobody log in as a client. Channel binding is
//! not offered (the transport's TLS already authenticates the server), and user names and
//! passwords are used as given, without SASLprep.
//!
//! The MQTT exchange: CONNECT carries the client-first message as Authentication Data, the
//! broker answers AUTH 0x18 with the server-first message, the client sends AUTH 0x18 with the
//! client-final message, and the CONNACK carries the server-final message.

use std::fmt;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use mquictt_protocol::ReasonCode;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

use super::{AuthExchange, AuthStep};

/// The Authentication Method name of SCRAM-SHA-256.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// Iterations for new credentials: the minimum RFC 7677 asks for. Each login costs the client
/// this many HMACs; a sensor must still be able to afford it.
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Random bytes in a nonce (encoded as base64 they never contain a comma).
const NONCE_BYTES: usize = 18;

mod client;

pub use client::ScramClient;

/// Why a SCRAM message or credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message did not follow the RFC 5802 grammar.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The peer's proof or signature did not verify.
    #[error("SCRAM proof does not verify")]
    BadProof,
    /// The stored credential text is not `SCRAM-SHA-256$iterations$salt$storedkey$serverkey`.
    #[error("bad SCRAM credential: {0}")]
    BadCredential(&'static str),
    /// The operating system's random number generator failed.
    #[error("no randomness available")]
    NoRandomness,
}

/// What the broker stores per user for SCRAM: salt, iteration count, StoredKey and ServerKey.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// The per-user salt.
    pub salt: Vec<u8>,
    /// H(ClientKey): checks the client's proof.
    pub stored_key: [u8; 32],
    /// HMAC(SaltedPassword, "Server Key"): signs the server-final message.
    pub server_key: [u8; 32],
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys are password equivalents for impersonating the server: never logged.
        f.debug_struct("ScramCredentials")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredentials {
    /// Derives the credentials of `password` with `salt` and `iterations` (RFC 5802 §3).
    pub fn derive(password: &[u8], salt: &[u8], iterations: NonZeroU32) -> Self {
        let salted = salted_password(password, salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        Self {
            iterations: iterations.get(),
            salt: salt.to_vec(),
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }

    /// New credentials for `password` with a random 16-byte salt and [`DEFAULT_ITERATIONS`].
    pub fn generate(password: &[u8]) -> Result<Self, ScramError> {
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| ScramError::NoRandomness)?;
        let iterations = NonZeroU32::new(DEFAULT_ITERATIONS).unwrap_or(NonZeroU32::MIN);
        Ok(Self::derive(password, &salt, iterations))
    }

    /// Parses `SCRAM-SHA-256$iterations$salt$storedkey$serverkey` (base64 fields).
    pub fn parse(text: &str) -> Result<Self, ScramError> {
        let mut fields = text.split('$');
        if fields.next() != Some(SCRAM_SHA_256) {
            return Err(ScramError::BadCredential("must start with SCRAM-SHA-256$"));
        }
        let iterations = fields
            .next()
            .and_then(|i| i.parse::<u32>().ok())
            .filter(|i| *i > 0)
            .ok_or(ScramError::BadCredential("iteration count"))?;
        let salt = fields
            .next()
            .and_then(|s| BASE64.decode(s).ok())
            .filter(|s| !s.is_empty())
            .ok_or(ScramError::BadCredential("salt"))?;
        let key = |field: Option<&str>, what| {
            field
                .and_then(|k| BASE64.decode(k).ok())
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .ok_or(ScramError::BadCredential(what))
        };
        let stored_key = key(fields.next(), "stored key")?;
        let server_key = key(fields.next(), "server key")?;
        if fields.next().is_some() {
            return Err(ScramError::BadCredential("too many fields"));
        }
        Ok(Self {
            iterations,
            salt,
            stored_key,
            server_key,
        })
    }
}

impl fmt::Display for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCRAM_SHA_256}${}${}${}${}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(self.stored_key),
            BASE64.encode(self.server_key)
        )
    }
}

/// Looks a user's credentials up for the server side.
pub type CredentialLookup = Box<dyn Fn(&str) -> Option<ScramCredentials> + Send + Sync>;

/// The server side of one SCRAM-SHA-256 exchange.
pub struct ScramServer {
    lookup: CredentialLookup,
    /// Keys the made-up salt of unknown users, so that probing user names gives a stable,
    /// plausible answer instead of an early refusal.
    unknown_user_key: [u8; 32],
    state: ServerState,
}

enum ServerState {
    AwaitingClientFirst,
    AwaitingClientFinal {
        username: String,
        /// `None` for an unknown user: the exchange runs to the end and then fails.
        credentials: Option<ScramCredentials>,
        gs2_header: String,
        nonce: String,
        /// client-first-message-bare "," server-first-message
        auth_message_start: String,
    },
    Done,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            ServerState::AwaitingClientFirst => "awaiting client-first",
            ServerState::AwaitingClientFinal { .. } => "awaiting client-final",
            ServerState::Done => "done",
        };
        f.debug_struct("ScramServer")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl ScramServer {
    /// An exchange that finds credentials with `lookup`; `unknown_user_key` must be a secret
    /// of this broker (it derives fake salts for unknown users).
    pub fn new(lookup: CredentialLookup, unknown_user_key: [u8; 32]) -> Self {
        Self {
            lookup,
            unknown_user_key,
            state: ServerState::AwaitingClientFirst,
        }
    }

    fn client_first(&mut self, message: &[u8]) -> Result<Bytes, ScramError> {
        let message = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("UTF-8"))?;
        let (gs2_header, bare) = split_gs2_header(message)?;
        let mut attributes = bare.split(',');
        let username = attributes
            .next()
            .and_then(|a| a.strip_prefix("n="))
            .ok_or(ScramError::Malformed("n= expected"))
            .and_then(decode_saslname)?;
        let client_nonce = attributes
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .filter(|n| is_printable(n))
            .ok_or(ScramError::Malformed("r= expected"))?;
        let mut server_nonce = [0u8; NONCE_BYTES];
        SystemRandom::new()
            .fill(&mut server_nonce)
            .map_err(|_| ScramError::NoRandomness)?;
        let nonce = format!("{client_nonce}{}", BASE64.encode(server_nonce));
        let credentials = (self.lookup)(&username);
        let (salt, iterations) = match &credentials {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (
                hmac_sha256(&self.unknown_user_key, username.as_bytes())
                    .get(..16)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default(),
                DEFAULT_ITERATIONS,
            ),
        };
        let server_first = format!("r={nonce},s={},i={iterations}", BASE64.encode(&salt));
        self.state = ServerState::AwaitingClientFinal {
            username,
            credentials,
            gs2_header: gs2_header.to_owned(),
            nonce,
            auth_message_start: format!("{bare},{server_first}"),
        };
        Ok(Bytes::from(server_first))
    }

    fn client_final(&mut self, message: &[u8]) -> Result<(String, Bytes), ScramError> {
        let ServerState::AwaitingClientFinal {
            username,
            credentials,
            gs2_header,
            nonce,
            auth_message_start,
        } = std::mem::replace(&mut self.state, ServerState::Done)
        else {
            return Err(ScramError::Malformed("unexpected message"));
        };
        let message = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("UTF-8"))?;
        let (without_proof, proof) = message
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("p= expected"))?;
        let mut attributes = without_proof.split(',');
        let binding = attributes
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .and_then(|c| BASE64.decode(c).ok())
            .ok_or(ScramError::Malformed("c= expected"))?;
        if binding != gs2_header.as_bytes() {
            return Err(ScramError::Malformed("channel binding differs"));
        }
        if attributes.next().and_then(|a| a.strip_prefix("r=")) != Some(nonce.as_str()) {
            return Err(ScramError::Malformed("nonce differs"));
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof"))?;
        let credentials = credentials.ok_or(ScramError::BadProof)?;
        let auth_message = format!("{auth_message_start},{without_proof}");
        let client_signature = hmac_sha256(&credentials.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature.iter())
            .map(|(p, s)| p ^ s)
            .collect();
        if proof.len() != client_signature.len()
            || !constant_time_eq(&sha256(&client_key), &credentials.stored_key)
        {
            return Err(ScramError::BadProof);
        }
        let server_signature = hmac_sha256(&credentials.server_key, auth_message.as_bytes());
        Ok((
            username,
            Bytes::from(format!("v={}", BASE64.encode(server_signature))),
        ))
    }
}

impl AuthExchange for ScramServer {
    fn step(&mut self, data: Option<&Bytes>) -> AuthStep {
        let data = data.map(|d| &d[..]).unwrap_or_default();
        let outcome = match self.state {
            ServerState::AwaitingClientFirst => self.client_first(data).map(AuthStep::Continue),
            ServerState::AwaitingClientFinal { .. } => {
                self.client_final(data)
                    .map(|(username, data)| AuthStep::Success {
                        username,
                        data: Some(data),
                    })
            }
            ServerState::Done => Err(ScramError::Malformed("exchange already finished")),
        };
        outcome.unwrap_or_else(|e| {
            self.state = ServerState::Done;
            tracing::debug!(error = %e, "SCRAM exchange refused");
            AuthStep::Failure(ReasonCode::NotAuthorized)
        })
    }
}

/// Splits `gs2-header client-first-message-bare`; only "no channel binding" headers ("n,," or
/// "y,,") without an authorization identity are accepted.
fn split_gs2_header(message: &str) -> Result<(&str, &str), ScramError> {
    for header in ["n,,", "y,,"] {
        if let Some(bare) = message.strip_prefix(header) {
            return Ok((header, bare));
        }
    }
    Err(ScramError::Malformed(
        "unsupported GS2 header (channel binding or authzid)",
    ))
}

/// RFC 5802 saslname: "=2C" stands for ',' and "=3D" for '='; any other '=' is an error.
fn decode_saslname(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        let (before, escape) = rest.split_at(at);
        out.push_str(before);
        if let Some(after) = escape.strip_prefix("=2C") {
            out.push(',');
            rest = after;
        } else if let Some(after) = escape.strip_prefix("=3D") {
            out.push('=');
            rest = after;
        } else {
            return Err(ScramError::Malformed("bad escape in user name"));
        }
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed("empty user name"));
    }
    Ok(out)
}

fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// RFC 5802 `printable`: ASCII 0x21..=0x7E except ','.
fn is_printable(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| (0x21..=0x7E).contains(&b) && b != b',')
}

fn salted_password(password: &[u8], salt: &[u8], iterations: NonZeroU32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password,
        &mut out,
    );
    out
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref().get(..32).unwrap_or(&[0u8; 32]));
    out
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let hash = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(hash.as_ref().get(..32).unwrap_or(&[0u8; 32]));
    out
}

/// Compares without an early exit, so the time taken does not reveal where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_for(username: &'static str, password: &'static [u8]) -> ScramServer {
        let credentials = ScramCredentials::generate(password).unwrap();
        ScramServer::new(
            Box::new(move |name| (name == username).then(|| credentials.clone())),
            [7; 32],
        )
    }

    fn run(server: &mut ScramServer, username: &str, password: &[u8]) -> (AuthStep, ScramClient) {
        let (mut client, first) = ScramClient::start(username, password).unwrap();
        let AuthStep::Continue(server_first) = server.step(Some(&first)) else {
            panic!("server-first expected");
        };
        let last = client.client_final(&server_first).unwrap();
        (server.step(Some(&last)), client)
    }

    #[test]
    fn rfc_7677_test_vector() {
        // RFC 7677 §3: user "user", password "pencil", salt and iteration count from there.
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let creds = ScramCredentials::derive(b"pencil", &salt, NonZeroU32::new(4096).unwrap());
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_signature = hmac_sha256(&creds.server_key, auth_message.as_bytes());
        assert_eq!(
            BASE64.encode(server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn right_password_succeeds_and_the_client_checks_the_server() {
        let mut server = server_for("alice", b"correct horse");
        let (step, client) = run(&mut server, "alice", b"correct horse");
        let AuthStep::Success { username, data } = step else {
            panic!("success expected, got {step:?}");
        };
        assert_eq!(username, "alice");
        client.verify_server_final(&data.unwrap()).unwrap();
        assert_eq!(
            client.verify_server_final(b"v=AAAA"),
            Err(ScramError::BadProof)
        );
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_the_same_way() {
        let mut server = server_for("alice", b"correct horse");
        let (step, _) = run(&mut server, "alice", b"wrong");
        assert_eq!(step, AuthStep::Failure(ReasonCode::NotAuthorized));
        let mut server = server_for("alice", b"correct horse");
        let (step, _) = run(&mut server, "mallory", b"anything");
        assert_eq!(step, AuthStep::Failure(ReasonCode::NotAuthorized));
    }

    #[test]
    fn unknown_users_get_a_stable_salt() {
        let salt_of = |server: &mut ScramServer| {
            let (_, first) = ScramClient::start("nobody", b"x").unwrap();
            let AuthStep::Continue(reply) = server.step(Some(&first)) else {
                panic!("server-first expected");
            };
            let text = String::from_utf8(reply.to_vec()).unwrap();
            text.split(',').nth(1).unwrap().to_owned()
        };
        assert_eq!(
            salt_of(&mut server_for("alice", b"pw")),
            salt_of(&mut server_for("alice", b"pw"))
        );
    }

    #[test]
    fn malformed_messages_are_refused_without_panicking() {
        for first in [
            &b""[..],
            b"p=tls-unique,,n=a,r=x",
            b"n,,",
            b"n,,n=,r=abc",
            b"n,,n=a=ZZ,r=abc",
            b"n,,n=a",
            b"n,,n=a,r=",
            b"\xff\xfe",
        ] {
            let mut server = server_for("a", b"pw");
            assert_eq!(
                server.step(Some(&Bytes::copy_from_slice(first))),
                AuthStep::Failure(ReasonCode::NotAuthorized),
                "{first:?}"
            );
        }
        let mut server = server_for("a", b"pw");
        let (_, first) = ScramClient::start("a", b"pw").unwrap();
        assert!(matches!(server.step(Some(&first)), AuthStep::Continue(_)));
        for last in [&b"c=biws"[..], b"c=biws,r=wrong,p=AAAA", b"c=xx,p="] {
            let mut again = server_for("a", b"pw");
            let _ = again.step(Some(&first));
            assert_eq!(
                again.step(Some(&Bytes::copy_from_slice(last))),
                AuthStep::Failure(ReasonCode::NotAuthorized)
            );
        }
        assert_eq!(
            server.step(None),
            AuthStep::Failure(ReasonCode::NotAuthorized)
        );
    }

    #[test]
    fn names_with_commas_and_equals_survive_escaping() {
        assert_eq!(decode_saslname(&encode_saslname("a,b=c")).unwrap(), "a,b=c");
        let mut server = server_for("a,b=c", b"pw");
        let (step, _) = run(&mut server, "a,b=c", b"pw");
        assert!(matches!(step, AuthStep::Success { .. }));
    }

    #[test]
    fn credentials_round_trip_through_text() {
        let creds = ScramCredentials::generate(b"pw").unwrap();
        assert_eq!(ScramCredentials::parse(&creds.to_string()).unwrap(), creds);
        assert!(ScramCredentials::parse("SCRAM-SHA-256$0$AA==$$").is_err());
        assert!(ScramCredentials::parse("PLAIN$1").is_err());
        assert!(!format!("{creds:?}").contains(&BASE64.encode(creds.stored_key)));
    }
}
