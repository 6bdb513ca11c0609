//! Delinquency as of any report date: each loan's days past due and aging bucket, the
//! portfolio per bucket, portfolio at risk (PAR1/PAR30/PAR90), each by product (loan
//! purpose), channel, officer or customer segment, and the collection queue.
//!
//! All figures come from [`loans_as_of`](super::as_of) — see its rules. PAR-X is
//! balance-weighted: outstanding principal of loans more than X days past due ÷ total
//! outstanding principal of loans on book, half-up to 4 dp.
//!
//! Over SQLite the positions come from [`Book::positions`] and are grouped, summed and
//! ordered here in Rust exactly as the SQL does (every bucket of every group, absent
//! group last, `numeric(20,2)` sums, [`ratio`] for PAR).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgPool, SqlitePool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::as_of::{BUCKETS, Book, Position, bucket_rank, bucket_values, loans_as_of};
use super::exact::{GroupKey, Total, money, ratio};
use super::{Page, PageRequest};
use crate::{QueryError, ReadModelsRef};

/// How a portfolio report is broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Breakdown {
    /// One group, `all`.
    #[default]
    Portfolio,
    /// By loan purpose (the product): `consumer` / `business`.
    Purpose,
    /// By the loan's channel.
    Channel,
    /// By the loan's officer (absent for loans without one).
    Officer,
    /// By the customer's risk grade.
    RiskGrade,
    /// By the customer's value tier.
    ValueTier,
    /// By the customer's risk appetite.
    RiskAppetite,
    /// By the customer's region.
    Region,
}

impl Breakdown {
    pub const ALL: [Breakdown; 8] = [
        Breakdown::Portfolio,
        Breakdown::Purpose,
        Breakdown::Channel,
        Breakdown::Officer,
        Breakdown::RiskGrade,
        Breakdown::ValueTier,
        Breakdown::RiskAppetite,
        Breakdown::Region,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Breakdown::Portfolio => "portfolio",
            Breakdown::Purpose => "purpose",
            Breakdown::Channel => "channel",
            Breakdown::Officer => "officer",
            Breakdown::RiskGrade => "risk_grade",
            Breakdown::ValueTier => "value_tier",
            Breakdown::RiskAppetite => "risk_appetite",
            Breakdown::Region => "region",
        }
    }

    /// Parses a breakdown name; `parameter` names the offending parameter in the error.
    pub fn parse(text: &str, parameter: &str) -> Result<Self, QueryError> {
        Self::ALL
            .into_iter()
            .find(|by| by.as_str() == text)
            .ok_or_else(|| {
                QueryError::invalid(
                    parameter,
                    format!(
                        "unknown breakdown `{text}`; one of {}",
                        Self::ALL.map(Self::as_str).join(", ")
                    ),
                )
            })
    }

    /// The group key over `book b JOIN read_model.customers c`.
    fn group_sql(self) -> &'static str {
        match self {
            Breakdown::Portfolio => "'all'::text",
            Breakdown::Purpose => "b.purpose::text",
            Breakdown::Channel => "b.channel::text",
            Breakdown::Officer => "b.officer_id::text",
            Breakdown::RiskGrade => "c.risk_grade::text",
            Breakdown::ValueTier => "c.value_tier::text",
            Breakdown::RiskAppetite => "c.risk_appetite::text",
            Breakdown::Region => "c.region::text",
        }
    }

    /// The group key of a loan on book and its customer ([`Breakdown::group_sql`]).
    fn group_of(self, position: &Position, customer: &CustomerFacts) -> Option<String> {
        match self {
            Breakdown::Portfolio => Some("all".to_string()),
            Breakdown::Purpose => Some(position.purpose.clone()),
            Breakdown::Channel => Some(position.channel.clone()),
            Breakdown::Officer => position.officer_id.clone(),
            Breakdown::RiskGrade => Some(customer.risk_grade.clone()),
            Breakdown::ValueTier => Some(customer.value_tier.clone()),
            Breakdown::RiskAppetite => Some(customer.risk_appetite.clone()),
            Breakdown::Region => Some(customer.region.clone()),
        }
    }
}

/// The customer columns the delinquency reports join (`read_model.customers c`).
#[derive(Debug, Clone, FromRow)]
pub(crate) struct CustomerFacts {
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub(crate) customer_id: Uuid,
    pub(crate) name: String,
    pub(crate) phone_masked: String,
    pub(crate) risk_grade: String,
    pub(crate) value_tier: String,
    pub(crate) risk_appetite: String,
    pub(crate) region: String,
}

/// The SQLite book through `date` and the customers, read in one transaction.
pub(crate) async fn book_and_customers(
    pool: &SqlitePool,
    through: NaiveDate,
) -> Result<(Book, HashMap<Uuid, CustomerFacts>), QueryError> {
    let mut tx = pool.begin().await?;
    let book = Book::load(&mut tx, through, None).await?;
    let customers: Vec<CustomerFacts> = sqlx::query_as(
        "SELECT customer_id, name, phone_masked, risk_grade, value_tier, risk_appetite, region
           FROM customers",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let customers = customers
        .into_iter()
        .map(|customer| (customer.customer_id, customer))
        .collect();
    Ok((book, customers))
}

/// The positions at `date` whose customer is known, each with its customer
/// (`JOIN read_model.customers c ON c.customer_id = b.customer_id`).
fn with_customers<'a>(
    positions: &'a [Position],
    customers: &'a HashMap<Uuid, CustomerFacts>,
) -> impl Iterator<Item = (&'a Position, &'a CustomerFacts)> {
    positions.iter().filter_map(|position| {
        customers
            .get(&position.customer_id)
            .map(|customer| (position, customer))
    })
}

/// One loan's delinquency as of the report date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct LoanDelinquency {
    pub loan_id: Uuid,
    pub customer_id: Uuid,
    pub purpose: String,
    pub channel: String,
    pub officer_id: Option<String>,
    pub days_past_due: i32,
    pub aging_bucket: String,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub outstanding_principal: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub overdue_amount: Decimal,
}

/// One aging bucket of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct BucketFigures {
    /// The group's key (`all` for the whole portfolio; absent for loans without officer).
    pub group_key: Option<String>,
    pub aging_bucket: String,
    pub loans: i64,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub outstanding_principal: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub overdue_amount: Decimal,
}

/// Portfolio at risk of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct ParFigures {
    pub group_key: Option<String>,
    pub loans: i64,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub outstanding_principal: Decimal,
    /// Outstanding principal of loans more than 1 / 30 / 90 days past due.
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub at_risk_1: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub at_risk_30: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub at_risk_90: Decimal,
    /// at_risk_X ÷ outstanding_principal, half-up to 4 dp.
    #[serde(serialize_with = "crate::reports::fixed::ratio")]
    pub par1: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::ratio")]
    pub par30: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::ratio")]
    pub par90: Decimal,
}

/// One overdue loan in the collection queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct CollectionItem {
    pub loan_id: Uuid,
    pub customer_id: Uuid,
    pub customer_name: String,
    /// Masked (or `erased`), never in clear.
    pub phone_masked: String,
    /// The loan's owner for collection; absent when unassigned.
    pub officer_id: Option<String>,
    pub days_past_due: i32,
    pub aging_bucket: String,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub overdue_amount: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    pub outstanding_principal: Decimal,
    pub last_payment_on: Option<NaiveDate>,
}

impl From<Position> for LoanDelinquency {
    fn from(position: Position) -> Self {
        LoanDelinquency {
            loan_id: position.loan_id,
            customer_id: position.customer_id,
            purpose: position.purpose,
            channel: position.channel,
            officer_id: position.officer_id,
            days_past_due: position.days_past_due,
            aging_bucket: position.aging_bucket.as_str().to_string(),
            outstanding_principal: position.outstanding_principal,
            overdue_amount: position.overdue_amount,
        }
    }
}

/// Every loan on book at `as_of` with its delinquency, ordered by loan id.
pub async fn loan_delinquency<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    as_of: NaiveDate,
    page: PageRequest,
) -> Result<Page<LoanDelinquency>, QueryError> {
    match read_models.into() {
        ReadModelsRef::Postgres(pool) => loan_delinquency_postgres(pool, as_of, page).await,
        ReadModelsRef::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            let book = Book::load(&mut tx, as_of, None).await?;
            tx.commit().await?;
            let mut rows: Vec<LoanDelinquency> = book
                .positions(as_of)?
                .into_iter()
                .map(LoanDelinquency::from)
                .collect();
            rows.sort_by_key(|row| row.loan_id);
            Ok(page.slice(rows))
        }
    }
}

async fn loan_delinquency_postgres(
    pool: &PgPool,
    as_of: NaiveDate,
    page: PageRequest,
) -> Result<Page<LoanDelinquency>, QueryError> {
    let rows = sqlx::query_as(&format!(
        "SELECT loan_id, customer_id, purpose::text AS purpose, channel::text AS channel,
                officer_id::text AS officer_id, days_past_due, aging_bucket,
                outstanding_principal, overdue_amount
           FROM ({}) b ORDER BY loan_id LIMIT $2 OFFSET $3",
        loans_as_of("$1")
    ))
    .bind(as_of)
    .bind(page.sql_limit())
    .bind(page.sql_offset())
    .fetch_all(pool)
    .await?;
    Ok(page.page(rows))
}

/// Loans, outstanding principal and overdue amount per aging bucket at `as_of`, per
/// group of `by`; every bucket is listed for every group (zeros included). Ordered by
/// group (absent last), then bucket from current to 90+.
pub async fn portfolio_buckets<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    as_of: NaiveDate,
    by: Breakdown,
    page: PageRequest,
) -> Result<Page<BucketFigures>, QueryError> {
    match read_models.into() {
        ReadModelsRef::Postgres(pool) => portfolio_buckets_postgres(pool, as_of, by, page).await,
        ReadModelsRef::Sqlite(pool) => {
            let (book, customers) = book_and_customers(pool, as_of).await?;
            let positions = book.positions(as_of)?;
            #[derive(Default, Clone, Copy)]
            struct Tally {
                loans: i64,
                outstanding_principal: Total,
                overdue_amount: Total,
            }
            let mut groups: BTreeMap<GroupKey, [Tally; BUCKETS.len()]> = BTreeMap::new();
            for (position, customer) in with_customers(&positions, &customers) {
                let group = groups
                    .entry(GroupKey(by.group_of(position, customer)))
                    .or_default();
                let tally = group.get_mut(bucket_rank(position.aging_bucket)).ok_or(
                    QueryError::Overflow {
                        what: "an aging bucket",
                    },
                )?;
                tally.loans += 1;
                tally
                    .outstanding_principal
                    .add(position.outstanding_principal)?;
                tally.overdue_amount.add(position.overdue_amount)?;
            }
            let rows = groups
                .into_iter()
                .flat_map(|(GroupKey(group_key), tallies)| {
                    BUCKETS
                        .iter()
                        .zip(tallies)
                        .map(move |(bucket, tally)| BucketFigures {
                            group_key: group_key.clone(),
                            aging_bucket: bucket.as_str().to_string(),
                            loans: tally.loans,
                            outstanding_principal: money(tally.outstanding_principal.value()),
                            overdue_amount: money(tally.overdue_amount.value()),
                        })
                })
                .collect();
            Ok(page.slice(rows))
        }
    }
}

async fn portfolio_buckets_postgres(
    pool: &PgPool,
    as_of: NaiveDate,
    by: Breakdown,
    page: PageRequest,
) -> Result<Page<BucketFigures>, QueryError> {
    let rows = sqlx::query_as(&format!(
        "WITH book AS (
              SELECT {group} AS group_key, b.*
                FROM ({book}) b JOIN read_model.customers c ON c.customer_id = b.customer_id),
              bucket(aging_bucket, rank) AS (VALUES {buckets}),
              grp AS (SELECT DISTINCT group_key FROM book)
         SELECT g.group_key, k.aging_bucket, COUNT(b.loan_id) AS loans,
                COALESCE(SUM(b.outstanding_principal), 0)::numeric(20,2) AS outstanding_principal,
                COALESCE(SUM(b.overdue_amount), 0)::numeric(20,2) AS overdue_amount
           FROM grp g CROSS JOIN bucket k
           LEFT JOIN book b ON b.group_key IS NOT DISTINCT FROM g.group_key
                           AND b.aging_bucket = k.aging_bucket
          GROUP BY g.group_key, k.aging_bucket, k.rank
          ORDER BY g.group_key NULLS LAST, k.rank LIMIT $2 OFFSET $3",
        group = by.group_sql(),
        book = loans_as_of("$1"),
        buckets = bucket_values(),
    ))
    .bind(as_of)
    .bind(page.sql_limit())
    .bind(page.sql_offset())
    .fetch_all(pool)
    .await?;
    Ok(page.page(rows))
}

/// PAR1, PAR30 and PAR90 at `as_of` per group of `by`, ordered by group (absent last).
pub async fn portfolio_at_risk<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    as_of: NaiveDate,
    by: Breakdown,
    page: PageRequest,
) -> Result<Page<ParFigures>, QueryError> {
    match read_models.into() {
        ReadModelsRef::Postgres(pool) => portfolio_at_risk_postgres(pool, as_of, by, page).await,
        ReadModelsRef::Sqlite(pool) => {
            let (book, customers) = book_and_customers(pool, as_of).await?;
            let positions = book.positions(as_of)?;
            #[derive(Default)]
            struct Tally {
                loans: i64,
                outstanding_principal: Total,
                at_risk: [Total; 3],
            }
            let mut groups: BTreeMap<GroupKey, Tally> = BTreeMap::new();
            for (position, customer) in with_customers(&positions, &customers) {
                let tally = groups
                    .entry(GroupKey(by.group_of(position, customer)))
                    .or_default();
                tally.loans += 1;
                tally
                    .outstanding_principal
                    .add(position.outstanding_principal)?;
                for (days, at_risk) in PAR_DAYS.iter().zip(&mut tally.at_risk) {
                    if position.days_past_due > *days {
                        at_risk.add(position.outstanding_principal)?;
                    }
                }
            }
            let mut rows = Vec::with_capacity(groups.len());
            for (GroupKey(group_key), tally) in groups {
                let outstanding = tally.outstanding_principal.value();
                let [at_risk_1, at_risk_30, at_risk_90] = tally.at_risk.map(Total::value);
                let par = |at_risk: Decimal| {
                    ratio(at_risk, outstanding)?.ok_or(QueryError::Overflow {
                        what: "PAR over no outstanding principal",
                    })
                };
                rows.push(ParFigures {
                    group_key,
                    loans: tally.loans,
                    outstanding_principal: money(outstanding),
                    at_risk_1: money(at_risk_1),
                    at_risk_30: money(at_risk_30),
                    at_risk_90: money(at_risk_90),
                    par1: par(at_risk_1)?,
                    par30: par(at_risk_30)?,
                    par90: par(at_risk_90)?,
                });
            }
            Ok(page.slice(rows))
        }
    }
}

/// The X of PAR-X: a loan is at risk when more than X days past due.
const PAR_DAYS: [i32; 3] = [1, 30, 90];

async fn portfolio_at_risk_postgres(
    pool: &PgPool,
    as_of: NaiveDate,
    by: Breakdown,
    page: PageRequest,
) -> Result<Page<ParFigures>, QueryError> {
    let rows = sqlx::query_as(&format!(
        "WITH book AS (
              SELECT {group} AS group_key, b.*
                FROM ({book}) b JOIN read_model.customers c ON c.customer_id = b.customer_id),
              figures AS (
              SELECT group_key, COUNT(*) AS loans,
                     SUM(outstanding_principal) AS outstanding_principal,
                     COALESCE(SUM(outstanding_principal) FILTER (WHERE days_past_due > 1), 0)
                         AS at_risk_1,
                     COALESCE(SUM(outstanding_principal) FILTER (WHERE days_past_due > 30), 0)
                         AS at_risk_30,
                     COALESCE(SUM(outstanding_principal) FILTER (WHERE days_past_due > 90), 0)
                         AS at_risk_90
                FROM book GROUP BY group_key)
         SELECT group_key, loans, outstanding_principal::numeric(20,2) AS outstanding_principal,
                at_risk_1::numeric(20,2) AS at_risk_1, at_risk_30::numeric(20,2) AS at_risk_30,
                at_risk_90::numeric(20,2) AS at_risk_90,
                ROUND(at_risk_1 / outstanding_principal, 4) AS par1,
                ROUND(at_risk_30 / outstanding_principal, 4) AS par30,
                ROUND(at_risk_90 / outstanding_principal, 4) AS par90
           FROM figures
          ORDER BY group_key NULLS LAST LIMIT $2 OFFSET $3",
        group = by.group_sql(),
        book = loans_as_of("$1"),
    ))
    .bind(as_of)
    .bind(page.sql_limit())
    .bind(page.sql_offset())
    .fetch_all(pool)
    .await?;
    Ok(page.page(rows))
}

/// Loans past due at `as_of`, worst first: days past due descending, then overdue
/// amount descending, then loan id.
pub async fn collection_queue<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    as_of: NaiveDate,
    page: PageRequest,
) -> Result<Page<CollectionItem>, QueryError> {
    match read_models.into() {
        ReadModelsRef::Postgres(pool) => collection_queue_postgres(pool, as_of, page).await,
        ReadModelsRef::Sqlite(pool) => {
            let (book, customers) = book_and_customers(pool, as_of).await?;
            let positions = book.positions(as_of)?;
            let mut rows: Vec<CollectionItem> = with_customers(&positions, &customers)
                .filter(|(position, _)| position.days_past_due > 0)
                .map(|(position, customer)| CollectionItem {
                    loan_id: position.loan_id,
                    customer_id: position.customer_id,
                    customer_name: customer.name.clone(),
                    phone_masked: customer.phone_masked.clone(),
                    officer_id: position.officer_id.clone(),
                    days_past_due: position.days_past_due,
                    aging_bucket: position.aging_bucket.as_str().to_string(),
                    overdue_amount: position.overdue_amount,
                    outstanding_principal: position.outstanding_principal,
                    last_payment_on: position.last_payment_on,
                })
                .collect();
            rows.sort_by(|a, b| {
                b.days_past_due
                    .cmp(&a.days_past_due)
                    .then_with(|| b.overdue_amount.cmp(&a.overdue_amount))
                    .then_with(|| a.loan_id.cmp(&b.loan_id))
            });
            Ok(page.slice(rows))
        }
    }
}

async fn collection_queue_postgres(
    pool: &PgPool,
    as_of: NaiveDate,
    page: PageRequest,
) -> Result<Page<CollectionItem>, QueryError> {
    let rows = sqlx::query_as(&format!(
        "SELECT b.loan_id, b.customer_id, c.name AS customer_name, c.phone_masked,
                b.officer_id::text AS officer_id, b.days_past_due, b.aging_bucket,
                b.overdue_amount, b.outstanding_principal, b.last_payment_on
           FROM ({}) b JOIN read_model.customers c ON c.customer_id = b.customer_id
          WHERE b.days_past_due > 0
          ORDER BY b.days_past_due DESC, b.overdue_amount DESC, b.loan_id
          LIMIT $2 OFFSET $3",
        loans_as_of("$1")
    ))
    .bind(as_of)
    .bind(page.sql_limit())
    .bind(page.sql_offset())
    .fetch_all(pool)
    .await?;
    Ok(page.page(rows))
}
