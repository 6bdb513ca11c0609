//! The collections team's case list: every collection case (aggregate
//! `collection_case`, opened and resolved by the automation, worked by collectors) with
//! the customer's name and masked phone, filtered by status and team.
//!
//! The collection *queue* ([`super::delinquency::collection_queue`]) answers "which loans
//! are past due on a date"; this report answers "which cases does the team hold, how far
//! has each got" — contact attempts, the latest promise to pay, the resolution — read
//! from `read_model.collection_cases` as the portfolio projection keeps it.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Dialect, Page, PageRequest};
use crate::{QueryError, ReadModelsRef};

/// Which cases to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaseStatus {
    /// Cases still being worked (the default).
    #[default]
    Open,
    /// Cases closed as cured, paid off or written off.
    Resolved,
    /// Both.
    All,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 3] = [CaseStatus::Open, CaseStatus::Resolved, CaseStatus::All];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Resolved => "resolved",
            CaseStatus::All => "all",
        }
    }

    pub fn parse(text: &str) -> Option<CaseStatus> {
        CaseStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// One collection case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct CollectionCaseRow {
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub case_id: Uuid,
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub loan_id: Uuid,
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub customer_id: Uuid,
    pub customer_name: String,
    /// Masked (or `erased`), never in clear.
    pub phone_masked: String,
    pub team: String,
    /// `open` or `resolved`.
    pub status: String,
    pub currency: String,
    pub opened_on: NaiveDate,
    pub days_past_due_at_opening: i32,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub overdue_amount_at_opening: Decimal,
    /// Why the automation opened it, with the figures it used.
    pub reason: String,
    pub contact_attempts: i32,
    pub last_contact_on: Option<NaiveDate>,
    pub last_contact_channel: Option<String>,
    pub last_contact_outcome: Option<String>,
    pub promises: i32,
    #[serde(serialize_with = "crate::reports::fixed::money_opt")]
    #[sqlx(try_from = "super::stored::Money<Option<Decimal>>")]
    pub promised_amount: Option<Decimal>,
    pub promised_pay_by: Option<NaiveDate>,
    /// `cured`, `paid_off` or `written_off` once resolved.
    pub resolution: Option<String>,
    pub resolved_on: Option<NaiveDate>,
    /// True while the case is quarantined by the projection (its figures may be behind).
    pub stale: bool,
}

/// The cases with `status` (of `team`, when given): oldest opening first, then case id.
pub async fn collection_cases<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    status: CaseStatus,
    team: Option<&str>,
    page: PageRequest,
) -> Result<Page<CollectionCaseRow>, QueryError> {
    let sql = |dialect: Dialect| {
        let status_filter = match status {
            CaseStatus::Open => "k.status = 'open'",
            CaseStatus::Resolved => "k.status = 'resolved'",
            CaseStatus::All => "TRUE",
        };
        format!(
            "SELECT k.case_id, k.loan_id, k.customer_id, c.name AS customer_name, c.phone_masked,
                k.team, k.status, k.currency, k.opened_on, k.days_past_due_at_opening,
                k.overdue_amount_at_opening, k.reason, k.contact_attempts, k.last_contact_on,
                k.last_contact_channel, k.last_contact_outcome, k.promises, k.promised_amount,
                k.promised_pay_by, k.resolution, k.resolved_on, k.stale
           FROM {cases} k JOIN {customers} c ON c.customer_id = k.customer_id
          WHERE {status_filter} AND ({p1} IS NULL OR k.team = {p1})
          ORDER BY k.opened_on, k.case_id LIMIT {p2} OFFSET {p3}",
            cases = dialect.table("collection_cases"),
            customers = dialect.table("customers"),
            p1 = match dialect {
                Dialect::Postgres => "$1::text".to_string(),
                Dialect::Sqlite => dialect.param(1),
            },
            p2 = dialect.param(2),
            p3 = dialect.param(3),
        )
    };
    let rows = match read_models.into() {
        ReadModelsRef::Postgres(pool) => {
            sqlx::query_as(&sql(Dialect::Postgres))
                .bind(team)
                .bind(page.sql_limit())
                .bind(page.sql_offset())
                .fetch_all(pool)
                .await?
        }
        ReadModelsRef::Sqlite(pool) => {
            sqlx::query_as(&sql(Dialect::Sqlite))
                .bind(team)
                .bind(page.sql_limit())
                .bind(page.sql_offset())
                .fetch_all(pool)
                .await?
        }
    };
    Ok(page.page(rows))
}
