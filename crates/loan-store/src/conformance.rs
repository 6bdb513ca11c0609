//! The conformance suite every [`EventStore`] backend must pass.
//!
//! Each check takes a fresh, empty store and panics with a message on a violation. The
//! JetStream store runs them against a real nats-server (`tests/it`); the embedded
//! SQLite store runs the same functions.

use chrono::{TimeZone, Utc};
use loan_contract::AnyEvent;
use loan_contract::event::{CommitContext, EventEnvelope};
use loan_domain::loan::LoanEvent;
use loan_domain::{Actor, AggregateType, CommandKind, Role};
use uuid::Uuid;

use crate::{AggregateRef, Appended, CommandRecord, Commit, EventStore, StoreError};

/// A loan aggregate with a fresh id.
pub fn new_loan() -> AggregateRef {
    AggregateRef {
        aggregate_type: AggregateType::Loan,
        id: Uuid::now_v7(),
    }
}

/// A commit of `events` follow-up events on top of `base_version`.
pub fn sample_commit(aggregate: AggregateRef, base_version: u64, events: usize) -> Commit {
    let recorded_at = Utc
        .with_ymd_and_hms(2026, 1, 5, 9, 30, 0)
        .single()
        .expect("valid time");
    let ctx = CommitContext {
        aggregate_id: aggregate.id,
        base_version,
        recorded_at,
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: Actor::new("officer-1", [Role::LoanOfficer]),
    };
    let domain_events = (0..events)
        .map(|i| {
            AnyEvent::Loan(LoanEvent::FollowUpLogged {
                note: format!("follow-up {} of commit at {base_version}", i + 1),
                next_follow_up_on: None,
                logged_on: recorded_at.date_naive(),
            })
        })
        .collect();
    let events: Vec<_> = EventEnvelope::seal(domain_events, &ctx, Uuid::now_v7)
        .iter()
        .map(EventEnvelope::to_stored)
        .collect();
    Commit {
        command_id: ctx.command_id,
        command: CommandKind::LogFollowUp,
        aggregate,
        base_version,
        version: base_version + events.len() as u64,
        recorded_at,
        request_digest: "0".repeat(64),
        previous_hash: crate::GENESIS_HASH.to_owned(),
        events,
    }
}

fn stored(result: Result<Appended, StoreError>, what: &str) -> u64 {
    match result {
        Ok(Appended::Stored { position, .. }) => position,
        other => panic!("{what}: expected a stored commit, got {other:?}"),
    }
}

/// Appended commits load back in order, with versions and positions.
pub async fn commits_load_back_in_order<S: EventStore>(store: &S) {
    let loan = new_loan();
    assert!(
        store.load(loan).await.expect("load").commits.is_empty(),
        "a new aggregate has no history"
    );
    let first = sample_commit(loan, 0, 2);
    let p1 = stored(store.append(&first, 0).await, "first append");
    let second = sample_commit(loan, 2, 1);
    let p2 = stored(store.append(&second, p1).await, "second append");
    assert!(p2 > p1, "positions increase");
    let history = store.load(loan).await.expect("load");
    assert_eq!(history.commits.len(), 2);
    assert_eq!(history.commits[0].commit, first);
    assert_eq!(history.commits[1].commit, second);
    assert_eq!(history.last_position(), p2);
    assert_eq!(history.version(), 3);
    let at = store
        .commit_at(p1)
        .await
        .expect("commit_at")
        .expect("present");
    assert_eq!(at.commit, first);
}

/// An append naming a stale last position is refused as a conflict and writes nothing.
pub async fn stale_expectations_conflict<S: EventStore>(store: &S) {
    let loan = new_loan();
    let p1 = stored(
        store.append(&sample_commit(loan, 0, 1), 0).await,
        "first append",
    );
    let again_as_new = store.append(&sample_commit(loan, 0, 1), 0).await;
    assert!(
        matches!(again_as_new, Err(StoreError::Conflict { .. })),
        "creating an existing aggregate: {again_as_new:?}"
    );
    let stale = store.append(&sample_commit(loan, 1, 1), p1 + 1_000).await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "wrong expectation: {stale:?}"
    );
    assert_eq!(
        store.load(loan).await.expect("load").commits.len(),
        1,
        "refused appends wrote nothing"
    );
}

/// The same command id appended twice is stored once.
pub async fn a_command_id_is_stored_once<S: EventStore>(store: &S) {
    let loan = new_loan();
    let commit = sample_commit(loan, 0, 1);
    let position = stored(store.append(&commit, 0).await, "first append");
    match store.append(&commit, 0).await {
        Ok(Appended::Duplicate { position: again }) => {
            assert_eq!(again, position, "the duplicate names the original position")
        }
        other => panic!("a retried append must be reported as a duplicate, got {other:?}"),
    }
    assert_eq!(store.load(loan).await.expect("load").commits.len(), 1);
}

/// Of many concurrent appends on the same expectation, exactly one wins.
pub async fn exactly_one_of_racing_appends_wins<S: EventStore>(store: &S) {
    let loan = new_loan();
    let base = stored(
        store.append(&sample_commit(loan, 0, 1), 0).await,
        "first append",
    );
    let commits: Vec<Commit> = (0..50).map(|_| sample_commit(loan, 1, 1)).collect();
    let results =
        futures::future::join_all(commits.iter().map(|commit| store.append(commit, base))).await;
    let won = results
        .iter()
        .filter(|r| matches!(r, Ok(Appended::Stored { .. })))
        .count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict { .. })))
        .count();
    assert_eq!(
        (won, conflicts),
        (1, 49),
        "one append wins, the others conflict: {results:?}"
    );
    assert_eq!(store.load(loan).await.expect("load").commits.len(), 2);
}

/// Many concurrent appends to different aggregates (a backend may write them together,
/// e.g. JetStream's group commit) each land where their acknowledgement says, and a
/// retried, a stale and a fresh append mixed among them are each told apart.
pub async fn concurrent_appends_land_where_acknowledged<S: EventStore>(store: &S) {
    let retried_loan = new_loan();
    let retried = sample_commit(retried_loan, 0, 1);
    let original = stored(store.append(&retried, 0).await, "original");
    let stale_loan = new_loan();
    let stale_base = stored(
        store.append(&sample_commit(stale_loan, 0, 1), 0).await,
        "stale base",
    );
    stored(
        store
            .append(&sample_commit(stale_loan, 1, 1), stale_base)
            .await,
        "moves the stale loan on",
    );
    let stale = sample_commit(stale_loan, 1, 1);
    let fresh: Vec<Commit> = (0..96).map(|_| sample_commit(new_loan(), 0, 2)).collect();

    let mut appends: Vec<(&Commit, u64)> = fresh.iter().map(|c| (c, 0)).collect();
    appends.insert(40, (&retried, 0));
    appends.insert(70, (&stale, stale_base));
    let results = futures::future::join_all(
        appends
            .iter()
            .map(|(commit, expected)| store.append(commit, *expected)),
    )
    .await;
    for ((commit, _), result) in appends.iter().zip(&results) {
        match result {
            Ok(Appended::Stored { position, hash }) => {
                let at = store
                    .commit_at(*position)
                    .await
                    .expect("commit_at")
                    .expect("an acknowledged position holds a commit");
                assert_eq!(
                    at.commit, **commit,
                    "the commit at {position} is the one acknowledged there"
                );
                assert_eq!(
                    &at.hash, hash,
                    "the acknowledged hash is the stored commit's"
                );
                assert_eq!(*hash, crate::chain_hash(&commit.to_bytes()));
            }
            Ok(Appended::Duplicate { position }) => {
                assert_eq!(
                    commit.command_id, retried.command_id,
                    "only the retry is a duplicate"
                );
                assert_eq!(
                    *position, original,
                    "the duplicate names the original position"
                );
            }
            Err(StoreError::Conflict { aggregate, .. }) => {
                assert_eq!(*aggregate, stale_loan, "only the stale append conflicts");
            }
            Err(other) => panic!("unexpected failure: {other}"),
        }
    }
    let stored_count = results
        .iter()
        .filter(|r| matches!(r, Ok(Appended::Stored { .. })))
        .count();
    assert_eq!(
        stored_count,
        fresh.len(),
        "every fresh commit stored: {results:?}"
    );
    assert_eq!(
        store.load(retried_loan).await.expect("load").commits.len(),
        1
    );
    assert_eq!(store.load(stale_loan).await.expect("load").commits.len(), 2);
}

/// Reading the whole log returns every commit in log order, in pages.
pub async fn the_log_reads_in_order<S: EventStore>(store: &S) {
    let (a, b) = (new_loan(), new_loan());
    let pa = stored(store.append(&sample_commit(a, 0, 1), 0).await, "a1");
    let pb = stored(store.append(&sample_commit(b, 0, 1), 0).await, "b1");
    let pa2 = stored(store.append(&sample_commit(a, 1, 1), pa).await, "a2");
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_after(after, 2).await.expect("read_after");
        let Some(last) = page.last() else { break };
        after = last.position;
        seen.extend(page.into_iter().map(|r| r.position));
    }
    let ours: Vec<u64> = seen
        .iter()
        .copied()
        .filter(|p| [pa, pb, pa2].contains(p))
        .collect();
    assert_eq!(ours, vec![pa, pb, pa2], "log order");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "positions strictly increase: {seen:?}"
    );
}

/// Applied command ids are remembered: one at a time, many at once, and ids of any UUID
/// version.
pub async fn command_ids_are_remembered<S: EventStore>(store: &S) {
    let aggregate = new_loan();
    let record = |version| CommandRecord {
        aggregate,
        request_digest: "ab".repeat(32),
        version,
        position: Some(version + 6),
    };
    let id = Uuid::now_v7();
    assert_eq!(store.recall_command(id).await.expect("recall"), None);
    store
        .remember_command(id, &record(3))
        .await
        .expect("remember");
    assert_eq!(
        store.recall_command(id).await.expect("recall"),
        Some(record(3))
    );

    let not_v7 = Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef);
    store
        .remember_command(not_v7, &record(4))
        .await
        .expect("remember a v4 id");
    assert_eq!(
        store.recall_command(not_v7).await.expect("recall"),
        Some(record(4))
    );

    let many: Vec<(Uuid, CommandRecord)> = (0..300).map(|i| (Uuid::now_v7(), record(i))).collect();
    let writes = many.iter().map(|(id, r)| store.remember_command(*id, r));
    for result in futures::future::join_all(writes).await {
        result.expect("remember concurrently");
    }
    for (id, r) in &many {
        assert_eq!(
            store.recall_command(*id).await.expect("recall").as_ref(),
            Some(r),
            "{id}"
        );
    }
    assert_eq!(
        store.recall_command(Uuid::now_v7()).await.expect("recall"),
        None,
        "an unknown id"
    );
}

/// Runs every check on stores made by `fresh`.
pub async fn run_all<S: EventStore, F: std::future::Future<Output = S>>(fresh: impl Fn() -> F) {
    commits_load_back_in_order(&fresh().await).await;
    stale_expectations_conflict(&fresh().await).await;
    a_command_id_is_stored_once(&fresh().await).await;
    exactly_one_of_racing_appends_wins(&fresh().await).await;
    concurrent_appends_land_where_acknowledged(&fresh().await).await;
    the_log_reads_in_order(&fresh().await).await;
    command_ids_are_remembered(&fresh().await).await;
}
