//! Delinquency figures of the scripted portfolio (support::script_portfolio) at two report
//! dates, computed by hand here, against the reports.
//!
//! At D1 = 2025-03-31 (on book: L1, L2, L3, L4):
//! * L1: principal allocated ≤ D1 = 400 + 400 → outstanding 400; installments due before
//!   D1 (02-10, 03-10) settled 02-10 and 03-20 → 0 days past due, current, overdue 0.
//! * L2: nothing paid → outstanding 3000; oldest unsettled due 02-20 → 28 + 11 = 39 days,
//!   31–60; overdue = 2 × (1000 + 30) = 2060.
//! * L3: its 04-01 payment is after D1 → outstanding 600; due 03-15 unsettled at D1 →
//!   16 days, 1–30; overdue 205.
//! * L4: written off only on 05-01 → outstanding 900; due 02-05 → 28 + 26 = 54 days,
//!   31–60; overdue 2 × 308 = 616.
//!
//! Total 4900; PAR1 = 4500/4900 = 0.918367… → 0.9184; PAR30 = 3900/4900 = 0.795918… →
//! 0.7959; PAR90 = 0.
//!
//! At D2 = 2025-05-31 (on book: L1, L2 — L3 repaid on 05-20, L4 written off 05-01):
//! * L1: due 04-10 unsettled → 30 + 21 = 51 days, 31–60, outstanding 400, overdue 410.
//! * L2: due 02-20 → 28 + 31 + 30 + 11 = 100 days, 90+, outstanding 3000, overdue 3090.
//!
//! Total 3400; PAR1 = PAR30 = 1.0000; PAR90 = 3000/3400 = 0.882352… → 0.8824.

use loan_domain::servicing::AgingBucket;
use loan_query_api::reports::PageRequest;
use loan_query_api::reports::delinquency::{
    Breakdown, collection_queue, loan_delinquency, portfolio_at_risk, portfolio_buckets,
};
use loan_query_api::reports::roll_rate::roll_rates;
use loan_query_api::reports::snapshots::{snapshot, write_snapshot};
use loan_query_api::reports::vintage::vintages;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use crate::support::{TestDb, d1, d2, date, script_portfolio};

#[tokio::test]
async fn loans_buckets_and_par_at_two_dates_match_hand_figures() {
    let db = TestDb::create().await;
    let p = script_portfolio(&db.pool).await;

    let loans = loan_delinquency(&db.pool, d1(), PageRequest::all())
        .await
        .unwrap();
    let mut at_d1: Vec<_> = loans
        .items
        .iter()
        .map(|l| {
            (
                l.loan_id,
                l.days_past_due,
                l.aging_bucket.as_str(),
                l.outstanding_principal,
                l.overdue_amount,
            )
        })
        .collect();
    at_d1.sort();
    let mut expected = vec![
        (p.l1, 0, "current", dec!(400.00), dec!(0.00)),
        (p.l2, 39, "dpd_31_to_60", dec!(3000.00), dec!(2060.00)),
        (p.l3, 16, "dpd_1_to_30", dec!(600.00), dec!(205.00)),
        (p.l4, 54, "dpd_31_to_60", dec!(900.00), dec!(616.00)),
    ];
    expected.sort();
    assert_eq!(at_d1, expected);
    // The bucket names and bounds are the domain's.
    for loan in &loans.items {
        let days = u32::try_from(loan.days_past_due).unwrap();
        assert_eq!(
            loan.aging_bucket,
            AgingBucket::for_days_past_due(days).as_str()
        );
    }

    let loans = loan_delinquency(&db.pool, d2(), PageRequest::all())
        .await
        .unwrap();
    let mut at_d2: Vec<_> = loans
        .items
        .iter()
        .map(|l| {
            (
                l.loan_id,
                l.days_past_due,
                l.aging_bucket.as_str(),
                l.outstanding_principal,
                l.overdue_amount,
            )
        })
        .collect();
    at_d2.sort();
    let mut expected = vec![
        (p.l1, 51, "dpd_31_to_60", dec!(400.00), dec!(410.00)),
        (p.l2, 100, "dpd_90_plus", dec!(3000.00), dec!(3090.00)),
    ];
    expected.sort();
    assert_eq!(at_d2, expected);

    let buckets = portfolio_buckets(&db.pool, d1(), Breakdown::Portfolio, PageRequest::all())
        .await
        .unwrap();
    let rows: Vec<_> = buckets
        .items
        .iter()
        .map(|b| {
            (
                b.group_key.as_deref(),
                b.aging_bucket.as_str(),
                b.loans,
                b.outstanding_principal,
                b.overdue_amount,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (Some("all"), "current", 1, dec!(400.00), dec!(0.00)),
            (Some("all"), "dpd_1_to_30", 1, dec!(600.00), dec!(205.00)),
            (Some("all"), "dpd_31_to_60", 2, dec!(3900.00), dec!(2676.00)),
            (Some("all"), "dpd_61_to_90", 0, dec!(0.00), dec!(0.00)),
            (Some("all"), "dpd_90_plus", 0, dec!(0.00), dec!(0.00)),
        ]
    );

    let par = |rows: &[loan_query_api::reports::delinquency::ParFigures]| {
        rows.iter()
            .map(|r| {
                (
                    r.group_key.clone(),
                    r.loans,
                    r.outstanding_principal,
                    r.par1,
                    r.par30,
                    r.par90,
                )
            })
            .collect::<Vec<_>>()
    };
    let at = |text: &str| Some(text.to_string());
    let d1_par = portfolio_at_risk(&db.pool, d1(), Breakdown::Portfolio, PageRequest::all())
        .await
        .unwrap();
    assert_eq!(
        par(&d1_par.items),
        vec![(
            at("all"),
            4,
            dec!(4900.00),
            dec!(0.9184),
            dec!(0.7959),
            dec!(0.0000)
        )]
    );
    let d2_par = portfolio_at_risk(&db.pool, d2(), Breakdown::Portfolio, PageRequest::all())
        .await
        .unwrap();
    assert_eq!(
        par(&d2_par.items),
        vec![(
            at("all"),
            2,
            dec!(3400.00),
            dec!(1.0000),
            dec!(1.0000),
            dec!(0.8824)
        )]
    );

    // By product at D1: business = L2 (3000, 39 d) + L3 (600, 16 d): PAR1 3600/3600,
    // PAR30 3000/3600 = 0.8333; consumer = L1 (400, 0 d) + L4 (900, 54 d): 900/1300 =
    // 0.692307… → 0.6923 for PAR1 and PAR30.
    let by_purpose = portfolio_at_risk(&db.pool, d1(), Breakdown::Purpose, PageRequest::all())
        .await
        .unwrap();
    assert_eq!(
        par(&by_purpose.items),
        vec![
            (
                at("business"),
                2,
                dec!(3600.00),
                dec!(1.0000),
                dec!(0.8333),
                dec!(0.0000)
            ),
            (
                at("consumer"),
                2,
                dec!(1300.00),
                dec!(0.6923),
                dec!(0.6923),
                dec!(0.0000)
            ),
        ]
    );
    // By officer at D1: off-1 = L1 + L4, off-2 = L2, no officer = L3 (listed last).
    let by_officer = portfolio_at_risk(&db.pool, d1(), Breakdown::Officer, PageRequest::all())
        .await
        .unwrap();
    assert_eq!(
        par(&by_officer.items),
        vec![
            (
                at("off-1"),
                2,
                dec!(1300.00),
                dec!(0.6923),
                dec!(0.6923),
                dec!(0.0000)
            ),
            (
                at("off-2"),
                1,
                dec!(3000.00),
                dec!(1.0000),
                dec!(1.0000),
                dec!(0.0000)
            ),
            (
                None,
                1,
                dec!(600.00),
                dec!(1.0000),
                dec!(0.0000),
                dec!(0.0000)
            ),
        ]
    );
    // By channel at D1: app = L1 + L3 + L4 (1900; > 1 day: 600 + 900), branch = L2.
    let by_channel = portfolio_at_risk(&db.pool, d1(), Breakdown::Channel, PageRequest::all())
        .await
        .unwrap();
    assert_eq!(
        par(&by_channel.items),
        vec![
            (
                at("app"),
                3,
                dec!(1900.00),
                dec!(0.7895),
                dec!(0.4737),
                dec!(0.0000)
            ),
            (
                at("branch"),
                1,
                dec!(3000.00),
                dec!(1.0000),
                dec!(1.0000),
                dec!(0.0000)
            ),
        ]
    );
    // By segment (risk grade) at D1: low = Ana's L1 + L3, every bucket listed.
    let by_grade = portfolio_buckets(&db.pool, d1(), Breakdown::RiskGrade, PageRequest::all())
        .await
        .unwrap();
    assert_eq!(by_grade.items.len(), 3 * 5, "3 grades × 5 buckets");
    let low: Vec<_> = by_grade
        .items
        .iter()
        .filter(|b| b.group_key.as_deref() == Some("low"))
        .map(|b| {
            (
                b.aging_bucket.as_str(),
                b.loans,
                b.outstanding_principal,
                b.overdue_amount,
            )
        })
        .collect();
    assert_eq!(
        low,
        vec![
            ("current", 1, dec!(400.00), dec!(0.00)),
            ("dpd_1_to_30", 1, dec!(600.00), dec!(205.00)),
            ("dpd_31_to_60", 0, dec!(0.00), dec!(0.00)),
            ("dpd_61_to_90", 0, dec!(0.00), dec!(0.00)),
            ("dpd_90_plus", 0, dec!(0.00), dec!(0.00)),
        ]
    );
}

#[tokio::test]
async fn roll_rates_between_two_dates_match_hand_figures() {
    let db = TestDb::create().await;
    let p = script_portfolio(&db.pool).await;
    let _ = p;
    // D1 → D2: L1 current → 31–60; L3 1–30 → repaid; L2 31–60 → 90+; L4 31–60 → written off.
    let matrix = roll_rates(&db.pool, d1(), d2(), PageRequest::all())
        .await
        .unwrap();
    assert_eq!(matrix.items.len(), 5 * 7, "every cell is listed");
    let non_zero: Vec<_> = matrix
        .items
        .iter()
        .filter(|c| c.loans > 0)
        .map(|c| {
            (
                c.from_bucket.as_str(),
                c.to_state.as_str(),
                c.loans,
                c.outstanding_principal_at_from,
                c.share,
            )
        })
        .collect();
    assert_eq!(
        non_zero,
        vec![
            (
                "current",
                "dpd_31_to_60",
                1,
                dec!(400.00),
                Some(dec!(1.0000))
            ),
            ("dpd_1_to_30", "repaid", 1, dec!(600.00), Some(dec!(1.0000))),
            (
                "dpd_31_to_60",
                "dpd_90_plus",
                1,
                dec!(3000.00),
                Some(dec!(0.5000))
            ),
            (
                "dpd_31_to_60",
                "written_off",
                1,
                dec!(900.00),
                Some(dec!(0.5000))
            ),
        ]
    );
    // Other cells of a populated row share 0; rows of empty buckets have no share.
    for cell in &matrix.items {
        match cell.from_bucket.as_str() {
            "dpd_61_to_90" | "dpd_90_plus" => assert_eq!(cell.share, None, "{cell:?}"),
            _ if cell.loans == 0 => assert_eq!(cell.share, Some(Decimal::ZERO), "{cell:?}"),
            _ => {}
        }
    }
    // The dates must be in order.
    assert!(
        roll_rates(&db.pool, d2(), d1(), PageRequest::all())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn vintage_curves_match_hand_figures() {
    let db = TestDb::create().await;
    script_portfolio(&db.pool).await;
    // As of D2. Cohort 2025-01 = L1, L2, L4 (months on book 0..4 = Jan..May):
    // * L1 first > 30 days past due on 04-10 + 31 = 05-11 (month 4); never > 60 by D2.
    // * L2: > 30 on 02-20 + 31 = 03-23 (month 2), > 60 on 04-22 (3), > 90 on 05-22 (4).
    // * L4: > 30 on 03-08 (2), > 60 on 04-07 (3); > 90 would be 05-07, after the
    //   write-off on 05-01, so never.
    // Cohort 2025-02 = L3 (months 0..3): installment 2 (due 04-15) settled only 05-20,
    // after 04-15 + 31 = 05-16 → > 30 in May (month 3). Installment 1, settled 04-01, was
    // at most 17 days late.
    let cells = vintages(&db.pool, d2(), PageRequest::all()).await.unwrap();
    let rows: Vec<_> = cells
        .items
        .iter()
        .map(|c| {
            (
                c.cohort_month,
                c.months_on_book,
                c.loans,
                c.ever_30_plus,
                c.ever_60_plus,
                c.ever_90_plus,
                c.share_30_plus,
                c.share_60_plus,
                c.share_90_plus,
            )
        })
        .collect();
    let jan = date("2025-01-01");
    let feb = date("2025-02-01");
    let (z, third, two_thirds, one) = (dec!(0.0000), dec!(0.3333), dec!(0.6667), dec!(1.0000));
    assert_eq!(
        rows,
        vec![
            (jan, 0, 3, 0, 0, 0, z, z, z),
            (jan, 1, 3, 0, 0, 0, z, z, z),
            (jan, 2, 3, 2, 0, 0, two_thirds, z, z),
            (jan, 3, 3, 2, 2, 0, two_thirds, two_thirds, z),
            (jan, 4, 3, 3, 2, 1, one, two_thirds, third),
            (feb, 0, 1, 0, 0, 0, z, z, z),
            (feb, 1, 1, 0, 0, 0, z, z, z),
            (feb, 2, 1, 0, 0, 0, z, z, z),
            (feb, 3, 1, 1, 0, 0, one, z, z),
        ]
    );
    // As of D1 the May crossings have not happened yet: L1 and L3 never 30+.
    let early = vintages(&db.pool, d1(), PageRequest::all()).await.unwrap();
    let last_jan = early.items.iter().rfind(|c| c.cohort_month == jan).unwrap();
    assert_eq!(
        (
            last_jan.months_on_book,
            last_jan.ever_30_plus,
            last_jan.ever_60_plus
        ),
        (2, 2, 0)
    );
}

#[tokio::test]
async fn collection_queue_is_worst_first_with_masked_contact() {
    let db = TestDb::create().await;
    let p = script_portfolio(&db.pool).await;
    let queue = collection_queue(&db.pool, d1(), PageRequest::all())
        .await
        .unwrap();
    let rows: Vec<_> = queue
        .items
        .iter()
        .map(|q| {
            (
                q.loan_id,
                q.days_past_due,
                q.overdue_amount,
                q.officer_id.as_deref(),
                q.phone_masked.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (p.l4, 54, dec!(616.00), Some("off-1"), "erased"),
            (p.l2, 39, dec!(2060.00), Some("off-2"), "139****0002"),
            (p.l3, 16, dec!(205.00), None, "138****0001"),
        ]
    );
    let queue = collection_queue(&db.pool, d2(), PageRequest::all())
        .await
        .unwrap();
    let rows: Vec<_> = queue
        .items
        .iter()
        .map(|q| (q.loan_id, q.days_past_due, q.last_payment_on))
        .collect();
    assert_eq!(
        rows,
        vec![(p.l2, 100, None), (p.l1, 51, Some(date("2025-03-20")))]
    );
}

#[tokio::test]
async fn daily_snapshot_is_idempotent_and_equals_the_as_of_report() {
    let db = TestDb::create().await;
    let p = script_portfolio(&db.pool).await;
    // A leftover row of a loan not on book at D1 must disappear when D1 is re-snapshotted.
    sqlx::query(
        "INSERT INTO read_model.delinquency_snapshots VALUES ($1, $2, 3, 'dpd_1_to_30', 1.00, 1.00)",
    )
    .bind(d1())
    .bind(p.l5)
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(write_snapshot(&db.pool, d1()).await.unwrap(), 4);
    assert_eq!(write_snapshot(&db.pool, d1()).await.unwrap(), 4);
    assert_eq!(write_snapshot(&db.pool, d2()).await.unwrap(), 2);
    let recorded = snapshot(&db.pool, d1(), PageRequest::all()).await.unwrap();
    let live = loan_delinquency(&db.pool, d1(), PageRequest::all())
        .await
        .unwrap();
    let recorded: Vec<_> = recorded
        .items
        .iter()
        .map(|s| {
            (
                s.loan_id,
                s.days_past_due,
                s.aging_bucket.clone(),
                s.outstanding_principal,
                s.overdue_amount,
            )
        })
        .collect();
    let live: Vec<_> = live
        .items
        .iter()
        .map(|l| {
            (
                l.loan_id,
                l.days_past_due,
                l.aging_bucket.clone(),
                l.outstanding_principal,
                l.overdue_amount,
            )
        })
        .collect();
    assert_eq!(recorded, live);
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM read_model.delinquency_snapshots")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(total, 4 + 2);
}
