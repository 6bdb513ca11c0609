//! The projector runtime: one durable pull consumer per group, batches applied in one
//! PostgreSQL transaction together with the group's checkpoint.
//!
//! One batch ([`GroupProjector::step`]):
//!
//! 1. fetch up to `batch_size` messages (no wait; if none, wait up to `idle_wait`);
//! 2. skip messages at or below the checkpoint (a redelivery); the others must follow the
//!    checkpoint without a gap (otherwise the consumer is repositioned);
//! 3. decode each commit (decrypting sensitive fields with the vault), and load from the
//!    stream the views of aggregates not in memory (commits up to the checkpoint);
//! 4. BEGIN; lock the checkpoint row and check it is still ours (same position and
//!    generation; the quarantine set unchanged), else start over from the stored state;
//! 5. apply the commits in order to copies of the views; a commit that cannot be applied
//!    quarantines its aggregate (rows flagged stale, quarantine row, dead letter) and
//!    later commits of a quarantined aggregate are dead-lettered;
//! 6. write every changed row with one multi-row statement per table, the quarantine and
//!    dead-letter rows, and the new checkpoint; COMMIT;
//! 7. acknowledge the last message (AckAll acknowledges the batch); keep the new views.
//!
//! A failure anywhere before COMMIT leaves the database as it was; after COMMIT and before
//! the ack, the redelivered messages are at or below the checkpoint and skipped. On start
//! and after any failure the durable consumer is recreated at checkpoint + 1, so the
//! stored checkpoint, not the consumer's own state, decides where a projection resumes.
//! Only one instance per group is active at a time: the projector holds a PostgreSQL
//! advisory lock per projection (others wait as standbys).

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{AckKind, Message};
use bytes::Bytes;
use futures::StreamExt;
use loan_domain::AggregateType;
use loan_engine::CommitReader;
use loan_store::AggregateRef;
use lru::LruCache;
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Transaction};
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::batch::{
    DeadLetter, Fold, Item, Origin, QuarantineRow, decode_commit, fold_history, payload_json,
};
use crate::history::{aggregate_of_subject, parse_commit, raw_history};
use crate::postgres;
use crate::schema::{LIVE_SCHEMA, ident};
use crate::view::{Poison, Rows, View, handles, to_i64};
use crate::{Env, Group, ProjectionError, ProjectorConfig};

/// One message of the event stream: a commit at a position.
#[derive(Debug, Clone)]
pub struct EventMessage {
    /// Stream sequence.
    pub position: u64,
    pub subject: String,
    pub payload: Bytes,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepOutcome {
    /// Messages received.
    pub fetched: usize,
    /// At or below the checkpoint: already applied, skipped.
    pub skipped: usize,
    /// Commits applied to the read model (including ones of aggregates the group ignores).
    pub applied: usize,
    /// Commits recorded as dead letters.
    pub dead_lettered: usize,
    /// Aggregates newly quarantined.
    pub quarantined: usize,
    /// The checkpoint after the batch.
    pub checkpoint: u64,
}

/// Where a group projector writes: the live tables, or a rebuild's.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) group: Group,
    /// Checkpoint row (and quarantine / dead-letter key).
    pub(crate) projection: String,
    pub(crate) schema: String,
    /// Durable consumer name.
    pub(crate) consumer: String,
}

impl Target {
    pub(crate) fn live(config: &ProjectorConfig, group: Group) -> Self {
        Target {
            group,
            projection: group.name().to_owned(),
            schema: LIVE_SCHEMA.to_owned(),
            consumer: config.consumer_name(group),
        }
    }
}

impl Origin for EventMessage {
    fn subject(&self) -> String {
        self.subject.clone()
    }

    fn payload(&self) -> Value {
        payload_json(&self.payload)
    }
}

/// Runs every configured group until `shutdown` completes.
pub struct Projector;

impl Projector {
    /// Connects, runs the migrations, and runs one task per group in
    /// [`ProjectorConfig::groups`] until `shutdown` completes; a batch in flight is
    /// abandoned (rolled back) at shutdown, which is safe by design.
    pub async fn run(
        config: ProjectorConfig,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ProjectionError> {
        let env = Env::connect(config).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for group in env.config.groups.clone() {
            let target = Target::live(&env.config, group);
            let env = env.clone();
            let mut stopped = stopped.clone();
            tasks.push(tokio::spawn(async move {
                let mut projector = GroupProjector::with_env(env, target);
                projector
                    .run_until(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await
            }));
        }
        shutdown.await;
        let _ = stop.send(true);
        let mut outcome = Ok(());
        for task in tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => outcome = Err(error),
                Err(join) => {
                    outcome = Err(ProjectionError::Rebuild(format!("task failed: {join}")))
                }
            }
        }
        outcome
    }
}

/// The projector of one group: its consumer, its in-memory views, its checkpoint.
pub struct GroupProjector {
    env: Arc<Env>,
    target: Target,
    cache: LruCache<AggregateRef, View>,
    /// Quarantined aggregates and the position that quarantined them.
    quarantined: HashMap<AggregateRef, u64>,
    checkpoint: u64,
    generation: i64,
    /// False until the checkpoint and quarantine set are loaded from the database.
    loaded: bool,
    consumer: Option<PullConsumer>,
    /// The first message after (re)positioning may follow a gap (a stream whose first
    /// messages are gone); every later one must follow its predecessor.
    allow_gap: bool,
    /// Session holding the advisory lock that makes this the active instance.
    lock: Option<PoolConnection<Postgres>>,
}

impl GroupProjector {
    /// Connects (NATS, PostgreSQL, migrations) and prepares the live projector of `group`.
    pub async fn open(config: ProjectorConfig, group: Group) -> Result<Self, ProjectionError> {
        let target = Target::live(&config, group);
        let env = Env::connect(config).await?;
        Ok(Self::with_env(env, target))
    }

    pub(crate) fn with_env(env: Arc<Env>, target: Target) -> Self {
        let capacity =
            NonZeroUsize::new(env.config.cache_capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        GroupProjector {
            env,
            target,
            cache: LruCache::new(capacity),
            quarantined: HashMap::new(),
            checkpoint: 0,
            generation: 0,
            loaded: false,
            consumer: None,
            allow_gap: true,
            lock: None,
        }
    }

    pub fn group(&self) -> Group {
        self.target.group
    }

    /// The checkpoint as this projector last committed or loaded it.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// Runs batches until `shutdown` completes. Failures are recorded in the checkpoint
    /// row (`last_error`) and retried after `retry_backoff`, from the stored checkpoint.
    pub async fn run_until(
        &mut self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ProjectionError> {
        tokio::pin!(shutdown);
        loop {
            let step = tokio::select! {
                biased;
                () = &mut shutdown => break,
                step = self.step() => step,
            };
            if let Err(error) = step {
                self.record_failure(&error).await;
                let pause = match error {
                    ProjectionError::Superseded { .. } | ProjectionError::OutOfOrder { .. } => {
                        Duration::ZERO
                    }
                    _ => self.env.config.retry_backoff,
                };
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
        info!(projection = %self.target.projection, checkpoint = self.checkpoint, "projector stopped");
        Ok(())
    }

    /// Runs batches until the checkpoint reaches the stream head as it was when called.
    pub async fn catch_up(&mut self) -> Result<u64, ProjectionError> {
        let head = self.env.stream_head().await?;
        let mut failures = 0;
        while self.checkpoint < head || !self.loaded {
            match self.step().await {
                Ok(_) => failures = 0,
                Err(error) => {
                    self.record_failure(&error).await;
                    failures += 1;
                    if failures > 5 {
                        return Err(error);
                    }
                }
            }
        }
        Ok(self.checkpoint)
    }

    /// Fetches and applies one batch.
    pub async fn step(&mut self) -> Result<StepOutcome, ProjectionError> {
        self.ensure_loaded().await?;
        let consumer = self.ensure_consumer().await?;
        let batch_size = self.env.config.batch_size;
        let (messages, last) = fetch(&consumer, batch_size, None).await?;
        let (messages, last) = if messages.is_empty() {
            fetch(&consumer, batch_size, Some(self.env.config.idle_wait)).await?
        } else {
            (messages, last)
        };
        let outcome = self.apply(messages).await?;
        if let Some(last) = last {
            if let Err(error) = last.ack_with(AckKind::Ack).await {
                // Harmless: the batch is committed; a redelivery is skipped.
                warn!(projection = %self.target.projection, %error, "acknowledgement failed");
            }
        }
        Ok(outcome)
    }

    /// Applies delivered messages in ONE transaction with the checkpoint (what [`step`]
    /// does with a fetched batch). Messages at or below the checkpoint are skipped.
    ///
    /// [`step`]: GroupProjector::step
    pub async fn apply(
        &mut self,
        messages: Vec<EventMessage>,
    ) -> Result<StepOutcome, ProjectionError> {
        self.ensure_loaded().await?;
        let mut outcome = StepOutcome {
            fetched: messages.len(),
            checkpoint: self.checkpoint,
            ..StepOutcome::default()
        };
        let mut fresh = Vec::with_capacity(messages.len());
        for message in messages {
            if message.position <= self.checkpoint {
                outcome.skipped += 1;
                continue;
            }
            let expected = fresh
                .last()
                .map_or(self.checkpoint + 1, |m: &EventMessage| m.position + 1);
            let gap_allowed = self.allow_gap && fresh.is_empty() && message.position > expected;
            if message.position != expected && !gap_allowed {
                self.consumer = None;
                return Err(ProjectionError::OutOfOrder {
                    projection: self.target.projection.clone(),
                    expected,
                    got: message.position,
                });
            }
            if message.position != expected {
                warn!(projection = %self.target.projection, expected, got = message.position, "the stream has no messages between the checkpoint and this one");
            }
            fresh.push(message);
        }
        let Some(last_position) = fresh.last().map(|m| m.position) else {
            return Ok(outcome);
        };
        let items = self.decode(&fresh).await?;
        let preloaded = self.preload(&items).await?;

        let mut tx = self.env.pool.begin().await?;
        self.lock_checkpoint(&mut tx).await?;

        let mut fold = Fold::new(self.target.group, self.quarantined.clone(), preloaded);
        for (message, item) in fresh.iter().zip(items) {
            fold.push(&mut self.cache, message.position, item, message);
        }
        postgres::write(&mut tx, &self.target.schema, fold.changes()).await?;
        write_quarantine(&mut tx, &self.target, &fold.new_quarantine).await?;
        write_dead_letters(&mut tx, &self.target.projection, &fold.dead).await?;
        sqlx::query(
            "UPDATE projection.checkpoints SET last_sequence = $2, updated_at = now(),
                 last_error = COALESCE($3, last_error),
                 last_error_at = CASE WHEN $3 IS NULL THEN last_error_at ELSE now() END
             WHERE projection = $1",
        )
        .bind(&self.target.projection)
        .bind(to_i64(last_position))
        .bind(fold.error())
        .execute(&mut *tx)
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
        self.allow_gap = false;
        outcome.checkpoint = last_position;
        debug!(projection = %self.target.projection, ?outcome, "batch applied");
        Ok(outcome)
    }

    /// Decodes the commits of a batch (outside the transaction).
    async fn decode(&self, messages: &[EventMessage]) -> Result<Vec<Item>, ProjectionError> {
        let mut reader = CommitReader::new(&self.env.vault);
        let mut items = Vec::with_capacity(messages.len());
        for message in messages {
            let aggregate = aggregate_of_subject(self.env.subjects.prefix(), &message.subject);
            if let Some(aggregate) = aggregate {
                if !handles(self.target.group, aggregate.aggregate_type) {
                    items.push(Item::Ignore);
                    continue;
                }
            }
            items.push(
                decode_one(&mut reader, aggregate, message.position, &message.payload).await?,
            );
        }
        Ok(items)
    }

    /// Views of aggregates that continue (base version > 0) but are not in memory: rebuilt
    /// from their commits up to the checkpoint. `Err` when that history cannot be applied.
    async fn preload(
        &mut self,
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
            let view = load_view(&self.env, self.target.group, *aggregate, self.checkpoint).await?;
            out.insert(*aggregate, view);
        }
        Ok(out)
    }

    async fn ensure_loaded(&mut self) -> Result<(), ProjectionError> {
        if self.loaded {
            return Ok(());
        }
        if self.lock.is_none() {
            self.lock = Some(acquire_instance_lock(&self.env, &self.target.projection).await?);
        }
        sqlx::query(
            "INSERT INTO projection.checkpoints (projection, schema_name) VALUES ($1, $2)
             ON CONFLICT (projection) DO NOTHING",
        )
        .bind(&self.target.projection)
        .bind(&self.target.schema)
        .execute(&self.env.pool)
        .await?;
        let (last, generation): (i64, i64) = sqlx::query_as(
            "SELECT last_sequence, generation FROM projection.checkpoints WHERE projection = $1",
        )
        .bind(&self.target.projection)
        .fetch_one(&self.env.pool)
        .await?;
        self.checkpoint = u64::try_from(last).unwrap_or(0);
        self.generation = generation;
        self.quarantined = load_quarantine(&self.env.pool, &self.target.projection).await?;
        self.cache.clear();
        self.consumer = None;
        self.loaded = true;
        info!(projection = %self.target.projection, checkpoint = self.checkpoint, quarantined = self.quarantined.len(), "projection state loaded");
        Ok(())
    }

    /// Recreates the durable consumer at checkpoint + 1 when there is none.
    async fn ensure_consumer(&mut self) -> Result<PullConsumer, ProjectionError> {
        if let Some(consumer) = &self.consumer {
            return Ok(consumer.clone());
        }
        let name = &self.target.consumer;
        let stream = &self.env.stream;
        // The stored checkpoint decides where to resume, not the consumer's own state.
        let _ = stream.delete_consumer(name).await;
        let batch = i64::try_from(self.env.config.batch_size).unwrap_or(i64::MAX);
        let consumer: PullConsumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(name.clone()),
                description: Some(format!(
                    "Projector of {} into schema {} (resumes from projection.checkpoints)",
                    self.target.projection, self.target.schema
                )),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: self.checkpoint + 1,
                },
                ack_policy: AckPolicy::All,
                ack_wait: Duration::from_secs(120),
                max_ack_pending: batch.saturating_mul(4),
                filter_subject: self.env.subjects.all_events(),
                ..Default::default()
            })
            .await
            .map_err(|e| ProjectionError::nats(format!("creating consumer {name}"), e))?;
        self.allow_gap = true;
        self.consumer = Some(consumer.clone());
        Ok(consumer)
    }

    /// Locks the checkpoint row and checks nobody else moved it since we loaded it.
    async fn lock_checkpoint(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<(), ProjectionError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT last_sequence, generation FROM projection.checkpoints WHERE projection = $1 FOR UPDATE",
        )
        .bind(&self.target.projection)
        .fetch_optional(&mut **tx)
        .await?;
        let quarantine = load_quarantine(&mut **tx, &self.target.projection).await?;
        let current = row.map(|(last, generation)| (u64::try_from(last).unwrap_or(0), generation));
        let same_quarantine = quarantine.len() == self.quarantined.len()
            && quarantine.keys().all(|a| self.quarantined.contains_key(a));
        if current != Some((self.checkpoint, self.generation)) || !same_quarantine {
            self.reset();
            return Err(ProjectionError::Superseded {
                projection: self.target.projection.clone(),
            });
        }
        Ok(())
    }

    /// Forgets everything in memory: the next step reloads from the database.
    fn reset(&mut self) {
        self.loaded = false;
        self.consumer = None;
        self.cache.clear();
    }

    async fn record_failure(&mut self, error: &ProjectionError) {
        warn!(projection = %self.target.projection, %error, "batch failed");
        self.reset();
        if matches!(error, ProjectionError::Superseded { .. }) {
            return;
        }
        let _ = sqlx::query(
            "UPDATE projection.checkpoints SET last_error = $2, last_error_at = now() WHERE projection = $1",
        )
        .bind(&self.target.projection)
        .bind(error.to_string())
        .execute(&self.env.pool)
        .await;
    }
}

impl Drop for GroupProjector {
    fn drop(&mut self) {
        // Closing the session releases the advisory lock at once (a pooled connection
        // would keep holding it).
        if let Some(lock) = self.lock.take() {
            drop(lock.detach());
        }
    }
}

/// Holds a session-level advisory lock on the projection: one active instance per group.
async fn acquire_instance_lock(
    env: &Env,
    projection: &str,
) -> Result<PoolConnection<Postgres>, ProjectionError> {
    let mut conn = env.pool.acquire().await?;
    loop {
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtextextended('loan-projection:' || $1, 0))",
        )
        .bind(projection)
        .fetch_one(&mut *conn)
        .await?;
        if locked {
            return Ok(conn);
        }
        debug!(projection, "another instance is active; waiting");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn fetch(
    consumer: &PullConsumer,
    batch_size: usize,
    wait: Option<Duration>,
) -> Result<(Vec<EventMessage>, Option<Message>), ProjectionError> {
    let mut batch = match wait {
        None => consumer
            .fetch()
            .max_messages(batch_size)
            .messages()
            .await
            .map_err(|e| ProjectionError::nats("fetching a batch", e))?,
        Some(wait) => consumer
            .batch()
            .max_messages(batch_size)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| ProjectionError::nats("fetching a batch", e))?,
    };
    let mut messages = Vec::new();
    let mut last = None;
    while let Some(message) = batch.next().await {
        let message = message.map_err(|e| ProjectionError::nats("receiving a batch", e))?;
        let position = message
            .info()
            .map_err(|e| ProjectionError::nats("reading message metadata", e))?
            .stream_sequence;
        messages.push(EventMessage {
            position,
            subject: message.subject.to_string(),
            payload: message.payload.clone(),
        });
        last = Some(message);
    }
    Ok((messages, last))
}

/// Parses and decodes one commit. `Err` only for a transient failure (key store down).
async fn decode_one(
    reader: &mut CommitReader<'_>,
    aggregate: Option<AggregateRef>,
    position: u64,
    payload: &[u8],
) -> Result<Item, ProjectionError> {
    match parse_commit(payload, aggregate) {
        // The projector needs the commit's metadata and its decoded events, not the
        // stored form: the stored events are consumed by decoding (no copy of each event).
        Ok(commit) => decode_commit(reader, position, commit).await,
        Err(reason) => Ok(Item::Poison {
            aggregate,
            poison: Poison::new(None, reason),
        }),
    }
}

/// The view of `aggregate` after its commits up to `up_to`, read from the stream.
pub(crate) async fn load_view(
    env: &Env,
    group: Group,
    aggregate: AggregateRef,
    up_to: u64,
) -> Result<Result<View, Poison>, ProjectionError> {
    let (view, _rows) = replay_history(env, group, aggregate, up_to).await?;
    Ok(view)
}

/// Applies every commit of `aggregate` up to `up_to` to a fresh view; also returns the
/// history rows those commits produce (what a replay writes).
pub(crate) async fn replay_history(
    env: &Env,
    group: Group,
    aggregate: AggregateRef,
    up_to: u64,
) -> Result<(Result<View, Poison>, Rows), ProjectionError> {
    let subject = env.subjects.events(aggregate.aggregate_type, aggregate.id);
    let raw = raw_history(&env.stream, &subject, up_to).await?;
    let mut reader = CommitReader::new(&env.vault);
    let mut commits = Vec::with_capacity(raw.len());
    for commit in raw {
        let item = decode_one(
            &mut reader,
            Some(aggregate),
            commit.position,
            &commit.payload,
        )
        .await?;
        commits.push((commit.position, item));
    }
    Ok(fold_history(group, aggregate, commits))
}

async fn load_quarantine<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    projection: &str,
) -> Result<HashMap<AggregateRef, u64>, ProjectionError> {
    let rows: Vec<(String, Uuid, i64)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, position FROM projection.quarantine WHERE projection = $1",
    )
    .bind(projection)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(aggregate_type, id, position)| {
            let aggregate_type = AggregateType::parse(&aggregate_type)?;
            Some((
                AggregateRef { aggregate_type, id },
                u64::try_from(position).unwrap_or(0),
            ))
        })
        .collect())
}

/// The tables whose rows a group flags stale for an aggregate type, with the key column.
pub(crate) fn stale_tables(
    group: Group,
    aggregate_type: AggregateType,
) -> &'static [(&'static str, &'static str)] {
    match (group, aggregate_type) {
        (Group::Portfolio, AggregateType::Customer) => &[("customers", "customer_id")],
        (Group::Portfolio, AggregateType::Loan) => &[("loans", "loan_id")],
        (Group::Portfolio, AggregateType::CollectionCase) => &[("collection_cases", "case_id")],
        (Group::Delinquency, AggregateType::Loan) => &[("installments", "loan_id")],
        (Group::Delinquency, AggregateType::Customer | AggregateType::CollectionCase) => &[],
    }
}

/// The tables holding a group's rows of an aggregate, with the key column.
pub(crate) fn owned_tables(
    group: Group,
    aggregate_type: AggregateType,
) -> &'static [(&'static str, &'static str)] {
    match (group, aggregate_type) {
        (Group::Portfolio, AggregateType::Customer) => &[
            ("customers", "customer_id"),
            ("credit_scores", "customer_id"),
        ],
        (Group::Portfolio, AggregateType::Loan) => &[
            ("loans", "loan_id"),
            ("loan_timeline", "loan_id"),
            ("decisions", "loan_id"),
        ],
        (Group::Portfolio, AggregateType::CollectionCase) => &[("collection_cases", "case_id")],
        (Group::Delinquency, AggregateType::Loan) => {
            &[("installments", "loan_id"), ("allocations", "loan_id")]
        }
        (Group::Delinquency, AggregateType::Customer | AggregateType::CollectionCase) => &[],
    }
}

async fn write_quarantine(
    tx: &mut Transaction<'_, Postgres>,
    target: &Target,
    rows: &[QuarantineRow],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO projection.quarantine (projection, aggregate_type, aggregate_id, position, event_type, reason)
         SELECT $1, * FROM UNNEST($2::text[], $3::uuid[], $4::int8[], $5::text[], $6::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&target.projection)
    .bind(rows.iter().map(|r| r.aggregate.aggregate_type.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.aggregate.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| to_i64(r.position)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.poison.event_type.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.poison.reason.clone()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    let s = ident(&target.schema);
    for row in rows {
        for (table, key) in stale_tables(target.group, row.aggregate.aggregate_type) {
            sqlx::query(&format!(
                "UPDATE {s}.{table} SET stale = true, stale_reason = $2 WHERE {key} = $1"
            ))
            .bind(row.aggregate.id)
            .bind(row.stale_reason())
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

async fn write_dead_letters(
    tx: &mut Transaction<'_, Postgres>,
    projection: &str,
    rows: &[DeadLetter],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO projection.dead_letters (projection, position, subject, aggregate_type, aggregate_id, event_type, reason, payload)
         SELECT $1, * FROM UNNEST($2::int8[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::jsonb[])
         ON CONFLICT DO NOTHING",
    )
    .bind(projection)
    .bind(rows.iter().map(|r| to_i64(r.position)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.subject.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.aggregate.map(|a| a.aggregate_type.as_str())).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.aggregate.map(|a| a.id)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.event_type.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.reason.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.payload.clone()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
