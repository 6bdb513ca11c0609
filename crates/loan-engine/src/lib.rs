//! The application layer between a transport and the event store.
//!
//! [`Engine::execute`] takes the raw body of a command request and returns the reply;
//! the NATS command service and the embedded mode are thin transports around it. In
//! order, for one request:
//!
//! 1. decode strictly (`loan_contract::decode_command`): bad input never reaches the domain;
//! 2. idempotency: a command id already applied returns its original result; the same id
//!    with another payload is refused (`idempotency_mismatch`);
//! 3. load the aggregate — from the bounded in-memory cache when it is there, otherwise
//!    its history from the store — and, for loan commands, the loan's customer;
//! 4. `decide` (pure); refusals become error replies and write nothing;
//! 5. seal the events (UUID v7 ids, recording time) into ONE commit and append it naming
//!    the aggregate's last log position; on a conflict, drop the cached state, reload
//!    and decide again, up to [`EngineConfig::max_attempts`] times, then reply `conflict`;
//! 6. remember the command id, update the cache, reply with the events.
//!
//! Sensitive fields are encrypted on the way to the store and decrypted on the way back
//! ([`vault`], `codec`); after `erase_customer` the customer's data key is destroyed
//! before the reply (docs/security.md).

mod cache;
pub mod clock;
mod codec;
pub mod vault;

use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use loan_contract::event::CommitContext;
use loan_contract::{
    AnyCommand, AnyEvent, CommandReply, DecodedCommand, ErrorCode, ErrorReply, EventEnvelope,
    decode_command,
};
use loan_domain::collection::{self, CollectionCaseCommand};
use loan_domain::customer;
use loan_domain::loan::{self, LoanCommand};
use loan_domain::{AggregateType, CommandKind, Context, LendingRules};
use loan_store::{
    AggregateRef, Appended, CommandRecord, Commit, EventStore, History, Recorded, StoreError,
};

pub use cache::{Cached, State};
use tracing::{debug, info, warn};
use uuid::Uuid;
pub use vault::{MasterKey, Vault};

use crate::cache::AggregateCache;

/// Tuning and business settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub rules: LendingRules,
    /// The lender's time zone: the business date of a command is the recording instant
    /// in this offset (default UTC+8).
    pub business_offset: FixedOffset,
    /// Aggregates kept in memory.
    pub cache_capacity: usize,
    /// Attempts of one command under concurrent writers before answering `conflict`.
    pub max_attempts: u32,
    /// UUID v7 command ids younger than this skip the idempotency lookup (see
    /// `execute`). Must be well inside the log's duplicate window (default: half of 120 s).
    pub dedup_trust_window: std::time::Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            rules: LendingRules::default(),
            business_offset: FixedOffset::east_opt(8 * 3600).expect("valid offset"),
            cache_capacity: 100_000,
            max_attempts: 5,
            dedup_trust_window: std::time::Duration::from_secs(60),
        }
    }
}

/// Decides and records commands against an [`EventStore`].
pub struct Engine<S> {
    store: std::sync::Arc<S>,
    vault: Vault,
    config: EngineConfig,
    cache: Mutex<AggregateCache>,
}

/// Why a request could not be answered with a domain outcome.
#[derive(Debug)]
enum Failure {
    Reply(ErrorReply),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error)
    }
}

impl From<ErrorReply> for Failure {
    fn from(reply: ErrorReply) -> Self {
        Failure::Reply(reply)
    }
}

/// The one mapping from store failures to what a caller sees; internals stay in the logs.
fn store_error_reply(error: &StoreError) -> ErrorReply {
    match error {
        StoreError::Conflict { .. } => ErrorReply::new(
            ErrorCode::Conflict,
            "the aggregate kept changing concurrently; retry",
            None,
        ),
        StoreError::TooLarge { bytes, max } => ErrorReply::new(
            ErrorCode::ValidationFailed,
            format!("the command's events ({bytes} bytes) exceed the limit of {max}"),
            None,
        ),
        StoreError::Unavailable { .. } => ErrorReply::new(
            ErrorCode::Unavailable,
            "the event store is unavailable; the outcome is unknown, retry with the same command_id",
            None,
        ),
        StoreError::Corrupt { position, .. } => ErrorReply::new(
            ErrorCode::Internal,
            format!(
                "the log entry at position {position} cannot be read; an operator has been alerted"
            ),
            None,
        ),
        // Only an import writes at given positions; a command never does.
        StoreError::ImportRefused { .. } => {
            ErrorReply::new(ErrorCode::Internal, "internal error", None)
        }
    }
}

impl<S: EventStore> Engine<S> {
    pub fn new(store: S, vault: Vault, config: EngineConfig) -> Self {
        let cache = Mutex::new(AggregateCache::new(config.cache_capacity));
        Engine {
            store: std::sync::Arc::new(store),
            vault,
            config,
            cache,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Handles one command request received at `now`; never panics, always replies.
    pub async fn execute(
        &self,
        kind: CommandKind,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> CommandReply {
        let decoded = match decode_command(kind, body) {
            Ok(decoded) => decoded,
            Err(error) => return CommandReply::Error { error },
        };
        let command_id = decoded.envelope.command_id;
        let span = tracing::Span::current();
        span.record("command_id", tracing::field::display(command_id));
        span.record(
            "correlation_id",
            tracing::field::display(decoded.envelope.correlation_id),
        );
        let outcome = match self.execute_decoded(&decoded, now).await {
            Ok(reply) => self.shred_if_erased(&decoded.command, reply).await,
            Err(failure) => Err(failure),
        };
        match outcome {
            Ok(reply) => reply,
            Err(Failure::Reply(error)) => {
                debug!(%command_id, command = %kind, code = ?error.code, "command refused");
                CommandReply::Error { error }
            }
            Err(Failure::Store(error)) => {
                warn!(%command_id, command = %kind, %error, "event store failure");
                CommandReply::Error {
                    error: store_error_reply(&error),
                }
            }
        }
    }

    /// Once `erase_customer` is recorded (or found recorded, or already in force), the
    /// customer's data key is destroyed before the reply; a retry of the same command
    /// completes an erasure whose key destruction failed.
    async fn shred_if_erased(
        &self,
        command: &AnyCommand,
        reply: CommandReply,
    ) -> Result<CommandReply, Failure> {
        if let (
            AnyCommand::Customer(customer::CustomerCommand::Erase(c)),
            CommandReply::Ok { .. },
        ) = (command, &reply)
        {
            self.vault.destroy(c.customer_id.0).await?;
            info!(customer_id = %c.customer_id, "customer erased: data key destroyed");
        }
        Ok(reply)
    }

    async fn execute_decoded(
        &self,
        decoded: &DecodedCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandReply, Failure> {
        let command_id = decoded.envelope.command_id;
        let digest = self.vault.request_digest(&decoded.command.payload_json());
        let aggregate = aggregate_of(&decoded.command);
        // A young UUID v7 command id cannot be older than the log's deduplication window:
        // a retry of it is caught by the aggregate's recent commands or by the log's own
        // deduplication, so the lookup (one round trip) is skipped on the hot path.
        if !recent_v7(command_id, now, self.config.dedup_trust_window) {
            if let Some(record) = self.store.recall_command(command_id).await? {
                return self
                    .replay_reply(command_id, aggregate, &record, &digest)
                    .await;
            }
        }
        let today: NaiveDate = now.with_timezone(&self.config.business_offset).date_naive();
        let actor = &decoded.envelope.actor;
        let ctx = Context {
            actor,
            today,
            rules: &self.config.rules,
        };

        for attempt in 1..=self.config.max_attempts {
            let cached = self.load(aggregate).await?;
            if let Some(previous) = cached.commands.iter().find(|c| c.command_id == command_id) {
                // Applied before, but not remembered (a crash between append and remember).
                let record = CommandRecord {
                    aggregate,
                    request_digest: previous.digest.clone(),
                    version: previous.version,
                    position: Some(previous.position),
                };
                return self
                    .replay_reply(command_id, aggregate, &record, &digest)
                    .await;
            }
            if let Some(expected) = decoded.envelope.expected_version {
                if expected != cached.version {
                    return Err(ErrorReply::new(
                        ErrorCode::Conflict,
                        format!(
                            "expected version {expected}, the aggregate is at version {}",
                            cached.version
                        ),
                        Some("expected_version".into()),
                    )
                    .into());
                }
            }
            let events = self.decide(&decoded.command, &cached, &ctx).await?;
            if events.is_empty() {
                let record = CommandRecord {
                    aggregate,
                    request_digest: digest.clone(),
                    version: cached.version,
                    position: None,
                };
                self.store.remember_command(command_id, &record).await?;
                return Ok(CommandReply::Ok {
                    aggregate_type: aggregate.aggregate_type,
                    aggregate_id: aggregate.id,
                    version: cached.version,
                    events: vec![],
                });
            }
            let commit_ctx = CommitContext {
                aggregate_id: aggregate.id,
                base_version: cached.version,
                recorded_at: now,
                command_id,
                correlation_id: decoded.envelope.correlation_id,
                causation_id: decoded.envelope.causation_id,
                actor: actor.clone(),
            };
            let sealed = EventEnvelope::seal(events, &commit_ctx, Uuid::now_v7);
            let commit = Commit {
                command_id,
                command: decoded.command.kind(),
                aggregate,
                base_version: cached.version,
                version: cached.version + sealed.len() as u64,
                recorded_at: now,
                request_digest: digest.clone(),
                previous_hash: cached.last_hash.clone(),
                events: codec::encode(&self.vault, &sealed).await?,
            };
            match self.store.append(&commit, cached.last_position).await {
                Ok(Appended::Stored { position, hash }) => {
                    self.cache_commit(cached, &commit, &sealed, position, hash);
                    let record = CommandRecord {
                        aggregate,
                        request_digest: digest,
                        version: commit.version,
                        position: Some(position),
                    };
                    self.remember_in_background(command_id, record);
                    info!(%command_id, aggregate = %aggregate, version = commit.version, position, "commit appended");
                    return Ok(CommandReply::Ok {
                        aggregate_type: aggregate.aggregate_type,
                        aggregate_id: aggregate.id,
                        version: commit.version,
                        events: sealed,
                    });
                }
                Ok(Appended::Duplicate { position }) => {
                    // The log already holds a commit with this command id: answer from
                    // that commit (its aggregate, payload digest and version), not from
                    // this attempt.
                    self.forget(aggregate);
                    let Some(original) = self.store.commit_at(position).await? else {
                        return Err(ErrorReply::new(
                            ErrorCode::Internal,
                            "the original commit of this command cannot be found",
                            None,
                        )
                        .into());
                    };
                    let record = CommandRecord {
                        aggregate: original.commit.aggregate,
                        request_digest: original.commit.request_digest.clone(),
                        version: original.commit.version,
                        position: Some(position),
                    };
                    return self
                        .replay_reply(command_id, aggregate, &record, &digest)
                        .await;
                }
                Err(StoreError::Conflict { .. }) => {
                    debug!(%command_id, aggregate = %aggregate, attempt, "conflict, reloading");
                    self.forget(aggregate);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(StoreError::Conflict {
            aggregate,
            expected: 0,
        }
        .into())
    }

    async fn decide(
        &self,
        command: &AnyCommand,
        cached: &Cached,
        ctx: &Context<'_>,
    ) -> Result<Vec<AnyEvent>, Failure> {
        match (command, &cached.state) {
            (AnyCommand::Customer(command), State::Customer(customer)) => {
                customer::decide(customer, command, ctx)
                    .map(|events| events.into_iter().map(AnyEvent::Customer).collect())
                    .map_err(|e| ErrorReply::from_domain(&e).into())
            }
            (AnyCommand::Loan(command), State::Loan(loan)) => {
                let customer_id = match command {
                    LoanCommand::CaptureLead(c) => Some(c.customer_id.0),
                    _ => loan.application().map(|app| app.customer_id.0),
                };
                let customer = match customer_id {
                    Some(id) => Some(
                        self.load(AggregateRef {
                            aggregate_type: AggregateType::Customer,
                            id,
                        })
                        .await?,
                    ),
                    None => None,
                };
                let customer = customer.as_deref().and_then(|cached| match &cached.state {
                    State::Customer(customer) if customer.profile().is_some() => Some(customer),
                    _ => None,
                });
                loan::decide(loan, command, customer, ctx)
                    .map(|events| events.into_iter().map(AnyEvent::Loan).collect())
                    .map_err(|e| ErrorReply::from_domain(&e).into())
            }
            (AnyCommand::CollectionCase(command), State::CollectionCase(case)) => {
                // The case's claims are checked against its loan (as the log knows it).
                let loan_id = match command {
                    CollectionCaseCommand::Open(c) => Some(c.loan_id.0),
                    _ => case.file().map(|file| file.loan_id.0),
                };
                let loan = match loan_id {
                    Some(id) => Some(
                        self.load(AggregateRef {
                            aggregate_type: AggregateType::Loan,
                            id,
                        })
                        .await?,
                    ),
                    None => None,
                };
                let loan = loan.as_deref().and_then(|cached| match &cached.state {
                    State::Loan(loan) if loan.status().is_some() => Some(loan),
                    _ => None,
                });
                collection::decide(case, command, loan, ctx)
                    .map(|events| events.into_iter().map(AnyEvent::CollectionCase).collect())
                    .map_err(|e| ErrorReply::from_domain(&e).into())
            }
            _ => Err(ErrorReply::new(
                ErrorCode::Internal,
                "command and aggregate types disagree",
                None,
            )
            .into()),
        }
    }

    /// The reply of a command applied earlier, or `idempotency_mismatch`.
    async fn replay_reply(
        &self,
        command_id: Uuid,
        aggregate: AggregateRef,
        record: &CommandRecord,
        digest: &str,
    ) -> Result<CommandReply, Failure> {
        if record.request_digest != digest || record.aggregate != aggregate {
            return Err(ErrorReply::new(
                ErrorCode::IdempotencyMismatch,
                format!("command id {command_id} was already used with a different payload"),
                Some("command_id".into()),
            )
            .into());
        }
        let events = match record.position {
            None => Vec::new(),
            Some(position) => match self.store.commit_at(position).await? {
                Some(recorded) if recorded.commit.command_id == command_id => {
                    codec::decode(&self.vault, &recorded).await?
                }
                _ => {
                    return Err(ErrorReply::new(
                        ErrorCode::Internal,
                        "the original commit of this command cannot be found",
                        None,
                    )
                    .into());
                }
            },
        };
        debug!(%command_id, "replayed the original reply");
        Ok(CommandReply::Ok {
            aggregate_type: record.aggregate.aggregate_type,
            aggregate_id: record.aggregate.id,
            version: record.version,
            events,
        })
    }

    /// The aggregate's current state: from the cache, or rebuilt from its history.
    async fn load(&self, aggregate: AggregateRef) -> Result<std::sync::Arc<Cached>, StoreError> {
        if let Some(cached) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&aggregate)
        {
            return Ok(cached);
        }
        let history = self.store.load(aggregate).await?;
        let cached = std::sync::Arc::new(rebuild(&self.vault, aggregate, &history).await?);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(aggregate, cached.clone());
        Ok(cached)
    }

    fn cache_commit(
        &self,
        cached: std::sync::Arc<Cached>,
        commit: &Commit,
        events: &[EventEnvelope],
        position: u64,
        hash: String,
    ) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply(cached, commit, events, position, hash);
    }

    /// Records the command id without delaying the reply: within the deduplication
    /// window the log itself deduplicates; the record only matters after it.
    fn remember_in_background(&self, command_id: Uuid, record: CommandRecord) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(error) = store.remember_command(command_id, &record).await {
                warn!(%command_id, %error, "could not remember an applied command id");
            }
        });
    }

    fn forget(&self, aggregate: AggregateRef) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&aggregate);
    }
}

/// Whether `id` is a UUID v7 whose timestamp lies within `window` before `now` (and not
/// more than a few seconds after it: a client clock running ahead takes the safe path).
fn recent_v7(id: Uuid, now: DateTime<Utc>, window: std::time::Duration) -> bool {
    let Some(timestamp) = id.get_timestamp().filter(|_| id.get_version_num() == 7) else {
        return false;
    };
    let (seconds, nanos) = timestamp.to_unix();
    let Some(issued) =
        DateTime::<Utc>::from_timestamp(i64::try_from(seconds).unwrap_or(i64::MAX), nanos)
    else {
        return false;
    };
    let age = now.signed_duration_since(issued);
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::zero());
    age >= chrono::Duration::seconds(-5) && age < window
}

fn aggregate_of(command: &AnyCommand) -> AggregateRef {
    let aggregate_type = match command {
        AnyCommand::Customer(_) => AggregateType::Customer,
        AnyCommand::Loan(_) => AggregateType::Loan,
        AnyCommand::CollectionCase(_) => AggregateType::CollectionCase,
    };
    AggregateRef {
        aggregate_type,
        id: command.aggregate_id(),
    }
}

/// Decrypts and decodes recorded commits for readers outside the engine (projectors,
/// auditors): each sensitive field is decrypted with its customer's data key, or reads as
/// "erased" once that key was destroyed; every event is upcast and decoded. A reader
/// fetches each customer's data key at most once, so keep one per batch, not for ever (a
/// key destroyed later would not be noticed).
pub struct CommitReader<'v>(codec::Reader<'v>);

impl<'v> CommitReader<'v> {
    pub fn new(vault: &'v Vault) -> Self {
        CommitReader(codec::Reader::new(vault))
    }

    /// The decoded events of a recorded commit. `StoreError::Corrupt` when an event does
    /// not decode (unknown or newer type, bad data) or a field does not decrypt;
    /// `StoreError::Unavailable` when the key store cannot be reached.
    pub async fn decode(&mut self, recorded: &Recorded) -> Result<Vec<EventEnvelope>, StoreError> {
        self.0.decode(recorded).await
    }

    /// [`CommitReader::decode`] of a commit read at `position` (no chain hash needed).
    pub async fn decode_commit(
        &mut self,
        position: u64,
        commit: &Commit,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        self.0.decode_commit(position, commit).await
    }

    /// [`CommitReader::decode_commit`] consuming the commit's stored events (a reader that
    /// needs only the decoded events saves copying each one).
    pub async fn decode_events(
        &mut self,
        position: u64,
        events: Vec<loan_contract::event::StoredEvent>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        self.0.decode_events(position, events).await
    }
}

/// Rebuilds an aggregate from its history (sensitive fields decrypted with `vault`'s keys,
/// or read as erased).
pub async fn rebuild(
    vault: &Vault,
    aggregate: AggregateRef,
    history: &History,
) -> Result<Cached, StoreError> {
    let mut cached = Cached::empty(aggregate.aggregate_type);
    let mut reader = codec::Reader::new(vault);
    for recorded in &history.commits {
        let events = reader.decode(recorded).await?;
        cached.apply(
            &recorded.commit,
            &events,
            recorded.position,
            recorded.hash.clone(),
        );
    }
    Ok(cached)
}
