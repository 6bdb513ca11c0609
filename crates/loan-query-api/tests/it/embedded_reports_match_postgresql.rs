//! The embedded mode's reports: the same rows (portfolio_rows) in PostgreSQL and in
//! SQLite give identical reports — every report, every breakdown, many report dates,
//! every page — and the SQLite side matches figures worked out by hand. The PostgreSQL
//! rounding the SQLite side mirrors (`reports::exact::ratio`) is checked against
//! PostgreSQL itself.

use std::fmt::Debug;
use std::future::Future;

use chrono::NaiveDate;
use loan_query_api::reports::delinquency::{
    Breakdown, collection_queue, loan_delinquency, portfolio_at_risk, portfolio_buckets,
};
use loan_query_api::reports::pipeline::{FunnelGrouping, funnel};
use loan_query_api::reports::roll_rate::roll_rates;
use loan_query_api::reports::segmentation::{
    SegmentDimension, customer_segments, segment_figures, segment_members,
};
use loan_query_api::reports::snapshots::{snapshot, write_snapshot};
use loan_query_api::reports::vintage::vintages;
use loan_query_api::reports::{Page, PageRequest, customer_360::customer_360, exact};
use loan_query_api::{QueryError, ReadModels};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use uuid::Uuid;

use crate::portfolio_rows::{PortfolioRows, SqliteDb, portfolio, report_date};
use crate::support::{TestDb, date};

/// The portfolio in both databases.
pub(crate) struct BothDatabases {
    pub(crate) postgres: TestDb,
    pub(crate) sqlite: SqliteDb,
    pub(crate) rows: PortfolioRows,
}

pub(crate) async fn both_databases() -> BothDatabases {
    let postgres = TestDb::create().await;
    let sqlite = SqliteDb::create().await;
    let rows = portfolio();
    rows.insert_into_postgres(&postgres.pool).await;
    rows.insert_into_sqlite(&sqlite.pool).await;
    BothDatabases {
        postgres,
        sqlite,
        rows,
    }
}

/// Report dates: before any loan, month ends, due dates, the hand-made loans' edges,
/// after every due date.
fn report_dates() -> Vec<NaiveDate> {
    [
        "2024-09-30",
        "2024-12-31",
        "2025-02-28",
        "2025-03-31",
        "2025-05-16",
        "2025-05-31",
        "2025-06-01",
        "2025-06-07",
        "2025-06-30",
        "2025-08-15",
        "2026-03-01",
    ]
    .into_iter()
    .map(date)
    .collect()
}

async fn same<T: PartialEq + Debug>(
    what: impl std::fmt::Display,
    postgres: impl Future<Output = Result<T, QueryError>>,
    sqlite: impl Future<Output = Result<T, QueryError>>,
) -> T {
    let postgres = postgres
        .await
        .unwrap_or_else(|e| panic!("{what} on PostgreSQL: {e}"));
    let sqlite = sqlite
        .await
        .unwrap_or_else(|e| panic!("{what} on SQLite: {e}"));
    assert_eq!(
        sqlite, postgres,
        "{what}: SQLite (left) differs from PostgreSQL"
    );
    sqlite
}

#[tokio::test]
async fn every_report_is_identical_on_postgresql_and_sqlite() {
    let db = both_databases().await;
    let (pg, lite) = (&db.postgres.pool, &db.sqlite.pool);
    let all = PageRequest::all();
    let dates = report_dates();

    for &as_of in &dates {
        let loans = same(
            format!("loans at {as_of}"),
            loan_delinquency(pg, as_of, all),
            loan_delinquency(lite, as_of, all),
        )
        .await;
        for by in Breakdown::ALL {
            same(
                format!("buckets by {} at {as_of}", by.as_str()),
                portfolio_buckets(pg, as_of, by, all),
                portfolio_buckets(lite, as_of, by, all),
            )
            .await;
            same(
                format!("PAR by {} at {as_of}", by.as_str()),
                portfolio_at_risk(pg, as_of, by, all),
                portfolio_at_risk(lite, as_of, by, all),
            )
            .await;
        }
        same(
            format!("collection queue at {as_of}"),
            collection_queue(pg, as_of, all),
            collection_queue(lite, as_of, all),
        )
        .await;
        same(
            format!("segments at {as_of}"),
            segment_figures(pg, as_of, all),
            segment_figures(lite, as_of, all),
        )
        .await;
        same(
            format!("vintages at {as_of}"),
            vintages(pg, as_of, all),
            vintages(lite, as_of, all),
        )
        .await;
        for &customer in &db.rows.customers {
            same(
                format!("customer 360 of {customer} at {as_of}"),
                customer_360(pg, customer, as_of),
                customer_360(lite, customer, as_of),
            )
            .await;
        }
        if as_of == report_date() {
            assert!(
                loans.items.len() >= 25,
                "{} loans on book",
                loans.items.len()
            );
        }
    }
    for pair in dates.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        same(
            format!("roll rates {from} → {to}"),
            roll_rates(pg, from, to, all),
            roll_rates(lite, from, to, all),
        )
        .await;
    }
    same(
        "roll rates over the whole book",
        roll_rates(pg, date("2025-01-31"), date("2025-06-30"), all),
        roll_rates(lite, date("2025-01-31"), date("2025-06-30"), all),
    )
    .await;

    same(
        "customer segments",
        customer_segments(pg, all),
        customer_segments(lite, all),
    )
    .await;
    let figures = segment_figures(lite, report_date(), all).await.unwrap();
    assert!(
        figures.items.len() >= 15,
        "{} segments",
        figures.items.len()
    );
    for segment in &figures.items {
        let dimension = SegmentDimension::parse(&segment.dimension, "dimension").unwrap();
        same(
            format!("members of {}={}", segment.dimension, segment.value),
            segment_members(pg, dimension, &segment.value, all),
            segment_members(lite, dimension, &segment.value, all),
        )
        .await;
    }

    let windows = [
        (None, None),
        (Some(date("2024-11-01")), Some(date("2025-03-31"))),
        (Some(date("2025-06-01")), None),
        (None, Some(date("2024-10-15"))),
    ];
    for by in FunnelGrouping::ALL {
        for (from, to) in windows {
            same(
                format!("funnel by {} from {from:?} to {to:?}", by.as_str()),
                funnel(pg, by, from, to, all),
                funnel(lite, by, from, to, all),
            )
            .await;
        }
    }

    for day in [date("2025-05-31"), report_date()] {
        let written = same(
            format!("snapshot written on {day}"),
            write_snapshot(pg, day),
            write_snapshot(lite, day),
        )
        .await;
        // Written twice: replaced, not doubled.
        same(
            format!("snapshot rewritten on {day}"),
            write_snapshot(pg, day),
            write_snapshot(lite, day),
        )
        .await;
        let recorded = same(
            format!("snapshot of {day}"),
            snapshot(pg, day, all),
            snapshot(lite, day, all),
        )
        .await;
        assert_eq!(u64::try_from(recorded.items.len()).unwrap(), written);
        let loans = loan_delinquency(lite, day, all).await.unwrap();
        assert_eq!(recorded.items.len(), loans.items.len());
    }
}

/// Walks every page of a report with `limit` on both databases: each page identical,
/// together the whole report.
async fn walk<T, F, Fut>(what: &str, limit: u32, report: F)
where
    T: PartialEq + Debug,
    F: Fn(bool, PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, QueryError>>,
{
    let whole = report(true, PageRequest::all()).await.unwrap();
    let mut items = Vec::new();
    let mut offset = 0;
    loop {
        let page = PageRequest::new(limit, offset).unwrap();
        let on_sqlite = same(
            format!("{what}, limit {limit} offset {offset}"),
            report(false, page),
            report(true, page),
        )
        .await;
        assert!(on_sqlite.items.len() <= usize::try_from(limit).unwrap());
        items.extend(on_sqlite.items);
        match on_sqlite.next_offset {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(
        items, whole.items,
        "{what}: the pages together are the report"
    );
    assert!(!items.is_empty(), "{what} is empty");
}

#[tokio::test]
async fn every_page_is_identical_on_postgresql_and_sqlite() {
    let db = both_databases().await;
    let models = |sqlite: bool| {
        if sqlite {
            ReadModels::from(db.sqlite.pool.clone())
        } else {
            ReadModels::from(db.postgres.pool.clone())
        }
    };
    let d = report_date();
    for limit in [1, 4, 7] {
        walk("loans", limit, |sqlite, page| {
            let models = models(sqlite);
            async move { loan_delinquency(&models, d, page).await }
        })
        .await;
        walk("collection queue", limit, |sqlite, page| {
            let models = models(sqlite);
            async move { collection_queue(&models, d, page).await }
        })
        .await;
        walk("buckets by officer", limit, |sqlite, page| {
            let models = models(sqlite);
            async move { portfolio_buckets(&models, d, Breakdown::Officer, page).await }
        })
        .await;
        walk("PAR by region", limit, |sqlite, page| {
            let models = models(sqlite);
            async move { portfolio_at_risk(&models, d, Breakdown::Region, page).await }
        })
        .await;
        walk("segments", limit, |sqlite, page| {
            let models = models(sqlite);
            async move { segment_figures(&models, d, page).await }
        })
        .await;
        walk("customer segments", limit, |sqlite, page| {
            let models = models(sqlite);
            async move { customer_segments(&models, page).await }
        })
        .await;
        walk("vintages", limit, |sqlite, page| {
            let models = models(sqlite);
            async move { vintages(&models, d, page).await }
        })
        .await;
        walk("roll rates", limit, |sqlite, page| {
            let models = models(sqlite);
            async move { roll_rates(&models, date("2025-03-31"), d, page).await }
        })
        .await;
        walk("funnel by officer", limit, |sqlite, page| {
            let models = models(sqlite);
            async move { funnel(&models, FunnelGrouping::Officer, None, None, page).await }
        })
        .await;
    }
}

#[tokio::test]
async fn sqlite_figures_match_hand_figures() {
    let db = both_databases().await;
    let lite = &db.sqlite.pool;
    let p = &db.rows;
    let all = PageRequest::all();
    let d = report_date();

    let at = |loans: &Page<loan_query_api::reports::delinquency::LoanDelinquency>, id: Uuid| {
        loans
            .items
            .iter()
            .find(|loan| loan.loan_id == id)
            .map(|loan| {
                (
                    loan.days_past_due,
                    loan.aging_bucket.clone(),
                    loan.outstanding_principal,
                    loan.overdue_amount,
                )
            })
    };
    let loans = loan_delinquency(lite, d, all).await.unwrap();
    // dpd[d]: one 1000.00 + 10.00 installment due d days before; the second (1000 + d +
    // 10.00), a month later, counts too when that is before the report date.
    for (days, id) in &p.dpd {
        let first_due = d - chrono::Days::new(u64::try_from(*days).unwrap());
        let bucket = match days {
            1..=30 => "dpd_1_to_30",
            31..=60 => "dpd_31_to_60",
            61..=90 => "dpd_61_to_90",
            _ => "dpd_90_plus",
        };
        let overdue = if first_due + chrono::Months::new(1) < d {
            dec!(1010.00) + dec!(1010.00) + Decimal::from(*days)
        } else {
            dec!(1010.00)
        };
        assert_eq!(
            at(&loans, *id),
            Some((
                i32::try_from(*days).unwrap(),
                bucket.to_string(),
                dec!(2000.00) + Decimal::from(*days),
                overdue
            )),
            "dpd[{days}]"
        );
    }
    // partial: 390.00 principal + 10.00 interest of 1010.00 paid, 06-05 still unsettled.
    assert_eq!(
        at(&loans, p.partial),
        Some((25, "dpd_1_to_30".into(), dec!(1610.00), dec!(610.00)))
    );
    // backdated: settled by the 06-08 value date.
    assert_eq!(
        at(&loans, p.backdated),
        Some((0, "current".into(), dec!(750.00), dec!(0.00)))
    );
    let before = loan_delinquency(lite, date("2025-06-07"), all)
        .await
        .unwrap();
    assert_eq!(
        at(&before, p.backdated),
        Some((2, "dpd_1_to_30".into(), dec!(1500.00), dec!(757.50)))
    );
    // reversed: nothing counted, 05-15 and 06-15 overdue.
    assert_eq!(
        at(&loans, p.reversed),
        Some((46, "dpd_31_to_60".into(), dec!(1800.00), dec!(1212.00)))
    );
    // written off on 06-01: on book the day before (91 days since 03-01), off after.
    assert_eq!(at(&loans, p.written_off), None);
    let may_31 = loan_delinquency(lite, date("2025-05-31"), all)
        .await
        .unwrap();
    assert_eq!(
        at(&may_31, p.written_off),
        Some((91, "dpd_90_plus".into(), dec!(900.00), dec!(924.00)))
    );
    // paid off on 05-31: on book on 05-30 with 500.01 left, off from 05-31.
    assert_eq!(at(&loans, p.paid_off), None);
    assert_eq!(at(&may_31, p.paid_off), None);
    let may_30 = loan_delinquency(lite, date("2025-05-30"), all)
        .await
        .unwrap();
    assert_eq!(
        at(&may_30, p.paid_off),
        Some((0, "current".into(), dec!(500.01), dec!(0.00)))
    );
    assert_eq!(
        at(&loans, p.current),
        Some((0, "current".into(), dec!(1000.00), dec!(0.00)))
    );

    // broker:zeta: 1.00 of 20000.00 at risk → 0.00005 → 0.0001 (half away from zero).
    let par = portfolio_at_risk(lite, d, Breakdown::Channel, all)
        .await
        .unwrap();
    let zeta = par
        .items
        .iter()
        .find(|row| row.group_key.as_deref() == Some("broker:zeta"))
        .expect("broker:zeta");
    assert_eq!(
        (
            zeta.loans,
            zeta.outstanding_principal,
            zeta.at_risk_1,
            zeta.at_risk_90,
            zeta.par1,
            zeta.par30,
            zeta.par90
        ),
        (
            2,
            dec!(20000.00),
            dec!(1.00),
            dec!(0.00),
            dec!(0.0001),
            dec!(0.0001),
            dec!(0.0000)
        )
    );
    // PAR-X counts loans MORE than X days past due: dpd[1], dpd[30], dpd[90] stay out.
    let portfolio = portfolio_at_risk(lite, d, Breakdown::Portfolio, all)
        .await
        .unwrap();
    let total = &portfolio.items[0];
    let sum = |more_than: i32| {
        loans
            .items
            .iter()
            .filter(|loan| loan.days_past_due > more_than)
            .map(|loan| loan.outstanding_principal)
            .sum::<Decimal>()
    };
    assert_eq!(
        (total.at_risk_1, total.at_risk_30, total.at_risk_90),
        (sum(1), sum(30), sum(90))
    );
    let threshold = |days: i64| p.dpd.iter().find(|(d, _)| *d == days).unwrap().1;
    for (days, more_than) in [(1, 1), (30, 30), (90, 90)] {
        let loan = at(&loans, threshold(days)).unwrap();
        assert!(
            loan.0 == more_than,
            "dpd[{days}] is exactly at the threshold"
        );
    }

    // The erased customer's loans are queued with the name and phone as "erased".
    let queue = collection_queue(lite, d, all).await.unwrap();
    let reversed = queue
        .items
        .iter()
        .find(|item| item.loan_id == p.reversed)
        .expect("reversed loan queued");
    assert_eq!(
        (
            reversed.customer_name.as_str(),
            reversed.phone_masked.as_str(),
            reversed.officer_id.as_deref()
        ),
        ("erased", "erased", None)
    );
    assert!(
        queue
            .items
            .windows(2)
            .all(|pair| pair[0].days_past_due >= pair[1].days_past_due),
        "worst first"
    );
    // Erased customers are left out of campaign lists.
    let members = segment_members(lite, SegmentDimension::Region, "Östra", all)
        .await
        .unwrap();
    assert!(
        members
            .items
            .iter()
            .all(|member| member.customer_id != p.cy)
    );

    // Officer breakdown: loans without officer form the last group, with no key.
    let by_officer = portfolio_buckets(lite, d, Breakdown::Officer, all)
        .await
        .unwrap();
    assert_eq!(by_officer.items.last().unwrap().group_key, None);
    assert_eq!(by_officer.items.len() % 5, 0);
}

#[tokio::test]
async fn the_ratio_rounding_is_postgresqls() {
    let db = TestDb::create().await;
    let cases = [
        ("4500.00", "4900.00"),
        ("1.00", "20000.00"),
        ("1", "3"),
        ("2", "3"),
        ("1", "8"),
        ("5", "40000"),
        ("15", "40000"),
        ("0", "7"),
        ("999999999999999.99", "1000000000000000.00"),
        ("1234499999999999999999", "10000000000000000000000"),
        ("123449999999999999", "1000000000000000000"),
        ("3400.00", "3400.00"),
        ("12345.67", "7.00"),
        ("0.01", "123456789.01"),
    ];
    for (numerator, denominator) in cases {
        let expected: String =
            sqlx::query_scalar("SELECT ROUND($1::numeric / $2::numeric, 4)::text")
                .bind(numerator)
                .bind(denominator)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        let ours = exact::ratio(numerator.parse().unwrap(), denominator.parse().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            ours,
            expected.parse::<Decimal>().unwrap(),
            "ROUND({numerator} / {denominator}, 4)"
        );
    }
    let cast: String = sqlx::query_scalar("SELECT ($1::numeric)::numeric(20,2)::text")
        .bind("2.345")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(exact::money(dec!(2.345)).to_string(), cast);
}

#[tokio::test]
async fn read_models_open_by_url_scheme() {
    let db = both_databases().await;
    let url = format!("sqlite://{}", db.sqlite.path.display());
    let models = ReadModels::connect(&url, 2).await.unwrap();
    assert_eq!(models.database_kind(), "sqlite");
    let d = report_date();
    same(
        "loans through a sqlite:// URL",
        loan_delinquency(&db.postgres.pool, d, PageRequest::all()),
        loan_delinquency(&models, d, PageRequest::all()),
    )
    .await;
    let opened = ReadModels::open_sqlite(&db.sqlite.path).await.unwrap();
    assert_eq!(
        customer_360(&opened, db.rows.ana, d).await.unwrap(),
        customer_360(&db.postgres.pool, db.rows.ana, d)
            .await
            .unwrap()
    );

    match ReadModels::connect("mysql://localhost/loans", 1).await {
        Err(QueryError::InvalidParameter { parameter, .. }) => {
            assert_eq!(parameter, "database_url")
        }
        other => panic!("unknown scheme gave {other:?}"),
    }
    let missing = std::env::temp_dir().join(format!("missing_{}.db", Uuid::now_v7().simple()));
    assert!(
        ReadModels::connect(&format!("sqlite://{}", missing.display()), 1)
            .await
            .is_err()
    );
    assert!(
        !missing.exists(),
        "a missing read-model file is not created"
    );
}

#[tokio::test]
async fn a_corrupt_money_text_is_an_error_not_a_float() {
    let db = both_databases().await;
    sqlx::query("UPDATE allocations SET principal = '12,50' WHERE payment_reference = 'P1'")
        .execute(&db.sqlite.pool)
        .await
        .unwrap();
    match loan_delinquency(&db.sqlite.pool, report_date(), PageRequest::all()).await {
        Err(QueryError::Database(error)) => {
            assert!(error.to_string().contains("12,50"), "{error}")
        }
        other => panic!("a malformed decimal gave {other:?}"),
    }
}
