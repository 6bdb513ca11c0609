//! Roll-rate matrix between two report dates: where the loans of each aging bucket at
//! `from` stood at `to`.
//!
//! Rows are every loan on book at `from`, by its bucket then; columns are its state at
//! `to`: an aging bucket if still on book, `written_off` if written off on or before
//! `to`, `repaid` if its outstanding principal at `to` is zero. `share` = loans ÷ loans
//! of the `from` bucket, half-up to 4 dp (absent when the `from` bucket is empty). Every
//! cell of the 5 × 7 matrix is listed, zeros included.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use utoipa::ToSchema;

use super::as_of::{BUCKETS, bucket_values, loans_as_of};
use super::{Page, PageRequest};
use crate::QueryError;

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
pub async fn roll_rates(
    pool: &PgPool,
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
