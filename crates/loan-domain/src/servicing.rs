//! The money engine of a disbursed loan: payment allocation, penalty accrual, days past
//! due and aging buckets, as pure functions of the schedule, the payments and a date.
//!
//! [`compute_position`] recomputes a loan's whole position from scratch: payments are
//! applied in value-date order (recording order breaks ties), so a payment recorded late
//! with an earlier value date is allocated exactly as if it had arrived on time, and a
//! reversed payment is simply absent. The loan aggregate compares the recomputed position
//! with the recorded one and records the net difference as one restatement, never a chain
//! of intermediate states.
//!
//! Rules (`oldest-first/penalty-interest-principal/v1` and
//! `daily-on-overdue-principal/end-of-day/after-grace/v1`):
//! * A payment goes to the oldest installment first, and within an installment to
//!   penalty, then interest, then principal, before the next installment; what is left
//!   after the last installment is an overpayment and the payment is refused.
//!   Installments not yet due are paid in order (no re-amortisation).
//! * Penalty accrues, for each day `d` with `d > due_date + grace_days`, on the
//!   installment's principal still unpaid at the END of day `d` (payments value-dated `d`
//!   count), times the daily penalty rate. The exact (unrounded) sum is kept per
//!   installment; the penalty due at any moment is that sum rounded half-up to 0.01.
//!   So penalty never depends on how often delinquency is evaluated.
//! * A payment value-dated `V` pays penalty accrued through `V - 1`; day `V` accrues on
//!   what is left after it.
//! * Days past due as of `D`: days from the due date of the oldest installment not fully
//!   paid whose due date is strictly before `D`, to `D`; 0 if there is none.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::money::{Money, MoneyError, Rate};
use crate::schedule::{Installment, Schedule};

pub const ALLOCATION_RULE: &str = "oldest-first/penalty-interest-principal/v1";
pub const PENALTY_RULE: &str = "daily-on-overdue-principal/end-of-day/after-grace/v1";

/// A payment that counts (recorded and not reversed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Payment {
    pub reference: String,
    pub amount: Money,
    pub value_date: NaiveDate,
}

/// The contract terms the engine needs beyond the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PenaltyTerms {
    pub grace_days: u32,
    pub daily_penalty_rate: Rate,
}

/// What has been paid and accrued on one installment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallmentPosition {
    pub principal_paid: Money,
    pub interest_paid: Money,
    pub penalty_paid: Money,
    /// Penalty accrued through the position date, rounded half-up to 0.01.
    pub penalty_accrued: Money,
}

/// How much of one payment went to one installment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub installment: u32,
    pub penalty: Money,
    pub interest: Money,
    pub principal: Money,
}

/// The net change of one installment's position, recorded by money events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionDelta {
    pub installment: u32,
    pub principal_paid: Money,
    pub interest_paid: Money,
    pub penalty_paid: Money,
    pub penalty_accrued: Money,
}

/// Aging bucket of a loan by days past due.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AgingBucket {
    /// 0 days past due.
    Current,
    /// 1 to 30.
    Dpd1To30,
    /// 31 to 60.
    Dpd31To60,
    /// 61 to 90.
    Dpd61To90,
    /// More than 90.
    Dpd90Plus,
}

impl AgingBucket {
    pub fn for_days_past_due(days: u32) -> Self {
        match days {
            0 => AgingBucket::Current,
            1..=30 => AgingBucket::Dpd1To30,
            31..=60 => AgingBucket::Dpd31To60,
            61..=90 => AgingBucket::Dpd61To90,
            _ => AgingBucket::Dpd90Plus,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AgingBucket::Current => "current",
            AgingBucket::Dpd1To30 => "dpd_1_to_30",
            AgingBucket::Dpd31To60 => "dpd_31_to_60",
            AgingBucket::Dpd61To90 => "dpd_61_to_90",
            AgingBucket::Dpd90Plus => "dpd_90_plus",
        }
    }
}

/// Why a position cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServicingError {
    /// After everything outstanding on its value date was paid, `excess` was left.
    #[error(
        "payment {reference} value-dated {value_date} exceeds everything outstanding on that date by {excess}"
    )]
    Overpayment {
        reference: String,
        value_date: NaiveDate,
        excess: Money,
    },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A loan's recomputed position as of a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub as_of: NaiveDate,
    /// One entry per installment, in schedule order.
    pub installments: Vec<InstallmentPosition>,
    /// Allocation of each counted payment, in the order applied (value date, then
    /// recording), each with the payment's index in the `payments` given.
    pub allocations: Vec<(usize, Vec<Split>)>,
}

struct Running {
    position: InstallmentPosition,
    penalty_exact: Decimal,
}

/// Recomputes the position of a loan as of `as_of` from its schedule and payments (in
/// recording order). Payments value-dated after `as_of` are ignored.
pub fn compute_position(
    schedule: &Schedule,
    terms: PenaltyTerms,
    payments: &[Payment],
    as_of: NaiveDate,
) -> Result<Position, ServicingError> {
    let mut ordered: Vec<(usize, &Payment)> = payments
        .iter()
        .enumerate()
        .filter(|(_, p)| p.value_date <= as_of)
        .collect();
    ordered.sort_by_key(|(_, p)| p.value_date); // stable: recording order breaks ties
    let mut running: Vec<Running> = schedule
        .installments
        .iter()
        .map(|_| Running {
            position: InstallmentPosition::default(),
            penalty_exact: Decimal::ZERO,
        })
        .collect();
    let mut accrued_through: Option<NaiveDate> = None;
    let mut allocations = Vec::with_capacity(ordered.len());

    for (index, payment) in ordered {
        if let Some(day_before) = payment.value_date.pred_opt() {
            accrue(
                schedule,
                terms,
                &mut running,
                &mut accrued_through,
                day_before,
            )?;
        }
        let splits = allocate(schedule, &mut running, payment)?;
        allocations.push((index, splits));
    }
    accrue(schedule, terms, &mut running, &mut accrued_through, as_of)?;

    let installments = running
        .iter()
        .map(|r| InstallmentPosition {
            penalty_accrued: Money::round(r.penalty_exact),
            ..r.position
        })
        .collect();
    Ok(Position {
        as_of,
        installments,
        allocations,
    })
}

/// Adds penalty for every day after `accrued_through` up to and including `through`.
fn accrue(
    schedule: &Schedule,
    terms: PenaltyTerms,
    running: &mut [Running],
    accrued_through: &mut Option<NaiveDate>,
    through: NaiveDate,
) -> Result<(), ServicingError> {
    if accrued_through.is_some_and(|done| done >= through) {
        return Ok(());
    }
    let rate = terms.daily_penalty_rate.value();
    for (installment, run) in schedule.installments.iter().zip(running.iter_mut()) {
        let outstanding = installment
            .principal
            .checked_sub(run.position.principal_paid)?;
        if !outstanding.is_positive() || rate.is_zero() {
            continue;
        }
        // Penalty days are d with d > due + grace, d > accrued_through, d <= through.
        let Some(first_penalty_day) = installment
            .due_date
            .checked_add_days(chrono::Days::new(u64::from(terms.grace_days) + 1))
        else {
            continue;
        };
        let start = match *accrued_through {
            Some(done) => first_penalty_day.max(done.succ_opt().unwrap_or(done)),
            None => first_penalty_day,
        };
        if start > through {
            continue;
        }
        let days = Decimal::from((through - start).num_days() + 1);
        let accrual = outstanding
            .amount()
            .checked_mul(rate)
            .and_then(|daily| daily.checked_mul(days))
            .ok_or(MoneyError::Overflow)?;
        run.penalty_exact = run
            .penalty_exact
            .checked_add(accrual)
            .ok_or(MoneyError::Overflow)?;
    }
    *accrued_through = Some(through);
    Ok(())
}

fn allocate(
    schedule: &Schedule,
    running: &mut [Running],
    payment: &Payment,
) -> Result<Vec<Split>, ServicingError> {
    let mut left = payment.amount;
    let mut splits = Vec::new();
    for (installment, run) in schedule.installments.iter().zip(running.iter_mut()) {
        if !left.is_positive() {
            break;
        }
        let penalty_due = Money::round(run.penalty_exact).checked_sub(run.position.penalty_paid)?;
        let penalty = take(&mut left, penalty_due)?;
        let interest = take(
            &mut left,
            installment
                .interest
                .checked_sub(run.position.interest_paid)?,
        )?;
        let principal = take(
            &mut left,
            installment
                .principal
                .checked_sub(run.position.principal_paid)?,
        )?;
        if penalty.is_zero() && interest.is_zero() && principal.is_zero() {
            continue;
        }
        run.position.penalty_paid = run.position.penalty_paid.checked_add(penalty)?;
        run.position.interest_paid = run.position.interest_paid.checked_add(interest)?;
        run.position.principal_paid = run.position.principal_paid.checked_add(principal)?;
        splits.push(Split {
            installment: installment.number,
            penalty,
            interest,
            principal,
        });
    }
    if left.is_positive() {
        return Err(ServicingError::Overpayment {
            reference: payment.reference.clone(),
            value_date: payment.value_date,
            excess: left,
        });
    }
    Ok(splits)
}

/// Takes up to `due` (ignoring negative dues) from `left`.
fn take(left: &mut Money, due: Money) -> Result<Money, MoneyError> {
    if !due.is_positive() {
        return Ok(Money::ZERO);
    }
    let taken = (*left).min(due);
    *left = left.checked_sub(taken)?;
    Ok(taken)
}

/// Whether an installment is fully paid: principal, interest and accrued penalty.
pub fn fully_paid(installment: &Installment, position: &InstallmentPosition) -> bool {
    position.principal_paid >= installment.principal
        && position.interest_paid >= installment.interest
        && position.penalty_paid >= position.penalty_accrued
}

/// Days past due as of `as_of`, given the position as of that same date.
pub fn days_past_due(
    schedule: &Schedule,
    positions: &[InstallmentPosition],
    as_of: NaiveDate,
) -> u32 {
    schedule
        .installments
        .iter()
        .zip(positions)
        .find(|(installment, position)| {
            installment.due_date < as_of && !fully_paid(installment, position)
        })
        .map(|(installment, _)| {
            u32::try_from((as_of - installment.due_date).num_days()).unwrap_or(u32::MAX)
        })
        .unwrap_or(0)
}

/// Whether some installment is unpaid more than `grace_days` after its due date.
pub fn in_arrears_beyond_grace(
    schedule: &Schedule,
    positions: &[InstallmentPosition],
    grace_days: u32,
    as_of: NaiveDate,
) -> bool {
    days_past_due(schedule, positions, as_of) > grace_days
}

/// Whether every installment is fully paid.
pub fn all_paid(schedule: &Schedule, positions: &[InstallmentPosition]) -> bool {
    schedule
        .installments
        .iter()
        .zip(positions)
        .all(|(installment, position)| fully_paid(installment, position))
}

/// Outstanding balances of a loan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Outstanding {
    pub principal: Money,
    pub interest: Money,
    pub penalty: Money,
}

impl Outstanding {
    pub fn total(&self) -> Money {
        self.principal
            .saturating_add(self.interest)
            .saturating_add(self.penalty)
    }
}

/// Outstanding principal, scheduled interest not yet paid, and accrued unpaid penalty.
pub fn outstanding(schedule: &Schedule, positions: &[InstallmentPosition]) -> Outstanding {
    sum_unpaid(schedule.installments.iter().zip(positions))
}

fn sum_unpaid<'a>(
    rows: impl Iterator<Item = (&'a Installment, &'a InstallmentPosition)>,
) -> Outstanding {
    rows.fold(Outstanding::default(), |total, (installment, position)| {
        let part = unpaid(installment, position);
        Outstanding {
            principal: total.principal.saturating_add(part.principal),
            interest: total.interest.saturating_add(part.interest),
            penalty: total.penalty.saturating_add(part.penalty),
        }
    })
}

/// The net per-installment change from `before` to `after`; unchanged installments omitted.
pub fn diff(
    schedule: &Schedule,
    before: &[InstallmentPosition],
    after: &[InstallmentPosition],
) -> Result<Vec<PositionDelta>, MoneyError> {
    let mut deltas = Vec::new();
    for ((installment, old), new) in schedule.installments.iter().zip(before).zip(after) {
        if old == new {
            continue;
        }
        deltas.push(PositionDelta {
            installment: installment.number,
            principal_paid: new.principal_paid.checked_sub(old.principal_paid)?,
            interest_paid: new.interest_paid.checked_sub(old.interest_paid)?,
            penalty_paid: new.penalty_paid.checked_sub(old.penalty_paid)?,
            penalty_accrued: new.penalty_accrued.checked_sub(old.penalty_accrued)?,
        });
    }
    Ok(deltas)
}

/// Applies recorded deltas to a position (what `evolve` does with a money event).
/// Saturating, never failing: the deltas were computed by [`diff`] from valid positions.
pub fn apply(positions: &mut [InstallmentPosition], deltas: &[PositionDelta]) {
    for delta in deltas {
        let Some(index) = (delta.installment as usize).checked_sub(1) else {
            continue;
        };
        let Some(position) = positions.get_mut(index) else {
            continue;
        };
        position.principal_paid = position.principal_paid.saturating_add(delta.principal_paid);
        position.interest_paid = position.interest_paid.saturating_add(delta.interest_paid);
        position.penalty_paid = position.penalty_paid.saturating_add(delta.penalty_paid);
        position.penalty_accrued = position
            .penalty_accrued
            .saturating_add(delta.penalty_accrued);
    }
}

/// The next installment to pay: the first not fully paid whose due date is on or after
/// `as_of` (an installment due today is next due, not overdue). Arrears are not included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NextDue {
    pub installment: u32,
    pub due_date: NaiveDate,
    /// What is still unpaid on that installment (principal, interest, accrued penalty).
    pub amount: Money,
}

/// See [`NextDue`]; `positions` must be the position as of `as_of`.
pub fn next_due(
    schedule: &Schedule,
    positions: &[InstallmentPosition],
    as_of: NaiveDate,
) -> Option<NextDue> {
    schedule
        .installments
        .iter()
        .zip(positions)
        .find(|(installment, position)| {
            installment.due_date >= as_of && !fully_paid(installment, position)
        })
        .map(|(installment, position)| NextDue {
            installment: installment.number,
            due_date: installment.due_date,
            amount: unpaid(installment, position).total(),
        })
}

/// Unpaid amounts of the installments due strictly before `as_of` (the arrears).
pub fn overdue_amount(
    schedule: &Schedule,
    positions: &[InstallmentPosition],
    as_of: NaiveDate,
) -> Outstanding {
    sum_unpaid(
        schedule
            .installments
            .iter()
            .zip(positions)
            .filter(|(installment, _)| installment.due_date < as_of),
    )
}

fn unpaid(installment: &Installment, position: &InstallmentPosition) -> Outstanding {
    Outstanding {
        principal: Money::round(installment.principal.amount() - position.principal_paid.amount()),
        interest: Money::round(installment.interest.amount() - position.interest_paid.amount()),
        penalty: Money::round(position.penalty_accrued.amount() - position.penalty_paid.amount()),
    }
}

/// The amount a payment value-dated `value_date` must have to settle the loan: all
/// remaining principal and interest plus penalty accrued through the day before (a
/// payment on day `V` stops day `V`'s penalty). Computed by the allocation itself — a
/// probe payment larger than anything outstanding is allocated and its excess
/// subtracted — so a quote can never disagree with what the allocation accepts.
pub fn payoff_amount(
    schedule: &Schedule,
    terms: PenaltyTerms,
    payments: &[Payment],
    value_date: NaiveDate,
) -> Result<Money, ServicingError> {
    const PROBE: &str = "\u{0}payoff-quote";
    let probe_amount = Money::from_exact(crate::money::MAX_AMOUNT)?;
    let mut with_probe = payments.to_vec();
    with_probe.push(Payment {
        reference: PROBE.into(),
        amount: probe_amount,
        value_date,
    });
    match compute_position(schedule, terms, &with_probe, value_date) {
        Err(ServicingError::Overpayment {
            reference, excess, ..
        }) if reference == PROBE => Ok(probe_amount.checked_sub(excess)?),
        Err(other) => Err(other),
        // Everything outstanding is at least the probe: beyond the supported range.
        Ok(_) => Err(ServicingError::Money(MoneyError::Overflow)),
    }
}
