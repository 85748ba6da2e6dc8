//! `FileAuthenticator`: the broker's authentication and authorization as configured by files,
//! a password file (argon2id for plain CONNECT passwords, SCRAM-SHA-256 for enhanced
//! authentication) and an ACL, plus the anonymous-access policy and user names vouched for by
//! client certificates. Both files are reloaded on request (SIGHUP in the binary) or when a
//! watcher sees them change; connected clients stay connected, and a file that no longer
//! parses leaves the previous rules in force.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use mquictt_protocol::{ReasonCode, TopicFilter, TopicName};
use ring::rand::{SecureRandom, SystemRandom};

use super::acl::{Acl, AclError};
use super::password::{PasswordError, PasswordFile};
use super::scram::{ScramServer, SCRAM_SHA_256};
use super::{AuthExchange, AuthResult, Authenticator, ConnectRequest, Principal};

/// Why the authentication files could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    /// The password file.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The ACL file.
    #[error(transparent)]
    Acl(#[from] AclError),
    /// The operating system's random number generator failed.
    #[error("no randomness available")]
    NoRandomness,
}

/// Which files to use and whether clients without credentials are let in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileAuthenticatorConfig {
    /// Password file; `None`: user names are taken at their word and passwords ignored.
    pub password_file: Option<PathBuf>,
    /// ACL file; `None`: every client may publish and subscribe to everything. Once an ACL
    /// is configured, whatever it does not allow is denied.
    pub acl_file: Option<PathBuf>,
    /// Clients without a user name (and without a certificate that names them): `None` lets
    /// them in only from loopback addresses, `Some(true)` from anywhere, `Some(false)` never.
    pub allow_anonymous: Option<bool>,
}

/// What the files said at the last successful load.
#[derive(Debug, Default)]
struct Loaded {
    passwords: Option<Arc<PasswordFile>>,
    acl: Option<Acl>,
}

/// A file's modification time and length, to notice changes cheaply.
type Stamp = Option<(SystemTime, u64)>;

/// Authentication and authorization from a password file and an ACL file.
#[derive(Debug)]
pub struct FileAuthenticator {
    config: FileAuthenticatorConfig,
    loaded: RwLock<Arc<Loaded>>,
    stamps: Mutex<(Stamp, Stamp)>,
    /// Secret for SCRAM's made-up salts of unknown users; new at every start.
    unknown_user_key: [u8; 32],
}

impl FileAuthenticator {
    /// Loads the configured files; fails if either cannot be read or parsed.
    pub fn new(config: FileAuthenticatorConfig) -> Result<Self, AuthFileError> {
        let mut unknown_user_key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut unknown_user_key)
            .map_err(|_| AuthFileError::NoRandomness)?;
        let stamps = (
            stamp(config.password_file.as_deref()),
            stamp(config.acl_file.as_deref()),
        );
        let loaded = load(&config)?;
        Ok(Self {
            config,
            loaded: RwLock::new(Arc::new(loaded)),
            stamps: Mutex::new(stamps),
            unknown_user_key,
        })
    }

    /// Reads both files again and switches to them. On error the rules in force stay.
    pub fn reload(&self) -> Result<(), AuthFileError> {
        let stamps = (
            stamp(self.config.password_file.as_deref()),
            stamp(self.config.acl_file.as_deref()),
        );
        let loaded = load(&self.config)?;
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) = stamps;
        tracing::info!("authentication files reloaded");
        Ok(())
    }

    /// Reloads if either file's modification time or length changed since the last load;
    /// returns whether it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, AuthFileError> {
        let now = (
            stamp(self.config.password_file.as_deref()),
            stamp(self.config.acl_file.as_deref()),
        );
        let changed = *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) != now;
        if changed {
            // Remember the new stamps even if the file is broken, so a half-written file is
            // reported once, not at every poll; the next write changes the stamp again.
            *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) = now;
            self.reload()?;
        }
        Ok(changed)
    }

    /// Checks the files every `interval` and reloads them when they change, until the
    /// authenticator is dropped. Must be called inside a Tokio runtime.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(strong) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = strong.reload_if_changed() {
                    tracing::warn!(error = %e, "authentication files changed but cannot be loaded; keeping the previous rules");
                }
            }
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &FileAuthenticatorConfig {
        &self.config
    }

    fn loaded(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the ACL in force allows what `check` asks; everything is allowed without an ACL
    /// file. Asked for every PUBLISH, so it neither locks nor counts anything when there is no
    /// ACL file, and with one it reads under the lock instead of taking a counted reference:
    /// each lock and count is an atomic write that the threads of every publisher share
    /// (docs/benchmarks.md, *Counters of their own per thread*).
    fn acl_allows(&self, check: impl FnOnce(&Acl) -> bool) -> bool {
        if self.config.acl_file.is_none() {
            return true;
        }
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        loaded.acl.as_ref().is_none_or(check)
    }

    fn anonymous_allowed(&self, peer: Option<SocketAddr>) -> bool {
        match self.config.allow_anonymous {
            Some(allowed) => allowed,
            None => peer.is_some_and(|addr| addr.ip().is_loopback()),
        }
    }
}

fn load(config: &FileAuthenticatorConfig) -> Result<Loaded, AuthFileError> {
    let passwords = config
        .password_file
        .as_deref()
        .map(PasswordFile::load)
        .transpose()?
        .map(Arc::new);
    let acl = config.acl_file.as_deref().map(Acl::load).transpose()?;
    Ok(Loaded { passwords, acl })
}

fn stamp(path: Option<&Path>) -> Stamp {
    let metadata = std::fs::metadata(path?).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

impl Authenticator for FileAuthenticator {
    fn authenticate(&self, request: &ConnectRequest<'_>) -> AuthResult {
        if request.certificate_username.is_some() {
            // The transport verified the certificate against the listener's client CA.
            return Ok(());
        }
        let Some(username) = request.username else {
            return if self.anonymous_allowed(request.peer) {
                Ok(())
            } else {
                Err(ReasonCode::NotAuthorized)
            };
        };
        let loaded = self.loaded();
        match &loaded.passwords {
            None => Ok(()),
            Some(passwords) => {
                let password = request.password.map(|p| &p[..]).unwrap_or_default();
                if passwords.verify(username, password) {
                    Ok(())
                } else {
                    Err(ReasonCode::BadUserNameOrPassword)
                }
            }
        }
    }

    fn start_exchange(&self, method: &str) -> Option<Box<dyn AuthExchange>> {
        if method != SCRAM_SHA_256 {
            return None;
        }
        let passwords = self.loaded().passwords.clone()?;
        Some(Box::new(ScramServer::new(
            Box::new(move |name| passwords.scram(name).cloned()),
            self.unknown_user_key,
        )))
    }

    fn authorize_publish(&self, client: &Principal<'_>, topic: &TopicName) -> bool {
        self.acl_allows(|acl| acl.allows_publish(client, topic))
    }

    fn authorize_subscribe(&self, client: &Principal<'_>, filter: &TopicFilter) -> bool {
        self.acl_allows(|acl| acl.allows_subscribe(client, filter))
    }

    fn authorize_retained(&self, client: &Principal<'_>, topic: &TopicName) -> bool {
        self.acl_allows(|acl| acl.allows_retained(client, topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthStep, ScramClient};
    use bytes::Bytes;

    fn request<'a>(
        username: Option<&'a str>,
        password: Option<&'a Bytes>,
        peer: &str,
    ) -> ConnectRequest<'a> {
        ConnectRequest {
            client_id: "c",
            username,
            password,
            peer: peer.parse().ok(),
            certificate_username: None,
        }
    }

    fn files(dir: &Path, acl: &str) -> FileAuthenticatorConfig {
        let mut passwords = PasswordFile::new();
        passwords.set_password("alice", b"secret").unwrap();
        let password_file = dir.join("passwd");
        passwords.save(&password_file).unwrap();
        let acl_file = dir.join("acl");
        std::fs::write(&acl_file, acl).unwrap();
        FileAuthenticatorConfig {
            password_file: Some(password_file),
            acl_file: Some(acl_file),
            allow_anonymous: None,
        }
    }

    #[test]
    fn passwords_are_checked_and_anonymous_is_loopback_only_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let auth = FileAuthenticator::new(files(dir.path(), "")).unwrap();
        let right = Bytes::from_static(b"secret");
        let wrong = Bytes::from_static(b"guess");
        let remote = "192.0.2.7:5000";
        assert_eq!(
            auth.authenticate(&request(Some("alice"), Some(&right), remote)),
            Ok(())
        );
        assert_eq!(
            auth.authenticate(&request(Some("alice"), Some(&wrong), remote)),
            Err(ReasonCode::BadUserNameOrPassword)
        );
        assert_eq!(
            auth.authenticate(&request(Some("alice"), None, remote)),
            Err(ReasonCode::BadUserNameOrPassword)
        );
        assert_eq!(
            auth.authenticate(&request(None, None, "127.0.0.1:5000")),
            Ok(())
        );
        assert_eq!(
            auth.authenticate(&request(None, None, remote)),
            Err(ReasonCode::NotAuthorized)
        );
    }

    #[test]
    fn anonymous_policy_can_be_forced_either_way() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = files(dir.path(), "");
        config.allow_anonymous = Some(false);
        let closed = FileAuthenticator::new(config.clone()).unwrap();
        assert_eq!(
            closed.authenticate(&request(None, None, "127.0.0.1:1")),
            Err(ReasonCode::NotAuthorized)
        );
        config.allow_anonymous = Some(true);
        let open = FileAuthenticator::new(config).unwrap();
        assert_eq!(
            open.authenticate(&request(None, None, "192.0.2.1:1")),
            Ok(())
        );
    }

    #[test]
    fn a_certificate_name_needs_no_password() {
        let dir = tempfile::tempdir().unwrap();
        let auth = FileAuthenticator::new(files(dir.path(), "")).unwrap();
        let mut by_certificate = request(None, None, "192.0.2.7:5000");
        by_certificate.certificate_username = Some("device-9");
        assert_eq!(auth.authenticate(&by_certificate), Ok(()));
    }

    #[test]
    fn acl_denies_by_default_and_reload_switches_rules() {
        let dir = tempfile::tempdir().unwrap();
        let config = files(dir.path(), "allow all publish a\n");
        let auth = FileAuthenticator::new(config.clone()).unwrap();
        let alice = Principal {
            client_id: "c",
            username: Some("alice"),
        };
        let a = TopicName::new("a").unwrap();
        let b = TopicName::new("b").unwrap();
        assert!(auth.authorize_publish(&alice, &a));
        assert!(!auth.authorize_publish(&alice, &b));
        assert!(!auth.authorize_subscribe(&alice, &TopicFilter::new("a").unwrap()));
        let acl_file = config.acl_file.clone().unwrap();
        std::fs::write(&acl_file, "allow all publish b\n").unwrap();
        assert!(auth.reload_if_changed().unwrap());
        assert!(!auth.authorize_publish(&alice, &a));
        assert!(auth.authorize_publish(&alice, &b));
        assert!(!auth.reload_if_changed().unwrap(), "nothing changed since");
        // A broken file keeps the rules in force.
        std::fs::write(&acl_file, "allow nobody\n").unwrap();
        assert!(auth.reload().is_err());
        assert!(auth.authorize_publish(&alice, &b));
    }

    #[test]
    fn without_files_everything_is_allowed_but_anonymous_follows_policy() {
        let auth = FileAuthenticator::new(FileAuthenticatorConfig::default()).unwrap();
        let anyone = Principal {
            client_id: "c",
            username: None,
        };
        assert!(auth.authorize_subscribe(&anyone, &TopicFilter::new("#").unwrap()));
        assert_eq!(
            auth.authenticate(&request(Some("x"), None, "192.0.2.1:1")),
            Ok(())
        );
        assert!(auth.start_exchange(SCRAM_SHA_256).is_none());
    }

    #[test]
    fn scram_uses_the_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let auth = FileAuthenticator::new(files(dir.path(), "")).unwrap();
        assert!(auth.start_exchange("PLAIN").is_none());
        let mut exchange = auth.start_exchange(SCRAM_SHA_256).unwrap();
        let (mut client, first) = ScramClient::start("alice", b"secret").unwrap();
        let AuthStep::Continue(server_first) = exchange.step(Some(&first)) else {
            panic!("server-first expected");
        };
        let last = client.client_final(&server_first).unwrap();
        match exchange.step(Some(&last)) {
            AuthStep::Success { username, data } => {
                assert_eq!(username, "alice");
                client.verify_server_final(&data.unwrap()).unwrap();
            }
            other => panic!("expected success, got {other:?}"),
        }
    }
}
