//! The log as auditors read it: commits (and, for those who verify, the log's checkpoints)
//! in log order, each with its position, its subject and its stored bytes, from a live JetStream stream, an export file, or an embedded
//! SQLite store (the embedded mode's file, or one an export was imported into).
//!
//! The bytes are kept exactly as stored, never re-serialised, because the hash chain is
//! computed over them. A live stream is read with an ordered pull consumer, which fetches
//! the messages in batches (one round trip per batch, not one per commit) and is bounded
//! by the stream's last sequence when reading started, so a busy stream does not keep an
//! audit running for ever.
//!
//! Checkpoints ([`loan_store::checkpoint`]) are read only when asked for
//! ([`LogReader::with_checkpoints`], [`LiveLog::read_all_with_checkpoints`],
//! [`EmbeddedLog::read_all_with_checkpoints`]): export, verify and import need them;
//! history, state and reports read commits only.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_nats::jetstream::{self, consumer};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use loan_contract::Subjects;
use loan_domain::AggregateType;
use loan_engine::{MasterKey, Vault};
use loan_store::keys::{JetStreamKeyStore, KeyStoreConfig};
use loan_store::sqlite::{SqliteStore, StoredEntry};
use loan_store::{AggregateRef, Commit, Recorded, chain_hash};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::AuditError;

/// What a log entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Commit,
    Checkpoint,
}

/// One commit (or checkpoint) as stored, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Position in the log (the JetStream stream sequence).
    pub position: u64,
    /// The subject it was published on, `<prefix>.events.<aggregate>.<id>` (a
    /// checkpoint: `<prefix>.checkpoints`).
    pub subject: String,
    /// The stored bytes (single-line JSON).
    pub bytes: Vec<u8>,
    pub kind: EntryKind,
}

impl LogEntry {
    /// A commit stored at `position` on `subject`.
    pub fn commit_entry(position: u64, subject: String, bytes: Vec<u8>) -> Self {
        LogEntry {
            position,
            subject,
            bytes,
            kind: EntryKind::Commit,
        }
    }

    pub fn is_checkpoint(&self) -> bool {
        self.kind == EntryKind::Checkpoint
    }

    /// The decoded commit.
    pub fn commit(&self) -> Result<Commit, AuditError> {
        Commit::from_bytes(&self.bytes).map_err(|e| AuditError::Corrupt {
            position: self.position,
            reason: format!("the commit does not decode: {e}"),
        })
    }

    /// The decoded commit with its position and chain hash, as the store returns it.
    pub fn recorded(&self) -> Result<Recorded, AuditError> {
        Ok(Recorded {
            position: self.position,
            commit: self.commit()?,
            hash: chain_hash(&self.bytes),
        })
    }
}

/// One line of an export file: `{"position":N,"subject":"…","commit":<commit as stored>}`,
/// or for a checkpoint `{"position":N,"subject":"…","checkpoint":<checkpoint as stored>}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportLine<'a> {
    position: u64,
    subject: String,
    #[serde(borrow, default)]
    commit: Option<&'a RawValue>,
    #[serde(borrow, default)]
    checkpoint: Option<&'a RawValue>,
}

/// The export line of an entry (with its trailing newline). The commit (or checkpoint) is
/// written as its stored bytes, unchanged.
pub fn export_line(entry: &LogEntry) -> Vec<u8> {
    #[derive(Serialize)]
    struct Head<'a> {
        position: u64,
        subject: &'a str,
    }
    let head = serde_json::to_vec(&Head {
        position: entry.position,
        subject: &entry.subject,
    })
    .unwrap_or_default();
    // `{"position":N,"subject":"…"}` → `{"position":N,"subject":"…","commit":<bytes>}`
    let mut line = Vec::with_capacity(head.len() + entry.bytes.len() + 12);
    line.extend_from_slice(&head[..head.len().saturating_sub(1)]);
    line.extend_from_slice(match entry.kind {
        EntryKind::Commit => b",\"commit\":".as_slice(),
        EntryKind::Checkpoint => b",\"checkpoint\":".as_slice(),
    });
    line.extend_from_slice(&entry.bytes);
    line.extend_from_slice(b"}\n");
    line
}

/// Parses an export line (without its newline).
pub fn parse_export_line(line: &[u8]) -> Result<LogEntry, String> {
    let parsed: ExportLine<'_> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let (kind, bytes) = match (parsed.commit, parsed.checkpoint) {
        (Some(commit), None) => (EntryKind::Commit, commit),
        (None, Some(checkpoint)) => (EntryKind::Checkpoint, checkpoint),
        _ => return Err("a line holds exactly one of `commit` and `checkpoint`".into()),
    };
    Ok(LogEntry {
        position: parsed.position,
        subject: parsed.subject,
        bytes: bytes.get().as_bytes().to_vec(),
        kind,
    })
}

/// A JetStream stream holding the event log.
#[derive(Clone)]
pub struct LiveLog {
    client: async_nats::Client,
    stream: String,
    subjects: Subjects,
}

impl LiveLog {
    /// Connects to `url`; `prefix` is the deployment's subject prefix.
    pub async fn connect(url: &str, stream: &str, prefix: &str) -> Result<Self, AuditError> {
        let client = async_nats::connect(url)
            .await
            .map_err(|e| AuditError::stream(&format!("connecting to {url}"), e))?;
        Self::with_client(client, stream, prefix)
    }

    pub fn with_client(
        client: async_nats::Client,
        stream: &str,
        prefix: &str,
    ) -> Result<Self, AuditError> {
        let subjects = Subjects::new(prefix).map_err(AuditError::Invalid)?;
        Ok(LiveLog {
            client,
            stream: stream.to_owned(),
            subjects,
        })
    }

    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    async fn open_stream(&self) -> Result<jetstream::stream::Stream, AuditError> {
        jetstream::new(self.client.clone())
            .get_stream(&self.stream)
            .await
            .map_err(|e| AuditError::stream(&format!("opening stream {}", self.stream), e))
    }

    /// The stream's last position (0 if empty).
    pub async fn head(&self) -> Result<u64, AuditError> {
        let stream = self.open_stream().await?;
        let info = stream
            .get_info()
            .await
            .map_err(|e| AuditError::stream("reading the stream's state", e))?;
        Ok(info.state.last_sequence)
    }

    /// Reads positions `from..=to` (`to`: the head when called, if `None` or beyond it) of
    /// the subjects in `filter` (every event subject if empty).
    pub async fn reader(
        &self,
        from: u64,
        to: Option<u64>,
        filter: Vec<String>,
    ) -> Result<LogReader, AuditError> {
        self.open_reader(from, to, filter).await
    }

    /// Reads positions `from..=to` of every event subject and the checkpoints.
    pub async fn reader_with_checkpoints(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> Result<LogReader, AuditError> {
        let reader = self
            .open_reader(
                from,
                to,
                vec![self.subjects.all_events(), self.subjects.checkpoints()],
            )
            .await?;
        Ok(reader.with_checkpoints())
    }

    async fn open_reader(
        &self,
        from: u64,
        to: Option<u64>,
        filter: Vec<String>,
    ) -> Result<LogReader, AuditError> {
        let stream = self.open_stream().await?;
        let head = stream
            .get_info()
            .await
            .map_err(|e| AuditError::stream("reading the stream's state", e))?
            .state
            .last_sequence;
        let last = to.map_or(head, |to| to.min(head));
        let from = from.max(1);
        if head == 0 || from > last {
            return Ok(LogReader::empty(head));
        }
        let (filter_subject, filter_subjects) = match filter.len() {
            0 => (self.subjects.all_events(), Vec::new()),
            1 => (filter.into_iter().next().unwrap_or_default(), Vec::new()),
            _ => (String::new(), filter),
        };
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject,
                filter_subjects,
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                max_batch: 1000,
                ..Default::default()
            })
            .await
            .map_err(|e| AuditError::stream("creating an ordered consumer", e))?;
        // With a filter, the last message may lie well before the head: the consumer's
        // pending count tells when nothing is left (an empty selection has none at all).
        if consumer.cached_info().num_pending == 0 {
            return Ok(LogReader::empty(head));
        }
        let messages = consumer
            .messages()
            .await
            .map_err(|e| AuditError::stream("reading the stream", e))?;
        Ok(LogReader {
            source: Source::Live {
                messages: Box::new(messages),
                last,
                checkpoints: self.subjects.checkpoints(),
            },
            head,
            checkpoints: false,
        })
    }

    /// Every commit of the log, from position 1 to the head.
    pub async fn read_all(&self) -> Result<LogReader, AuditError> {
        self.reader(1, None, Vec::new()).await
    }

    /// Every commit and checkpoint of the log, from position 1 to the head.
    pub async fn read_all_with_checkpoints(&self) -> Result<LogReader, AuditError> {
        self.reader_with_checkpoints(1, None).await
    }

    /// Every commit of one aggregate (its own subject only).
    pub async fn read_aggregate(&self, aggregate: AggregateRef) -> Result<LogReader, AuditError> {
        self.reader(
            1,
            None,
            vec![self.subjects.events(aggregate.aggregate_type, aggregate.id)],
        )
        .await
    }

    /// Every loan commit (`<prefix>.events.loan.>`) up to `to`.
    pub async fn read_loans(&self, to: Option<u64>) -> Result<LogReader, AuditError> {
        let subject = format!(
            "{}.events.{}.>",
            self.subjects.prefix(),
            AggregateType::Loan.as_str()
        );
        self.reader(1, to, vec![subject]).await
    }

    /// The vault that decrypts this stream's sensitive fields: the master key and the
    /// stream's key bucket (`<stream>_KEYS`).
    pub async fn vault(&self, master: &MasterKey) -> Result<Vault, AuditError> {
        let keys = JetStreamKeyStore::open(
            self.client.clone(),
            KeyStoreConfig::for_stream(&self.stream, 1),
        )
        .await?;
        Ok(Vault::new(master, Arc::new(keys)))
    }
}

/// The event log in an embedded SQLite store: the embedded mode's file, or one an export
/// was imported into (`loan audit import`). Its data keys, if any, are in the same file.
#[derive(Clone)]
pub struct EmbeddedLog {
    store: SqliteStore,
    subjects: Subjects,
}

impl EmbeddedLog {
    /// Opens an existing store file (never creates one). `prefix` names the subjects the
    /// entries are given (`<prefix>.events.<aggregate>.<id>`), as a stream would.
    pub async fn open(path: &Path, prefix: &str) -> Result<Self, AuditError> {
        let store = SqliteStore::open_existing(path).await?;
        Self::with_store(store, prefix)
    }

    pub fn with_store(store: SqliteStore, prefix: &str) -> Result<Self, AuditError> {
        let subjects = Subjects::new(prefix).map_err(AuditError::Invalid)?;
        Ok(EmbeddedLog { store, subjects })
    }

    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// Every commit of the log, from its first position to its head when called.
    pub async fn read_all(&self) -> Result<LogReader, AuditError> {
        let head = self.store.head().await?;
        Ok(LogReader {
            source: Source::Embedded {
                log: self.clone(),
                after: 0,
                last: head,
                page: VecDeque::new(),
                checkpoints: false,
            },
            head,
            checkpoints: false,
        })
    }

    /// Every commit and checkpoint of the log, from its first position to its end when
    /// called.
    pub async fn read_all_with_checkpoints(&self) -> Result<LogReader, AuditError> {
        let end = self.store.end().await?;
        Ok(LogReader {
            source: Source::Embedded {
                log: self.clone(),
                after: 0,
                last: end,
                page: VecDeque::new(),
                checkpoints: true,
            },
            head: end,
            checkpoints: true,
        })
    }

    /// The vault that decrypts this store's sensitive fields: the master key and the data
    /// keys in the same file (an imported export brings none: see docs/audit.md).
    pub fn vault(&self, master: &MasterKey) -> Vault {
        Vault::new(master, Arc::new(self.store.key_store()))
    }
}

/// Commits an embedded store is read in, per query.
const EMBEDDED_PAGE: usize = 1000;

enum Source {
    Embedded {
        log: EmbeddedLog,
        /// The last position returned.
        after: u64,
        /// The head when reading started: nothing appended later is read.
        last: u64,
        page: VecDeque<StoredEntry>,
        /// Whether the checkpoints are read too.
        checkpoints: bool,
    },
    Live {
        messages: Box<consumer::pull::Ordered>,
        last: u64,
        /// The checkpoints' subject.
        checkpoints: String,
    },
    File {
        path: PathBuf,
        lines: Box<dyn BufRead + Send>,
        line: u64,
    },
    Done,
}

/// Commits in log order, one at a time (an export of millions of commits never has to
/// fit in memory).
pub struct LogReader {
    source: Source,
    head: u64,
    /// Whether checkpoints are returned (otherwise skipped).
    checkpoints: bool,
}

impl LogReader {
    fn empty(head: u64) -> Self {
        LogReader {
            source: Source::Done,
            head,
            checkpoints: false,
        }
    }

    /// Returns the log's checkpoints too (an export file's checkpoint lines; a live or
    /// embedded reader must also have been opened to read them).
    #[must_use]
    pub fn with_checkpoints(mut self) -> Self {
        self.checkpoints = true;
        self
    }

    /// Reads an export file (JSON lines, see [`export_line`]).
    pub fn open_export(path: &Path) -> Result<Self, AuditError> {
        let file = std::fs::File::open(path).map_err(|e| AuditError::io(path, e))?;
        Ok(Self::from_export(
            path,
            Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
        ))
    }

    /// Reads export lines from any reader; `path` names it in messages.
    pub fn from_export(path: &Path, lines: Box<dyn BufRead + Send>) -> Self {
        LogReader {
            source: Source::File {
                path: path.to_owned(),
                lines,
                line: 0,
            },
            head: 0,
            checkpoints: false,
        }
    }

    /// The log's last position when reading started (0 for a file).
    pub fn stream_head(&self) -> u64 {
        self.head
    }

    /// The next commit, or `None` at the end. In a file, a line that is not an export line
    /// is [`AuditError::Format`].
    pub async fn next(&mut self) -> Result<Option<LogEntry>, AuditError> {
        self.next_with_raw(None).await
    }

    /// As [`LogReader::next`]; for a file, also appends the raw line (with its newline, as
    /// read) to `raw`, so a caller can hash the file exactly as it is.
    pub async fn next_with_raw(
        &mut self,
        mut raw: Option<&mut Vec<u8>>,
    ) -> Result<Option<LogEntry>, AuditError> {
        loop {
            match self.next_entry(raw.as_deref_mut()).await? {
                Some(entry) if entry.is_checkpoint() && !self.checkpoints => {}
                other => return Ok(other),
            }
        }
    }

    async fn next_entry(
        &mut self,
        mut raw: Option<&mut Vec<u8>>,
    ) -> Result<Option<LogEntry>, AuditError> {
        match &mut self.source {
            Source::Done => Ok(None),
            Source::Embedded {
                log,
                after,
                last,
                page,
                checkpoints,
            } => {
                if page.is_empty() && *after < *last {
                    let read = if *checkpoints {
                        log.store.read_entries_after(*after, EMBEDDED_PAGE).await?
                    } else {
                        log.store
                            .read_stored_after(*after, EMBEDDED_PAGE)
                            .await?
                            .into_iter()
                            .map(StoredEntry::Commit)
                            .collect()
                    };
                    page.extend(read.into_iter().filter(|row| row.position() <= *last));
                }
                let Some(row) = page.pop_front() else {
                    self.source = Source::Done;
                    return Ok(None);
                };
                *after = row.position();
                Ok(Some(match row {
                    StoredEntry::Commit(row) => LogEntry::commit_entry(
                        row.position,
                        log.subjects
                            .events(row.aggregate.aggregate_type, row.aggregate.id),
                        row.bytes,
                    ),
                    StoredEntry::Checkpoint { position, bytes } => LogEntry {
                        position,
                        subject: log.subjects.checkpoints(),
                        bytes,
                        kind: EntryKind::Checkpoint,
                    },
                }))
            }
            Source::Live {
                messages,
                last,
                checkpoints,
            } => {
                let last = *last;
                let Some(message) = messages.next().await else {
                    self.source = Source::Done;
                    return Ok(None);
                };
                let message = message.map_err(|e| AuditError::stream("reading the stream", e))?;
                let info = message
                    .info()
                    .map_err(|e| AuditError::stream("reading a message's metadata", e))?;
                let (position, pending) = (info.stream_sequence, info.pending);
                if position > last {
                    self.source = Source::Done;
                    return Ok(None);
                }
                let kind = if message.subject.as_str() == checkpoints.as_str() {
                    EntryKind::Checkpoint
                } else {
                    EntryKind::Commit
                };
                let entry = LogEntry {
                    position,
                    subject: message.subject.to_string(),
                    bytes: message.payload.to_vec(),
                    kind,
                };
                if position == last || pending == 0 {
                    // Drop the consumer now: nothing after the head taken at the start is read.
                    self.source = Source::Done;
                }
                Ok(Some(entry))
            }
            Source::File { path, lines, line } => {
                let mut buffer = Vec::new();
                loop {
                    buffer.clear();
                    let read = lines
                        .read_until(b'\n', &mut buffer)
                        .map_err(|e| AuditError::io(path, e))?;
                    if read == 0 {
                        self.source = Source::Done;
                        return Ok(None);
                    }
                    *line += 1;
                    if let Some(raw) = raw.as_deref_mut() {
                        raw.extend_from_slice(&buffer);
                    }
                    let text = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
                    if text.is_empty() {
                        continue;
                    }
                    return parse_export_line(text).map(Some).map_err(|reason| {
                        AuditError::Format {
                            what: path.display().to_string(),
                            line: *line,
                            reason,
                        }
                    });
                }
            }
        }
    }
}

/// Which events an audit takes as known: everything, or what was recorded up to a stream
/// position or a recording time (what the system knew then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "known", rename_all = "snake_case")]
pub enum Knowledge {
    /// Every event in the log (as we know it now).
    Everything,
    /// Commits at or before this position.
    UpToPosition { position: u64 },
    /// Commits recorded at or before this instant.
    UpToTime { recorded_at: DateTime<Utc> },
}

impl Knowledge {
    /// Parses a stream position (digits) or an RFC 3339 time.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(|position| Knowledge::UpToPosition { position })
                .map_err(|e| format!("not a stream position: {e}"));
        }
        DateTime::parse_from_rfc3339(text)
            .map(|t| Knowledge::UpToTime {
                recorded_at: t.with_timezone(&Utc),
            })
            .map_err(|e| format!("neither a stream position nor an RFC 3339 time ({e}): {text}"))
    }

    /// Whether a commit at `position` recorded at `recorded_at` is known.
    pub fn knows(&self, position: u64, recorded_at: DateTime<Utc>) -> bool {
        match self {
            Knowledge::Everything => true,
            Knowledge::UpToPosition { position: last } => position <= *last,
            Knowledge::UpToTime { recorded_at: until } => recorded_at <= *until,
        }
    }

    /// The last position worth reading from a live stream.
    pub fn last_position(&self) -> Option<u64> {
        match self {
            Knowledge::UpToPosition { position } => Some(*position),
            _ => None,
        }
    }
}

impl std::fmt::Display for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Knowledge::Everything => f.write_str("everything recorded"),
            Knowledge::UpToPosition { position } => {
                write!(f, "recorded up to position {position}")
            }
            Knowledge::UpToTime { recorded_at } => {
                write!(f, "recorded up to {}", recorded_at.to_rfc3339())
            }
        }
    }
}

/// The aggregate an event subject names (`<prefix>.events.<aggregate>.<id>`), if any.
pub fn aggregate_of_subject(subject: &str) -> Option<AggregateRef> {
    let mut parts = subject.rsplitn(3, '.');
    let id: Uuid = parts.next()?.parse().ok()?;
    let aggregate_type = match parts.next()? {
        "customer" => AggregateType::Customer,
        "loan" => AggregateType::Loan,
        _ => return None,
    };
    Some(AggregateRef { aggregate_type, id })
}

/// Parses `<type>/<id>` (the form chain heads and anchors are keyed by).
pub fn parse_aggregate(text: &str) -> Option<AggregateRef> {
    let (kind, id) = text.split_once('/')?;
    let aggregate_type = match kind {
        "customer" => AggregateType::Customer,
        "loan" => AggregateType::Loan,
        _ => return None,
    };
    Some(AggregateRef {
        aggregate_type,
        id: id.parse().ok()?,
    })
}
