//! Notifications: what the automation rules tell people, published for an SMS, e-mail or
//! app gateway on `<prefix>.notify.<kind>`.
//!
//! Every notification carries a stable `id` (the same as its `Nats-Msg-Id` header), the
//! `rule` that fired, the `reason` it fired, and the business date it fired for, so a
//! gateway can de-duplicate and a person can tell why they were contacted. Contact data
//! is masked (`139****5678`): a notification never carries personal data in clear; the
//! gateway looks up the full address itself if it is allowed to.

use chrono::NaiveDate;
use loan_domain::loan::{LoanPurpose, LoanStatus};
use loan_domain::{Currency, CustomerId, LoanId, Money, Rate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `due_reminder`: an installment falls due in a few days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DueReminder {
    /// Stable id, also sent as the `Nats-Msg-Id` header: the same notification
    /// re-published (after a crash) has the same id; gateways drop repeats.
    pub id: Uuid,
    /// The rule that fired.
    pub rule: String,
    /// Why it fired, in words, with the figures it used.
    pub reason: String,
    /// The business day the rule fired for.
    pub business_date: NaiveDate,
    pub loan_id: LoanId,
    pub customer_id: CustomerId,
    /// Installment number, from 1.
    pub installment: u32,
    pub due_date: NaiveDate,
    /// What is still unpaid on the installment on `business_date`.
    pub amount_due: Money,
    pub currency: Currency,
    /// The customer's phone, masked (`139****5678`); `erased` after erasure; absent
    /// when the customer is unknown to the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_masked: Option<String>,
}

/// `follow_up_overdue`: a lead or review nobody touched for too long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpOverdue {
    /// Stable id, also sent as the `Nats-Msg-Id` header: the same notification
    /// re-published (after a crash) has the same id; gateways drop repeats.
    pub id: Uuid,
    /// The rule that fired.
    pub rule: String,
    /// Why it fired, in words, with the figures it used.
    pub reason: String,
    /// The business day the rule fired for.
    pub business_date: NaiveDate,
    pub loan_id: LoanId,
    pub customer_id: CustomerId,
    pub loan_status: LoanStatus,
    /// The officer assigned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer_id: Option<String>,
    /// The officer's manager (from the automation's configuration), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_id: Option<String>,
    /// Who the gateway should notify: the officer and the manager (or the manager alone
    /// for an unassigned lead).
    pub recipients: Vec<String>,
    pub last_touched_on: NaiveDate,
    pub days_untouched: u32,
}

/// `lead_unrouted`: a new lead no officer of the routing table can take (none covers its
/// region and purpose, or all who do are at capacity) and no default officer is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadUnrouted {
    /// Stable id (per lead), also sent as the `Nats-Msg-Id` header.
    pub id: Uuid,
    /// The rule that fired.
    pub rule: String,
    /// Why it fired, in words, with the figures it used.
    pub reason: String,
    /// The business day the rule fired for.
    pub business_date: NaiveDate,
    pub loan_id: LoanId,
    pub customer_id: CustomerId,
    /// The customer's region (`unknown` when the customer is unknown to the sender).
    pub region: String,
    pub purpose: LoanPurpose,
    /// Who the gateway should notify (the default manager), empty when none is set.
    pub recipients: Vec<String>,
}

/// Which way an overdue rate crossed its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Crossing {
    /// The rate rose above the threshold (it was at or below it, or never alerted).
    Above,
    /// The rate fell back to the threshold or below after an alert: the alert re-arms.
    Recovered,
}

/// `risk_alert`: the overdue rate of the portfolio or of a segment crossed its threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskAlert {
    /// Stable id (segment, crossing date and direction), also the `Nats-Msg-Id`.
    pub id: Uuid,
    /// The rule that fired.
    pub rule: String,
    /// Why it fired, in words, with the figures it used.
    pub reason: String,
    /// The business day the rule fired for (the overdue rate is as of this day).
    pub business_date: NaiveDate,
    /// `portfolio`, or `region:<region>`, `channel:<channel>`, `risk_grade:<grade>`.
    pub segment: String,
    pub crossing: Crossing,
    /// Loans more than their grace days past due on `business_date`.
    pub overdue_loans: u64,
    /// Loans in servicing on `business_date` (disbursed, not paid off, not written off).
    pub active_loans: u64,
    /// `overdue_loans / active_loans`, rounded half-up to 4 decimals (compared unrounded).
    pub overdue_rate: Rate,
    pub threshold: Rate,
    /// Who the gateway should notify (the configured risk recipients).
    pub recipients: Vec<String>,
}

/// `credit_score_drop`: a customer's credit score fell by more than the configured
/// number of points between two consecutive assessments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditScoreDrop {
    /// Stable id (the assessment's event id), also the `Nats-Msg-Id`.
    pub id: Uuid,
    /// The rule that fired.
    pub rule: String,
    /// Why it fired, in words, with the figures it used.
    pub reason: String,
    /// The business day the assessment was recorded on.
    pub business_date: NaiveDate,
    pub customer_id: CustomerId,
    /// The event id of the `credit_assessed` event that dropped.
    pub assessment_event_id: Uuid,
    pub previous_score: u16,
    pub previous_assessed_on: NaiveDate,
    pub score: u16,
    pub assessed_on: NaiveDate,
    /// `previous_score - score`.
    pub drop_points: u16,
    /// A drop of more than this many points fires.
    pub threshold_points: u16,
    /// The customer's loans still open or in servicing.
    pub loan_ids: Vec<LoanId>,
    /// Who the gateway should notify (the configured risk recipients).
    pub recipients: Vec<String>,
}

/// `daily_report`: the day's summary, published when the business day is over (and kept
/// in `automation.daily_reports`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DailyReport {
    /// Stable id (the business date), also the `Nats-Msg-Id`.
    pub id: Uuid,
    /// The rule that fired.
    pub rule: String,
    /// Why it fired, in words, with the figures it used.
    pub reason: String,
    /// The business day reported on.
    pub business_date: NaiveDate,
    /// Leads captured (recorded on the day).
    pub new_leads: u64,
    /// Applications approved (by an underwriter or the policy).
    pub approvals: u64,
    /// Principal disbursed.
    pub disbursed_amount: Money,
    /// Repayments recorded (gross: a reversal is not netted).
    pub repaid_amount: Money,
    /// Loans that turned `overdue`.
    pub newly_overdue: u64,
    /// Loans in servicing at the end of the day.
    pub active_loans: u64,
    /// Outstanding principal of the loans in servicing at the end of the day.
    pub outstanding_principal: Money,
    /// Outstanding principal of those more than 30 days past due.
    pub par30_principal: Money,
    /// `par30_principal / outstanding_principal`, half-up to 4 decimals (0 on an empty book).
    pub par30: Rate,
    /// Who the gateway should send it to (the configured report recipients).
    pub recipients: Vec<String>,
}

/// A notification of any kind; `kind` names it on the wire and in the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notification {
    DueReminder(DueReminder),
    FollowUpOverdue(FollowUpOverdue),
    LeadUnrouted(LeadUnrouted),
    RiskAlert(RiskAlert),
    CreditScoreDrop(CreditScoreDrop),
    DailyReport(DailyReport),
}

/// The kinds of notification, each on its own subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotificationKind {
    DueReminder,
    FollowUpOverdue,
    LeadUnrouted,
    RiskAlert,
    CreditScoreDrop,
    DailyReport,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 6] = [
        NotificationKind::DueReminder,
        NotificationKind::FollowUpOverdue,
        NotificationKind::LeadUnrouted,
        NotificationKind::RiskAlert,
        NotificationKind::CreditScoreDrop,
        NotificationKind::DailyReport,
    ];

    /// Stable snake_case name: the `kind` field and the last subject token.
    pub fn name(self) -> &'static str {
        match self {
            NotificationKind::DueReminder => "due_reminder",
            NotificationKind::FollowUpOverdue => "follow_up_overdue",
            NotificationKind::LeadUnrouted => "lead_unrouted",
            NotificationKind::RiskAlert => "risk_alert",
            NotificationKind::CreditScoreDrop => "credit_score_drop",
            NotificationKind::DailyReport => "daily_report",
        }
    }

    /// Who receives it and what for (AsyncAPI description).
    pub fn description(self) -> &'static str {
        match self {
            NotificationKind::DueReminder => {
                "A reminder to the customer that an installment falls due in a few days (once per installment)."
            }
            NotificationKind::FollowUpOverdue => {
                "A lead or review untouched for too long: to its officer and the officer's manager."
            }
            NotificationKind::LeadUnrouted => {
                "A new lead no officer of the routing table can take: to the default manager (once per lead)."
            }
            NotificationKind::RiskAlert => {
                "The overdue rate of the portfolio or a segment crossed its threshold, upward or back down: to the risk team (once per crossing)."
            }
            NotificationKind::CreditScoreDrop => {
                "A customer's credit score dropped by more than the configured points between two consecutive assessments: to the risk team (once per assessment)."
            }
            NotificationKind::DailyReport => {
                "The summary of a business day (new leads, approvals, disbursed and repaid amounts, newly overdue, PAR30), when the day is over (once per date)."
            }
        }
    }
}

impl Notification {
    pub fn kind(&self) -> NotificationKind {
        match self {
            Notification::DueReminder(_) => NotificationKind::DueReminder,
            Notification::FollowUpOverdue(_) => NotificationKind::FollowUpOverdue,
            Notification::LeadUnrouted(_) => NotificationKind::LeadUnrouted,
            Notification::RiskAlert(_) => NotificationKind::RiskAlert,
            Notification::CreditScoreDrop(_) => NotificationKind::CreditScoreDrop,
            Notification::DailyReport(_) => NotificationKind::DailyReport,
        }
    }

    /// The stable id (also the `Nats-Msg-Id`).
    pub fn id(&self) -> Uuid {
        match self {
            Notification::DueReminder(n) => n.id,
            Notification::FollowUpOverdue(n) => n.id,
            Notification::LeadUnrouted(n) => n.id,
            Notification::RiskAlert(n) => n.id,
            Notification::CreditScoreDrop(n) => n.id,
            Notification::DailyReport(n) => n.id,
        }
    }

    /// Why the rule fired.
    pub fn reason(&self) -> &str {
        match self {
            Notification::DueReminder(n) => &n.reason,
            Notification::FollowUpOverdue(n) => &n.reason,
            Notification::LeadUnrouted(n) => &n.reason,
            Notification::RiskAlert(n) => &n.reason,
            Notification::CreditScoreDrop(n) => &n.reason,
            Notification::DailyReport(n) => &n.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_names_its_kind_and_id_in_the_body() {
        let n = Notification::FollowUpOverdue(FollowUpOverdue {
            id: Uuid::nil(),
            rule: "follow_up_watch".into(),
            reason: "untouched".into(),
            business_date: NaiveDate::from_ymd_opt(2026, 1, 8).unwrap(),
            loan_id: LoanId(Uuid::nil()),
            customer_id: CustomerId(Uuid::nil()),
            loan_status: LoanStatus::Lead,
            officer_id: None,
            manager_id: Some("m1".into()),
            recipients: vec!["m1".into()],
            last_touched_on: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
            days_untouched: 3,
        });
        let value = serde_json::to_value(&n).unwrap();
        assert_eq!(value["kind"], "follow_up_overdue");
        assert_eq!(value["id"], Uuid::nil().to_string());
        let back: Notification = serde_json::from_value(value).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn every_kind_has_a_distinct_name_and_the_new_kinds_round_trip() {
        let names: std::collections::BTreeSet<_> =
            NotificationKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), NotificationKind::ALL.len());
        let day = NaiveDate::from_ymd_opt(2026, 2, 9).unwrap();
        let rate = |text: &str| Rate::parse(text).unwrap();
        let alert = Notification::RiskAlert(RiskAlert {
            id: Uuid::from_u128(1),
            rule: "risk_alerts".into(),
            reason: "2 of 3".into(),
            business_date: day,
            segment: "region:guangdong".into(),
            crossing: Crossing::Recovered,
            overdue_loans: 2,
            active_loans: 3,
            overdue_rate: rate("0.6667"),
            threshold: rate("0.5"),
            recipients: vec!["risk".into()],
        });
        let report = Notification::DailyReport(DailyReport {
            id: Uuid::from_u128(2),
            rule: "daily_report".into(),
            reason: "day over".into(),
            business_date: day,
            new_leads: 4,
            approvals: 3,
            disbursed_amount: Money::parse("36000.00").unwrap(),
            repaid_amount: Money::ZERO,
            newly_overdue: 2,
            active_loans: 3,
            outstanding_principal: Money::parse("36000.00").unwrap(),
            par30_principal: Money::ZERO,
            par30: rate("0"),
            recipients: vec![],
        });
        for (n, kind) in [(alert, "risk_alert"), (report, "daily_report")] {
            let value = serde_json::to_value(&n).unwrap();
            assert_eq!(value["kind"], kind);
            assert_eq!(n.kind().name(), kind);
            let back: Notification = serde_json::from_value(value).unwrap();
            assert_eq!(back, n);
        }
        let value = serde_json::to_value(Crossing::Recovered).unwrap();
        assert_eq!(value, "recovered");
    }
}
