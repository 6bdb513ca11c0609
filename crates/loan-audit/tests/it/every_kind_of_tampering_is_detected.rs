//! Every kind of tampering with an export is detected, and the first broken link is
//! named: a changed event (in the middle of a chain and at its end), reordered commits
//! (as lines, and with their positions renumbered), a dropped commit (in the middle and
//! the last), an inserted commit (a copy, and a forged new aggregate), and an edited
//! manifest (counts, log hash, chain head, anchor, file hash).

use std::path::{Path, PathBuf};

use loan_audit::export::{Manifest, Selection};
use loan_audit::log::{LogEntry, export_line};
use loan_audit::verify::{Finding, verify_export, verify_manifest_against_live};
use uuid::Uuid;

use crate::support::{World, entries, export_to, position_of, script};

/// Writes `lines` as an export file next to the original.
fn write(dir: &Path, name: &str, lines: &[LogEntry]) -> PathBuf {
    let path = dir.join(format!("{name}.jsonl"));
    let bytes: Vec<u8> = lines.iter().flat_map(export_line).collect();
    std::fs::write(&path, bytes).expect("write");
    path
}

async fn first_broken(file: &Path, manifest: &Manifest) -> Finding {
    let verification = verify_export(file, manifest).await.expect("verify");
    assert!(!verification.intact, "tampering not detected in {file:?}");
    verification
        .first_broken_link
        .expect("a tampered export names its first broken link")
}

fn index_of(lines: &[LogEntry], position: u64) -> usize {
    lines
        .iter()
        .position(|e| e.position == position)
        .expect("position exported")
}

fn edit(entry: &LogEntry, from: &str, to: &str) -> LogEntry {
    let text = String::from_utf8(entry.bytes.clone()).expect("utf-8");
    assert!(text.contains(from), "{from} not in the commit");
    LogEntry {
        bytes: text.replacen(from, to, 1).into_bytes(),
        ..entry.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tampering_names_the_first_broken_link() {
    let w = World::new().await;
    let s = script(&w).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (file, manifest) = export_to(&w, &Selection::All, dir.path(), "all").await;
    let original = entries(&file);
    let head = original.last().expect("lines").position;
    let l1 = format!("loan/{}", s.l1);
    let c2 = format!("customer/{}", s.c2);
    let l1_lead = position_of(&original, s.l1, "lead_captured");
    let l1_submitted = position_of(&original, s.l1, "submitted_for_review");
    let l1_disbursed = position_of(&original, s.l1, "loan_disbursed");
    let l1_repaid = position_of(&original, s.l1, "repayment_recorded");
    let l1_evaluated = position_of(&original, s.l1, "penalty_accrued");
    let l2_disbursed = position_of(&original, s.l2, "loan_disbursed");

    // A changed event in the middle of L1's chain: its next commit no longer links to it.
    let mut lines = original.clone();
    let i = index_of(&lines, l1_lead);
    lines[i] = edit(&lines[i], "12000.00", "21000.00");
    let found = first_broken(&write(dir.path(), "changed", &lines), &manifest).await;
    assert_eq!(found.position, Some(l1_submitted), "{found}");
    assert_eq!(found.aggregate.as_deref(), Some(l1.as_str()));
    assert!(found.reason.contains("previous_hash"), "{found}");

    // A changed last commit of L1 (the backdated repayment's amount): no commit follows
    // it, so the manifest's chain head catches it.
    let mut lines = original.clone();
    let i = index_of(&lines, l1_repaid);
    lines[i] = edit(&lines[i], "\"1099.00\"", "\"1999.00\"");
    let found = first_broken(&write(dir.path(), "changed-last", &lines), &manifest).await;
    assert_eq!(found.position, Some(l1_repaid), "{found}");
    assert_eq!(found.aggregate.as_deref(), Some(l1.as_str()));
    assert!(found.reason.contains("chain head"), "{found}");

    // Two lines swapped: the log is out of order.
    let mut lines = original.clone();
    let i = index_of(&lines, l1_disbursed);
    lines.swap(i, i + 1);
    let found = first_broken(&write(dir.path(), "swapped", &lines), &manifest).await;
    assert_eq!(found.position, Some(l1_disbursed), "{found}");
    assert!(found.reason.contains("out of order"), "{found}");

    // Two commits of different aggregates swapped with their positions renumbered: each
    // chain still holds, the log hash does not.
    let mut lines = original.clone();
    let (a, b) = (
        index_of(&lines, l1_disbursed),
        index_of(&lines, l2_disbursed),
    );
    assert_eq!(b, a + 1, "the two disbursements are adjacent");
    let (bytes_a, subject_a) = (lines[a].bytes.clone(), lines[a].subject.clone());
    lines[a].bytes = lines[b].bytes.clone();
    lines[a].subject = lines[b].subject.clone();
    lines[b].bytes = bytes_a;
    lines[b].subject = subject_a;
    let found = first_broken(&write(dir.path(), "renumbered", &lines), &manifest).await;
    assert_eq!(found.position, None, "{found}");
    assert!(found.reason.contains("log hash"), "{found}");

    // A commit dropped from the middle of L1's chain.
    let mut lines = original.clone();
    lines.remove(index_of(&lines, l1_disbursed));
    let found = first_broken(&write(dir.path(), "dropped", &lines), &manifest).await;
    assert_eq!(found.position, Some(l1_evaluated), "{found}");
    assert_eq!(found.aggregate.as_deref(), Some(l1.as_str()));

    // The last commit dropped (C2's erasure): the manifest's chain head of C2 is missing.
    let mut lines = original.clone();
    let last = lines.pop().expect("a last line");
    assert_eq!(last.commit().expect("commit").aggregate.id, s.c2);
    let found = first_broken(&write(dir.path(), "dropped-last", &lines), &manifest).await;
    assert_eq!(found.position, Some(head), "{found}");
    assert_eq!(found.aggregate.as_deref(), Some(c2.as_str()));

    // A copy of L2's disbursement inserted at the end: it does not link to L2's last commit.
    let mut lines = original.clone();
    let mut copy = lines[index_of(&lines, l2_disbursed)].clone();
    copy.position = head + 1;
    lines.push(copy);
    let found = first_broken(&write(dir.path(), "inserted", &lines), &manifest).await;
    assert_eq!(found.position, Some(head + 1), "{found}");
    assert_eq!(
        found.aggregate.as_deref(),
        Some(format!("loan/{}", s.l2).as_str())
    );

    // A forged aggregate inserted (a first commit of its own, so its chain is valid): the
    // manifest does not list it.
    let mut lines = original.clone();
    let registration = lines
        .iter()
        .find(|e| e.commit().expect("commit").aggregate.id == s.c1)
        .expect("C1's registration")
        .clone();
    let forged_id = Uuid::now_v7();
    let mut forged = edit(&registration, &s.c1.to_string(), &forged_id.to_string());
    while String::from_utf8_lossy(&forged.bytes).contains(&s.c1.to_string()) {
        forged = edit(&forged, &s.c1.to_string(), &forged_id.to_string());
    }
    forged.position = head + 1;
    lines.push(forged);
    let found = first_broken(&write(dir.path(), "forged", &lines), &manifest).await;
    assert_eq!(
        found.aggregate,
        Some(format!("customer/{forged_id}")),
        "{found}"
    );
    assert!(found.reason.contains("does not list"), "{found}");

    // The untouched export against edited manifests.
    let mut edited = manifest.clone();
    edited.summary.commits -= 1;
    let found = first_broken(&file, &edited).await;
    assert!(found.reason.contains("number of commits"), "{found}");

    let mut edited = manifest.clone();
    edited.summary.log_hash = loan_store::GENESIS_HASH.into();
    let found = first_broken(&file, &edited).await;
    assert!(found.reason.contains("log hash"), "{found}");

    let mut edited = manifest.clone();
    if let Some(head) = edited.summary.heads.get_mut(&l1) {
        head.version -= 1;
    }
    let found = first_broken(&file, &edited).await;
    assert_eq!(found.aggregate.as_deref(), Some(l1.as_str()), "{found}");

    let mut edited = manifest.clone();
    edited.file_sha256 = "0".repeat(64);
    let found = first_broken(&file, &edited).await;
    assert!(found.reason.contains("SHA-256"), "{found}");

    // A partial export whose anchor was edited: its first commit of L1 no longer links.
    let from = s.published_position + 1;
    let (range, range_manifest) = export_to(
        &w,
        &Selection::Positions { from, to: None },
        dir.path(),
        "range",
    )
    .await;
    let mut edited = range_manifest.clone();
    if let Some(anchor) = edited.anchors.get_mut(&l1) {
        anchor.hash = loan_store::GENESIS_HASH.into();
    }
    let found = first_broken(&range, &edited).await;
    assert_eq!(found.position, Some(l1_repaid), "{found}");
    assert_eq!(found.aggregate.as_deref(), Some(l1.as_str()));

    // The genuine manifests agree with the live log; a consistently forged one (file and
    // manifest rewritten together) does not.
    let live = verify_manifest_against_live(&w.log(), &manifest)
        .await
        .expect("verify");
    assert!(live.intact, "{:?}", live.first_broken_link);
    let live = verify_manifest_against_live(&w.log(), &range_manifest)
        .await
        .expect("verify");
    assert!(live.intact, "{:?}", live.first_broken_link);
    let mut lines = original.clone();
    lines.pop();
    let forged_file = write(dir.path(), "forged-consistently", &lines);
    let mut reader = loan_audit::log::LogReader::open_export(&forged_file).expect("open");
    let forged_summary = loan_audit::verify::verify_chains(&mut reader, [], None)
        .await
        .expect("verify")
        .summary;
    let forged_manifest = Manifest {
        summary: forged_summary,
        ..manifest.clone()
    };
    let found = verify_manifest_against_live(&w.log(), &forged_manifest)
        .await
        .expect("verify")
        .first_broken_link
        .expect("the live log disagrees with a forged manifest");
    assert_eq!(found.aggregate.as_deref(), Some(c2.as_str()), "{found}");

    // A commit published to the live stream by a broken or malicious producer, naming the
    // wrong previous commit: verifying the live stream names it.
    let forged = original[index_of(&original, l2_disbursed)].clone();
    async_nats::jetstream::new(w.client.clone())
        .publish(forged.subject.clone(), forged.bytes.clone().into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let mut reader = w.log().read_all().await.expect("read");
    let live = loan_audit::verify::verify_chains(&mut reader, [], None)
        .await
        .expect("verify live");
    let found = live.first_broken_link.expect("the forged commit is found");
    assert_eq!(found.position, Some(head + 1), "{found}");
    assert_eq!(
        found.aggregate.as_deref(),
        Some(format!("loan/{}", s.l2).as_str())
    );

    // A line that is not an export line at all.
    let mut text = std::fs::read_to_string(&file).expect("read");
    text.insert_str(0, "not json\n");
    let garbled = dir.path().join("garbled.jsonl");
    std::fs::write(&garbled, text).expect("write");
    let found = first_broken(&garbled, &manifest).await;
    assert_eq!(found.line, Some(1), "{found}");
}
