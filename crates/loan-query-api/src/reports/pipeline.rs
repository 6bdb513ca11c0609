//! The origination pipeline funnel: how many applications reached lead → review →
//! signed → disbursed, and the conversion between stages, by channel, officer or month.
//!
//! Each loan counts once in each stage it ever reached (`captured_on`, `submitted_on`,
//! `signed_on`, `disbursed_on` present), whatever happened afterwards, so a rejected
//! application counts as a lead and a review. The optional window filters on
//! `captured_on` (inclusive), and `month` groups by the capture month (`YYYY-MM`).
//! Conversions are stage ÷ previous stage (and disbursed ÷ leads overall), half-up to
//! 4 dp, absent when the previous stage is empty.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use utoipa::ToSchema;

use super::{Page, PageRequest};
use crate::QueryError;

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
pub async fn funnel(
    pool: &PgPool,
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
