//! The rules themselves: pure functions from what is known and a calendar day to the
//! actions to take, each with its reason.
//!
//! No I/O, no clock, no randomness: the day is an argument, so the same portfolio and day
//! always give the same actions with the same ids. An action's id is a UUID v5 of the
//! rule and what it is about (loan and date, or loan and installment); the worker uses it
//! as the command id or the notification id, which is what makes every action happen
//! exactly once however often a day is evaluated.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use loan_contract::notification::{DueReminder, FollowUpOverdue, Notification};
use loan_domain::loan::{EvaluateDelinquency, Loan, LoanStatus};
use loan_domain::servicing;
use loan_domain::{CommandKind, LoanId, Money};
use uuid::Uuid;

use crate::calendar::BusinessCalendar;
use crate::portfolio::{LoanFile, Portfolio};

/// Namespace of the action ids (UUID v5): fixed forever, so ids stay stable across
/// releases and restarts.
pub const ACTION_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f_616e_2d61_7574_6f6d_6174_696f_6e01);

/// The rules, in the order they run on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Every business day, `evaluate_delinquency` for each loan in arrears beyond grace.
    DelinquencySweep,
    /// N days before a due date, a reminder to the customer.
    DueReminder,
    /// A lead or review untouched for N days: notify its officer and their manager.
    FollowUpWatch,
}

impl Rule {
    pub const ALL: [Rule; 3] = [
        Rule::DelinquencySweep,
        Rule::DueReminder,
        Rule::FollowUpWatch,
    ];

    /// Stable snake_case name (in ids, tables, notifications).
    pub fn name(self) -> &'static str {
        match self {
            Rule::DelinquencySweep => "delinquency_sweep",
            Rule::DueReminder => "due_reminder",
            Rule::FollowUpWatch => "follow_up_watch",
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.name() == name)
    }
}

/// The stable id of what `rule` does about `key` (e.g. `<loan>/<date>`).
pub fn action_id(rule: Rule, key: &str) -> Uuid {
    Uuid::new_v5(
        &ACTION_NAMESPACE,
        format!("{}/{key}", rule.name()).as_bytes(),
    )
}

/// The rules' settings (each with its documented default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleConfig {
    /// Which days the sweep runs on.
    pub calendar: BusinessCalendar,
    /// Days before a due date the reminder goes out (default 3).
    pub reminder_days_before: u32,
    /// Days without any event after which a lead or review is reported (default 3).
    pub follow_up_after_days: u32,
    /// Officer → manager, for the follow-up watch.
    pub managers: BTreeMap<String, String>,
    /// Who hears about leads without an officer (and officers without a manager).
    pub default_manager: Option<String>,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            calendar: BusinessCalendar::default(),
            reminder_days_before: 3,
            follow_up_after_days: 3,
            managers: BTreeMap::new(),
            default_manager: None,
        }
    }
}

/// What an action does.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a command to the command service (as the automation's system actor).
    Command {
        kind: CommandKind,
        payload: serde_json::Value,
    },
    /// Publish a notification on `<prefix>.notify.<kind>`.
    Notify(Notification),
}

/// One thing a rule decided to do, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// Command id or notification id: stable, see [`action_id`].
    pub id: Uuid,
    pub rule: Rule,
    /// The day the rule fired for.
    pub business_date: NaiveDate,
    pub loan_id: LoanId,
    /// Why the rule fired.
    pub reason: String,
    pub effect: Effect,
}

impl Action {
    /// Ties together every action one rule took on one day (the commands' correlation id).
    pub fn correlation_id(&self) -> Uuid {
        action_id(self.rule, &format!("day/{}", self.business_date))
    }
}

/// Every action of every rule for calendar day `day`, in rule order, loans in id order.
pub fn on_day(portfolio: &Portfolio, day: NaiveDate, config: &RuleConfig) -> Vec<Action> {
    let mut actions = delinquency_sweep(portfolio, day, config);
    actions.extend(due_reminders(portfolio, day, config));
    actions.extend(follow_up_watch(portfolio, day, config));
    actions
}

/// The delinquency sweep of `day`: nothing on a non-business day; otherwise
/// `evaluate_delinquency` as of `day` for every disbursed loan with an installment still
/// unpaid on `day` after its due date plus the loan's grace days.
pub fn delinquency_sweep(
    portfolio: &Portfolio,
    day: NaiveDate,
    config: &RuleConfig,
) -> Vec<Action> {
    if !config.calendar.is_business_day(day) {
        return Vec::new();
    }
    portfolio
        .loans()
        .filter_map(|(loan_id, file)| {
            let account = match &file.loan {
                Loan::Disbursed(account) | Loan::Repaying(account) | Loan::Overdue(account) => {
                    account
                }
                _ => return None,
            };
            let position = account.position_as_of(&account.payments, day).ok()?;
            let grace = account.contract.grace_days;
            let days_past_due =
                servicing::days_past_due(&account.schedule, &position.installments, day);
            if days_past_due <= grace {
                return None;
            }
            let oldest = account
                .schedule
                .installments
                .iter()
                .zip(&position.installments)
                .find(|(i, p)| i.due_date < day && !servicing::fully_paid(i, p))
                .map(|(i, _)| (i.number, i.due_date))?;
            let payload = serde_json::to_value(EvaluateDelinquency {
                loan_id: *loan_id,
                as_of: day,
            })
            .ok()?;
            Some(Action {
                id: action_id(Rule::DelinquencySweep, &format!("{loan_id}/{day}")),
                rule: Rule::DelinquencySweep,
                business_date: day,
                loan_id: *loan_id,
                reason: format!(
                    "installment {} due {} is unpaid on {day}: {days_past_due} days past due, beyond the {grace} grace days",
                    oldest.0, oldest.1
                ),
                effect: Effect::Command {
                    kind: CommandKind::EvaluateDelinquency,
                    payload,
                },
            })
        })
        .collect()
}

/// Due reminders of `day`: for every disbursed loan, each installment not fully paid that
/// falls due within the next `reminder_days_before` days (due date − N ≤ day < due
/// date). Once per installment: the id names the loan and the installment, not the day,
/// so a later day (or a worker started late) repeats nothing.
pub fn due_reminders(portfolio: &Portfolio, day: NaiveDate, config: &RuleConfig) -> Vec<Action> {
    let window = i64::from(config.reminder_days_before);
    let mut actions = Vec::new();
    for (loan_id, file) in portfolio.loans() {
        let account = match &file.loan {
            Loan::Disbursed(account) | Loan::Repaying(account) | Loan::Overdue(account) => account,
            _ => continue,
        };
        let Ok(position) = account.position_as_of(&account.payments, day) else {
            continue;
        };
        let customer_id = account.application.customer_id;
        for (installment, paid) in account
            .schedule
            .installments
            .iter()
            .zip(&position.installments)
        {
            let days_to_due = (installment.due_date - day).num_days();
            if !(1..=window).contains(&days_to_due) || servicing::fully_paid(installment, paid) {
                continue;
            }
            let Some(amount_due) = unpaid(installment, paid) else {
                continue;
            };
            let id = action_id(
                Rule::DueReminder,
                &format!("{loan_id}/{}", installment.number),
            );
            let reason = format!(
                "installment {} of {} {} falls due on {} ({days_to_due} days after {day}; reminders go out {window} days ahead)",
                installment.number,
                amount_due,
                account.contract.currency.code(),
                installment.due_date
            );
            let phone_masked = portfolio
                .customer(customer_id)
                .and_then(|customer| customer.profile())
                .map(|profile| profile.phone.to_string());
            actions.push(Action {
                id,
                rule: Rule::DueReminder,
                business_date: day,
                loan_id: *loan_id,
                reason: reason.clone(),
                effect: Effect::Notify(Notification::DueReminder(DueReminder {
                    id,
                    rule: Rule::DueReminder.name().into(),
                    reason,
                    business_date: day,
                    loan_id: *loan_id,
                    customer_id,
                    installment: installment.number,
                    due_date: installment.due_date,
                    amount_due,
                    currency: account.contract.currency.clone(),
                    phone_masked,
                })),
            });
        }
    }
    actions
}

/// What is still unpaid on an installment: principal, interest and accrued penalty.
fn unpaid(
    installment: &loan_domain::schedule::Installment,
    paid: &servicing::InstallmentPosition,
) -> Option<Money> {
    let owed = installment
        .principal
        .checked_add(installment.interest)
        .ok()?
        .checked_add(paid.penalty_accrued)
        .ok()?;
    let settled = paid
        .principal_paid
        .checked_add(paid.interest_paid)
        .ok()?
        .checked_add(paid.penalty_paid)
        .ok()?;
    owed.checked_sub(settled).ok()
}

/// The follow-up watch of `day`: every lead, and every review not yet approved, whose
/// latest event is `follow_up_after_days` or more days old. Once per quiet stretch: the
/// id names the loan and the day it was last touched, so the next event (a follow-up
/// logged) starts a new stretch.
pub fn follow_up_watch(portfolio: &Portfolio, day: NaiveDate, config: &RuleConfig) -> Vec<Action> {
    let threshold = i64::from(config.follow_up_after_days);
    portfolio
        .loans()
        .filter_map(|(loan_id, file)| watch_one(*loan_id, file, day, threshold, config))
        .collect()
}

fn watch_one(
    loan_id: LoanId,
    file: &LoanFile,
    day: NaiveDate,
    threshold: i64,
    config: &RuleConfig,
) -> Option<Action> {
    let (status, application) = match &file.loan {
        Loan::Lead(app) => (LoanStatus::Lead, app),
        Loan::Review(app)
            if !matches!(app.verdict, loan_domain::loan::Verdict::Approved { .. }) =>
        {
            (LoanStatus::Review, app)
        }
        _ => return None,
    };
    let quiet = (day - file.last_touched_on).num_days();
    if quiet < threshold {
        return None;
    }
    let officer_id = application.officer_id.clone();
    let manager_id = officer_id
        .as_ref()
        .and_then(|officer| config.managers.get(officer).cloned())
        .or_else(|| config.default_manager.clone());
    let recipients: Vec<String> = officer_id
        .iter()
        .chain(manager_id.iter())
        .cloned()
        .collect();
    let id = action_id(
        Rule::FollowUpWatch,
        &format!("{loan_id}/{}", file.last_touched_on),
    );
    let reason = format!(
        "{} untouched since {} ({quiet} days on {day}; the limit is {threshold} days)",
        status.as_str(),
        file.last_touched_on
    );
    Some(Action {
        id,
        rule: Rule::FollowUpWatch,
        business_date: day,
        loan_id,
        reason: reason.clone(),
        effect: Effect::Notify(Notification::FollowUpOverdue(FollowUpOverdue {
            id,
            rule: Rule::FollowUpWatch.name().into(),
            reason,
            business_date: day,
            loan_id,
            customer_id: application.customer_id,
            loan_status: status,
            officer_id,
            manager_id,
            recipients,
            last_touched_on: file.last_touched_on,
            days_untouched: u32::try_from(quiet).unwrap_or(u32::MAX),
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn action_ids_are_stable_and_distinct_per_rule_and_subject() {
        let loan = "0190f0a0-0000-7000-8000-000000000001";
        let first = action_id(Rule::DelinquencySweep, &format!("{loan}/2026-02-09"));
        assert_eq!(
            first,
            action_id(Rule::DelinquencySweep, &format!("{loan}/2026-02-09"))
        );
        assert_eq!(first.get_version_num(), 5);
        let others = [
            action_id(Rule::DelinquencySweep, &format!("{loan}/2026-02-10")),
            action_id(Rule::DueReminder, &format!("{loan}/2026-02-09")),
            action_id(Rule::FollowUpWatch, &format!("{loan}/2026-02-09")),
        ];
        assert!(others.iter().all(|other| *other != first));
    }

    #[test]
    fn an_empty_portfolio_needs_nothing_and_rule_names_round_trip() {
        let config = RuleConfig::default();
        assert!(on_day(&Portfolio::default(), d("2026-02-09"), &config).is_empty());
        for rule in Rule::ALL {
            assert_eq!(Rule::parse(rule.name()), Some(rule));
        }
        assert_eq!(Rule::parse("no_such_rule"), None);
    }
}
