//! A loan's delinquency position *as of* a report date D, "as now known", in SQL.
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
//! Every delinquency report selects from [`loans_as_of`], so they agree by construction.

use loan_domain::servicing::AgingBucket;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_values_list_every_bucket_in_order() {
        assert_eq!(
            bucket_values(),
            "('current', 0), ('dpd_1_to_30', 1), ('dpd_31_to_60', 2), ('dpd_61_to_90', 3), \
             ('dpd_90_plus', 4)"
        );
    }
}
