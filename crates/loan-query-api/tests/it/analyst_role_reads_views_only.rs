//! The analyst group role reads the `analyst` views (and the as-of delinquency function)
//! and nothing in `read_model` or `projection`, connected as a real LOGIN member.

use loan_query_api::analyst_access;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

use crate::support::{TestDb, script_portfolio, server_url};

fn is_permission_denied(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("42501"))
}

#[tokio::test]
async fn analyst_role_reads_views_and_not_the_read_model() {
    let db = TestDb::create().await;
    let p = script_portfolio(&db.pool).await;
    // Roles are cluster-wide: this test's own names, dropped at the end.
    let suffix = Uuid::now_v7().simple().to_string();
    let group = format!("loan_analyst_{}", &suffix[..12]);
    let login = format!("analyst_login_{}", &suffix[..12]);
    analyst_access::grant(&db.pool, &group).await.unwrap();
    // Granting again (e.g. after a rebuild) is harmless.
    analyst_access::grant(&db.pool, &group).await.unwrap();
    db.pool
        .execute(format!("CREATE ROLE \"{login}\" LOGIN IN ROLE \"{group}\"").as_str())
        .await
        .unwrap();

    let outcome = async {
        let mut analyst = PgConnection::connect_with(&db.options_as(&login))
            .await
            .unwrap();
        let customers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM analyst.customers")
            .fetch_one(&mut analyst)
            .await
            .unwrap();
        assert_eq!(customers, 3);
        let phone: String =
            sqlx::query_scalar("SELECT phone_masked FROM analyst.customers WHERE customer_id = $1")
                .bind(p.bo)
                .fetch_one(&mut analyst)
                .await
                .unwrap();
        assert_eq!(phone, "139****0002");
        // As-of delinquency in SQL: L2 is 39 days past due at 2025-03-31 (by hand, see
        // delinquency_is_computed_as_of_any_date).
        let (days, overdue): (i32, Decimal) = sqlx::query_as(
            "SELECT days_past_due, overdue_amount FROM analyst.loan_delinquency('2025-03-31')
              WHERE loan_id = $1",
        )
        .bind(p.l2)
        .fetch_one(&mut analyst)
        .await
        .unwrap();
        assert_eq!((days, overdue), (39, dec!(2060.00)));
        for view in [
            "credit_scores",
            "loans",
            "installments",
            "allocations",
            "loan_timeline",
            "decisions",
            "delinquency_snapshots",
            "collection_cases",
        ] {
            analyst
                .execute(format!("SELECT * FROM analyst.{view} LIMIT 1").as_str())
                .await
                .unwrap_or_else(|e| panic!("analyst.{view}: {e}"));
        }
        // Nothing underneath, and no writes.
        for denied in [
            "SELECT * FROM read_model.customers",
            "SELECT * FROM read_model.loans",
            "SELECT * FROM projection.checkpoints",
            "UPDATE analyst.customers SET name = 'x'",
            "DELETE FROM analyst.loans",
            "CREATE TABLE analyst.mine (x int)",
        ] {
            let error = analyst.execute(denied).await.expect_err(denied);
            assert!(is_permission_denied(&error), "{denied}: {error}");
        }
        analyst.close().await.ok();
    };
    outcome.await;

    // Clean up the cluster-wide roles: the database goes first (it holds their grants).
    let name = db.name.clone();
    db.pool.close().await;
    let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
        .await
        .unwrap();
    admin
        .execute(format!("DROP DATABASE \"{name}\" WITH (FORCE)").as_str())
        .await
        .unwrap();
    admin
        .execute(format!("DROP ROLE \"{login}\"").as_str())
        .await
        .unwrap();
    admin
        .execute(format!("DROP ROLE \"{group}\"").as_str())
        .await
        .unwrap();
}
