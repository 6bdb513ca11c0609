//! Customer 360, segmentation and the pipeline funnel of the scripted portfolio
//! (support::script_portfolio), with every expected figure worked out by hand.

use loan_query_api::QueryError;
use loan_query_api::reports::PageRequest;
use loan_query_api::reports::customer_360::customer_360;
use loan_query_api::reports::pipeline::{FunnelGrouping, funnel};
use loan_query_api::reports::segmentation::{
    SEGMENT_RULES_VERSION, SegmentDimension, customer_segments, segment_figures, segment_members,
};
use rust_decimal_macros::dec;
use uuid::Uuid;

use crate::support::{TestDb, d1, date, script_portfolio};

#[tokio::test]
async fn customer_360_holds_profile_scores_segments_loans_timeline_and_reasons() {
    let db = TestDb::create().await;
    let p = script_portfolio(&db.pool).await;
    let ana = customer_360(&db.pool, p.ana, d1()).await.unwrap();

    assert_eq!(ana.profile.name, "Ana");
    assert_eq!(ana.profile.phone_masked, "138****0001");
    assert_eq!(ana.profile.national_id_masked, "110***********1234");
    assert_eq!(ana.profile.risk_grade.as_deref(), Some("low"));
    assert_eq!(ana.profile.value_tier.as_deref(), Some("high"));
    let scores: Vec<_> = ana
        .credit_scores
        .iter()
        .map(|s| (s.assessed_on, s.score))
        .collect();
    assert_eq!(
        scores,
        vec![(date("2024-12-01"), 650), (date("2025-01-01"), 720)]
    );
    let segments: Vec<_> = ana
        .segments
        .iter()
        .map(|s| (s.dimension.as_str(), s.value.as_str()))
        .collect();
    assert_eq!(
        segments,
        vec![
            ("channel", "app"),
            ("loan_purpose", "business"),
            ("loan_purpose", "consumer"),
            ("region", "north"),
            ("risk_appetite", "balanced"),
            ("risk_grade", "low"),
            ("value_tier", "high"),
        ]
    );
    // Loans in capture order: L1 (01-02) current at D1, L3 (02-01) 16 days past due with
    // its first installment (200 + 5) overdue.
    let loans: Vec<_> = ana
        .loans
        .iter()
        .map(|l| {
            (
                l.loan_id,
                l.status.as_str(),
                l.principal,
                l.total_repaid,
                l.days_past_due,
                l.aging_bucket.as_deref(),
                l.overdue_amount,
            )
        })
        .collect();
    assert_eq!(
        loans,
        vec![
            (
                p.l1,
                "overdue",
                Some(dec!(1200.00)),
                dec!(820.00),
                Some(0),
                Some("current"),
                Some(dec!(0.00))
            ),
            (
                p.l3,
                "paid_off",
                Some(dec!(600.00)),
                dec!(615.00),
                Some(16),
                Some("dpd_1_to_30"),
                Some(dec!(205.00))
            ),
        ]
    );
    let timeline: Vec<_> = ana
        .timeline
        .iter()
        .map(|t| (t.position, t.event_type.as_str()))
        .collect();
    assert_eq!(
        timeline,
        vec![(11, "lead_captured"), (14, "application_decided")]
    );
    assert_eq!(ana.decisions.len(), 1);
    assert_eq!(ana.decisions[0].reasons[0]["rule"], "min_credit_score");

    // A loan not on book at the report date has no delinquency figures.
    let later = customer_360(&db.pool, p.ana, date("2025-06-30"))
        .await
        .unwrap();
    let l3 = later.loans.iter().find(|l| l.loan_id == p.l3).unwrap();
    assert_eq!((l3.days_past_due, l3.aging_bucket.as_deref()), (None, None));

    match customer_360(&db.pool, Uuid::now_v7(), d1()).await {
        Err(QueryError::NotFound { what, .. }) => assert_eq!(what, "customer"),
        other => panic!("unknown customer gave {other:?}"),
    }
}

#[tokio::test]
async fn segment_figures_members_and_memberships_match_hand_figures() {
    let db = TestDb::create().await;
    let p = script_portfolio(&db.pool).await;
    // On book at D1: L1 (Ana, consumer, 400, current), L2 (Bo, business, 3000, late),
    // L3 (Ana, business, 600, late), L4 (Cy, consumer, 900, late). L5 (Bo, consumer) is
    // not disbursed: Bo is in loan_purpose/consumer but brings no active loan to it.
    let figures = segment_figures(&db.pool, d1(), PageRequest::all())
        .await
        .unwrap();
    let rows: Vec<_> = figures
        .items
        .iter()
        .map(|f| {
            (
                f.dimension.as_str(),
                f.value.as_str(),
                f.customers,
                f.active_loans,
                f.outstanding_balance,
                f.overdue_loans,
                f.overdue_rate,
            )
        })
        .collect();
    let (half, two_thirds, one) = (Some(dec!(0.5000)), Some(dec!(0.6667)), Some(dec!(1.0000)));
    assert_eq!(
        rows,
        vec![
            ("channel", "app", 2, 3, dec!(1900.00), 2, two_thirds),
            ("channel", "branch", 1, 1, dec!(3000.00), 1, one),
            ("loan_purpose", "business", 2, 2, dec!(3600.00), 2, one),
            ("loan_purpose", "consumer", 3, 2, dec!(1300.00), 1, half),
            ("region", "north", 2, 3, dec!(1900.00), 2, two_thirds),
            ("region", "south", 1, 1, dec!(3000.00), 1, one),
            ("risk_appetite", "aggressive", 1, 1, dec!(900.00), 1, one),
            ("risk_appetite", "balanced", 1, 2, dec!(1000.00), 1, half),
            ("risk_appetite", "conservative", 1, 1, dec!(3000.00), 1, one),
            ("risk_grade", "high", 1, 1, dec!(900.00), 1, one),
            ("risk_grade", "low", 1, 2, dec!(1000.00), 1, half),
            ("risk_grade", "medium", 1, 1, dec!(3000.00), 1, one),
            ("value_tier", "high", 1, 2, dec!(1000.00), 1, half),
            ("value_tier", "low", 1, 1, dec!(900.00), 1, one),
            ("value_tier", "medium", 1, 1, dec!(3000.00), 1, one),
        ]
    );
    assert!(
        figures
            .items
            .iter()
            .all(|f| f.rules_version == SEGMENT_RULES_VERSION)
    );

    // Cy (north) is erased: members lists leave her out.
    let north = segment_members(
        &db.pool,
        SegmentDimension::Region,
        "north",
        PageRequest::all(),
    )
    .await
    .unwrap();
    let members: Vec<_> = north
        .items
        .iter()
        .map(|m| (m.customer_id, m.phone_masked.as_str()))
        .collect();
    assert_eq!(members, vec![(p.ana, "138****0001")]);
    let consumer = segment_members(
        &db.pool,
        SegmentDimension::LoanPurpose,
        "consumer",
        PageRequest::all(),
    )
    .await
    .unwrap();
    let mut ids: Vec<_> = consumer.items.iter().map(|m| m.customer_id).collect();
    let mut expected = vec![p.ana, p.bo];
    expected.sort();
    ids.sort();
    assert_eq!(ids, expected);

    // 3 customers × 5 customer-level dimensions + purposes (Ana 2, Bo 2, Cy 1) = 20.
    let memberships = customer_segments(&db.pool, PageRequest::new(1000, 0).unwrap())
        .await
        .unwrap();
    assert_eq!(memberships.items.len(), 20);
    let page = customer_segments(&db.pool, PageRequest::new(8, 16).unwrap())
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.next_offset), (4, None));
    assert_eq!(page.items, memberships.items[16..].to_vec());
}

#[tokio::test]
async fn pipeline_funnel_matches_hand_counts() {
    let db = TestDb::create().await;
    script_portfolio(&db.pool).await;
    let rows =
        |page: loan_query_api::reports::Page<loan_query_api::reports::pipeline::FunnelFigures>| {
            page.items
                .into_iter()
                .map(|f| {
                    (
                        f.group_key,
                        f.leads,
                        f.reviewed,
                        f.signed,
                        f.disbursed,
                        f.lead_to_review,
                        f.review_to_signed,
                        f.signed_to_disbursed,
                        f.lead_to_disbursed,
                    )
                })
                .collect::<Vec<_>>()
        };
    let s = |text: &str| Some(text.to_string());
    let (zero, half, three_quarters, one) = (
        Some(dec!(0.0000)),
        Some(dec!(0.5000)),
        Some(dec!(0.7500)),
        Some(dec!(1.0000)),
    );
    // app: L1, L3, L4 disbursed, L6 rejected after review; branch: L2 disbursed, L5 in review.
    let by_channel = funnel(
        &db.pool,
        FunnelGrouping::Channel,
        None,
        None,
        PageRequest::all(),
    )
    .await
    .unwrap();
    assert_eq!(
        rows(by_channel),
        vec![
            (
                s("app"),
                4,
                4,
                3,
                3,
                one,
                three_quarters,
                one,
                three_quarters
            ),
            (s("branch"), 2, 2, 1, 1, one, half, one, half),
        ]
    );
    let by_officer = funnel(
        &db.pool,
        FunnelGrouping::Officer,
        None,
        None,
        PageRequest::all(),
    )
    .await
    .unwrap();
    assert_eq!(
        rows(by_officer),
        vec![
            (s("off-1"), 2, 2, 2, 2, one, one, one, one),
            (s("off-2"), 2, 2, 1, 1, one, half, one, half),
            (None, 2, 2, 1, 1, one, half, one, half),
        ]
    );
    // By capture month: January L1, L2, L4; February L3, L6; March L5 (nothing signed,
    // so signed → disbursed is undefined).
    let by_month = funnel(
        &db.pool,
        FunnelGrouping::Month,
        None,
        None,
        PageRequest::all(),
    )
    .await
    .unwrap();
    assert_eq!(
        rows(by_month),
        vec![
            (s("2025-01"), 3, 3, 3, 3, one, one, one, one),
            (s("2025-02"), 2, 2, 1, 1, one, half, one, half),
            (s("2025-03"), 1, 1, 0, 0, one, zero, None, zero),
        ]
    );
    // A window on the capture date: February and March only.
    let windowed = funnel(
        &db.pool,
        FunnelGrouping::Channel,
        Some(date("2025-02-01")),
        Some(date("2025-03-31")),
        PageRequest::all(),
    )
    .await
    .unwrap();
    assert_eq!(
        rows(windowed),
        vec![
            (s("app"), 2, 2, 1, 1, one, half, one, half),
            (s("branch"), 1, 1, 0, 0, one, zero, None, zero),
        ]
    );
}
