//! A projector killed at arbitrary points (mid-batch, between commit and acknowledgement)
//! and restarted, or fed redelivered messages, ends with exactly the rows of an
//! uninterrupted run; the auditors' replay of the whole log agrees with what the
//! restarted projectors built, and names a row someone changed by hand.

use std::time::Duration;

use loan_projection::{Group, GroupProjector};
use loan_testkit::postgres::TestDatabase;

use crate::harness::{World, pool, project, script, snapshot};

async fn checkpoint(db: &sqlx::PgPool, group: Group) -> i64 {
    sqlx::query_scalar("SELECT last_sequence FROM projection.checkpoints WHERE projection = $1")
        .bind(group.name())
        .fetch_optional(db)
        .await
        .expect("checkpoint")
        .unwrap_or(0)
}

#[tokio::test]
async fn kill_and_resume_and_redelivery_equal_an_uninterrupted_run() {
    let world = World::new().await;
    script(&world).await;
    let head = i64::try_from(world.head().await).expect("head");

    let reference = TestDatabase::create().await;
    project(&world.config(&reference, "reference", 500)).await;
    let reference_pool = pool(&reference).await;
    let expected = snapshot(&reference_pool).await;
    assert!(
        expected.values().map(Vec::len).sum::<usize>() > 40,
        "the portfolio has rows"
    );

    // Killed again and again: small batches, the task aborted as soon as a batch
    // committed (and after varying delays), then a fresh projector started.
    let killed = TestDatabase::create().await;
    let config = world.config(&killed, "killed", 3);
    let killed_pool = pool(&killed).await;
    loan_projection::migrate(&killed_pool)
        .await
        .expect("migrate");
    let mut kills = 0;
    for group in Group::ALL {
        let mut round: u64 = 0;
        while checkpoint(&killed_pool, group).await < head {
            round += 1;
            let before = checkpoint(&killed_pool, group).await;
            let config = config.clone();
            let task = tokio::spawn(async move {
                let mut projector = GroupProjector::open(config, group).await.expect("open");
                projector.run_until(std::future::pending()).await
            });
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while checkpoint(&killed_pool, group).await == before {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{group} makes progress"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_millis(round % 4)).await;
            task.abort();
            let _ = task.await;
            kills += 1;
        }
    }
    assert!(kills >= 10, "killed {kills} times");
    assert_eq!(snapshot(&killed_pool).await, expected, "killed and resumed");

    // The auditors' replay (loan audit replay) agrees with the restarted projectors...
    for group in Group::ALL {
        let comparison = loan_projection::replay_and_compare(config.clone(), group, 3)
            .await
            .expect("replay and compare");
        assert!(comparison.agrees(), "{comparison:?}");
        assert_eq!(comparison.sequence, u64::try_from(head).expect("head"));
        assert!(
            comparison
                .tables
                .iter()
                .all(|t| t.live_rows == t.replayed_rows && t.live_rows > 0)
        );
    }
    // ... and names a live row changed behind the projector's back.
    let changed: uuid::Uuid = sqlx::query_scalar(
        "UPDATE read_model.loans SET total_repaid = total_repaid + 0.01
         WHERE loan_id = (SELECT loan_id FROM read_model.loans ORDER BY loan_id LIMIT 1) RETURNING loan_id",
    )
    .fetch_one(&killed_pool)
    .await
    .expect("change a row");
    let comparison = loan_projection::replay_and_compare(config.clone(), Group::Portfolio, 3)
        .await
        .expect("replay and compare");
    assert!(!comparison.agrees());
    let loans = comparison
        .tables
        .iter()
        .find(|t| t.table == "loans")
        .expect("loans compared");
    assert_eq!((loans.only_live, loans.only_replayed), (1, 1), "{loans:?}");
    assert!(loans.examples_only_live[0].contains(&changed.to_string()));
    assert!(
        comparison
            .tables
            .iter()
            .filter(|t| t.table != "loans")
            .all(|t| t.only_live + t.only_replayed == 0),
        "only the changed table differs: {comparison:?}"
    );
    let scratch: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'read_model_replay_%'",
    )
    .fetch_one(&killed_pool)
    .await
    .expect("schemas");
    assert_eq!(scratch, 0, "the scratch tables of the replays are dropped");

    // Redelivered messages (overlapping batches) change nothing.
    let redelivered = TestDatabase::create().await;
    let config = world.config(&redelivered, "redelivered", 500);
    let messages = world.messages().await;
    for group in Group::ALL {
        let mut projector = GroupProjector::open(config.clone(), group)
            .await
            .expect("open");
        let mut start = 0;
        while start < messages.len() {
            let end = (start + 7).min(messages.len());
            // Each batch repeats the previous five messages before the new ones.
            let from = start.saturating_sub(5);
            let outcome = projector
                .apply(messages[from..end].to_vec())
                .await
                .expect("apply");
            assert_eq!(
                outcome.skipped,
                start - from,
                "the repeated messages are skipped"
            );
            start = end;
        }
        // The whole stream again: nothing changes.
        let outcome = projector
            .apply(messages.clone())
            .await
            .expect("apply again");
        assert_eq!((outcome.skipped, outcome.applied), (messages.len(), 0));
    }
    let redelivered_pool = pool(&redelivered).await;
    assert_eq!(snapshot(&redelivered_pool).await, expected, "redelivered");

    for (db, database) in [
        (reference_pool, reference),
        (killed_pool, killed),
        (redelivered_pool, redelivered),
    ] {
        db.close().await;
        database.drop_database().await;
    }
}
