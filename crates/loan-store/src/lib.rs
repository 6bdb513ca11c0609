//! The event store: the one source of truth.
//!
//! [`EventStore`] is what the command service (and, later, the embedded engine) needs
//! from a log: load an aggregate's commits, append one commit with optimistic
//! concurrency, deduplicate by command id, remember applied commands beyond the log's
//! own deduplication window, and read the whole log in order. [`jetstream::JetStreamStore`]
//! implements it on NATS JetStream, [`sqlite::SqliteStore`] on one SQLite file (the
//! embedded mode, and where auditors import an export); [`conformance`] is the test suite
//! every backend must pass.
//!
//! A **commit** ([`Commit`]) is all the events of one command, written as one message:
//! a command is never half in the log.
//!
//! [`checkpoint`] puts periodic checkpoints into the log itself (the running log hash and
//! number of commits before each), written by [`checkpoint::CheckpointWriter`] through
//! [`checkpoint::CheckpointLog`], which both the JetStream and the SQLite store implement.
//!
//! [`keys`] stores the per-customer data keys that encrypt sensitive fields (wrapped by
//! the master key; destroyed to crypto-shred a customer).

pub mod chain;
pub mod checkpoint;
pub mod command_index;
pub mod commit;
pub mod conformance;
pub mod group_commit;
pub mod jetstream;
pub mod keys;
pub mod memory;
pub mod sqlite;

use std::future::Future;

use loan_domain::AggregateType;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use commit::{Commit, GENESIS_HASH, chain_hash, request_digest};

/// Which aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AggregateRef {
    pub aggregate_type: AggregateType,
    pub id: Uuid,
}

impl std::fmt::Display for AggregateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.aggregate_type.as_str(), self.id)
    }
}

/// A commit and where the log put it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Position in the whole log (the JetStream stream sequence), strictly increasing.
    pub position: u64,
    pub commit: Commit,
    /// [`chain_hash`] of the commit's stored bytes.
    pub hash: String,
}

/// Every commit of one aggregate, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    pub commits: Vec<Recorded>,
}

impl History {
    /// [`chain_hash`] of the aggregate's last commit ([`GENESIS_HASH`] if it has none):
    /// the `previous_hash` of its next commit.
    pub fn last_hash(&self) -> &str {
        self.commits
            .last()
            .map_or(GENESIS_HASH, |recorded| recorded.hash.as_str())
    }

    /// Log position of the aggregate's last commit; 0 if it has none. This is what an
    /// append must name as expected (JetStream: `Nats-Expected-Last-Subject-Sequence`).
    pub fn last_position(&self) -> u64 {
        self.commits.last().map_or(0, |recorded| recorded.position)
    }

    /// The aggregate's version: the number of events applied.
    pub fn version(&self) -> u64 {
        self.commits
            .last()
            .map_or(0, |recorded| recorded.commit.version)
    }
}

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Written at `position`; `hash` is the [`chain_hash`] of the bytes written.
    Stored { position: u64, hash: String },
    /// A commit with the same command id was already written at `position` (a retried
    /// publish): nothing new was written.
    Duplicate { position: u64 },
}

/// What the store remembers of an applied command, for idempotency beyond the log's
/// deduplication window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub aggregate: AggregateRef,
    /// Digest of the request payload ([`request_digest`]); a different payload under the
    /// same command id is refused.
    pub request_digest: String,
    /// Aggregate version after the command.
    pub version: u64,
    /// Log position of the commit; `None` when the command produced no events.
    pub position: Option<u64>,
}

/// Why the store could not do what was asked. A [`StoreError::Conflict`] is retried by
/// reloading; [`StoreError::Unavailable`] has an unknown outcome and is retried with the
/// same command id; the others are not retried.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{aggregate} changed concurrently: expected last position {expected}")]
    Conflict {
        aggregate: AggregateRef,
        expected: u64,
    },
    #[error("the event store is unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("commit of {bytes} bytes exceeds the maximum message size of {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("corrupt log entry at position {position}: {reason}")]
    Corrupt { position: u64, reason: String },
    /// An imported commit cannot be written where it says it belongs (the position is
    /// taken, the command id or the aggregate is already in the log, the bytes are not a
    /// commit): nothing of the import was written.
    #[error("import refused at position {position}: {reason}")]
    ImportRefused { position: u64, reason: String },
}

impl StoreError {
    pub(crate) fn unavailable(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Unavailable {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// An append-only log of commits. Implemented by the JetStream store (and the embedded
/// SQLite store); both pass [`conformance`].
pub trait EventStore: Send + Sync + 'static {
    /// Every commit of an aggregate, in order (empty if it does not exist).
    fn load(
        &self,
        aggregate: AggregateRef,
    ) -> impl Future<Output = Result<History, StoreError>> + Send;

    /// Appends one commit if the aggregate's last commit is still at `expected_last`
    /// (0: the aggregate must not exist). Deduplicates by the commit's command id.
    fn append(
        &self,
        commit: &Commit,
        expected_last: u64,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send;

    /// The commit at a log position.
    fn commit_at(
        &self,
        position: u64,
    ) -> impl Future<Output = Result<Option<Recorded>, StoreError>> + Send;

    /// Up to `max` commits after `after` (0 = from the start), in log order.
    fn read_after(
        &self,
        after: u64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Recorded>, StoreError>> + Send;

    /// Remembers an applied command (idempotency beyond the deduplication window).
    fn remember_command(
        &self,
        command_id: Uuid,
        record: &CommandRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// What was remembered of a command id, if anything.
    fn recall_command(
        &self,
        command_id: Uuid,
    ) -> impl Future<Output = Result<Option<CommandRecord>, StoreError>> + Send;
}
