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
//!
//! Memberships and member lists are the same SQL on both databases ([`Dialect`]); over
//! SQLite the segment figures are tallied in Rust from the memberships and the positions
//! of [`Book::positions`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgPool, SqlitePool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::as_of::{Book, Position, loans_as_of};
use super::exact::{Total, count_ratio, money};
use super::{Dialect, Page, PageRequest};
use crate::{QueryError, ReadModelsRef};

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
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
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
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
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
pub(crate) fn customer_segments_sql(dialect: Dialect) -> String {
    let customers = dialect.table("customers");
    let loans = dialect.table("loans");
    let text = |expression: &str| dialect.text(expression);
    format!(
        "SELECT customer_id, {risk_grade_name} AS dimension, {risk_grade} AS value
       FROM {customers} WHERE risk_grade IS NOT NULL
     UNION ALL SELECT customer_id, 'value_tier', {value_tier}
       FROM {customers} WHERE value_tier IS NOT NULL
     UNION ALL SELECT customer_id, 'risk_appetite', {risk_appetite}
       FROM {customers} WHERE risk_appetite IS NOT NULL
     UNION ALL SELECT customer_id, 'region', {region}
       FROM {customers} WHERE region IS NOT NULL
     UNION ALL SELECT customer_id, 'channel', {channel}
       FROM {customers} WHERE channel IS NOT NULL
     UNION ALL SELECT DISTINCT customer_id, 'loan_purpose', {purpose}
       FROM {loans} WHERE purpose IS NOT NULL",
        risk_grade_name = text("'risk_grade'"),
        risk_grade = text("risk_grade"),
        value_tier = text("value_tier"),
        risk_appetite = text("risk_appetite"),
        region = text("region"),
        channel = text("channel"),
        purpose = text("purpose"),
    )
}

/// Every customer's segments, ordered by customer, dimension, value.
pub async fn customer_segments<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    page: PageRequest,
) -> Result<Page<CustomerSegment>, QueryError> {
    let sql = |dialect: Dialect| {
        format!(
            "SELECT customer_id, dimension, value FROM ({}) s
          ORDER BY customer_id, dimension, value LIMIT {} OFFSET {}",
            customer_segments_sql(dialect),
            dialect.param(1),
            dialect.param(2)
        )
    };
    let rows = match read_models.into() {
        ReadModelsRef::Postgres(pool) => {
            sqlx::query_as(&sql(Dialect::Postgres))
                .bind(page.sql_limit())
                .bind(page.sql_offset())
                .fetch_all(pool)
                .await?
        }
        ReadModelsRef::Sqlite(pool) => {
            sqlx::query_as(&sql(Dialect::Sqlite))
                .bind(page.sql_limit())
                .bind(page.sql_offset())
                .fetch_all(pool)
                .await?
        }
    };
    Ok(page.page(rows))
}

/// The figures of every segment as of `as_of`, ordered by dimension, value.
pub async fn segment_figures<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    as_of: NaiveDate,
    page: PageRequest,
) -> Result<Page<SegmentFigures>, QueryError> {
    match read_models.into() {
        ReadModelsRef::Postgres(pool) => segment_figures_postgres(pool, as_of, page).await,
        ReadModelsRef::Sqlite(pool) => segment_figures_sqlite(pool, as_of, page).await,
    }
}

async fn segment_figures_sqlite(
    pool: &SqlitePool,
    as_of: NaiveDate,
    page: PageRequest,
) -> Result<Page<SegmentFigures>, QueryError> {
    let mut tx = pool.begin().await?;
    let book = Book::load(&mut tx, as_of, None).await?;
    let memberships: Vec<CustomerSegment> = sqlx::query_as(&customer_segments_sql(Dialect::Sqlite))
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut positions: HashMap<Uuid, Vec<Position>> = HashMap::new();
    for position in book.positions(as_of)? {
        positions
            .entry(position.customer_id)
            .or_default()
            .push(position);
    }
    #[derive(Default)]
    struct Tally {
        customers: BTreeSet<Uuid>,
        active_loans: i64,
        outstanding_balance: Total,
        overdue_loans: i64,
    }
    // segment s LEFT JOIN book b ON b.customer_id = s.customer_id
    //   AND (s.dimension <> 'loan_purpose' OR b.purpose = s.value)
    let mut segments: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for membership in memberships {
        let tally = segments
            .entry((membership.dimension.clone(), membership.value.clone()))
            .or_default();
        tally.customers.insert(membership.customer_id);
        let by_purpose = membership.dimension == SegmentDimension::LoanPurpose.as_str();
        let loans = positions.get(&membership.customer_id).into_iter().flatten();
        for position in loans.filter(|position| !by_purpose || position.purpose == membership.value)
        {
            tally.active_loans += 1;
            tally
                .outstanding_balance
                .add(position.outstanding_principal)?;
            if position.days_past_due > 0 {
                tally.overdue_loans += 1;
            }
        }
    }
    let mut rows = Vec::with_capacity(segments.len());
    for ((dimension, value), tally) in segments {
        rows.push(SegmentFigures {
            rules_version: SEGMENT_RULES_VERSION.to_string(),
            dimension,
            value,
            customers: i64::try_from(tally.customers.len()).unwrap_or(i64::MAX),
            active_loans: tally.active_loans,
            outstanding_balance: money(tally.outstanding_balance.value()),
            overdue_loans: tally.overdue_loans,
            overdue_rate: count_ratio(tally.overdue_loans, tally.active_loans)?,
        });
    }
    Ok(page.slice(rows))
}

async fn segment_figures_postgres(
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
        segments = customer_segments_sql(Dialect::Postgres),
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
pub async fn segment_members<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    dimension: SegmentDimension,
    value: &str,
    page: PageRequest,
) -> Result<Page<SegmentMember>, QueryError> {
    let sql = |dialect: Dialect| {
        format!(
            "SELECT c.customer_id, c.name, c.phone_masked, c.region, c.channel,
                {risk_grade} AS risk_grade, {value_tier} AS value_tier,
                c.registered_on
           FROM {customers} c
          WHERE NOT c.erased
            AND EXISTS (SELECT 1 FROM ({segments}) s
                         WHERE s.customer_id = c.customer_id
                           AND s.dimension = {p1} AND s.value = {p2})
          ORDER BY c.customer_id LIMIT {p3} OFFSET {p4}",
            risk_grade = dialect.text("c.risk_grade"),
            value_tier = dialect.text("c.value_tier"),
            customers = dialect.table("customers"),
            segments = customer_segments_sql(dialect),
            p1 = dialect.param(1),
            p2 = dialect.param(2),
            p3 = dialect.param(3),
            p4 = dialect.param(4),
        )
    };
    let rows = match read_models.into() {
        ReadModelsRef::Postgres(pool) => {
            sqlx::query_as(&sql(Dialect::Postgres))
                .bind(dimension.as_str())
                .bind(value)
                .bind(page.sql_limit())
                .bind(page.sql_offset())
                .fetch_all(pool)
                .await?
        }
        ReadModelsRef::Sqlite(pool) => {
            sqlx::query_as(&sql(Dialect::Sqlite))
                .bind(dimension.as_str())
                .bind(value)
                .bind(page.sql_limit())
                .bind(page.sql_offset())
                .fetch_all(pool)
                .await?
        }
    };
    Ok(page.page(rows))
}
