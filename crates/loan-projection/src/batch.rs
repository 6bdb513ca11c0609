//! One batch of commits applied to a group's views, whatever the log and the database:
//! the part of a projector that decides what a batch changes (rows, quarantine, dead
//! letters), shared by the JetStream → PostgreSQL runner and the embedded projector.
//!
//! Commits are applied in order to copies of the views ([`Fold`]); a commit that cannot
//! be applied quarantines its aggregate (and the view keeps its state from before the
//! commit), and later commits of a quarantined aggregate become dead letters. The caller
//! writes the outcome ([`Fold::changes`], [`Fold::new_quarantine`], [`Fold::dead`]) in
//! one transaction with its checkpoint, and only after COMMIT hands the views back to its
//! cache ([`Fold::settle`]).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use loan_contract::EventEnvelope;
use loan_engine::CommitReader;
use loan_store::{AggregateRef, Commit, StoreError};
use lru::LruCache;
use serde_json::{Value, json};

use crate::rows::Change;
use crate::view::{self, Poison, Rows, View};
use crate::{Group, ProjectionError};

/// A commit, decoded as far as possible.
pub(crate) enum Item {
    /// An aggregate type the group does not read.
    Ignore,
    /// Cannot be applied; `aggregate` when it is known.
    Poison {
        aggregate: Option<AggregateRef>,
        poison: Poison,
    },
    Apply {
        aggregate: AggregateRef,
        commit: Commit,
        events: Vec<EventEnvelope>,
    },
}

/// Decodes a parsed commit's events (decrypting sensitive fields with the vault, or
/// reading them as erased), consuming its stored events. `Err` only for a transient
/// failure (key store down); an event that does not decode is poison.
pub(crate) async fn decode_commit(
    reader: &mut CommitReader<'_>,
    position: u64,
    mut commit: Commit,
) -> Result<Item, ProjectionError> {
    let event_type = commit.events.first().map(|e| e.event_type.clone());
    let stored = std::mem::take(&mut commit.events);
    match reader.decode_events(position, stored).await {
        Ok(events) => Ok(Item::Apply {
            aggregate: commit.aggregate,
            commit,
            events,
        }),
        Err(error @ StoreError::Unavailable { .. }) => Err(ProjectionError::Store(error)),
        Err(error) => Ok(Item::Poison {
            aggregate: Some(commit.aggregate),
            poison: Poison {
                event_type,
                reason: error.to_string(),
            },
        }),
    }
}

/// An aggregate newly quarantined by a batch.
pub(crate) struct QuarantineRow {
    pub(crate) aggregate: AggregateRef,
    pub(crate) position: u64,
    pub(crate) poison: Poison,
}

impl QuarantineRow {
    /// The `stale_reason` of the aggregate's rows.
    pub(crate) fn stale_reason(&self) -> String {
        match &self.poison.event_type {
            Some(event_type) => format!(
                "position {} ({event_type}): {}",
                self.position, self.poison.reason
            ),
            None => format!("position {}: {}", self.position, self.poison.reason),
        }
    }
}

/// A commit a batch did not apply.
pub(crate) struct DeadLetter {
    pub(crate) position: u64,
    pub(crate) subject: String,
    pub(crate) aggregate: Option<AggregateRef>,
    pub(crate) event_type: Option<String>,
    pub(crate) reason: String,
    pub(crate) payload: Value,
}

/// Where a commit came from, asked only when it becomes a dead letter.
pub(crate) trait Origin {
    /// The subject it was published on (embedded: the aggregate it belongs to).
    fn subject(&self) -> String;
    /// The commit as stored, as JSON.
    fn payload(&self) -> Value;
}

/// The stored bytes as JSON, or `{"unparsed": text}` when they are not JSON.
pub(crate) fn payload_json(payload: &[u8]) -> Value {
    serde_json::from_slice(payload)
        .unwrap_or_else(|_| json!({ "unparsed": String::from_utf8_lossy(payload) }))
}

/// A batch being applied to copies of a group's views.
pub(crate) struct Fold {
    group: Group,
    preloaded: HashMap<AggregateRef, Result<View, Poison>>,
    working: HashMap<AggregateRef, View>,
    dirty: Vec<AggregateRef>,
    dirty_set: HashSet<AggregateRef>,
    rows: Rows,
    /// Every quarantined aggregate (before and during the batch) and since when.
    quarantined: HashMap<AggregateRef, u64>,
    pub(crate) new_quarantine: Vec<QuarantineRow>,
    pub(crate) dead: Vec<DeadLetter>,
    /// Commits applied (including ones of aggregates the group ignores).
    pub(crate) applied: usize,
}

impl Fold {
    /// `preloaded`: views of aggregates not in the cache, read back from the log.
    pub(crate) fn new(
        group: Group,
        quarantined: HashMap<AggregateRef, u64>,
        preloaded: HashMap<AggregateRef, Result<View, Poison>>,
    ) -> Self {
        Fold {
            group,
            preloaded,
            working: HashMap::new(),
            dirty: Vec::new(),
            dirty_set: HashSet::new(),
            rows: Rows::default(),
            quarantined,
            new_quarantine: Vec::new(),
            dead: Vec::new(),
            applied: 0,
        }
    }

    fn quarantine(&mut self, aggregate: AggregateRef, position: u64, poison: Poison) {
        self.quarantined.insert(aggregate, position);
        self.new_quarantine.push(QuarantineRow {
            aggregate,
            position,
            poison,
        });
    }

    fn dead_letter(
        &mut self,
        position: u64,
        origin: &dyn Origin,
        aggregate: Option<AggregateRef>,
        poison: &Poison,
    ) {
        self.dead.push(DeadLetter {
            position,
            subject: origin.subject(),
            aggregate,
            event_type: poison.event_type.clone(),
            reason: poison.reason.clone(),
            payload: origin.payload(),
        });
    }

    /// Applies the commit at `position` (commits must come in log order).
    pub(crate) fn push(
        &mut self,
        cache: &mut LruCache<AggregateRef, View>,
        position: u64,
        item: Item,
        origin: &dyn Origin,
    ) {
        match item {
            Item::Ignore => self.applied += 1,
            Item::Poison { aggregate, poison } => {
                let since = aggregate.and_then(|a| self.quarantined.get(&a).copied());
                let poison = match since {
                    Some(since) => Poison {
                        reason: format!(
                            "the aggregate is quarantined since position {since}; this commit: {}",
                            poison.reason
                        ),
                        ..poison
                    },
                    None => poison,
                };
                self.dead_letter(position, origin, aggregate, &poison);
                if let Some(aggregate) = aggregate {
                    if !self.quarantined.contains_key(&aggregate) {
                        self.quarantine(aggregate, position, poison);
                    }
                }
            }
            Item::Apply {
                aggregate,
                commit,
                events,
            } => {
                if let Some(since) = self.quarantined.get(&aggregate) {
                    let poison = Poison::new(
                        events.first().map(|e| e.event.type_name()),
                        format!("the aggregate is quarantined since position {since}"),
                    );
                    self.dead_letter(position, origin, Some(aggregate), &poison);
                    return;
                }
                let view = match self.working.entry(aggregate) {
                    Entry::Occupied(slot) => slot.into_mut(),
                    Entry::Vacant(slot) => {
                        let start = match cache.get(&aggregate) {
                            Some(view) => Ok(view.clone()),
                            None => self
                                .preloaded
                                .remove(&aggregate)
                                .unwrap_or_else(|| Ok(View::empty(self.group, aggregate))),
                        };
                        match start {
                            Ok(view) => slot.insert(view),
                            Err(poison) => {
                                self.dead_letter(position, origin, Some(aggregate), &poison);
                                self.quarantine(aggregate, position, poison);
                                return;
                            }
                        }
                    }
                };
                let before = view.clone();
                let mut commit_rows = Rows::default();
                match view::apply(view, position, &commit, &events, &mut commit_rows) {
                    Ok(()) => {
                        self.applied += 1;
                        self.rows.extend(commit_rows);
                        let changed = match view {
                            View::Book(book) => book.book_changed,
                            _ => true,
                        };
                        if changed && self.dirty_set.insert(aggregate) {
                            self.dirty.push(aggregate);
                        }
                    }
                    Err(poison) => {
                        *view = before;
                        self.dead_letter(position, origin, Some(aggregate), &poison);
                        self.quarantine(aggregate, position, poison);
                    }
                }
            }
        }
    }

    /// The rows the batch changed, to be written in this order.
    pub(crate) fn changes(&mut self) -> Vec<Change> {
        let views: Vec<&View> = self
            .dirty
            .iter()
            .filter_map(|a| self.working.get(a))
            .collect();
        view::changes(self.group, &views, std::mem::take(&mut self.rows))
    }

    /// The `last_error` a batch that quarantined something records.
    pub(crate) fn error(&self) -> Option<String> {
        self.new_quarantine.first().map(|q| {
            format!(
                "quarantined {} at position {}: {}",
                q.aggregate, q.position, q.poison.reason
            )
        })
    }

    /// After COMMIT: the views go back to the cache (those of quarantined aggregates are
    /// dropped); returns the quarantine set as it now is.
    pub(crate) fn settle(
        self,
        cache: &mut LruCache<AggregateRef, View>,
    ) -> HashMap<AggregateRef, u64> {
        for (aggregate, mut view) in self.working {
            if self.quarantined.contains_key(&aggregate) {
                cache.pop(&aggregate);
            } else {
                if let View::Book(book) = &mut view {
                    book.committed();
                }
                cache.put(aggregate, view);
            }
        }
        self.quarantined
    }
}

/// Applies an aggregate's commits, in order, to a fresh view; also returns the history
/// rows they produce (what a replay writes). `Err` with the first commit that does not
/// apply.
pub(crate) fn fold_history(
    group: Group,
    aggregate: AggregateRef,
    commits: impl IntoIterator<Item = (u64, Item)>,
) -> (Result<View, Poison>, Rows) {
    let mut view = View::empty(group, aggregate);
    let mut rows = Rows::default();
    for (position, item) in commits {
        let outcome = match item {
            Item::Apply { commit, events, .. } => {
                view::apply(&mut view, position, &commit, &events, &mut rows)
            }
            Item::Poison { poison, .. } => Err(poison),
            Item::Ignore => Ok(()),
        };
        if let Err(poison) = outcome {
            let poison = Poison {
                reason: format!("at position {position}: {}", poison.reason),
                ..poison
            };
            return (Err(poison), rows);
        }
    }
    (Ok(view), rows)
}
