//! A loan's delinquency position *as of* a report date D, "as now known": the one
//! definition every delinquency report uses, in SQL for PostgreSQL ([`loans_as_of`]) and
//! mirrored in Rust for the embedded SQLite read models ([`Book::positions`]).
//!
//! The projector keeps installment-level data (`installments.settled_on`, the
//! `allocations` of every counted payment by value date), so any past date can be
//! reported exactly, including payments recorded late with an earlier value date. The
//! rules (docs/query-api.md, "As-of delinquency"):
//!
//! * on book at D: `disbursed_on ≤ D`, not written off on or before D, and outstanding
//!   principal at D > 0;
//! * outstanding principal at D = principal − principal allocated with `value_date ≤ D`;
//! * days past due at D = D − the oldest due date among installments due before D and
//!   not settled on or before D (0 if none); the aging bucket follows
//!   [`AgingBucket::for_days_past_due`];
//! * overdue amount at D = Σ over installments due before D of principal + interest due
//!   minus principal + interest allocated with `value_date ≤ D`.
//!
//! Every delinquency report selects from [`loans_as_of`] (PostgreSQL) or computes from
//! [`Book::positions`] (SQLite), so they agree by construction. The Rust definition
//! follows the SQL clause by clause (NULL principal keeps a loan off book, allocations
//! to an unknown installment count for the principal but not the overdue amount, the
//! overdue amount is cast to `numeric(20,2)`); the test suite compares both on the same
//! rows at many dates.

use std::collections::HashMap;

use chrono::NaiveDate;
use loan_domain::servicing::AgingBucket;
use rust_decimal::Decimal;
use sqlx::{FromRow, SqliteConnection};
use uuid::Uuid;

use super::exact::{Total, money};
use crate::QueryError;

/// The aging buckets in report order (best to worst).
pub const BUCKETS: [AgingBucket; 5] = [
    AgingBucket::Current,
    AgingBucket::Dpd1To30,
    AgingBucket::Dpd31To60,
    AgingBucket::Dpd61To90,
    AgingBucket::Dpd90Plus,
];

/// `CASE` expression naming the aging bucket of the days-past-due expression `days`, with
/// the names of [`AgingBucket::as_str`] and the bounds of
/// [`AgingBucket::for_days_past_due`].
pub(crate) fn bucket_case(days: &str) -> String {
    format!(
        "CASE WHEN {days} <= 0 THEN '{}' WHEN {days} <= 30 THEN '{}' WHEN {days} <= 60 THEN '{}' \
         WHEN {days} <= 90 THEN '{}' ELSE '{}' END",
        AgingBucket::Current.as_str(),
        AgingBucket::Dpd1To30.as_str(),
        AgingBucket::Dpd31To60.as_str(),
        AgingBucket::Dpd61To90.as_str(),
        AgingBucket::Dpd90Plus.as_str(),
    )
}

/// `VALUES` rows `(bucket, rank)` of every bucket, for reports that list empty buckets too.
pub(crate) fn bucket_values() -> String {
    BUCKETS
        .iter()
        .enumerate()
        .map(|(rank, bucket)| format!("('{}', {rank})", bucket.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `SELECT` of every loan on book at the date bound to placeholder `date` (e.g. `$1`),
/// with columns `loan_id, customer_id, purpose, channel, officer_id, disbursed_on,
/// outstanding_principal, days_past_due (int4), aging_bucket, overdue_amount,
/// last_payment_on` (the latest value date ≤ D of a counted payment).
///
/// Allocations are aggregated once per loan and per installment (hash aggregates), which
/// is several times faster over a whole portfolio than correlated subqueries per loan.
pub(crate) fn loans_as_of(date: &str) -> String {
    loans_as_of_scoped(date, None)
}

/// [`loans_as_of`] restricted to the loans whose id the subquery `scope` returns (e.g.
/// one customer's), so the aggregates read only their rows.
pub(crate) fn loans_as_of_scoped(date: &str, scope: Option<&str>) -> String {
    let bucket = bucket_case("position.days_past_due");
    let within = |column: &str| match scope {
        Some(scope) => format!("AND {column} IN ({scope})"),
        None => String::new(),
    };
    let (loans, allocations, installments) = (
        within("l.loan_id"),
        within("a.loan_id"),
        within("i.loan_id"),
    );
    format!(
        "SELECT position.*, {bucket} AS aging_bucket FROM (
           SELECT l.loan_id, l.customer_id, l.purpose, l.channel, l.officer_id, l.disbursed_on,
                  l.principal - COALESCE(paid.principal, 0) AS outstanding_principal,
                  COALESCE({date}::date - arrears.oldest_unsettled_due, 0)::int4 AS days_past_due,
                  COALESCE(arrears.overdue_amount, 0)::numeric(20,2) AS overdue_amount,
                  paid.last_payment_on
             FROM read_model.loans l
             LEFT JOIN (
                  SELECT a.loan_id, SUM(a.principal) AS principal,
                         MAX(a.value_date) AS last_payment_on
                    FROM read_model.allocations a
                   WHERE a.value_date <= {date}::date {allocations}
                   GROUP BY a.loan_id
             ) paid ON paid.loan_id = l.loan_id
             LEFT JOIN (
                  SELECT i.loan_id,
                         MIN(i.due_date) FILTER (
                             WHERE i.settled_on IS NULL OR i.settled_on > {date}::date
                         ) AS oldest_unsettled_due,
                         SUM(i.principal_due + i.interest_due - COALESCE(settled.paid, 0))
                             AS overdue_amount
                    FROM read_model.installments i
                    LEFT JOIN (
                         SELECT a.loan_id, a.installment_no,
                                SUM(a.principal + a.interest) AS paid
                           FROM read_model.allocations a
                          WHERE a.value_date <= {date}::date {allocations}
                          GROUP BY a.loan_id, a.installment_no
                    ) settled ON settled.loan_id = i.loan_id
                             AND settled.installment_no = i.installment_no
                   WHERE i.due_date < {date}::date {installments}
                   GROUP BY i.loan_id
             ) arrears ON arrears.loan_id = l.loan_id
            WHERE l.disbursed_on <= {date}::date
              AND (l.written_off_on IS NULL OR l.written_off_on > {date}::date)
              AND l.principal - COALESCE(paid.principal, 0) > 0 {loans}
         ) position"
    )
}

/// The aging bucket of `days` past due, as the `CASE` of [`bucket_case`].
pub(crate) fn bucket_for(days: i32) -> AgingBucket {
    match days {
        ..=0 => AgingBucket::Current,
        1..=30 => AgingBucket::Dpd1To30,
        31..=60 => AgingBucket::Dpd31To60,
        61..=90 => AgingBucket::Dpd61To90,
        _ => AgingBucket::Dpd90Plus,
    }
}

/// Rank of a bucket in report order (the `rank` of [`bucket_values`]).
pub(crate) fn bucket_rank(bucket: AgingBucket) -> usize {
    BUCKETS
        .iter()
        .position(|known| *known == bucket)
        .unwrap_or(BUCKETS.len())
}

/// The columns of `loans` a position needs.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct LoanTerms {
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub(crate) loan_id: Uuid,
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub(crate) customer_id: Uuid,
    pub(crate) purpose: String,
    pub(crate) channel: String,
    pub(crate) officer_id: Option<String>,
    #[sqlx(try_from = "super::stored::Money<Option<Decimal>>")]
    pub(crate) principal: Option<Decimal>,
    pub(crate) disbursed_on: Option<NaiveDate>,
    pub(crate) written_off_on: Option<NaiveDate>,
}

/// One installment of a loan's schedule.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct Installment {
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub(crate) loan_id: Uuid,
    pub(crate) installment_no: i32,
    pub(crate) due_date: NaiveDate,
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub(crate) principal_due: Decimal,
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub(crate) interest_due: Decimal,
    pub(crate) settled_on: Option<NaiveDate>,
}

/// What one counted payment allocated to one installment.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct Allocation {
    #[sqlx(try_from = "super::stored::Stored<Uuid>")]
    pub(crate) loan_id: Uuid,
    pub(crate) value_date: NaiveDate,
    pub(crate) installment_no: i32,
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub(crate) principal: Decimal,
    #[sqlx(try_from = "super::stored::Money<Decimal>")]
    pub(crate) interest: Decimal,
}

/// A loan on book at a report date: the columns of [`loans_as_of`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) loan_id: Uuid,
    pub(crate) customer_id: Uuid,
    pub(crate) purpose: String,
    pub(crate) channel: String,
    pub(crate) officer_id: Option<String>,
    pub(crate) disbursed_on: NaiveDate,
    pub(crate) outstanding_principal: Decimal,
    pub(crate) days_past_due: i32,
    pub(crate) aging_bucket: AgingBucket,
    pub(crate) overdue_amount: Decimal,
    pub(crate) last_payment_on: Option<NaiveDate>,
}

/// The installment-level rows of the disbursed loans up to a date, read from the SQLite
/// read models in one transaction, from which positions at that date or any earlier one
/// are computed.
#[derive(Debug, Default)]
pub(crate) struct Book {
    loans: Vec<LoanTerms>,
    installments: HashMap<Uuid, Vec<Installment>>,
    allocations: HashMap<Uuid, Vec<Allocation>>,
}

impl Book {
    /// Reads every loan disbursed on or before `through` (only `customer`'s when given),
    /// their installments due before `through` and their allocations value-dated on or
    /// before it. Dates are `YYYY-MM-DD` text, so text comparison is date order.
    pub(crate) async fn load(
        connection: &mut SqliteConnection,
        through: NaiveDate,
        customer: Option<Uuid>,
    ) -> Result<Book, QueryError> {
        let customer = customer.map(|id| id.hyphenated().to_string());
        let loans: Vec<LoanTerms> = sqlx::query_as(
            "SELECT loan_id, customer_id, purpose, channel, officer_id, principal, disbursed_on,
                    written_off_on
               FROM loans
              WHERE disbursed_on IS NOT NULL AND disbursed_on <= ?1
                AND (?2 IS NULL OR customer_id = ?2)",
        )
        .bind(through)
        .bind(&customer)
        .fetch_all(&mut *connection)
        .await?;
        let installments: Vec<Installment> = sqlx::query_as(
            "SELECT i.loan_id, i.installment_no, i.due_date, i.principal_due, i.interest_due,
                    i.settled_on
               FROM installments i
              WHERE i.due_date < ?1
                AND (?2 IS NULL OR i.loan_id IN (SELECT loan_id FROM loans WHERE customer_id = ?2))",
        )
        .bind(through)
        .bind(&customer)
        .fetch_all(&mut *connection)
        .await?;
        let allocations: Vec<Allocation> = sqlx::query_as(
            "SELECT a.loan_id, a.value_date, a.installment_no, a.principal, a.interest
               FROM allocations a
              WHERE a.value_date <= ?1
                AND (?2 IS NULL OR a.loan_id IN (SELECT loan_id FROM loans WHERE customer_id = ?2))",
        )
        .bind(through)
        .bind(&customer)
        .fetch_all(&mut *connection)
        .await?;
        let mut book = Book {
            loans,
            ..Book::default()
        };
        for installment in installments {
            book.installments
                .entry(installment.loan_id)
                .or_default()
                .push(installment);
        }
        for allocation in allocations {
            book.allocations
                .entry(allocation.loan_id)
                .or_default()
                .push(allocation);
        }
        Ok(book)
    }

    /// The loans read.
    pub(crate) fn loans(&self) -> &[LoanTerms] {
        &self.loans
    }

    /// The installments read of `loan`.
    pub(crate) fn installments(&self, loan: Uuid) -> &[Installment] {
        self.installments.get(&loan).map_or(&[], Vec::as_slice)
    }

    /// Every loan on book at `date` (not after the `through` date of [`Book::load`]) with
    /// its position, in no particular order — [`loans_as_of`] in Rust.
    pub(crate) fn positions(&self, date: NaiveDate) -> Result<Vec<Position>, QueryError> {
        let mut positions = Vec::new();
        for loan in &self.loans {
            if let Some(position) = self.position(loan, date)? {
                positions.push(position);
            }
        }
        Ok(positions)
    }

    fn position(&self, loan: &LoanTerms, date: NaiveDate) -> Result<Option<Position>, QueryError> {
        // WHERE l.disbursed_on <= D AND (l.written_off_on IS NULL OR l.written_off_on > D)
        let Some(disbursed_on) = loan.disbursed_on.filter(|on| *on <= date) else {
            return Ok(None);
        };
        if loan.written_off_on.is_some_and(|on| on <= date) {
            return Ok(None);
        }
        // paid: SUM(a.principal), MAX(a.value_date) over allocations value-dated <= D;
        // settled: SUM(a.principal + a.interest) per installment, same allocations.
        let mut paid_principal: Option<Total> = None;
        let mut last_payment_on: Option<NaiveDate> = None;
        let mut settled: HashMap<i32, Total> = HashMap::new();
        for allocation in self.allocations.get(&loan.loan_id).into_iter().flatten() {
            if allocation.value_date > date {
                continue;
            }
            paid_principal
                .get_or_insert_with(Total::default)
                .add(allocation.principal)?;
            last_payment_on = last_payment_on.max(Some(allocation.value_date));
            let paid = allocation
                .principal
                .checked_add(allocation.interest)
                .ok_or(QueryError::Overflow { what: "a payment" })?;
            settled
                .entry(allocation.installment_no)
                .or_default()
                .add(paid)?;
        }
        // l.principal - COALESCE(paid.principal, 0) > 0 (NULL principal: not on book).
        let Some(principal) = loan.principal else {
            return Ok(None);
        };
        let outstanding_principal = principal
            .checked_sub(paid_principal.unwrap_or_default().value())
            .ok_or(QueryError::Overflow {
                what: "an outstanding principal",
            })?;
        if outstanding_principal <= Decimal::ZERO {
            return Ok(None);
        }
        // arrears over installments due before D: the oldest not settled on or before D,
        // and SUM(principal_due + interest_due - COALESCE(settled.paid, 0)).
        let mut oldest_unsettled_due: Option<NaiveDate> = None;
        let mut overdue: Option<Total> = None;
        for installment in self.installments(loan.loan_id) {
            if installment.due_date >= date {
                continue;
            }
            if installment.settled_on.is_none_or(|on| on > date) {
                oldest_unsettled_due = Some(match oldest_unsettled_due {
                    Some(oldest) => oldest.min(installment.due_date),
                    None => installment.due_date,
                });
            }
            let paid = settled
                .get(&installment.installment_no)
                .copied()
                .unwrap_or_default()
                .value();
            let owed = installment
                .principal_due
                .checked_add(installment.interest_due)
                .and_then(|due| due.checked_sub(paid))
                .ok_or(QueryError::Overflow {
                    what: "an overdue amount",
                })?;
            overdue.get_or_insert_with(Total::default).add(owed)?;
        }
        // COALESCE(D - oldest_unsettled_due, 0)::int4
        let days_past_due = match oldest_unsettled_due {
            Some(oldest) => {
                i32::try_from((date - oldest).num_days()).map_err(|_| QueryError::Overflow {
                    what: "days past due",
                })?
            }
            None => 0,
        };
        Ok(Some(Position {
            loan_id: loan.loan_id,
            customer_id: loan.customer_id,
            purpose: loan.purpose.clone(),
            channel: loan.channel.clone(),
            officer_id: loan.officer_id.clone(),
            disbursed_on,
            outstanding_principal,
            days_past_due,
            aging_bucket: bucket_for(days_past_due),
            // COALESCE(arrears.overdue_amount, 0)::numeric(20,2)
            overdue_amount: money(overdue.unwrap_or_default().value()),
            last_payment_on,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rust_buckets_are_the_sql_case_and_the_domain_bounds() {
        for days in 0..=400_u32 {
            let signed = i32::try_from(days).unwrap();
            assert_eq!(
                bucket_for(signed),
                AgingBucket::for_days_past_due(days),
                "{days}"
            );
        }
        let case = bucket_case("d");
        for (bound, bucket) in [
            (0, "current"),
            (30, "dpd_1_to_30"),
            (60, "dpd_31_to_60"),
            (90, "dpd_61_to_90"),
        ] {
            assert!(
                case.contains(&format!("WHEN d <= {bound} THEN '{bucket}'")),
                "{case}"
            );
            assert_eq!(bucket_for(bound).as_str(), bucket);
            assert_ne!(bucket_for(bound + 1).as_str(), bucket);
        }
        assert_eq!(bucket_rank(AgingBucket::Dpd90Plus), 4);
    }

    #[test]
    fn bucket_values_list_every_bucket_in_order() {
        assert_eq!(
            bucket_values(),
            "('current', 0), ('dpd_1_to_30', 1), ('dpd_31_to_60', 2), ('dpd_61_to_90', 3), \
             ('dpd_90_plus', 4)"
        );
    }
}
