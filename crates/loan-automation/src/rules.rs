//! The rules themselves: pure functions from what is known and a calendar day to the
//! actions to take, each with its reason.
//!
//! No I/O, no clock, no randomness: the day is an argument, so the same portfolio and day
//! always give the same actions with the same ids. An action's id is a UUID v5 of the
//! rule and what it is about (loan and date, or loan and installment); the worker uses it
//! as the command id or the notification id, which is what makes every action happen
//! exactly once however often a day is evaluated.
//!
//! The rules added for issue 7 live in submodules: [`lead_routing`] (after every
//! consume: leads without an officer), [`risk_alerts`] (every day: overdue-rate
//! crossings; and on each credit assessment: score drops) and [`daily_report`] (when a
//! day is over).

mod daily_report;
mod lead_routing;
mod risk_alerts;

pub use daily_report::{BookOnDay, book_on, daily_report};
pub use lead_routing::{OfficerRoute, RoutingTable, lead_routing};
pub use risk_alerts::{OverdueCount, credit_score_drop, overdue_by_segment, overdue_rate_alerts};

use std::collections::BTreeMap;

use chrono::NaiveDate;
use loan_contract::notification::{DueReminder, FollowUpOverdue, Notification};
use loan_domain::collection::{
    self, CollectionCase, OpenCollectionCase, Resolution, ResolveCollectionCase,
};
use loan_domain::loan::{EvaluateDelinquency, Loan, LoanStatus};
use loan_domain::servicing;
use loan_domain::{CollectionCaseId, CommandKind, LoanId, Money, Rate};
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
    /// A loan more than N days past due gets a collection case; the case is resolved when
    /// the loan is cured, paid off or written off.
    Collections,
    /// A lead without an officer is assigned one by the routing table (`assign_officer`),
    /// or reported when nobody can take it.
    LeadRouting,
    /// Overdue rate of the portfolio or a segment crossing its threshold; a customer's
    /// credit score dropping by more than the configured points.
    RiskAlerts,
    /// When a business day is over: its summary, published and kept as a read model.
    DailyReport,
}

impl Rule {
    pub const ALL: [Rule; 7] = [
        Rule::DelinquencySweep,
        Rule::DueReminder,
        Rule::FollowUpWatch,
        Rule::Collections,
        Rule::LeadRouting,
        Rule::RiskAlerts,
        Rule::DailyReport,
    ];

    /// Stable snake_case name (in ids, tables, notifications).
    pub fn name(self) -> &'static str {
        match self {
            Rule::DelinquencySweep => "delinquency_sweep",
            Rule::DueReminder => "due_reminder",
            Rule::FollowUpWatch => "follow_up_watch",
            Rule::Collections => "collections",
            Rule::LeadRouting => "lead_routing",
            Rule::RiskAlerts => "risk_alerts",
            Rule::DailyReport => "daily_report",
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.name() == name)
    }
}

/// Parses a rate threshold (`0.05`): a decimal between 0 and 1, at most 8 decimals.
pub fn parse_threshold(text: &str) -> Result<Rate, crate::AutomationError> {
    Rate::parse(text)
        .ok()
        .and_then(|rate| {
            rate.within(rust_decimal::Decimal::ZERO, rust_decimal::Decimal::ONE)
                .ok()
        })
        .ok_or_else(|| {
            crate::AutomationError::Config(format!(
                "{text:?} is not a rate between 0 and 1 (e.g. 0.05)"
            ))
        })
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
    /// A loan more than this many days past due gets a collection case (default 1).
    pub collection_after_days: u32,
    /// The team new collection cases are assigned to (default `collections`).
    pub collection_team: String,
    /// Who takes new leads (default: empty, the rule is off).
    pub routing: RoutingTable,
    /// An overdue rate above this fires a `risk_alert` (default 0.05; `None`: off).
    pub overdue_rate_threshold: Option<Rate>,
    /// A credit score falling by more than this many points between two consecutive
    /// assessments fires a `credit_score_drop` (default 50; `None`: off).
    pub credit_drop_points: Option<u16>,
    /// Who hears about risk alerts (the notifications' `recipients`; default `risk`).
    pub risk_recipients: Vec<String>,
    /// Who receives the daily report (default `management`).
    pub report_recipients: Vec<String>,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            calendar: BusinessCalendar::default(),
            reminder_days_before: 3,
            follow_up_after_days: 3,
            managers: BTreeMap::new(),
            default_manager: None,
            collection_after_days: 1,
            collection_team: "collections".into(),
            routing: RoutingTable::default(),
            overdue_rate_threshold: Rate::parse("0.05").ok(),
            credit_drop_points: Some(50),
            risk_recipients: vec!["risk".into()],
            report_recipients: vec!["management".into()],
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
    /// The loan it is about; `None` for a segment, a customer or a whole day.
    pub loan_id: Option<LoanId>,
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
    actions.extend(collections(portfolio, day, config));
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
                loan_id: Some(*loan_id),
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
                loan_id: Some(*loan_id),
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
        loan_id: Some(loan_id),
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

/// The id of a loan's `number`-th collection case (from 1) for the arrears episode whose
/// oldest unpaid installment fell due on `oldest_due`: stable, so an opening decided again
/// (a day caught up, an opening still pending) names the same case.
pub fn collection_case_id(
    loan_id: LoanId,
    number: usize,
    oldest_due: NaiveDate,
) -> CollectionCaseId {
    CollectionCaseId(action_id(
        Rule::Collections,
        &format!("case/{loan_id}/{number}/{oldest_due}"),
    ))
}

/// The collections rule of `day` (every calendar day: the queue is kept current):
/// * a loan in servicing with no open case that is more than `collection_after_days` days
///   past due on `day` gets `open_collection_case`, assigned to `collection_team` — once
///   per case: the command id and the case id name the loan, the case's number and the due
///   date of the oldest unpaid installment;
/// * a loan with an open case that is cured (no arrears on `day`), paid off or written
///   off gets `resolve_collection_case` — once per case and loan version (the id names
///   both: a resolution refused because the loan moved on meanwhile is decided again
///   when the loan moves again).
pub fn collections(portfolio: &Portfolio, day: NaiveDate, config: &RuleConfig) -> Vec<Action> {
    let threshold = config.collection_after_days;
    let mut actions = Vec::new();
    for (loan_id, file) in portfolio.loans() {
        let open_case = file
            .cases
            .last()
            .filter(|id| portfolio.case(**id).is_some_and(CollectionCase::is_open));
        match open_case {
            Some(case_id) => {
                if let Some(action) = resolve_case(*loan_id, file, *case_id, day) {
                    actions.push(action);
                }
            }
            None => {
                if let Some(action) = open_case_for(*loan_id, file, day, threshold, config) {
                    actions.push(action);
                }
            }
        }
    }
    actions
}

fn open_case_for(
    loan_id: LoanId,
    file: &LoanFile,
    day: NaiveDate,
    threshold: u32,
    config: &RuleConfig,
) -> Option<Action> {
    let account = collection::in_servicing(&file.loan)?;
    let position = account.position_as_of(&account.payments, day).ok()?;
    let days_past_due = servicing::days_past_due(&account.schedule, &position.installments, day);
    if days_past_due <= threshold {
        return None;
    }
    let (number, oldest_due) = account
        .schedule
        .installments
        .iter()
        .zip(&position.installments)
        .find(|(i, p)| i.due_date < day && !servicing::fully_paid(i, p))
        .map(|(i, _)| (i.number, i.due_date))?;
    let case_number = file.cases.len() + 1;
    let case_id = collection_case_id(loan_id, case_number, oldest_due);
    let reason = format!(
        "installment {number} due {oldest_due} is unpaid on {day}: {days_past_due} days past due, more than the {threshold} days allowed before collections"
    );
    let payload = serde_json::to_value(OpenCollectionCase {
        case_id,
        loan_id,
        team: config.collection_team.clone(),
        reason: reason.clone(),
    })
    .ok()?;
    Some(Action {
        id: action_id(
            Rule::Collections,
            &format!("open/{loan_id}/{case_number}/{oldest_due}"),
        ),
        rule: Rule::Collections,
        business_date: day,
        loan_id: Some(loan_id),
        reason,
        effect: Effect::Command {
            kind: CommandKind::OpenCollectionCase,
            payload,
        },
    })
}

fn resolve_case(
    loan_id: LoanId,
    file: &LoanFile,
    case_id: CollectionCaseId,
    day: NaiveDate,
) -> Option<Action> {
    let (resolution, reason) = match &file.loan {
        Loan::PaidOff(_) => (Resolution::PaidOff, "the loan is paid off".to_owned()),
        Loan::WrittenOff(account) => (
            Resolution::WrittenOff,
            format!(
                "the loan was written off on {}",
                account.written_off_on.unwrap_or(day)
            ),
        ),
        loan => {
            let account = collection::in_servicing(loan)?;
            let position = account.position_as_of(&account.payments, day).ok()?;
            if servicing::days_past_due(&account.schedule, &position.installments, day) > 0 {
                return None;
            }
            (
                Resolution::Cured,
                format!("the loan has no installment past due on {day}"),
            )
        }
    };
    let payload = serde_json::to_value(ResolveCollectionCase {
        case_id,
        resolution,
        reason: reason.clone(),
    })
    .ok()?;
    Some(Action {
        id: action_id(
            Rule::Collections,
            &format!("resolve/{case_id}/{}", file.version),
        ),
        rule: Rule::Collections,
        business_date: day,
        loan_id: Some(loan_id),
        reason: format!("case {case_id}: {reason}"),
        effect: Effect::Command {
            kind: CommandKind::ResolveCollectionCase,
            payload,
        },
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

    mod collections {
        //! The collections rule on hand-built portfolios: loans folded from hand-written
        //! events with the domain's own `evolve`, cases from hand-written openings.

        use super::*;
        use loan_domain::collection::CollectionCaseEvent;
        use loan_domain::loan::{Approver, Contract, LoanEvent, LoanPurpose};
        use loan_domain::schedule::{RepaymentMethod, ScheduleTerms, build_schedule};
        use loan_domain::servicing::Outstanding;
        use loan_domain::{Currency, CustomerId, Rate, RuleVersions};

        fn loan_id() -> LoanId {
            LoanId(Uuid::from_u128(0x10a1))
        }

        fn first_due() -> NaiveDate {
            d("2026-02-05")
        }

        /// 12,000 over 12 months, disbursed 2026-01-05, first due 2026-02-05, 3 grace days;
        /// then `more` events.
        fn loan(more: &[LoanEvent]) -> Loan {
            let principal = Money::parse("12000.00").unwrap();
            let rate = Rate::parse("0.12").unwrap();
            let currency = Currency::parse("CNY").unwrap();
            let schedule = build_schedule(&ScheduleTerms {
                principal,
                annual_rate: rate,
                term_months: 12,
                method: RepaymentMethod::EqualInstallment,
                first_due_date: first_due(),
            })
            .unwrap();
            let events = [
                LoanEvent::LeadCaptured {
                    loan_id: loan_id(),
                    customer_id: CustomerId(Uuid::from_u128(0xc1)),
                    channel: "app".into(),
                    purpose: LoanPurpose::Consumer,
                    requested_amount: principal,
                    currency: currency.clone(),
                    term_months: 12,
                    captured_on: d("2026-01-02"),
                },
                LoanEvent::SubmittedForReview {
                    documents: vec![],
                    submitted_on: d("2026-01-02"),
                },
                LoanEvent::ApplicationApproved {
                    approved_amount: principal,
                    annual_rate: rate,
                    term_months: 12,
                    approver: Approver::Underwriter { note: None },
                    approved_on: d("2026-01-03"),
                },
                LoanEvent::ContractSigned {
                    contract: Contract {
                        principal,
                        currency,
                        annual_rate: rate,
                        term_months: 12,
                        method: RepaymentMethod::EqualInstallment,
                        first_due_date: first_due(),
                        grace_days: 3,
                        daily_penalty_rate: Rate::parse("0.0005").unwrap(),
                        signed_on: d("2026-01-04"),
                    },
                },
                LoanEvent::LoanDisbursed {
                    payout_reference: "PO-1".into(),
                    value_date: d("2026-01-05"),
                    schedule,
                    rules: RuleVersions::current(),
                },
            ];
            Loan::replay(events.iter().chain(more))
        }

        fn overdue() -> LoanEvent {
            LoanEvent::LoanStatusChanged {
                as_of: d("2026-02-09"),
                from: LoanStatus::Disbursed,
                to: LoanStatus::Overdue,
                days_past_due: 4,
            }
        }

        fn written_off() -> LoanEvent {
            LoanEvent::LoanWrittenOff {
                reason: "unreachable".into(),
                as_of: d("2026-03-01"),
                days_past_due: 24,
                outstanding: Outstanding {
                    principal: Money::parse("12000.00").unwrap(),
                    interest: Money::ZERO,
                    penalty: Money::ZERO,
                },
                written_off_on: d("2026-03-01"),
            }
        }

        fn paid_off() -> LoanEvent {
            LoanEvent::LoanStatusChanged {
                as_of: d("2026-02-20"),
                from: LoanStatus::Overdue,
                to: LoanStatus::PaidOff,
                days_past_due: 0,
            }
        }

        /// A case opened for the loan; resolved as `resolved` if given.
        fn case(number: usize, resolved: Option<Resolution>) -> (CollectionCaseId, CollectionCase) {
            let id = collection_case_id(loan_id(), number, first_due());
            let mut events = vec![CollectionCaseEvent::CollectionCaseOpened {
                case_id: id,
                loan_id: loan_id(),
                customer_id: CustomerId(Uuid::from_u128(0xc1)),
                team: "collections".into(),
                currency: Currency::parse("CNY").unwrap(),
                days_past_due: 2,
                overdue_amount: Money::parse("1066.19").unwrap(),
                reason: "hand-built".into(),
                opened_on: d("2026-02-07"),
            }];
            if let Some(resolution) = resolved {
                events.push(CollectionCaseEvent::CollectionCaseResolved {
                    resolution,
                    reason: "hand-built".into(),
                    days_past_due: 0,
                    resolved_on: d("2026-02-08"),
                });
            }
            (id, CollectionCase::replay(&events))
        }

        fn portfolio(
            loan: Loan,
            version: u64,
            cases: &[(CollectionCaseId, CollectionCase)],
        ) -> Portfolio {
            let mut portfolio = Portfolio::default();
            portfolio.insert_loan(loan_id(), LoanFile::with(loan, d("2026-01-05"), version));
            for (id, case) in cases {
                portfolio.insert_case(*id, case.clone());
            }
            portfolio
        }

        /// What the rule decided: (command, case id, resolution) of each action.
        fn decided(actions: &[Action]) -> Vec<(CommandKind, Uuid, Option<String>)> {
            actions
                .iter()
                .map(|action| {
                    let Effect::Command { kind, payload } = &action.effect else {
                        panic!("the collections rule only sends commands: {action:?}");
                    };
                    assert_eq!(action.rule, Rule::Collections);
                    assert!(!action.reason.is_empty(), "a reason");
                    let case: Uuid = payload["case_id"].as_str().unwrap().parse().unwrap();
                    let resolution = payload["resolution"].as_str().map(str::to_owned);
                    (*kind, case, resolution)
                })
                .collect()
        }

        #[test]
        fn a_case_opens_beyond_the_threshold_and_resolves_as_the_loan_shows() {
            let config = RuleConfig::default();
            let (first, open) = case(1, None);
            let (_, cured_first) = case(1, Some(Resolution::Cured));
            let second = collection_case_id(loan_id(), 2, first_due());
            let open_k = CommandKind::OpenCollectionCase;
            let resolve_k = CommandKind::ResolveCollectionCase;
            let res = |r: &str| Some(r.to_owned());
            // (what, loan, its cases, day, expected)
            type Expected = Vec<(CommandKind, Uuid, Option<String>)>;
            type Cases = Vec<(CollectionCaseId, CollectionCase)>;
            let cases: Vec<(&str, Loan, Cases, &str, Expected)> = vec![
                ("not yet due", loan(&[]), vec![], "2026-02-05", vec![]),
                (
                    "1 day past due: at the threshold",
                    loan(&[]),
                    vec![],
                    "2026-02-06",
                    vec![],
                ),
                (
                    "2 days past due",
                    loan(&[]),
                    vec![],
                    "2026-02-07",
                    vec![(open_k, first.0, None)],
                ),
                (
                    "overdue, still no case",
                    loan(&[overdue()]),
                    vec![],
                    "2026-02-20",
                    vec![(open_k, first.0, None)],
                ),
                (
                    "case open, still past due",
                    loan(&[]),
                    vec![(first, open.clone())],
                    "2026-02-07",
                    vec![],
                ),
                (
                    "case open, loan not past due",
                    loan(&[]),
                    vec![(first, open.clone())],
                    "2026-02-05",
                    vec![(resolve_k, first.0, res("cured"))],
                ),
                (
                    "case open, loan paid off",
                    loan(&[overdue(), paid_off()]),
                    vec![(first, open.clone())],
                    "2026-02-20",
                    vec![(resolve_k, first.0, res("paid_off"))],
                ),
                (
                    "case open, loan written off",
                    loan(&[overdue(), written_off()]),
                    vec![(first, open.clone())],
                    "2026-03-02",
                    vec![(resolve_k, first.0, res("written_off"))],
                ),
                (
                    "first case cured, past due again",
                    loan(&[]),
                    vec![(first, cured_first.clone())],
                    "2026-02-07",
                    vec![(open_k, second.0, None)],
                ),
                (
                    "first case cured, not past due",
                    loan(&[]),
                    vec![(first, cured_first)],
                    "2026-02-05",
                    vec![],
                ),
                (
                    "written off, no case",
                    loan(&[overdue(), written_off()]),
                    vec![],
                    "2026-03-02",
                    vec![],
                ),
            ];
            for (what, loan, cases, day, expected) in cases {
                let portfolio = portfolio(loan, 7, &cases);
                let actions = collections(&portfolio, d(day), &config);
                assert_eq!(decided(&actions), expected, "{what}");
                // Deciding the same day again gives the same ids (exactly once).
                let again = collections(&portfolio, d(day), &config);
                assert_eq!(
                    actions.iter().map(|a| a.id).collect::<Vec<_>>(),
                    again.iter().map(|a| a.id).collect::<Vec<_>>(),
                    "{what}"
                );
            }
        }

        #[test]
        fn the_threshold_and_team_are_configured_and_ids_are_stable_across_days() {
            let config = RuleConfig {
                collection_after_days: 5,
                collection_team: "field-collections".into(),
                ..RuleConfig::default()
            };
            let portfolio = portfolio(loan(&[]), 5, &[]);
            // 5 days past due on 10 Feb: not yet; 6 on 11 Feb: open.
            assert!(collections(&portfolio, d("2026-02-10"), &config).is_empty());
            let on_11 = collections(&portfolio, d("2026-02-11"), &config);
            let on_12 = collections(&portfolio, d("2026-02-12"), &config);
            assert_eq!(on_11.len(), 1);
            let Effect::Command { payload, .. } = &on_11[0].effect else {
                panic!()
            };
            assert_eq!(payload["team"], "field-collections");
            assert!(
                on_11[0].reason.contains("6 days past due"),
                "{}",
                on_11[0].reason
            );
            // The same arrears episode (oldest unpaid installment) on a later day, before
            // the opening is folded back: the same case and command id.
            assert_eq!(on_11[0].id, on_12[0].id);
            assert_eq!(
                on_11[0].effect,
                Effect::Command {
                    kind: CommandKind::OpenCollectionCase,
                    payload: serde_json::to_value(OpenCollectionCase {
                        case_id: collection_case_id(loan_id(), 1, first_due()),
                        loan_id: loan_id(),
                        team: "field-collections".into(),
                        reason: on_11[0].reason.clone(),
                    })
                    .unwrap(),
                }
            );
            // A resolution decided at another loan version is another action.
            let (first, open) = case(1, None);
            let at = |version| {
                collections(
                    &portfolio_with(version, &first, &open),
                    d("2026-02-05"),
                    &RuleConfig::default(),
                )[0]
                .id
            };
            assert_eq!(at(8), at(8));
            assert_ne!(at(8), at(9));
        }

        fn portfolio_with(version: u64, id: &CollectionCaseId, case: &CollectionCase) -> Portfolio {
            portfolio(loan(&[]), version, &[(*id, case.clone())])
        }

        #[test]
        fn evolve_of_the_hand_built_loan_is_what_the_domain_folds() {
            // The hand-built states are real domain states, not look-alikes.
            assert_eq!(loan(&[]).status(), Some(LoanStatus::Disbursed));
            assert_eq!(loan(&[overdue()]).status(), Some(LoanStatus::Overdue));
            assert_eq!(
                loan(&[overdue(), written_off()]).status(),
                Some(LoanStatus::WrittenOff)
            );
            assert_eq!(
                loan(&[overdue(), paid_off()]).status(),
                Some(LoanStatus::PaidOff)
            );
        }
    }
}

/// Hand-built loans for the rules' unit tests: real domain states folded from
/// hand-written events with the domain's own `evolve`.
#[cfg(test)]
pub(crate) mod testing {
    use chrono::NaiveDate;
    use loan_domain::loan::{Approver, Contract, Loan, LoanEvent, LoanPurpose};
    use loan_domain::schedule::{RepaymentMethod, ScheduleTerms, build_schedule};
    use loan_domain::{Currency, CustomerId, LoanId, Money, Rate, RuleVersions};
    use uuid::Uuid;

    pub(crate) fn d(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    pub(crate) fn money(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    /// 12,000 at 12 % a year over 12 months (equal installments of 1,066.19; the first
    /// 120.00 interest and 946.19 principal), first due 2026-02-05, 3 grace days,
    /// disbursed on `disbursed_on`; then `more` events.
    pub(crate) fn disbursed_loan(disbursed_on: NaiveDate, more: &[LoanEvent]) -> Loan {
        let principal = money("12000.00");
        let rate = Rate::parse("0.12").unwrap();
        let currency = Currency::parse("CNY").unwrap();
        let first_due = d("2026-02-05");
        let schedule = build_schedule(&ScheduleTerms {
            principal,
            annual_rate: rate,
            term_months: 12,
            method: RepaymentMethod::EqualInstallment,
            first_due_date: first_due,
        })
        .unwrap();
        let events = [
            LoanEvent::LeadCaptured {
                loan_id: LoanId(Uuid::nil()),
                customer_id: CustomerId(Uuid::from_u128(0xc1)),
                channel: "app".into(),
                purpose: LoanPurpose::Consumer,
                requested_amount: principal,
                currency: currency.clone(),
                term_months: 12,
                captured_on: disbursed_on,
            },
            LoanEvent::SubmittedForReview {
                documents: vec![],
                submitted_on: disbursed_on,
            },
            LoanEvent::ApplicationApproved {
                approved_amount: principal,
                annual_rate: rate,
                term_months: 12,
                approver: Approver::Underwriter { note: None },
                approved_on: disbursed_on,
            },
            LoanEvent::ContractSigned {
                contract: Contract {
                    principal,
                    currency,
                    annual_rate: rate,
                    term_months: 12,
                    method: RepaymentMethod::EqualInstallment,
                    first_due_date: first_due,
                    grace_days: 3,
                    daily_penalty_rate: Rate::parse("0.0005").unwrap(),
                    signed_on: disbursed_on,
                },
            },
            LoanEvent::LoanDisbursed {
                payout_reference: "PO-1".into(),
                value_date: disbursed_on,
                schedule,
                rules: RuleVersions::current(),
            },
        ];
        Loan::replay(events.iter().chain(more))
    }

    /// A repayment as the loan folds it (payments are recomputed from their list; the
    /// recorded allocation is not needed by the rules).
    pub(crate) fn payment(reference: &str, amount: &str, value_date: &str) -> LoanEvent {
        LoanEvent::RepaymentRecorded {
            payment_reference: reference.into(),
            amount: money(amount),
            value_date: d(value_date),
            allocation: vec![],
            restatement: vec![],
            position_date: d(value_date),
            rules: RuleVersions::current(),
        }
    }
}
