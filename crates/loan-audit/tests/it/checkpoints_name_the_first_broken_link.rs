//! The log's checkpoints travel with an export and are verified offline: each tampering
//! kind — a changed event, reordered commits, a dropped commit, the whole dropped tail of
//! an aggregate, a dropped or altered checkpoint — is named at its first broken link,
//! which is the first checkpoint after it when no chain can see it. A partial export
//! verifies from its first checkpoint on, the live stream and an imported store verify
//! with their checkpoints, and readers of the commits never see them.

use std::path::{Path, PathBuf};

use loan_audit::export::{Manifest, Selection};
use loan_audit::import::{ImportOutcome, import_into};
use loan_audit::log::{EmbeddedLog, LogEntry, LogReader, export_line};
use loan_audit::verify::{Finding, verify_chains, verify_export, verify_manifest_against_live};
use loan_store::checkpoint::Checkpoint;

use crate::support::{World, entries, export_to, script};

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

fn aggregate(entry: &LogEntry) -> String {
    entry.commit().expect("commit").aggregate.to_string()
}

/// Index of the first checkpoint line after index `i`.
fn next_checkpoint(lines: &[LogEntry], i: usize) -> Option<usize> {
    (i + 1..lines.len()).find(|&j| lines[j].is_checkpoint())
}

/// Index of the next commit of the same aggregate after index `i`.
fn next_of_same_aggregate(lines: &[LogEntry], i: usize) -> Option<usize> {
    let own = aggregate(&lines[i]);
    (i + 1..lines.len()).find(|&j| !lines[j].is_checkpoint() && aggregate(&lines[j]) == own)
}

fn with_checkpoint(entry: &LogEntry, change: impl FnOnce(&mut Checkpoint)) -> LogEntry {
    let mut checkpoint = Checkpoint::from_bytes(&entry.bytes).expect("a checkpoint");
    change(&mut checkpoint);
    LogEntry {
        bytes: checkpoint.to_bytes(),
        ..entry.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tampering_is_named_at_its_first_broken_link() {
    let w = World::with_checkpoints(4).await;
    script(&w).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (file, manifest) = export_to(&w, &Selection::All, dir.path(), "all").await;
    let original = entries(&file);
    let checkpoints: Vec<usize> = (0..original.len())
        .filter(|&i| original[i].is_checkpoint())
        .collect();
    assert!(
        checkpoints.len() >= 3,
        "the export holds the log's checkpoints"
    );
    assert_eq!(manifest.summary.checkpoints, checkpoints.len() as u64);
    assert_eq!(
        manifest
            .summary
            .last_checkpoint
            .as_ref()
            .map(|c| c.position),
        Some(original[*checkpoints.last().expect("one")].position)
    );
    let intact = verify_export(&file, &manifest).await.expect("verify");
    assert!(intact.intact, "{:?}", intact.first_broken_link);

    // A changed event in a commit whose aggregate has no commit before the next
    // checkpoint: no chain sees it, the checkpoint does.
    let i = (0..original.len())
        .find(|&i| {
            !original[i].is_checkpoint()
                && next_checkpoint(&original, i)
                    .is_some_and(|k| next_of_same_aggregate(&original, i).is_none_or(|j| j > k))
        })
        .expect("a commit whose chain continues after a checkpoint");
    let k = next_checkpoint(&original, i).expect("checkpoint");
    let mut lines = original.clone();
    let text = String::from_utf8(lines[i].bytes.clone()).expect("utf-8");
    let changed = text.replacen("\"recorded_at\":\"2026", "\"recorded_at\":\"2025", 1);
    assert_ne!(changed, text);
    lines[i].bytes = changed.into_bytes();
    let found = first_broken(&write(dir.path(), "changed", &lines), &manifest).await;
    assert_eq!(found.position, Some(original[k].position), "{found}");
    assert!(found.reason.contains("checkpoint at position"), "{found}");
    assert!(
        found.reason.contains("changed, reordered or renumbered"),
        "{found}"
    );

    // Two adjacent commits of different aggregates swapped, positions renumbered: every
    // chain holds; the next checkpoint names it (before, only the manifest's log hash did).
    let a = (0..original.len() - 1)
        .find(|&a| {
            !original[a].is_checkpoint()
                && !original[a + 1].is_checkpoint()
                && aggregate(&original[a]) != aggregate(&original[a + 1])
                && next_checkpoint(&original, a + 1).is_some()
        })
        .expect("adjacent commits of two aggregates before a checkpoint");
    let mut lines = original.clone();
    let (bytes, subject) = (lines[a].bytes.clone(), lines[a].subject.clone());
    lines[a].bytes = lines[a + 1].bytes.clone();
    lines[a].subject = lines[a + 1].subject.clone();
    lines[a + 1].bytes = bytes;
    lines[a + 1].subject = subject;
    let k = next_checkpoint(&original, a + 1).expect("checkpoint");
    let found = first_broken(&write(dir.path(), "reordered", &lines), &manifest).await;
    assert_eq!(found.position, Some(original[k].position), "{found}");
    assert!(
        found.reason.contains("changed, reordered or renumbered"),
        "{found}"
    );

    // A commit dropped: named at whichever comes first, the aggregate's next commit (its
    // chain breaks) or the next checkpoint (one commit fewer).
    for i in (0..original.len()).filter(|&i| !original[i].is_checkpoint()) {
        let Some(k) = next_checkpoint(&original, i) else {
            continue;
        };
        let expected = match next_of_same_aggregate(&original, i) {
            Some(j) if j < k => original[j].position,
            _ => original[k].position,
        };
        let mut lines = original.clone();
        lines.remove(i);
        let found = first_broken(&write(dir.path(), "dropped", &lines), &manifest).await;
        assert_eq!(found.position, Some(expected), "dropping line {i}: {found}");
        if expected == original[k].position {
            assert!(found.reason.contains("1 commit(s)"), "{found}");
            assert!(found.reason.contains("were dropped"), "{found}");
        }
    }

    // The whole tail of an aggregate dropped (from its second commit on): its chain ends
    // early but intact; the first checkpoint after the first dropped commit counts them.
    let first_commit = (0..original.len())
        .find(|&i| !original[i].is_checkpoint() && next_of_same_aggregate(&original, i).is_some())
        .expect("an aggregate with two commits");
    let tail_owner = aggregate(&original[first_commit]);
    let tail_start = next_of_same_aggregate(&original, first_commit).expect("second commit");
    let k = next_checkpoint(&original, tail_start).expect("a checkpoint after the tail starts");
    let dropped_before_k = (tail_start..k)
        .filter(|&i| !original[i].is_checkpoint() && aggregate(&original[i]) == tail_owner)
        .count();
    let lines: Vec<LogEntry> = original
        .iter()
        .enumerate()
        .filter(|(i, e)| *i < tail_start || e.is_checkpoint() || aggregate(e) != tail_owner)
        .map(|(_, e)| e.clone())
        .collect();
    let found = first_broken(&write(dir.path(), "tail", &lines), &manifest).await;
    assert_eq!(found.position, Some(original[k].position), "{found}");
    assert!(
        found
            .reason
            .contains(&format!("{dropped_before_k} commit(s)")),
        "{found}"
    );
    assert!(found.reason.contains("were dropped"), "{found}");

    // A checkpoint dropped from the middle: the next one names a previous checkpoint the
    // log does not hold there.
    let mut lines = original.clone();
    lines.remove(checkpoints[0]);
    let found = first_broken(&write(dir.path(), "dropped-checkpoint", &lines), &manifest).await;
    assert_eq!(
        found.position,
        Some(original[checkpoints[1]].position),
        "{found}"
    );
    assert!(found.reason.contains("was dropped"), "{found}");

    // The last checkpoint dropped: the manifest counts the checkpoints.
    let mut lines = original.clone();
    lines.remove(*checkpoints.last().expect("one"));
    let found = first_broken(
        &write(dir.path(), "dropped-last-checkpoint", &lines),
        &manifest,
    )
    .await;
    assert!(found.reason.contains("number of checkpoints"), "{found}");

    // A checkpoint's log hash altered: it no longer matches the fold before it.
    let mut lines = original.clone();
    let c = checkpoints[1];
    lines[c] = with_checkpoint(&lines[c], |cp| cp.log_hash = "f".repeat(64));
    let found = first_broken(&write(dir.path(), "altered-hash", &lines), &manifest).await;
    assert_eq!(found.position, Some(original[c].position), "{found}");
    assert!(found.reason.contains("its log hash is ffff"), "{found}");

    // A checkpoint's count altered: it no longer matches the commits before it.
    let mut lines = original.clone();
    lines[c] = with_checkpoint(&lines[c], |cp| cp.commits += 1);
    let found = first_broken(&write(dir.path(), "altered-count", &lines), &manifest).await;
    assert_eq!(found.position, Some(original[c].position), "{found}");
    assert!(found.reason.contains("were dropped"), "{found}");

    // Only a checkpoint's time altered: the next checkpoint's link breaks.
    let mut lines = original.clone();
    lines[checkpoints[0]] = with_checkpoint(&lines[checkpoints[0]], |cp| {
        cp.written_at += chrono::Duration::days(1);
    });
    let found = first_broken(&write(dir.path(), "altered-time", &lines), &manifest).await;
    assert_eq!(
        found.position,
        Some(original[checkpoints[1]].position),
        "{found}"
    );
    assert!(
        found.reason.contains("the previous checkpoint was altered"),
        "{found}"
    );

    // The last checkpoint's time altered: the manifest's last checkpoint catches it.
    let mut lines = original.clone();
    let last = *checkpoints.last().expect("one");
    lines[last] = with_checkpoint(&lines[last], |cp| {
        cp.written_at += chrono::Duration::days(1);
    });
    let found = first_broken(&write(dir.path(), "altered-last", &lines), &manifest).await;
    assert!(found.reason.contains("last checkpoint"), "{found}");

    // A checkpoint line that is not a checkpoint: a finding, not a panic.
    let mut lines = original.clone();
    lines[c].bytes = b"{\"covers\":\"nonsense\"}".to_vec();
    let found = first_broken(&write(dir.path(), "garbage", &lines), &manifest).await;
    assert_eq!(found.position, Some(original[c].position), "{found}");
    assert!(found.reason.contains("cannot be read"), "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_verify_live_in_part_and_after_import_and_commit_readers_skip_them() {
    let w = World::with_checkpoints(3).await;
    script(&w).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (file, manifest) = export_to(&w, &Selection::All, dir.path(), "all").await;
    assert!(manifest.summary.checkpoints >= 3);
    assert_eq!(manifest.format, "loan-audit-export/v2");

    // The live stream verifies with its checkpoints, and agrees with the manifest.
    let mut live = w.log().read_all_with_checkpoints().await.expect("read");
    let verification = verify_chains(&mut live, [], None).await.expect("verify");
    assert!(verification.intact, "{:?}", verification.first_broken_link);
    assert_eq!(
        verification.summary.checkpoints,
        manifest.summary.checkpoints
    );
    let against = verify_manifest_against_live(&w.log(), &manifest)
        .await
        .expect("verify");
    assert!(against.intact, "{:?}", against.first_broken_link);

    // Readers of the commits (history, state, reports) never see a checkpoint.
    let mut commits = 0;
    let mut reader = LogReader::open_export(&file).expect("open");
    while let Some(entry) = reader.next().await.expect("read") {
        assert!(!entry.is_checkpoint());
        commits += 1;
    }
    assert_eq!(commits, manifest.summary.commits);
    let mut reader = w.log().read_all().await.expect("read");
    while let Some(entry) = reader.next().await.expect("read") {
        assert!(!entry.is_checkpoint());
    }

    // A partial export from the middle: the first checkpoint in it is the base, the
    // later ones are verified.
    let original = entries(&file);
    let second = original
        .iter()
        .filter(|e| e.is_checkpoint())
        .nth(1)
        .expect("a second checkpoint")
        .position;
    let (part, part_manifest) = export_to(
        &w,
        &Selection::Positions {
            from: second - 2,
            to: None,
        },
        dir.path(),
        "part",
    )
    .await;
    assert!(part_manifest.summary.checkpoints >= 2);
    let verification = verify_export(&part, &part_manifest).await.expect("verify");
    assert!(verification.intact, "{:?}", verification.first_broken_link);
    let mut lines = entries(&part);
    let third = lines
        .iter()
        .filter(|e| e.is_checkpoint())
        .nth(1)
        .expect("a second checkpoint in the part")
        .position;
    let before_third = lines
        .iter()
        .rposition(|e| !e.is_checkpoint() && e.position < third)
        .expect("a commit before it");
    // Drop the last commit before the part's second checkpoint, if no chain sees it
    // first, the checkpoint does; either way the part is refused.
    lines.remove(before_third);
    let found = first_broken(&write(dir.path(), "part-dropped", &lines), &part_manifest).await;
    assert!(found.position.is_some_and(|p| p <= third), "{found}");

    // Import keeps the checkpoints at their positions; the store verifies with them.
    let store_path = dir.path().join("imported.sqlite");
    match import_into(&file, &manifest, &store_path)
        .await
        .expect("import")
    {
        ImportOutcome::Imported(summary) => {
            assert_eq!(summary.checkpoints, manifest.summary.checkpoints);
            assert_eq!(summary.log_hash, manifest.summary.log_hash);
        }
        ImportOutcome::Refused(v) => panic!("refused: {:?}", v.first_broken_link),
    }
    let log = EmbeddedLog::open(&store_path, &w.prefix)
        .await
        .expect("open");
    let mut reader = log.read_all_with_checkpoints().await.expect("read");
    let mut imported = Vec::new();
    while let Some(entry) = reader.next().await.expect("read") {
        imported.push(entry);
    }
    assert_eq!(
        imported, original,
        "line for line, byte for byte, checkpoints included"
    );
    let verification = verify_chains(
        &mut log.read_all_with_checkpoints().await.expect("read"),
        [],
        None,
    )
    .await
    .expect("verify");
    assert!(verification.intact, "{:?}", verification.first_broken_link);
    assert_eq!(
        verification.summary.checkpoints,
        manifest.summary.checkpoints
    );

    // An export with a tampered checkpoint is refused at import, nothing written.
    let mut lines = original.clone();
    let c = lines.iter().position(LogEntry::is_checkpoint).expect("one");
    lines[c] = with_checkpoint(&lines[c], |cp| cp.commits += 1);
    let tampered = write(dir.path(), "tampered", &lines);
    let refused_path = dir.path().join("refused.sqlite");
    assert!(matches!(
        import_into(&tampered, &manifest, &refused_path)
            .await
            .expect("import"),
        ImportOutcome::Refused(_)
    ));
    assert!(!refused_path.exists(), "a refused import creates no store");
}
