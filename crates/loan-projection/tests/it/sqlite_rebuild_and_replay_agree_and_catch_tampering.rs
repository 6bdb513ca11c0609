//! On SQLite, a replay of the whole log agrees row by row with the incrementally built
//! read models and names a row someone changed by hand; a rebuild from position 0 gives
//! the incremental rows back, keeps the indexes and other components' views working,
//! and the projector carries on after the switch.

use loan_domain::CommandKind;
use loan_projection::Group;
use serde_json::json;
use sqlx::{Executor, SqlitePool};

use crate::harness::{Lender, LocalWorld, SqliteFile, script, sqlite_snapshot};

async fn indexes(db: &SqlitePool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(db)
    .await
    .expect("indexes")
}

async fn scratch_tables(db: &SqlitePool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND (name LIKE 'rebuild%' OR name LIKE 'replay%')",
    )
    .fetch_all(db)
    .await
    .expect("tables")
}

#[tokio::test]
async fn sqlite_rebuild_and_replay_agree_with_incremental_runs_and_catch_tampering() {
    let world = LocalWorld::new();
    let p = script(&world).await;
    let file = SqliteFile::new("rebuild");
    // Incremental runs: small batches, the log growing between them.
    let mut projector = world.projector(file.path(), 4).await;
    projector.catch_up().await.expect("catch up");
    world.send("2026-04-10", CommandKind::RecordRepayment, &["finance"], json!({ "loan_id": p.l1, "payment_reference": "R4", "amount": "1008.25", "value_date": "2026-04-10" })).await;
    projector.catch_up().await.expect("catch up");
    let db = projector.pool().clone();
    let incremental = sqlite_snapshot(&db).await;
    let head = world.head();

    for group in Group::ALL {
        let comparison = projector
            .replay_and_compare(group, 3)
            .await
            .expect("compare");
        assert!(comparison.agrees(), "{comparison:#?}");
        assert_eq!(comparison.sequence, head);
        assert_eq!(comparison.tables.len(), group.tables().len());
        for table in &comparison.tables {
            assert!(table.live_rows > 0, "{table:?}");
            assert_eq!(table.live_rows, table.replayed_rows, "{table:?}");
        }
    }
    assert!(
        scratch_tables(&db).await.is_empty(),
        "the replay cleaned up"
    );

    // Someone changes a figure by hand: the replay names the row, on both sides.
    let l2 = p.l2.to_string();
    sqlx::query("UPDATE loans SET outstanding_principal = '1.00' WHERE loan_id = ?")
        .bind(&l2)
        .execute(&db)
        .await
        .expect("tamper");
    let comparison = projector
        .replay_and_compare(Group::Portfolio, 3)
        .await
        .expect("compare");
    assert!(!comparison.agrees());
    let loans = comparison
        .tables
        .iter()
        .find(|t| t.table == "loans")
        .expect("loans compared");
    assert_eq!((loans.only_live, loans.only_replayed), (1, 1), "{loans:?}");
    assert!(
        loans.examples_only_live[0].contains(&l2)
            && loans.examples_only_live[0].contains("\"outstanding_principal\":\"1.00\""),
        "{loans:?}"
    );
    assert!(
        loans.examples_only_replayed[0].contains(&l2)
            && loans.examples_only_replayed[0].contains("\"outstanding_principal\":\"2000.00\""),
        "{loans:?}"
    );
    assert!(
        comparison
            .tables
            .iter()
            .filter(|t| t.table != "loans")
            .all(|t| t.only_live == 0 && t.only_replayed == 0),
        "{comparison:#?}"
    );

    // A view another component defined on the tables, and the indexes of the DDL.
    db.execute("CREATE VIEW loan_overview AS SELECT l.loan_id, l.status, c.region FROM loans l JOIN customers c USING (customer_id)")
        .await
        .expect("a view");
    let indexes_before = indexes(&db).await;
    assert!(indexes_before.len() >= 4, "{indexes_before:?}");

    // The rebuild restores the tampered row and equals the incremental run.
    for group in Group::ALL {
        let report = projector.rebuild(group).await.expect("rebuild");
        assert_eq!((report.group, report.last_sequence), (group, head));
    }
    assert_eq!(sqlite_snapshot(&db).await, incremental);
    assert_eq!(indexes(&db).await, indexes_before);
    assert!(
        scratch_tables(&db).await.is_empty(),
        "the rebuild cleaned up"
    );
    let overdue: Vec<String> =
        sqlx::query_scalar("SELECT loan_id FROM loan_overview WHERE status = 'overdue'")
            .fetch_all(&db)
            .await
            .expect("the view reads the rebuilt tables");
    assert_eq!(overdue, [l2.as_str()]);
    let generations: Vec<i64> =
        sqlx::query_scalar("SELECT generation FROM checkpoints ORDER BY projection")
            .fetch_all(&db)
            .await
            .expect("generations");
    assert_eq!(generations, [1, 1]);
    for group in Group::ALL {
        let comparison = projector
            .replay_and_compare(group, 3)
            .await
            .expect("compare");
        assert!(comparison.agrees(), "{comparison:#?}");
    }

    // The projector carries on from the rebuilt position.
    world.send("2026-04-12", CommandKind::RecordRepayment, &["finance"], json!({ "loan_id": p.l2, "payment_reference": "R5", "amount": "500.00", "value_date": "2026-04-12" })).await;
    assert_eq!(projector.catch_up().await.expect("catch up"), world.head());
    let (payments, allocated): (i64, i64) = sqlx::query_as(
        "SELECT l.payments_count, (SELECT count(*) FROM allocations a WHERE a.loan_id = l.loan_id AND a.payment_reference = 'R5') FROM loans l WHERE loan_id = ?",
    )
    .bind(&l2)
    .fetch_one(&db)
    .await
    .expect("L2");
    assert!(payments == 1 && allocated >= 1, "{payments} {allocated}");
}
