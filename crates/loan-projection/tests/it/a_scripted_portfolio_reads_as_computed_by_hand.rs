//! The scripted portfolio, projected, reads exactly as computed by hand.
//!
//! Figures (equal principal, interest = outstanding × annual rate ÷ 12, penalty 0.05% a
//! day on overdue principal after 3 days of grace):
//!
//! * L1: 3,000 at 0.0990 (policy, low grade) over 3 months from 2026-01-10:
//!   #1 2026-02-10 1,000 + 24.75; #2 2026-03-10 1,000 + 16.50; #3 2026-04-10 1,000 + 8.25.
//!   R1 1,024.75 on 02-10 settles #1. Delinquency evaluated on 03-16: #2 is 6 days past
//!   due, penalty 03-14..03-16 = 3 × 0.50 = 1.50, overdue. Then R2 1,016.50 value-dated
//!   03-10, recorded 03-20: #2 was paid on its due date, so the penalty is restated to 0,
//!   the loan is current again. Outstanding 1,000 + 8.25; next due 04-10: 1,008.25.
//! * L2: 2,000 at 0.12 (underwriter) over 2 months from 2026-01-15:
//!   #1 2026-02-15 1,000 + 20.00; #2 2026-03-15 1,000 + 10.00. R3 1,020 on 02-15 is
//!   reversed on 02-20. On 03-31: #1 is 44 days past due (02-15 → 03-31), penalty
//!   02-19..03-31 = 41 days × 0.50 = 20.50; #2 penalty 03-19..03-31 = 13 × 0.50 = 6.50.
//! * L3: withdrawn lead.
//! * K1: L1's collection case, opened 03-16 at 6 days past due with arrears #2 1,016.50 +
//!   penalty 1.50 = 1,018.00; resolved cured on 03-20 after R2.
//! * K2: L2's collection case, opened 03-31 at 44 days past due with arrears #1 1,020 +
//!   20.50 and #2 1,010 + 6.50 = 2,057.00; two contact attempts (the later recorded one,
//!   same day, counts as the last: sms, reached) and a promise of 1,040.50 by 04-03.
//! * C1: DTI 2,000 / 25,000 = 0.08, score 735 (the 760 was assessed earlier) → low risk;
//!   income 25,000 → medium tier. C2: score 650, DTI 0.4375 → medium; income 8,000, net
//!   worth 50,000 → low tier. C3: erased; no score → high risk; income 40,000 → high tier.

use loan_projection::lag;
use loan_testkit::postgres::TestDatabase;
use loan_testkit::synthetic::national_id;
use sqlx::PgPool;
use uuid::Uuid;

use crate::harness::{C1_ID, World, pool, project, script};

/// The given columns (or expressions) of one row, as text.
async fn fields(
    pool: &PgPool,
    table: &str,
    key: &str,
    id: Uuid,
    columns: &[&str],
) -> Vec<Option<String>> {
    let select = columns
        .iter()
        .map(|c| format!("({c})::text"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT ARRAY[{select}] FROM read_model.{table} WHERE {key} = $1");
    sqlx::query_scalar::<_, Vec<Option<String>>>(&sql)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{table} row {id}: {e}"))
}

/// Rows of a query, each as text columns.
async fn rows(pool: &PgPool, sql: &str, id: Uuid) -> Vec<Vec<Option<String>>> {
    sqlx::query_scalar::<_, Vec<Option<String>>>(sql)
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values
        .iter()
        .map(|v| {
            if *v == "NULL" {
                None
            } else {
                Some((*v).to_owned())
            }
        })
        .collect()
}

#[tokio::test]
async fn a_scripted_portfolio_reads_as_computed_by_hand() {
    let world = World::new().await;
    let p = script(&world).await;
    let database = TestDatabase::create().await;
    project(&world.config(&database, "projector", 500)).await;
    let db = pool(&database).await;

    // Customer 360.
    let c1_id = national_id(C1_ID);
    assert_eq!(
        fields(
            &db,
            "customers",
            "customer_id",
            p.c1,
            &[
                "name",
                "gender",
                "region",
                "channel",
                "risk_appetite",
                "phone_masked",
                "national_id_masked",
                "bank_card_masked",
                "monthly_income",
                "identity_verified_on",
                "identity_method",
                "credit_score",
                "credit_score_source",
                "credit_assessed_on",
                "risk_grade",
                "value_tier",
                "erased",
                "version",
                "stale",
            ]
        )
        .await,
        some(&[
            "Li Wei",
            "male",
            "guangdong",
            "app",
            "balanced",
            "139****5678",
            &format!("440***********{}", &c1_id[14..]),
            "622202*********0128",
            "25000.00",
            "2026-01-05",
            "face_match",
            "735",
            "pboc",
            "2026-01-05",
            "low",
            "medium",
            "false",
            "4",
            "false",
        ])
    );
    assert_eq!(
        fields(
            &db,
            "customers",
            "customer_id",
            p.c2,
            &[
                "risk_grade",
                "value_tier",
                "credit_score",
                "identity_method",
                "employer",
                "version"
            ]
        )
        .await,
        some(&["medium", "low", "650", "in_branch", "NULL", "3"])
    );
    assert_eq!(
        fields(
            &db,
            "customers",
            "customer_id",
            p.c3,
            &[
                "phone_masked",
                "national_id_masked",
                "bank_card_masked",
                "erased",
                "erased_on",
                "risk_grade",
                "value_tier",
                "credit_score",
                "name"
            ]
        )
        .await,
        some(&[
            "erased",
            "erased",
            "erased",
            "true",
            "2026-01-06",
            "high",
            "high",
            "NULL",
            "Zhao Lei"
        ])
    );
    assert_eq!(
        rows(&db, "SELECT ARRAY[score::text, source, assessed_on::text] FROM read_model.credit_scores WHERE customer_id = $1 ORDER BY position", p.c1).await,
        vec![some(&["735", "pboc", "2026-01-05"]), some(&["760", "baihang", "2026-01-04"])]
    );
    let no_clear_pii: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM read_model.customers WHERE phone_masked LIKE '%12345678%' OR bank_card_masked LIKE '%1234567890%'",
    )
    .fetch_one(&db)
    .await
    .expect("count");
    assert_eq!(no_clear_pii, 0, "no sensitive value in clear");

    // Loans.
    let loan_columns = [
        "customer_id",
        "status",
        "officer_id",
        "decision_outcome",
        "annual_rate = 0.099",
        "principal",
        "method",
        "disbursed_on",
        "outstanding_principal",
        "outstanding_interest",
        "outstanding_penalty",
        "total_repaid",
        "last_payment_on",
        "last_payment_amount",
        "next_due_date",
        "next_due_amount",
        "days_past_due",
        "aging_bucket",
        "position_date",
        "payments_count",
        "reversed_count",
        "version",
        "stale",
    ];
    assert_eq!(
        fields(&db, "loans", "loan_id", p.l1, &loan_columns).await,
        some(&[
            &p.c1.to_string(),
            "repaying",
            "officer-7",
            "approve",
            "true",
            "3000.00",
            "equal_principal",
            "2026-01-10",
            "1000.00",
            "8.25",
            "0.00",
            "2041.25",
            "2026-03-10",
            "1016.50",
            "2026-04-10",
            "1008.25",
            "0",
            "current",
            "2026-03-16",
            "2",
            "0",
            "16",
            "false",
        ])
    );
    assert_eq!(
        fields(&db, "loans", "loan_id", p.l2, &loan_columns).await,
        some(&[
            &p.c2.to_string(),
            "overdue",
            "NULL",
            "approve",
            "false",
            "2000.00",
            "equal_principal",
            "2026-01-15",
            "2000.00",
            "30.00",
            "27.00",
            "0.00",
            "NULL",
            "NULL",
            "NULL",
            "NULL",
            "44",
            "dpd_31_to_60",
            "2026-03-31",
            "0",
            "1",
            "12",
            "false",
        ])
    );
    assert_eq!(
        fields(
            &db,
            "loans",
            "loan_id",
            p.l3,
            &[
                "status",
                "withdrawn_on",
                "outstanding_principal",
                "days_past_due",
                "aging_bucket",
                "principal",
                "version"
            ]
        )
        .await,
        some(&[
            "withdrawn",
            "2026-01-06",
            "0.00",
            "NULL",
            "NULL",
            "NULL",
            "2"
        ])
    );

    // Collection cases: the queue and the record.
    let case_columns = [
        "loan_id",
        "status",
        "opened_on",
        "days_past_due_at_opening",
        "overdue_amount_at_opening",
        "contact_attempts",
        "last_contact_on",
        "last_contact_channel",
        "last_contact_outcome",
        "promises",
        "promised_amount",
        "promised_pay_by",
        "resolution",
        "resolved_on",
        "version",
        "stale",
    ];
    assert_eq!(
        fields(&db, "collection_cases", "case_id", p.k1, &case_columns).await,
        some(&[
            &p.l1.to_string(),
            "resolved",
            "2026-03-16",
            "6",
            "1018.00",
            "0",
            "NULL",
            "NULL",
            "NULL",
            "0",
            "NULL",
            "NULL",
            "cured",
            "2026-03-20",
            "2",
            "false",
        ])
    );
    assert_eq!(
        fields(&db, "collection_cases", "case_id", p.k2, &case_columns).await,
        some(&[
            &p.l2.to_string(),
            "open",
            "2026-03-31",
            "44",
            "2057.00",
            "2",
            "2026-03-31",
            "sms",
            "reached",
            "1",
            "1040.50",
            "2026-04-03",
            "NULL",
            "NULL",
            "4",
            "false",
        ])
    );

    // Timeline and decisions.
    let timeline: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM read_model.loan_timeline WHERE loan_id = $1 ORDER BY version",
    )
    .bind(p.l1)
    .fetch_all(&db)
    .await
    .expect("timeline");
    assert_eq!(
        timeline,
        [
            "lead_captured",
            "officer_assigned",
            "follow_up_logged",
            "submitted_for_review",
            "automated_decision_made",
            "application_approved",
            "contract_signed",
            "loan_disbursed",
            "repayment_recorded",
            "loan_status_changed",
            "penalty_accrued",
            "aging_bucket_changed",
            "loan_status_changed",
            "repayment_recorded",
            "aging_bucket_changed",
            "loan_status_changed",
        ]
    );
    assert_eq!(
        rows(&db, "SELECT ARRAY[decided_by, outcome, rule_set_version, decided_on::text, jsonb_array_length(reasons)::text] FROM read_model.decisions WHERE loan_id = $1", p.l1).await,
        vec![some(&["policy", "approve", "credit-policy/v1", "2026-01-05", "5"])]
    );
    assert_eq!(
        rows(&db, "SELECT ARRAY[decided_by, outcome, rule_set_version, reasons->0->>'detail'] FROM read_model.decisions WHERE loan_id = $1", p.l2).await,
        vec![some(&["underwriter", "approve", "NULL", "income verified by phone"])]
    );

    // Installments and allocations.
    let installments = "SELECT ARRAY[installment_no::text, due_date::text, principal_due::text, interest_due::text, principal_paid::text, interest_paid::text, penalty_accrued::text, penalty_paid::text, settled_on::text] FROM read_model.installments WHERE loan_id = $1 ORDER BY installment_no";
    assert_eq!(
        rows(&db, installments, p.l1).await,
        vec![
            some(&[
                "1",
                "2026-02-10",
                "1000.00",
                "24.75",
                "1000.00",
                "24.75",
                "0.00",
                "0.00",
                "2026-02-10"
            ]),
            some(&[
                "2",
                "2026-03-10",
                "1000.00",
                "16.50",
                "1000.00",
                "16.50",
                "0.00",
                "0.00",
                "2026-03-10"
            ]),
            some(&[
                "3",
                "2026-04-10",
                "1000.00",
                "8.25",
                "0.00",
                "0.00",
                "0.00",
                "0.00",
                "NULL"
            ]),
        ]
    );
    assert_eq!(
        rows(&db, installments, p.l2).await,
        vec![
            some(&[
                "1",
                "2026-02-15",
                "1000.00",
                "20.00",
                "0.00",
                "0.00",
                "20.50",
                "0.00",
                "NULL"
            ]),
            some(&[
                "2",
                "2026-03-15",
                "1000.00",
                "10.00",
                "0.00",
                "0.00",
                "6.50",
                "0.00",
                "NULL"
            ]),
        ]
    );
    let allocations = "SELECT ARRAY[payment_reference, value_date::text, installment_no::text, principal::text, interest::text, penalty::text] FROM read_model.allocations WHERE loan_id = $1 ORDER BY value_date, installment_no";
    assert_eq!(
        rows(&db, allocations, p.l1).await,
        vec![
            some(&["R1", "2026-02-10", "1", "1000.00", "24.75", "0.00"]),
            some(&["R2", "2026-03-10", "2", "1000.00", "16.50", "0.00"]),
        ]
    );
    assert!(
        rows(&db, allocations, p.l2).await.is_empty(),
        "the reversed payment allocates nothing"
    );
    assert!(
        rows(&db, installments, p.l3).await.is_empty(),
        "a withdrawn lead has no schedule"
    );

    // Lag and health: both groups at the head, nothing quarantined.
    let health = lag(&db, &world.client, &world.stream).await.expect("lag");
    let head = world.head().await;
    assert_eq!(health.len(), 2);
    for projection in &health {
        assert_eq!(
            (
                projection.checkpoint,
                projection.lag,
                projection.quarantined
            ),
            (head, 0, 0),
            "{projection:?}"
        );
        assert!(projection.healthy, "{projection:?}");
    }

    db.close().await;
    database.drop_database().await;
}
