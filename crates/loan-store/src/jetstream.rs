//! The event store on NATS JetStream.
//!
//! * One stream (name configurable) capturing `<prefix>.events.>`, file storage,
//!   configurable replicas, `deny_delete` + `deny_purge` and no rollups (the audit log is
//!   append-only), direct get allowed, a maximum message size, and a duplicate window.
//! * One subject per aggregate: `<prefix>.events.<aggregate>.<id>`. A commit is one
//!   message, so a command is never half in the log.
//! * The log's checkpoints ([`crate::checkpoint`]) on `<prefix>.checkpoints`, captured by
//!   the same stream (so they take positions in the same sequence) but outside
//!   `<prefix>.events.>`, which is what every consumer of the events filters on. Each is
//!   published with `Nats-Expected-Last-Sequence` = the position it covers. Where the log
//!   of commits ends is [`last_commit_position`], not the stream's last sequence.
//! * Optimistic concurrency: each append carries `Nats-Expected-Last-Subject-Sequence`,
//!   the STREAM sequence of the aggregate's last commit (the aggregate version lives in
//!   the commit itself). A mismatch is [`StoreError::Conflict`].
//! * `Nats-Msg-Id` = command id: a retried publish (after a PubAck timeout, an unknown
//!   outcome) is stored once within the duplicate window.
//! * Applied command ids are kept in a KV bucket (`<stream>_COMMANDS`) for at least the
//!   configured retention (default 7 days), for idempotency beyond the duplicate window,
//!   written by group commit ([`crate::command_index`]).
//!
//! Durability: with `sync_interval: always` on the server, a PubAck means the message
//! was fsynced on every replica that acknowledged it: with R1, on the one server; with
//! R3, on a majority (2 of 3) before the ack. With the default sync interval the data is
//! in the OS page cache and survives a process crash but not a power loss of the node
//! (with R3: not of a majority of nodes at once).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, kv, stream};
use futures::StreamExt;
use loan_contract::Subjects;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::checkpoint::{
    CheckpointBase, CheckpointFold, CheckpointLog, CheckpointOutcome, CheckpointRecord,
};
use crate::command_index::CommandIndex;
use crate::group_commit::{Appender, GroupCommit, GroupCommitStats, Written};
use crate::{
    AggregateRef, Appended, CommandRecord, Commit, EventStore, History, Recorded, StoreError,
};

/// How the stream and the command bucket are set up.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Stream name, e.g. `LENDING_EVENTS`.
    pub stream: String,
    pub subjects: Subjects,
    /// 1 on a development box, 3 in production.
    pub replicas: usize,
    /// Window in which JetStream deduplicates by `Nats-Msg-Id`.
    pub duplicate_window: Duration,
    /// How long applied command ids are remembered (at least 24 h).
    pub command_retention: Duration,
    /// Largest commit accepted, in bytes.
    pub max_message_size: usize,
    /// Times a publish that timed out is retried with the same message id.
    pub publish_retries: u32,
    /// Group commit of concurrent appends into atomic batches ([`crate::group_commit`]),
    /// off by default: it pays only with `sync_interval: always` under heavy concurrency
    /// (docs/performance.md). Used only where the server has atomic batches (2.12+).
    pub group_commit: Option<GroupCommit>,
}

impl StoreConfig {
    pub fn new(stream: impl Into<String>, subjects: Subjects) -> Self {
        StoreConfig {
            stream: stream.into(),
            subjects,
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            command_retention: Duration::from_secs(7 * 24 * 3600),
            max_message_size: 1024 * 1024,
            publish_retries: 3,
            group_commit: None,
        }
    }
}

/// [`EventStore`] on a JetStream stream.
#[derive(Clone)]
pub struct JetStreamStore {
    context: jetstream::Context,
    stream: stream::Stream,
    commands: CommandIndex,
    appender: Option<Appender>,
    config: StoreConfig,
}

impl JetStreamStore {
    /// Creates (or updates) the stream and the command bucket, and returns the store.
    pub async fn open(client: async_nats::Client, config: StoreConfig) -> Result<Self, StoreError> {
        let context = jetstream::new(client);
        let max_message_size = i32::try_from(config.max_message_size).unwrap_or(i32::MAX);
        let stream_config = stream::Config {
            name: config.stream.clone(),
            description: Some("Loan engine event log: one commit per command, append-only.".into()),
            subjects: vec![config.subjects.all_events(), config.subjects.checkpoints()],
            storage: stream::StorageType::File,
            num_replicas: config.replicas,
            retention: stream::RetentionPolicy::Limits,
            deny_delete: true,
            deny_purge: true,
            allow_rollup: false,
            allow_direct: true,
            max_message_size,
            duplicate_window: config.duplicate_window,
            allow_atomic_publish: config.group_commit.is_some(),
            ..Default::default()
        };
        let info = context
            .create_or_update_stream(stream_config)
            .await
            .map_err(|e| {
                StoreError::unavailable(format!("creating stream {}", config.stream), e)
            })?;
        // A server older than 2.12 drops the option it does not know: no atomic batches.
        let appender = match config.group_commit {
            Some(group) if info.config.allow_atomic_publish => {
                Some(Appender::start(context.client(), group))
            }
            _ => None,
        };
        let stream = context
            .get_stream(&config.stream)
            .await
            .map_err(|e| StoreError::unavailable("opening the stream", e))?;
        let bucket = format!("{}_COMMANDS", config.stream);
        let commands = match context.get_key_value(&bucket).await {
            Ok(store) => store,
            Err(_) => context
                .create_key_value(kv::Config {
                    bucket: bucket.clone(),
                    description: "Applied command ids of the loan engine (idempotency).".into(),
                    history: 1,
                    max_age: config.command_retention,
                    storage: stream::StorageType::File,
                    num_replicas: config.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| StoreError::unavailable(format!("creating bucket {bucket}"), e))?,
        };
        let commands = CommandIndex::open(&context, commands, bucket).await?;
        Ok(JetStreamStore {
            context,
            stream,
            commands,
            appender,
            config,
        })
    }

    /// Counters of the group commit; `None` when it is off (by configuration, or on a
    /// server without atomic batches).
    pub fn group_commit_stats(&self) -> Option<GroupCommitStats> {
        self.appender.as_ref().map(Appender::stats)
    }

    fn subject(&self, aggregate: AggregateRef) -> String {
        self.config
            .subjects
            .events(aggregate.aggregate_type, aggregate.id)
    }

    fn decode(position: u64, payload: &[u8]) -> Result<Recorded, StoreError> {
        let commit = Commit::from_bytes(payload).map_err(|e| StoreError::Corrupt {
            position,
            reason: e.to_string(),
        })?;
        Ok(Recorded {
            position,
            commit,
            hash: crate::chain_hash(payload),
        })
    }

    /// The last position of an aggregate's subject (0 if none), by one direct get.
    async fn last_position(&self, subject: &str) -> Result<Option<Recorded>, StoreError> {
        match self.stream.direct_get_last_for_subject(subject).await {
            Ok(message) => Ok(Some(Self::decode(message.sequence, &message.payload)?)),
            Err(error) if error.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                Ok(None)
            }
            Err(error) => Err(StoreError::unavailable(
                format!("reading the last commit of {subject}"),
                error,
            )),
        }
    }
}

impl JetStreamStore {
    /// Position of the commit of `command_id` among the first commits on `subject` after
    /// `after`, if it is there. Bounded: a conflict is usually one or two commits behind.
    async fn find_command_after(
        &self,
        subject: &str,
        after: u64,
        command_id: Uuid,
    ) -> Result<Option<u64>, StoreError> {
        let mut next = after + 1;
        for _ in 0..16 {
            match self
                .stream
                .direct_get_next_for_subject(subject, Some(next))
                .await
            {
                Ok(message) => {
                    let recorded = Self::decode(message.sequence, &message.payload)?;
                    if recorded.commit.command_id == command_id {
                        return Ok(Some(recorded.position));
                    }
                    next = message.sequence + 1;
                }
                Err(error) if error.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                    return Ok(None);
                }
                Err(error) => {
                    return Err(StoreError::unavailable(format!("reading {subject}"), error));
                }
            }
        }
        Ok(None)
    }
}

impl JetStreamStore {
    /// Publishes one commit as its own message: PubAck timeouts retried with the same
    /// message id, a conflict caused by our own landed attempt recognised as a duplicate.
    async fn publish_alone(
        &self,
        commit: &Commit,
        subject: String,
        payload: bytes::Bytes,
        expected_last: u64,
    ) -> Result<Appended, StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", commit.command_id.to_string().as_str());
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            expected_last.to_string().as_str(),
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = match self
                .context
                .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                .await
            {
                Ok(ack) => ack.await,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(ack) if ack.duplicate => {
                    return Ok(Appended::Duplicate {
                        position: ack.sequence,
                    });
                }
                Ok(ack) => {
                    return Ok(Appended::Stored {
                        position: ack.sequence,
                        hash: crate::chain_hash(&payload),
                    });
                }
                Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                    // The server checks the expected sequence before the message id, so a
                    // retry of a publish that did land shows up as a conflict: look for it.
                    if let Some(position) = self
                        .find_command_after(&subject, expected_last, commit.command_id)
                        .await?
                    {
                        return Ok(Appended::Duplicate { position });
                    }
                    return Err(StoreError::Conflict {
                        aggregate: commit.aggregate,
                        expected: expected_last,
                    });
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe
                    ) && attempt <= self.config.publish_retries =>
                {
                    // Unknown outcome: the same message id makes the retry safe.
                    warn!(command_id = %commit.command_id, attempt, %error, "publish outcome unknown, retrying");
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                Err(error) => {
                    return Err(StoreError::unavailable(
                        format!("appending to {subject}"),
                        error,
                    ));
                }
            }
        }
    }
}

/// Position of the last commit in `stream` (0 if none), read from the stream leader: the
/// head consumers of the events catch up to. The stream's last sequence may be a
/// checkpoint, which no consumer of `<prefix>.events.>` receives.
pub async fn last_commit_position(
    stream: &stream::Stream,
    subjects: &Subjects,
) -> Result<u64, StoreError> {
    match stream
        .get_last_raw_message_by_subject(&subjects.all_events())
        .await
    {
        Ok(message) => Ok(message.sequence),
        Err(error) if error.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(error) => Err(StoreError::unavailable(
            "reading the position of the last commit",
            error,
        )),
    }
}

/// A checkpoint computed over the log up to `checkpoint.covers`, not yet published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCheckpoint {
    pub checkpoint: crate::checkpoint::Checkpoint,
}

impl JetStreamStore {
    /// The position of the last commit (0 if none): see [`last_commit_position`].
    pub async fn last_commit_position(&self) -> Result<u64, StoreError> {
        last_commit_position(&self.stream, &self.config.subjects).await
    }

    /// Computes the checkpoint over everything in the stream now: the last checkpoint
    /// (read from the stream leader), the stream's last sequence, and the fold of every
    /// commit in between. `None` when there is nothing to cover (no commit after the last
    /// checkpoint, or the last message is another writer's checkpoint).
    pub async fn prepare_checkpoint(
        &self,
        written_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<PreparedCheckpoint>, StoreError> {
        let base = match self.last_checkpoint().await? {
            Some(record) => CheckpointBase::after(&record),
            None => CheckpointBase::start(),
        };
        let head = self
            .stream
            .get_info()
            .await
            .map_err(|e| StoreError::unavailable("reading the stream's last sequence", e))?
            .state
            .last_sequence;
        if head <= base.position {
            return Ok(None);
        }
        let mut fold = CheckpointFold::new(base);
        self.fold_commits(&mut fold, head).await?;
        if fold.last_position() != head || fold.commits_since_base() == 0 {
            // The message at the head is not a commit: another writer's checkpoint.
            return Ok(None);
        }
        Ok(Some(PreparedCheckpoint {
            checkpoint: fold.checkpoint(written_at),
        }))
    }

    /// Folds the commits after the fold's last position, up to `head`, read with an
    /// ordered consumer (served by the stream leader, in batches).
    async fn fold_commits(&self, fold: &mut CheckpointFold, head: u64) -> Result<(), StoreError> {
        let subject = self.config.subjects.all_events();
        let consumer = self
            .stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: subject.clone(),
                deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: fold.last_position() + 1,
                },
                max_batch: 1000,
                ..Default::default()
            })
            .await
            .map_err(|e| StoreError::unavailable("reading commits for a checkpoint", e))?;
        if consumer.cached_info().num_pending == 0 {
            return Ok(());
        }
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| StoreError::unavailable("reading commits for a checkpoint", e))?;
        while let Some(message) = messages.next().await {
            let message = message
                .map_err(|e| StoreError::unavailable("reading commits for a checkpoint", e))?;
            let info = message.info().map_err(|e| StoreError::Corrupt {
                position: 0,
                reason: e.to_string(),
            })?;
            let (position, pending) = (info.stream_sequence, info.pending);
            if position > head {
                break;
            }
            fold.push(position, &crate::chain_hash(&message.payload));
            if position == head || pending == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Appends a prepared checkpoint on the condition that the stream still ends at the
    /// position it covers (`Nats-Expected-Last-Sequence`); otherwise
    /// [`CheckpointOutcome::Raced`] and nothing is written.
    pub async fn publish_checkpoint(
        &self,
        prepared: &PreparedCheckpoint,
    ) -> Result<CheckpointOutcome, StoreError> {
        let covers = prepared.checkpoint.covers;
        let bytes = prepared.checkpoint.to_bytes();
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Expected-Last-Sequence", covers.to_string().as_str());
        let subject = self.config.subjects.checkpoints();
        let outcome = match self
            .context
            .publish_with_headers(subject.clone(), headers, bytes::Bytes::from(bytes.clone()))
            .await
        {
            Ok(ack) => ack.await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(ack) => Ok(CheckpointOutcome::Written(CheckpointRecord {
                position: ack.sequence,
                checkpoint: prepared.checkpoint.clone(),
                hash: crate::chain_hash(&bytes),
            })),
            Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                Ok(CheckpointOutcome::Raced { covers })
            }
            Err(error) => Err(StoreError::unavailable(
                format!("appending a checkpoint to {subject}"),
                error,
            )),
        }
    }

    /// Up to `max` checkpoints after position `after`, in log order.
    pub async fn checkpoints_after(
        &self,
        after: u64,
        max: usize,
    ) -> Result<Vec<CheckpointRecord>, StoreError> {
        let subject = self.config.subjects.checkpoints();
        let mut out = Vec::new();
        let mut next = after + 1;
        while out.len() < max {
            match self
                .stream
                .direct_get_next_for_subject(&subject, Some(next))
                .await
            {
                Ok(message) => {
                    next = message.sequence + 1;
                    out.push(CheckpointRecord::decode(
                        message.sequence,
                        &message.payload,
                    )?);
                }
                Err(error) if error.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                    break;
                }
                Err(error) => {
                    return Err(StoreError::unavailable(
                        format!("reading checkpoints after position {after}"),
                        error,
                    ));
                }
            }
        }
        Ok(out)
    }
}

impl CheckpointLog for JetStreamStore {
    async fn write_checkpoint(
        &self,
        written_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<CheckpointOutcome, StoreError> {
        match self.prepare_checkpoint(written_at).await? {
            Some(prepared) => self.publish_checkpoint(&prepared).await,
            None => Ok(CheckpointOutcome::UpToDate),
        }
    }

    async fn last_checkpoint(&self) -> Result<Option<CheckpointRecord>, StoreError> {
        match self
            .stream
            .get_last_raw_message_by_subject(&self.config.subjects.checkpoints())
            .await
        {
            Ok(message) => Ok(Some(CheckpointRecord::decode(
                message.sequence,
                &message.payload,
            )?)),
            Err(error) if error.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                Ok(None)
            }
            Err(error) => Err(StoreError::unavailable(
                "reading the last checkpoint",
                error,
            )),
        }
    }
}

impl EventStore for JetStreamStore {
    async fn load(&self, aggregate: AggregateRef) -> Result<History, StoreError> {
        let subject = self.subject(aggregate);
        // One direct get tells whether the aggregate exists and where its history ends.
        let Some(last) = self.last_position(&subject).await? else {
            return Ok(History::default());
        };
        if last.commit.base_version == 0 {
            return Ok(History {
                commits: vec![last],
            });
        }
        // Otherwise stream the subject with an ordered consumer up to that position.
        let consumer = self
            .stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: subject.clone(),
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| StoreError::unavailable(format!("reading {subject}"), e))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| StoreError::unavailable(format!("reading {subject}"), e))?;
        let mut commits = Vec::new();
        while let Some(message) = messages.next().await {
            let message =
                message.map_err(|e| StoreError::unavailable(format!("reading {subject}"), e))?;
            let position = message
                .info()
                .map_err(|e| StoreError::Corrupt {
                    position: 0,
                    reason: e.to_string(),
                })?
                .stream_sequence;
            if position > last.position {
                break;
            }
            commits.push(Self::decode(position, &message.payload)?);
            if position == last.position {
                break;
            }
        }
        Ok(History { commits })
    }

    async fn append(&self, commit: &Commit, expected_last: u64) -> Result<Appended, StoreError> {
        let payload = commit.to_bytes();
        if payload.len() > self.config.max_message_size {
            return Err(StoreError::TooLarge {
                bytes: payload.len(),
                max: self.config.max_message_size,
            });
        }
        let subject = self.subject(commit.aggregate);
        let payload = bytes::Bytes::from(payload);
        let Some(appender) = &self.appender else {
            return self
                .publish_alone(commit, subject, payload, expected_last)
                .await;
        };
        match appender
            .write(
                subject.clone(),
                commit.command_id,
                expected_last,
                payload.clone(),
            )
            .await
        {
            Written::Stored(position) => Ok(Appended::Stored {
                position,
                hash: crate::chain_hash(&payload),
            }),
            Written::Alone(slot) => {
                let outcome = self
                    .publish_alone(commit, subject, payload, expected_last)
                    .await;
                drop(slot);
                outcome
            }
        }
    }

    async fn commit_at(&self, position: u64) -> Result<Option<Recorded>, StoreError> {
        match self.stream.direct_get(position).await {
            Ok(message) => Ok(Some(Self::decode(message.sequence, &message.payload)?)),
            Err(error) if error.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                Ok(None)
            }
            Err(error) => Err(StoreError::unavailable(
                format!("reading position {position}"),
                error,
            )),
        }
    }

    async fn read_after(&self, after: u64, max: usize) -> Result<Vec<Recorded>, StoreError> {
        let mut out = Vec::new();
        let mut next = after + 1;
        while out.len() < max {
            match self
                .stream
                .direct_get_next_for_subject(self.config.subjects.all_events(), Some(next))
                .await
            {
                Ok(message) => {
                    next = message.sequence + 1;
                    out.push(Self::decode(message.sequence, &message.payload)?);
                }
                Err(error) if error.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                    break;
                }
                Err(error) => {
                    return Err(StoreError::unavailable(
                        format!("reading after position {after}"),
                        error,
                    ));
                }
            }
        }
        debug!(after, count = out.len(), "read commits");
        Ok(out)
    }

    async fn remember_command(
        &self,
        command_id: Uuid,
        record: &CommandRecord,
    ) -> Result<(), StoreError> {
        self.commands.remember(command_id, record).await
    }

    async fn recall_command(&self, command_id: Uuid) -> Result<Option<CommandRecord>, StoreError> {
        self.commands.recall(command_id).await
    }
}
