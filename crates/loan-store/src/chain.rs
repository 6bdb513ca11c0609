//! Tamper evidence: verifying the hash chains of a log, commit by commit.
//!
//! Every commit names the [`chain_hash`] of its aggregate's previous commit
//! (`previous_hash`), so changing a commit's bytes, dropping one or reordering two breaks
//! the link at the aggregate's next commit. The *log hash* folds every commit of the whole
//! log, in order, into one running value (`H(n) = SHA-256(H(n-1) ‖ position ‖ hash(n))`),
//! so a dropped last commit of an aggregate, or a truncated log, is caught by comparing
//! the log hash (and the chain heads) with a checkpoint or an export's manifest.
//!
//! The log itself carries that comparison periodically: [`crate::checkpoint`] records,
//! each holding the log hash and the number of commits before it.
//!
//! [`ChainVerifier`] reads the log as stored bytes, in log order, one entry at a time (an
//! export of millions of commits never has to fit in memory), checks the chains and the
//! checkpoints ([`ChainVerifier::push_checkpoint`]), and names the first broken link. It
//! is pure: the caller brings the bytes from JetStream, SQLite or a file.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::{Checkpoint, CheckpointHead, CheckpointVerifier};
use crate::{AggregateRef, Commit, GENESIS_HASH, chain_hash};

/// Log hash before the first commit.
pub const EMPTY_LOG_HASH: &str = GENESIS_HASH;

/// The next log hash after the commit at `position` whose chain hash is `commit_hash`.
pub fn fold_log_hash(previous: &str, position: u64, commit_hash: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(previous.as_bytes());
    hasher.update(position.to_be_bytes());
    hasher.update(commit_hash.as_bytes());
    hex::encode(hasher.finalize())
}

/// Where an aggregate's chain ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub version: u64,
    pub position: u64,
    pub hash: String,
}

/// Where an aggregate's chain stands just before the first commit of a partial log: the
/// `previous_hash` and `base_version` that commit must carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainAnchor {
    pub version: u64,
    pub hash: String,
}

/// What a verified log (or part of one) contains.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChainSummary {
    pub commits: u64,
    pub events: u64,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    /// The log hash after the last commit.
    pub log_hash: String,
    /// The last commit of every aggregate, keyed `<type>/<id>`.
    pub heads: BTreeMap<String, ChainHead>,
    /// Checkpoints verified (absent from manifests written before checkpoints existed).
    #[serde(default)]
    pub checkpoints: u64,
    /// The last checkpoint verified.
    #[serde(default)]
    pub last_checkpoint: Option<CheckpointHead>,
}

/// The first place where the log is not what its chains say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokenLink {
    #[error("position {position}: the commit cannot be read ({reason})")]
    Unreadable { position: u64, reason: String },
    #[error("position {position} comes after position {previous}: the log is out of order")]
    OutOfOrder { position: u64, previous: u64 },
    #[error(
        "position {position} ({aggregate} version {version}): previous_hash {found} does not match the \
         aggregate's previous commit ({expected}): a commit before it was changed, dropped or reordered"
    )]
    WrongPrevious {
        position: u64,
        aggregate: String,
        version: u64,
        expected: String,
        found: String,
    },
    #[error(
        "position {position} ({aggregate}): starts at version {found_base}, but the aggregate is at version {expected_base}"
    )]
    VersionGap {
        position: u64,
        aggregate: String,
        expected_base: u64,
        found_base: u64,
    },
    #[error("checkpoint at position {position}: {reason}")]
    Checkpoint { position: u64, reason: String },
    #[error("{what}: expected {expected}, found {found}")]
    Mismatch {
        what: String,
        expected: String,
        found: String,
    },
}

impl BrokenLink {
    /// The log position of the broken link, when it is one commit's.
    pub fn position(&self) -> Option<u64> {
        match self {
            BrokenLink::Unreadable { position, .. }
            | BrokenLink::OutOfOrder { position, .. }
            | BrokenLink::WrongPrevious { position, .. }
            | BrokenLink::VersionGap { position, .. }
            | BrokenLink::Checkpoint { position, .. } => Some(*position),
            BrokenLink::Mismatch { .. } => None,
        }
    }
}

/// Checks commits (and checkpoints) in log order.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    heads: HashMap<AggregateRef, ChainHead>,
    /// Aggregates whose head is still an anchor (no commit of theirs pushed yet).
    anchored: HashSet<AggregateRef>,
    summary: ChainSummary,
    checkpoints: CheckpointVerifier,
    /// Position of the last entry pushed, commit or checkpoint.
    last_entry: Option<u64>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// For a log read from its beginning.
    pub fn new() -> Self {
        ChainVerifier {
            heads: HashMap::new(),
            anchored: HashSet::new(),
            summary: ChainSummary {
                log_hash: EMPTY_LOG_HASH.to_owned(),
                ..ChainSummary::default()
            },
            checkpoints: CheckpointVerifier::from_start(),
            last_entry: None,
        }
    }

    /// For a log read from somewhere after its start (a partial export): the first
    /// checkpoint is taken as the base the next ones are checked from, since the commits
    /// it covers are not all read ([`CheckpointVerifier::mid_log`]).
    #[must_use]
    pub fn mid_log(mut self) -> Self {
        self.checkpoints = CheckpointVerifier::mid_log();
        self
    }

    fn check_order(&mut self, position: u64) -> Result<(), BrokenLink> {
        if let Some(previous) = self.last_entry {
            if position <= previous {
                return Err(BrokenLink::OutOfOrder { position, previous });
            }
        }
        Ok(())
    }

    /// Checks the checkpoint stored at `position` as `bytes`: the commits pushed since the
    /// previous one must fold to its log hash and count, and it must name the previous
    /// checkpoint ([`CheckpointVerifier`]).
    pub fn push_checkpoint(
        &mut self,
        position: u64,
        bytes: &[u8],
    ) -> Result<Checkpoint, BrokenLink> {
        self.check_order(position)?;
        let checkpoint = self.checkpoints.checkpoint(position, bytes)?;
        self.last_entry = Some(position);
        Ok(checkpoint)
    }

    /// For part of a log (an export of a time range or of one customer): each anchored
    /// aggregate's chain continues from `anchor` (the `previous_hash` and `base_version`
    /// of its first commit in the part) instead of from the genesis hash. Aggregates
    /// without an anchor start at the genesis hash. The log hash still starts at
    /// [`EMPTY_LOG_HASH`] and folds only the commits pushed.
    pub fn with_anchors(anchors: impl IntoIterator<Item = (AggregateRef, ChainAnchor)>) -> Self {
        let mut verifier = Self::new();
        for (aggregate, anchor) in anchors {
            verifier.anchor(aggregate, anchor);
        }
        verifier
    }

    /// Anchors one aggregate (see [`ChainVerifier::with_anchors`]) before its first commit
    /// is pushed; `false` (and nothing changes) if a commit of it was already pushed.
    pub fn anchor(&mut self, aggregate: AggregateRef, anchor: ChainAnchor) -> bool {
        if self.heads.contains_key(&aggregate) && !self.anchored.contains(&aggregate) {
            return false;
        }
        self.heads.insert(
            aggregate,
            ChainHead {
                version: anchor.version,
                position: 0,
                hash: anchor.hash,
            },
        );
        self.anchored.insert(aggregate);
        true
    }

    /// Checks the commit stored at `position` as `bytes`, returning it decoded.
    pub fn push(&mut self, position: u64, bytes: &[u8]) -> Result<Commit, BrokenLink> {
        self.check_order(position)?;
        let commit = Commit::from_bytes(bytes).map_err(|e| BrokenLink::Unreadable {
            position,
            reason: e.to_string(),
        })?;
        let (expected_hash, expected_base) = match self.heads.get(&commit.aggregate) {
            Some(head) => (head.hash.as_str(), head.version),
            None => (GENESIS_HASH, 0),
        };
        if commit.previous_hash != expected_hash {
            return Err(BrokenLink::WrongPrevious {
                position,
                aggregate: commit.aggregate.to_string(),
                version: commit.version,
                expected: expected_hash.to_owned(),
                found: commit.previous_hash.clone(),
            });
        }
        if commit.base_version != expected_base || commit.version < commit.base_version {
            return Err(BrokenLink::VersionGap {
                position,
                aggregate: commit.aggregate.to_string(),
                expected_base,
                found_base: commit.base_version,
            });
        }
        self.anchored.remove(&commit.aggregate);
        let hash = chain_hash(bytes);
        self.summary.log_hash = fold_log_hash(&self.summary.log_hash, position, &hash);
        self.checkpoints.commit(position, &hash);
        self.last_entry = Some(position);
        self.summary.commits += 1;
        self.summary.events += commit.events.len() as u64;
        self.summary.first_position.get_or_insert(position);
        self.summary.last_position = Some(position);
        self.heads.insert(
            commit.aggregate,
            ChainHead {
                version: commit.version,
                position,
                hash,
            },
        );
        Ok(commit)
    }

    /// The log hash so far.
    pub fn log_hash(&self) -> &str {
        &self.summary.log_hash
    }

    /// What was verified.
    /// An anchored aggregate without any commit pushed has no head in the summary.
    pub fn finish(self) -> ChainSummary {
        let mut summary = self.summary;
        summary.checkpoints = self.checkpoints.count();
        summary.last_checkpoint = self.checkpoints.last();
        let anchored = self.anchored;
        summary.heads = self
            .heads
            .into_iter()
            .filter(|(aggregate, _)| !anchored.contains(aggregate))
            .map(|(aggregate, head)| (aggregate.to_string(), head))
            .collect();
        summary
    }
}

/// Compares a verified log with what a manifest or checkpoint says it should be; names
/// the first difference.
pub fn compare(expected: &ChainSummary, found: &ChainSummary) -> Result<(), BrokenLink> {
    let mismatch = |what: &str, e: String, f: String| BrokenLink::Mismatch {
        what: what.to_owned(),
        expected: e,
        found: f,
    };
    if expected.commits != found.commits {
        return Err(mismatch(
            "number of commits",
            expected.commits.to_string(),
            found.commits.to_string(),
        ));
    }
    if expected.last_position != found.last_position {
        return Err(mismatch(
            "last position",
            format!("{:?}", expected.last_position),
            format!("{:?}", found.last_position),
        ));
    }
    for (aggregate, head) in &expected.heads {
        match found.heads.get(aggregate) {
            Some(other) if other == head => {}
            Some(other) => {
                return Err(mismatch(
                    &format!("chain head of {aggregate}"),
                    format!(
                        "version {} at {} ({})",
                        head.version, head.position, head.hash
                    ),
                    format!(
                        "version {} at {} ({})",
                        other.version, other.position, other.hash
                    ),
                ));
            }
            None => {
                return Err(mismatch(
                    &format!("chain head of {aggregate}"),
                    format!("version {}", head.version),
                    "no commit".into(),
                ));
            }
        }
    }
    if expected.log_hash != found.log_hash {
        return Err(mismatch(
            "log hash",
            expected.log_hash.clone(),
            found.log_hash.clone(),
        ));
    }
    if expected.checkpoints != found.checkpoints
        || expected.last_checkpoint != found.last_checkpoint
    {
        return Err(mismatch(
            "checkpoints",
            format!(
                "{} ending at {:?}",
                expected.checkpoints, expected.last_checkpoint
            ),
            format!(
                "{} ending at {:?}",
                found.checkpoints, found.last_checkpoint
            ),
        ));
    }
    Ok(())
}
