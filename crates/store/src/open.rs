//! Opening the store in a data directory, and what happens when it is damaged: a file that
//! redb cannot open or read (zero-filled, truncated, overwritten) is renamed to
//! `mquictt.redb.corrupt-<unix time>` with a message saying what was found and where it went,
//! and the broker starts on an empty store, unless it is told to refuse. A torn last commit is
//! not damage: redb rolls it back by itself. A store that another broker holds open, or that a
//! newer version wrote, is never moved: those are errors the operator must see.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use mquictt_broker::storage::StorageError;
use redb::{Database, StorageBackend};

use crate::durable::{engine_error, DurableStorage, Reopen};

/// Name of the store file inside the data directory.
pub const STORE_FILE: &str = "mquictt.redb";

/// Page cache for the store: 16 MiB keeps the working set of a busy broker (the tail of each
/// queue) in memory without taking much of a small device's RAM. redb's default is 1 GiB.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// What to do with a store that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCorrupt {
    /// Move the damaged file aside, report it, and start with an empty store: the broker keeps
    /// serving, and the damaged file stays available for inspection.
    #[default]
    MoveAside,
    /// Refuse to start, leaving the file where it is.
    Refuse,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory or file could not be used.
    #[error("storage in {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Another process has the store open.
    #[error("storage {path} is in use by another process (is another broker running with this data directory?)")]
    InUse {
        /// The store file.
        path: PathBuf,
    },
    /// The store is damaged and `OnCorrupt::Refuse` was asked for.
    #[error("storage {path} is damaged ({reason}); it was left in place because the broker is configured to refuse a damaged store")]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// The store was written by a newer version.
    #[error("storage {path}: {reason}")]
    Incompatible {
        /// The store file.
        path: PathBuf,
        /// What the versions are.
        reason: String,
    },
}

/// A store that was found damaged and moved aside at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedAside {
    /// Where the damaged file now is.
    pub to: PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

fn builder() -> redb::Builder {
    let mut builder = redb::Builder::new();
    builder.set_cache_size(CACHE_BYTES);
    builder
}

/// What opening found wrong, split by whether moving the file aside can help.
enum OpenFailure {
    Damaged(String),
    Fatal(StoreError),
}

fn classify(path: &Path, error: StorageError) -> OpenFailure {
    match error {
        StorageError::Io(e)
            if !matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            ) =>
        {
            OpenFailure::Fatal(StoreError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
        StorageError::Engine(e) if e.contains("already open") => {
            OpenFailure::Fatal(StoreError::InUse {
                path: path.to_path_buf(),
            })
        }
        StorageError::Corrupt(e) if e.contains("storage layout") => {
            OpenFailure::Fatal(StoreError::Incompatible {
                path: path.to_path_buf(),
                reason: e,
            })
        }
        StorageError::Engine(e) if e.contains("upgrade") => {
            OpenFailure::Fatal(StoreError::Incompatible {
                path: path.to_path_buf(),
                reason: e,
            })
        }
        other => OpenFailure::Damaged(other.to_string()),
    }
}

fn try_open(path: &Path) -> Result<DurableStorage, OpenFailure> {
    let reopen_path = path.to_path_buf();
    let reopen: Reopen = Box::new(move || builder().create(&reopen_path));
    let db = builder()
        .create(path)
        .map_err(|e| classify(path, engine_error(e)))?;
    DurableStorage::from_database(db, reopen, path.to_path_buf()).map_err(|e| classify(path, e))
}

impl DurableStorage {
    /// Opens (or creates) the store in `dir`. A damaged store is handled as `on_corrupt` says;
    /// when it was moved aside, the returned [`MovedAside`] says where.
    pub fn open(
        dir: &Path,
        on_corrupt: OnCorrupt,
    ) -> Result<(Self, Option<MovedAside>), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(STORE_FILE);
        let reason = match try_open(&path) {
            Ok(storage) => return Ok((storage, None)),
            Err(OpenFailure::Fatal(e)) => return Err(e),
            Err(OpenFailure::Damaged(reason)) => reason,
        };
        if on_corrupt == OnCorrupt::Refuse {
            return Err(StoreError::Corrupt { path, reason });
        }
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let to = dir.join(format!("{STORE_FILE}.corrupt-{stamp}"));
        std::fs::rename(&path, &to).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        tracing::error!(
            store = %path.display(),
            moved_to = %to.display(),
            %reason,
            "storage is damaged: moved it aside and starting with an empty store; sessions, queued and retained messages in it are not restored"
        );
        match try_open(&path) {
            Ok(storage) => Ok((storage, Some(MovedAside { to, reason }))),
            Err(OpenFailure::Fatal(e)) => Err(e),
            Err(OpenFailure::Damaged(reason)) => Err(StoreError::Corrupt { path, reason }),
        }
    }

    /// A store on any redb backend; the tests use one that fails on command. `make` is called
    /// again to reopen after an I/O error.
    pub fn with_backend<B, F>(make: F) -> Result<Self, StorageError>
    where
        B: StorageBackend,
        F: Fn() -> B + Send + Sync + 'static,
    {
        let db: Database = builder()
            .create_with_backend(make())
            .map_err(engine_error)?;
        let reopen: Reopen = Box::new(move || builder().create_with_backend(make()));
        Self::from_database(db, reopen, PathBuf::from("<backend>"))
    }
}
