//! The checkpoint record: what the log says about everything before it.
//!
//! Per-aggregate hash chains ([`crate::event`] commits name their predecessor's hash)
//! catch a changed commit and a dropped or reordered commit *inside* an aggregate's
//! chain, but not a commit dropped from the end of a chain, nor an aggregate's whole
//! tail. A checkpoint, written into the log itself on `<prefix>.checkpoints`, closes that
//! gap without trusting anything outside the log: it carries the running log hash over
//! every commit before it and their number, and it names the previous checkpoint, so the
//! checkpoints form a chain of their own. It is part of the wire contract because an
//! auditor reads it from the stream or an export (`proto/checkpoint.json`).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One checkpoint, as stored (single-line JSON) on `<prefix>.checkpoints`.
///
/// The log hash is the one of `loan_store::chain`: `H₀ = 64 zeros`,
/// `Hₙ = SHA-256(Hₙ₋₁ ‖ position as 8 bytes big-endian ‖ hex chain hash of commit n)`,
/// folded over every commit of the log in order (checkpoints themselves are not folded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The log position just before the checkpoint: it was appended on the condition
    /// that nothing else had been written after this position.
    pub covers: u64,
    /// The running log hash over every commit at or before `covers`.
    pub log_hash: String,
    /// How many commits the log holds at or before `covers`.
    pub commits: u64,
    /// Position of the previous checkpoint; 0 for the log's first checkpoint.
    pub previous_position: u64,
    /// The previous checkpoint's `log_hash` (64 zeros for the first checkpoint): this
    /// checkpoint's hash continues the fold from there.
    pub previous_log_hash: String,
    /// SHA-256 (hex) of the previous checkpoint's stored bytes (64 zeros for the first),
    /// so a checkpoint changed in any field breaks the link at the next one.
    pub previous_hash: String,
    /// When the checkpoint was written.
    pub written_at: DateTime<Utc>,
}

impl Checkpoint {
    /// The stored bytes (single-line JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Plain data; serialising it cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
