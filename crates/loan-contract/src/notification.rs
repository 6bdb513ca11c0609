//! Notifications: what the automation rules tell people, published for an SMS, e-mail or
//! app gateway on `<prefix>.notify.<kind>`.
//!
//! Every notification carries a stable `id` (the same as its `Nats-Msg-Id` header), the
//! `rule` that fired, the `reason` it fired, and the business date it fired for, so a
//! gateway can de-duplicate and a person can tell why they were contacted. Contact data
//! is masked (`139****5678`): a notification never carries personal data in clear; the
//! gateway looks up the full address itself if it is allowed to.

use chrono::NaiveDate;
use loan_domain::loan::LoanStatus;
use loan_domain::{Currency, CustomerId, LoanId, Money};
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

/// A notification of any kind; `kind` names it on the wire and in the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notification {
    DueReminder(DueReminder),
    FollowUpOverdue(FollowUpOverdue),
}

/// The kinds of notification, each on its own subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotificationKind {
    DueReminder,
    FollowUpOverdue,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 2] = [
        NotificationKind::DueReminder,
        NotificationKind::FollowUpOverdue,
    ];

    /// Stable snake_case name: the `kind` field and the last subject token.
    pub fn name(self) -> &'static str {
        match self {
            NotificationKind::DueReminder => "due_reminder",
            NotificationKind::FollowUpOverdue => "follow_up_overdue",
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
        }
    }
}

impl Notification {
    pub fn kind(&self) -> NotificationKind {
        match self {
            Notification::DueReminder(_) => NotificationKind::DueReminder,
            Notification::FollowUpOverdue(_) => NotificationKind::FollowUpOverdue,
        }
    }

    /// The stable id (also the `Nats-Msg-Id`).
    pub fn id(&self) -> Uuid {
        match self {
            Notification::DueReminder(n) => n.id,
            Notification::FollowUpOverdue(n) => n.id,
        }
    }

    /// Why the rule fired.
    pub fn reason(&self) -> &str {
        match self {
            Notification::DueReminder(n) => &n.reason,
            Notification::FollowUpOverdue(n) => &n.reason,
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
}
