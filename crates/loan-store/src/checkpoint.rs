//! Checkpoints in the log: periodic records over everything before them.
//!
//! Why they exist: an aggregate's hash chain ([`crate::chain`]) catches a changed commit
//! and a commit dropped or reordered *inside* the chain, but not a commit dropped from
//! the *end* of a chain, nor an aggregate's whole tail, nor whole commits reordered with
//! their positions renumbered across aggregates. An export's manifest catches those, but
//! it lives outside the log and must itself be trusted. A [`Checkpoint`] lives in the log
//! (JetStream: `<prefix>.checkpoints` in the event stream; SQLite: table `checkpoints`,
//! positions in the same sequence as the commits) and carries the running log hash and
//! the number of commits up to the position just before it, so anything dropped,
//! inserted, reordered or changed before a checkpoint is detected by recomputing the fold
//! ([`CheckpointVerifier`]), with nothing but the log.
//!
//! A checkpoint truly covers "everything before it": it is appended on the condition that
//! nothing was written after the position it covers (JetStream
//! `Nats-Expected-Last-Sequence`; SQLite: computed and inserted inside one write
//! transaction). A commit that races in makes the append fail ([`CheckpointOutcome::Raced`])
//! and the writer simply tries again later; two writers never produce two checkpoints
//! over one position, because the second one's expectation no longer holds.
//!
//! [`CheckpointLog`] is what a backend provides (JetStream and SQLite both do);
//! [`CheckpointWriter`] writes checkpoints periodically (every N commits appended through
//! its [`AppendSignal`], or every T), for the command service and the embedded mode alike.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::chain::{BrokenLink, EMPTY_LOG_HASH, fold_log_hash};
use crate::{GENESIS_HASH, StoreError, chain_hash};

pub use loan_contract::Checkpoint;

/// A checkpoint and where the log put it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// Its log position: `checkpoint.covers + 1`.
    pub position: u64,
    pub checkpoint: Checkpoint,
    /// SHA-256 (hex) of its stored bytes: the `previous_hash` of the next checkpoint.
    pub hash: String,
}

impl CheckpointRecord {
    /// Decodes a checkpoint stored at `position` as `bytes`.
    pub fn decode(position: u64, bytes: &[u8]) -> Result<Self, StoreError> {
        let checkpoint = Checkpoint::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
            position,
            reason: format!("not a checkpoint: {e}"),
        })?;
        Ok(CheckpointRecord {
            position,
            checkpoint,
            hash: chain_hash(bytes),
        })
    }
}

/// Where the last checkpoint (or the start of the log) leaves the fold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBase {
    /// Position of the last checkpoint; 0 at the start of the log.
    pub position: u64,
    /// Its log hash ([`EMPTY_LOG_HASH`] at the start).
    pub log_hash: String,
    /// Its number of commits.
    pub commits: u64,
    /// SHA-256 of its stored bytes ([`GENESIS_HASH`] at the start).
    pub hash: String,
}

impl CheckpointBase {
    /// The start of the log: no checkpoint yet.
    pub fn start() -> Self {
        CheckpointBase {
            position: 0,
            log_hash: EMPTY_LOG_HASH.to_owned(),
            commits: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }

    /// After the checkpoint `record`.
    pub fn after(record: &CheckpointRecord) -> Self {
        CheckpointBase {
            position: record.position,
            log_hash: record.checkpoint.log_hash.clone(),
            commits: record.checkpoint.commits,
            hash: record.hash.clone(),
        }
    }
}

/// The fold from a [`CheckpointBase`] over the commits after it, towards the next
/// checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFold {
    base: CheckpointBase,
    log_hash: String,
    commits: u64,
    /// Position of the last commit folded (the base's position if none).
    last: u64,
}

impl CheckpointFold {
    pub fn new(base: CheckpointBase) -> Self {
        CheckpointFold {
            log_hash: base.log_hash.clone(),
            commits: base.commits,
            last: base.position,
            base,
        }
    }

    pub fn base(&self) -> &CheckpointBase {
        &self.base
    }

    /// Position of the last commit folded (the base's position if none).
    pub fn last_position(&self) -> u64 {
        self.last
    }

    /// Folds the commit at `position` whose chain hash is `commit_hash`.
    pub fn push(&mut self, position: u64, commit_hash: &str) {
        self.log_hash = fold_log_hash(&self.log_hash, position, commit_hash);
        self.commits += 1;
        self.last = position;
    }

    /// Commits folded since the base.
    pub fn commits_since_base(&self) -> u64 {
        self.commits - self.base.commits
    }

    /// The checkpoint covering everything folded (to be stored at `last_position() + 1`).
    pub fn checkpoint(&self, written_at: DateTime<Utc>) -> Checkpoint {
        Checkpoint {
            covers: self.last,
            log_hash: self.log_hash.clone(),
            commits: self.commits,
            previous_position: self.base.position,
            previous_log_hash: self.base.log_hash.clone(),
            previous_hash: self.base.hash.clone(),
            written_at,
        }
    }
}

/// What an attempt to write a checkpoint did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointOutcome {
    /// Written.
    Written(CheckpointRecord),
    /// Nothing to cover: no commit after the last checkpoint.
    UpToDate,
    /// Something was written after the position it would have covered (a commit, or
    /// another writer's checkpoint): nothing was written; try again later.
    Raced { covers: u64 },
}

/// A log that carries checkpoints.
pub trait CheckpointLog: Send + Sync + 'static {
    /// Writes a checkpoint over everything in the log now, if there is a commit after the
    /// last checkpoint and nothing is written meanwhile.
    fn write_checkpoint(
        &self,
        written_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<CheckpointOutcome, StoreError>> + Send;

    /// The last checkpoint, if any.
    fn last_checkpoint(
        &self,
    ) -> impl Future<Output = Result<Option<CheckpointRecord>, StoreError>> + Send;
}

/// Counts the commits appended through one process, and wakes the [`CheckpointWriter`].
/// Clones share the count.
#[derive(Debug, Clone, Default)]
pub struct AppendSignal {
    appended: Arc<AtomicU64>,
    notify: Arc<Notify>,
}

impl AppendSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// One commit was stored.
    pub fn appended(&self) {
        self.appended.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// Commits stored so far.
    pub fn count(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// Waits until at least `target` commits were stored.
    pub async fn reached(&self, target: u64) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count() >= target {
                return;
            }
            notified.await;
        }
    }
}

/// How often checkpoints are written. Either trigger may be off; with both off no
/// checkpoint is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// After this many commits appended through the [`AppendSignal`] (`None`: not by count).
    pub every_commits: Option<u64>,
    /// After this much time (`None`: not by time). A tick with no new commit writes nothing.
    pub every: Option<Duration>,
}

impl Default for Cadence {
    /// Every 1,000 commits or every 60 seconds, whichever comes first.
    fn default() -> Self {
        Cadence {
            every_commits: Some(1000),
            every: Some(Duration::from_secs(60)),
        }
    }
}

impl Cadence {
    pub fn is_off(&self) -> bool {
        self.every_commits.is_none() && self.every.is_none()
    }
}

/// Attempts per trigger: a raced attempt is retried at once (it reads the new head), a
/// few times; then the next trigger tries again.
const ATTEMPTS_PER_TRIGGER: u32 = 3;

/// Writes checkpoints into a [`CheckpointLog`] at a [`Cadence`].
pub struct CheckpointWriter<L> {
    log: L,
    cadence: Cadence,
    signal: AppendSignal,
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl<L: CheckpointLog> CheckpointWriter<L> {
    /// `clock` gives each checkpoint's `written_at`.
    pub fn new(
        log: L,
        cadence: Cadence,
        signal: AppendSignal,
        clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    ) -> Self {
        CheckpointWriter {
            log,
            cadence,
            signal,
            clock,
        }
    }

    /// Writes one checkpoint now if there is anything to cover, retrying a raced attempt
    /// a few times (on demand: the embedded mode, tests, shutdown).
    pub async fn checkpoint_now(&self) -> Result<CheckpointOutcome, StoreError> {
        let mut outcome = CheckpointOutcome::UpToDate;
        for _ in 0..ATTEMPTS_PER_TRIGGER {
            outcome = self.log.write_checkpoint((self.clock)()).await?;
            match &outcome {
                CheckpointOutcome::Written(record) => {
                    info!(
                        position = record.position,
                        covers = record.checkpoint.covers,
                        commits = record.checkpoint.commits,
                        "checkpoint written"
                    );
                    return Ok(outcome);
                }
                CheckpointOutcome::UpToDate => return Ok(outcome),
                CheckpointOutcome::Raced { covers } => {
                    debug!(covers, "a write raced the checkpoint; trying again");
                }
            }
        }
        Ok(outcome)
    }

    /// Runs until `shutdown` completes: waits for the next trigger, writes a checkpoint.
    /// Failures are logged and retried at the next trigger (the log itself is never
    /// blocked by a checkpoint).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        if self.cadence.is_off() {
            shutdown.await;
            return;
        }
        tokio::pin!(shutdown);
        loop {
            let since = self.signal.count();
            let by_count = async {
                match self.cadence.every_commits {
                    Some(n) => self.signal.reached(since.saturating_add(n.max(1))).await,
                    None => std::future::pending().await,
                }
            };
            let by_time = async {
                match self.cadence.every {
                    Some(every) => tokio::time::sleep(every).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = by_count => {}
                () = by_time => {}
            }
            if let Err(error) = self.checkpoint_now().await {
                warn!(%error, "writing a checkpoint failed; trying again at the next trigger");
            }
        }
    }
}

/// Verifies the checkpoints of a log read in order, commit by commit: recomputes the
/// running log hash and the number of commits, and at every checkpoint compares them
/// with what it says and checks that it names the previous checkpoint.
///
/// Read from the start of the log ([`CheckpointVerifier::from_start`]), every checkpoint
/// is checked. Read from the middle ([`CheckpointVerifier::mid_log`]: a partial export),
/// the first checkpoint cannot be recomputed (the commits before the part are missing):
/// it is taken as the base the following ones are checked from.
#[derive(Debug, Clone)]
pub struct CheckpointVerifier {
    /// `None` while reading a part of the log before its first checkpoint.
    fold: Option<CheckpointFold>,
    from_start: bool,
    last: Option<CheckpointRecord>,
    count: u64,
}

/// What a verified log holds of checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckpointHead {
    pub position: u64,
    /// SHA-256 of its stored bytes.
    pub hash: String,
}

impl CheckpointVerifier {
    pub fn from_start() -> Self {
        CheckpointVerifier {
            fold: Some(CheckpointFold::new(CheckpointBase::start())),
            from_start: true,
            last: None,
            count: 0,
        }
    }

    pub fn mid_log() -> Self {
        CheckpointVerifier {
            fold: None,
            from_start: false,
            last: None,
            count: 0,
        }
    }

    /// The commit at `position` with chain hash `commit_hash` (already checked in order).
    pub fn commit(&mut self, position: u64, commit_hash: &str) {
        if let Some(fold) = &mut self.fold {
            fold.push(position, commit_hash);
        }
    }

    /// Checks the checkpoint stored at `position` as `bytes` (already checked in order).
    pub fn checkpoint(&mut self, position: u64, bytes: &[u8]) -> Result<Checkpoint, BrokenLink> {
        let broken = |reason: String| BrokenLink::Checkpoint { position, reason };
        let record = CheckpointRecord::decode(position, bytes).map_err(|e| match e {
            StoreError::Corrupt { reason, .. } => broken(format!("cannot be read ({reason})")),
            other => broken(other.to_string()),
        })?;
        let checkpoint = &record.checkpoint;
        if checkpoint.covers.checked_add(1) != Some(position) {
            return Err(broken(format!(
                "it covers position {} but stands at position {position}: it was moved or renumbered",
                checkpoint.covers
            )));
        }
        match &self.last {
            Some(previous) => {
                if checkpoint.previous_position != previous.position {
                    return Err(broken(format!(
                        "it names the previous checkpoint at position {}, but the previous checkpoint in the log is at position {}: a checkpoint was dropped, inserted or moved",
                        checkpoint.previous_position, previous.position
                    )));
                }
                if checkpoint.previous_hash != previous.hash
                    || checkpoint.previous_log_hash != previous.checkpoint.log_hash
                {
                    return Err(broken(format!(
                        "the previous checkpoint (position {}) hashes to {} with log hash {}, but this one names {} with log hash {}: the previous checkpoint was altered",
                        previous.position,
                        previous.hash,
                        previous.checkpoint.log_hash,
                        checkpoint.previous_hash,
                        checkpoint.previous_log_hash
                    )));
                }
            }
            None if self.from_start && checkpoint.previous_position != 0 => {
                return Err(broken(format!(
                    "it names a previous checkpoint at position {}, which the log does not hold: a checkpoint was dropped",
                    checkpoint.previous_position
                )));
            }
            None => {}
        }
        if let Some(fold) = &self.fold {
            let expected = checkpoint.commits;
            let found = fold.commits;
            let since = fold.base.position;
            let range = if since == 0 {
                format!("at or before position {}", checkpoint.covers)
            } else {
                format!(
                    "between the checkpoint at position {since} and position {}",
                    checkpoint.covers
                )
            };
            if found < expected {
                return Err(broken(format!(
                    "it counts {expected} commits before it, the log holds {found}: {} commit(s) {range} were dropped",
                    expected - found
                )));
            }
            if found > expected {
                return Err(broken(format!(
                    "it counts {expected} commits before it, the log holds {found}: {} commit(s) {range} were inserted",
                    found - expected
                )));
            }
            if fold.log_hash != checkpoint.log_hash {
                return Err(broken(format!(
                    "its log hash is {}, the commits before it fold to {}: a commit {range} was changed, reordered or renumbered (or the checkpoint was altered)",
                    checkpoint.log_hash, fold.log_hash
                )));
            }
        }
        self.fold = Some(CheckpointFold::new(CheckpointBase::after(&record)));
        self.count += 1;
        let checkpoint = record.checkpoint.clone();
        self.last = Some(record);
        Ok(checkpoint)
    }

    /// Checkpoints verified.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The last checkpoint verified.
    pub fn last(&self) -> Option<CheckpointHead> {
        self.last.as_ref().map(|record| CheckpointHead {
            position: record.position,
            hash: record.hash.clone(),
        })
    }
}
