//! The commit: all events of one command, stored as one log entry.

use chrono::{DateTime, Utc};
use loan_contract::event::StoredEvent;
use loan_domain::CommandKind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AggregateRef;

/// One command's events. `version` is the aggregate version after the commit (the
/// version of its last event); the log position is assigned by the store.
///
/// Commits of one aggregate form a hash chain: `previous_hash` is the SHA-256 of the
/// stored bytes of the aggregate's previous commit ([`chain_hash`]), [`GENESIS_HASH`] for
/// its first. Changing, dropping or reordering a commit breaks the chain at the next one
/// ([`crate::chain`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    pub command_id: Uuid,
    pub command: CommandKind,
    pub aggregate: AggregateRef,
    /// Aggregate version before the commit.
    pub base_version: u64,
    /// Aggregate version after the commit.
    pub version: u64,
    pub recorded_at: DateTime<Utc>,
    /// [`request_digest`] of the command payload.
    pub request_digest: String,
    /// [`chain_hash`] of the aggregate's previous commit as stored; [`GENESIS_HASH`] for
    /// the first.
    pub previous_hash: String,
    /// The events in their stored form (sensitive fields already encrypted by the writer).
    pub events: Vec<StoredEvent>,
}

impl Commit {
    pub fn to_bytes(&self) -> Vec<u8> {
        // A commit is plain data; serialising it cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// `previous_hash` of an aggregate's first commit.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 (hex) of a commit's stored bytes: the link of the aggregate's hash chain.
pub fn chain_hash(stored: &[u8]) -> String {
    hex::encode(Sha256::digest(stored))
}

/// SHA-256 (hex) of a request payload in canonical JSON (object keys sorted, no
/// whitespace): the same command sent twice has the same digest whatever its formatting.
pub fn request_digest(payload: &serde_json::Value) -> String {
    // serde_json's Map is ordered by key, so serialising a Value is canonical.
    let canonical = serde_json::to_vec(payload).unwrap_or_default();
    hex::encode(Sha256::digest(&canonical))
}
