//! The bounded in-memory cache of aggregate states.
//!
//! On the hot path a command costs no read of the log: the state, version and last log
//! position of recently used aggregates stay in memory (least recently used evicted).
//! The cache is never trusted for correctness: the append names the last position it
//! assumed, and a conflict drops the entry and reloads from the log.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Arc;

use loan_contract::{AnyEvent, EventEnvelope};
use loan_domain::AggregateType;
use loan_domain::collection::{self, CollectionCase};
use loan_domain::customer::{self, Customer};
use loan_domain::loan::{self, Loan};
use loan_store::{AggregateRef, Commit};
use lru::LruCache;
use uuid::Uuid;

/// How many recent command ids each cached aggregate remembers (catches a retry of a
/// command whose commit landed but whose id was not yet remembered by the store).
const RECENT_COMMANDS: usize = 16;

/// The state of any aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Customer(Customer),
    Loan(Loan),
    CollectionCase(CollectionCase),
}

/// A recently applied command of the aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentCommand {
    pub command_id: Uuid,
    pub digest: String,
    pub version: u64,
    pub position: u64,
}

/// An aggregate as the engine knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    pub state: State,
    pub version: u64,
    /// Log position of the last commit (0: none yet).
    pub last_position: u64,
    /// Chain hash of the last commit (`loan_store::GENESIS_HASH`: none yet): the next
    /// commit's `previous_hash`.
    pub last_hash: String,
    pub commands: VecDeque<RecentCommand>,
}

impl Cached {
    pub fn empty(aggregate_type: AggregateType) -> Self {
        let state = match aggregate_type {
            AggregateType::Customer => State::Customer(Customer::default()),
            AggregateType::Loan => State::Loan(Loan::default()),
            AggregateType::CollectionCase => State::CollectionCase(CollectionCase::default()),
        };
        Cached {
            state,
            version: 0,
            last_position: 0,
            last_hash: loan_store::GENESIS_HASH.to_owned(),
            commands: VecDeque::new(),
        }
    }

    /// Applies a commit's decoded events (evolve never fails); `hash` is the commit's
    /// chain hash as stored.
    pub fn apply(
        &mut self,
        commit: &Commit,
        events: &[EventEnvelope],
        position: u64,
        hash: String,
    ) {
        for envelope in events {
            self.state = match (
                std::mem::replace(&mut self.state, State::Loan(Loan::default())),
                &envelope.event,
            ) {
                (State::Customer(c), AnyEvent::Customer(e)) => {
                    State::Customer(customer::evolve(c, e))
                }
                (State::Loan(l), AnyEvent::Loan(e)) => State::Loan(loan::evolve(l, e)),
                (State::CollectionCase(c), AnyEvent::CollectionCase(e)) => {
                    State::CollectionCase(collection::evolve(c, e))
                }
                (state, _) => state,
            };
        }
        self.version = commit.version;
        self.last_position = position;
        self.last_hash = hash;
        if self.commands.len() == RECENT_COMMANDS {
            self.commands.pop_front();
        }
        self.commands.push_back(RecentCommand {
            command_id: commit.command_id,
            digest: commit.request_digest.clone(),
            version: commit.version,
            position,
        });
    }
}

/// Least-recently-used map from aggregate to state.
pub(crate) struct AggregateCache {
    entries: LruCache<AggregateRef, Arc<Cached>>,
}

impl AggregateCache {
    pub(crate) fn new(capacity: usize) -> Self {
        AggregateCache {
            entries: LruCache::new(NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    /// A shared handle to the cached state (no copy).
    pub(crate) fn get(&mut self, aggregate: &AggregateRef) -> Option<Arc<Cached>> {
        self.entries.get(aggregate).cloned()
    }

    pub(crate) fn put(&mut self, aggregate: AggregateRef, cached: Arc<Cached>) {
        self.entries.put(aggregate, cached);
    }

    /// Applies a commit appended on top of `base` (the state it was decided on). The
    /// state is updated in place unless another command still holds it (then copied).
    pub(crate) fn apply(
        &mut self,
        base: Arc<Cached>,
        commit: &Commit,
        events: &[EventEnvelope],
        position: u64,
        hash: String,
    ) {
        let aggregate = commit.aggregate;
        let base_position = base.last_position;
        match self.entries.get_mut(&aggregate) {
            Some(entry) if entry.last_position == base_position => {
                drop(base);
                Arc::make_mut(entry).apply(commit, events, position, hash);
            }
            _ => {
                let mut next = Arc::unwrap_or_clone(base);
                next.apply(commit, events, position, hash);
                self.entries.put(aggregate, Arc::new(next));
            }
        }
    }

    pub(crate) fn remove(&mut self, aggregate: &AggregateRef) {
        self.entries.pop(aggregate);
    }
}
