//! `DurableStorage`: the broker's `Storage` on one redb file. A commit is one redb write
//! transaction with immediate durability (written and synced before it returns), so a group
//! of changes lands whole or not at all; a torn write is rolled back by redb's own commit
//! protocol at the next open. Tables are keyed by client identifier first, so a session and
//! everything it owns sits together and goes with one range delete. The store also counts the
//! bytes of messages it holds, exactly (redb returns the value an insert or remove replaced),
//! for the broker's disk quota.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use mquictt_broker::storage::{Change, Storage, StorageError, StoredQueued, StoredState};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::codec::{self, WallClock};

/// Session expiry in milliseconds, by client.
const SESSIONS: TableDefinition<'_, &str, u64> = TableDefinition::new("sessions");
/// When an offline session ends, in wall-clock milliseconds since the Unix epoch, by client;
/// absent while a connection holds the session.
const SESSION_DEADLINES: TableDefinition<'_, &str, u64> = TableDefinition::new("session_deadlines");
/// Subscriptions by (client, filter).
const SUBSCRIPTIONS: TableDefinition<'_, (&str, &str), &[u8]> =
    TableDefinition::new("subscriptions");
/// Queued and in-flight messages by (client, queue sequence number).
const QUEUED: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("queued");
/// In-flight marks by (client, queue sequence number).
const IN_FLIGHT: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("in_flight");
/// Incoming QoS 2 identifiers awaiting PUBREL, by (client, packet identifier).
const INBOUND: TableDefinition<'_, (&str, u16), ()> = TableDefinition::new("inbound");
/// Retained messages by topic.
const RETAINED: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("retained");
/// Pending wills by client.
const WILLS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("wills");
/// Store metadata: the layout version.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// The layout version written to `meta`; a store written by a later layout is refused rather
/// than misread.
pub(crate) const LAYOUT: u64 = 1;

/// Opens the database again, for the same file or backend.
pub(crate) type Reopen = Box<dyn Fn() -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// The broker's storage on redb. See the documentation of the `durable` module.
pub struct DurableStorage {
    /// `None` only while a failed database is being reopened.
    db: Mutex<Option<Database>>,
    reopen: Reopen,
    clock: WallClock,
    stored_bytes: AtomicU64,
    /// The state read when the store was opened, handed out by the first `load`.
    loaded: Mutex<Option<StoredState>>,
    /// Where the data lives, for messages.
    location: PathBuf,
}

impl std::fmt::Debug for DurableStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStorage")
            .field("location", &self.location)
            .field("stored_bytes", &self.stored_bytes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Maps redb's errors onto the broker's.
pub(crate) fn engine_error(error: impl Into<redb::Error>) -> StorageError {
    match error.into() {
        redb::Error::Io(e) => StorageError::Io(e),
        redb::Error::Corrupted(what) => StorageError::Corrupt(what),
        other => StorageError::Engine(other.to_string()),
    }
}

fn range_end(client: &str) -> String {
    // The smallest string after every string that starts with `client` is not needed: tuple
    // keys compare element by element, and `client + "\0"` is the first string after
    // `client` itself.
    format!("{client}\0")
}

impl DurableStorage {
    /// Wraps an open database: checks its layout, reads everything once (which also proves it
    /// readable) and counts the stored bytes.
    pub(crate) fn from_database(
        db: Database,
        reopen: Reopen,
        location: PathBuf,
    ) -> Result<Self, StorageError> {
        let storage = Self {
            db: Mutex::new(Some(db)),
            reopen,
            clock: WallClock::now(),
            stored_bytes: AtomicU64::new(0),
            loaded: Mutex::new(None),
            location,
        };
        storage.check_layout()?;
        let (state, bytes) = storage.read_all()?;
        storage.stored_bytes.store(bytes, Ordering::Relaxed);
        *lock(&storage.loaded) = Some(state);
        Ok(storage)
    }

    /// Where the data lives.
    pub fn location(&self) -> &Path {
        &self.location
    }

    fn database(&self) -> Result<MutexGuard<'_, Option<Database>>, StorageError> {
        let mut guard = lock(&self.db);
        if guard.is_none() {
            *guard = Some((self.reopen)().map_err(engine_error)?);
        }
        Ok(guard)
    }

    fn check_layout(&self) -> Result<(), StorageError> {
        let guard = self.database()?;
        let Some(db) = guard.as_ref() else {
            return Err(StorageError::Engine("database is closed".into()));
        };
        let tx = db.begin_write().map_err(engine_error)?;
        {
            let mut meta = tx.open_table(META).map_err(engine_error)?;
            let layout = meta.get("layout").map_err(engine_error)?.map(|v| v.value());
            match layout {
                None => {
                    meta.insert("layout", LAYOUT).map_err(engine_error)?;
                }
                Some(LAYOUT) => {}
                Some(other) => {
                    return Err(StorageError::Corrupt(format!(
                        "written with storage layout {other}, this broker reads layout {LAYOUT}; \
                         use a newer mquictt"
                    )))
                }
            }
            // Every table exists from the first commit on, so readers never miss one.
            tx.open_table(SESSIONS).map_err(engine_error)?;
            tx.open_table(SESSION_DEADLINES).map_err(engine_error)?;
            tx.open_table(SUBSCRIPTIONS).map_err(engine_error)?;
            tx.open_table(QUEUED).map_err(engine_error)?;
            tx.open_table(IN_FLIGHT).map_err(engine_error)?;
            tx.open_table(INBOUND).map_err(engine_error)?;
            tx.open_table(RETAINED).map_err(engine_error)?;
            tx.open_table(WILLS).map_err(engine_error)?;
        }
        tx.commit().map_err(engine_error)
    }

    /// Reads every table into a `StoredState`, skipping (and reporting) damaged records and
    /// records of sessions that no longer exist; returns it with the bytes of messages held.
    fn read_all(&self) -> Result<(StoredState, u64), StorageError> {
        let guard = self.database()?;
        let Some(db) = guard.as_ref() else {
            return Err(StorageError::Engine("database is closed".into()));
        };
        let tx = db.begin_read().map_err(engine_error)?;
        let clock = &self.clock;
        let mut state = StoredState::default();
        let mut bytes = 0u64;
        let mut damaged = 0usize;
        let mut report = |what: &str, key: String, error: codec::RecordError| {
            damaged += 1;
            tracing::error!(record = what, key, %error, "skipping a damaged record");
        };
        for entry in tx
            .open_table(SESSIONS)
            .map_err(engine_error)?
            .iter()
            .map_err(engine_error)?
        {
            let (client, expiry) = entry.map_err(engine_error)?;
            let session = state.sessions.entry(client.value().to_owned()).or_default();
            session.expiry = std::time::Duration::from_millis(expiry.value());
        }
        for entry in tx
            .open_table(SESSION_DEADLINES)
            .map_err(engine_error)?
            .iter()
            .map_err(engine_error)?
        {
            let (client, deadline) = entry.map_err(engine_error)?;
            if let Some(session) = state.sessions.get_mut(client.value()) {
                // A deadline that passed while the broker was down comes back as now.
                session.expires_at = Some(clock.instant_at(deadline.value()));
            }
        }
        for entry in tx
            .open_table(SUBSCRIPTIONS)
            .map_err(engine_error)?
            .iter()
            .map_err(engine_error)?
        {
            let (key, value) = entry.map_err(engine_error)?;
            let (client, filter) = key.value();
            let Some(session) = state.sessions.get_mut(client) else {
                continue;
            };
            match codec::decode_subscription(filter, value.value()) {
                Ok(s) => {
                    session.subscriptions.insert(s.filter.clone(), s);
                }
                Err(e) => report("subscription", format!("{client} {filter}"), e),
            }
        }
        for entry in tx
            .open_table(QUEUED)
            .map_err(engine_error)?
            .iter()
            .map_err(engine_error)?
        {
            let (key, value) = entry.map_err(engine_error)?;
            let (client, seq) = key.value();
            bytes += value.value().len() as u64;
            let Some(session) = state.sessions.get_mut(client) else {
                continue;
            };
            match codec::decode_outgoing(value.value(), clock) {
                Ok(outgoing) => {
                    session.queued.insert(
                        seq,
                        StoredQueued {
                            outgoing,
                            in_flight: None,
                        },
                    );
                }
                Err(e) => report("queued message", format!("{client} {seq}"), e),
            }
        }
        for entry in tx
            .open_table(IN_FLIGHT)
            .map_err(engine_error)?
            .iter()
            .map_err(engine_error)?
        {
            let (key, value) = entry.map_err(engine_error)?;
            let (client, seq) = key.value();
            let Some(queued) = state
                .sessions
                .get_mut(client)
                .and_then(|s| s.queued.get_mut(&seq))
            else {
                continue;
            };
            match codec::decode_in_flight(value.value()) {
                Ok(mark) => queued.in_flight = Some(mark),
                Err(e) => report("in-flight mark", format!("{client} {seq}"), e),
            }
        }
        for entry in tx
            .open_table(INBOUND)
            .map_err(engine_error)?
            .iter()
            .map_err(engine_error)?
        {
            let (key, _) = entry.map_err(engine_error)?;
            let (client, id) = key.value();
            if let (Some(session), Some(id)) = (
                state.sessions.get_mut(client),
                mquictt_protocol::PacketId::new(id),
            ) {
                session.inbound_awaiting_release.insert(id);
            }
        }
        for entry in tx
            .open_table(RETAINED)
            .map_err(engine_error)?
            .iter()
            .map_err(engine_error)?
        {
            let (topic, value) = entry.map_err(engine_error)?;
            bytes += value.value().len() as u64;
            match codec::decode_message(value.value(), clock) {
                Ok(message) => {
                    state.retained.insert(message.topic.clone(), message);
                }
                Err(e) => report("retained message", topic.value().to_owned(), e),
            }
        }
        for entry in tx
            .open_table(WILLS)
            .map_err(engine_error)?
            .iter()
            .map_err(engine_error)?
        {
            let (client, value) = entry.map_err(engine_error)?;
            bytes += value.value().len() as u64;
            let Some(session) = state.sessions.get_mut(client.value()) else {
                continue;
            };
            match codec::decode_will(value.value(), clock) {
                Ok(will) => session.will = Some(will),
                Err(e) => report("will", client.value().to_owned(), e),
            }
        }
        if damaged > 0 {
            tracing::error!(
                damaged,
                location = %self.location.display(),
                "storage held damaged records; they were skipped and everything else restored"
            );
        }
        Ok((state, bytes))
    }

    fn apply(&self, tx: &redb::WriteTransaction, changes: &[Change]) -> Result<i64, StorageError> {
        let mut sessions = tx.open_table(SESSIONS).map_err(engine_error)?;
        let mut deadlines = tx.open_table(SESSION_DEADLINES).map_err(engine_error)?;
        let mut subscriptions = tx.open_table(SUBSCRIPTIONS).map_err(engine_error)?;
        let mut queued = tx.open_table(QUEUED).map_err(engine_error)?;
        let mut in_flight = tx.open_table(IN_FLIGHT).map_err(engine_error)?;
        let mut inbound = tx.open_table(INBOUND).map_err(engine_error)?;
        let mut retained = tx.open_table(RETAINED).map_err(engine_error)?;
        let mut wills = tx.open_table(WILLS).map_err(engine_error)?;
        let clock = &self.clock;
        let mut delta: i64 = 0;
        let size = |len: usize| i64::try_from(len).unwrap_or(i64::MAX);
        for change in changes {
            match change {
                Change::Session {
                    client_id,
                    expiry,
                    expires_at,
                } => {
                    let millis = u64::try_from(expiry.as_millis()).unwrap_or(u64::MAX);
                    sessions
                        .insert(&**client_id, millis)
                        .map_err(engine_error)?;
                    match expires_at {
                        Some(at) => deadlines
                            .insert(&**client_id, clock.wall_millis(*at))
                            .map_err(engine_error)?,
                        None => deadlines.remove(&**client_id).map_err(engine_error)?,
                    };
                }
                Change::RemoveSession { client_id } => {
                    let client: &str = client_id;
                    let end = range_end(client);
                    sessions.remove(client).map_err(engine_error)?;
                    deadlines.remove(client).map_err(engine_error)?;
                    subscriptions
                        .retain_in((client, "")..(end.as_str(), ""), |_, _| false)
                        .map_err(engine_error)?;
                    for removed in queued
                        .extract_from_if((client, 0u64)..=(client, u64::MAX), |_, _| true)
                        .map_err(engine_error)?
                    {
                        let (_, value) = removed.map_err(engine_error)?;
                        delta -= size(value.value().len());
                    }
                    in_flight
                        .retain_in((client, 0u64)..=(client, u64::MAX), |_, _| false)
                        .map_err(engine_error)?;
                    inbound
                        .retain_in((client, 0u16)..=(client, u16::MAX), |_, _| false)
                        .map_err(engine_error)?;
                    if let Some(old) = wills.remove(client).map_err(engine_error)? {
                        delta -= size(old.value().len());
                    }
                }
                Change::Subscription {
                    client_id,
                    subscription,
                } => {
                    let value = codec::encode_subscription(subscription);
                    subscriptions
                        .insert(
                            (&**client_id, subscription.filter.as_str()),
                            value.as_slice(),
                        )
                        .map_err(engine_error)?;
                }
                Change::RemoveSubscription { client_id, filter } => {
                    subscriptions
                        .remove((&**client_id, filter.as_str()))
                        .map_err(engine_error)?;
                }
                Change::Queued {
                    client_id,
                    seq,
                    outgoing,
                } => {
                    let value = codec::encode_outgoing(outgoing, clock);
                    delta += size(value.len());
                    if let Some(old) = queued
                        .insert((&**client_id, *seq), value.as_slice())
                        .map_err(engine_error)?
                    {
                        delta -= size(old.value().len());
                    }
                }
                Change::InFlight {
                    client_id,
                    seq,
                    packet_id,
                    stage,
                } => {
                    let value = codec::encode_in_flight(*packet_id, *stage);
                    in_flight
                        .insert((&**client_id, *seq), value.as_slice())
                        .map_err(engine_error)?;
                }
                Change::RemoveQueued { client_id, seq } => {
                    if let Some(old) = queued.remove((&**client_id, *seq)).map_err(engine_error)? {
                        delta -= size(old.value().len());
                    }
                    in_flight
                        .remove((&**client_id, *seq))
                        .map_err(engine_error)?;
                }
                Change::InboundAwaitingRelease {
                    client_id,
                    packet_id,
                } => {
                    inbound
                        .insert((&**client_id, packet_id.get()), ())
                        .map_err(engine_error)?;
                }
                Change::RemoveInbound {
                    client_id,
                    packet_id,
                } => {
                    inbound
                        .remove((&**client_id, packet_id.get()))
                        .map_err(engine_error)?;
                }
                Change::Retained(message) => {
                    let mut value = Vec::with_capacity(message.size() + 32);
                    codec::encode_message(message, clock, &mut value);
                    delta += size(value.len());
                    if let Some(old) = retained
                        .insert(message.topic.as_str(), value.as_slice())
                        .map_err(engine_error)?
                    {
                        delta -= size(old.value().len());
                    }
                }
                Change::RemoveRetained(topic) => {
                    if let Some(old) = retained.remove(topic.as_str()).map_err(engine_error)? {
                        delta -= size(old.value().len());
                    }
                }
                Change::Will { client_id, will } => {
                    let value = codec::encode_will(will, clock);
                    delta += size(value.len());
                    if let Some(old) = wills
                        .insert(&**client_id, value.as_slice())
                        .map_err(engine_error)?
                    {
                        delta -= size(old.value().len());
                    }
                }
                Change::RemoveWill { client_id } => {
                    if let Some(old) = wills.remove(&**client_id).map_err(engine_error)? {
                        delta -= size(old.value().len());
                    }
                }
            }
        }
        Ok(delta)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent before anything can panic.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Storage for DurableStorage {
    fn commit(&self, changes: &[Change]) -> Result<(), StorageError> {
        let mut guard = self.database()?;
        let Some(db) = guard.as_ref() else {
            return Err(StorageError::Engine("database is closed".into()));
        };
        let result = db.begin_write().map_err(engine_error).and_then(|tx| {
            // Immediate durability is redb's default: commit returns once synced.
            let delta = match self.apply(&tx, changes) {
                Ok(delta) => delta,
                Err(e) => {
                    let _ = tx.abort();
                    return Err(e);
                }
            };
            tx.commit().map_err(engine_error)?;
            Ok(delta)
        });
        match result {
            Ok(delta) => {
                let stored = self.stored_bytes.load(Ordering::Relaxed);
                let updated = if delta >= 0 {
                    stored.saturating_add(delta.unsigned_abs())
                } else {
                    stored.saturating_sub(delta.unsigned_abs())
                };
                self.stored_bytes.store(updated, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // After an I/O error redb refuses further writes until reopened; the reopen
                // runs its recovery, which drops the failed transaction.
                *guard = None;
                Err(e)
            }
        }
    }

    fn load(&self) -> Result<StoredState, StorageError> {
        if let Some(state) = lock(&self.loaded).take() {
            return Ok(state);
        }
        Ok(self.read_all()?.0)
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn stored_bytes(&self) -> u64 {
        self.stored_bytes.load(Ordering::Relaxed)
    }
}
