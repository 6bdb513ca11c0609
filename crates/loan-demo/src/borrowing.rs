//! What a borrower pays and when: the repayment side of the simulation, pure.
//!
//! The borrower knows its schedule (from the disbursement) and the payments it made, and
//! asks the domain's own servicing functions what is due, overdue or needed to settle —
//! so the demo never sends an amount the engine would refuse (an overpayment) because of
//! arithmetic of its own.

use chrono::NaiveDate;
use loan_domain::Money;
use loan_domain::schedule::Schedule;
use loan_domain::servicing::{self, Payment, PenaltyTerms};
use rust_decimal::Decimal;

/// A disbursed loan as its borrower sees it.
#[derive(Debug, Clone)]
pub struct Book {
    pub schedule: Schedule,
    pub terms: PenaltyTerms,
    /// Payments that count (reversed ones removed), in recording order.
    pub payments: Vec<Payment>,
}

impl Book {
    /// Arrears as of `on` plus the installment falling due within `horizon_days`, never
    /// more than what settles the loan. Zero when nothing is due.
    pub fn amount_due(&self, on: NaiveDate, horizon_days: u64) -> Money {
        let Ok(position) =
            servicing::compute_position(&self.schedule, self.terms, &self.payments, on)
        else {
            return Money::ZERO;
        };
        let arrears = servicing::overdue_amount(&self.schedule, &position.installments, on).total();
        let upcoming = servicing::next_due(&self.schedule, &position.installments, on)
            .filter(|next| {
                on.checked_add_days(chrono::Days::new(horizon_days))
                    .is_some_and(|limit| next.due_date <= limit)
            })
            .map_or(Money::ZERO, |next| next.amount);
        arrears.saturating_add(upcoming).min(self.payoff(on))
    }

    /// Arrears only (principal, interest and penalty of installments due before `on`).
    pub fn arrears(&self, on: NaiveDate) -> Money {
        servicing::compute_position(&self.schedule, self.terms, &self.payments, on)
            .map(|position| {
                servicing::overdue_amount(&self.schedule, &position.installments, on).total()
            })
            .unwrap_or(Money::ZERO)
            .min(self.payoff(on))
    }

    /// What a payment value-dated `on` must be to settle the loan.
    pub fn payoff(&self, on: NaiveDate) -> Money {
        servicing::payoff_amount(&self.schedule, self.terms, &self.payments, on)
            .unwrap_or(Money::ZERO)
    }

    /// Days past due as of `on`.
    pub fn days_past_due(&self, on: NaiveDate) -> u32 {
        servicing::compute_position(&self.schedule, self.terms, &self.payments, on)
            .map(|position| servicing::days_past_due(&self.schedule, &position.installments, on))
            .unwrap_or(0)
    }

    /// Whether every installment is paid as of `on`.
    pub fn settled(&self, on: NaiveDate) -> bool {
        servicing::compute_position(&self.schedule, self.terms, &self.payments, on)
            .is_ok_and(|position| servicing::all_paid(&self.schedule, &position.installments))
    }

    /// Due date of installment `number` (1-based).
    pub fn due_date(&self, number: u32) -> Option<NaiveDate> {
        self.schedule
            .installments
            .iter()
            .find(|installment| installment.number == number)
            .map(|installment| installment.due_date)
    }
}

/// `percent`% of `amount`, rounded half-up to 0.01 (the engine's money rounding).
pub fn share(amount: Money, percent: u32) -> Money {
    Money::round(amount.amount() * Decimal::from(percent) / Decimal::from(100))
}

#[cfg(test)]
mod tests {
    use super::*;
    use loan_domain::Rate;
    use loan_domain::schedule::{RepaymentMethod, ScheduleTerms, build_schedule};

    fn book() -> Book {
        let schedule = build_schedule(&ScheduleTerms {
            principal: Money::parse("12000.00").unwrap(),
            annual_rate: Rate::parse("0.12").unwrap(),
            term_months: 12,
            method: RepaymentMethod::EqualInstallment,
            first_due_date: NaiveDate::from_ymd_opt(2025, 2, 10).unwrap(),
        })
        .unwrap();
        Book {
            schedule,
            terms: PenaltyTerms {
                grace_days: 3,
                daily_penalty_rate: Rate::parse("0.0005").unwrap(),
            },
            payments: Vec::new(),
        }
    }

    #[test]
    fn the_amount_due_on_a_due_date_is_the_installment() {
        let book = book();
        let due = NaiveDate::from_ymd_opt(2025, 2, 10).unwrap();
        assert_eq!(
            book.amount_due(due, 0),
            book.schedule.installments[0].total()
        );
        let day_before = NaiveDate::from_ymd_opt(2025, 2, 9).unwrap();
        assert_eq!(book.amount_due(day_before, 0), Money::ZERO);
    }

    #[test]
    fn arrears_grow_with_penalty_and_never_exceed_the_payoff() {
        let mut book = book();
        let late = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let arrears = book.arrears(late);
        assert!(
            arrears > book.schedule.installments[0].total(),
            "penalty accrued"
        );
        book.payments.push(Payment {
            reference: "P1".into(),
            amount: arrears,
            value_date: late,
        });
        assert_eq!(book.days_past_due(late), 0, "arrears paid: current again");
        let payoff = book.payoff(late);
        assert!(book.amount_due(late, 400) <= payoff);
        book.payments.push(Payment {
            reference: "P2".into(),
            amount: payoff,
            value_date: late,
        });
        assert!(book.settled(late));
    }

    #[test]
    fn a_share_is_rounded_half_up_to_cents() {
        assert_eq!(
            share(Money::parse("1054.43").unwrap(), 50),
            Money::parse("527.22").unwrap()
        );
    }
}
