//! The measurement behind the choice of storage engine (docs/decisions.md): fjall (an LSM tree
//! with a journal) against redb (a copy-on-write B-tree), on the broker's durable QoS 1 write
//! pattern. Every message is written three times: its queue record when it arrives, an
//! in-flight mark when it is sent, and the removal of both when the subscriber acknowledges it.
//! A group commit syncs one batch of such changes; the batch size is the number of messages
//! that arrived while the previous sync ran. It also measures a backlog of messages for an
//! offline subscriber: writing it, reopening the store (what a restart costs) and the space on
//! disk.
//!
//! `cargo run --release -p mquictt-store --features compare-engines --example engine_compare`

use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes of one stored queue record: a 64-byte payload, its topic and the record header.
const RECORD: usize = 120;
/// Messages in the backlog scenario.
const BACKLOG: u64 = 50_000;

trait Engine {
    fn name(&self) -> &'static str;
    /// Inserts queue records and in-flight marks, removes both for `removed`, and syncs.
    fn commit(&mut self, inserted: &[u64], removed: &[u64]);
    /// Inserts queue records without removing anything, and syncs.
    fn insert_backlog(&mut self, seqs: &[u64]);
    /// Reads every queue record (what recovery does) and returns how many there are.
    fn scan(&self) -> u64;
}

fn key(client: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(client.len() + 10);
    key.extend_from_slice(&(client.len() as u16).to_be_bytes());
    key.extend_from_slice(client.as_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn value(seq: u64) -> Vec<u8> {
    let mut v = vec![0x5a; RECORD];
    v[..8].copy_from_slice(&seq.to_be_bytes());
    v
}

struct Redb {
    db: redb::Database,
}

const QUEUED: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("queued");
const IN_FLIGHT: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("in_flight");

impl Redb {
    fn open(dir: &Path) -> Self {
        let db = redb::Database::create(dir.join("store.redb")).expect("create redb");
        Self { db }
    }
}

impl Engine for Redb {
    fn name(&self) -> &'static str {
        "redb 4"
    }

    fn commit(&mut self, inserted: &[u64], removed: &[u64]) {
        let tx = self.db.begin_write().expect("begin");
        {
            let mut queued = tx.open_table(QUEUED).expect("table");
            let mut in_flight = tx.open_table(IN_FLIGHT).expect("table");
            for &seq in inserted {
                queued
                    .insert(key("sub", seq).as_slice(), value(seq).as_slice())
                    .expect("insert");
                in_flight
                    .insert(key("sub", seq).as_slice(), [0u8, 1, 0].as_slice())
                    .expect("insert");
            }
            for &seq in removed {
                queued.remove(key("sub", seq).as_slice()).expect("remove");
                in_flight
                    .remove(key("sub", seq).as_slice())
                    .expect("remove");
            }
        }
        tx.commit().expect("commit");
    }

    fn insert_backlog(&mut self, seqs: &[u64]) {
        let tx = self.db.begin_write().expect("begin");
        {
            let mut queued = tx.open_table(QUEUED).expect("table");
            for &seq in seqs {
                queued
                    .insert(key("offline", seq).as_slice(), value(seq).as_slice())
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }

    fn scan(&self) -> u64 {
        use redb::{ReadableDatabase, ReadableTable};
        let tx = self.db.begin_read().expect("read");
        let table = tx.open_table(QUEUED).expect("table");
        let mut n = 0;
        for entry in table.iter().expect("iter") {
            let (_, v) = entry.expect("entry");
            n += u64::from(!v.value().is_empty());
        }
        n
    }
}

struct Fjall {
    db: fjall::Database,
    queued: fjall::Keyspace,
    in_flight: fjall::Keyspace,
}

impl Fjall {
    fn open(dir: &Path) -> Self {
        let db = fjall::Database::builder(dir.join("fjall"))
            .open()
            .expect("open fjall");
        let queued = db
            .keyspace("queued", fjall::KeyspaceCreateOptions::default)
            .expect("keyspace");
        let in_flight = db
            .keyspace("in_flight", fjall::KeyspaceCreateOptions::default)
            .expect("keyspace");
        Self {
            db,
            queued,
            in_flight,
        }
    }
}

impl Engine for Fjall {
    fn name(&self) -> &'static str {
        "fjall 3"
    }

    fn commit(&mut self, inserted: &[u64], removed: &[u64]) {
        let mut batch = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncAll));
        for &seq in inserted {
            batch.insert(&self.queued, key("sub", seq), value(seq));
            batch.insert(&self.in_flight, key("sub", seq), vec![0u8, 1, 0]);
        }
        for &seq in removed {
            batch.remove(&self.queued, key("sub", seq));
            batch.remove(&self.in_flight, key("sub", seq));
        }
        batch.commit().expect("commit");
    }

    fn insert_backlog(&mut self, seqs: &[u64]) {
        let mut batch = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncAll));
        for &seq in seqs {
            batch.insert(&self.queued, key("offline", seq), value(seq));
        }
        batch.commit().expect("commit");
    }

    fn scan(&self) -> u64 {
        let mut n = 0;
        for guard in self.queued.iter() {
            let (_, v) = guard.into_inner().expect("entry");
            n += u64::from(!v.is_empty());
        }
        n
    }
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Streams `messages` through the three writes per message in group commits of `batch`.
fn stream(engine: &mut dyn Engine, batch: u64, messages: u64) -> (f64, Duration, Duration) {
    let mut latencies = Vec::new();
    let start = Instant::now();
    let mut previous: Vec<u64> = Vec::new();
    let mut next = 0;
    while next < messages {
        let current: Vec<u64> = (next..(next + batch).min(messages)).collect();
        next += current.len() as u64;
        let t = Instant::now();
        engine.commit(&current, &previous);
        latencies.push(t.elapsed());
        previous = current;
    }
    engine.commit(&[], &previous);
    let elapsed = start.elapsed();
    latencies.sort();
    (
        messages as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    )
}

fn run(make: &dyn Fn(&Path) -> Box<dyn Engine>) {
    let dir = tempfile::tempdir_in(".").expect("temp dir");
    let mut engine = make(dir.path());
    let name = engine.name();
    for (batch, messages) in [(1, 1_000), (16, 16_000), (128, 64_000)] {
        let (rate, p50, p99) = stream(engine.as_mut(), batch, messages);
        println!(
            "{name:8} batch {batch:>4}: {rate:>9.0} msg/s  commit p50 {:>6.2} ms  p99 {:>6.2} ms",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    let start = Instant::now();
    let seqs: Vec<u64> = (0..BACKLOG).collect();
    for chunk in seqs.chunks(500) {
        engine.insert_backlog(chunk);
    }
    let write = start.elapsed();
    drop(engine);
    let start = Instant::now();
    let engine = make(dir.path());
    let found = engine.scan();
    let reopen = start.elapsed();
    assert_eq!(found, BACKLOG, "every backlog record is read back");
    println!(
        "{name:8} backlog {BACKLOG} msgs: written in {:.2} s, reopened and read in {:.0} ms, {:.1} MiB on disk",
        write.as_secs_f64(),
        reopen.as_secs_f64() * 1e3,
        dir_size(dir.path()) as f64 / (1024.0 * 1024.0)
    );
}

fn main() {
    run(&|dir| Box::new(Redb::open(dir)));
    run(&|dir| Box::new(Fjall::open(dir)));
}
