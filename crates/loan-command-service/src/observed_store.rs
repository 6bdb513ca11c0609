//! The event store as the service uses it: every operation forwarded unchanged to the
//! real store, its failures counted in the instance's metrics
//! (`loan_store_errors_total{operation, kind}`), so an operator sees the log becoming
//! unreachable, conflicts piling up or a corrupt entry, not only the replies it causes.
//! Every stored commit is also signalled to the checkpoint writer
//! (`loan_store::checkpoint::AppendSignal`), which counts them towards its cadence.

use loan_store::checkpoint::AppendSignal;
use loan_store::{
    AggregateRef, Appended, CommandRecord, Commit, EventStore, History, Recorded, StoreError,
};
use uuid::Uuid;

use crate::operations::Metrics;

/// An [`EventStore`] whose failures are counted.
pub(crate) struct ObservedStore<S> {
    inner: S,
    metrics: Metrics,
    appended: AppendSignal,
}

impl<S> ObservedStore<S> {
    pub(crate) fn new(inner: S, metrics: Metrics, appended: AppendSignal) -> Self {
        ObservedStore {
            inner,
            metrics,
            appended,
        }
    }

    fn observe<T>(
        &self,
        operation: &'static str,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Err(error) = &result {
            self.metrics.store_error(operation, error);
        }
        result
    }
}

impl<S: EventStore> EventStore for ObservedStore<S> {
    async fn load(&self, aggregate: AggregateRef) -> Result<History, StoreError> {
        let result = self.inner.load(aggregate).await;
        self.observe("load", result)
    }

    async fn append(&self, commit: &Commit, expected_last: u64) -> Result<Appended, StoreError> {
        let result = self.inner.append(commit, expected_last).await;
        if let Ok(Appended::Stored { .. }) = &result {
            self.appended.appended();
        }
        self.observe("append", result)
    }

    async fn commit_at(&self, position: u64) -> Result<Option<Recorded>, StoreError> {
        let result = self.inner.commit_at(position).await;
        self.observe("commit_at", result)
    }

    async fn read_after(&self, after: u64, max: usize) -> Result<Vec<Recorded>, StoreError> {
        let result = self.inner.read_after(after, max).await;
        self.observe("read_after", result)
    }

    async fn remember_command(
        &self,
        command_id: Uuid,
        record: &CommandRecord,
    ) -> Result<(), StoreError> {
        let result = self.inner.remember_command(command_id, record).await;
        self.observe("remember_command", result)
    }

    async fn recall_command(&self, command_id: Uuid) -> Result<Option<CommandRecord>, StoreError> {
        let result = self.inner.recall_command(command_id).await;
        self.observe("recall_command", result)
    }
}
