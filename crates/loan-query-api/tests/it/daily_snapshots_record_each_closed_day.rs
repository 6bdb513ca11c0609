//! The daily snapshots record each business date once it is over, catch up the days
//! missed while stopped (within the window), never record today, and never record a day
//! twice — over PostgreSQL and SQLite alike.

use chrono::{Days, NaiveDate};
use loan_query_api::ReadModelsRef;
use loan_query_api::reports::PageRequest;
use loan_query_api::reports::delinquency::loan_delinquency;
use loan_query_api::reports::snapshots::{last_snapshot_date, record_closed_days, snapshot};

use crate::embedded_reports_match_postgresql::both_databases;
use crate::portfolio_rows::report_date;

fn days_after(day: NaiveDate, n: u64) -> NaiveDate {
    day.checked_add_days(Days::new(n)).unwrap()
}

/// Every recorded day's snapshot holds exactly the loans the as-of report shows that day.
async fn assert_recorded_as_of(read_models: ReadModelsRef<'_>, day: NaiveDate) {
    let recorded = snapshot(read_models, day, PageRequest::all())
        .await
        .unwrap();
    let as_of = loan_delinquency(read_models, day, PageRequest::all())
        .await
        .unwrap();
    assert!(!recorded.items.is_empty(), "{day}: loans on book");
    let recorded: Vec<_> = recorded
        .items
        .iter()
        .map(|row| (row.loan_id, row.days_past_due, row.outstanding_principal))
        .collect();
    let mut expected: Vec<_> = as_of
        .items
        .iter()
        .map(|row| (row.loan_id, row.days_past_due, row.outstanding_principal))
        .collect();
    expected.sort();
    assert_eq!(recorded, expected, "{day}");
}

#[tokio::test]
async fn closed_days_are_recorded_once_and_missed_days_caught_up() {
    let db = both_databases().await;
    let d = report_date();
    for read_models in [
        ReadModelsRef::Postgres(&db.postgres.pool),
        ReadModelsRef::Sqlite(&db.sqlite.pool),
    ] {
        assert_eq!(last_snapshot_date(read_models).await.unwrap(), None);

        // First start on the day after D, window of 1 day: D alone (today is not over).
        let recorded = record_closed_days(read_models, days_after(d, 1), 1)
            .await
            .unwrap();
        assert_eq!(
            recorded.iter().map(|(day, _)| *day).collect::<Vec<_>>(),
            vec![d]
        );
        assert!(recorded[0].1 > 0);
        assert_recorded_as_of(read_models, d).await;
        assert_eq!(last_snapshot_date(read_models).await.unwrap(), Some(d));

        // The same day again: nothing more.
        assert!(
            record_closed_days(read_models, days_after(d, 1), 1)
                .await
                .unwrap()
                .is_empty()
        );

        // Stopped for three days: D+1, D+2, D+3 are caught up, in order, D is not redone.
        let recorded = record_closed_days(read_models, days_after(d, 4), 31)
            .await
            .unwrap();
        let days: Vec<_> = recorded.iter().map(|(day, _)| *day).collect();
        assert_eq!(
            days,
            vec![days_after(d, 1), days_after(d, 2), days_after(d, 3)]
        );
        for day in days {
            assert_recorded_as_of(read_models, day).await;
        }
        assert!(
            snapshot(read_models, days_after(d, 4), PageRequest::all())
                .await
                .unwrap()
                .items
                .is_empty(),
            "today is never recorded"
        );
    }
}
