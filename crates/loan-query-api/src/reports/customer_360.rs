//! Customer 360: everything the read model knows about one customer — profile (sensitive
//! fields only ever masked, or `erased` after crypto-shredding), credit score history,
//! risk grade, value tier, segments, every loan with its position, the follow-up
//! timeline and the reasons of every decision.
//!
//! The parts are read by a few statements inside one read-only `REPEATABLE READ`
//! transaction (in SQLite: one read transaction), so they describe the same instant even
//! while projectors write. The statements are the same on both databases ([`Dialect`])
//! except the loans': over SQLite their delinquency as of the report date comes from
//! [`Book::positions`] of the customer's loans.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgPool, SqlitePool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Dialect;
use super::as_of::{Book, loans_as_of_scoped};
use super::segmentation::{CustomerSegment, customer_segments_sql};
use crate::{QueryError, ReadModelsRef};

/// The customer's profile as projected. `phone_masked`, `national_id_masked` and
/// `bank_card_masked` hold masked text, or `erased` once the customer was erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct CustomerProfile {
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub customer_id: Uuid,
    pub name: String,
    pub gender: String,
    pub birth_date: NaiveDate,
    pub region: String,
    pub channel: String,
    pub employer: Option<String>,
    pub risk_appetite: String,
    pub phone_masked: String,
    pub national_id_masked: String,
    pub bank_card_masked: String,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub monthly_income: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub monthly_debt_payments: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub total_assets: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub total_liabilities: Decimal,
    pub registered_on: NaiveDate,
    pub identity_verified_on: Option<NaiveDate>,
    pub identity_method: Option<String>,
    pub credit_score: Option<i32>,
    pub credit_score_source: Option<String>,
    pub credit_assessed_on: Option<NaiveDate>,
    pub risk_grade: Option<String>,
    pub value_tier: Option<String>,
    pub segment_rules_version: Option<String>,
    pub erased: bool,
    pub erased_on: Option<NaiveDate>,
    /// True while the customer is quarantined by the projector (figures may lag).
    pub stale: bool,
    pub stale_reason: Option<String>,
}

/// One credit assessment, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct CreditScore {
    pub assessed_on: NaiveDate,
    pub score: i32,
    pub source: String,
}

/// One of the customer's loans. Balances, next due, total repaid and last payment are
/// the current position as recorded; `days_past_due`, `aging_bucket` and
/// `overdue_amount` are computed as of the report date and absent when the loan is not
/// on book then (not disbursed yet, repaid or written off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct CustomerLoan {
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub loan_id: Uuid,
    pub status: String,
    pub purpose: String,
    pub channel: String,
    pub officer_id: Option<String>,
    pub currency: String,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub requested_amount: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money_opt")]
    #[sqlx(try_from = "super::stored::Money<Option<Decimal>>")]
    pub approved_amount: Option<Decimal>,
    #[serde(serialize_with = "crate::reports::fixed::money_opt")]
    #[sqlx(try_from = "super::stored::Money<Option<Decimal>>")]
    pub principal: Option<Decimal>,
    #[sqlx(try_from = "super::stored::Stored<Option<Decimal>>")]
    pub annual_rate: Option<Decimal>,
    pub term_months: i32,
    pub disbursed_on: Option<NaiveDate>,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub outstanding_principal: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub outstanding_interest: Decimal,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub outstanding_penalty: Decimal,
    pub next_due_date: Option<NaiveDate>,
    #[serde(serialize_with = "crate::reports::fixed::money_opt")]
    #[sqlx(try_from = "super::stored::Money<Option<Decimal>>")]
    pub next_due_amount: Option<Decimal>,
    #[serde(serialize_with = "crate::reports::fixed::money")]
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub total_repaid: Decimal,
    pub last_payment_on: Option<NaiveDate>,
    #[serde(serialize_with = "crate::reports::fixed::money_opt")]
    #[sqlx(try_from = "super::stored::Money<Option<Decimal>>")]
    pub last_payment_amount: Option<Decimal>,
    pub days_past_due: Option<i32>,
    pub aging_bucket: Option<String>,
    #[serde(serialize_with = "crate::reports::fixed::money_opt")]
    #[sqlx(try_from = "super::stored::Money<Option<Decimal>>")]
    pub overdue_amount: Option<Decimal>,
    pub stale: bool,
}

/// One entry of the follow-up timeline (every event of the customer's loans, in log
/// order).
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, ToSchema)]
pub struct TimelineEntry {
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub loan_id: Uuid,
    pub position: i64,
    pub event_type: String,
    pub business_date: Option<NaiveDate>,
    pub recorded_at: DateTime<Utc>,
    pub actor_id: String,
    pub summary: String,
    #[schema(value_type = Object)]
    #[sqlx(try_from = "super::stored::Stored<serde_json::Value>")]
    pub details: serde_json::Value,
}

/// A decision on one of the customer's applications and the rule findings behind it.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, ToSchema)]
pub struct DecisionReasons {
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub loan_id: Uuid,
    pub decided_on: NaiveDate,
    /// Policy version of an automated decision; absent for an underwriter's.
    pub rule_set_version: Option<String>,
    /// `policy` or `underwriter`.
    pub decided_by: String,
    pub outcome: String,
    /// The rule findings, as recorded by the decision.
    #[schema(value_type = Vec<Object>)]
    #[sqlx(try_from = "super::stored::Stored<serde_json::Value>")]
    pub reasons: serde_json::Value,
}

/// The whole customer 360.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Customer360 {
    /// The date `days_past_due`, `aging_bucket` and `overdue_amount` are computed for.
    pub as_of: NaiveDate,
    pub profile: CustomerProfile,
    pub credit_scores: Vec<CreditScore>,
    pub segments: Vec<CustomerSegment>,
    pub loans: Vec<CustomerLoan>,
    pub timeline: Vec<TimelineEntry>,
    pub decisions: Vec<DecisionReasons>,
}

/// The 360 of `customer_id` with delinquency as of `as_of`; [`QueryError::NotFound`] for
/// a customer the read model does not hold.
pub async fn customer_360<'a>(
    read_models: impl Into<ReadModelsRef<'a>>,
    customer_id: Uuid,
    as_of: NaiveDate,
) -> Result<Customer360, QueryError> {
    match read_models.into() {
        ReadModelsRef::Postgres(pool) => customer_360_postgres(pool, customer_id, as_of).await,
        ReadModelsRef::Sqlite(pool) => customer_360_sqlite(pool, customer_id, as_of).await,
    }
}

/// The statements both databases run, with `$1`/`?1` the customer.
struct Statements {
    profile: String,
    credit_scores: String,
    segments: String,
    timeline: String,
    decisions: String,
}

impl Statements {
    fn new(dialect: Dialect) -> Statements {
        let table = |name: &str| dialect.table(name);
        let customer = dialect.param(1);
        Statements {
            profile: format!(
                "SELECT customer_id, name, gender, birth_date, region, channel, employer, risk_appetite,
                phone_masked, national_id_masked, bank_card_masked,
                monthly_income, monthly_debt_payments, total_assets, total_liabilities,
                registered_on, identity_verified_on, identity_method,
                credit_score, credit_score_source, credit_assessed_on,
                risk_grade, value_tier, segment_rules_version, erased, erased_on,
                stale, stale_reason
           FROM {} WHERE customer_id = {customer}",
                table("customers")
            ),
            credit_scores: format!(
                "SELECT assessed_on, score, source FROM {}
          WHERE customer_id = {customer} ORDER BY assessed_on, position",
                table("credit_scores")
            ),
            segments: format!(
                "SELECT customer_id, dimension, value FROM ({}) s WHERE customer_id = {customer}
          ORDER BY dimension, value",
                customer_segments_sql(dialect)
            ),
            timeline: format!(
                "SELECT t.loan_id, t.position, t.event_type, t.business_date, t.recorded_at,
                {} AS actor_id, t.summary, t.details
           FROM {} t
           JOIN {} l ON l.loan_id = t.loan_id
          WHERE l.customer_id = {customer}
          ORDER BY t.position, t.loan_id, t.version",
                dialect.text("t.actor_id"),
                table("loan_timeline"),
                table("loans")
            ),
            decisions: format!(
                "SELECT d.loan_id, d.decided_on, d.rule_set_version, d.decided_by, d.outcome, d.reasons
           FROM {} d
           JOIN {} l ON l.loan_id = d.loan_id
          WHERE l.customer_id = {customer}
          ORDER BY d.position, d.loan_id",
                table("decisions"),
                table("loans")
            ),
        }
    }
}

fn not_found(customer_id: Uuid) -> QueryError {
    QueryError::NotFound {
        what: "customer",
        id: customer_id.to_string(),
    }
}

async fn customer_360_sqlite(
    pool: &SqlitePool,
    customer_id: Uuid,
    as_of: NaiveDate,
) -> Result<Customer360, QueryError> {
    let statements = Statements::new(Dialect::Sqlite);
    let id = customer_id.hyphenated().to_string();
    let mut tx = pool.begin().await?;
    let profile: Option<CustomerProfile> = sqlx::query_as(&statements.profile)
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(profile) = profile else {
        return Err(not_found(customer_id));
    };
    let credit_scores = sqlx::query_as(&statements.credit_scores)
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
    let segments = sqlx::query_as(&statements.segments)
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
    let mut loans: Vec<CustomerLoan> = sqlx::query_as(
        "SELECT l.loan_id, l.status, l.purpose, l.channel, l.officer_id,
                l.currency, l.requested_amount, l.approved_amount, l.principal, l.annual_rate,
                l.term_months, l.disbursed_on, l.outstanding_principal, l.outstanding_interest,
                l.outstanding_penalty, l.next_due_date, l.next_due_amount, l.total_repaid,
                l.last_payment_on, l.last_payment_amount,
                NULL AS days_past_due, NULL AS aging_bucket, NULL AS overdue_amount, l.stale
           FROM loans l
          WHERE l.customer_id = ?1
          ORDER BY l.captured_on, l.loan_id",
    )
    .bind(&id)
    .fetch_all(&mut *tx)
    .await?;
    let book = Book::load(&mut tx, as_of, Some(customer_id)).await?;
    let timeline = sqlx::query_as(&statements.timeline)
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
    let decisions = sqlx::query_as(&statements.decisions)
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;

    for position in book.positions(as_of)? {
        if let Some(loan) = loans
            .iter_mut()
            .find(|loan| loan.loan_id == position.loan_id)
        {
            loan.days_past_due = Some(position.days_past_due);
            loan.aging_bucket = Some(position.aging_bucket.as_str().to_string());
            loan.overdue_amount = Some(position.overdue_amount);
        }
    }
    Ok(Customer360 {
        as_of,
        profile,
        credit_scores,
        segments,
        loans,
        timeline,
        decisions,
    })
}

async fn customer_360_postgres(
    pool: &PgPool,
    customer_id: Uuid,
    as_of: NaiveDate,
) -> Result<Customer360, QueryError> {
    let statements = Statements::new(Dialect::Postgres);
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;

    let profile: Option<CustomerProfile> = sqlx::query_as(&statements.profile)
        .bind(customer_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(profile) = profile else {
        return Err(not_found(customer_id));
    };

    let credit_scores = sqlx::query_as(&statements.credit_scores)
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await?;

    let segments = sqlx::query_as(&statements.segments)
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await?;
    let loans = sqlx::query_as(&format!(
        "SELECT l.loan_id, l.status, l.purpose, l.channel, l.officer_id::text AS officer_id,
                l.currency, l.requested_amount, l.approved_amount, l.principal, l.annual_rate,
                l.term_months, l.disbursed_on, l.outstanding_principal, l.outstanding_interest,
                l.outstanding_penalty, l.next_due_date, l.next_due_amount, l.total_repaid,
                l.last_payment_on, l.last_payment_amount,
                book.days_past_due, book.aging_bucket, book.overdue_amount, l.stale
           FROM read_model.loans l
           LEFT JOIN ({}) book ON book.loan_id = l.loan_id
          WHERE l.customer_id = $1
          ORDER BY l.captured_on, l.loan_id",
        loans_as_of_scoped(
            "$2",
            Some("SELECT loan_id FROM read_model.loans WHERE customer_id = $1")
        )
    ))
    .bind(customer_id)
    .bind(as_of)
    .fetch_all(&mut *tx)
    .await?;

    let timeline = sqlx::query_as(&statements.timeline)
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await?;

    let decisions = sqlx::query_as(&statements.decisions)
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;

    Ok(Customer360 {
        as_of,
        profile,
        credit_scores,
        segments,
        loans,
        timeline,
        decisions,
    })
}
