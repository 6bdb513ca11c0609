//! Checkpoints in the log: each covers exactly everything before it, in JetStream (a
//! real nats-server) and in SQLite; a commit racing a checkpoint makes it retry, never
//! cover a wrong range; readers of the commits never see them; the writer writes them at
//! its cadence; and the verifier names the first checkpoint whose range was tampered with.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use loan_contract::Subjects;
use loan_store::chain::BrokenLink;
use loan_store::checkpoint::{
    AppendSignal, Cadence, Checkpoint, CheckpointBase, CheckpointFold, CheckpointLog,
    CheckpointOutcome, CheckpointRecord, CheckpointVerifier, CheckpointWriter,
};
use loan_store::conformance::{new_loan, sample_commit};
use loan_store::jetstream::{JetStreamStore, StoreConfig};
use loan_store::sqlite::{SqliteStore, StoredEntry};
use loan_store::{Appended, EventStore, StoreError, chain_hash};
use loan_testkit::NatsServer;
use sqlx::Connection;
use uuid::Uuid;

fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

fn stored(result: Result<Appended, StoreError>) -> u64 {
    match result {
        Ok(Appended::Stored { position, .. }) => position,
        other => panic!("expected a stored commit, got {other:?}"),
    }
}

/// Appends `n` commits to a new loan; returns their positions.
async fn append_commits<S: EventStore>(store: &S, n: u64) -> Vec<u64> {
    let loan = new_loan();
    let mut last = 0;
    let mut positions = Vec::new();
    for version in 0..n {
        last = stored(store.append(&sample_commit(loan, version, 1), last).await);
        positions.push(last);
    }
    positions
}

fn written(outcome: CheckpointOutcome) -> CheckpointRecord {
    match outcome {
        CheckpointOutcome::Written(record) => record,
        other => panic!("expected a written checkpoint, got {other:?}"),
    }
}

async fn open_jetstream(url: &str) -> JetStreamStore {
    let client = async_nats::connect(url).await.expect("connect");
    let name = Uuid::now_v7().simple().to_string()[20..].to_uppercase();
    let config = StoreConfig::new(
        format!("EVENTS_{name}"),
        Subjects::new(format!("t{}", name.to_lowercase())).expect("prefix"),
    );
    JetStreamStore::open(client, config).await.expect("open")
}

/// The fold of every commit the store returns, from the start.
async fn fold_of<S: EventStore>(store: &S, up_to: u64) -> (String, u64) {
    let mut fold = CheckpointFold::new(CheckpointBase::start());
    for recorded in store.read_after(0, 10_000).await.expect("read") {
        if recorded.position <= up_to {
            fold.push(recorded.position, &recorded.hash);
        }
    }
    let checkpoint = fold.checkpoint(epoch());
    (checkpoint.log_hash, checkpoint.commits)
}

#[tokio::test]
async fn a_jetstream_checkpoint_covers_every_commit_before_it_and_names_the_previous_one() {
    let server = NatsServer::start();
    let store = open_jetstream(&server.url()).await;
    assert_eq!(
        store.write_checkpoint(epoch()).await.expect("checkpoint"),
        CheckpointOutcome::UpToDate,
        "an empty log has nothing to cover"
    );
    let positions = append_commits(&store, 3).await;
    let first = written(store.write_checkpoint(epoch()).await.expect("checkpoint"));
    assert_eq!(first.checkpoint.covers, positions[2]);
    assert_eq!(first.position, positions[2] + 1);
    assert_eq!(
        (first.checkpoint.log_hash.clone(), first.checkpoint.commits),
        fold_of(&store, positions[2]).await
    );
    assert_eq!(first.checkpoint.previous_position, 0);
    assert_eq!(
        store.write_checkpoint(epoch()).await.expect("again"),
        CheckpointOutcome::UpToDate,
        "no commit since: no second checkpoint over the same range"
    );

    let more = append_commits(&store, 2).await;
    assert_eq!(more[0], first.position + 1, "commits continue after it");
    let second = written(store.write_checkpoint(epoch()).await.expect("checkpoint"));
    assert_eq!(second.checkpoint.covers, more[1]);
    assert_eq!(second.checkpoint.commits, 5);
    assert_eq!(second.checkpoint.previous_position, first.position);
    assert_eq!(second.checkpoint.previous_hash, first.hash);
    assert_eq!(
        second.checkpoint.previous_log_hash,
        first.checkpoint.log_hash
    );
    assert_eq!(
        (second.checkpoint.log_hash.clone(), 5),
        fold_of(&store, more[1]).await
    );

    // Readers of the commits never see a checkpoint; the commits' head is the last commit.
    let commits = store.read_after(0, 100).await.expect("read");
    assert_eq!(
        commits.iter().map(|r| r.position).collect::<Vec<_>>(),
        [positions.clone(), more.clone()].concat()
    );
    assert_eq!(
        store.last_commit_position().await.expect("head"),
        more[1],
        "the stream ends with a checkpoint; the last commit is before it"
    );
    assert_eq!(
        store.last_checkpoint().await.expect("last"),
        Some(second.clone())
    );
    assert_eq!(
        store.checkpoints_after(0, 10).await.expect("checkpoints"),
        vec![first, second]
    );
}

#[tokio::test]
async fn a_racing_commit_makes_the_checkpoint_retry_never_cover_a_wrong_range() {
    let server = NatsServer::start();
    let store = open_jetstream(&server.url()).await;
    let positions = append_commits(&store, 2).await;
    let prepared = store
        .prepare_checkpoint(epoch())
        .await
        .expect("prepare")
        .expect("something to cover");
    assert_eq!(prepared.checkpoint.covers, positions[1]);
    // A commit lands between computing the checkpoint and appending it.
    let raced = append_commits(&store, 1).await[0];
    assert_eq!(
        store.publish_checkpoint(&prepared).await.expect("publish"),
        CheckpointOutcome::Raced {
            covers: positions[1]
        }
    );
    assert!(
        store
            .checkpoints_after(0, 10)
            .await
            .expect("checkpoints")
            .is_empty(),
        "the raced checkpoint was not written"
    );
    // Retried, it covers the new head.
    let record = written(store.write_checkpoint(epoch()).await.expect("retry"));
    assert_eq!(record.checkpoint.covers, raced);
    assert_eq!(record.checkpoint.commits, 3);
    assert_eq!(
        (record.checkpoint.log_hash.clone(), 3),
        fold_of(&store, raced).await
    );
}

#[tokio::test]
async fn two_writers_on_one_stream_never_write_two_checkpoints_over_one_range() {
    let server = NatsServer::start();
    let store = open_jetstream(&server.url()).await;
    append_commits(&store, 4).await;
    let a = store
        .prepare_checkpoint(epoch())
        .await
        .expect("a")
        .expect("a");
    let b = store
        .prepare_checkpoint(epoch())
        .await
        .expect("b")
        .expect("b");
    assert_eq!(a, b);
    let (first, second) = tokio::join!(store.publish_checkpoint(&a), store.publish_checkpoint(&b));
    let outcomes = [first.expect("first"), second.expect("second")];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, CheckpointOutcome::Written(_)))
            .count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, CheckpointOutcome::Raced { .. }))
            .count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(store.checkpoints_after(0, 10).await.expect("read").len(), 1);
}

/// Waits (bounded) until the last checkpoint covers `position`; the bound only turns a
/// hang into a failure.
async fn wait_for_checkpoint_covering<L: CheckpointLog>(
    log: &L,
    position: u64,
) -> CheckpointRecord {
    for _ in 0..600 {
        if let Some(last) = log.last_checkpoint().await.expect("last checkpoint") {
            if last.checkpoint.covers >= position {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no checkpoint covering position {position} was written");
}

#[tokio::test]
async fn the_writer_checkpoints_every_n_commits() {
    let server = NatsServer::start();
    let store = open_jetstream(&server.url()).await;
    let signal = AppendSignal::new();
    let writer = CheckpointWriter::new(
        store.clone(),
        Cadence {
            every_commits: Some(3),
            every: None,
        },
        signal.clone(),
        Arc::new(epoch),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(writer.run(async {
        let _ = stopped.await;
    }));
    let loan = new_loan();
    let mut last = 0;
    let mut covered = Vec::new();
    for version in 0..6 {
        last = stored(store.append(&sample_commit(loan, version, 1), last).await);
        signal.appended();
        if (version + 1) % 3 == 0 {
            let checkpoint = wait_for_checkpoint_covering(&store, last).await;
            covered.push((checkpoint.checkpoint.covers, checkpoint.checkpoint.commits));
        }
    }
    let _ = stop.send(());
    task.await.expect("writer stops");
    // Commits at 1, 2, 3; checkpoint at 4; commits at 5, 6, 7; checkpoint at 8.
    assert_eq!(covered, vec![(3, 3), (7, 6)]);
    let all = store.checkpoints_after(0, 10).await.expect("read");
    assert_eq!(
        all.iter().map(|c| c.position).collect::<Vec<_>>(),
        vec![4, 8]
    );
}

#[tokio::test]
async fn the_writer_checkpoints_after_its_interval_only_what_is_new() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("log.sqlite"))
        .await
        .expect("open");
    let writer = CheckpointWriter::new(
        store.clone(),
        Cadence {
            every_commits: None,
            every: Some(Duration::from_millis(20)),
        },
        AppendSignal::new(),
        Arc::new(epoch),
    );
    append_commits(&store, 2).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(writer.run(async {
        let _ = stopped.await;
    }));
    let checkpoint = wait_for_checkpoint_covering(&store, 2).await;
    let _ = stop.send(());
    task.await.expect("writer stops");
    assert_eq!(checkpoint.checkpoint.covers, 2);
    assert_eq!(checkpoint.checkpoint.commits, 2);
    assert_eq!(
        store.checkpoints_after(0, 10).await.expect("read"),
        vec![checkpoint],
        "later ticks found nothing new to cover"
    );
}

#[tokio::test]
async fn a_sqlite_checkpoint_takes_the_next_position_and_appends_continue_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("log.sqlite");
    let store = SqliteStore::open(&path).await.expect("open");
    assert_eq!(
        store.write_checkpoint(epoch()).await.expect("empty"),
        CheckpointOutcome::UpToDate
    );
    let positions = append_commits(&store, 3).await;
    assert_eq!(positions, vec![1, 2, 3]);
    let first = written(store.write_checkpoint(epoch()).await.expect("checkpoint"));
    assert_eq!((first.position, first.checkpoint.covers), (4, 3));
    assert_eq!(
        (first.checkpoint.log_hash.clone(), 3),
        fold_of(&store, 3).await
    );
    assert_eq!(
        store.write_checkpoint(epoch()).await.expect("again"),
        CheckpointOutcome::UpToDate
    );
    let more = append_commits(&store, 1).await;
    assert_eq!(
        more,
        vec![5],
        "the next commit takes the position after the checkpoint"
    );
    let second = written(store.write_checkpoint(epoch()).await.expect("checkpoint"));
    assert_eq!((second.position, second.checkpoint.covers), (6, 5));
    assert_eq!(second.checkpoint.previous_hash, first.hash);
    assert_eq!(second.checkpoint.commits, 4);

    assert_eq!(store.head().await.expect("head"), 5, "the last commit");
    assert_eq!(store.end().await.expect("end"), 6, "the last entry");
    assert_eq!(
        store
            .read_after(0, 100)
            .await
            .expect("read")
            .iter()
            .map(|r| r.position)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 5],
        "readers of the commits never see a checkpoint"
    );
    let entries = store.read_entries_after(0, 100).await.expect("entries");
    let checkpoints: Vec<u64> = entries
        .iter()
        .filter_map(|e| match e {
            StoredEntry::Checkpoint { position, .. } => Some(*position),
            StoredEntry::Commit(_) => None,
        })
        .collect();
    assert_eq!(checkpoints, vec![4, 6]);
    assert_eq!(
        entries
            .iter()
            .map(StoredEntry::position)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );

    // Append-only: a checkpoint can be neither changed nor deleted.
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("raw connection");
    for statement in [
        "UPDATE checkpoints SET checkpoint_bytes = x'00' WHERE position = 4",
        "DELETE FROM checkpoints WHERE position = 4",
    ] {
        let error = sqlx::query(statement)
            .execute(&mut raw)
            .await
            .expect_err("refused");
        assert!(error.to_string().contains("append-only"), "{error}");
    }
}

#[tokio::test]
async fn an_import_writes_checkpoints_at_their_positions_and_never_over_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = SqliteStore::open(dir.path().join("source.sqlite"))
        .await
        .expect("open");
    append_commits(&source, 2).await;
    written(source.write_checkpoint(epoch()).await.expect("checkpoint"));
    append_commits(&source, 1).await;
    let entries = source.read_entries_after(0, 100).await.expect("entries");

    let target = SqliteStore::open(dir.path().join("target.sqlite"))
        .await
        .expect("open");
    let mut import = target.begin_import().await.expect("begin");
    for entry in &entries {
        match entry {
            StoredEntry::Commit(commit) => import.push(commit.position, &commit.bytes).await,
            StoredEntry::Checkpoint { position, bytes } => {
                import.push_checkpoint(*position, bytes).await
            }
        }
        .expect("imported");
    }
    assert_eq!(import.commit().await.expect("commit"), 3);
    assert_eq!(
        target.read_entries_after(0, 100).await.expect("entries"),
        entries
    );

    // A second import of the checkpoint is refused: its position is taken.
    let StoredEntry::Checkpoint { position, bytes } = &entries[2] else {
        panic!("position 3 is the checkpoint");
    };
    let mut again = target.begin_import().await.expect("begin");
    let error = again
        .push_checkpoint(*position, bytes)
        .await
        .expect_err("taken");
    assert!(error.to_string().contains("a checkpoint"), "{error}");
    drop(again);
    let mut garbage = target.begin_import().await.expect("begin");
    let error = garbage
        .push_checkpoint(10, b"{\"not\":\"a checkpoint\"}")
        .await
        .expect_err("not a checkpoint");
    assert!(
        matches!(error, StoreError::ImportRefused { position: 10, .. }),
        "{error}"
    );
}

// The verifier, on a synthetic log (commit hashes stand for commits' bytes).

fn commit_hash(n: u64) -> String {
    chain_hash(format!("commit {n}").as_bytes())
}

/// A log of `commits` commits with a checkpoint after every `every`: (position,
/// `Some(bytes)` for a checkpoint, `None` for the commit numbered by its position).
fn synthetic_log(commits: u64, every: u64) -> Vec<(u64, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut fold = CheckpointFold::new(CheckpointBase::start());
    let mut position = 0;
    for n in 1..=commits {
        position += 1;
        fold.push(position, &commit_hash(position));
        out.push((position, None));
        if n % every == 0 {
            position += 1;
            let bytes = fold.checkpoint(epoch()).to_bytes();
            let record = CheckpointRecord::decode(position, &bytes).expect("decode");
            fold = CheckpointFold::new(CheckpointBase::after(&record));
            out.push((position, Some(bytes)));
        }
    }
    out
}

fn verify(
    mut verifier: CheckpointVerifier,
    entries: &[(u64, Option<Vec<u8>>)],
    hash: impl Fn(u64) -> String,
) -> Result<u64, BrokenLink> {
    for (position, entry) in entries {
        match entry {
            None => verifier.commit(*position, &hash(*position)),
            Some(bytes) => {
                verifier.checkpoint(*position, bytes)?;
            }
        }
    }
    Ok(verifier.count())
}

fn checkpoint_finding(result: Result<u64, BrokenLink>) -> (u64, String) {
    match result {
        Err(BrokenLink::Checkpoint { position, reason }) => (position, reason),
        other => panic!("expected a broken checkpoint, got {other:?}"),
    }
}

#[test]
fn an_untouched_log_verifies_every_checkpoint() {
    assert_eq!(
        verify(
            CheckpointVerifier::from_start(),
            &synthetic_log(10, 3),
            commit_hash
        ),
        Ok(3)
    );
}

#[test]
fn a_dropped_commit_is_named_at_the_next_checkpoint() {
    let mut entries = synthetic_log(10, 3);
    entries.remove(5); // position 6: a commit after the checkpoint at 4
    let (position, reason) = checkpoint_finding(verify(
        CheckpointVerifier::from_start(),
        &entries,
        commit_hash,
    ));
    assert_eq!(position, 8);
    assert!(
        reason.contains(
            "1 commit(s) between the checkpoint at position 4 and position 7 were dropped"
        ),
        "{reason}"
    );
}

#[test]
fn a_changed_commit_is_named_at_the_next_checkpoint() {
    let entries = synthetic_log(4, 2);
    let (position, reason) =
        checkpoint_finding(verify(CheckpointVerifier::from_start(), &entries, |p| {
            if p == 2 {
                commit_hash(99)
            } else {
                commit_hash(p)
            }
        }));
    assert_eq!(position, 3);
    assert!(
        reason.contains("changed, reordered or renumbered"),
        "{reason}"
    );
}

#[test]
fn a_dropped_checkpoint_breaks_the_next_ones_link() {
    let mut entries = synthetic_log(9, 3);
    entries.remove(3); // the checkpoint at position 4
    let (position, reason) = checkpoint_finding(verify(
        CheckpointVerifier::from_start(),
        &entries,
        commit_hash,
    ));
    assert_eq!(position, 8);
    assert!(
        reason.contains("previous checkpoint at position 4"),
        "{reason}"
    );
    assert!(reason.contains("dropped"), "{reason}");
}

#[test]
fn an_altered_checkpoint_breaks_the_next_ones_link() {
    let mut entries = synthetic_log(6, 3);
    let bytes = entries[3].1.clone().expect("a checkpoint");
    let mut checkpoint = Checkpoint::from_bytes(&bytes).expect("decode");
    checkpoint.written_at = epoch() + chrono::Duration::days(1);
    entries[3].1 = Some(checkpoint.to_bytes());
    let (position, reason) = checkpoint_finding(verify(
        CheckpointVerifier::from_start(),
        &entries,
        commit_hash,
    ));
    assert_eq!(position, 8);
    assert!(
        reason.contains("the previous checkpoint was altered"),
        "{reason}"
    );
}

#[test]
fn a_moved_checkpoint_is_named() {
    let mut entries = synthetic_log(3, 3);
    // The checkpoint renumbered to a later position than the one it covers + 1.
    entries[3].0 = 9;
    let (position, reason) = checkpoint_finding(verify(
        CheckpointVerifier::from_start(),
        &entries,
        commit_hash,
    ));
    assert_eq!(position, 9);
    assert!(reason.contains("moved or renumbered"), "{reason}");
}

#[test]
fn garbage_in_place_of_a_checkpoint_is_a_finding_not_a_panic() {
    let mut verifier = CheckpointVerifier::from_start();
    verifier.commit(1, &commit_hash(1));
    let (position, reason) =
        checkpoint_finding(verifier.checkpoint(2, b"\xff{not json").map(|_| 0));
    assert_eq!(position, 2);
    assert!(reason.contains("cannot be read"), "{reason}");
}

#[test]
fn mid_log_the_first_checkpoint_is_the_base_and_the_next_ones_are_checked() {
    let entries = synthetic_log(9, 3);
    // From position 3 on: commit 3, checkpoint 4, commits 5-7, checkpoint 8, …
    assert_eq!(
        verify(CheckpointVerifier::mid_log(), &entries[2..], commit_hash),
        Ok(3)
    );
    let mut dropped = entries[2..].to_vec();
    dropped.remove(2); // position 5
    let (position, _) =
        checkpoint_finding(verify(CheckpointVerifier::mid_log(), &dropped, commit_hash));
    assert_eq!(position, 8);
    // From the start, a log that lacks its first checkpoint is caught.
    let (position, reason) = checkpoint_finding(verify(
        CheckpointVerifier::from_start(),
        &entries[4..],
        commit_hash,
    ));
    assert_eq!(position, 8);
    assert!(reason.contains("which the log does not hold"), "{reason}");
}
