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

use chrono::NaiveDate;
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
