//! The event store in one SQLite file: the log of the embedded mode, and where an
//! auditor imports an exported history to query it offline.
//!
//! It keeps exactly the guarantees of the JetStream store ([`crate::jetstream`]) and
//! passes the same [`crate::conformance`] suite:
//!
//! * **One commit, one row.** Table `log` holds one row per commit: its log position
//!   (`INTEGER PRIMARY KEY`, strictly increasing from 1 and gap-free for appends), its
//!   aggregate, its command id (`UNIQUE`) and its stored bytes, which are exactly
//!   [`Commit::to_bytes`], the bytes the JetStream store publishes. So the chain hash of
//!   a commit, and with it the aggregate's hash chain, is the same in both stores.
//! * **Optimistic concurrency.** An append runs in a `BEGIN IMMEDIATE` transaction (the
//!   write lock of the whole file, taken before anything is read): it is stored only if
//!   the aggregate's last position is still `expected_last`, else
//!   [`StoreError::Conflict`]. Two handles, or two processes, on one file serialise on
//!   that lock (waiting up to the busy timeout), so exactly one of racing appends wins.
//! * **Idempotent command ids.** An append whose command id is already in the log is
//!   [`Appended::Duplicate`] naming the original position, and writes nothing.
//!   Applied command ids (`remember_command`) live in table `applied_commands`, kept for
//!   as long as the file (JetStream keeps them for a retention period).
//! * **Append-only.** Triggers refuse every `UPDATE` and `DELETE` on `log`. (Whoever can
//!   write the file can drop a trigger; the hash chains are what make such an edit
//!   visible, [`crate::chain`].)
//! * **Durability.** WAL journal, `synchronous = FULL`: an `Ok` append was fsynced to
//!   the write-ahead log before it returned, and survives a crash of the process or of
//!   the machine (docs/operations.md).
//! * **Group commit.** Appends and command records issued concurrently through one handle
//!   are written together in one transaction, so they share one fsync; each keeps its own
//!   outcome (a conflict or a duplicate does not fail its neighbours).
//! * **Bounded commits.** A commit larger than [`SqliteConfig::max_commit_size`] is
//!   [`StoreError::TooLarge`], like JetStream's maximum message size.
//!
//! * **Checkpoints** ([`crate::checkpoint`]) in table `checkpoints` (append-only like
//!   `log`), their positions in the same sequence as the commits: an append takes the
//!   position after the highest of both tables, and a checkpoint is computed and
//!   inserted in one write transaction, so it covers exactly everything before it.
//!   [`EventStore::read_after`] returns commits only; [`SqliteStore::read_entries_after`]
//!   both, for auditors.
//!
//! The schema is versioned with `PRAGMA user_version` and migrated on open inside a
//! `BEGIN IMMEDIATE` transaction, so two processes opening a new file at once migrate it
//! once. [`SqliteStore::begin_import`] writes an exported history at its original
//! positions ([`Import`]); [`SqliteKeyStore`] keeps the customers' data keys in the same
//! file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use loan_domain::AggregateType;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tracing::warn;
use uuid::Uuid;

use crate::checkpoint::{
    Checkpoint, CheckpointBase, CheckpointFold, CheckpointLog, CheckpointOutcome, CheckpointRecord,
};
use crate::keys::{KeyEntry, KeyStore, WrappedDek};
use crate::{
    AggregateRef, Appended, CommandRecord, Commit, EventStore, History, Recorded, StoreError,
    chain_hash,
};

/// The schema, one entry per version: version `n` is `MIGRATIONS[n - 1]`. Append-only:
/// a released entry is never edited, a change is a new entry.
const MIGRATIONS: &[&str] = &[
    // 1: the log, applied command ids, data keys.
    r"
    CREATE TABLE log (
        position       INTEGER PRIMARY KEY CHECK (position > 0),
        aggregate_type TEXT NOT NULL,
        aggregate_id   TEXT NOT NULL,
        command_id     TEXT NOT NULL UNIQUE,
        commit_bytes   BLOB NOT NULL
    ) STRICT;
    CREATE INDEX log_by_aggregate ON log (aggregate_type, aggregate_id, position);
    CREATE TRIGGER log_refuses_update BEFORE UPDATE ON log
    BEGIN
        SELECT RAISE(ABORT, 'the event log is append-only: UPDATE is refused');
    END;
    CREATE TRIGGER log_refuses_delete BEFORE DELETE ON log
    BEGIN
        SELECT RAISE(ABORT, 'the event log is append-only: DELETE is refused');
    END;

    CREATE TABLE applied_commands (
        command_id TEXT PRIMARY KEY,
        record     TEXT NOT NULL
    ) STRICT;

    CREATE TABLE data_keys (
        customer_id TEXT PRIMARY KEY,
        destroyed   INTEGER NOT NULL CHECK (destroyed IN (0, 1)),
        key_id      TEXT,
        alg         TEXT,
        kek_id      TEXT,
        nonce       TEXT,
        wrapped     TEXT,
        CHECK ((destroyed = 1) = (wrapped IS NULL))
    ) STRICT;
    CREATE TRIGGER data_keys_refuse_update BEFORE UPDATE ON data_keys
    BEGIN
        SELECT RAISE(ABORT, 'a data key is created once: UPDATE is refused');
    END;
    CREATE TRIGGER data_keys_keep_tombstones BEFORE DELETE ON data_keys WHEN OLD.destroyed = 1
    BEGIN
        SELECT RAISE(ABORT, 'a destroyed data key stays destroyed: DELETE of its tombstone is refused');
    END;
    ",
    // 2: the log's checkpoints, positions in the same sequence as the log's commits.
    r"
    CREATE TABLE checkpoints (
        position         INTEGER PRIMARY KEY CHECK (position > 0),
        checkpoint_bytes BLOB NOT NULL
    ) STRICT;
    CREATE TRIGGER checkpoints_refuse_update BEFORE UPDATE ON checkpoints
    BEGIN
        SELECT RAISE(ABORT, 'the event log is append-only: UPDATE of a checkpoint is refused');
    END;
    CREATE TRIGGER checkpoints_refuse_delete BEFORE DELETE ON checkpoints
    BEGIN
        SELECT RAISE(ABORT, 'the event log is append-only: DELETE of a checkpoint is refused');
    END;
    ",
];

/// The next free log position: after the highest commit or checkpoint.
const NEXT_POSITION: &str = "(SELECT MAX((SELECT IFNULL(MAX(position), 0) FROM log),
                  (SELECT IFNULL(MAX(position), 0) FROM checkpoints)) + 1)";

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How the store is opened.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// Largest commit accepted, in bytes (the JetStream store's default: 1 MiB).
    pub max_commit_size: usize,
    /// How long a write waits for another handle (or process) holding the write lock.
    pub busy_timeout: Duration,
    /// Connections for concurrent reads (writes take turns on one at a time).
    pub connections: u32,
    /// What an `Ok` append survives.
    pub durability: Durability,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            max_commit_size: 1024 * 1024,
            busy_timeout: Duration::from_secs(10),
            connections: 4,
            durability: Durability::MachineCrash,
        }
    }
}

/// What an acknowledged append survives (SQLite's `synchronous` setting in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL` (the default): fsynced before `Ok`; survives a crash of the
    /// process, of the operating system and a power loss.
    #[default]
    MachineCrash,
    /// `synchronous = NORMAL`: survives a crash of the process; the last appends before a
    /// power loss or operating-system crash can be lost (the file stays consistent, the
    /// hash chains intact). For throwaway data such as `loan demo`'s, where an fsync per
    /// group transaction would dominate the run time.
    ProcessCrash,
}

/// A commit as the file holds it: position, aggregate and stored bytes, not decoded
/// (what auditors verify the hash chains over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCommit {
    pub position: u64,
    pub aggregate: AggregateRef,
    pub bytes: Vec<u8>,
}

/// An entry of the log as the file holds it: a commit or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredEntry {
    Commit(StoredCommit),
    Checkpoint { position: u64, bytes: Vec<u8> },
}

impl StoredEntry {
    pub fn position(&self) -> u64 {
        match self {
            StoredEntry::Commit(commit) => commit.position,
            StoredEntry::Checkpoint { position, .. } => *position,
        }
    }
}

/// [`EventStore`] on one SQLite file. Clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Writes of this handle take turns here before asking SQLite for the write lock, so
    /// they queue in order instead of polling the lock; other handles and processes are
    /// kept out by `BEGIN IMMEDIATE`.
    writer: Arc<Mutex<()>>,
    /// Appends and command records waiting for the next group transaction (group commit).
    pending: Arc<std::sync::Mutex<Vec<PendingWrite>>>,
    /// Group transactions committed and the writes they carried (for the figures).
    groups: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
    config: SqliteConfig,
    path: PathBuf,
}

/// A write of [`SqliteStore::append`] or [`SqliteStore::remember_command`], waiting to be
/// written with the others queued at the same time in one transaction (one fsync).
struct PendingWrite {
    write: GroupWrite,
    reply: tokio::sync::oneshot::Sender<Result<Option<Appended>, StoreError>>,
}

enum GroupWrite {
    Append {
        aggregate: AggregateRef,
        command_id: Uuid,
        expected_last: u64,
        bytes: Vec<u8>,
    },
    Remember {
        command_id: Uuid,
        record: String,
    },
}

fn unavailable(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    let context = context.into();
    move |error| StoreError::unavailable(context, error)
}

fn to_i64(value: u64) -> Option<i64> {
    i64::try_from(value).ok()
}

fn parse_aggregate_type(text: &str) -> Option<AggregateType> {
    AggregateType::parse(text)
}

impl SqliteStore {
    /// Opens the store at `path`, creating and migrating the file if needed.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteConfig::default(), true).await
    }

    /// Opens an existing store (never creates a file: a mistyped path is an error, not a
    /// new empty log).
    pub async fn open_existing(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteConfig::default(), false).await
    }

    /// Opens the store at `path` with `config`; `create` allows creating the file.
    pub async fn open_with(
        path: impl AsRef<Path>,
        config: SqliteConfig,
        create: bool,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match config.durability {
                Durability::MachineCrash => SqliteSynchronous::Full,
                Durability::ProcessCrash => SqliteSynchronous::Normal,
            })
            .busy_timeout(config.busy_timeout)
            .foreign_keys(true)
            // Deleted content (a destroyed data key) is overwritten with zeros on its page.
            .pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(config.connections.max(1))
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(unavailable(format!("opening {}", path.display())))?;
        let store = SqliteStore {
            pool,
            writer: Arc::new(Mutex::new(())),
            pending: Arc::new(std::sync::Mutex::new(Vec::new())),
            groups: Arc::default(),
            config,
            path,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The data keys kept in the same file.
    pub fn key_store(&self) -> SqliteKeyStore {
        SqliteKeyStore {
            store: self.clone(),
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let context = format!("migrating {}", self.path.display());
        let _turn = self.writer.lock().await;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable(context.clone()))?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable(context.clone()))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Unavailable {
                context: format!(
                    "{} has schema version {version}; this build knows versions up to {SCHEMA_VERSION} (upgrade the binary)",
                    self.path.display()
                ),
                source: None,
            });
        }
        let from = usize::try_from(version).unwrap_or(0);
        for (ddl, to) in MIGRATIONS.iter().skip(from).zip(from + 1..) {
            sqlx::raw_sql(ddl)
                .execute(&mut *tx)
                .await
                .map_err(unavailable(format!("{context} to version {to}")))?;
            // PRAGMA takes no bound parameters; `to` is a number of ours.
            sqlx::raw_sql(&format!("PRAGMA user_version = {to}"))
                .execute(&mut *tx)
                .await
                .map_err(unavailable(context.clone()))?;
        }
        tx.commit().await.map_err(unavailable(context))
    }

    /// Starts a write: this handle's turn, then SQLite's write lock.
    async fn begin_write(
        &self,
        what: &str,
    ) -> Result<(OwnedMutexGuard<()>, Transaction<'static, Sqlite>), StoreError> {
        let turn = Arc::clone(&self.writer).lock_owned().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable(format!("starting {what}")))?;
        Ok((turn, tx))
    }

    /// Queues `write` and waits for its outcome. Whoever gets this handle's turn writes
    /// everything queued by then in ONE `BEGIN IMMEDIATE` transaction (group commit):
    /// concurrent commands of different aggregates share one fsync, and each write keeps
    /// its own outcome (a conflict or a duplicate does not fail its neighbours). If the
    /// transaction cannot be committed, every write in it is `Unavailable` (an unknown
    /// outcome, retried with the same command id like any other).
    async fn write_in_group(&self, write: GroupWrite) -> Result<Option<Appended>, StoreError> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(PendingWrite { write, reply });
        {
            let _turn = self.writer.lock().await;
            let group = std::mem::take(
                &mut *self
                    .pending
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            );
            if !group.is_empty() {
                self.write_group(group).await;
            }
        }
        outcome.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable {
                context: "the group transaction holding this write was abandoned".into(),
                source: None,
            })
        })
    }

    async fn write_group(&self, group: Vec<PendingWrite>) {
        let context = format!(
            "writing a group of {} to {}",
            group.len(),
            self.path.display()
        );
        let failed = |group: Vec<PendingWrite>, reason: String| {
            for pending in group {
                let _ = pending.reply.send(Err(StoreError::Unavailable {
                    context: reason.clone(),
                    source: None,
                }));
            }
        };
        let mut tx = match self.pool.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(error) => return failed(group, format!("{context}: {error}")),
        };
        let mut outcomes = Vec::with_capacity(group.len());
        for pending in &group {
            let outcome = match &pending.write {
                GroupWrite::Append {
                    aggregate,
                    command_id,
                    expected_last,
                    bytes,
                } => Self::append_in(&mut tx, *aggregate, *command_id, *expected_last, bytes)
                    .await
                    .map(Some),
                GroupWrite::Remember { command_id, record } => sqlx::query(
                    "INSERT OR REPLACE INTO applied_commands (command_id, record) VALUES (?, ?)",
                )
                .bind(command_id.to_string())
                .bind(record)
                .execute(&mut *tx)
                .await
                .map(|_| None)
                .map_err(unavailable(format!("remembering command {command_id}"))),
            };
            if let Err(error @ StoreError::Unavailable { .. }) = &outcome {
                // The database failed, not the write: nothing of the group is kept.
                let reason = format!("{context}: {error}");
                let _ = tx.rollback().await;
                return failed(group, reason);
            }
            outcomes.push(outcome);
        }
        if let Err(error) = tx.commit().await {
            return failed(group, format!("{context}: commit: {error}"));
        }
        self.groups
            .0
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.groups.1.fetch_add(
            u64::try_from(group.len()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        for (pending, outcome) in group.into_iter().zip(outcomes) {
            let _ = pending.reply.send(outcome);
        }
    }

    /// One append inside a group transaction: a duplicate command id or a stale
    /// expectation is the append's own outcome and writes nothing.
    async fn append_in(
        tx: &mut Transaction<'static, Sqlite>,
        aggregate: AggregateRef,
        command_id: Uuid,
        expected_last: u64,
        bytes: &[u8],
    ) -> Result<Appended, StoreError> {
        let context = format!("appending to {aggregate}");
        let duplicate: Option<i64> =
            sqlx::query_scalar("SELECT position FROM log WHERE command_id = ?")
                .bind(command_id.to_string())
                .fetch_optional(&mut **tx)
                .await
                .map_err(unavailable(context.clone()))?;
        if let Some(position) = duplicate {
            return Ok(Appended::Duplicate {
                position: u64::try_from(position).unwrap_or(0),
            });
        }
        let last: i64 = sqlx::query_scalar(
            "SELECT IFNULL(MAX(position), 0) FROM log WHERE aggregate_type = ? AND aggregate_id = ?",
        )
        .bind(aggregate.aggregate_type.as_str())
        .bind(aggregate.id.to_string())
        .fetch_one(&mut **tx)
        .await
        .map_err(unavailable(context.clone()))?;
        if to_i64(expected_last) != Some(last) {
            return Err(StoreError::Conflict {
                aggregate,
                expected: expected_last,
            });
        }
        // After the highest commit or checkpoint: positions are one sequence.
        let position: i64 = sqlx::query_scalar(&format!(
            "INSERT INTO log (position, aggregate_type, aggregate_id, command_id, commit_bytes)
             VALUES ({NEXT_POSITION}, ?, ?, ?, ?)
             RETURNING position"
        ))
        .bind(aggregate.aggregate_type.as_str())
        .bind(aggregate.id.to_string())
        .bind(command_id.to_string())
        .bind(bytes)
        .fetch_one(&mut **tx)
        .await
        .map_err(unavailable(context))?;
        Ok(Appended::Stored {
            position: u64::try_from(position).unwrap_or(0),
            hash: chain_hash(bytes),
        })
    }

    /// Group transactions committed through this handle, and the appends and command
    /// records they carried: `writes / groups` is the average group size.
    pub fn group_commit_stats(&self) -> (u64, u64) {
        (
            self.groups.0.load(std::sync::atomic::Ordering::Relaxed),
            self.groups.1.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// The position of the last commit (0 when there is none): where readers of the
    /// commits catch up to.
    pub async fn head(&self) -> Result<u64, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT IFNULL(MAX(position), 0) FROM log")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable("reading the log's head"))?;
        Ok(u64::try_from(head).unwrap_or(0))
    }

    /// The last position of the log, commit or checkpoint (0 when empty).
    pub async fn end(&self) -> Result<u64, StoreError> {
        let end: i64 = sqlx::query_scalar(&format!("SELECT {NEXT_POSITION} - 1"))
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable("reading the log's end"))?;
        Ok(u64::try_from(end).unwrap_or(0))
    }

    /// Up to `max` entries (commits and checkpoints) after position `after`, in log
    /// order, as stored.
    pub async fn read_entries_after(
        &self,
        after: u64,
        max: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let after = to_i64(after).unwrap_or(i64::MAX);
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT position, aggregate_type, aggregate_id, commit_bytes FROM log WHERE position > ?1
             UNION ALL
             SELECT position, NULL, NULL, checkpoint_bytes FROM checkpoints WHERE position > ?1
             ORDER BY position LIMIT ?2",
        )
        .bind(after)
        .bind(max)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable(format!("reading after position {after}")))?;
        rows.iter()
            .map(|row| {
                let kind: Option<String> = row.get(1);
                if kind.is_some() {
                    return Self::stored(row).map(StoredEntry::Commit);
                }
                let position: i64 = row.get(0);
                Ok(StoredEntry::Checkpoint {
                    position: u64::try_from(position).unwrap_or(0),
                    bytes: row.get(3),
                })
            })
            .collect()
    }

    /// Up to `max` checkpoints after position `after`, in log order.
    pub async fn checkpoints_after(
        &self,
        after: u64,
        max: usize,
    ) -> Result<Vec<CheckpointRecord>, StoreError> {
        let after = to_i64(after).unwrap_or(i64::MAX);
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT position, checkpoint_bytes FROM checkpoints WHERE position > ? ORDER BY position LIMIT ?",
        )
        .bind(after)
        .bind(max)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable("reading checkpoints"))?;
        rows.into_iter()
            .map(|(position, bytes)| {
                CheckpointRecord::decode(u64::try_from(position).unwrap_or(0), &bytes)
            })
            .collect()
    }

    fn stored(row: &SqliteRow) -> Result<StoredCommit, StoreError> {
        let position: i64 = row.get(0);
        let position = u64::try_from(position).unwrap_or(0);
        let kind: String = row.get(1);
        let id: String = row.get(2);
        let bytes: Vec<u8> = row.get(3);
        let corrupt = |reason: String| StoreError::Corrupt { position, reason };
        let aggregate_type = parse_aggregate_type(&kind)
            .ok_or_else(|| corrupt(format!("unknown aggregate type {kind:?}")))?;
        let id = Uuid::from_str(&id).map_err(|e| corrupt(format!("aggregate id {id:?}: {e}")))?;
        Ok(StoredCommit {
            position,
            aggregate: AggregateRef { aggregate_type, id },
            bytes,
        })
    }

    fn decode(stored: StoredCommit) -> Result<Recorded, StoreError> {
        let position = stored.position;
        let commit = Commit::from_bytes(&stored.bytes).map_err(|e| StoreError::Corrupt {
            position,
            reason: e.to_string(),
        })?;
        if commit.aggregate != stored.aggregate {
            return Err(StoreError::Corrupt {
                position,
                reason: format!(
                    "the row is filed under {} but the commit is of {}",
                    stored.aggregate, commit.aggregate
                ),
            });
        }
        Ok(Recorded {
            position,
            hash: chain_hash(&stored.bytes),
            commit,
        })
    }

    /// Up to `max` commits after position `after`, in log order, as stored (undecoded).
    pub async fn read_stored_after(
        &self,
        after: u64,
        max: usize,
    ) -> Result<Vec<StoredCommit>, StoreError> {
        let after = to_i64(after).unwrap_or(i64::MAX);
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT position, aggregate_type, aggregate_id, commit_bytes FROM log
             WHERE position > ? ORDER BY position LIMIT ?",
        )
        .bind(after)
        .bind(max)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable(format!("reading after position {after}")))?;
        rows.iter().map(Self::stored).collect()
    }

    /// Starts writing an exported history at its original positions: see [`Import`].
    /// Nothing is visible to readers (or written) until [`Import::commit`].
    pub async fn begin_import(&self) -> Result<Import, StoreError> {
        let (turn, tx) = self.begin_write("an import").await?;
        Ok(Import {
            _turn: turn,
            tx,
            max_commit_size: self.config.max_commit_size,
            last: None,
            commits: 0,
            aggregates: HashSet::new(),
        })
    }
}

impl EventStore for SqliteStore {
    async fn load(&self, aggregate: AggregateRef) -> Result<History, StoreError> {
        let rows = sqlx::query(
            "SELECT position, aggregate_type, aggregate_id, commit_bytes FROM log
             WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY position",
        )
        .bind(aggregate.aggregate_type.as_str())
        .bind(aggregate.id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable(format!("loading {aggregate}")))?;
        let commits = rows
            .iter()
            .map(|row| Self::stored(row).and_then(Self::decode))
            .collect::<Result<_, _>>()?;
        Ok(History { commits })
    }

    async fn append(&self, commit: &Commit, expected_last: u64) -> Result<Appended, StoreError> {
        let bytes = commit.to_bytes();
        if bytes.len() > self.config.max_commit_size {
            return Err(StoreError::TooLarge {
                bytes: bytes.len(),
                max: self.config.max_commit_size,
            });
        }
        let appended = self
            .write_in_group(GroupWrite::Append {
                aggregate: commit.aggregate,
                command_id: commit.command_id,
                expected_last,
                bytes,
            })
            .await?;
        appended.ok_or_else(|| StoreError::Unavailable {
            context: format!("appending to {}: no outcome", commit.aggregate),
            source: None,
        })
    }

    async fn commit_at(&self, position: u64) -> Result<Option<Recorded>, StoreError> {
        let Some(at) = to_i64(position) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT position, aggregate_type, aggregate_id, commit_bytes FROM log WHERE position = ?",
        )
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable(format!("reading position {position}")))?;
        row.map(|row| Self::stored(&row).and_then(Self::decode))
            .transpose()
    }

    async fn read_after(&self, after: u64, max: usize) -> Result<Vec<Recorded>, StoreError> {
        self.read_stored_after(after, max)
            .await?
            .into_iter()
            .map(Self::decode)
            .collect()
    }

    async fn remember_command(
        &self,
        command_id: Uuid,
        record: &CommandRecord,
    ) -> Result<(), StoreError> {
        let record = serde_json::to_string(record).unwrap_or_default();
        self.write_in_group(GroupWrite::Remember { command_id, record })
            .await
            .map(|_| ())
    }

    async fn recall_command(&self, command_id: Uuid) -> Result<Option<CommandRecord>, StoreError> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT record FROM applied_commands WHERE command_id = ?")
                .bind(command_id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable(format!("recalling command {command_id}")))?;
        value
            .map(|text| {
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    position: 0,
                    reason: format!("applied command {command_id}: {e}"),
                })
            })
            .transpose()
    }
}

impl SqliteStore {
    async fn last_checkpoint_in(
        executor: impl sqlx::SqliteExecutor<'_>,
    ) -> Result<Option<CheckpointRecord>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT position, checkpoint_bytes FROM checkpoints ORDER BY position DESC LIMIT 1",
        )
        .fetch_optional(executor)
        .await
        .map_err(unavailable("reading the last checkpoint"))?;
        row.map(|(position, bytes)| {
            CheckpointRecord::decode(u64::try_from(position).unwrap_or(0), &bytes)
        })
        .transpose()
    }
}

impl CheckpointLog for SqliteStore {
    /// Computed and inserted in one write transaction: nothing can be written between
    /// reading the log's end and inserting the checkpoint after it, so it never races.
    async fn write_checkpoint(
        &self,
        written_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<CheckpointOutcome, StoreError> {
        let context = "writing a checkpoint";
        let (_turn, mut tx) = self.begin_write(context).await?;
        let base = match Self::last_checkpoint_in(&mut *tx).await? {
            Some(record) => CheckpointBase::after(&record),
            None => CheckpointBase::start(),
        };
        let end: i64 = sqlx::query_scalar(&format!("SELECT {NEXT_POSITION} - 1"))
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable(context))?;
        let end = u64::try_from(end).unwrap_or(0);
        if end <= base.position {
            tx.rollback().await.map_err(unavailable(context))?;
            return Ok(CheckpointOutcome::UpToDate);
        }
        let mut fold = CheckpointFold::new(base);
        loop {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT position, commit_bytes FROM log WHERE position > ? AND position <= ?
                 ORDER BY position LIMIT 1000",
            )
            .bind(to_i64(fold.last_position()).unwrap_or(i64::MAX))
            .bind(to_i64(end).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable(context))?;
            if rows.is_empty() {
                break;
            }
            for (position, bytes) in rows {
                fold.push(u64::try_from(position).unwrap_or(0), &chain_hash(&bytes));
            }
        }
        if fold.commits_since_base() == 0 || fold.last_position() != end {
            tx.rollback().await.map_err(unavailable(context))?;
            return Ok(CheckpointOutcome::UpToDate);
        }
        let checkpoint = fold.checkpoint(written_at);
        let bytes = checkpoint.to_bytes();
        let position = end + 1;
        sqlx::query("INSERT INTO checkpoints (position, checkpoint_bytes) VALUES (?, ?)")
            .bind(to_i64(position).unwrap_or(i64::MAX))
            .bind(&bytes)
            .execute(&mut *tx)
            .await
            .map_err(unavailable(context))?;
        tx.commit().await.map_err(unavailable(context))?;
        Ok(CheckpointOutcome::Written(CheckpointRecord {
            position,
            checkpoint,
            hash: chain_hash(&bytes),
        }))
    }

    async fn last_checkpoint(&self) -> Result<Option<CheckpointRecord>, StoreError> {
        Self::last_checkpoint_in(&self.pool).await
    }
}

/// An exported history being written at its original log positions with its exact
/// bytes, in one transaction: all of it lands at [`Import::commit`], or none of it
/// (dropping an `Import` rolls it back).
///
/// Each [`Import::push`] is refused ([`StoreError::ImportRefused`]) if its position is
/// not above the previous one, is already taken in the store, if its command id is
/// already in the log, if its aggregate already has commits in the store (an imported
/// chain is never spliced onto one the store already holds), or if its bytes are not a
/// commit; a commit larger than the maximum is [`StoreError::TooLarge`]. The hash chains
/// themselves are checked by the caller (`loan audit import` verifies the export first).
/// Appends after an import continue after the highest position.
pub struct Import {
    _turn: OwnedMutexGuard<()>,
    tx: Transaction<'static, Sqlite>,
    max_commit_size: usize,
    last: Option<u64>,
    commits: u64,
    aggregates: HashSet<AggregateRef>,
}

impl Import {
    /// Writes the commit stored as `bytes` at `position` (visible at [`Import::commit`]).
    pub async fn push(&mut self, position: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let refused = |reason: String| StoreError::ImportRefused { position, reason };
        if bytes.len() > self.max_commit_size {
            return Err(StoreError::TooLarge {
                bytes: bytes.len(),
                max: self.max_commit_size,
            });
        }
        let Some(at) = to_i64(position).filter(|p| *p > 0) else {
            return Err(refused("not a log position".into()));
        };
        if let Some(last) = self.last.filter(|last| position <= *last) {
            return Err(refused(format!(
                "positions must increase; it follows position {last}"
            )));
        }
        let commit = Commit::from_bytes(bytes)
            .map_err(|e| refused(format!("the bytes are not a commit: {e}")))?;
        let context = format!("importing position {position}");
        self.refuse_taken(position, at, &context).await?;
        let same_command: Option<i64> =
            sqlx::query_scalar("SELECT position FROM log WHERE command_id = ?")
                .bind(commit.command_id.to_string())
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(unavailable(context.clone()))?;
        if let Some(other) = same_command {
            return Err(refused(format!(
                "command {} is already in the log at position {other}",
                commit.command_id
            )));
        }
        if self.aggregates.insert(commit.aggregate) {
            let existing: Option<i64> = sqlx::query_scalar(
                "SELECT position FROM log WHERE aggregate_type = ? AND aggregate_id = ? LIMIT 1",
            )
            .bind(commit.aggregate.aggregate_type.as_str())
            .bind(commit.aggregate.id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(unavailable(context.clone()))?;
            if let Some(other) = existing {
                return Err(refused(format!(
                    "{} already has commits in the store (position {other}); an imported chain is not spliced onto it",
                    commit.aggregate
                )));
            }
        }
        sqlx::query(
            "INSERT INTO log (position, aggregate_type, aggregate_id, command_id, commit_bytes)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(at)
        .bind(commit.aggregate.aggregate_type.as_str())
        .bind(commit.aggregate.id.to_string())
        .bind(commit.command_id.to_string())
        .bind(bytes)
        .execute(&mut *self.tx)
        .await
        .map_err(unavailable(context))?;
        self.last = Some(position);
        self.commits += 1;
        Ok(())
    }

    /// Refuses a position some commit or checkpoint of the store already holds.
    async fn refuse_taken(
        &mut self,
        position: u64,
        at: i64,
        context: &str,
    ) -> Result<(), StoreError> {
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT 'a commit of ' || aggregate_type || '/' || aggregate_id FROM log WHERE position = ?1
             UNION ALL SELECT 'a checkpoint' FROM checkpoints WHERE position = ?1",
        )
        .bind(at)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(unavailable(context.to_owned()))?;
        match taken {
            Some(holder) => Err(StoreError::ImportRefused {
                position,
                reason: format!(
                    "the position is already taken (by {holder}); was this history imported before?"
                ),
            }),
            None => Ok(()),
        }
    }

    /// Writes the checkpoint stored as `bytes` at `position` (visible at
    /// [`Import::commit`]); refused like a commit if the position is not above the
    /// previous one or is taken, or if the bytes are not a checkpoint.
    pub async fn push_checkpoint(&mut self, position: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let refused = |reason: String| StoreError::ImportRefused { position, reason };
        let Some(at) = to_i64(position).filter(|p| *p > 0) else {
            return Err(refused("not a log position".into()));
        };
        if let Some(last) = self.last.filter(|last| position <= *last) {
            return Err(refused(format!(
                "positions must increase; it follows position {last}"
            )));
        }
        Checkpoint::from_bytes(bytes)
            .map_err(|e| refused(format!("the bytes are not a checkpoint: {e}")))?;
        let context = format!("importing the checkpoint at position {position}");
        self.refuse_taken(position, at, &context).await?;
        sqlx::query("INSERT INTO checkpoints (position, checkpoint_bytes) VALUES (?, ?)")
            .bind(at)
            .bind(bytes)
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable(context))?;
        self.last = Some(position);
        Ok(())
    }

    /// Commits the import (one fsync); returns the number of commits written.
    pub async fn commit(self) -> Result<u64, StoreError> {
        let commits = self.commits;
        self.tx
            .commit()
            .await
            .map_err(unavailable("committing the import"))?;
        Ok(commits)
    }
}

/// [`KeyStore`] in the store's SQLite file (table `data_keys`): one row per customer,
/// created once (`INSERT … ON CONFLICT DO NOTHING`, so the first writer's key wins) and
/// destroyed for good: the row is deleted with `secure_delete` on (its bytes are
/// overwritten with zeros on the page), a tombstone row takes its place (triggers refuse
/// to update a key or delete a tombstone), and the write-ahead log is checkpointed and
/// truncated so no older copy of the page stays in it.
#[derive(Clone)]
pub struct SqliteKeyStore {
    store: SqliteStore,
}

impl SqliteKeyStore {
    async fn entry(&self, customer: Uuid) -> Result<Option<KeyEntry>, StoreError> {
        let row = sqlx::query(
            "SELECT destroyed, key_id, alg, kek_id, nonce, wrapped FROM data_keys WHERE customer_id = ?",
        )
        .bind(customer.to_string())
        .fetch_optional(&self.store.pool)
        .await
        .map_err(unavailable("reading a data key"))?;
        Ok(row.map(|row| Self::key_entry(&row)))
    }

    fn key_entry(row: &SqliteRow) -> KeyEntry {
        let destroyed: i64 = row.get(0);
        if destroyed == 1 {
            return KeyEntry::Destroyed;
        }
        let text = |i: usize| row.get::<Option<String>, _>(i).unwrap_or_default();
        KeyEntry::Active(WrappedDek {
            key_id: text(1),
            alg: text(2),
            kek_id: text(3),
            nonce: text(4),
            wrapped: text(5),
        })
    }

    async fn create_entry(&self, customer: Uuid, key: &WrappedDek) -> Result<KeyEntry, StoreError> {
        let context = format!("creating the data key of customer {customer}");
        let (_turn, mut tx) = self.store.begin_write(&context).await?;
        sqlx::query(
            "INSERT INTO data_keys (customer_id, destroyed, key_id, alg, kek_id, nonce, wrapped)
             VALUES (?, 0, ?, ?, ?, ?, ?) ON CONFLICT (customer_id) DO NOTHING",
        )
        .bind(customer.to_string())
        .bind(&key.key_id)
        .bind(&key.alg)
        .bind(&key.kek_id)
        .bind(&key.nonce)
        .bind(&key.wrapped)
        .execute(&mut *tx)
        .await
        .map_err(unavailable(context.clone()))?;
        let row = sqlx::query(
            "SELECT destroyed, key_id, alg, kek_id, nonce, wrapped FROM data_keys WHERE customer_id = ?",
        )
        .bind(customer.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable(context.clone()))?;
        let entry = Self::key_entry(&row);
        tx.commit().await.map_err(unavailable(context))?;
        Ok(entry)
    }

    async fn destroy_entry(&self, customer: Uuid) -> Result<(), StoreError> {
        let context = format!("destroying the data key of customer {customer}");
        {
            let (_turn, mut tx) = self.store.begin_write(&context).await?;
            sqlx::query("DELETE FROM data_keys WHERE customer_id = ? AND destroyed = 0")
                .bind(customer.to_string())
                .execute(&mut *tx)
                .await
                .map_err(unavailable(context.clone()))?;
            sqlx::query(
                "INSERT INTO data_keys (customer_id, destroyed) VALUES (?, 1)
                 ON CONFLICT (customer_id) DO NOTHING",
            )
            .bind(customer.to_string())
            .execute(&mut *tx)
            .await
            .map_err(unavailable(context.clone()))?;
            tx.commit().await.map_err(unavailable(context.clone()))?;
        }
        // The page with the key was zeroed in the new WAL frame; older frames still hold
        // it until the WAL is copied back and truncated.
        let mut connection = self
            .store
            .pool
            .acquire()
            .await
            .map_err(unavailable(context.clone()))?;
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut *connection)
            .await
            .map_err(unavailable(context))?;
        if busy != 0 {
            warn!(
                %customer,
                "data key destroyed, but a reader kept the write-ahead log from being truncated: \
                 older copies of its page stay in the -wal file until the next checkpoint"
            );
        }
        Ok(())
    }
}

impl KeyStore for SqliteKeyStore {
    fn get(&self, customer: Uuid) -> BoxFuture<'_, Result<Option<KeyEntry>, StoreError>> {
        Box::pin(self.entry(customer))
    }

    fn create<'a>(
        &'a self,
        customer: Uuid,
        key: &'a WrappedDek,
    ) -> BoxFuture<'a, Result<KeyEntry, StoreError>> {
        Box::pin(self.create_entry(customer, key))
    }

    fn destroy(&self, customer: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.destroy_entry(customer))
    }
}
