//! The embedded projector: the read models in one SQLite file, filled from any
//! [`EventStore`] in the same process — no NATS, no PostgreSQL (the embedded mode and
//! `loan demo`).
//!
//! It is the live projector's twin with another log and another database: commits are
//! read in log order with [`EventStore::read_after`], decoded with the engine's vault
//! exactly as the live runner decodes them (sensitive fields masked, `erased` after
//! crypto-shredding), applied to the same views by the same code ([`crate::batch`]), and
//! the same rows ([`crate::rows`]) are written — only the statements differ
//! ([`sqlite`]). The guarantees are the live runner's:
//!
//! * **Exactly-once effect.** A batch's rows, quarantine, dead letters and the group's
//!   checkpoint commit in ONE SQLite transaction (`BEGIN IMMEDIATE`); the next batch
//!   reads the log after the checkpoint, so a process stopped anywhere resumes with no
//!   lost and no doubled effect.
//! * **No silent skip.** A commit that cannot be applied quarantines its aggregate
//!   (rows flagged stale, a `quarantine` row, dead letters) while the others flow.
//! * **Rebuild and replay** ([`EmbeddedProjector::rebuild`],
//!   [`EmbeddedProjector::replay_and_compare`]) from position 0 into scratch tables.

mod rebuild;
mod sqlite;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

use loan_engine::{CommitReader, Vault};
use loan_store::{AggregateRef, EventStore, Recorded};
use lru::LruCache;
use serde_json::Value;
use sqlx::{SqliteConnection, SqlitePool};
use tracing::{debug, info, warn};

pub use rebuild::EmbeddedRebuild;
pub use sqlite::{migrate, open_read_models};

use crate::batch::{Fold, Item, Origin, decode_commit, fold_history};
use crate::runner::StepOutcome;
use crate::view::{Poison, View, handles};
use crate::{Group, ProjectionError};

/// How the embedded projector works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Commits per batch (one transaction each, per group).
    pub batch_size: usize,
    /// Aggregates whose views each group keeps in memory (least recently used evicted;
    /// an evicted one is rebuilt from its commits in the log when it moves again).
    pub cache_capacity: usize,
    /// The groups projected.
    pub groups: Vec<Group>,
}

impl Default for EmbeddedOptions {
    /// Batches of 500, caches of 200,000 aggregates, both groups (as the live projector).
    fn default() -> Self {
        EmbeddedOptions {
            batch_size: 500,
            cache_capacity: 200_000,
            groups: Group::ALL.to_vec(),
        }
    }
}

/// Projects an event log into the SQLite read models, group by group.
pub struct EmbeddedProjector<S: EventStore> {
    store: Arc<S>,
    vault: Vault,
    pool: SqlitePool,
    options: EmbeddedOptions,
    projections: Vec<Projection>,
}

impl<S: EventStore> std::fmt::Debug for EmbeddedProjector<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedProjector")
            .field("options", &self.options)
            .field(
                "checkpoints",
                &self
                    .projections
                    .iter()
                    .map(|p| (p.target.group, p.checkpoint))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<S: EventStore> EmbeddedProjector<S> {
    /// Opens (creating it if needed) the SQLite file at `path`, runs its migrations, and
    /// prepares the projector of `store`. `vault` must hold the engine's master key and
    /// key store (it unwraps the customers' data keys to mask their fields).
    pub async fn open(
        path: &Path,
        store: Arc<S>,
        vault: Vault,
        options: EmbeddedOptions,
    ) -> Result<Self, ProjectionError> {
        let pool = open_read_models(path).await?;
        Self::with_pool(pool, store, vault, options).await
    }

    /// The same on a pool of one's own (the migrations run on it).
    pub async fn with_pool(
        pool: SqlitePool,
        store: Arc<S>,
        vault: Vault,
        options: EmbeddedOptions,
    ) -> Result<Self, ProjectionError> {
        if options.batch_size == 0 {
            return Err(ProjectionError::Config(
                "batch_size must be at least 1".into(),
            ));
        }
        migrate(&pool).await?;
        let mut groups = options.groups.clone();
        groups.sort();
        groups.dedup();
        let projections = groups
            .into_iter()
            .map(|group| Projection::new(Target::live(group), options.cache_capacity))
            .collect();
        Ok(EmbeddedProjector {
            store,
            vault,
            pool,
            options,
            projections,
        })
    }

    /// The SQLite pool of the read models (for queries next to the projector).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The group's checkpoint as this projector last committed or loaded it (`None` for
    /// a group it does not project, or before its first batch).
    pub fn checkpoint(&self, group: Group) -> Option<u64> {
        self.projections
            .iter()
            .find(|p| p.target.group == group && p.loaded)
            .map(|p| p.checkpoint)
    }

    /// Applies one batch per group (commits after its checkpoint, up to `batch_size`).
    pub async fn step(&mut self) -> Result<Vec<(Group, StepOutcome)>, ProjectionError> {
        let log = Log {
            store: self.store.as_ref(),
            vault: &self.vault,
            pool: &self.pool,
            batch_size: self.options.batch_size,
        };
        let mut out = Vec::with_capacity(self.projections.len());
        for projection in &mut self.projections {
            match projection.step(&log).await {
                Ok(outcome) => out.push((projection.target.group, outcome)),
                Err(error) => {
                    projection.fail(log.pool, &error).await;
                    return Err(error);
                }
            }
        }
        Ok(out)
    }

    /// Runs batches until every group has applied the whole log as it stands, and
    /// returns the position reached: the head of the log (the lowest of the groups'
    /// checkpoints, should commits arrive meanwhile).
    pub async fn catch_up(&mut self) -> Result<u64, ProjectionError> {
        let log = Log {
            store: self.store.as_ref(),
            vault: &self.vault,
            pool: &self.pool,
            batch_size: self.options.batch_size,
        };
        let mut reached = None;
        for projection in &mut self.projections {
            let at = projection.catch_up(&log).await?;
            reached = Some(reached.map_or(at, |r: u64| r.min(at)));
        }
        Ok(reached.unwrap_or(0))
    }

    fn projection_mut(&mut self, group: Group) -> Result<&mut Projection, ProjectionError> {
        self.projections
            .iter_mut()
            .find(|p| p.target.group == group)
            .ok_or_else(|| {
                ProjectionError::Config(format!("this projector does not project group {group}"))
            })
    }
}

/// What a projection reads from and writes to.
struct Log<'a, S> {
    store: &'a S,
    vault: &'a Vault,
    pool: &'a SqlitePool,
    batch_size: usize,
}

/// Where a projection writes: the live tables, or a rebuild's or replay's scratch tables.
#[derive(Debug, Clone)]
struct Target {
    group: Group,
    /// Checkpoint row (and quarantine / dead-letter key).
    projection: String,
    /// Tables are named `<prefix><table>` (empty for the live tables).
    prefix: String,
}

impl Target {
    fn live(group: Group) -> Self {
        Target {
            group,
            projection: group.name().to_owned(),
            prefix: String::new(),
        }
    }

    /// Scratch tables `<kind>_<table>` with the checkpoint `<group>@<kind>`.
    fn scratch(group: Group, kind: &str) -> Self {
        Target {
            group,
            projection: format!("{}@{kind}", group.name()),
            prefix: format!("{kind}_"),
        }
    }
}

/// A commit from the store, as a dead letter records it.
impl Origin for Recorded {
    fn subject(&self) -> String {
        // The embedded log has no subjects: the aggregate the commit belongs to.
        self.commit.aggregate.to_string()
    }

    fn payload(&self) -> Value {
        serde_json::to_value(&self.commit).unwrap_or(Value::Null)
    }
}

/// One group projected into one set of tables: its views, quarantine and checkpoint.
struct Projection {
    target: Target,
    cache: LruCache<AggregateRef, View>,
    quarantined: HashMap<AggregateRef, u64>,
    checkpoint: u64,
    generation: i64,
    /// False until checkpoint and quarantine are loaded from the database.
    loaded: bool,
}

impl Projection {
    fn new(target: Target, cache_capacity: usize) -> Self {
        Projection {
            target,
            cache: LruCache::new(NonZeroUsize::new(cache_capacity).unwrap_or(NonZeroUsize::MIN)),
            quarantined: HashMap::new(),
            checkpoint: 0,
            generation: 0,
            loaded: false,
        }
    }

    /// Forgets everything in memory: the next step reloads from the database.
    fn reset(&mut self) {
        self.loaded = false;
        self.cache.clear();
    }

    async fn fail(&mut self, pool: &SqlitePool, error: &ProjectionError) {
        warn!(projection = %self.target.projection, %error, "batch failed");
        self.reset();
        if !matches!(error, ProjectionError::Superseded { .. }) {
            let _ = sqlite::record_error(pool, &self.target.projection, &error.to_string()).await;
        }
    }

    async fn ensure_loaded(&mut self, pool: &SqlitePool) -> Result<(), ProjectionError> {
        if self.loaded {
            return Ok(());
        }
        let mut conn = pool.acquire().await?;
        let (checkpoint, generation) =
            sqlite::checkpoint(&mut conn, &self.target.projection).await?;
        self.quarantined = sqlite::quarantine(&mut conn, &self.target.projection).await?;
        self.checkpoint = checkpoint;
        self.generation = generation;
        self.cache.clear();
        self.loaded = true;
        info!(projection = %self.target.projection, checkpoint, quarantined = self.quarantined.len(), "projection state loaded");
        Ok(())
    }

    /// Runs batches until the log has nothing after the checkpoint; failures are
    /// recorded and retried from the stored checkpoint (at most five in a row).
    async fn catch_up<S: EventStore>(&mut self, log: &Log<'_, S>) -> Result<u64, ProjectionError> {
        let mut failures = 0;
        loop {
            match self.step(log).await {
                Ok(outcome) if outcome.fetched == 0 => return Ok(self.checkpoint),
                Ok(_) => failures = 0,
                Err(error) => {
                    self.fail(log.pool, &error).await;
                    failures += 1;
                    if failures > 5 {
                        return Err(error);
                    }
                }
            }
        }
    }

    /// Reads, applies and commits one batch.
    async fn step<S: EventStore>(
        &mut self,
        log: &Log<'_, S>,
    ) -> Result<StepOutcome, ProjectionError> {
        self.ensure_loaded(log.pool).await?;
        let records = log
            .store
            .read_after(self.checkpoint, log.batch_size)
            .await?;
        let mut outcome = StepOutcome {
            fetched: records.len(),
            checkpoint: self.checkpoint,
            ..StepOutcome::default()
        };
        let mut last_position = self.checkpoint;
        for record in &records {
            if record.position <= last_position {
                return Err(ProjectionError::OutOfOrder {
                    projection: self.target.projection.clone(),
                    expected: last_position + 1,
                    got: record.position,
                });
            }
            last_position = record.position;
        }
        if records.is_empty() {
            return Ok(outcome);
        }
        let items = self.decode(log.vault, &records).await?;
        let preloaded = self.preload(log, &items).await?;

        let mut tx = log.pool.begin_with("BEGIN IMMEDIATE").await?;
        self.verify(&mut tx).await?;
        let mut fold = Fold::new(self.target.group, self.quarantined.clone(), preloaded);
        for (record, item) in records.iter().zip(items) {
            fold.push(&mut self.cache, record.position, item, record);
        }
        sqlite::write(&mut tx, &self.target.prefix, fold.changes()).await?;
        sqlite::write_quarantine(
            &mut tx,
            self.target.group,
            &self.target.projection,
            &self.target.prefix,
            &fold.new_quarantine,
        )
        .await?;
        sqlite::write_dead_letters(&mut tx, &self.target.projection, &fold.dead).await?;
        sqlite::advance_checkpoint(
            &mut tx,
            &self.target.projection,
            last_position,
            fold.error(),
        )
        .await?;
        tx.commit().await?;

        for row in &fold.new_quarantine {
            warn!(projection = %self.target.projection, aggregate = %row.aggregate, position = row.position, reason = %row.poison.reason, "aggregate quarantined");
        }
        outcome.applied = fold.applied;
        outcome.dead_lettered = fold.dead.len();
        outcome.quarantined = fold.new_quarantine.len();
        self.quarantined = fold.settle(&mut self.cache);
        self.checkpoint = last_position;
        outcome.checkpoint = last_position;
        debug!(projection = %self.target.projection, ?outcome, "batch applied");
        Ok(outcome)
    }

    /// Decodes the commits of a batch (outside the transaction).
    async fn decode(
        &self,
        vault: &Vault,
        records: &[Recorded],
    ) -> Result<Vec<Item>, ProjectionError> {
        let mut reader = CommitReader::new(vault);
        let mut items = Vec::with_capacity(records.len());
        for record in records {
            if !handles(self.target.group, record.commit.aggregate.aggregate_type) {
                items.push(Item::Ignore);
                continue;
            }
            // The record stays whole: a dead letter records the commit as stored.
            items.push(decode_commit(&mut reader, record.position, record.commit.clone()).await?);
        }
        Ok(items)
    }

    /// Views of aggregates that continue (base version > 0) but are not in memory:
    /// rebuilt from their commits in the log up to the checkpoint.
    async fn preload<S: EventStore>(
        &mut self,
        log: &Log<'_, S>,
        items: &[Item],
    ) -> Result<HashMap<AggregateRef, Result<View, Poison>>, ProjectionError> {
        let mut out = HashMap::new();
        for item in items {
            let Item::Apply {
                aggregate, commit, ..
            } = item
            else {
                continue;
            };
            if commit.base_version == 0
                || out.contains_key(aggregate)
                || self.quarantined.contains_key(aggregate)
                || self.cache.contains(aggregate)
            {
                continue;
            }
            let history = log.store.load(*aggregate).await?;
            let mut reader = CommitReader::new(log.vault);
            let mut commits = Vec::with_capacity(history.commits.len());
            for recorded in history.commits {
                if recorded.position > self.checkpoint {
                    break;
                }
                let item = decode_commit(&mut reader, recorded.position, recorded.commit).await?;
                commits.push((recorded.position, item));
            }
            let (view, _rows) = fold_history(self.target.group, *aggregate, commits);
            out.insert(*aggregate, view);
        }
        Ok(out)
    }

    /// Checks, inside the batch's transaction, that nobody moved the checkpoint, replaced
    /// the tables (generation) or changed the quarantine since it was loaded.
    async fn verify(&mut self, conn: &mut SqliteConnection) -> Result<(), ProjectionError> {
        let current = sqlite::checkpoint(conn, &self.target.projection).await?;
        let quarantine = sqlite::quarantine(conn, &self.target.projection).await?;
        let same_quarantine = quarantine.len() == self.quarantined.len()
            && quarantine.keys().all(|a| self.quarantined.contains_key(a));
        if current != (self.checkpoint, self.generation) || !same_quarantine {
            self.reset();
            return Err(ProjectionError::Superseded {
                projection: self.target.projection.clone(),
            });
        }
        Ok(())
    }
}
