//! The client side of a SCRAM-SHA-256 exchange (RFC 5802): the client-first message, the
//! proof in the client-final message, and the check of the server's signature. Used by tools
//! and tests; a client only needs its user name and password.

use std::fmt;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use ring::rand::{SecureRandom, SystemRandom};

use super::{
    constant_time_eq, encode_saslname, hmac_sha256, salted_password, ScramCredentials, ScramError,
    NONCE_BYTES,
};

/// The most iterations a client accepts from a server, so that a hostile server cannot make a
/// device compute for minutes.
const MAX_CLIENT_ITERATIONS: u32 = 1_000_000;

/// The client side of one SCRAM-SHA-256 exchange.
pub struct ScramClient {
    password: Vec<u8>,
    client_first_bare: String,
    client_nonce: String,
    expected_server_signature: Option<[u8; 32]>,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("client_first_bare", &self.client_first_bare)
            .finish_non_exhaustive()
    }
}

/// The GS2 header of a client that supports no channel binding.
const GS2_HEADER: &str = "n,,";

impl ScramClient {
    /// Starts an exchange; returns the client and the client-first message to put in
    /// CONNECT's Authentication Data.
    pub fn start(username: &str, password: &[u8]) -> Result<(Self, Bytes), ScramError> {
        let mut nonce = [0u8; NONCE_BYTES];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ScramError::NoRandomness)?;
        let client_nonce = BASE64.encode(nonce);
        let client_first_bare = format!("n={},r={client_nonce}", encode_saslname(username));
        let first = Bytes::from(format!("{GS2_HEADER}{client_first_bare}"));
        Ok((
            Self {
                password: password.to_vec(),
                client_first_bare,
                client_nonce,
                expected_server_signature: None,
            },
            first,
        ))
    }

    /// Answers the server-first message with the client-final message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Bytes, ScramError> {
        let text = std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("UTF-8"))?;
        let mut attributes = text.split(',');
        let nonce = attributes
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .filter(|n| n.starts_with(&self.client_nonce) && n.len() > self.client_nonce.len())
            .ok_or(ScramError::Malformed("r= must extend the client nonce"))?;
        let salt = attributes
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .and_then(|s| BASE64.decode(s).ok())
            .ok_or(ScramError::Malformed("s= expected"))?;
        let iterations = attributes
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .and_then(|i| i.parse::<u32>().ok())
            .filter(|i| *i <= MAX_CLIENT_ITERATIONS)
            .and_then(NonZeroU32::new)
            .ok_or(ScramError::Malformed("i= expected"))?;
        let credentials = ScramCredentials::derive(&self.password, &salt, iterations);
        let without_proof = format!("c={},r={nonce}", BASE64.encode(GS2_HEADER));
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let salted = salted_password(&self.password, &salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let client_signature = hmac_sha256(&credentials.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(client_signature.iter())
            .map(|(k, s)| k ^ s)
            .collect();
        self.expected_server_signature = Some(hmac_sha256(
            &credentials.server_key,
            auth_message.as_bytes(),
        ));
        Ok(Bytes::from(format!(
            "{without_proof},p={}",
            BASE64.encode(proof)
        )))
    }

    /// Checks the server-final message: only a server that knows the credentials can sign it.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let signature = std::str::from_utf8(server_final)
            .ok()
            .and_then(|t| t.strip_prefix("v="))
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or(ScramError::Malformed("v= expected"))?;
        match &self.expected_server_signature {
            Some(expected) if constant_time_eq(expected, &signature) => Ok(()),
            _ => Err(ScramError::BadProof),
        }
    }
}
