//! The password file: one user per line, `name:argon2id-hash:scram-credentials`, where the
//! argon2id hash (PHC string) checks the password of a plain CONNECT and the SCRAM-SHA-256
//! credentials serve enhanced authentication. Neither lets anyone recover the password.
//! Parsing, checking, changing and writing the file live here; reloading it is
//! `FileAuthenticator`'s, and the `mquictt passwd` command edits it through this API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use ring::rand::{SecureRandom, SystemRandom};

use super::scram::{ScramCredentials, ScramError};

/// Why a password file could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The file could not be read or written.
    #[error("password file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A line is not `name:argon2id-hash[:scram-credentials]`.
    #[error("password file line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A user name that the file format or the ACL cannot hold.
    #[error("invalid user name {0:?}: it must be non-empty and contain no ':', whitespace or control characters")]
    InvalidUsername(String),
    /// Hashing failed (no randomness, or the hasher refused its input).
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// One user's stored secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordEntry {
    /// The argon2id hash as a PHC string.
    pub hash: String,
    /// SCRAM-SHA-256 credentials; users written before SCRAM support may lack them.
    pub scram: Option<ScramCredentials>,
}

impl std::fmt::Debug for PasswordEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordEntry")
            .field("scram", &self.scram.is_some())
            .finish_non_exhaustive()
    }
}

/// A parsed password file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordFile {
    users: BTreeMap<String, PasswordEntry>,
}

impl PasswordFile {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, PasswordError> {
        let text = std::fs::read_to_string(path).map_err(|source| PasswordError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses the text of a password file. Blank lines and lines starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<Self, PasswordError> {
        let mut users = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line_error = |message: String| PasswordError::Line {
                line: index + 1,
                message,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split(':');
            let name = fields.next().unwrap_or_default();
            check_username(name).map_err(|e| line_error(e.to_string()))?;
            let hash = fields
                .next()
                .ok_or_else(|| line_error("missing the password hash".into()))?;
            let parsed = PasswordHash::new(hash)
                .map_err(|e| line_error(format!("bad password hash: {e}")))?;
            if parsed.algorithm != argon2::Algorithm::Argon2id.ident() {
                return Err(line_error(format!(
                    "hash algorithm {} is not argon2id",
                    parsed.algorithm
                )));
            }
            let scram = fields
                .next()
                .map(ScramCredentials::parse)
                .transpose()
                .map_err(|e| line_error(e.to_string()))?;
            if fields.next().is_some() {
                return Err(line_error("too many ':' separated fields".into()));
            }
            let entry = PasswordEntry {
                hash: hash.to_owned(),
                scram,
            };
            if users.insert(name.to_owned(), entry).is_some() {
                return Err(line_error(format!("user {name:?} appears twice")));
            }
        }
        Ok(Self { users })
    }

    /// The file's text: a comment header and one line per user, sorted by name.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# MQuicTT password file: name:argon2id-hash:scram-sha-256-credentials.\n\
             # Edit with `mquictt passwd FILE USER`.\n",
        );
        for (name, entry) in &self.users {
            out.push_str(name);
            out.push(':');
            out.push_str(&entry.hash);
            if let Some(scram) = &entry.scram {
                out.push(':');
                out.push_str(&scram.to_string());
            }
            out.push('\n');
        }
        out
    }

    /// Writes the file atomically (a temporary file renamed over it), readable only by its
    /// owner on Unix.
    pub fn save(&self, path: &Path) -> Result<(), PasswordError> {
        let io_error = |source| PasswordError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        std::fs::write(&temporary, self.render()).map_err(io_error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
                .map_err(io_error)?;
        }
        std::fs::rename(&temporary, path).map_err(io_error)
    }

    /// Adds `username` or changes its password: a fresh argon2id hash and fresh SCRAM
    /// credentials, each with a new random salt.
    pub fn set_password(&mut self, username: &str, password: &[u8]) -> Result<(), PasswordError> {
        check_username(username)?;
        let entry = PasswordEntry {
            hash: hash_password(password)?,
            scram: Some(
                ScramCredentials::generate(password)
                    .map_err(|e: ScramError| PasswordError::Hash(e.to_string()))?,
            ),
        };
        self.users.insert(username.to_owned(), entry);
        Ok(())
    }

    /// Removes `username`; false if it was not there.
    pub fn remove(&mut self, username: &str) -> bool {
        self.users.remove(username).is_some()
    }

    /// Whether `password` is `username`'s. An unknown user costs as much time as a known one,
    /// so response times do not tell which user names exist.
    pub fn verify(&self, username: &str, password: &[u8]) -> bool {
        match self.users.get(username) {
            Some(entry) => verify_hash(&entry.hash, password),
            None => {
                if let Some(dummy) = dummy_hash() {
                    let _ = verify_hash(dummy, password);
                }
                false
            }
        }
    }

    /// The SCRAM credentials of `username`, if it has any.
    pub fn scram(&self, username: &str) -> Option<&ScramCredentials> {
        self.users.get(username).and_then(|e| e.scram.as_ref())
    }

    /// Whether `username` is in the file.
    pub fn contains(&self, username: &str) -> bool {
        self.users.contains_key(username)
    }

    /// The user names, sorted.
    pub fn usernames(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// User names end at ':' in this file and at whitespace in the ACL file.
fn check_username(name: &str) -> Result<(), PasswordError> {
    if name.is_empty() || name.contains(|c: char| c == ':' || c.is_whitespace() || c.is_control()) {
        return Err(PasswordError::InvalidUsername(name.to_owned()));
    }
    Ok(())
}

/// An argon2id hash of `password` with the argon2 crate's default cost (19 MiB, 2 passes, 1
/// lane, as OWASP recommends) and a random 16-byte salt.
fn hash_password(password: &[u8]) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Hash("no randomness available".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

fn verify_hash(hash: &str, password: &[u8]) -> bool {
    // The hash carries its own parameters; it was checked to be argon2id when parsed.
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(password, &parsed).is_ok())
}

/// A hash to check unknown users against, made once.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password(b"no such user").ok())
        .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_verify_change_and_remove() {
        let mut file = PasswordFile::new();
        file.set_password("alice", b"one").unwrap();
        assert!(file.verify("alice", b"one"));
        assert!(!file.verify("alice", b"two"));
        assert!(!file.verify("bob", b"one"));
        file.set_password("alice", b"two").unwrap();
        assert!(file.verify("alice", b"two"));
        assert!(!file.verify("alice", b"one"));
        assert!(file.scram("alice").is_some());
        assert!(file.remove("alice"));
        assert!(!file.remove("alice"));
        assert!(file.is_empty());
    }

    #[test]
    fn the_file_round_trips_and_holds_no_password() {
        let mut file = PasswordFile::new();
        file.set_password("alice", b"hunter2").unwrap();
        file.set_password("bob", b"swordfish").unwrap();
        let text = file.render();
        assert!(!text.contains("hunter2") && !text.contains("swordfish"));
        assert!(text.contains("alice:$argon2id$"));
        let parsed = PasswordFile::parse(&text).unwrap();
        assert_eq!(parsed, file);
        assert_eq!(parsed.usernames().collect::<Vec<_>>(), ["alice", "bob"]);
        assert!(parsed.verify("bob", b"swordfish"));
    }

    #[test]
    fn bad_lines_are_named() {
        let err = PasswordFile::parse("# ok\n\nalice\n").unwrap_err();
        assert!(matches!(err, PasswordError::Line { line: 3, .. }), "{err}");
        let err = PasswordFile::parse("alice:not-a-hash\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        // argon2i is not accepted: argon2id resists both side channels and GPUs.
        let argon2i = "u:$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(PasswordFile::parse(argon2i).is_err());
        let mut file = PasswordFile::new();
        file.set_password("a", b"x").unwrap();
        let twice = format!("{0}{0}", file.render());
        assert!(PasswordFile::parse(&twice)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }

    #[test]
    fn user_names_that_would_break_the_files_are_refused() {
        let mut file = PasswordFile::new();
        for bad in ["", "a:b", "a b", "a\nb"] {
            assert!(matches!(
                file.set_password(bad, b"x"),
                Err(PasswordError::InvalidUsername(_))
            ));
        }
    }

    #[test]
    fn save_is_private_and_loadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        let mut file = PasswordFile::new();
        file.set_password("alice", b"pw").unwrap();
        file.save(&path).unwrap();
        assert_eq!(PasswordFile::load(&path).unwrap(), file);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
