//! Vintage curves: for each disbursement month (the cohort), the share of its loans that
//! were ever 30+/60+/90+ days past due by each month on book.
//!
//! "X+" means more than X days past due (the same threshold as PAR-X). A loan first
//! becomes more than X days past due on `due_date + X + 1` of an installment that was not
//! settled on or before that day (`installments.settled_on`), provided that day is on or
//! before the report date and before the loan's write-off. Months on book count calendar
//! months from the disbursement month (which is month 0) to the month of that day. Cell
//! (cohort, m) counts the cohort's loans that had crossed the threshold in month m or
//! earlier; m runs from 0 to the report date's month. Shares are ÷ the cohort's loans,
//! half-up to 4 dp.
//!
//! Over SQLite the crossing days and months on book are computed in Rust from the same
//! installment rows (`due_date + X + 1`, calendar months as `EXTRACT(YEAR) * 12 +
//! EXTRACT(MONTH)`), the shares with [`count_ratio`].

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgPool, SqlitePool};
use utoipa::ToSchema;

use super::as_of::{Book, LoanTerms};
use super::exact::count_ratio;
use super::{Page, PageRequest};
use crate::{QueryError, ReadModelsRef};

/// One cell of the vintage curves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct VintageCell {
    /// First day of the disbursement month.
    pub cohort_month: NaiveDate,
    pub months_on_book: i32,
    pub loans: i64,
    pub ever_30_plus: i64,
    pub ever_60_plus: i64,
    pub ever_90_plus: i64,
    #[serde(serialize_with = "crate::reports::fixed::ratio")]
    pub share_30_plus: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::ratio")]
    pub share_60_plus: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::ratio")]
    pub share_90_plus: Decimal,
}

/// The curves as known at `as_of`, ordered by cohort then months on book.
pub async fn vintages<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    as_of: NaiveDate,
    page: PageRequest,
) -> Result<Page<VintageCell>, QueryError> {
    match read_models.into() {
        ReadModelsRef::Postgres(pool) => vintages_postgres(pool, as_of, page).await,
        ReadModelsRef::Sqlite(pool) => vintages_sqlite(pool, as_of, page).await,
    }
}

/// The thresholds X of "ever X+" (more than X days past due).
const THRESHOLDS: [u64; 3] = [30, 60, 90];

/// `EXTRACT(YEAR FROM date) * 12 + EXTRACT(MONTH FROM date)`.
fn month_index(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month())
}

/// The day `loan` first became more than `threshold` days past due on or before `as_of`
/// and before its write-off, if it did.
fn crossing(
    book: &Book,
    loan: &LoanTerms,
    threshold: u64,
    as_of: NaiveDate,
) -> Result<Option<NaiveDate>, QueryError> {
    let mut first: Option<NaiveDate> = None;
    for installment in book.installments(loan.loan_id) {
        let day = installment
            .due_date
            .checked_add_days(Days::new(threshold + 1))
            .ok_or(QueryError::Overflow {
                what: "a crossing date",
            })?;
        let unsettled = installment.settled_on.is_none_or(|on| on > day);
        let before_write_off = loan.written_off_on.is_none_or(|on| day < on);
        if unsettled && day <= as_of && before_write_off {
            first = Some(first.map_or(day, |earlier| earlier.min(day)));
        }
    }
    Ok(first)
}

async fn vintages_sqlite(
    pool: &SqlitePool,
    as_of: NaiveDate,
    page: PageRequest,
) -> Result<Page<VintageCell>, QueryError> {
    let mut tx = pool.begin().await?;
    let book = Book::load(&mut tx, as_of, None).await?;
    tx.commit().await?;
    // Per cohort: the months on book at which each loan crossed 30+/60+/90+.
    let mut cohorts: BTreeMap<NaiveDate, Vec<[Option<i64>; 3]>> = BTreeMap::new();
    for loan in book.loans() {
        let Some(disbursed_on) = loan.disbursed_on.filter(|on| *on <= as_of) else {
            continue;
        };
        let cohort = disbursed_on.with_day(1).ok_or(QueryError::Overflow {
            what: "a cohort month",
        })?;
        let mut crossed = [None; 3];
        for (threshold, months) in THRESHOLDS.iter().zip(&mut crossed) {
            *months = crossing(&book, loan, *threshold, as_of)?
                .map(|day| month_index(day) - month_index(cohort));
        }
        cohorts.entry(cohort).or_default().push(crossed);
    }
    let mut rows = Vec::new();
    for (cohort, loans) in cohorts {
        let count = i64::try_from(loans.len()).unwrap_or(i64::MAX);
        let last_month = month_index(as_of) - month_index(cohort);
        for months_on_book in 0..=last_month {
            let mut ever = [0_i64; 3];
            for crossed in &loans {
                for (tally, months) in ever.iter_mut().zip(crossed) {
                    if months.is_some_and(|months| months <= months_on_book) {
                        *tally += 1;
                    }
                }
            }
            let share = |ever: i64| {
                count_ratio(ever, count)?.ok_or(QueryError::Overflow {
                    what: "a share of an empty cohort",
                })
            };
            rows.push(VintageCell {
                cohort_month: cohort,
                months_on_book: i32::try_from(months_on_book).map_err(|_| {
                    QueryError::Overflow {
                        what: "months on book",
                    }
                })?,
                loans: count,
                ever_30_plus: ever[0],
                ever_60_plus: ever[1],
                ever_90_plus: ever[2],
                share_30_plus: share(ever[0])?,
                share_60_plus: share(ever[1])?,
                share_90_plus: share(ever[2])?,
            });
        }
    }
    Ok(page.slice(rows))
}

async fn vintages_postgres(
    pool: &PgPool,
    as_of: NaiveDate,
    page: PageRequest,
) -> Result<Page<VintageCell>, QueryError> {
    let crossing = |threshold: u32| {
        format!(
            "(SELECT MIN(i.due_date + {days}) FROM read_model.installments i
               WHERE i.loan_id = l.loan_id
                 AND (i.settled_on IS NULL OR i.settled_on > i.due_date + {days})
                 AND i.due_date + {days} <= $1::date
                 AND (l.written_off_on IS NULL OR i.due_date + {days} < l.written_off_on))",
            days = threshold + 1
        )
    };
    let months = |date: &str| {
        format!(
            "((EXTRACT(YEAR FROM {date}) * 12 + EXTRACT(MONTH FROM {date}))
              - (EXTRACT(YEAR FROM cohort) * 12 + EXTRACT(MONTH FROM cohort)))::int4"
        )
    };
    let rows = sqlx::query_as(&format!(
        "WITH crossed AS (
              SELECT l.loan_id, date_trunc('month', l.disbursed_on)::date AS cohort,
                     {c30} AS on_30, {c60} AS on_60, {c90} AS on_90
                FROM read_model.loans l
               WHERE l.disbursed_on <= $1::date),
              loan_mob AS (
              SELECT cohort, {m30} AS mob_30, {m60} AS mob_60, {m90} AS mob_90 FROM crossed),
              cohort AS (
              SELECT cohort, COUNT(*) AS loans, {m_as_of} AS last_month
                FROM crossed GROUP BY cohort),
              cell AS (
              SELECT c.cohort, m.mob, c.loans,
                     COUNT(*) FILTER (WHERE l.mob_30 <= m.mob) AS ever_30_plus,
                     COUNT(*) FILTER (WHERE l.mob_60 <= m.mob) AS ever_60_plus,
                     COUNT(*) FILTER (WHERE l.mob_90 <= m.mob) AS ever_90_plus
                FROM cohort c
                CROSS JOIN LATERAL generate_series(0, c.last_month) AS m(mob)
                JOIN loan_mob l ON l.cohort = c.cohort
               GROUP BY c.cohort, m.mob, c.loans)
         SELECT cohort AS cohort_month, mob AS months_on_book, loans,
                ever_30_plus, ever_60_plus, ever_90_plus,
                ROUND(ever_30_plus::numeric / loans, 4) AS share_30_plus,
                ROUND(ever_60_plus::numeric / loans, 4) AS share_60_plus,
                ROUND(ever_90_plus::numeric / loans, 4) AS share_90_plus
           FROM cell
          ORDER BY cohort, mob LIMIT $2 OFFSET $3",
        c30 = crossing(30),
        c60 = crossing(60),
        c90 = crossing(90),
        m30 = months("on_30"),
        m60 = months("on_60"),
        m90 = months("on_90"),
        m_as_of = months("$1::date"),
    ))
    .bind(as_of)
    .bind(page.sql_limit())
    .bind(page.sql_offset())
    .fetch_all(pool)
    .await?;
    Ok(page.page(rows))
}
