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
use uuid::Uuid;

use crate::rows::{Change, OnConflict, TableRows};
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

/// What changed in the installments and allocations of the given loans (disbursed
/// ones; the others have none) since the database last got them: one upsert of the
/// changed installments, one delete of the allocations of loans whose earlier
/// allocations moved, one insert of the new allocations — in that order.
pub(crate) fn book_changes(views: &[&BookView]) -> Vec<Change> {
    let mut installments = TableRows::new(
        "installments",
        &["loan_id", "installment_no"],
        OnConflict::Update,
    );
    let mut allocations = TableRows::new(
        "allocations",
        &["loan_id", "payment_reference", "installment_no"],
        OnConflict::Fail,
    );
    let mut replaced = Vec::new();
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
                replaced.push(view.loan_id);
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
            let [
                principal_due,
                interest_due,
                principal_paid,
                interest_paid,
                penalty_accrued,
                penalty_paid,
            ] = money;
            installments
                .row()
                .uuid("loan_id", view.loan_id)
                .int4("installment_no", to_i32(number))
                .date("due_date", due_date)
                .money("principal_due", principal_due)
                .money("interest_due", interest_due)
                .money("principal_paid", principal_paid)
                .money("interest_paid", interest_paid)
                .money("penalty_accrued", penalty_accrued)
                .money("penalty_paid", penalty_paid)
                .date("settled_on", settled_on);
        }
        for (reference, value_date, number, [principal, interest, penalty]) in new_allocations {
            allocations
                .row()
                .uuid("loan_id", view.loan_id)
                .text("payment_reference", reference.clone())
                .date("value_date", *value_date)
                .int4("installment_no", to_i32(*number))
                .money("principal", *principal)
                .money("interest", *interest)
                .money("penalty", *penalty);
        }
    }
    vec![
        Change::Write(installments),
        Change::Delete {
            table: "allocations",
            key: "loan_id",
            ids: replaced,
        },
        Change::Write(allocations),
    ]
}
