//! Projectors: the read models, built from the event log — in PostgreSQL from the
//! JetStream stream ([`runner`]), or in one SQLite file from any event store in the same
//! process ([`embedded`], the embedded mode). Both backends share one projection code
//! path: the views, what a batch does with them and the rows they produce are computed
//! once; only the statements writing rows, checkpoint, quarantine and dead letters
//! differ, and both hold identical values.
//!
//! Analysts, collection teams and risk managers read the portfolio from tables that
//! projectors derive from the JetStream stream (docs/read-models.md). Each **projection
//! group** ([`Group`]) owns some tables and runs on its own durable pull consumer, so a
//! group can run in its own process, lag and be rebuilt without the others:
//!
//! * [`Group::Portfolio`]: `customers`, `credit_scores`, `loans`, `loan_timeline`,
//!   `decisions`, `collection_cases` (customer 360, loans, follow-up timeline, decision
//!   reasons, the collections queue);
//! * [`Group::Delinquency`]: `installments`, `allocations` (installment-level data for
//!   days past due and aging as of any date).
//!
//! What a group guarantees ([`runner`]):
//!
//! * **Exactly-once effect.** A batch of up to [`ProjectorConfig::batch_size`] commits is
//!   written in ONE transaction together with the group's checkpoint (the stream
//!   sequence of its last commit), with one multi-row statement per table, and
//!   acknowledged after the commit. A message at or below the checkpoint is skipped, so a
//!   redelivery changes nothing, and a process killed anywhere resumes from the checkpoint.
//! * **Money figures from the domain.** Each loan's domain state is kept in memory
//!   (rebuilt from the stream up to the checkpoint after a restart) and advanced with the
//!   domain's own `evolve`; outstanding balances, next due, days past due, allocations and
//!   settlement dates come from `loan_domain::servicing`, never from arithmetic of our own.
//! * **No silent skip.** An aggregate whose commit cannot be applied is quarantined
//!   ([`replay_aggregate`] clears it after a fix); the rest keeps flowing.
//! * **Rebuild without downtime** ([`rebuild`]): from sequence 0 into a fresh schema while
//!   the live one serves, then one transaction switches schemas.
//! * **Lag and health** per projection ([`lag`]).
//!
//! Sensitive fields are decrypted with the engine's vault only to be masked
//! (`masked()`), or shown as `erased` after crypto-shredding; the read model never holds
//! them in clear.

mod batch;
mod collections;
mod delinquency;
pub mod embedded;
mod health;
mod history;
mod portfolio;
mod postgres;
mod rebuild;
mod replay;
mod rows;
pub mod runner;
mod schema;
mod view;

use std::sync::Arc;
use std::time::Duration;

use loan_contract::Subjects;
use loan_engine::{MasterKey, Vault};
use loan_store::StoreError;
use loan_store::keys::{JetStreamKeyStore, KeyStoreConfig};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub use health::{ProjectionHealth, lag};
pub use rebuild::{RebuildReport, ReplayComparison, TableComparison, rebuild, replay_and_compare};
pub use replay::{ReplayOutcome, replay_aggregate};
pub use runner::{EventMessage, GroupProjector, Projector, StepOutcome};
pub use schema::migrate;

/// The version of the segment rules recorded with every customer row.
pub const SEGMENT_RULES_VERSION: &str = "segments/v1 (risk-grade/v1, value-tier/v1)";

/// A projection group: a set of read-model tables built by one consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// customers, credit_scores, loans, loan_timeline, decisions, collection_cases.
    Portfolio,
    /// installments, allocations.
    Delinquency,
}

impl Group {
    pub const ALL: [Group; 2] = [Group::Portfolio, Group::Delinquency];

    /// The group's name: its checkpoint row and the suffix of its durable consumer.
    pub fn name(self) -> &'static str {
        match self {
            Group::Portfolio => "portfolio",
            Group::Delinquency => "delinquency",
        }
    }

    /// The read-model tables the group owns (a rebuild replaces exactly these).
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Group::Portfolio => &[
                "customers",
                "credit_scores",
                "loans",
                "loan_timeline",
                "decisions",
                "collection_cases",
            ],
            Group::Delinquency => &["installments", "allocations"],
        }
    }

    pub fn parse(name: &str) -> Result<Group, ProjectionError> {
        Group::ALL
            .into_iter()
            .find(|group| group.name() == name)
            .ok_or_else(|| {
                ProjectionError::Config(format!(
                    "unknown projection group {name:?}: expected portfolio or delinquency"
                ))
            })
    }
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything a projector needs; usable from a CLI (every field has a flag-friendly type).
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// e.g. `nats://127.0.0.1:4222`.
    pub nats_url: String,
    /// The event stream, e.g. `LENDING_EVENTS`.
    pub stream: String,
    /// Subject prefix of the events (`<prefix>.events.>`), e.g. `lending`.
    pub subject_prefix: String,
    /// e.g. `postgres://projector@db/lending`.
    pub database_url: String,
    /// The engine's master key: unwraps the customers' data keys to mask their fields.
    pub master_key: MasterKey,
    /// Replicas of the key bucket if it has to be created (it normally exists).
    pub key_bucket_replicas: usize,
    /// Commits per batch (one transaction each).
    pub batch_size: usize,
    /// The groups this process runs (each on its own task and consumer).
    pub groups: Vec<Group>,
    /// Durable consumer names are `<consumer_prefix>-<group>`.
    pub consumer_prefix: String,
    /// How long a fetch waits for new commits when the projection is caught up.
    pub idle_wait: Duration,
    /// Aggregates whose domain state each group keeps in memory (least recently used
    /// evicted; an evicted one is reloaded from the stream when it moves again).
    pub cache_capacity: usize,
    /// Pause after a failed batch before retrying it.
    pub retry_backoff: Duration,
    /// Connections in the PostgreSQL pool.
    pub max_connections: u32,
}

impl ProjectorConfig {
    /// Defaults: batches of 500, both groups, consumers `projector-<group>`.
    pub fn new(
        nats_url: impl Into<String>,
        stream: impl Into<String>,
        subject_prefix: impl Into<String>,
        database_url: impl Into<String>,
        master_key: MasterKey,
    ) -> Self {
        ProjectorConfig {
            nats_url: nats_url.into(),
            stream: stream.into(),
            subject_prefix: subject_prefix.into(),
            database_url: database_url.into(),
            master_key,
            key_bucket_replicas: 1,
            batch_size: 500,
            groups: Group::ALL.to_vec(),
            consumer_prefix: "projector".into(),
            idle_wait: Duration::from_millis(250),
            cache_capacity: 200_000,
            retry_backoff: Duration::from_secs(1),
            max_connections: 8,
        }
    }

    pub(crate) fn subjects(&self) -> Result<Subjects, ProjectionError> {
        Subjects::new(self.subject_prefix.clone()).map_err(ProjectionError::Config)
    }

    pub(crate) fn consumer_name(&self, group: Group) -> String {
        format!("{}-{}", self.consumer_prefix, group.name())
    }
}

/// Why a projector operation failed. Poisoned events are not errors: they quarantine
/// their aggregate and the projection goes on.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("invalid configuration: {0}")]
    Config(String),
    /// PostgreSQL, or the SQLite file of the embedded read models.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("schema migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("NATS ({context}): {message}")]
    Nats { context: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The checkpoint moved under this projector (a rebuild was switched in, or another
    /// instance wrote it): it resumes from the stored checkpoint.
    #[error("projection {projection} was changed by someone else; resuming from its checkpoint")]
    Superseded { projection: String },
    /// The consumer delivered a commit out of order (a gap after the checkpoint).
    #[error("projection {projection} expected position {expected}, got {got}; repositioning")]
    OutOfOrder {
        projection: String,
        expected: u64,
        got: u64,
    },
    #[error("{0}")]
    Rebuild(String),
    /// Rows computed for a table do not have the table's shape (a bug: nothing is written).
    #[error("inconsistent rows: {0}")]
    Rows(String),
}

impl ProjectionError {
    pub(crate) fn nats(context: impl Into<String>, error: impl std::fmt::Display) -> Self {
        ProjectionError::Nats {
            context: context.into(),
            message: error.to_string(),
        }
    }
}

/// The connections a projector works with, shared by its groups.
pub(crate) struct Env {
    pub(crate) config: ProjectorConfig,
    pub(crate) subjects: Subjects,
    pub(crate) pool: PgPool,
    pub(crate) stream: async_nats::jetstream::stream::Stream,
    pub(crate) vault: Vault,
}

impl Env {
    /// Connects to NATS (stream, key bucket) and PostgreSQL, and runs the migrations.
    pub(crate) async fn connect(config: ProjectorConfig) -> Result<Arc<Env>, ProjectionError> {
        let subjects = config.subjects()?;
        if config.batch_size == 0 {
            return Err(ProjectionError::Config(
                "batch_size must be at least 1".into(),
            ));
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(2))
            .connect(&config.database_url)
            .await?;
        migrate(&pool).await?;
        let client = async_nats::connect(&config.nats_url)
            .await
            .map_err(|e| ProjectionError::nats(format!("connecting to {}", config.nats_url), e))?;
        let js = async_nats::jetstream::new(client.clone());
        let stream = js
            .get_stream(&config.stream)
            .await
            .map_err(|e| ProjectionError::nats(format!("opening stream {}", config.stream), e))?;
        let keys = JetStreamKeyStore::open(
            client,
            KeyStoreConfig::for_stream(&config.stream, config.key_bucket_replicas),
        )
        .await?;
        let vault = Vault::new(&config.master_key, Arc::new(keys));
        Ok(Arc::new(Env {
            config,
            subjects,
            pool,
            stream,
            vault,
        }))
    }

    /// The position of the stream's last commit (its head for the projectors: a
    /// checkpoint after it, on `<prefix>.checkpoints`, is never delivered to them).
    pub(crate) async fn stream_head(&self) -> Result<u64, ProjectionError> {
        loan_store::jetstream::last_commit_position(&self.stream, &self.subjects)
            .await
            .map_err(|e| ProjectionError::nats("reading the stream head", e))
    }
}

// Dev-dependency of the integration tests; the unit-test target links it too.
#[cfg(test)]
use loan_testkit as _;
