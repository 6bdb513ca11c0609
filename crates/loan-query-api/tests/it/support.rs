//! Test support: a fresh PostgreSQL database per test (named with a UUID, migrated by the
//! projector's own migrations, dropped at the end even when the test fails) and the
//! scripted portfolio whose figures the tests compute by hand.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

/// The PostgreSQL server of the tests, without a database (`LOAN_TEST_POSTGRES_URL`, as
/// `scripts/test` sets it; default the local one).
pub(crate) fn server_url() -> String {
    loan_testkit::postgres::server_url()
}

pub(crate) fn date(text: &str) -> NaiveDate {
    text.parse().expect("test date")
}

/// A throwaway database holding the read-model schema.
pub(crate) struct TestDb {
    pub(crate) name: String,
    pub(crate) pool: PgPool,
}

impl TestDb {
    pub(crate) async fn create() -> TestDb {
        let name = format!("loan_query_{}", Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
            .await
            .expect("connect to the test PostgreSQL server");
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("create test database");
        admin.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&format!("{}/{name}", server_url()))
            .await
            .expect("connect to the test database");
        loan_projection::migrate(&pool)
            .await
            .expect("projector migrations");
        TestDb { name, pool }
    }

    /// Connection options for `user` on this database (trust authentication).
    pub(crate) fn options_as(&self, user: &str) -> PgConnectOptions {
        let url = format!("{}/{}", server_url(), self.name);
        url.parse::<PgConnectOptions>()
            .expect("database url")
            .username(user)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's (blocked) runtime, whose sockets cannot progress
        // meanwhile: clean up on a thread and runtime of its own, and let FORCE end the
        // pool's sessions instead of closing the pool.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("clean-up runtime");
            runtime.block_on(async move {
                if let Ok(mut admin) =
                    PgConnection::connect(&format!("{}/postgres", server_url())).await
                {
                    let _ = admin
                        .execute(
                            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str(),
                        )
                        .await;
                }
            });
        })
        .join()
        .ok();
    }
}

/// Ids of the scripted portfolio.
pub(crate) struct Portfolio {
    pub(crate) ana: Uuid,
    pub(crate) bo: Uuid,
    pub(crate) cy: Uuid,
    pub(crate) l1: Uuid,
    pub(crate) l2: Uuid,
    pub(crate) l3: Uuid,
    pub(crate) l4: Uuid,
    pub(crate) l5: Uuid,
    pub(crate) l6: Uuid,
}

/// Report dates of the hand computations.
pub(crate) fn d1() -> NaiveDate {
    date("2025-03-31")
}
pub(crate) fn d2() -> NaiveDate {
    date("2025-05-31")
}

struct Customer<'a> {
    id: Uuid,
    name: &'a str,
    region: &'a str,
    channel: &'a str,
    appetite: &'a str,
    grade: &'a str,
    tier: &'a str,
    phone: &'a str,
    erased: bool,
}

async fn insert_customer(pool: &PgPool, c: Customer<'_>) {
    sqlx::query(
        "INSERT INTO read_model.customers (customer_id, name, gender, birth_date, region, channel,
             employer, risk_appetite, phone_masked, national_id_masked, bank_card_masked,
             monthly_income, monthly_debt_payments, total_assets, total_liabilities,
             registered_on, identity_verified_on, identity_method, credit_score,
             credit_score_source, credit_assessed_on, risk_grade, value_tier,
             segment_rules_version, erased, erased_on, version, last_position)
         VALUES ($1, $2, 'female', '1990-04-01', $3, $4, NULL, $5, $6,
                 CASE WHEN $9 THEN 'erased' ELSE '110***********1234' END,
                 CASE WHEN $9 THEN 'erased' ELSE '6222 **** **** 0001' END,
                 12000.00, 1500.00, 50000.00, 10000.00, '2024-11-20', '2024-11-21', 'face_match',
                 720, 'pboc', '2025-01-01', $7, $8, 'segments/v1', $9,
                 CASE WHEN $9 THEN DATE '2025-04-01' END, 3, 10)",
    )
    .bind(c.id)
    .bind(c.name)
    .bind(c.region)
    .bind(c.channel)
    .bind(c.appetite)
    .bind(c.phone)
    .bind(c.grade)
    .bind(c.tier)
    .bind(c.erased)
    .execute(pool)
    .await
    .expect("insert customer");
}

/// A loan's pipeline dates; `disbursed` loans get 3 monthly installments.
struct Loan<'a> {
    id: Uuid,
    customer: Uuid,
    channel: &'a str,
    purpose: &'a str,
    officer: Option<&'a str>,
    status: &'a str,
    captured_on: &'a str,
    submitted_on: Option<&'a str>,
    signed_on: Option<&'a str>,
    disbursed_on: Option<&'a str>,
    written_off_on: Option<&'a str>,
    principal: Option<Decimal>,
    total_repaid: Decimal,
}

async fn insert_loan(pool: &PgPool, l: Loan<'_>) {
    let opt = |text: Option<&str>| text.map(date);
    sqlx::query(
        "INSERT INTO read_model.loans (loan_id, customer_id, channel, purpose, officer_id, status,
             currency, requested_amount, term_months, captured_on, submitted_on, signed_on,
             principal, disbursed_on, written_off_on, outstanding_principal,
             outstanding_interest, outstanding_penalty, total_repaid, version, last_position)
         VALUES ($1, $2, $3, $4, $5, $6, 'CNY', COALESCE($12, 1000.00), 3, $7, $8, $9, $12,
                 $10, $11, COALESCE($12, 0) - $13, 0, 0, $13, 5, 20)",
    )
    .bind(l.id)
    .bind(l.customer)
    .bind(l.channel)
    .bind(l.purpose)
    .bind(l.officer)
    .bind(l.status)
    .bind(date(l.captured_on))
    .bind(opt(l.submitted_on))
    .bind(opt(l.signed_on))
    .bind(opt(l.disbursed_on))
    .bind(opt(l.written_off_on))
    .bind(l.principal)
    .bind(l.total_repaid)
    .execute(pool)
    .await
    .expect("insert loan");
}

async fn insert_installment(
    pool: &PgPool,
    loan: Uuid,
    no: i32,
    due: &str,
    principal: Decimal,
    interest: Decimal,
    settled_on: Option<&str>,
) {
    let settled = settled_on.is_some();
    sqlx::query(
        "INSERT INTO read_model.installments (loan_id, installment_no, due_date, principal_due,
             interest_due, principal_paid, interest_paid, penalty_accrued, penalty_paid, settled_on)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $7 THEN $4 ELSE 0 END,
                 CASE WHEN $7 THEN $5 ELSE 0 END, 0, 0, $6)",
    )
    .bind(loan)
    .bind(no)
    .bind(date(due))
    .bind(principal)
    .bind(interest)
    .bind(settled_on.map(date))
    .bind(settled)
    .execute(pool)
    .await
    .expect("insert installment");
}

async fn insert_allocation(
    pool: &PgPool,
    loan: Uuid,
    reference: &str,
    value_date: &str,
    no: i32,
    principal: Decimal,
    interest: Decimal,
) {
    sqlx::query(
        "INSERT INTO read_model.allocations (loan_id, payment_reference, value_date,
             installment_no, principal, interest, penalty)
         VALUES ($1, $2, $3, $4, $5, $6, 0)",
    )
    .bind(loan)
    .bind(reference)
    .bind(date(value_date))
    .bind(no)
    .bind(principal)
    .bind(interest)
    .execute(pool)
    .await
    .expect("insert allocation");
}

/// The scripted portfolio (docs of each figure in the tests that use it):
///
/// | loan | customer | purpose | channel | officer | disbursed | principal | installments (principal + interest, due, settled) |
/// |---|---|---|---|---|---|---|---|
/// | L1 | Ana | consumer | app | off-1 | 2025-01-10 | 1200 | 400+10 02-10 (02-10), 400+10 03-10 (03-20), 400+10 04-10 (—) |
/// | L2 | Bo | business | branch | off-2 | 2025-01-20 | 3000 | 1000+30 02-20, 03-20, 04-20, none paid |
/// | L3 | Ana | business | app | — | 2025-02-15 | 600 | 200+5 03-15 (04-01), 04-15 (05-20), 05-15 (05-20) |
/// | L4 | Cy (erased) | consumer | app | off-1 | 2025-01-05 | 900 | 300+8 02-05, 03-05, 04-05, none paid; written off 05-01 |
/// | L5 | Bo | consumer | branch | off-2 | — | — | lead 03-01, submitted 03-02 |
/// | L6 | Cy | consumer | app | — | — | — | lead 02-01, submitted 02-02, rejected |
pub(crate) async fn script_portfolio(pool: &PgPool) -> Portfolio {
    let p = Portfolio {
        ana: Uuid::now_v7(),
        bo: Uuid::now_v7(),
        cy: Uuid::now_v7(),
        l1: Uuid::now_v7(),
        l2: Uuid::now_v7(),
        l3: Uuid::now_v7(),
        l4: Uuid::now_v7(),
        l5: Uuid::now_v7(),
        l6: Uuid::now_v7(),
    };
    insert_customer(
        pool,
        Customer {
            id: p.ana,
            name: "Ana",
            region: "north",
            channel: "app",
            appetite: "balanced",
            grade: "low",
            tier: "high",
            phone: "138****0001",
            erased: false,
        },
    )
    .await;
    insert_customer(
        pool,
        Customer {
            id: p.bo,
            name: "Bo",
            region: "south",
            channel: "branch",
            appetite: "conservative",
            grade: "medium",
            tier: "medium",
            phone: "139****0002",
            erased: false,
        },
    )
    .await;
    insert_customer(
        pool,
        Customer {
            id: p.cy,
            name: "erased",
            region: "north",
            channel: "app",
            appetite: "aggressive",
            grade: "high",
            tier: "low",
            phone: "erased",
            erased: true,
        },
    )
    .await;
    for (score, on) in [(650, "2024-12-01"), (720, "2025-01-01")] {
        sqlx::query(
            "INSERT INTO read_model.credit_scores (customer_id, assessed_on, score, source, position)
             VALUES ($1, $2, $3, 'pboc', $4)",
        )
        .bind(p.ana)
        .bind(date(on))
        .bind(score)
        .bind(i64::from(score))
        .execute(pool)
        .await
        .expect("insert credit score");
    }

    let disbursed = |id,
                     customer,
                     channel,
                     purpose,
                     officer,
                     status,
                     captured,
                     signed,
                     on,
                     principal,
                     repaid| Loan {
        id,
        customer,
        channel,
        purpose,
        officer,
        status,
        captured_on: captured,
        submitted_on: Some(captured),
        signed_on: Some(signed),
        disbursed_on: Some(on),
        written_off_on: None,
        principal: Some(principal),
        total_repaid: repaid,
    };
    insert_loan(
        pool,
        disbursed(
            p.l1,
            p.ana,
            "app",
            "consumer",
            Some("off-1"),
            "overdue",
            "2025-01-02",
            "2025-01-08",
            "2025-01-10",
            dec!(1200.00),
            dec!(820.00),
        ),
    )
    .await;
    insert_loan(
        pool,
        disbursed(
            p.l2,
            p.bo,
            "branch",
            "business",
            Some("off-2"),
            "overdue",
            "2025-01-03",
            "2025-01-15",
            "2025-01-20",
            dec!(3000.00),
            dec!(0.00),
        ),
    )
    .await;
    insert_loan(
        pool,
        disbursed(
            p.l3,
            p.ana,
            "app",
            "business",
            None,
            "paid_off",
            "2025-02-01",
            "2025-02-10",
            "2025-02-15",
            dec!(600.00),
            dec!(615.00),
        ),
    )
    .await;
    let mut l4 = disbursed(
        p.l4,
        p.cy,
        "app",
        "consumer",
        Some("off-1"),
        "written_off",
        "2025-01-02",
        "2025-01-03",
        "2025-01-05",
        dec!(900.00),
        dec!(0.00),
    );
    l4.written_off_on = Some("2025-05-01");
    insert_loan(pool, l4).await;
    insert_loan(
        pool,
        Loan {
            id: p.l5,
            customer: p.bo,
            channel: "branch",
            purpose: "consumer",
            officer: Some("off-2"),
            status: "review",
            captured_on: "2025-03-01",
            submitted_on: Some("2025-03-02"),
            signed_on: None,
            disbursed_on: None,
            written_off_on: None,
            principal: None,
            total_repaid: dec!(0.00),
        },
    )
    .await;
    insert_loan(
        pool,
        Loan {
            id: p.l6,
            customer: p.cy,
            channel: "app",
            purpose: "consumer",
            officer: None,
            status: "rejected",
            captured_on: "2025-02-01",
            submitted_on: Some("2025-02-02"),
            signed_on: None,
            disbursed_on: None,
            written_off_on: None,
            principal: None,
            total_repaid: dec!(0.00),
        },
    )
    .await;

    // L1: paid on time, then 10 days late, then nothing.
    insert_installment(
        pool,
        p.l1,
        1,
        "2025-02-10",
        dec!(400),
        dec!(10),
        Some("2025-02-10"),
    )
    .await;
    insert_installment(
        pool,
        p.l1,
        2,
        "2025-03-10",
        dec!(400),
        dec!(10),
        Some("2025-03-20"),
    )
    .await;
    insert_installment(pool, p.l1, 3, "2025-04-10", dec!(400), dec!(10), None).await;
    insert_allocation(pool, p.l1, "P1", "2025-02-10", 1, dec!(400), dec!(10)).await;
    insert_allocation(pool, p.l1, "P2", "2025-03-20", 2, dec!(400), dec!(10)).await;
    // L2: never paid.
    for (no, due) in [(1, "2025-02-20"), (2, "2025-03-20"), (3, "2025-04-20")] {
        insert_installment(pool, p.l2, no, due, dec!(1000), dec!(30), None).await;
    }
    // L3: first installment 17 days late, then the rest in one payment.
    insert_installment(
        pool,
        p.l3,
        1,
        "2025-03-15",
        dec!(200),
        dec!(5),
        Some("2025-04-01"),
    )
    .await;
    insert_installment(
        pool,
        p.l3,
        2,
        "2025-04-15",
        dec!(200),
        dec!(5),
        Some("2025-05-20"),
    )
    .await;
    insert_installment(
        pool,
        p.l3,
        3,
        "2025-05-15",
        dec!(200),
        dec!(5),
        Some("2025-05-20"),
    )
    .await;
    insert_allocation(pool, p.l3, "Q1", "2025-04-01", 1, dec!(200), dec!(5)).await;
    insert_allocation(pool, p.l3, "Q2", "2025-05-20", 2, dec!(200), dec!(5)).await;
    insert_allocation(pool, p.l3, "Q2", "2025-05-20", 3, dec!(200), dec!(5)).await;
    // L4: never paid, written off on 2025-05-01.
    for (no, due) in [(1, "2025-02-05"), (2, "2025-03-05"), (3, "2025-04-05")] {
        insert_installment(pool, p.l4, no, due, dec!(300), dec!(8), None).await;
    }

    // Timeline and decision of L1.
    sqlx::query(
        "INSERT INTO read_model.loan_timeline (loan_id, position, version, event_type,
             business_date, recorded_at, actor_id, summary, details)
         VALUES ($1, 11, 1, 'lead_captured', '2025-01-02', '2025-01-02T09:00:00Z', 'off-1',
                 'Lead captured', '{\"amount\": \"1200.00\"}'),
                ($1, 14, 2, 'application_decided', '2025-01-05', '2025-01-05T10:00:00Z',
                 'policy-service', 'Approved by policy', '{}')",
    )
    .bind(p.l1)
    .execute(pool)
    .await
    .expect("insert timeline");
    sqlx::query(
        "INSERT INTO read_model.decisions (loan_id, decided_on, rule_set_version, outcome,
             reasons, position, decided_by, actor_id)
         VALUES ($1, '2025-01-05', 'credit-policy/v1', 'approve',
                 '[{\"rule\": \"min_credit_score\", \"passed\": true, \"detail\": \"720 >= 550\"}]',
                 14, 'policy', 'policy-service')",
    )
    .bind(p.l1)
    .execute(pool)
    .await
    .expect("insert decision");
    p
}
