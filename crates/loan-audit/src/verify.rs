//! Verify: has anyone altered the history?
//!
//! Every link of every aggregate's hash chain is recomputed in log order
//! (`loan_store::chain::ChainVerifier`, started from the manifest's anchors for a partial
//! export), and at every checkpoint of the log the running log hash and the number of
//! commits are compared with what the checkpoint says and the checkpoint's link to the
//! previous one is checked (`loan_store::checkpoint`); the first broken link is named
//! with its position, aggregate (or checkpoint) and reason. An export whose chains and
//! checkpoints are intact is then compared with its manifest: chain heads (a
//! changed or dropped last commit of an aggregate), numbers of commits and events, first
//! and last position, the log hash (which folds every position and commit hash, so any
//! reordering, insertion or removal changes it), the number of checkpoints and the last
//! one, and the SHA-256 of the file.
//!
//! What verification cannot prove by itself: that the manifest is the one produced by
//! the export. Compare its log hash with the live stream's (`loan audit verify --nats`
//! on the same selection), or receive it over a channel the auditor trusts.

use std::collections::BTreeMap;
use std::path::Path;

use loan_store::AggregateRef;
use loan_store::chain::{BrokenLink, ChainAnchor, ChainSummary, ChainVerifier};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AuditError;
use crate::export::{Manifest, READABLE_FORMATS, export_until};
use crate::log::LiveLog;
use crate::log::{LogReader, parse_aggregate};

/// The first place where the history is not what its chains and manifest say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Log position of the broken link, when it is one commit's.
    pub position: Option<u64>,
    /// The aggregate (`<type>/<id>`), when known.
    pub aggregate: Option<String>,
    /// Line of the export file, when verifying a file.
    pub line: Option<u64>,
    pub reason: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(position) = self.position {
            write!(f, "position {position}")?;
            if let Some(line) = self.line {
                write!(f, " (line {line})")?;
            }
            f.write_str(": ")?;
        } else if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(aggregate) = &self.aggregate {
            write!(f, "{aggregate}: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// The answer of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// True when every link holds and the manifest (if any) agrees.
    pub intact: bool,
    /// Commits whose links were checked before the end or the first broken link.
    pub commits_checked: u64,
    /// What was verified (up to the first broken link).
    pub summary: ChainSummary,
    /// The first broken link, if any.
    pub first_broken_link: Option<Finding>,
}

fn finding_of(broken: &BrokenLink, line: Option<u64>) -> Finding {
    let aggregate = match broken {
        BrokenLink::WrongPrevious { aggregate, .. } | BrokenLink::VersionGap { aggregate, .. } => {
            Some(aggregate.clone())
        }
        _ => None,
    };
    Finding {
        position: broken.position(),
        aggregate,
        line,
        reason: broken.to_string(),
    }
}

/// Checks the chains (and checkpoints) of everything `reader` yields, read from the start
/// of the log, starting from `anchors`. When `file_hash` is given, the raw bytes read are
/// hashed into it.
pub async fn verify_chains(
    reader: &mut LogReader,
    anchors: impl IntoIterator<Item = (AggregateRef, ChainAnchor)>,
    file_hash: Option<&mut Sha256>,
) -> Result<Verification, AuditError> {
    verify_log(reader, ChainVerifier::with_anchors(anchors), file_hash).await
}

/// The verifier for what `manifest` describes: its anchors, and checkpoints checked from
/// the log's start only if its selection starts there.
pub fn verifier_for(manifest: &Manifest) -> Result<ChainVerifier, String> {
    let verifier = ChainVerifier::with_anchors(anchors(manifest)?);
    Ok(if manifest.selection.starts_at_log_start() {
        verifier
    } else {
        verifier.mid_log()
    })
}

/// As [`verify_chains`], with a verifier set up by the caller ([`verifier_for`]).
pub async fn verify_log(
    reader: &mut LogReader,
    mut verifier: ChainVerifier,
    mut file_hash: Option<&mut Sha256>,
) -> Result<Verification, AuditError> {
    let mut commits = 0u64;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let entry = match reader.next_with_raw(Some(&mut raw)).await {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(AuditError::Format { line, reason, .. }) => {
                return Ok(Verification {
                    intact: false,
                    commits_checked: commits,
                    summary: verifier.finish(),
                    first_broken_link: Some(Finding {
                        position: None,
                        aggregate: None,
                        line: Some(line),
                        reason: format!("not an export line: {reason}"),
                    }),
                });
            }
            Err(other) => return Err(other),
        };
        if let Some(hash) = file_hash.as_deref_mut() {
            hash.update(&raw);
        }
        if entry.is_checkpoint() {
            if let Err(broken) = verifier.push_checkpoint(entry.position, &entry.bytes) {
                return Ok(Verification {
                    intact: false,
                    commits_checked: commits,
                    summary: verifier.finish(),
                    first_broken_link: Some(finding_of(&broken, None)),
                });
            }
            continue;
        }
        if let Err(broken) = verifier.push(entry.position, &entry.bytes) {
            return Ok(Verification {
                intact: false,
                commits_checked: commits,
                summary: verifier.finish(),
                first_broken_link: Some(finding_of(&broken, None)),
            });
        }
        commits += 1;
    }
    Ok(Verification {
        intact: true,
        commits_checked: commits,
        summary: verifier.finish(),
        first_broken_link: None,
    })
}

/// Verifies an export file against its manifest.
pub async fn verify_export(
    export_path: &Path,
    manifest: &Manifest,
) -> Result<Verification, AuditError> {
    let verifier = match verifier_for(manifest) {
        Ok(verifier) => verifier,
        Err(reason) => return Ok(tampered_manifest(reason)),
    };
    if !READABLE_FORMATS.contains(&manifest.format.as_str()) {
        return Ok(tampered_manifest(format!(
            "the manifest's format is {}, this tool reads {}",
            manifest.format,
            READABLE_FORMATS.join(" and ")
        )));
    }
    let mut reader = LogReader::open_export(export_path)?.with_checkpoints();
    let mut file_hash = Sha256::new();
    let mut verification = verify_log(&mut reader, verifier, Some(&mut file_hash)).await?;
    if let Some(finding) = &mut verification.first_broken_link {
        // Name the line too: positions in a file may have been edited.
        if finding.line.is_none() {
            finding.line = line_of(export_path, finding.position);
        }
        return Ok(verification);
    }
    let file_sha256 = hex::encode(file_hash.finalize());
    if let Some(finding) = compare(manifest, &verification.summary, &file_sha256) {
        verification.intact = false;
        verification.first_broken_link = Some(finding);
    }
    Ok(verification)
}

/// The manifest's anchors, by aggregate; an anchor naming no aggregate is the reason the
/// manifest is refused.
pub fn anchors(manifest: &Manifest) -> Result<Vec<(AggregateRef, ChainAnchor)>, String> {
    manifest
        .anchors
        .iter()
        .map(|(name, anchor)| {
            parse_aggregate(name)
                .map(|aggregate| (aggregate, anchor.clone()))
                .ok_or_else(|| format!("the manifest's anchor {name} names no aggregate"))
        })
        .collect()
}

pub(crate) fn tampered_manifest(reason: String) -> Verification {
    Verification {
        intact: false,
        commits_checked: 0,
        summary: ChainSummary::default(),
        first_broken_link: Some(Finding {
            position: None,
            aggregate: None,
            line: None,
            reason,
        }),
    }
}

/// The line of the export holding `position` (best effort, for messages).
fn line_of(path: &Path, position: Option<u64>) -> Option<u64> {
    let position = position?;
    let text = std::fs::read(path).ok()?;
    text.split(|b| *b == b'\n')
        .zip(1..)
        .find(|(line, _)| {
            crate::log::parse_export_line(line).is_ok_and(|entry| entry.position == position)
        })
        .map(|(_, number)| number)
}

/// The first difference between what a manifest says and what was verified.
pub fn compare(manifest: &Manifest, found: &ChainSummary, file_sha256: &str) -> Option<Finding> {
    let expected = &manifest.summary;
    let mismatch = |aggregate: Option<String>, position: Option<u64>, reason: String| Finding {
        position,
        aggregate,
        line: None,
        reason,
    };
    // Chain heads first: they name the aggregate and position of a changed or dropped
    // last commit.
    for (aggregate, head) in &expected.heads {
        match found.heads.get(aggregate) {
            Some(other) if other == head => {}
            Some(other) => {
                return Some(mismatch(
                    Some(aggregate.clone()),
                    Some(head.position),
                    format!(
                        "the manifest's chain head is version {} at position {} ({}); the export ends at version {} at position {} ({}): its last commit was changed, dropped or added",
                        head.version,
                        head.position,
                        head.hash,
                        other.version,
                        other.position,
                        other.hash
                    ),
                ));
            }
            None => {
                return Some(mismatch(
                    Some(aggregate.clone()),
                    Some(head.position),
                    format!(
                        "the manifest's chain head is version {} at position {}; the export has no commit of this aggregate",
                        head.version, head.position
                    ),
                ));
            }
        }
    }
    let extra: BTreeMap<_, _> = found
        .heads
        .iter()
        .filter(|(aggregate, _)| !expected.heads.contains_key(*aggregate))
        .collect();
    if let Some((aggregate, head)) = extra.into_iter().next() {
        return Some(mismatch(
            Some(aggregate.clone()),
            Some(head.position),
            "the export has commits of an aggregate the manifest does not list".into(),
        ));
    }
    let counts = [
        (
            "number of commits",
            Some(expected.commits),
            Some(found.commits),
        ),
        (
            "number of events",
            Some(expected.events),
            Some(found.events),
        ),
        (
            "first position",
            expected.first_position,
            found.first_position,
        ),
        ("last position", expected.last_position, found.last_position),
    ];
    for (what, e, f) in counts {
        if e != f {
            return Some(mismatch(
                None,
                None,
                format!(
                    "{what}: the manifest says {}, the export has {}",
                    show(e),
                    show(f)
                ),
            ));
        }
    }
    if expected.log_hash != found.log_hash {
        return Some(mismatch(
            None,
            None,
            format!(
                "log hash: the manifest says {}, the export folds to {}: commits were reordered, inserted, removed or renumbered",
                expected.log_hash, found.log_hash
            ),
        ));
    }
    if expected.checkpoints != found.checkpoints {
        return Some(mismatch(
            None,
            found.last_checkpoint.as_ref().map(|head| head.position),
            format!(
                "number of checkpoints: the manifest says {}, the export has {}: a checkpoint was dropped or added",
                expected.checkpoints, found.checkpoints
            ),
        ));
    }
    if expected.last_checkpoint != found.last_checkpoint {
        let show = |head: &Option<loan_store::checkpoint::CheckpointHead>| {
            head.as_ref().map_or_else(
                || "none".to_owned(),
                |head| format!("position {} ({})", head.position, head.hash),
            )
        };
        return Some(mismatch(
            None,
            expected.last_checkpoint.as_ref().map(|head| head.position),
            format!(
                "last checkpoint: the manifest says {}, the export has {}: the last checkpoint was altered",
                show(&expected.last_checkpoint),
                show(&found.last_checkpoint)
            ),
        ));
    }
    if manifest.file_sha256 != file_sha256 {
        return Some(mismatch(
            None,
            None,
            format!(
                "file SHA-256: the manifest says {}, the file is {}",
                manifest.file_sha256, file_sha256
            ),
        ));
    }
    None
}

fn show(value: Option<u64>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// Checks a manifest against the live log: reads the same selection up to the manifest's
/// `stream_head` and compares chain heads, counts, positions, log hash and anchors (not
/// the file hash: no file is written). This is how an auditor confirms that an export's
/// manifest describes the log as it is stored, not a consistent forgery.
pub async fn verify_manifest_against_live(
    log: &LiveLog,
    manifest: &Manifest,
) -> Result<Verification, AuditError> {
    let live = match export_until(
        log,
        &manifest.selection,
        Some(manifest.stream_head),
        &mut std::io::sink(),
        manifest.exported_at,
    )
    .await
    {
        Ok(live) => live,
        Err(AuditError::Corrupt { position, reason }) => {
            return Ok(Verification {
                intact: false,
                commits_checked: 0,
                summary: ChainSummary::default(),
                first_broken_link: Some(Finding {
                    position: Some(position),
                    aggregate: None,
                    line: None,
                    reason,
                }),
            });
        }
        Err(other) => return Err(other),
    };
    let mut finding = compare(manifest, &live.summary, &manifest.file_sha256);
    if finding.is_none() && live.anchors != manifest.anchors {
        finding = Some(Finding {
            position: None,
            aggregate: None,
            line: None,
            reason: "the manifest's anchors differ from the live log's".into(),
        });
    }
    Ok(Verification {
        intact: finding.is_none(),
        commits_checked: live.summary.commits,
        summary: live.summary,
        first_broken_link: finding,
    })
}
