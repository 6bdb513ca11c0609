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

mod cache;
pub mod clock;
mod codec;

use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use loan_contract::event::CommitContext;
use loan_contract::{
    AnyCommand, AnyEvent, CommandReply, DecodedCommand, ErrorCode, ErrorReply, EventEnvelope,
    decode_command,
};
use loan_domain::customer::{self, Customer};
use loan_domain::loan::{self, LoanCommand};
use loan_domain::{AggregateType, CommandKind, Context, LendingRules};
use loan_store::{
    AggregateRef, Appended, CommandRecord, Commit, EventStore, History, StoreError, request_digest,
};

pub use cache::{Cached, State};
use tracing::{debug, info, warn};
use uuid::Uuid;

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
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            rules: LendingRules::default(),
            business_offset: FixedOffset::east_opt(8 * 3600).expect("valid offset"),
            cache_capacity: 100_000,
            max_attempts: 5,
        }
    }
}

/// Decides and records commands against an [`EventStore`].
pub struct Engine<S> {
    store: S,
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
    }
}

impl<S: EventStore> Engine<S> {
    pub fn new(store: S, config: EngineConfig) -> Self {
        let cache = Mutex::new(AggregateCache::new(config.cache_capacity));
        Engine {
            store,
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
        match self.execute_decoded(&decoded, now).await {
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

    async fn execute_decoded(
        &self,
        decoded: &DecodedCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandReply, Failure> {
        let command_id = decoded.envelope.command_id;
        let digest = request_digest(&decoded.command.payload_json());
        let aggregate = aggregate_of(&decoded.command);
        if let Some(record) = self.store.recall_command(command_id).await? {
            return self.replay_reply(command_id, &record, &digest).await;
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
                return self.replay_reply(command_id, &record, &digest).await;
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
                events: codec::to_stored(&sealed),
            };
            match self.store.append(&commit, cached.last_position).await {
                Ok(Appended::Stored { position }) => {
                    self.cache_commit(cached, &commit, &sealed, position);
                    let record = CommandRecord {
                        aggregate,
                        request_digest: digest,
                        version: commit.version,
                        position: Some(position),
                    };
                    self.store.remember_command(command_id, &record).await?;
                    info!(%command_id, aggregate = %aggregate, version = commit.version, position, "commit appended");
                    return Ok(CommandReply::Ok {
                        aggregate_type: aggregate.aggregate_type,
                        aggregate_id: aggregate.id,
                        version: commit.version,
                        events: sealed,
                    });
                }
                Ok(Appended::Duplicate { position }) => {
                    self.forget(aggregate);
                    let record = CommandRecord {
                        aggregate,
                        request_digest: digest.clone(),
                        version: commit.version,
                        position: Some(position),
                    };
                    return self.replay_reply(command_id, &record, &digest).await;
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
                    Some(id) => match self
                        .load(AggregateRef {
                            aggregate_type: AggregateType::Customer,
                            id,
                        })
                        .await?
                        .state
                    {
                        State::Customer(customer) => Some(customer),
                        State::Loan(_) => None,
                    },
                    None => None,
                };
                let customer = customer.filter(|c: &Customer| c.profile().is_some());
                loan::decide(loan, command, customer.as_ref(), ctx)
                    .map(|events| events.into_iter().map(AnyEvent::Loan).collect())
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
        record: &CommandRecord,
        digest: &str,
    ) -> Result<CommandReply, Failure> {
        if record.request_digest != digest {
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
                    codec::decode(&recorded)?
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
    async fn load(&self, aggregate: AggregateRef) -> Result<Cached, StoreError> {
        if let Some(cached) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&aggregate)
        {
            return Ok(cached);
        }
        let history = self.store.load(aggregate).await?;
        let cached = rebuild(aggregate, &history)?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(aggregate, cached.clone());
        Ok(cached)
    }

    fn cache_commit(
        &self,
        mut cached: Cached,
        commit: &Commit,
        events: &[EventEnvelope],
        position: u64,
    ) {
        cached.apply(commit, events, position);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(commit.aggregate, cached);
    }

    fn forget(&self, aggregate: AggregateRef) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&aggregate);
    }
}

fn aggregate_of(command: &AnyCommand) -> AggregateRef {
    let aggregate_type = match command {
        AnyCommand::Customer(_) => AggregateType::Customer,
        AnyCommand::Loan(_) => AggregateType::Loan,
    };
    AggregateRef {
        aggregate_type,
        id: command.aggregate_id(),
    }
}

/// Rebuilds an aggregate from its history.
pub fn rebuild(aggregate: AggregateRef, history: &History) -> Result<Cached, StoreError> {
    let mut cached = Cached::empty(aggregate.aggregate_type);
    for recorded in &history.commits {
        cached.apply(
            &recorded.commit,
            &codec::decode(recorded)?,
            recorded.position,
        );
    }
    Ok(cached)
}
