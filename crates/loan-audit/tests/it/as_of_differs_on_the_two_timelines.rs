//! `state` and `report` as of 28 February, as known then (the published figures) and as
//! known now (after a repayment recorded on 5 March value-dated 9 February, and the
//! reversal on 20 March of a payment of 10 February), differ exactly as computed by hand:
//!
//! * L1, 12,000.00 over 12 months at 9.90% equal principal: installment 1 is 1,000.00
//!   principal + 99.00 interest (12,000 × 0.099 / 12), due 10 February, grace 3 days,
//!   penalty 0.05% a day on overdue principal from 14 February: 15 days × 1,000.00 ×
//!   0.0005 = 7.50 through 28 February. Known then: unpaid, 18 days past due, overdue
//!   1,106.50. Known now: paid on 9 February, current, 11,000.00 outstanding.
//! * L2, 6,000.00 over 6 months at 12%: installment 1 is 1,000.00 + 60.00. Known then:
//!   paid on time, current, 5,000.00 outstanding. Known now: unpaid (reversed), 18 days
//!   past due, overdue 1,000.00 + 60.00 + 7.50 = 1,067.50.
//! * PAR1 = principal more than 1 day past due ÷ all outstanding principal: then
//!   12,000 / 17,000 = 0.70588… → 0.7059; now 6,000 / 17,000 = 0.35294… → 0.3529.

use loan_audit::export::Selection;
use loan_audit::history::Subject;
use loan_audit::log::{Knowledge, LogReader};
use loan_audit::timeline::{LoanAt, customer_state, delinquency_report, state};
use loan_domain::servicing::AgingBucket;
use loan_store::AggregateRef;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::support::{World, date, export_to, money, published_at, script};

async fn loan_state(w: &World, loan: Uuid, knowledge: Knowledge) -> LoanAt {
    let mut reader = w.log().read_all().await.expect("read");
    let mut states = state(
        &mut reader,
        Subject::Aggregate(AggregateRef {
            aggregate_type: loan_domain::AggregateType::Loan,
            id: loan,
        }),
        date("2026-02-28"),
        knowledge,
    )
    .await
    .expect("state");
    assert_eq!(states.len(), 1);
    states.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backdated_repayment_and_a_reversal_restate_february() {
    let w = World::new().await;
    let s = script(&w).await;

    // L1 as published: unpaid, overdue.
    let then = loan_state(&w, s.l1, published_at()).await;
    assert_eq!(then.status, "overdue");
    assert_eq!(then.recorded_status, "overdue");
    let book = then.book.as_ref().expect("disbursed");
    assert_eq!(book.days_past_due, 18);
    assert_eq!(book.bucket, AgingBucket::Dpd1To30);
    assert_eq!(book.outstanding.principal, money("12000.00"));
    assert_eq!(book.outstanding.interest, money("643.50"));
    assert_eq!(book.outstanding.penalty, money("7.50"));
    assert_eq!(book.overdue.total(), money("1106.50"));
    assert_eq!(book.installments[0].principal, money("1000.00"));
    assert_eq!(book.installments[0].interest, money("99.00"));
    assert_eq!(book.installments[0].principal_paid, money("0.00"));
    assert_eq!(book.installments[0].penalty_accrued, money("7.50"));
    assert!(book.payments.is_empty());

    // The same knowledge given as a stream position.
    let by_position = loan_state(
        &w,
        s.l1,
        Knowledge::UpToPosition {
            position: s.published_position,
        },
    )
    .await;
    assert_eq!(by_position.book, then.book);
    assert_eq!(by_position.status, then.status);

    // L1 as now known: paid on 9 February, so current on 28 February.
    let now = loan_state(&w, s.l1, Knowledge::Everything).await;
    assert_eq!(now.status, "repaying");
    let book = now.book.as_ref().expect("disbursed");
    assert_eq!(book.days_past_due, 0);
    assert_eq!(book.bucket, AgingBucket::Current);
    assert_eq!(book.outstanding.principal, money("11000.00"));
    assert_eq!(book.outstanding.penalty, money("0.00"));
    assert_eq!(book.overdue.total(), money("0.00"));
    assert_eq!(book.installments[0].principal_paid, money("1000.00"));
    assert_eq!(book.installments[0].interest_paid, money("99.00"));
    assert_eq!(book.payments.len(), 1);
    assert_eq!(book.payments[0].value_date, date("2026-02-09"));

    // L2: the other way round.
    let then = loan_state(&w, s.l2, published_at()).await;
    assert_eq!(then.status, "repaying");
    let book = then.book.as_ref().expect("disbursed");
    assert_eq!(book.days_past_due, 0);
    assert_eq!(book.outstanding.principal, money("5000.00"));
    assert_eq!(book.installments[0].interest_paid, money("60.00"));
    let now = loan_state(&w, s.l2, Knowledge::Everything).await;
    assert_eq!(now.status, "overdue");
    let book = now.book.as_ref().expect("disbursed");
    assert_eq!(book.days_past_due, 18);
    assert_eq!(book.bucket, AgingBucket::Dpd1To30);
    assert_eq!(book.outstanding.principal, money("6000.00"));
    assert_eq!(book.overdue.total(), money("1067.50"));
    assert!(book.payments.is_empty());

    // The delinquency report of 28 February, as published and as restated.
    let mut reader = w.log().read_loans(None).await.expect("read");
    let published = delinquency_report(&mut reader, date("2026-02-28"), published_at())
        .await
        .expect("report");
    assert_eq!(published.loans, 2);
    assert_eq!(published.outstanding_principal, money("17000.00"));
    let line = |report: &loan_audit::timeline::DelinquencyReport, bucket| {
        let line = report
            .buckets
            .iter()
            .find(|l| l.bucket == bucket)
            .expect("every bucket is listed")
            .clone();
        (line.loans, line.outstanding_principal, line.overdue_amount)
    };
    assert_eq!(
        line(&published, AgingBucket::Current),
        (1, money("5000.00"), money("0.00"))
    );
    assert_eq!(
        line(&published, AgingBucket::Dpd1To30),
        (1, money("12000.00"), money("1106.50"))
    );
    assert_eq!(
        line(&published, AgingBucket::Dpd31To60),
        (0, money("0.00"), money("0.00"))
    );
    let par: Vec<(u32, Decimal)> = published.par.iter().map(|p| (p.days, p.ratio)).collect();
    assert_eq!(
        par,
        [
            (1, Decimal::new(7059, 4)),
            (30, Decimal::ZERO),
            (90, Decimal::ZERO)
        ]
    );

    let mut reader = w.log().read_loans(None).await.expect("read");
    let restated = delinquency_report(&mut reader, date("2026-02-28"), Knowledge::Everything)
        .await
        .expect("report");
    assert_eq!(restated.outstanding_principal, money("17000.00"));
    assert_eq!(
        line(&restated, AgingBucket::Current),
        (1, money("11000.00"), money("0.00"))
    );
    assert_eq!(
        line(&restated, AgingBucket::Dpd1To30),
        (1, money("6000.00"), money("1067.50"))
    );
    assert_eq!(restated.par[0].ratio, Decimal::new(3529, 4));
    assert_eq!(restated.par[0].outstanding_principal, money("6000.00"));

    // The published report is reproduced exactly from an export, offline.
    let dir = tempfile::tempdir().expect("temp dir");
    let (file, _) = export_to(&w, &Selection::All, dir.path(), "all").await;
    let mut reader = LogReader::open_export(&file).expect("open");
    let offline = delinquency_report(&mut reader, date("2026-02-28"), published_at())
        .await
        .expect("report");
    assert_eq!(offline, published);

    // A customer with all their loans: C2 was erased on 25 March, not before.
    let mut reader = w.log().read_all().await.expect("read");
    let c2_then = customer_state(&mut reader, s.c2, date("2026-02-28"), published_at())
        .await
        .expect("state");
    assert_eq!(c2_then.status, "registered");
    assert!(c2_then.identity_verified);
    assert_eq!(c2_then.loans.len(), 1);
    assert_eq!(c2_then.loans[0].loan_id, s.l2);
    let mut reader = w.log().read_all().await.expect("read");
    let c2_now = customer_state(&mut reader, s.c2, date("2026-02-28"), Knowledge::Everything)
        .await
        .expect("state");
    assert_eq!(c2_now.status, "erased");
    assert_eq!(c2_now.loans[0].status, "overdue");

    write_cli_fixture(&w, &s).await;
}

/// With `LOAN_AUDIT_WRITE_FIXTURE=<dir>`, writes this history's export, manifest and ids
/// to `<dir>`: the offline fixture the CLI tests (`tests/it/audit_cli.rs`) read.
async fn write_cli_fixture(w: &World, s: &crate::support::Script) {
    let Ok(dir) = std::env::var("LOAN_AUDIT_WRITE_FIXTURE") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("fixture dir");
    export_to(w, &Selection::All, &dir, "history").await;
    let ids = serde_json::json!({
        "c1": s.c1, "c2": s.c2, "l1": s.l1, "l2": s.l2,
        "published_position": s.published_position,
    });
    std::fs::write(
        dir.join("ids.json"),
        serde_json::to_string_pretty(&ids).expect("json"),
    )
    .expect("write ids");
}
