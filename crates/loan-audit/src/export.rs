//! Export: the history handed to an external auditor, as JSON lines and a manifest.
//!
//! Format `loan-audit-export/v2` (docs/audit.md; stable, so the embedded mode can import
//! it; v1 files, which predate checkpoints, are still read):
//!
//! * the **export file**: one line per commit, in log order,
//!   `{"position":N,"subject":"<prefix>.events.<type>.<id>","commit":<commit as stored>}`,
//!   where the commit is its stored bytes unchanged (single-line JSON), so its chain hash
//!   recomputes to what the next commit of the aggregate names; and, between them, one
//!   line per checkpoint of the log in the exported range,
//!   `{"position":N,"subject":"<prefix>.checkpoints","checkpoint":<checkpoint as stored>}`,
//!   so an auditor verifies the checkpoints offline (not in a customer's export: a
//!   checkpoint covers the whole log);
//! * the **manifest** ([`Manifest`]): the selection, counts of commits and events,
//!   first and last position, the log hash, the chain head of every aggregate, the
//!   **anchors** of a partial export (for each aggregate whose first exported commit is
//!   not its first commit: the `previous_hash` and `base_version` that commit carries, so
//!   verification starts its chain there), the number of checkpoints and the last one,
//!   and the SHA-256 of the export file.
//!
//! The export verifies the chains while it reads: a log whose chains are already broken
//! is not exported (run `loan audit verify` on it).

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use chrono::{DateTime, Utc};
use loan_domain::AggregateType;
use loan_store::chain::{ChainAnchor, ChainSummary, ChainVerifier};
use loan_store::{AggregateRef, GENESIS_HASH};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AuditError;
use crate::log::{LiveLog, LogEntry, export_line};

/// The format name written in every manifest.
pub const EXPORT_FORMAT: &str = "loan-audit-export/v2";

/// The formats this tool reads: v1 (before checkpoints) and v2.
pub const READABLE_FORMATS: [&str; 2] = ["loan-audit-export/v1", EXPORT_FORMAT];

/// Which commits an export holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Selection {
    /// The whole log.
    All,
    /// Positions `from..=to` (`to`: the stream head if absent).
    Positions { from: u64, to: Option<u64> },
    /// A recording-time range, as a contiguous run of the log: from the first commit
    /// recorded at or after `from` up to (not including) the first later commit recorded
    /// at or after `to`.
    Recorded {
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    },
    /// One customer, every loan captured for them and those loans' collection cases.
    Customer { customer_id: Uuid },
}

impl Selection {
    /// Whether the selection starts at the log's first position, so that every
    /// checkpoint in it can be recomputed from the commits it holds (otherwise the first
    /// checkpoint is the base the later ones are checked from).
    pub fn starts_at_log_start(&self) -> bool {
        match self {
            Selection::All => true,
            Selection::Positions { from, .. } => *from <= 1,
            Selection::Recorded { from, .. } => from.is_none(),
            Selection::Customer { .. } => false,
        }
    }

    /// Whether the export holds the log's checkpoints in its range (a customer's export
    /// does not: a checkpoint covers every aggregate).
    pub fn holds_checkpoints(&self) -> bool {
        !matches!(self, Selection::Customer { .. })
    }
}

/// What an export holds, for verifying it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    pub stream: String,
    pub subject_prefix: String,
    pub selection: Selection,
    /// The stream's last position when the export read it.
    pub stream_head: u64,
    pub exported_at: DateTime<Utc>,
    /// Commits, events, first and last position, log hash, chain heads, number of
    /// checkpoints and the last checkpoint.
    #[serde(flatten)]
    pub summary: ChainSummary,
    /// For each aggregate (`<type>/<id>`) whose exported chain does not start at its
    /// first commit: the `previous_hash` and `base_version` of its first exported commit.
    pub anchors: BTreeMap<String, ChainAnchor>,
    /// SHA-256 (hex) of the export file's bytes.
    pub file_sha256: String,
}

impl Manifest {
    pub fn read(path: &std::path::Path) -> Result<Self, AuditError> {
        let bytes = std::fs::read(path).map_err(|e| AuditError::io(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| AuditError::Format {
            what: path.display().to_string(),
            line: u64::try_from(e.line()).unwrap_or(0),
            reason: e.to_string(),
        })
    }

    pub fn to_pretty_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Writes the selected commits of `log` to `out` and returns the manifest.
pub async fn export(
    log: &LiveLog,
    selection: &Selection,
    out: &mut dyn Write,
    exported_at: DateTime<Utc>,
) -> Result<Manifest, AuditError> {
    export_until(log, selection, None, out, exported_at).await
}

/// As [`export`], reading no further than position `until` (the `stream_head` of an
/// earlier export, to check its manifest against the live log).
pub async fn export_until(
    log: &LiveLog,
    selection: &Selection,
    until: Option<u64>,
    out: &mut dyn Write,
    exported_at: DateTime<Utc>,
) -> Result<Manifest, AuditError> {
    let (from, to) = match selection {
        Selection::Positions { from, to } => {
            let to = match (to, until) {
                (Some(to), Some(until)) => Some((*to).min(until)),
                (to, until) => to.or(until),
            };
            (*from, to)
        }
        _ => (1, until),
    };
    let mut reader = if selection.holds_checkpoints() {
        log.reader_with_checkpoints(from, to).await?
    } else {
        log.reader(from, to, Vec::new()).await?
    };
    let stream_head = reader.stream_head();
    let mut filter = Filter::new(selection);
    let mut writer = Exporter::new(selection);
    while let Some(entry) = reader.next().await? {
        match filter.admit(&entry)? {
            Admit::Yes => writer.write(&entry, out)?,
            Admit::No => {}
            Admit::Stop => break,
        }
    }
    out.flush()
        .map_err(|e| AuditError::io(std::path::Path::new("export"), e))?;
    writer.finish(Manifest {
        format: EXPORT_FORMAT.to_owned(),
        stream: log.stream_name().to_owned(),
        subject_prefix: log.subjects().prefix().to_owned(),
        selection: selection.clone(),
        stream_head,
        exported_at,
        summary: ChainSummary::default(),
        anchors: BTreeMap::new(),
        file_sha256: String::new(),
    })
}

enum Admit {
    Yes,
    No,
    Stop,
}

/// Decides which commits a selection keeps, in one pass.
struct Filter<'s> {
    selection: &'s Selection,
    started: bool,
    /// Customer selection: the customer's loans seen so far (a loan's first commit, its
    /// lead, names the customer before any other commit of the loan).
    loans: HashSet<Uuid>,
    /// Customer selection: the collection cases of those loans seen so far (a case's
    /// first commit, its opening, names the loan).
    cases: HashSet<Uuid>,
}

impl<'s> Filter<'s> {
    fn new(selection: &'s Selection) -> Self {
        Filter {
            selection,
            started: false,
            loans: HashSet::new(),
            cases: HashSet::new(),
        }
    }

    fn admit(&mut self, entry: &LogEntry) -> Result<Admit, AuditError> {
        if entry.is_checkpoint() {
            // Within the exported run of the log (a recorded range: once it started).
            return Ok(match self.selection {
                Selection::All | Selection::Positions { .. } => Admit::Yes,
                Selection::Recorded { .. } if self.started => Admit::Yes,
                Selection::Recorded { .. } | Selection::Customer { .. } => Admit::No,
            });
        }
        match self.selection {
            Selection::All | Selection::Positions { .. } => Ok(Admit::Yes),
            Selection::Recorded { from, to } => {
                let recorded_at = entry.commit()?.recorded_at;
                if !self.started {
                    if from.is_some_and(|from| recorded_at < from) {
                        return Ok(Admit::No);
                    }
                    self.started = true;
                }
                if to.is_some_and(|to| recorded_at >= to) {
                    return Ok(Admit::Stop);
                }
                Ok(Admit::Yes)
            }
            Selection::Customer { customer_id } => {
                let commit = entry.commit()?;
                match commit.aggregate.aggregate_type {
                    AggregateType::Customer if commit.aggregate.id == *customer_id => {
                        Ok(Admit::Yes)
                    }
                    AggregateType::Customer => Ok(Admit::No),
                    AggregateType::Loan => {
                        if self.loans.contains(&commit.aggregate.id) {
                            return Ok(Admit::Yes);
                        }
                        let for_customer = commit.events.iter().any(|event| {
                            event.event_type == "lead_captured"
                                && event.data.get("customer_id").and_then(|v| v.as_str())
                                    == Some(customer_id.to_string().as_str())
                        });
                        if for_customer {
                            self.loans.insert(commit.aggregate.id);
                            return Ok(Admit::Yes);
                        }
                        Ok(Admit::No)
                    }
                    AggregateType::CollectionCase => {
                        if crate::history::case_of_loans(&commit, &self.loans, &mut self.cases) {
                            Ok(Admit::Yes)
                        } else {
                            Ok(Admit::No)
                        }
                    }
                }
            }
        }
    }
}

/// Writes export lines, hashing the file and verifying the chains and checkpoints as it
/// goes.
struct Exporter {
    verifier: ChainVerifier,
    seen: HashSet<AggregateRef>,
    anchors: BTreeMap<String, ChainAnchor>,
    file: Sha256,
}

impl Exporter {
    fn new(selection: &Selection) -> Self {
        let verifier = if selection.starts_at_log_start() {
            ChainVerifier::new()
        } else {
            ChainVerifier::new().mid_log()
        };
        Exporter {
            verifier,
            seen: HashSet::new(),
            anchors: BTreeMap::new(),
            file: Sha256::new(),
        }
    }

    fn write(&mut self, entry: &LogEntry, out: &mut dyn Write) -> Result<(), AuditError> {
        let broken = |broken: loan_store::chain::BrokenLink| AuditError::Corrupt {
            position: entry.position,
            reason: format!(
                "the log's hash chain is broken, not exporting it (run `loan audit verify`): {broken}"
            ),
        };
        if entry.is_checkpoint() {
            self.verifier
                .push_checkpoint(entry.position, &entry.bytes)
                .map_err(broken)?;
            return self.emit(entry, out);
        }
        let commit = entry.commit()?;
        let verifier = &mut self.verifier;
        if self.seen.insert(commit.aggregate)
            && (commit.previous_hash != GENESIS_HASH || commit.base_version != 0)
        {
            // The aggregate's earlier commits are not in this export: its chain starts here.
            let anchor = ChainAnchor {
                version: commit.base_version,
                hash: commit.previous_hash.clone(),
            };
            self.anchors
                .insert(commit.aggregate.to_string(), anchor.clone());
            verifier.anchor(commit.aggregate, anchor);
        }
        verifier
            .push(entry.position, &entry.bytes)
            .map_err(broken)?;
        self.emit(entry, out)
    }

    fn emit(&mut self, entry: &LogEntry, out: &mut dyn Write) -> Result<(), AuditError> {
        let line = export_line(entry);
        self.file.update(&line);
        out.write_all(&line)
            .map_err(|e| AuditError::io(std::path::Path::new("export"), e))
    }

    fn finish(self, mut manifest: Manifest) -> Result<Manifest, AuditError> {
        manifest.summary = self.verifier.finish();
        manifest.anchors = self.anchors;
        manifest.file_sha256 = hex::encode(self.file.finalize());
        Ok(manifest)
    }
}
