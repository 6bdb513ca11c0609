//! A rebuild from sequence 0 into a fresh schema, switched in atomically, gives the same
//! rows as the incremental projection; views on the read model and grants survive it,
//! and the live projector carries on after the switch.

use loan_domain::CommandKind;
use loan_projection::{Group, GroupProjector, rebuild};
use loan_testkit::postgres::{TestDatabase, admin_url};
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

use crate::harness::{Lender, World, pool, script, snapshot};

#[tokio::test]
async fn rebuild_equals_incremental_and_switches_atomically() {
    let world = World::new().await;
    let p = script(&world).await;
    let database = TestDatabase::create().await;
    let config = world.config(&database, "projector", 500);
    let mut live = Vec::new();
    for group in Group::ALL {
        let mut projector = GroupProjector::open(config.clone(), group)
            .await
            .expect("open");
        projector.catch_up().await.expect("catch up");
        live.push(projector);
    }
    let db = pool(&database).await;
    let incremental = snapshot(&db).await;

    // An analyst view on the live tables and a role reading them.
    let role = format!("analyst_{}", Uuid::now_v7().simple());
    for statement in [
        "CREATE SCHEMA analyst".to_owned(),
        "CREATE VIEW analyst.loan_overview AS SELECT l.loan_id, l.status, c.region FROM read_model.loans l JOIN read_model.customers c USING (customer_id)".to_owned(),
        "CREATE VIEW analyst.overdue AS SELECT loan_id FROM analyst.loan_overview WHERE status = 'overdue'".to_owned(),
        format!("CREATE ROLE {role} NOLOGIN"),
        format!("GRANT USAGE ON SCHEMA read_model TO {role}"),
        format!("GRANT SELECT ON read_model.loans TO {role}"),
        format!("GRANT SELECT ON read_model.installments TO {role}"),
    ] {
        db.execute(statement.as_str()).await.expect(&statement);
    }

    for group in Group::ALL {
        let report = rebuild(config.clone(), group).await.expect("rebuild");
        assert_eq!(report.views_recreated, 2, "{report:?}");
        assert!(report.retired_dropped, "{report:?}");
        assert_eq!(snapshot(&db).await, incremental, "after rebuilding {group}");
    }
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'read_model%' ORDER BY 1",
    )
    .fetch_all(&db)
    .await
    .expect("schemas");
    assert_eq!(schemas, ["read_model"], "the old tables are gone");
    let overdue: Vec<Uuid> = sqlx::query_scalar("SELECT loan_id FROM analyst.overdue")
        .fetch_all(&db)
        .await
        .expect("the views read the new tables");
    assert_eq!(overdue, [p.l2]);
    for (object, privilege) in [
        ("read_model.loans", "SELECT"),
        ("read_model.installments", "SELECT"),
    ] {
        let granted: bool = sqlx::query_scalar("SELECT has_table_privilege($1, $2, $3)")
            .bind(&role)
            .bind(object)
            .bind(privilege)
            .fetch_one(&db)
            .await
            .expect("privilege");
        assert!(granted, "{role} keeps {privilege} on {object}");
    }

    // The live projectors notice the switch and go on from the rebuilt position.
    world.send("2026-04-10", CommandKind::RecordRepayment, &["finance"], json!({ "loan_id": p.l1, "payment_reference": "R4", "amount": "1008.25", "value_date": "2026-04-10" })).await;
    for projector in &mut live {
        projector
            .catch_up()
            .await
            .expect("catch up after the switch");
    }
    let (status, settled): (String, Option<chrono::NaiveDate>) = sqlx::query_as(
        "SELECT l.status, i.settled_on FROM read_model.loans l JOIN read_model.installments i USING (loan_id) WHERE loan_id = $1 AND installment_no = 3",
    )
    .bind(p.l1)
    .fetch_one(&db)
    .await
    .expect("L1");
    assert_eq!(
        (status.as_str(), settled),
        ("paid_off", Some(crate::harness::date("2026-04-10")))
    );

    drop(live);
    db.close().await;
    database.drop_database().await;
    let mut admin = PgConnection::connect(&admin_url()).await.expect("admin");
    admin
        .execute(format!("DROP ROLE IF EXISTS {role}").as_str())
        .await
        .expect("drop role");
}
