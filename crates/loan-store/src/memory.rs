//! An in-memory [`EventStore`] that keeps every commit as the bytes a real backend
//! would store (`Commit::to_bytes`), so tests can search what actually reaches storage
//! and benchmarks can measure the engine without a server. Passes the conformance suite.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{
    AggregateRef, Appended, CommandRecord, Commit, EventStore, History, Recorded, StoreError,
};
use uuid::Uuid;

#[derive(Default)]
struct Log {
    /// Position `i + 1` holds `entries[i]`.
    entries: Vec<(AggregateRef, Uuid, Vec<u8>)>,
    commands: HashMap<Uuid, CommandRecord>,
}

/// Clones share the log, so several engines (each with its own cache) can use one store.
#[derive(Clone, Default)]
pub struct MemoryStore {
    log: Arc<Mutex<Log>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored bytes of every commit, in log order.
    pub fn raw(&self) -> Vec<Vec<u8>> {
        self.lock()
            .entries
            .iter()
            .map(|(_, _, bytes)| bytes.clone())
            .collect()
    }

    /// Every commit's aggregate and stored bytes, in log order (to copy a log elsewhere).
    pub fn entries(&self) -> Vec<(AggregateRef, Vec<u8>)> {
        self.lock()
            .entries
            .iter()
            .map(|(aggregate, _, bytes)| (*aggregate, bytes.clone()))
            .collect()
    }

    fn decode(position: u64, bytes: &[u8]) -> Result<Recorded, StoreError> {
        Commit::from_bytes(bytes)
            .map(|commit| Recorded {
                position,
                commit,
                hash: crate::chain_hash(bytes),
            })
            .map_err(|e| StoreError::Corrupt {
                position,
                reason: e.to_string(),
            })
    }
}

impl EventStore for MemoryStore {
    async fn load(&self, aggregate: AggregateRef) -> Result<History, StoreError> {
        let log = self.lock();
        let commits = log
            .entries
            .iter()
            .zip(1..)
            .filter(|((a, _, _), _)| *a == aggregate)
            .map(|((_, _, bytes), position)| Self::decode(position, bytes))
            .collect::<Result<_, _>>()?;
        Ok(History { commits })
    }

    async fn append(&self, commit: &Commit, expected_last: u64) -> Result<Appended, StoreError> {
        let mut log = self.lock();
        if let Some(index) = log
            .entries
            .iter()
            .position(|(_, id, _)| *id == commit.command_id)
        {
            return Ok(Appended::Duplicate {
                position: index as u64 + 1,
            });
        }
        let last = log
            .entries
            .iter()
            .zip(1..)
            .filter(|((a, _, _), _)| *a == commit.aggregate)
            .map(|(_, position)| position)
            .last()
            .unwrap_or(0);
        if last != expected_last {
            return Err(StoreError::Conflict {
                aggregate: commit.aggregate,
                expected: expected_last,
            });
        }
        let bytes = commit.to_bytes();
        let hash = crate::chain_hash(&bytes);
        log.entries
            .push((commit.aggregate, commit.command_id, bytes));
        Ok(Appended::Stored {
            position: log.entries.len() as u64,
            hash,
        })
    }

    async fn commit_at(&self, position: u64) -> Result<Option<Recorded>, StoreError> {
        let log = self.lock();
        let index = usize::try_from(position).unwrap_or(usize::MAX);
        match index.checked_sub(1).and_then(|i| log.entries.get(i)) {
            Some((_, _, bytes)) => Self::decode(position, bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn read_after(&self, after: u64, max: usize) -> Result<Vec<Recorded>, StoreError> {
        let log = self.lock();
        log.entries
            .iter()
            .zip(1..)
            .skip(usize::try_from(after).unwrap_or(usize::MAX))
            .take(max)
            .map(|((_, _, bytes), position)| Self::decode(position, bytes))
            .collect()
    }

    async fn remember_command(
        &self,
        command_id: Uuid,
        record: &CommandRecord,
    ) -> Result<(), StoreError> {
        self.lock().commands.insert(command_id, record.clone());
        Ok(())
    }

    async fn recall_command(&self, command_id: Uuid) -> Result<Option<CommandRecord>, StoreError> {
        Ok(self.lock().commands.get(&command_id).cloned())
    }
}
