//! The origination pipeline funnel: how many applications reached lead → review →
//! signed → disbursed, and the conversion between stages, by channel, officer or month.
//!
//! Each loan counts once in each stage it ever reached (`captured_on`, `submitted_on`,
//! `signed_on`, `disbursed_on` present), whatever happened afterwards, so a rejected
//! application counts as a lead and a review. The optional window filters on
//! `captured_on` (inclusive), and `month` groups by the capture month (`YYYY-MM`).
//! Conversions are stage ÷ previous stage (and disbursed ÷ leads overall), half-up to
//! 4 dp, absent when the previous stage is empty.
//!
//! Over SQLite the stages are counted in SQL (counts need no decimals) and the
//! conversions computed in Rust with [`count_ratio`].

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgPool, SqlitePool};
use utoipa::ToSchema;

use super::exact::count_ratio;
use super::{Page, PageRequest};
use crate::{QueryError, ReadModelsRef};

/// How the funnel is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FunnelGrouping {
    #[default]
    Channel,
    Officer,
    Month,
}

impl FunnelGrouping {
    pub const ALL: [FunnelGrouping; 3] = [
        FunnelGrouping::Channel,
        FunnelGrouping::Officer,
        FunnelGrouping::Month,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FunnelGrouping::Channel => "channel",
            FunnelGrouping::Officer => "officer",
            FunnelGrouping::Month => "month",
        }
    }

    pub fn parse(text: &str, parameter: &str) -> Result<Self, QueryError> {
        Self::ALL
            .into_iter()
            .find(|by| by.as_str() == text)
            .ok_or_else(|| {
                QueryError::invalid(
                    parameter,
                    format!(
                        "unknown grouping `{text}`; one of {}",
                        Self::ALL.map(Self::as_str).join(", ")
                    ),
                )
            })
    }

    fn group_sql(self) -> &'static str {
        match self {
            FunnelGrouping::Channel => "channel::text",
            FunnelGrouping::Officer => "officer_id::text",
            FunnelGrouping::Month => "to_char(captured_on, 'YYYY-MM')",
        }
    }

    /// [`FunnelGrouping::group_sql`] over SQLite's TEXT columns (`YYYY-MM-DD` dates).
    fn group_sqlite(self) -> &'static str {
        match self {
            FunnelGrouping::Channel => "channel",
            FunnelGrouping::Officer => "officer_id",
            FunnelGrouping::Month => "substr(captured_on, 1, 7)",
        }
    }
}

/// The stage counts of one group.
#[derive(Debug, FromRow)]
struct StageCounts {
    group_key: Option<String>,
    leads: i64,
    reviewed: i64,
    signed: i64,
    disbursed: i64,
}

impl StageCounts {
    fn funnel(self) -> Result<FunnelFigures, QueryError> {
        Ok(FunnelFigures {
            lead_to_review: count_ratio(self.reviewed, self.leads)?,
            review_to_signed: count_ratio(self.signed, self.reviewed)?,
            signed_to_disbursed: count_ratio(self.disbursed, self.signed)?,
            lead_to_disbursed: count_ratio(self.disbursed, self.leads)?,
            group_key: self.group_key,
            leads: self.leads,
            reviewed: self.reviewed,
            signed: self.signed,
            disbursed: self.disbursed,
        })
    }
}

/// The funnel of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct FunnelFigures {
    /// Channel, officer id (absent: no officer) or capture month `YYYY-MM`.
    pub group_key: Option<String>,
    pub leads: i64,
    pub reviewed: i64,
    pub signed: i64,
    pub disbursed: i64,
    /// reviewed ÷ leads.
    #[serde(serialize_with = "crate::reports::fixed::ratio_opt")]
    pub lead_to_review: Option<Decimal>,
    /// signed ÷ reviewed.
    #[serde(serialize_with = "crate::reports::fixed::ratio_opt")]
    pub review_to_signed: Option<Decimal>,
    /// disbursed ÷ signed.
    #[serde(serialize_with = "crate::reports::fixed::ratio_opt")]
    pub signed_to_disbursed: Option<Decimal>,
    /// disbursed ÷ leads.
    #[serde(serialize_with = "crate::reports::fixed::ratio_opt")]
    pub lead_to_disbursed: Option<Decimal>,
}

/// The funnel per group, for loans captured within `[from, to]` (each bound optional),
/// ordered by group (absent last).
pub async fn funnel<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    by: FunnelGrouping,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    page: PageRequest,
) -> Result<Page<FunnelFigures>, QueryError> {
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(QueryError::invalid(
            "to",
            format!("must not be before `from` ({from}), got {to}"),
        ));
    }
    match read_models.into() {
        ReadModelsRef::Postgres(pool) => funnel_postgres(pool, by, from, to, page).await,
        ReadModelsRef::Sqlite(pool) => funnel_sqlite(pool, by, from, to, page).await,
    }
}

async fn funnel_sqlite(
    pool: &SqlitePool,
    by: FunnelGrouping,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    page: PageRequest,
) -> Result<Page<FunnelFigures>, QueryError> {
    let counts: Vec<StageCounts> = sqlx::query_as(&format!(
        "SELECT {group} AS group_key,
                COUNT(*) AS leads,
                COUNT(submitted_on) AS reviewed,
                COUNT(signed_on) AS signed,
                COUNT(disbursed_on) AS disbursed
           FROM loans
          WHERE (?1 IS NULL OR captured_on >= ?1)
            AND (?2 IS NULL OR captured_on <= ?2)
          GROUP BY 1
          ORDER BY group_key NULLS LAST LIMIT ?3 OFFSET ?4",
        group = by.group_sqlite(),
    ))
    .bind(from)
    .bind(to)
    .bind(page.sql_limit())
    .bind(page.sql_offset())
    .fetch_all(pool)
    .await?;
    let rows = counts
        .into_iter()
        .map(StageCounts::funnel)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page.page(rows))
}

async fn funnel_postgres(
    pool: &PgPool,
    by: FunnelGrouping,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    page: PageRequest,
) -> Result<Page<FunnelFigures>, QueryError> {
    let rows = sqlx::query_as(&format!(
        "WITH stage AS (
              SELECT {group} AS group_key,
                     COUNT(*) AS leads,
                     COUNT(submitted_on) AS reviewed,
                     COUNT(signed_on) AS signed,
                     COUNT(disbursed_on) AS disbursed
                FROM read_model.loans
               WHERE ($1::date IS NULL OR captured_on >= $1::date)
                 AND ($2::date IS NULL OR captured_on <= $2::date)
               GROUP BY 1)
         SELECT group_key, leads, reviewed, signed, disbursed,
                ROUND(reviewed::numeric / NULLIF(leads, 0), 4) AS lead_to_review,
                ROUND(signed::numeric / NULLIF(reviewed, 0), 4) AS review_to_signed,
                ROUND(disbursed::numeric / NULLIF(signed, 0), 4) AS signed_to_disbursed,
                ROUND(disbursed::numeric / NULLIF(leads, 0), 4) AS lead_to_disbursed
           FROM stage
          ORDER BY group_key NULLS LAST LIMIT $3 OFFSET $4",
        group = by.group_sql(),
    ))
    .bind(from)
    .bind(to)
    .bind(page.sql_limit())
    .bind(page.sql_offset())
    .fetch_all(pool)
    .await?;
    Ok(page.page(rows))
}
