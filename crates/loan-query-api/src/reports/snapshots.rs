//! Daily delinquency snapshots: the as-of figures of every loan on book at a date,
//! recorded in `read_model.delinquency_snapshots` so that what a report said on a day can
//! be shown later even after late payments restate history.
//!
//! Writing is idempotent: the date's rows are replaced in one transaction, so running the
//! snapshot twice for a date (or after a restatement) leaves exactly the loans on book at
//! that date, each once.
//!
//! In SQLite the positions come from [`Book::positions`] and are written as exact
//! decimal text with two places, as the `numeric(20,2)` columns hold them in PostgreSQL.
//!
//! Recording every day: [`DailySnapshots`] runs beside the query API (`loan query-api
//! serve --daily-snapshots`, `loan embedded serve`) and records each business date once
//! it is over in the lender's time zone, catching up the days it missed while it was
//! down ([`closed_days_to_record`], a pure function of the last recorded date and today).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Days, FixedOffset, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgPool, SqlitePool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::as_of::{Book, loans_as_of};
use super::exact::money;
use super::{Dialect, Page, PageRequest};
use crate::{QueryError, ReadModelsRef};

/// One loan in the snapshot of a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct SnapshotRow {
    pub snapshot_date: NaiveDate,
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub loan_id: Uuid,
    pub days_past_due: i32,
    pub aging_bucket: String,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub outstanding_principal: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub overdue_amount: Decimal,
}

/// Records the snapshot of `date` (replacing any earlier one); returns the number of
/// loans recorded.
pub async fn write_snapshot<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    date: NaiveDate,
) -> Result<u64, QueryError> {
    match read_models.into() {
        ReadModelsRef::Postgres(pool) => write_snapshot_postgres(pool, date).await,
        ReadModelsRef::Sqlite(pool) => write_snapshot_sqlite(pool, date).await,
    }
}

async fn write_snapshot_sqlite(pool: &SqlitePool, date: NaiveDate) -> Result<u64, QueryError> {
    let mut tx = pool.begin().await?;
    let book = Book::load(&mut tx, date, None).await?;
    sqlx::query("DELETE FROM delinquency_snapshots WHERE snapshot_date = ?1")
        .bind(date)
        .execute(&mut *tx)
        .await?;
    let mut inserted = 0;
    for position in book.positions(date)? {
        inserted += sqlx::query(
            "INSERT INTO delinquency_snapshots
                  (snapshot_date, loan_id, days_past_due, aging_bucket, outstanding_principal,
                   overdue_amount)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(date)
        .bind(position.loan_id.hyphenated().to_string())
        .bind(position.days_past_due)
        .bind(position.aging_bucket.as_str())
        .bind(money(position.outstanding_principal).to_string())
        .bind(money(position.overdue_amount).to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(inserted)
}

async fn write_snapshot_postgres(pool: &PgPool, date: NaiveDate) -> Result<u64, QueryError> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM read_model.delinquency_snapshots WHERE snapshot_date = $1")
        .bind(date)
        .execute(&mut *tx)
        .await?;
    let inserted = sqlx::query(&format!(
        "INSERT INTO read_model.delinquency_snapshots
              (snapshot_date, loan_id, days_past_due, aging_bucket, outstanding_principal,
               overdue_amount)
         SELECT $1::date, loan_id, days_past_due, aging_bucket, outstanding_principal,
                overdue_amount
           FROM ({}) b",
        loans_as_of("$1")
    ))
    .bind(date)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(inserted)
}

/// The recorded snapshot of `date`, ordered by loan id (empty if none was written).
pub async fn snapshot<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    date: NaiveDate,
    page: PageRequest,
) -> Result<Page<SnapshotRow>, QueryError> {
    let sql = |dialect: Dialect| {
        format!(
            "SELECT snapshot_date, loan_id, days_past_due, aging_bucket, outstanding_principal,
                overdue_amount
           FROM {}
          WHERE snapshot_date = {}
          ORDER BY loan_id LIMIT {} OFFSET {}",
            dialect.table("delinquency_snapshots"),
            dialect.param(1),
            dialect.param(2),
            dialect.param(3),
        )
    };
    let rows = match read_models.into() {
        ReadModelsRef::Postgres(pool) => {
            sqlx::query_as(&sql(Dialect::Postgres))
                .bind(date)
                .bind(page.sql_limit())
                .bind(page.sql_offset())
                .fetch_all(pool)
                .await?
        }
        ReadModelsRef::Sqlite(pool) => {
            sqlx::query_as(&sql(Dialect::Sqlite))
                .bind(date)
                .bind(page.sql_limit())
                .bind(page.sql_offset())
                .fetch_all(pool)
                .await?
        }
    };
    Ok(page.page(rows))
}

/// The latest date with a recorded snapshot (`None` when none was ever written).
pub async fn last_snapshot_date<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
) -> Result<Option<NaiveDate>, QueryError> {
    Ok(match read_models.into() {
        ReadModelsRef::Postgres(pool) => {
            sqlx::query_scalar("SELECT max(snapshot_date) FROM read_model.delinquency_snapshots")
                .fetch_one(pool)
                .await?
        }
        ReadModelsRef::Sqlite(pool) => {
            sqlx::query_scalar("SELECT max(snapshot_date) FROM delinquency_snapshots")
                .fetch_one(pool)
                .await?
        }
    })
}

/// The closed business dates still to record on `today`, oldest first: every date after
/// `last_recorded` and before `today`, but no more than the `catch_up_days` most recent
/// ones (a worker down for a long time does not rewrite a year of history on start; older
/// days can be recorded on request with `loan query-api snapshot --date`). With nothing
/// recorded yet, the window alone bounds it. `today` itself is never closed.
pub fn closed_days_to_record(
    last_recorded: Option<NaiveDate>,
    today: NaiveDate,
    catch_up_days: u32,
) -> Vec<NaiveDate> {
    let window_start = today
        .checked_sub_days(Days::new(u64::from(catch_up_days)))
        .unwrap_or(NaiveDate::MIN);
    let first = match last_recorded.and_then(|last| last.succ_opt()) {
        Some(next) => next.max(window_start),
        None if last_recorded.is_some() => return Vec::new(),
        None => window_start,
    };
    first.iter_days().take_while(|day| *day < today).collect()
}

/// Records the snapshot of every closed day [`closed_days_to_record`] names for `today`;
/// returns each date recorded with its number of loans. Idempotent: run again the same
/// day, it records nothing more — unless the book was empty on those days (no rows to
/// remember them by), in which case it records the same empty days again, harmlessly.
pub async fn record_closed_days<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    today: NaiveDate,
    catch_up_days: u32,
) -> Result<Vec<(NaiveDate, u64)>, QueryError> {
    let read_models = read_models.into();
    let last = last_snapshot_date(read_models).await?;
    let mut recorded = Vec::new();
    for day in closed_days_to_record(last, today, catch_up_days) {
        recorded.push((day, write_snapshot(read_models, day).await?));
    }
    Ok(recorded)
}

/// When and how far back the daily snapshots are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailySnapshots {
    /// The lender's time zone: a business date is over at its midnight there.
    pub business_offset: FixedOffset,
    /// How long after midnight the closed day is recorded, so that the day's last events
    /// (the delinquency sweep, late-evening repayments) have been projected.
    pub delay: Duration,
    /// The most days recorded at once after a stop ([`closed_days_to_record`]).
    pub catch_up_days: u32,
}

impl DailySnapshots {
    /// UTC+8, 15 minutes after midnight, catching up at most 31 days.
    pub fn new(business_offset: FixedOffset) -> Self {
        DailySnapshots {
            business_offset,
            delay: Duration::from_secs(15 * 60),
            catch_up_days: 31,
        }
    }

    /// The business date whose snapshots are due at `now`: the local date of `now − delay`
    /// (so the day before is recorded only once the delay after midnight has passed).
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        let delay = chrono::Duration::from_std(self.delay).unwrap_or(chrono::Duration::zero());
        (now - delay)
            .with_timezone(&self.business_offset)
            .date_naive()
    }

    /// How long from `now` until the next business date closes (plus the delay).
    pub fn until_next_close(&self, now: DateTime<Utc>) -> Duration {
        let next_close = self
            .today(now)
            .succ_opt()
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .and_then(|midnight| midnight.and_local_timezone(self.business_offset).single())
            .map(|midnight| midnight.with_timezone(&Utc));
        let delay = chrono::Duration::from_std(self.delay).unwrap_or(chrono::Duration::zero());
        match next_close {
            Some(close) => (close + delay - now).to_std().unwrap_or_default(),
            None => Duration::from_secs(3600),
        }
    }

    /// Records the closed days now, then after every midnight (plus the delay), until
    /// `shutdown` resolves. A failed recording is logged and retried a minute later; it
    /// never stops the query API.
    pub async fn run<'a>(
        self,
        read_models: impl Into<ReadModelsRef<'a>>,
        shutdown: impl Future<Output = ()>,
    ) {
        let read_models = read_models.into();
        tokio::pin!(shutdown);
        loop {
            let now = Utc::now();
            let wait = match record_closed_days(read_models, self.today(now), self.catch_up_days)
                .await
            {
                Ok(recorded) => {
                    for (date, loans) in recorded {
                        tracing::info!(%date, loans, "daily delinquency snapshot recorded");
                    }
                    self.until_next_close(now)
                }
                Err(error) => {
                    tracing::warn!(%error, "daily delinquency snapshot failed; retrying in a minute");
                    Duration::from_secs(60)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn the_days_after_the_last_snapshot_up_to_yesterday_are_due() {
        assert_eq!(
            closed_days_to_record(Some(date("2026-03-28")), date("2026-03-31"), 31),
            vec![date("2026-03-29"), date("2026-03-30")]
        );
        // Yesterday already recorded: nothing; today is never closed.
        assert!(closed_days_to_record(Some(date("2026-03-30")), date("2026-03-31"), 31).is_empty());
        assert!(closed_days_to_record(Some(date("2026-03-31")), date("2026-03-31"), 31).is_empty());
    }

    #[test]
    fn a_long_stop_catches_up_only_the_window() {
        let due = closed_days_to_record(Some(date("2025-01-01")), date("2026-03-31"), 3);
        assert_eq!(
            due,
            vec![date("2026-03-28"), date("2026-03-29"), date("2026-03-30")]
        );
        let first_run = closed_days_to_record(None, date("2026-03-31"), 2);
        assert_eq!(first_run, vec![date("2026-03-29"), date("2026-03-30")]);
        assert!(closed_days_to_record(None, date("2026-03-31"), 0).is_empty());
    }

    #[test]
    fn a_day_closes_at_local_midnight_plus_the_delay() {
        let plan = DailySnapshots::new(FixedOffset::east_opt(8 * 3600).unwrap());
        // 2026-03-30 16:10 UTC is 00:10 on the 31st in UTC+8: within the 15-minute delay.
        let now: DateTime<Utc> = "2026-03-30T16:10:00Z".parse().unwrap();
        assert_eq!(plan.today(now), date("2026-03-30"));
        assert_eq!(plan.until_next_close(now), Duration::from_secs(5 * 60));
        // 00:20 local: the 30th is over; the next close is the 31st's, 24 h minus 5 min on.
        let now: DateTime<Utc> = "2026-03-30T16:20:00Z".parse().unwrap();
        assert_eq!(plan.today(now), date("2026-03-31"));
        assert_eq!(
            plan.until_next_close(now),
            Duration::from_secs(24 * 3600 - 5 * 60)
        );
    }
}
