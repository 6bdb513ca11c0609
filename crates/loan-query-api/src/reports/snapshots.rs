//! Daily delinquency snapshots: the as-of figures of every loan on book at a date,
//! recorded in `read_model.delinquency_snapshots` so that what a report said on a day can
//! be shown later even after late payments restate history.
//!
//! Writing is idempotent: the date's rows are replaced in one transaction, so running the
//! snapshot twice for a date (or after a restatement) leaves exactly the loans on book at
//! that date, each once.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::as_of::loans_as_of;
use super::{Page, PageRequest};
use crate::QueryError;

/// One loan in the snapshot of a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct SnapshotRow {
    pub snapshot_date: NaiveDate,
    pub loan_id: Uuid,
    pub days_past_due: i32,
    pub aging_bucket: String,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub outstanding_principal: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub overdue_amount: Decimal,
}

/// Records the snapshot of `date` (replacing any earlier one); returns the number of
/// loans recorded.
pub async fn write_snapshot(pool: &PgPool, date: NaiveDate) -> Result<u64, QueryError> {
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
pub async fn snapshot(
    pool: &PgPool,
    date: NaiveDate,
    page: PageRequest,
) -> Result<Page<SnapshotRow>, QueryError> {
    let rows = sqlx::query_as(
        "SELECT snapshot_date, loan_id, days_past_due, aging_bucket, outstanding_principal,
                overdue_amount
           FROM read_model.delinquency_snapshots
          WHERE snapshot_date = $1
          ORDER BY loan_id LIMIT $2 OFFSET $3",
    )
    .bind(date)
    .bind(page.sql_limit())
    .bind(page.sql_offset())
    .fetch_all(pool)
    .await?;
    Ok(page.page(rows))
}
