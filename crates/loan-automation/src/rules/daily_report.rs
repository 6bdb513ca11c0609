//! The daily report: what happened on a business day and where the book stands at its
//! end, once the day is over.
//!
//! Flows (new leads, approvals, disbursed and repaid amounts, loans newly overdue) are
//! the events *recorded* on the day in the lender's time zone ([`DayActivity`]): what the
//! books learned that day, so a report made after midnight is complete and never changes.
//! The book (loans in servicing, outstanding principal, PAR30) is computed by the domain's
//! servicing functions as of the day, from every payment value-dated on or before it.
//! The worker makes the report of day D on its first step of a later day (see
//! docs/automation.md, "day end").

use chrono::NaiveDate;
use loan_contract::notification::{DailyReport, Notification};
use loan_domain::loan::Account;
use loan_domain::servicing::{self, Position};
use loan_domain::{Money, Rate};
use rust_decimal::{Decimal, RoundingStrategy};

use super::{Action, Effect, Rule, RuleConfig, action_id};
use crate::portfolio::{DayActivity, LoanFile, Portfolio};

/// A loan's account and its position as of `day`, if it is in servicing then: disbursed
/// on or before `day`, not written off on or before it, not fully paid as of it.
pub(crate) fn in_servicing_on(file: &LoanFile, day: NaiveDate) -> Option<(&Account, Position)> {
    let account = file.loan.account()?;
    if account.disbursed_on > day || account.written_off_on.is_some_and(|w| w <= day) {
        return None;
    }
    let position = account.position_as_of(&account.payments, day).ok()?;
    if servicing::all_paid(&account.schedule, &position.installments) {
        return None;
    }
    Some((account, position))
}

/// `numerator / denominator` half-up to 4 decimals, as a rate (0 when the denominator
/// is 0).
pub(crate) fn ratio(numerator: Decimal, denominator: Decimal) -> Rate {
    if denominator.is_zero() {
        return Rate::from_decimal(Decimal::ZERO).unwrap_or_else(|_| unreachable!());
    }
    let value =
        (numerator / denominator).round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
    Rate::from_decimal(value.clamp(Decimal::ZERO, Decimal::TEN))
        .unwrap_or_else(|_| unreachable!("a 4-decimal rate between 0 and 10 is valid"))
}

/// The book at the end of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BookOnDay {
    pub active_loans: u64,
    pub outstanding_principal: Money,
    /// Outstanding principal of loans more than 30 days past due.
    pub par30_principal: Money,
}

impl BookOnDay {
    /// Balance-weighted PAR30, half-up to 4 decimals.
    pub fn par30(&self) -> Rate {
        ratio(
            self.par30_principal.amount(),
            self.outstanding_principal.amount(),
        )
    }
}

/// The book as of `day`.
pub fn book_on(portfolio: &Portfolio, day: NaiveDate) -> BookOnDay {
    let mut book = BookOnDay::default();
    for (_, file) in portfolio.loans() {
        let Some((account, position)) = in_servicing_on(file, day) else {
            continue;
        };
        let principal = servicing::outstanding(&account.schedule, &position.installments).principal;
        book.active_loans += 1;
        book.outstanding_principal = book.outstanding_principal.saturating_add(principal);
        if servicing::days_past_due(&account.schedule, &position.installments, day) > 30 {
            book.par30_principal = book.par30_principal.saturating_add(principal);
        }
    }
    book
}

/// The report of business day `day` (made when the day is over).
pub fn daily_report(portfolio: &Portfolio, day: NaiveDate, config: &RuleConfig) -> Action {
    let DayActivity {
        new_leads,
        approvals,
        disbursed,
        repaid,
        newly_overdue,
    } = portfolio.activity_on(day);
    let book = book_on(portfolio, day);
    let par30 = book.par30();
    let newly_overdue = u64::try_from(newly_overdue.len()).unwrap_or(u64::MAX);
    let id = action_id(Rule::DailyReport, &day.to_string());
    let reason = format!(
        "business day {day} is over: {new_leads} new leads, {approvals} approvals, {disbursed} disbursed, {repaid} repaid, {newly_overdue} newly overdue; PAR30 {par30} ({} of {} outstanding principal, {} loans in servicing)",
        book.par30_principal, book.outstanding_principal, book.active_loans
    );
    Action {
        id,
        rule: Rule::DailyReport,
        business_date: day,
        loan_id: None,
        reason: reason.clone(),
        effect: Effect::Notify(Notification::DailyReport(DailyReport {
            id,
            rule: Rule::DailyReport.name().into(),
            reason,
            business_date: day,
            new_leads,
            approvals,
            disbursed_amount: disbursed,
            repaid_amount: repaid,
            newly_overdue,
            active_loans: book.active_loans,
            outstanding_principal: book.outstanding_principal,
            par30_principal: book.par30_principal,
            par30,
            recipients: config.report_recipients.clone(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{d, disbursed_loan, money, payment};
    use loan_domain::LoanId;
    use std::collections::BTreeSet;
    use uuid::Uuid;

    #[test]
    fn par30_is_the_outstanding_principal_over_30_days_past_due_over_all_outstanding() {
        // Three loans of 12,000 over 12 months, first due 5 Feb (installment 1: principal
        // 946.19 at 1 % a month: 12,000 × 0.01 = 120.00 interest of 1,066.19).
        //  * L1 never pays: on 10 Mar, 33 days past due (5 Feb) -> at risk, 12,000.00.
        //  * L2 paid installment 1 on 5 Feb: 4 days past due on 9 Mar... on 10 Mar 5 days
        //    (installment 2 due 5 Mar): not at risk, outstanding 12,000 - 946.19 = 11,053.81.
        //  * L3 disbursed 11 Mar: not yet in servicing on 10 Mar.
        let mut portfolio = Portfolio::default();
        let first = disbursed_loan(d("2026-01-05"), &[]);
        let second = disbursed_loan(d("2026-01-05"), &[payment("P-1", "1066.19", "2026-02-05")]);
        let third = disbursed_loan(d("2026-03-11"), &[]);
        for (n, loan) in [(1, first), (2, second), (3, third)] {
            portfolio.insert_loan(
                LoanId(Uuid::from_u128(n)),
                LoanFile::with(loan, d("2026-01-05"), 1),
            );
        }
        let book = book_on(&portfolio, d("2026-03-10"));
        assert_eq!(book.active_loans, 2);
        assert_eq!(book.outstanding_principal, money("23053.81"));
        assert_eq!(book.par30_principal, money("12000.00"));
        // 12,000.00 / 23,053.81 = 0.52052... -> 0.5205
        assert_eq!(book.par30().to_string(), "0.5205");
        // On 7 Mar L1 is 30 days past due: not more than 30, nothing at risk.
        let book = book_on(&portfolio, d("2026-03-07"));
        assert_eq!(book.par30_principal, Money::ZERO);
        assert_eq!(book.par30().to_string(), "0");
        // Before any disbursement: an empty book, PAR30 0.
        assert_eq!(book_on(&portfolio, d("2026-01-04")), BookOnDay::default());

        // The report of 10 Mar: its activity and that book, with a stable id per date.
        portfolio.insert_activity(
            d("2026-03-10"),
            DayActivity {
                new_leads: 2,
                approvals: 1,
                disbursed: money("5000.00"),
                repaid: money("1066.19"),
                newly_overdue: BTreeSet::from([LoanId(Uuid::from_u128(1))]),
            },
        );
        let config = RuleConfig::default();
        let report = daily_report(&portfolio, d("2026-03-10"), &config);
        assert_eq!(
            report.id,
            daily_report(&portfolio, d("2026-03-10"), &config).id
        );
        assert_ne!(
            report.id,
            daily_report(&portfolio, d("2026-03-11"), &config).id
        );
        let Effect::Notify(Notification::DailyReport(body)) = &report.effect else {
            panic!("a daily report")
        };
        assert_eq!(
            (
                body.new_leads,
                body.approvals,
                body.newly_overdue,
                body.active_loans
            ),
            (2, 1, 1, 2)
        );
        assert_eq!(body.disbursed_amount, money("5000.00"));
        assert_eq!(body.repaid_amount, money("1066.19"));
        assert_eq!(body.par30.to_string(), "0.5205");
        assert_eq!(body.recipients, ["management"]);
        assert_eq!(report.loan_id, None);
    }

    #[test]
    fn ratios_round_half_up_to_four_decimals() {
        let r = |n: &str, m: &str| ratio(n.parse().unwrap(), m.parse().unwrap()).to_string();
        assert_eq!(r("1", "3"), "0.3333");
        assert_eq!(r("2", "3"), "0.6667");
        assert_eq!(r("1", "8"), "0.125");
        assert_eq!(r("0.00005", "1"), "0.0001"); // the midpoint goes up
        assert_eq!(r("5", "0"), "0");
    }
}
