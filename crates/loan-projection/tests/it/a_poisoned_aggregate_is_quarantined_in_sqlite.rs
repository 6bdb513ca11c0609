//! On SQLite too, a commit the embedded projector cannot apply quarantines its aggregate
//! visibly (stale rows with the reason, a quarantine row, dead letters, the checkpoint's
//! last error) while every other aggregate keeps flowing, and survives a restart.

use loan_domain::{AggregateType, CommandKind};
use loan_store::{AggregateRef, Commit, EventStore};
use serde_json::{Value, json};
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::harness::{Lender, LocalWorld, SqliteFile, script};

/// A commit of an event type this build does not know (a newer producer), on `loan`.
fn restructuring(loan: Uuid, base: u64) -> Commit {
    let commit = json!({
        "command_id": Uuid::now_v7(), "command": "evaluate_delinquency",
        "aggregate": { "aggregate_type": "loan", "id": loan },
        "base_version": base, "version": base + 1, "recorded_at": "2026-04-01T01:30:00Z", "request_digest": "00",
        "previous_hash": loan_store::GENESIS_HASH,
        "events": [{
            "event_id": Uuid::now_v7(), "aggregate_type": "loan", "aggregate_id": loan, "version": base + 1,
            "event_type": "loan_restructured", "schema_version": 1, "business_date": "2026-04-01",
            "recorded_at": "2026-04-01T01:30:00Z", "command_id": Uuid::now_v7(), "correlation_id": Uuid::now_v7(),
            "causation_id": null, "actor": { "id": "svc:restructuring", "roles": ["system"] },
            "data": { "new_term_months": 6 }
        }]
    });
    Commit::from_bytes(&serde_json::to_vec(&commit).expect("json")).expect("a commit")
}

async fn append_raw(world: &LocalWorld, commit: &Commit) {
    let last = world
        .store
        .load(commit.aggregate)
        .await
        .expect("load")
        .last_position();
    world.store.append(commit, last).await.expect("append");
}

async fn quarantine(db: &SqlitePool) -> Vec<(String, String, Option<String>, i64)> {
    sqlx::query_as(
        "SELECT projection, aggregate_id, event_type, position FROM quarantine ORDER BY projection, position",
    )
    .fetch_all(db)
    .await
    .expect("quarantine")
}

#[tokio::test]
async fn a_poisoned_aggregate_is_quarantined_in_sqlite_while_others_flow() {
    let world = LocalWorld::new();
    let p = script(&world).await;
    let file = SqliteFile::new("poisoned");
    let mut projector = world.projector(file.path(), 5).await;
    projector.catch_up().await.expect("catch up");
    let db = projector.pool().clone();

    let l2 = AggregateRef {
        aggregate_type: AggregateType::Loan,
        id: p.l2,
    };
    let l2_version = world.store.load(l2).await.expect("L2").version();
    append_raw(&world, &restructuring(p.l2, l2_version)).await;
    let poisoned_at = world.head();
    // The rest of the portfolio moves on: L1 is paid off; L2 gets another commit.
    world.send("2026-04-10", CommandKind::RecordRepayment, &["finance"], json!({ "loan_id": p.l1, "payment_reference": "R4", "amount": "1008.25", "value_date": "2026-04-10" })).await;
    append_raw(&world, &restructuring(p.l2, l2_version + 1)).await;
    let head = world.head();
    assert_eq!(projector.catch_up().await.expect("catch up"), head);

    let l2_text = p.l2.to_string();
    let position = i64::try_from(poisoned_at).expect("position");
    assert_eq!(
        quarantine(&db).await,
        [
            (
                "delinquency".to_owned(),
                l2_text.clone(),
                Some("loan_restructured".to_owned()),
                position
            ),
            (
                "portfolio".to_owned(),
                l2_text.clone(),
                Some("loan_restructured".to_owned()),
                position
            ),
        ]
    );
    let (stale, reason): (i64, Option<String>) =
        sqlx::query_as("SELECT stale, stale_reason FROM loans WHERE loan_id = ?")
            .bind(&l2_text)
            .fetch_one(&db)
            .await
            .expect("L2");
    let reason = reason.expect("a stale reason");
    assert!(
        stale == 1 && reason.contains("loan_restructured") && reason.contains("unknown event type"),
        "{reason}"
    );
    let stale_installments: i64 =
        sqlx::query_scalar("SELECT count(*) FROM installments WHERE loan_id = ? AND stale = 1")
            .bind(&l2_text)
            .fetch_one(&db)
            .await
            .expect("installments");
    assert_eq!(stale_installments, 2);

    let dead: Vec<(i64, String, Option<String>, String, String)> = sqlx::query_as(
        "SELECT position, subject, aggregate_id, reason, payload FROM dead_letters WHERE projection = 'portfolio' ORDER BY position",
    )
    .fetch_all(&db)
    .await
    .expect("dead letters");
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(
        (dead[0].0, dead[1].0),
        (position, i64::try_from(head).expect("head"))
    );
    assert_eq!(dead[0].1, format!("loan/{l2_text}"));
    assert_eq!(dead[0].2.as_deref(), Some(l2_text.as_str()));
    assert!(dead[1].3.contains("quarantined since"), "{dead:?}");
    let payload: Value = serde_json::from_str(&dead[0].4).expect("the commit as JSON");
    assert_eq!(payload["events"][0]["event_type"], "loan_restructured");

    // Every other loan kept flowing.
    let (status, stale): (String, i64) =
        sqlx::query_as("SELECT status, stale FROM loans WHERE loan_id = ?")
            .bind(p.l1.to_string())
            .fetch_one(&db)
            .await
            .expect("L1");
    assert_eq!((status.as_str(), stale), ("paid_off", 0));
    let errors: Vec<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT projection, last_sequence, last_error FROM checkpoints ORDER BY projection",
    )
    .fetch_all(&db)
    .await
    .expect("checkpoints");
    for (projection, last, error) in &errors {
        assert_eq!(
            u64::try_from(*last).expect("position"),
            head,
            "{projection}"
        );
        assert!(
            error.as_deref().is_some_and(|e| e.contains("quarantined")),
            "{projection}: {error:?}"
        );
    }

    // A restarted projector knows the quarantine: a later commit of L2 is dead-lettered,
    // not applied to the last good state.
    drop(projector);
    append_raw(&world, &restructuring(p.l2, l2_version + 2)).await;
    let mut restarted = world.projector(file.path(), 5).await;
    assert_eq!(restarted.catch_up().await.expect("catch up"), world.head());
    let dead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dead_letters WHERE projection = 'portfolio' AND reason LIKE '%quarantined since%'",
    )
    .fetch_one(restarted.pool())
    .await
    .expect("dead letters");
    assert_eq!(dead, 2);
    assert_eq!(quarantine(restarted.pool()).await.len(), 2);
}
