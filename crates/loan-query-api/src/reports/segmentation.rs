//! Segmentation: which segments each customer belongs to, the figures of every segment,
//! and member lists for marketing campaigns.
//!
//! Segment rules [`SEGMENT_RULES_VERSION`] (`segments/v1`), one segment per
//! (dimension, value):
//!
//! | dimension | value | rule |
//! |---|---|---|
//! | `risk_grade` | `low` / `medium` / `high` | the customer's grade as projected (`risk-grade/v1`) |
//! | `value_tier` | `high` / `medium` / `low` | the customer's tier as projected (`value-tier/v1`) |
//! | `loan_purpose` | `consumer` / `business` | the customer has at least one loan (any status) with this purpose |
//! | `risk_appetite` | `conservative` / `balanced` / `aggressive` | as declared by the customer |
//! | `region` | the region text | as recorded on the profile |
//! | `channel` | the channel text | the customer's acquisition channel |
//!
//! A customer is in exactly one segment of every customer-level dimension and in one
//! `loan_purpose` segment per purpose of their loans. Segment figures as of a date D:
//! `customers` (members), `active_loans` (members' loans on book at D — for
//! `loan_purpose`, only loans of that purpose), `outstanding_balance` (their outstanding
//! principal at D), `overdue_loans` (of those, days past due > 0 at D) and
//! `overdue_rate` = overdue_loans ÷ active_loans, half-up to 4 dp (absent when there are
//! no active loans). Member lists leave out erased customers: they may not be contacted.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::as_of::loans_as_of;
use super::{Page, PageRequest};
use crate::QueryError;

/// The version of the segment rules above; reported with the figures.
pub const SEGMENT_RULES_VERSION: &str = "segments/v1";

/// A segmentation dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentDimension {
    RiskGrade,
    ValueTier,
    LoanPurpose,
    RiskAppetite,
    Region,
    Channel,
}

impl SegmentDimension {
    pub const ALL: [SegmentDimension; 6] = [
        SegmentDimension::RiskGrade,
        SegmentDimension::ValueTier,
        SegmentDimension::LoanPurpose,
        SegmentDimension::RiskAppetite,
        SegmentDimension::Region,
        SegmentDimension::Channel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SegmentDimension::RiskGrade => "risk_grade",
            SegmentDimension::ValueTier => "value_tier",
            SegmentDimension::LoanPurpose => "loan_purpose",
            SegmentDimension::RiskAppetite => "risk_appetite",
            SegmentDimension::Region => "region",
            SegmentDimension::Channel => "channel",
        }
    }

    /// Parses a dimension name; `parameter` names the offending parameter in the error.
    pub fn parse(text: &str, parameter: &str) -> Result<Self, QueryError> {
        Self::ALL
            .into_iter()
            .find(|dimension| dimension.as_str() == text)
            .ok_or_else(|| {
                QueryError::invalid(
                    parameter,
                    format!(
                        "unknown segment dimension `{text}`; one of {}",
                        Self::ALL.map(Self::as_str).join(", ")
                    ),
                )
            })
    }
}

/// A customer's membership of one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct CustomerSegment {
    pub customer_id: Uuid,
    pub dimension: String,
    pub value: String,
}

/// The figures of one segment as of a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct SegmentFigures {
    pub rules_version: String,
    pub dimension: String,
    pub value: String,
    pub customers: i64,
    pub active_loans: i64,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub outstanding_balance: Decimal,
    pub overdue_loans: i64,
    /// overdue_loans ÷ active_loans, half-up to 4 dp; absent without active loans.
    #[serde(serialize_with = "crate::reports::fixed::ratio_opt")]
    pub overdue_rate: Option<Decimal>,
}

/// One member of a segment, for a campaign list (contact only ever masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct SegmentMember {
    pub customer_id: Uuid,
    pub name: String,
    pub phone_masked: String,
    pub region: String,
    pub channel: String,
    pub risk_grade: Option<String>,
    pub value_tier: Option<String>,
    pub registered_on: NaiveDate,
}

/// `SELECT customer_id, dimension, value` of every segment membership (`segments/v1`).
pub(crate) fn customer_segments_sql() -> &'static str {
    "SELECT customer_id, 'risk_grade'::text AS dimension, risk_grade::text AS value
       FROM read_model.customers WHERE risk_grade IS NOT NULL
     UNION ALL SELECT customer_id, 'value_tier', value_tier::text
       FROM read_model.customers WHERE value_tier IS NOT NULL
     UNION ALL SELECT customer_id, 'risk_appetite', risk_appetite::text
       FROM read_model.customers WHERE risk_appetite IS NOT NULL
     UNION ALL SELECT customer_id, 'region', region::text
       FROM read_model.customers WHERE region IS NOT NULL
     UNION ALL SELECT customer_id, 'channel', channel::text
       FROM read_model.customers WHERE channel IS NOT NULL
     UNION ALL SELECT DISTINCT customer_id, 'loan_purpose', purpose::text
       FROM read_model.loans WHERE purpose IS NOT NULL"
}

/// Every customer's segments, ordered by customer, dimension, value.
pub async fn customer_segments(
    pool: &PgPool,
    page: PageRequest,
) -> Result<Page<CustomerSegment>, QueryError> {
    let rows = sqlx::query_as(&format!(
        "SELECT customer_id, dimension, value FROM ({}) s
          ORDER BY customer_id, dimension, value LIMIT $1 OFFSET $2",
        customer_segments_sql()
    ))
    .bind(page.sql_limit())
    .bind(page.sql_offset())
    .fetch_all(pool)
    .await?;
    Ok(page.page(rows))
}

/// The figures of every segment as of `as_of`, ordered by dimension, value.
pub async fn segment_figures(
    pool: &PgPool,
    as_of: NaiveDate,
    page: PageRequest,
) -> Result<Page<SegmentFigures>, QueryError> {
    let rows = sqlx::query_as(&format!(
        "WITH segment AS ({segments}), book AS ({book})
         SELECT $4::text AS rules_version, s.dimension, s.value,
                COUNT(DISTINCT s.customer_id) AS customers,
                COUNT(b.loan_id) AS active_loans,
                COALESCE(SUM(b.outstanding_principal), 0)::numeric(20,2) AS outstanding_balance,
                COUNT(b.loan_id) FILTER (WHERE b.days_past_due > 0) AS overdue_loans,
                ROUND(COUNT(b.loan_id) FILTER (WHERE b.days_past_due > 0)::numeric
                      / NULLIF(COUNT(b.loan_id), 0), 4) AS overdue_rate
           FROM segment s
           LEFT JOIN book b ON b.customer_id = s.customer_id
                           AND (s.dimension <> 'loan_purpose' OR b.purpose::text = s.value)
          GROUP BY s.dimension, s.value
          ORDER BY s.dimension, s.value LIMIT $2 OFFSET $3",
        segments = customer_segments_sql(),
        book = loans_as_of("$1"),
    ))
    .bind(as_of)
    .bind(page.sql_limit())
    .bind(page.sql_offset())
    .bind(SEGMENT_RULES_VERSION)
    .fetch_all(pool)
    .await?;
    Ok(page.page(rows))
}

/// The members of segment (`dimension`, `value`) for export, erased customers left out,
/// ordered by customer id.
pub async fn segment_members(
    pool: &PgPool,
    dimension: SegmentDimension,
    value: &str,
    page: PageRequest,
) -> Result<Page<SegmentMember>, QueryError> {
    let rows = sqlx::query_as(&format!(
        "SELECT c.customer_id, c.name, c.phone_masked, c.region, c.channel,
                c.risk_grade::text AS risk_grade, c.value_tier::text AS value_tier,
                c.registered_on
           FROM read_model.customers c
          WHERE NOT c.erased
            AND EXISTS (SELECT 1 FROM ({}) s
                         WHERE s.customer_id = c.customer_id
                           AND s.dimension = $1 AND s.value = $2)
          ORDER BY c.customer_id LIMIT $3 OFFSET $4",
        customer_segments_sql()
    ))
    .bind(dimension.as_str())
    .bind(value)
    .bind(page.sql_limit())
    .bind(page.sql_offset())
    .fetch_all(pool)
    .await?;
    Ok(page.page(rows))
}
