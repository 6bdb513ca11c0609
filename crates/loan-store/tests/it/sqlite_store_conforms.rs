//! The SQLite store passes the conformance suite and keeps what its file promises:
//! everything survives a reopen, two handles (and two processes) on one file race
//! correctly, the log refuses UPDATE and DELETE, a corrupt row is an error and not a
//! panic, an import lands at its original positions once, and a destroyed data key is
//! gone from the file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use loan_store::conformance::{self, new_loan, sample_commit};
use loan_store::keys::{KeyEntry, KeyStore, WrappedDek};
use loan_store::sqlite::{SCHEMA_VERSION, SqliteConfig, SqliteStore};
use loan_store::{Appended, CommandRecord, EventStore, History, StoreError, chain_hash};
use sqlx::Connection;
use uuid::Uuid;

fn temp_file(dir: &tempfile::TempDir) -> PathBuf {
    dir.path()
        .join(format!("{}.sqlite", Uuid::now_v7().simple()))
}

async fn raw_connection(path: &Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("a plain SQLite connection")
}

fn stored(result: Result<Appended, StoreError>) -> u64 {
    match result {
        Ok(Appended::Stored { position, .. }) => position,
        other => panic!("expected a stored commit, got {other:?}"),
    }
}

#[tokio::test]
async fn the_sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = &dir;
    conformance::run_all(|| async move {
        SqliteStore::open(temp_file(dir))
            .await
            .expect("open a new store")
    })
    .await;
}

#[tokio::test]
async fn appends_are_numbered_from_1_without_gaps_and_store_the_jetstream_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(temp_file(&dir)).await.expect("open");
    let mut expected = Vec::new();
    let mut last = 0;
    let loan = new_loan();
    for version in 0..5 {
        let commit = sample_commit(loan, version, 1);
        // Refused appends do not consume positions.
        assert!(matches!(
            store
                .append(&sample_commit(loan, version, 1), last + 7)
                .await,
            Err(StoreError::Conflict { .. })
        ));
        let Ok(Appended::Stored { position, hash }) = store.append(&commit, last).await else {
            panic!("append {version}");
        };
        assert_eq!(position, version + 1, "gap-free from 1");
        assert_eq!(hash, chain_hash(&commit.to_bytes()));
        expected.push(commit.to_bytes());
        last = position;
    }
    let rows = store.read_stored_after(0, 100).await.expect("read");
    let bytes: Vec<Vec<u8>> = rows.into_iter().map(|row| row.bytes).collect();
    assert_eq!(
        bytes, expected,
        "the file holds Commit::to_bytes, the bytes JetStream publishes"
    );
    let history = store.load(loan).await.expect("load");
    assert_eq!(
        history.last_hash(),
        chain_hash(expected.last().expect("bytes"))
    );
}

#[tokio::test]
async fn a_reopened_store_keeps_commits_command_ids_and_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = temp_file(&dir);
    let loan = new_loan();
    let command = Uuid::now_v7();
    let record = CommandRecord {
        aggregate: loan,
        request_digest: "cd".repeat(32),
        version: 2,
        position: Some(2),
    };
    let customer = Uuid::now_v7();
    let key = wrapped_key("reopen");
    let before: History = {
        let store = SqliteStore::open(&path).await.expect("open");
        let p1 = stored(store.append(&sample_commit(loan, 0, 1), 0).await);
        stored(store.append(&sample_commit(loan, 1, 1), p1).await);
        store
            .remember_command(command, &record)
            .await
            .expect("remember");
        store
            .key_store()
            .create(customer, &key)
            .await
            .expect("create key");
        store.load(loan).await.expect("load")
    };
    let store = SqliteStore::open_existing(&path).await.expect("reopen");
    assert_eq!(store.load(loan).await.expect("load"), before);
    assert_eq!(
        store.recall_command(command).await.expect("recall"),
        Some(record)
    );
    assert_eq!(
        store.key_store().get(customer).await.expect("get"),
        Some(KeyEntry::Active(key))
    );
    let p3 = stored(
        store
            .append(&sample_commit(loan, 2, 1), before.last_position())
            .await,
    );
    assert_eq!(p3, 3, "appends continue after the reopened log's head");

    let mut raw = raw_connection(&path).await;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut raw)
        .await
        .expect("version");
    assert_eq!(version, SCHEMA_VERSION, "the schema is versioned");
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .expect("journal mode");
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn a_missing_file_is_not_created_by_open_existing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = temp_file(&dir);
    let error = SqliteStore::open_existing(&path).await.err();
    assert!(
        matches!(error, Some(StoreError::Unavailable { .. })),
        "{error:?}"
    );
    assert!(!path.exists(), "no empty log was created");
}

#[tokio::test]
async fn a_file_of_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = temp_file(&dir);
    drop(SqliteStore::open(&path).await.expect("open"));
    let mut raw = raw_connection(&path).await;
    sqlx::raw_sql(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .execute(&mut raw)
        .await
        .expect("set version");
    raw.close().await.expect("close");
    match SqliteStore::open(&path).await {
        Err(StoreError::Unavailable { context, .. }) => {
            assert!(context.contains("schema version"), "{context}")
        }
        Ok(_) => panic!("a newer schema must be refused"),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_group_transactions_and_keep_their_own_outcomes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(temp_file(&dir)).await.expect("open");
    // 60 new aggregates, plus two racing creations of one more: one of those two wins.
    let contested = new_loan();
    let mut commits: Vec<_> = (0..60).map(|_| sample_commit(new_loan(), 0, 1)).collect();
    commits.push(sample_commit(contested, 0, 1));
    commits.push(sample_commit(contested, 0, 2));
    let outcomes = futures::future::join_all(commits.iter().map(|commit| {
        let store = store.clone();
        async move { store.append(commit, 0).await }
    }))
    .await;
    let mut outcomes = outcomes;
    let contested_outcomes = outcomes.split_off(60);
    let mut positions: Vec<u64> = outcomes.into_iter().map(stored).collect();
    positions.sort_unstable();
    let winners = contested_outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(Appended::Stored { .. })))
        .count();
    let conflicts = contested_outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(StoreError::Conflict { .. })))
        .count();
    assert_eq!((winners, conflicts), (1, 1), "{contested_outcomes:?}");
    assert_eq!(store.head().await.unwrap(), 61, "61 commits, no gaps");
    for (position, recorded) in positions
        .iter()
        .zip(futures::future::join_all(positions.iter().map(|p| store.commit_at(*p))).await)
    {
        let recorded = recorded.unwrap().expect("stored where acknowledged");
        assert_eq!(recorded.position, *position);
    }
    let (groups, writes) = store.group_commit_stats();
    assert_eq!(writes, 62, "every append went through a group");
    assert!(
        groups < writes,
        "concurrent appends shared transactions: {groups} groups for {writes} writes"
    );
}

#[tokio::test]
async fn two_handles_on_one_file_race_correctly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = temp_file(&dir);
    let (a, b) = (
        SqliteStore::open(&path).await.expect("open a"),
        SqliteStore::open(&path).await.expect("open b"),
    );
    let loan = new_loan();
    let base = stored(a.append(&sample_commit(loan, 0, 1), 0).await);
    assert_eq!(
        b.load(loan).await.expect("load").last_position(),
        base,
        "b sees a's commit"
    );
    let commits: Vec<_> = (0..40).map(|_| sample_commit(loan, 1, 1)).collect();
    let appends = commits.iter().enumerate().map(|(i, commit)| {
        let handle = if i % 2 == 0 { &a } else { &b };
        handle.append(commit, base)
    });
    let results = futures::future::join_all(appends).await;
    let won = results
        .iter()
        .filter(|r| matches!(r, Ok(Appended::Stored { .. })))
        .count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict { .. })))
        .count();
    assert_eq!((won, conflicts), (1, 39), "{results:?}");
    // A retry through the other handle is a duplicate.
    let winner = commits
        .iter()
        .zip(&results)
        .find(|(_, r)| matches!(r, Ok(Appended::Stored { .. })))
        .map(|(c, _)| c)
        .expect("a winner");
    assert!(matches!(
        a.append(winner, base).await,
        Ok(Appended::Duplicate { .. })
    ));
    assert!(matches!(
        b.append(winner, base).await,
        Ok(Appended::Duplicate { .. })
    ));
    assert_eq!(a.load(loan).await.expect("load").commits.len(), 2);
    // Fresh aggregates through both handles: positions stay unique and gap-free.
    let fresh: Vec<_> = (0..30).map(|_| sample_commit(new_loan(), 0, 1)).collect();
    let appends = fresh.iter().enumerate().map(|(i, commit)| {
        let handle = if i % 2 == 0 { &a } else { &b };
        handle.append(commit, 0)
    });
    let mut positions: Vec<u64> = futures::future::join_all(appends)
        .await
        .into_iter()
        .map(stored)
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (3..33).collect::<Vec<u64>>());
}

/// Run by [`two_processes_append_to_one_file`] in child processes, never on its own.
#[tokio::test]
#[ignore = "a child process of two_processes_append_to_one_file"]
async fn child_process_appends() {
    let path = std::env::var("LOAN_SQLITE_CHILD_FILE").expect("run by the parent test");
    let loan: Uuid = std::env::var("LOAN_SQLITE_CHILD_LOAN")
        .expect("run by the parent test")
        .parse()
        .expect("a loan id");
    let loan = loan_store::AggregateRef {
        aggregate_type: loan_domain::AggregateType::Loan,
        id: loan,
    };
    let store = SqliteStore::open(&path).await.expect("open");
    let mut appended = 0;
    while appended < 25 {
        let history = store.load(loan).await.expect("load");
        let commit = sample_commit(loan, history.version(), 1);
        match store.append(&commit, history.last_position()).await {
            Ok(Appended::Stored { .. }) => appended += 1,
            Err(StoreError::Conflict { .. }) => {}
            other => panic!("unexpected outcome: {other:?}"),
        }
    }
}

#[tokio::test]
async fn two_processes_append_to_one_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = temp_file(&dir);
    let store = SqliteStore::open(&path).await.expect("open");
    let loan = new_loan();
    stored(store.append(&sample_commit(loan, 0, 1), 0).await);
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "sqlite_store_conforms::child_process_appends",
                    "--ignored",
                    "--quiet",
                ])
                .env("LOAN_SQLITE_CHILD_FILE", &path)
                .env("LOAN_SQLITE_CHILD_LOAN", loan.id.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn a child process")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success(), "a child failed");
    }
    let history = store.load(loan).await.expect("load");
    assert_eq!(history.commits.len(), 51, "1 + 25 from each process");
    for pair in history.commits.windows(2) {
        assert_eq!(
            pair[1].commit.base_version, pair[0].commit.version,
            "every commit was decided on its predecessor: no two won on one expectation"
        );
        assert!(pair[1].position > pair[0].position);
    }
}

#[tokio::test]
async fn the_log_refuses_update_and_delete() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = temp_file(&dir);
    let store = SqliteStore::open(&path).await.expect("open");
    let loan = new_loan();
    let commit = sample_commit(loan, 0, 1);
    stored(store.append(&commit, 0).await);
    let mut raw = raw_connection(&path).await;
    for statement in [
        "UPDATE log SET commit_bytes = x'00' WHERE position = 1",
        "UPDATE log SET position = 9 WHERE position = 1",
        "DELETE FROM log WHERE position = 1",
        "DELETE FROM log",
    ] {
        let error = sqlx::query(statement)
            .execute(&mut raw)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    assert_eq!(
        store.load(loan).await.expect("load").commits[0].commit,
        commit
    );
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = temp_file(&dir);
    let store = SqliteStore::open(&path).await.expect("open");
    let loan = new_loan();
    stored(store.append(&sample_commit(loan, 0, 1), 0).await);
    // Rows written behind the store's back: bytes that are not a commit, and a commit
    // filed under another aggregate.
    let mut raw = raw_connection(&path).await;
    let other = sample_commit(new_loan(), 0, 1);
    sqlx::query(
        "INSERT INTO log (position, aggregate_type, aggregate_id, command_id, commit_bytes)
         VALUES (2, 'loan', ?, ?, x'7b6e6f74'), (3, 'loan', ?, ?, ?)",
    )
    .bind(loan.id.to_string())
    .bind(Uuid::now_v7().to_string())
    .bind(loan.id.to_string())
    .bind(other.command_id.to_string())
    .bind(other.to_bytes())
    .execute(&mut raw)
    .await
    .expect("insert");
    for (position, what) in [(2, "not a commit"), (3, "another aggregate")] {
        let at = store.commit_at(position).await;
        assert!(
            matches!(at, Err(StoreError::Corrupt { position: p, .. }) if p == position),
            "{what}: {at:?}"
        );
    }
    assert!(matches!(
        store.load(loan).await,
        Err(StoreError::Corrupt { position: 2, .. })
    ));
    assert!(matches!(
        store.read_after(0, 10).await,
        Err(StoreError::Corrupt { position: 2, .. })
    ));
    // The raw bytes stay readable, for an auditor to name the broken link.
    assert_eq!(
        store.read_stored_after(1, 1).await.expect("raw")[0].bytes,
        b"{not"
    );
}

#[tokio::test]
async fn a_commit_above_the_maximum_size_is_too_large() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = SqliteConfig {
        max_commit_size: 2_000,
        ..SqliteConfig::default()
    };
    let store = SqliteStore::open_with(temp_file(&dir), config, true)
        .await
        .expect("open");
    let loan = new_loan();
    let big = sample_commit(loan, 0, 10);
    assert!(big.to_bytes().len() > 2_000);
    assert!(matches!(
        store.append(&big, 0).await,
        Err(StoreError::TooLarge { max: 2_000, .. })
    ));
    assert!(store.load(loan).await.expect("load").commits.is_empty());
    stored(store.append(&sample_commit(loan, 0, 1), 0).await);
}

#[tokio::test]
async fn an_import_lands_at_its_original_positions_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A source log with gaps in what is exported (positions 2 and 4 of another loan left out).
    let source = SqliteStore::open(temp_file(&dir)).await.expect("source");
    let (loan, other) = (new_loan(), new_loan());
    let (mut last, mut last_other) = (0, 0);
    for version in 0..3 {
        last = stored(source.append(&sample_commit(loan, version, 1), last).await);
        last_other = stored(
            source
                .append(&sample_commit(other, version, 1), last_other)
                .await,
        );
    }
    let exported: Vec<_> = source
        .read_stored_after(0, 100)
        .await
        .expect("read")
        .into_iter()
        .filter(|row| row.aggregate == loan)
        .collect();
    assert_eq!(
        exported.iter().map(|r| r.position).collect::<Vec<_>>(),
        [1, 3, 5]
    );

    let target = SqliteStore::open(temp_file(&dir)).await.expect("target");
    let mut import = target.begin_import().await.expect("begin");
    for row in &exported {
        import.push(row.position, &row.bytes).await.expect("push");
    }
    assert_eq!(
        target.head().await.expect("head"),
        0,
        "invisible before commit"
    );
    assert_eq!(import.commit().await.expect("commit"), 3);
    assert_eq!(
        target.read_stored_after(0, 100).await.expect("read"),
        exported,
        "same positions, same bytes"
    );
    assert_eq!(
        target.load(loan).await.expect("load"),
        source.load(loan).await.expect("load"),
        "same history and chain hashes"
    );
    // Appends continue after the highest imported position.
    let next = stored(target.append(&sample_commit(new_loan(), 0, 1), 0).await);
    assert_eq!(next, 6);

    // Importing again is refused at its first position, and writes nothing.
    let mut again = target.begin_import().await.expect("begin");
    let refused = again.push(exported[0].position, &exported[0].bytes).await;
    assert!(
        matches!(&refused, Err(StoreError::ImportRefused { position: 1, reason }) if reason.contains("already taken")),
        "{refused:?}"
    );
    drop(again);
    assert_eq!(target.head().await.expect("head"), 6);
}

/// Positions and bytes pushed into one import.
type Pushes = Vec<(u64, Vec<u8>)>;

#[tokio::test]
async fn an_import_is_refused_whole_on_bad_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(temp_file(&dir)).await.expect("open");
    let existing_loan = new_loan();
    let existing = sample_commit(existing_loan, 0, 1);
    stored(store.append(&existing, 0).await);
    let loan = new_loan();
    let first = sample_commit(loan, 0, 1).to_bytes();
    let second = sample_commit(loan, 1, 1).to_bytes();

    let cases: Vec<(&str, Pushes, &str)> = vec![
        (
            "positions out of order",
            vec![(10, first.clone()), (9, second.clone())],
            "must increase",
        ),
        (
            "a repeated position",
            vec![(10, first.clone()), (10, second.clone())],
            "must increase",
        ),
        ("position 0", vec![(0, first.clone())], "not a log position"),
        (
            "bytes that are not a commit",
            vec![(10, first.clone()), (11, b"{}".to_vec())],
            "not a commit",
        ),
        (
            "a command id already in the log",
            vec![(10, existing_loan_commit_of_other_aggregate(&existing))],
            "already in the log",
        ),
        (
            "an aggregate the store already holds",
            vec![(10, sample_commit(existing_loan, 1, 1).to_bytes())],
            "already has commits",
        ),
        (
            "a taken position",
            vec![(1, first.clone())],
            "already taken",
        ),
    ];
    for (what, pushes, expected) in cases {
        let mut import = store.begin_import().await.expect("begin");
        let mut outcome = Ok(());
        for (position, bytes) in &pushes {
            outcome = import.push(*position, bytes).await;
            if outcome.is_err() {
                break;
            }
        }
        match outcome {
            Err(StoreError::ImportRefused { reason, .. }) => {
                assert!(reason.contains(expected), "{what}: {reason}")
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
        drop(import);
        assert_eq!(
            store.head().await.expect("head"),
            1,
            "{what}: nothing of the import was written"
        );
    }
}

/// A commit of a new aggregate that reuses `existing`'s command id.
fn existing_loan_commit_of_other_aggregate(existing: &loan_store::Commit) -> Vec<u8> {
    let mut commit = sample_commit(new_loan(), 0, 1);
    commit.command_id = existing.command_id;
    commit.to_bytes()
}

fn wrapped_key(tag: &str) -> WrappedDek {
    WrappedDek {
        key_id: format!("dek-{tag}"),
        alg: "aes-256-gcm/v1".into(),
        kek_id: "kek-test".into(),
        nonce: "bm9uY2Utbm9uY2U=".into(),
        // A value that cannot occur by chance in the file.
        wrapped: format!("WRAPPED-{tag}-{}", Uuid::now_v7().simple()),
    }
}

fn file_contains(path: &Path, needle: &str) -> bool {
    let mut haystack = std::fs::read(path).unwrap_or_default();
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    haystack.extend(std::fs::read(wal).unwrap_or_default());
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn data_keys_are_created_once_and_destroyed_for_good() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = temp_file(&dir);
    let store = SqliteStore::open(&path).await.expect("open");
    let other_handle = SqliteStore::open(&path).await.expect("open again");
    let keys = store.key_store();
    let customer = Uuid::now_v7();
    let (first, second) = (wrapped_key("first"), wrapped_key("second"));
    assert_eq!(keys.get(customer).await.expect("get"), None);
    let other_keys = other_handle.key_store();
    let (a, b) = futures::join!(
        keys.create(customer, &first),
        other_keys.create(customer, &second)
    );
    let (a, b) = (a.expect("create"), b.expect("create"));
    assert_eq!(a, b, "both writers end up with the same key");
    let winner = match &a {
        KeyEntry::Active(key) => key.clone(),
        KeyEntry::Destroyed => panic!("a new customer's key is active"),
    };
    assert_eq!(
        keys.create(customer, &wrapped_key("late"))
            .await
            .expect("create"),
        KeyEntry::Active(winner.clone()),
        "an existing key is never replaced"
    );

    // The key is in the file before it is destroyed (so the check below can fail).
    assert!(file_contains(&path, &winner.wrapped));
    keys.destroy(customer).await.expect("destroy");
    assert_eq!(
        keys.get(customer).await.expect("get"),
        Some(KeyEntry::Destroyed)
    );
    assert_eq!(
        keys.create(customer, &first).await.expect("create"),
        KeyEntry::Destroyed,
        "a destroyed key is never created again"
    );
    keys.destroy(customer)
        .await
        .expect("destroying twice is fine");
    keys.destroy(Uuid::now_v7())
        .await
        .expect("destroying a key that never existed leaves a tombstone");
    drop(other_keys);
    drop(other_handle);
    assert!(
        !file_contains(&path, &winner.wrapped),
        "the wrapped key's bytes are overwritten in the database and its WAL"
    );
    let mut raw = raw_connection(&path).await;
    for statement in [
        "UPDATE data_keys SET destroyed = 0",
        "DELETE FROM data_keys",
    ] {
        assert!(
            sqlx::query(statement).execute(&mut raw).await.is_err(),
            "{statement} is refused"
        );
    }
}

/// Appends per second on one file with `synchronous = FULL`, one writer and eight
/// concurrent writers. Figures, not assertions:
/// `cargo test -p loan-store --test it sqlite_append_rate -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run on demand"]
async fn sqlite_append_rate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(temp_file(&dir)).await.expect("open");
    let commits: Vec<_> = (0..1_000)
        .map(|_| sample_commit(new_loan(), 0, 2))
        .collect();
    let started = Instant::now();
    for commit in &commits[..500] {
        stored(store.append(commit, 0).await);
    }
    let sequential = started.elapsed();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in commits[500..].chunks(500 / 8 + 1) {
        let store = store.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            for commit in &chunk {
                stored(store.append(commit, 0).await);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let concurrent = started.elapsed();
    let rate = |n: u128, d: std::time::Duration| n * 1_000_000 / d.as_micros().max(1);
    println!(
        "sqlite appends (synchronous=FULL, {} bytes each): 1 writer {} /s, 8 writers {} /s",
        commits[0].to_bytes().len(),
        rate(500, sequential),
        rate(500, concurrent)
    );
}
