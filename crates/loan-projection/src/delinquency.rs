//! The delinquency group: installment-level data (`installments`, `allocations`) from
//! which days past due, aging, overdue amounts and roll rates are computed for ANY
//! report date, not frozen at event time.
//!
//! Each disbursed loan's domain state (its book: schedule, counted payments, recorded
//! position) is advanced with the domain's `evolve`. Whenever a money event moves a loan,
//! its rows are recomputed whole by the domain's servicing functions:
//!
//! * installment positions: the recorded position (`Account::position`);
//! * allocations: `compute_position` over every counted payment, in value-date order, as
//!   now known (a backdated payment or a reversal restates later allocations);
//! * `settled_on`: the first payment value date `V` on which the installment is
//!   `fully_paid` by the position as of `V`, read off the same allocation pass (payments
//!   are allocated in value-date order; penalty stops accruing once principal is paid).

use std::sync::Arc;

use chrono::NaiveDate;
use loan_contract::EventEnvelope;
use loan_domain::loan::{Account, Loan, LoanEvent};
use loan_domain::servicing;
use rust_decimal::Decimal;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::schema::ident;
use crate::sql::upsert;
use crate::view::{Poison, evolve_loan, loan_event, to_i32};

/// A loan as the delinquency group knows it.
#[derive(Debug, Clone)]
pub(crate) struct BookView {
    pub(crate) loan_id: Uuid,
    pub(crate) loan: Loan,
    pub(crate) version: u64,
    pub(crate) last_position: u64,
    /// Whether the last applied commit changed the book (its rows must be rewritten).
    pub(crate) book_changed: bool,
    /// The rows of the book as last computed (after the last commit that changed it).
    rows: Option<Arc<LoanRows>>,
    /// The rows as the database holds them (set when a batch commits): a batch writes
    /// only the difference — a repayment touches one or two installments and adds a few
    /// allocations; a whole loan is rewritten only when a restatement moved earlier
    /// allocations (a backdated payment, a reversal).
    written: Option<Arc<LoanRows>>,
}

impl BookView {
    pub(crate) fn new(loan_id: Uuid) -> Self {
        BookView {
            loan_id,
            loan: Loan::NotCaptured,
            version: 0,
            last_position: 0,
            book_changed: false,
            rows: None,
            written: None,
        }
    }

    /// The batch that wrote this view's rows committed.
    pub(crate) fn committed(&mut self) {
        self.written.clone_from(&self.rows);
    }

    pub(crate) fn apply(&mut self, position: u64, events: &[EventEnvelope]) -> Result<(), Poison> {
        self.book_changed = false;
        for envelope in events {
            let event = loan_event(envelope)?;
            self.loan = evolve_loan(&self.loan, event)?;
            if matches!(
                event,
                LoanEvent::LoanDisbursed { .. }
                    | LoanEvent::RepaymentRecorded { .. }
                    | LoanEvent::RepaymentReversed { .. }
                    | LoanEvent::PenaltyAccrued { .. }
            ) {
                self.book_changed = true;
            }
            self.version = envelope.meta.version;
        }
        if let (true, Some(account)) = (self.book_changed, self.loan.account()) {
            let rows = rows_of(account).map_err(|error| {
                Poison::new(
                    None,
                    format!("the loan's position cannot be computed: {error}"),
                )
            })?;
            self.rows = Some(Arc::new(rows));
        }
        self.last_position = position;
        Ok(())
    }
}

/// The rows of one loan, computed by the domain.
#[derive(Debug, PartialEq)]
pub(crate) struct LoanRows {
    installments: Vec<(u32, NaiveDate, [Decimal; 6], Option<NaiveDate>)>,
    allocations: Vec<(String, NaiveDate, u32, [Decimal; 3])>,
}

fn rows_of(account: &Account) -> Result<LoanRows, servicing::ServicingError> {
    // Allocations as now known: every counted payment, in value-date order.
    let position = account.position_as_of(&account.payments, account.position_date)?;
    let mut allocations = Vec::new();
    for (index, splits) in &position.allocations {
        let Some(payment) = account.payments.get(*index) else {
            continue;
        };
        for split in splits {
            allocations.push((
                payment.reference.clone(),
                payment.value_date,
                split.installment,
                [
                    split.principal.amount(),
                    split.interest.amount(),
                    split.penalty.amount(),
                ],
            ));
        }
    }
    // settled_on: the first payment value date on which fully_paid holds, read off the
    // same allocation pass. Payments are applied in value-date order, so the running sums
    // after the payments of date V are the position as of V; penalty accrues only on
    // unpaid principal, so once an installment's principal is paid its accrued penalty
    // no longer grows and the final `penalty_accrued` is the one as of V. One pass
    // (payments × installments) instead of one position per value date.
    let count = account.schedule.installments.len();
    let mut settled: Vec<Option<NaiveDate>> = vec![None; count];
    let mut paid = vec![[Decimal::ZERO; 3]; count];
    for (index, splits) in &position.allocations {
        let Some(payment) = account.payments.get(*index) else {
            continue;
        };
        for split in splits {
            let Some(slot) = usize::try_from(split.installment)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .filter(|&i| i < count)
            else {
                continue;
            };
            let sums = &mut paid[slot];
            sums[0] += split.principal.amount();
            sums[1] += split.interest.amount();
            sums[2] += split.penalty.amount();
            let installment = &account.schedule.installments[slot];
            let at = &position.installments[slot];
            if settled[slot].is_none()
                && sums[0] >= installment.principal.amount()
                && sums[1] >= installment.interest.amount()
                && sums[2] >= at.penalty_accrued.amount()
            {
                settled[slot] = Some(payment.value_date);
            }
        }
    }
    let installments = account
        .schedule
        .installments
        .iter()
        .zip(&account.position)
        .zip(settled)
        .map(|((installment, at), settled_on)| {
            (
                installment.number,
                installment.due_date,
                [
                    installment.principal.amount(),
                    installment.interest.amount(),
                    at.principal_paid.amount(),
                    at.interest_paid.amount(),
                    at.penalty_accrued.amount(),
                    at.penalty_paid.amount(),
                ],
                settled_on,
            )
        })
        .collect();
    Ok(LoanRows {
        installments,
        allocations,
    })
}

const INSTALLMENT_COLUMNS: &[(&str, &str)] = &[
    ("loan_id", "uuid"),
    ("installment_no", "int4"),
    ("due_date", "date"),
    ("principal_due", "numeric"),
    ("interest_due", "numeric"),
    ("principal_paid", "numeric"),
    ("interest_paid", "numeric"),
    ("penalty_accrued", "numeric"),
    ("penalty_paid", "numeric"),
    ("settled_on", "date"),
];

/// Writes what changed in the installments and allocations of the given loans
/// (disbursed ones; the others have none) since the database last got them: one upsert
/// of the changed installments, one delete of the allocations of loans whose earlier
/// allocations moved, one insert of the new allocations.
pub(crate) async fn write_books(
    tx: &mut Transaction<'_, Postgres>,
    schema: &str,
    views: &[&BookView],
) -> Result<(), sqlx::Error> {
    let mut loans = Vec::new();
    let mut i_loan = Vec::new();
    let mut i_no = Vec::new();
    let mut i_due = Vec::new();
    let mut i_money: [Vec<Decimal>; 6] = Default::default();
    let mut i_settled = Vec::new();
    let mut a_loan = Vec::new();
    let mut a_reference = Vec::new();
    let mut a_value_date = Vec::new();
    let mut a_no = Vec::new();
    let mut a_money: [Vec<Decimal>; 3] = Default::default();
    for view in views {
        let Some(rows) = &view.rows else {
            continue;
        };
        let written = view.written.as_deref();
        if written == Some(rows.as_ref()) {
            continue;
        }
        // Allocations only appended (the usual repayment): insert the new ones.
        // Otherwise the loan's allocations are replaced.
        let appended = written.filter(|w| {
            w.allocations.len() <= rows.allocations.len()
                && rows.allocations[..w.allocations.len()] == w.allocations[..]
        });
        let new_allocations = match appended {
            Some(w) => &rows.allocations[w.allocations.len()..],
            None => {
                loans.push(view.loan_id);
                &rows.allocations[..]
            }
        };
        let unchanged = |index: usize| {
            written.and_then(|w| w.installments.get(index)) == rows.installments.get(index)
        };
        for (index, &(number, due_date, money, settled_on)) in rows.installments.iter().enumerate()
        {
            if unchanged(index) {
                continue;
            }
            i_loan.push(view.loan_id);
            i_no.push(to_i32(number));
            i_due.push(due_date);
            for (column, value) in i_money.iter_mut().zip(money) {
                column.push(value);
            }
            i_settled.push(settled_on);
        }
        for (reference, value_date, number, money) in new_allocations {
            a_loan.push(view.loan_id);
            a_reference.push(reference.clone());
            a_value_date.push(*value_date);
            a_no.push(to_i32(*number));
            for (column, value) in a_money.iter_mut().zip(money) {
                column.push(*value);
            }
        }
    }
    let [
        principal_due,
        interest_due,
        principal_paid,
        interest_paid,
        penalty_accrued,
        penalty_paid,
    ] = i_money;
    if !i_loan.is_empty() {
        sqlx::query(&upsert(
            schema,
            "installments",
            INSTALLMENT_COLUMNS,
            &["loan_id", "installment_no"],
        ))
        .bind(i_loan)
        .bind(i_no)
        .bind(i_due)
        .bind(principal_due)
        .bind(interest_due)
        .bind(principal_paid)
        .bind(interest_paid)
        .bind(penalty_accrued)
        .bind(penalty_paid)
        .bind(i_settled)
        .execute(&mut **tx)
        .await?;
    }
    let s = ident(schema);
    if !loans.is_empty() {
        sqlx::query(&format!(
            "DELETE FROM {s}.allocations WHERE loan_id = ANY($1::uuid[])"
        ))
        .bind(&loans)
        .execute(&mut **tx)
        .await?;
    }
    if !a_loan.is_empty() {
        let [principal, interest, penalty] = a_money;
        sqlx::query(&format!(
            "INSERT INTO {s}.allocations (loan_id, payment_reference, value_date, installment_no, principal, interest, penalty)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::date[], $4::int4[], $5::numeric[], $6::numeric[], $7::numeric[])"
        ))
        .bind(a_loan)
        .bind(a_reference)
        .bind(a_value_date)
        .bind(a_no)
        .bind(principal)
        .bind(interest)
        .bind(penalty)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
