//! A commit a projector cannot apply quarantines its aggregate visibly (stale rows with
//! the reason, a quarantine row, dead letters) while every other aggregate keeps
//! flowing; replaying a quarantined aggregate clears it once it applies.

use loan_domain::CommandKind;
use loan_projection::{Group, ReplayOutcome, lag, replay_aggregate};
use loan_store::AggregateRef;
use loan_testkit::postgres::TestDatabase;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::harness::{Lender, World, pool, project, script, snapshot};

async fn quarantine(db: &PgPool) -> Vec<(String, Uuid, Option<String>)> {
    sqlx::query_as("SELECT projection, aggregate_id, event_type FROM projection.quarantine ORDER BY projection, position")
        .fetch_all(db)
        .await
        .expect("quarantine")
}

#[tokio::test]
async fn a_poisoned_aggregate_is_quarantined_while_others_flow() {
    let world = World::new().await;
    let p = script(&world).await;
    let database = TestDatabase::create().await;
    let config = world.config(&database, "projector", 500);
    project(&config).await;
    let db = pool(&database).await;

    // A newer producer writes an event type this build does not know onto L2, and a
    // broken one writes bytes that are no commit at all onto a loan of its own.
    let (_, l2_version): (String, i64) =
        sqlx::query_as("SELECT status, version FROM read_model.loans WHERE loan_id = $1")
            .bind(p.l2)
            .fetch_one(&db)
            .await
            .expect("L2");
    let l2_version = u64::try_from(l2_version).expect("version");
    let unknown = |base: u64| {
        json!({
            "command_id": Uuid::now_v7(), "command": "evaluate_delinquency",
            "aggregate": { "aggregate_type": "loan", "id": p.l2 },
            "base_version": base, "version": base + 1, "recorded_at": "2026-04-01T01:30:00Z", "request_digest": "00",
            "previous_hash": loan_store::GENESIS_HASH,
            "events": [{
                "event_id": Uuid::now_v7(), "aggregate_type": "loan", "aggregate_id": p.l2, "version": base + 1,
                "event_type": "loan_restructured", "schema_version": 1, "business_date": "2026-04-01",
                "recorded_at": "2026-04-01T01:30:00Z", "command_id": Uuid::now_v7(), "correlation_id": Uuid::now_v7(),
                "causation_id": null, "actor": { "id": "svc:restructuring", "roles": ["system"] },
                "data": { "new_term_months": 6 }
            }]
        })
    };
    world
        .publish_raw(
            "loan",
            p.l2,
            serde_json::to_vec(&unknown(l2_version)).expect("json"),
        )
        .await;
    let stray = Uuid::now_v7();
    world
        .publish_raw("loan", stray, b"{ not a commit".to_vec())
        .await;
    // The rest of the portfolio moves on: L1 is paid off; L2 gets another commit.
    world.send("2026-04-10", CommandKind::RecordRepayment, &["finance"], json!({ "loan_id": p.l1, "payment_reference": "R4", "amount": "1008.25", "value_date": "2026-04-10" })).await;
    world
        .publish_raw(
            "loan",
            p.l2,
            serde_json::to_vec(&unknown(l2_version + 1)).expect("json"),
        )
        .await;
    project(&config).await;

    assert_eq!(
        quarantine(&db).await,
        [
            (
                "delinquency".to_owned(),
                p.l2,
                Some("loan_restructured".to_owned())
            ),
            ("delinquency".to_owned(), stray, None),
            (
                "portfolio".to_owned(),
                p.l2,
                Some("loan_restructured".to_owned())
            ),
            ("portfolio".to_owned(), stray, None),
        ]
    );
    let (stale, reason): (bool, Option<String>) =
        sqlx::query_as("SELECT stale, stale_reason FROM read_model.loans WHERE loan_id = $1")
            .bind(p.l2)
            .fetch_one(&db)
            .await
            .expect("L2");
    let reason = reason.expect("a stale reason");
    assert!(
        stale && reason.contains("loan_restructured") && reason.contains("unknown event type"),
        "{reason}"
    );
    let stale_installments: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM read_model.installments WHERE loan_id = $1 AND stale",
    )
    .bind(p.l2)
    .fetch_one(&db)
    .await
    .expect("installments");
    assert_eq!(stale_installments, 2);
    let dead: Vec<(String, Option<Uuid>, String)> = sqlx::query_as(
        "SELECT projection, aggregate_id, reason FROM projection.dead_letters WHERE projection = 'portfolio' ORDER BY position",
    )
    .fetch_all(&db)
    .await
    .expect("dead letters");
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert_eq!(
        (dead[0].1, dead[1].1, dead[2].1),
        (Some(p.l2), Some(stray), Some(p.l2))
    );
    assert!(dead[2].2.contains("quarantined since"), "{dead:?}");

    // Every other loan kept flowing.
    let (status, stale): (String, bool) =
        sqlx::query_as("SELECT status, stale FROM read_model.loans WHERE loan_id = $1")
            .bind(p.l1)
            .fetch_one(&db)
            .await
            .expect("L1");
    assert_eq!((status.as_str(), stale), ("paid_off", false));

    let health = lag(&db, &world.client, &world.stream).await.expect("lag");
    for projection in &health {
        assert_eq!(
            (
                projection.lag,
                projection.quarantined,
                projection.dead_letters
            ),
            (0, 2, 3),
            "{projection:?}"
        );
        assert!(!projection.healthy);
        assert!(
            projection
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("quarantined")),
            "{projection:?}"
        );
    }

    // A replay of L2 still cannot apply the unknown event: nothing changes.
    let l2 = AggregateRef {
        aggregate_type: loan_domain::AggregateType::Loan,
        id: p.l2,
    };
    let outcome = replay_aggregate(config.clone(), Group::Portfolio, l2)
        .await
        .expect("replay");
    assert!(
        matches!(&outcome, ReplayOutcome::StillPoisoned { reason } if reason.contains("loan_restructured")),
        "{outcome:?}"
    );

    // An aggregate quarantined by an earlier build (simulated here) is cleared by a
    // replay once it applies, and its rows come back exactly as projected.
    let before = snapshot(&db).await;
    sqlx::query("INSERT INTO projection.quarantine (projection, aggregate_type, aggregate_id, position, reason) VALUES ('portfolio', 'loan', $1, 1, 'an earlier build could not apply it')")
        .bind(p.l1)
        .execute(&db)
        .await
        .expect("quarantine L1");
    sqlx::query("UPDATE read_model.loans SET stale = true, stale_reason = 'earlier build' WHERE loan_id = $1")
        .bind(p.l1)
        .execute(&db)
        .await
        .expect("flag L1");
    sqlx::query("DELETE FROM read_model.loan_timeline WHERE loan_id = $1 AND version > 3")
        .bind(p.l1)
        .execute(&db)
        .await
        .expect("lose part of L1's timeline");
    let l1 = AggregateRef {
        aggregate_type: loan_domain::AggregateType::Loan,
        id: p.l1,
    };
    let outcome = replay_aggregate(config.clone(), Group::Portfolio, l1)
        .await
        .expect("replay");
    assert_eq!(
        outcome,
        ReplayOutcome::Applied {
            version: 18,
            was_quarantined: true
        }
    );
    assert_eq!(snapshot(&db).await, before, "the replay restored L1's rows");
    assert_eq!(quarantine(&db).await.len(), 4);

    db.close().await;
    database.drop_database().await;
}
