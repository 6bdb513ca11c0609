//! Roll-rate matrix between two report dates: where the loans of each aging bucket at
//! `from` stood at `to`.
//!
//! Rows are every loan on book at `from`, by its bucket then; columns are its state at
//! `to`: an aging bucket if still on book, `written_off` if written off on or before
//! `to`, `repaid` if its outstanding principal at `to` is zero. `share` = loans ÷ loans
//! of the `from` bucket, half-up to 4 dp (absent when the `from` bucket is empty). Every
//! cell of the 5 × 7 matrix is listed, zeros included.
//!
//! Over SQLite the book is read once up to `to` and the positions at both dates computed
//! from it ([`Book::positions`]); the cells are tallied in Rust.

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgPool, SqlitePool};
use utoipa::ToSchema;

use super::as_of::{BUCKETS, Book, bucket_rank, bucket_values, loans_as_of};
use super::exact::{Total, count_ratio, money};
use super::{Page, PageRequest};
use crate::{QueryError, ReadModelsRef};

/// The states a loan can roll to besides the aging buckets.
pub const REPAID: &str = "repaid";
pub const WRITTEN_OFF: &str = "written_off";

/// One cell of the roll-rate matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct RollRateCell {
    pub from_bucket: String,
    pub to_state: String,
    pub loans: i64,
    /// Outstanding principal at `from` of the loans of this cell.
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub outstanding_principal_at_from: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::ratio_opt")]
    pub share: Option<Decimal>,
}

/// The matrix from `from` to `to` (`from` < `to`), ordered by `from` bucket then `to`
/// state (buckets best to worst, then `repaid`, `written_off`).
pub async fn roll_rates<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    from: NaiveDate,
    to: NaiveDate,
    page: PageRequest,
) -> Result<Page<RollRateCell>, QueryError> {
    if from >= to {
        return Err(QueryError::invalid(
            "to",
            format!("must be after `from` ({from}), got {to}"),
        ));
    }
    match read_models.into() {
        ReadModelsRef::Postgres(pool) => roll_rates_postgres(pool, from, to, page).await,
        ReadModelsRef::Sqlite(pool) => roll_rates_sqlite(pool, from, to, page).await,
    }
}

/// The columns of the matrix: the buckets, then [`REPAID`], [`WRITTEN_OFF`].
const TO_STATES: usize = BUCKETS.len() + 2;

async fn roll_rates_sqlite(
    pool: &SqlitePool,
    from: NaiveDate,
    to: NaiveDate,
    page: PageRequest,
) -> Result<Page<RollRateCell>, QueryError> {
    let mut tx = pool.begin().await?;
    let book = Book::load(&mut tx, to, None).await?;
    tx.commit().await?;
    let written_off_on: HashMap<_, _> = book
        .loans()
        .iter()
        .map(|loan| (loan.loan_id, loan.written_off_on))
        .collect();
    let finish: HashMap<_, _> = book
        .positions(to)?
        .into_iter()
        .map(|position| (position.loan_id, bucket_rank(position.aging_bucket)))
        .collect();
    #[derive(Default, Clone, Copy)]
    struct Cell {
        loans: i64,
        outstanding_principal_at_from: Total,
    }
    let mut cells = [[Cell::default(); TO_STATES]; BUCKETS.len()];
    for start in book.positions(from)? {
        let written_off = written_off_on
            .get(&start.loan_id)
            .copied()
            .flatten()
            .is_some_and(|on| on <= to);
        let to_state = if written_off {
            BUCKETS.len() + 1
        } else {
            match finish.get(&start.loan_id) {
                None => BUCKETS.len(),
                Some(rank) => *rank,
            }
        };
        let cell = cells
            .get_mut(bucket_rank(start.aging_bucket))
            .and_then(|row| row.get_mut(to_state))
            .ok_or(QueryError::Overflow {
                what: "a roll-rate cell",
            })?;
        cell.loans += 1;
        cell.outstanding_principal_at_from
            .add(start.outstanding_principal)?;
    }
    let mut rows = Vec::with_capacity(BUCKETS.len() * TO_STATES);
    for (from_bucket, row) in BUCKETS.iter().zip(cells) {
        let bucket_loans: i64 = row.iter().map(|cell| cell.loans).sum();
        for (to_rank, cell) in row.into_iter().enumerate() {
            let to_state = match BUCKETS.get(to_rank) {
                Some(bucket) => bucket.as_str(),
                None if to_rank == BUCKETS.len() => REPAID,
                None => WRITTEN_OFF,
            };
            rows.push(RollRateCell {
                from_bucket: from_bucket.as_str().to_string(),
                to_state: to_state.to_string(),
                loans: cell.loans,
                outstanding_principal_at_from: money(cell.outstanding_principal_at_from.value()),
                share: count_ratio(cell.loans, bucket_loans)?,
            });
        }
    }
    Ok(page.slice(rows))
}

async fn roll_rates_postgres(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    page: PageRequest,
) -> Result<Page<RollRateCell>, QueryError> {
    let to_states = format!(
        "{}, ('{REPAID}', {}), ('{WRITTEN_OFF}', {})",
        bucket_values(),
        BUCKETS.len(),
        BUCKETS.len() + 1
    );
    let rows = sqlx::query_as(&format!(
        "WITH start AS ({start}), finish AS ({finish}),
              from_bucket(bucket, rank) AS (VALUES {buckets}),
              to_state(state, rank) AS (VALUES {to_states}),
              moved AS (
              SELECT s.loan_id, s.aging_bucket AS from_bucket, s.outstanding_principal,
                     CASE WHEN l.written_off_on IS NOT NULL AND l.written_off_on <= $2::date
                               THEN '{WRITTEN_OFF}'
                          WHEN f.loan_id IS NULL THEN '{REPAID}'
                          ELSE f.aging_bucket END AS to_state
                FROM start s
                JOIN read_model.loans l ON l.loan_id = s.loan_id
                LEFT JOIN finish f ON f.loan_id = s.loan_id),
              cell AS (
              SELECT fb.bucket AS from_bucket, fb.rank AS from_rank,
                     ts.state AS to_state, ts.rank AS to_rank,
                     COUNT(m.loan_id) AS loans,
                     COALESCE(SUM(m.outstanding_principal), 0)::numeric(20,2)
                         AS outstanding_principal_at_from
                FROM from_bucket fb CROSS JOIN to_state ts
                LEFT JOIN moved m ON m.from_bucket = fb.bucket AND m.to_state = ts.state
               GROUP BY fb.bucket, fb.rank, ts.state, ts.rank)
         SELECT from_bucket, to_state, loans, outstanding_principal_at_from,
                ROUND(loans::numeric
                      / NULLIF(SUM(loans) OVER (PARTITION BY from_bucket), 0), 4) AS share
           FROM cell
          ORDER BY from_rank, to_rank LIMIT $3 OFFSET $4",
        start = loans_as_of("$1"),
        finish = loans_as_of("$2"),
        buckets = bucket_values(),
    ))
    .bind(from)
    .bind(to)
    .bind(page.sql_limit())
    .bind(page.sql_offset())
    .fetch_all(pool)
    .await?;
    Ok(page.page(rows))
}
