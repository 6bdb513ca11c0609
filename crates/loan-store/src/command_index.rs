//! The index of applied command ids in a JetStream KV bucket, written by group commit.
//!
//! Idempotency beyond the stream's duplicate window needs a record per applied command.
//! Writing one KV entry per command would double the server's writes (and, with
//! `sync_interval: always`, its fsyncs). Instead, records of UUID v7 command ids are
//! grouped: a background writer takes every record waiting (up to [`MAX_BATCH`]) and
//! writes ONE entry per 100 ms bucket of the ids' own timestamps, under the key
//! `idx.<bucket>.<writer>.<n>`. A caller of [`CommandIndex::remember`] still returns
//! only once its record is durably stored (group commit: its batch's put was acked).
//!
//! A lookup of a v7 id reads the entries of its bucket with direct gets on the bucket's
//! stream (subject `$KV.<bucket>.idx.<bucket>.>`), a handful per 100 ms: it is the rare
//! path (a retry after the duplicate window). Ids of other UUID versions have no usable
//! timestamp and get one entry each, `cmd.<id>`.

use std::collections::BTreeMap;

use async_nats::jetstream::{self, kv, stream};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;
use uuid::Uuid;

use crate::{CommandRecord, StoreError};

/// Most records written in one KV entry (about 200 bytes each).
pub const MAX_BATCH: usize = 1000;
/// Width of a bucket of command-id timestamps, in milliseconds.
const BUCKET_MS: u64 = 100;

type Pending = (Uuid, CommandRecord, oneshot::Sender<Result<(), String>>);

/// Handle to the index; cheap to clone.
#[derive(Clone)]
pub(crate) struct CommandIndex {
    kv: kv::Store,
    /// The KV bucket's own stream (for direct gets by subject).
    stream: stream::Stream,
    bucket: String,
    writer: mpsc::Sender<Pending>,
}

fn bucket_of(id: Uuid) -> Option<u64> {
    if id.get_version_num() != 7 {
        return None;
    }
    let (seconds, nanos) = id.get_timestamp()?.to_unix();
    Some((seconds * 1000 + u64::from(nanos / 1_000_000)) / BUCKET_MS)
}

impl CommandIndex {
    pub(crate) async fn open(
        context: &jetstream::Context,
        kv: kv::Store,
        bucket: String,
    ) -> Result<Self, StoreError> {
        let stream = context
            .get_stream(format!("KV_{bucket}"))
            .await
            .map_err(|e| {
                StoreError::unavailable(format!("opening the stream of bucket {bucket}"), e)
            })?;
        let (writer, pending) = mpsc::channel(16 * MAX_BATCH);
        tokio::spawn(write_batches(
            kv.clone(),
            Uuid::now_v7().simple().to_string(),
            pending,
        ));
        Ok(CommandIndex {
            kv,
            stream,
            bucket,
            writer,
        })
    }

    pub(crate) async fn remember(
        &self,
        command_id: Uuid,
        record: &CommandRecord,
    ) -> Result<(), StoreError> {
        if bucket_of(command_id).is_none() {
            let value = serde_json::to_vec(record).unwrap_or_default();
            return self
                .kv
                .put(format!("cmd.{command_id}"), value.into())
                .await
                .map(|_| ())
                .map_err(|e| StoreError::unavailable("remembering a command id", e));
        }
        let (done, written) = oneshot::channel();
        self.writer
            .send((command_id, record.clone(), done))
            .await
            .map_err(|_| StoreError::Unavailable {
                context: "the command index writer stopped".into(),
                source: None,
            })?;
        match written.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Unavailable {
                context: format!("remembering a command id: {reason}"),
                source: None,
            }),
            Err(_) => Err(StoreError::Unavailable {
                context: "the command index writer stopped".into(),
                source: None,
            }),
        }
    }

    pub(crate) async fn recall(
        &self,
        command_id: Uuid,
    ) -> Result<Option<CommandRecord>, StoreError> {
        let Some(bucket) = bucket_of(command_id) else {
            let value = self
                .kv
                .get(format!("cmd.{command_id}"))
                .await
                .map_err(|e| StoreError::unavailable("recalling a command id", e))?;
            return value.map(|bytes| decode_record(&bytes)).transpose();
        };
        let subject = format!("$KV.{}.idx.{bucket}.>", self.bucket);
        let mut next = 1;
        loop {
            match self
                .stream
                .direct_get_next_for_subject(&subject, Some(next))
                .await
            {
                Ok(message) => {
                    next = message.sequence + 1;
                    if message.payload.is_empty() {
                        continue; // a delete or purge marker
                    }
                    let batch: BTreeMap<Uuid, CommandRecord> =
                        serde_json::from_slice(&message.payload).map_err(|e| {
                            StoreError::Corrupt {
                                position: message.sequence,
                                reason: format!("command index entry: {e}"),
                            }
                        })?;
                    if let Some(record) = batch.get(&command_id) {
                        return Ok(Some(record.clone()));
                    }
                }
                Err(error) if error.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                    return Ok(None);
                }
                Err(error) => return Err(StoreError::unavailable("recalling a command id", error)),
            }
        }
    }
}

fn decode_record(bytes: &[u8]) -> Result<CommandRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        position: 0,
        reason: format!("command record: {e}"),
    })
}

/// The background writer: takes what is waiting, writes one entry per bucket, answers.
async fn write_batches(kv: kv::Store, writer_id: String, mut pending: mpsc::Receiver<Pending>) {
    let mut sequence: u64 = 0;
    while let Some(first) = pending.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let mut by_bucket: BTreeMap<u64, Vec<Pending>> = BTreeMap::new();
        for item in batch {
            let bucket = bucket_of(item.0).unwrap_or(0);
            by_bucket.entry(bucket).or_default().push(item);
        }
        for (bucket, items) in by_bucket {
            sequence += 1;
            let records: BTreeMap<&Uuid, &CommandRecord> =
                items.iter().map(|(id, record, _)| (id, record)).collect();
            let value = serde_json::to_vec(&records).unwrap_or_default();
            let outcome = kv
                .put(format!("idx.{bucket}.{writer_id}.{sequence}"), value.into())
                .await;
            if let Err(error) = &outcome {
                warn!(%error, records = items.len(), "writing a command index entry failed");
            }
            for (_, _, done) in items {
                let _ = done.send(outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            }
        }
    }
}
