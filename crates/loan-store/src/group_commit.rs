//! Group commit: several commands' commits written in one atomic JetStream batch.
//!
//! With `sync_interval: always` the server fsyncs every message before its PubAck, so
//! one commit per message caps the log at one fsync per command. nats-server 2.12+
//! accepts *atomic batches* (ADR-50, stream option `allow_atomic`): the messages of a
//! batch are checked together at commit, stored all or none, and synced together.
//!
//! Appends queue here. At most `depth` writes are in flight; while they wait for their
//! acknowledgement, new appends gather in the queue and leave as one batch (up to
//! `max_batch` commits, at most one per aggregate). Every message of a batch keeps its
//! own `Nats-Msg-Id` (the command id) and `Nats-Expected-Last-Subject-Sequence`, so
//! per-aggregate optimistic concurrency is exactly what it is for a single publish.
//!
//! A batch is all or nothing: if the server refuses it (one commit's expected sequence is
//! stale, a duplicate id, a limit) or its outcome is unknown, every commit of it is sent
//! again on its own, where a conflict, a duplicate or a landed earlier attempt is told
//! apart per commit ([`super::jetstream`]'s single-publish path). A lone append in the
//! queue is never held back: it goes out on its own at once, holding one of the `depth`
//! slots.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::HeaderMap;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::debug;
use uuid::Uuid;

/// How appends are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommit {
    /// Writes (batches or single publishes) in flight at once. Smaller gathers larger
    /// batches; the server accepts at most 50 open batches per stream.
    pub depth: usize,
    /// Most commits in one batch (the server's limit is 1000 messages).
    pub max_batch: usize,
    /// Fewest commits worth a batch: a batch commit costs the server a fixed ~15–20 ms
    /// here whatever the sync setting (docs/performance.md), so fewer queued commits are
    /// published one by one.
    pub min_batch: usize,
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit {
            depth: 4,
            max_batch: 256,
            min_batch: 16,
        }
    }
}

/// One commit waiting to be written.
pub(crate) struct Pending {
    pub(crate) subject: String,
    pub(crate) command_id: Uuid,
    pub(crate) expected_last: u64,
    pub(crate) payload: bytes::Bytes,
    pub(crate) done: oneshot::Sender<Written>,
}

/// What became of a queued commit.
pub(crate) enum Written {
    /// Stored by a batch at this stream sequence.
    Stored(u64),
    /// Not written by a batch: the caller publishes it on its own, holding `slot` (if
    /// any) until its acknowledgement, so the in-flight limit still holds.
    Alone(Option<OwnedSemaphorePermit>),
}

/// Counters of the group commit since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Batches the server committed.
    pub batches: u64,
    /// Commits written by those batches.
    pub batched_commits: u64,
    /// Batches not committed as a whole (their commits were then published one by one).
    pub refused_batches: u64,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    batched_commits: AtomicU64,
    refused_batches: AtomicU64,
}

/// The queue in front of the log.
#[derive(Clone)]
pub(crate) struct Appender {
    queue: mpsc::Sender<Pending>,
    counters: Arc<Counters>,
}

impl Appender {
    pub(crate) fn start(client: async_nats::Client, config: GroupCommit) -> Self {
        let (queue, receiver) = mpsc::channel(config.max_batch.max(1) * 8);
        let counters = Arc::new(Counters::default());
        tokio::spawn(write_batches(client, config, receiver, counters.clone()));
        Appender { queue, counters }
    }

    pub(crate) fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            batched_commits: self.counters.batched_commits.load(Ordering::Relaxed),
            refused_batches: self.counters.refused_batches.load(Ordering::Relaxed),
        }
    }

    /// Queues a commit; `None` if the writer is gone (the caller publishes alone).
    pub(crate) async fn write(
        &self,
        subject: String,
        command_id: Uuid,
        expected_last: u64,
        payload: bytes::Bytes,
    ) -> Written {
        let (done, outcome) = oneshot::channel();
        let pending = Pending {
            subject,
            command_id,
            expected_last,
            payload,
            done,
        };
        if self.queue.send(pending).await.is_err() {
            return Written::Alone(None);
        }
        outcome.await.unwrap_or(Written::Alone(None))
    }
}

/// The writer: takes a slot, then everything queued (one commit per subject), and sends
/// it as one batch, or hands a lone commit back to its caller.
async fn write_batches(
    client: async_nats::Client,
    config: GroupCommit,
    mut receiver: mpsc::Receiver<Pending>,
    counters: Arc<Counters>,
) {
    let slots = Arc::new(Semaphore::new(config.depth.max(1)));
    let mut carried: Vec<Pending> = Vec::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::new();
        let mut subjects = HashSet::new();
        let mut later = Vec::new();
        for pending in carried.drain(..) {
            take(
                &mut batch,
                &mut subjects,
                &mut later,
                pending,
                config.max_batch,
            );
        }
        if batch.is_empty() {
            match receiver.recv().await {
                Some(pending) => take(
                    &mut batch,
                    &mut subjects,
                    &mut later,
                    pending,
                    config.max_batch,
                ),
                None => return,
            }
        }
        while batch.len() < config.max_batch {
            match receiver.try_recv() {
                Ok(pending) => take(
                    &mut batch,
                    &mut subjects,
                    &mut later,
                    pending,
                    config.max_batch,
                ),
                Err(_) => break,
            }
        }
        carried = later;
        if batch.len() < config.min_batch.max(2) {
            // Too few to be worth a batch: each is published alone; the first holds the
            // slot, so that while the writes in flight use every slot, the queue fills.
            let mut slot = Some(slot);
            for pending in batch {
                let _ = pending.done.send(Written::Alone(slot.take()));
            }
            continue;
        }
        let client = client.clone();
        let counters = counters.clone();
        tokio::spawn(async move {
            send_batch(&client, batch, &counters).await;
            drop(slot);
        });
    }
}

/// Adds `pending` to the batch unless its subject is already in it (a second commit to
/// one aggregate waits for the next batch: the server checks expected sequences against
/// the stream as it was before the batch).
fn take(
    batch: &mut Vec<Pending>,
    subjects: &mut HashSet<String>,
    later: &mut Vec<Pending>,
    pending: Pending,
    max_batch: usize,
) {
    if batch.len() < max_batch && subjects.insert(pending.subject.clone()) {
        batch.push(pending);
    } else {
        later.push(pending);
    }
}

/// The server's answer to a batch commit.
#[derive(Debug, Deserialize)]
struct BatchAck {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    count: usize,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

async fn send_batch(client: &async_nats::Client, batch: Vec<Pending>, counters: &Counters) {
    let batch_id = Uuid::now_v7().simple().to_string();
    let last = batch.len();
    let mut outcome: Result<BatchAck, String> = Err("not sent".into());
    for (i, pending) in batch.iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Batch-Id", batch_id.as_str());
        headers.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
        headers.insert("Nats-Msg-Id", pending.command_id.to_string().as_str());
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            pending.expected_last.to_string().as_str(),
        );
        if i + 1 < last {
            if let Err(error) = client
                .publish_with_headers(pending.subject.clone(), headers, pending.payload.clone())
                .await
            {
                outcome = Err(error.to_string());
                break;
            }
        } else {
            headers.insert("Nats-Batch-Commit", "1");
            outcome = match client
                .request_with_headers(pending.subject.clone(), headers, pending.payload.clone())
                .await
            {
                Ok(reply) => serde_json::from_slice::<BatchAck>(&reply.payload)
                    .map_err(|e| format!("unreadable batch acknowledgement: {e}")),
                Err(error) => Err(error.to_string()),
            };
        }
    }
    match outcome {
        Ok(ack) if ack.error.is_none() && ack.count == last && ack.seq >= last as u64 => {
            debug!(batch = %batch_id, commits = last, last_position = ack.seq, "batch committed");
            counters.batches.fetch_add(1, Ordering::Relaxed);
            counters
                .batched_commits
                .fetch_add(last as u64, Ordering::Relaxed);
            let first = ack.seq + 1 - last as u64;
            for (i, pending) in batch.into_iter().enumerate() {
                let _ = pending.done.send(Written::Stored(first + i as u64));
            }
        }
        other => {
            // Refused, partly deduplicated, or unknown: each commit finds out on its own.
            counters.refused_batches.fetch_add(1, Ordering::Relaxed);
            debug!(batch = %batch_id, commits = last, outcome = ?other, "batch not committed as a whole; publishing one by one");
            for pending in batch {
                let _ = pending.done.send(Written::Alone(None));
            }
        }
    }
}
