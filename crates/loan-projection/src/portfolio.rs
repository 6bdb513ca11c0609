//! The portfolio group: customer 360 (`customers`, `credit_scores`), `loans` with their
//! current money position, the loan timeline and the credit decisions.
//!
//! Customer and loan rows are rewritten whole from the aggregate's view once per batch
//! (one multi-row upsert per table); history rows (scores, timeline, decisions) are
//! appended. Money figures come from the domain (`Account::outstanding`,
//! `servicing::next_due`, `Account::days_past_due`) applied to the loan's recorded book.

use chrono::{DateTime, NaiveDate, Utc};
use loan_contract::{AnyEvent, EventEnvelope};
use loan_domain::Money;
use loan_domain::customer::{self, Customer, ERASED, Sensitive};
use loan_domain::loan::{Approver, Loan, LoanEvent, LoanStatus, Verdict};
use loan_domain::policy::RuleResult;
use loan_domain::servicing;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::SEGMENT_RULES_VERSION;
use crate::rows::{OnConflict, TableRows};
use crate::view::{
    Poison, customer_event_fits, evolve_loan, loan_event, to_i32, to_i64, wire_name,
};

/// A customer as the portfolio group knows it.
#[derive(Debug, Clone)]
pub(crate) struct CustomerView {
    pub(crate) customer_id: Uuid,
    pub(crate) customer: Customer,
    /// The domain keeps only the date of the identity verification; the method is ours.
    pub(crate) identity_method: Option<String>,
    pub(crate) version: u64,
    pub(crate) last_position: u64,
}

impl CustomerView {
    pub(crate) fn new(customer_id: Uuid) -> Self {
        CustomerView {
            customer_id,
            customer: Customer::Unregistered,
            identity_method: None,
            version: 0,
            last_position: 0,
        }
    }

    pub(crate) fn apply(
        &mut self,
        position: u64,
        events: &[EventEnvelope],
        rows: &mut PortfolioRows,
    ) -> Result<(), Poison> {
        for envelope in events {
            let AnyEvent::Customer(event) = &envelope.event else {
                return Err(Poison::new(
                    Some(envelope.event.type_name()),
                    "a loan event in a customer's commit",
                ));
            };
            if !customer_event_fits(&self.customer, event) {
                return Err(Poison::new(
                    Some(event.type_name()),
                    format!(
                        "{} does not fit a customer in status {}",
                        event.type_name(),
                        self.customer.status()
                    ),
                ));
            }
            let state = std::mem::take(&mut self.customer);
            self.customer = customer::evolve(state, event);
            match event {
                customer::CustomerEvent::IdentityVerified { method, .. } => {
                    self.identity_method = Some(method.clone());
                }
                customer::CustomerEvent::CreditAssessed {
                    score,
                    source,
                    assessed_on,
                } => rows.credit_scores.push(CreditScoreRow {
                    customer_id: self.customer_id,
                    assessed_on: *assessed_on,
                    score: i32::from(*score),
                    source: source.clone(),
                    position: to_i64(position),
                }),
                _ => {}
            }
            self.version = envelope.meta.version;
        }
        self.last_position = position;
        Ok(())
    }
}

/// A loan as the portfolio group knows it: the domain state plus the dates the domain
/// does not keep.
#[derive(Debug, Clone)]
pub(crate) struct LoanView {
    pub(crate) loan_id: Uuid,
    pub(crate) loan: Loan,
    pub(crate) submitted_on: Option<NaiveDate>,
    pub(crate) decided_on: Option<NaiveDate>,
    pub(crate) decision_outcome: Option<String>,
    pub(crate) approved_on: Option<NaiveDate>,
    pub(crate) rejected_on: Option<NaiveDate>,
    pub(crate) withdrawn_on: Option<NaiveDate>,
    pub(crate) paid_off_on: Option<NaiveDate>,
    pub(crate) version: u64,
    pub(crate) last_position: u64,
}

impl LoanView {
    pub(crate) fn new(loan_id: Uuid) -> Self {
        LoanView {
            loan_id,
            loan: Loan::NotCaptured,
            submitted_on: None,
            decided_on: None,
            decision_outcome: None,
            approved_on: None,
            rejected_on: None,
            withdrawn_on: None,
            paid_off_on: None,
            version: 0,
            last_position: 0,
        }
    }

    pub(crate) fn apply(
        &mut self,
        position: u64,
        events: &[EventEnvelope],
        rows: &mut PortfolioRows,
    ) -> Result<(), Poison> {
        let automated = events.iter().any(|e| {
            matches!(
                e.event,
                AnyEvent::Loan(LoanEvent::AutomatedDecisionMade { .. })
            )
        });
        for envelope in events {
            let event = loan_event(envelope)?;
            self.loan = evolve_loan(&self.loan, event)?;
            let decision = |decided_on: NaiveDate, outcome: &str, reasons: Value| DecisionRow {
                loan_id: self.loan_id,
                decided_on,
                rule_set_version: None,
                outcome: outcome.to_owned(),
                reasons,
                position: to_i64(position),
                decided_by: "underwriter".into(),
                actor_id: envelope.meta.actor.id.clone(),
            };
            match event {
                LoanEvent::SubmittedForReview { submitted_on, .. } => {
                    self.submitted_on = Some(*submitted_on);
                }
                LoanEvent::AutomatedDecisionMade {
                    decision: automated_decision,
                    decided_on,
                } => {
                    let outcome = wire_name(&automated_decision.outcome);
                    self.decided_on = Some(*decided_on);
                    self.decision_outcome = Some(outcome.clone());
                    rows.decisions.push(DecisionRow {
                        rule_set_version: Some(automated_decision.rule_set_version.clone()),
                        decided_by: "policy".into(),
                        ..decision(
                            *decided_on,
                            &outcome,
                            serde_json::to_value(&automated_decision.reasons)
                                .unwrap_or(Value::Null),
                        )
                    });
                }
                LoanEvent::ApplicationApproved {
                    approver,
                    approved_on,
                    ..
                } => {
                    self.approved_on = Some(*approved_on);
                    self.decided_on = Some(*approved_on);
                    self.decision_outcome = Some("approve".into());
                    if let (Approver::Underwriter { note }, false) = (approver, automated) {
                        let finding = RuleResult {
                            rule: "underwriter".into(),
                            passed: true,
                            detail: note.clone().unwrap_or_else(|| "approved".into()),
                        };
                        rows.decisions
                            .push(decision(*approved_on, "approve", json!([finding])));
                    }
                }
                LoanEvent::ApplicationRejected {
                    reasons,
                    rejected_on,
                } => {
                    self.rejected_on = Some(*rejected_on);
                    self.decided_on = Some(*rejected_on);
                    self.decision_outcome = Some("reject".into());
                    if !automated {
                        let findings: Vec<RuleResult> = reasons
                            .iter()
                            .map(|reason| RuleResult {
                                rule: "underwriter".into(),
                                passed: false,
                                detail: reason.clone(),
                            })
                            .collect();
                        rows.decisions
                            .push(decision(*rejected_on, "reject", json!(findings)));
                    }
                }
                LoanEvent::ApplicationWithdrawn { withdrawn_on, .. } => {
                    self.withdrawn_on = Some(*withdrawn_on);
                }
                LoanEvent::LoanStatusChanged {
                    from, to, as_of, ..
                } => {
                    if *to == LoanStatus::PaidOff {
                        self.paid_off_on = Some(*as_of);
                    } else if *from == LoanStatus::PaidOff {
                        self.paid_off_on = None;
                    }
                }
                _ => {}
            }
            rows.timeline.push(TimelineRow {
                loan_id: self.loan_id,
                position: to_i64(position),
                version: to_i64(envelope.meta.version),
                event_type: event.type_name().to_owned(),
                business_date: envelope.meta.business_date,
                recorded_at: envelope.meta.recorded_at,
                actor_id: envelope.meta.actor.id.clone(),
                summary: summary(event),
                details: details(event),
            });
            self.version = envelope.meta.version;
        }
        self.last_position = position;
        Ok(())
    }
}

/// The event's own fields, without its type tag.
fn details(event: &LoanEvent) -> Value {
    let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.remove("type");
    }
    value
}

/// One line for the timeline.
fn summary(event: &LoanEvent) -> String {
    match event {
        LoanEvent::LeadCaptured {
            channel,
            purpose,
            requested_amount,
            currency,
            term_months,
            ..
        } => format!(
            "lead captured via {channel}: {} {requested_amount} {currency} over {term_months} months",
            wire_name(purpose)
        ),
        LoanEvent::OfficerAssigned {
            officer_id,
            previous_officer_id,
        } => match previous_officer_id {
            Some(previous) => format!("officer {officer_id} assigned (was {previous})"),
            None => format!("officer {officer_id} assigned"),
        },
        LoanEvent::FollowUpLogged {
            note,
            next_follow_up_on,
            ..
        } => match next_follow_up_on {
            Some(next) => format!("follow-up: {note} (next on {next})"),
            None => format!("follow-up: {note}"),
        },
        LoanEvent::SubmittedForReview { documents, .. } => format!(
            "submitted for review with {}",
            documents
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        LoanEvent::AutomatedDecisionMade { decision, .. } => format!(
            "policy {} decided {}",
            decision.rule_set_version,
            wire_name(&decision.outcome)
        ),
        LoanEvent::ApplicationApproved {
            approved_amount,
            annual_rate,
            term_months,
            ..
        } => format!("approved {approved_amount} at {annual_rate} over {term_months} months"),
        LoanEvent::ApplicationRejected { reasons, .. } => {
            format!("rejected: {}", reasons.join("; "))
        }
        LoanEvent::ApplicationWithdrawn { reason, .. } => format!("withdrawn: {reason}"),
        LoanEvent::ContractSigned { contract } => format!(
            "contract signed: {} {} at {} over {} months, first due {}",
            contract.principal,
            contract.currency,
            contract.annual_rate,
            contract.term_months,
            contract.first_due_date
        ),
        LoanEvent::LoanDisbursed {
            payout_reference,
            value_date,
            ..
        } => format!("disbursed on {value_date} ({payout_reference})"),
        LoanEvent::RepaymentRecorded {
            payment_reference,
            amount,
            value_date,
            ..
        } => format!("repayment {payment_reference} of {amount} value-dated {value_date}"),
        LoanEvent::RepaymentReversed {
            payment_reference,
            amount,
            reason,
            ..
        } => format!("repayment {payment_reference} of {amount} reversed: {reason}"),
        LoanEvent::PenaltyAccrued { as_of, .. } => format!("penalty accrued through {as_of}"),
        LoanEvent::AgingBucketChanged {
            from,
            to,
            days_past_due,
            ..
        } => format!(
            "aging bucket {} -> {} ({days_past_due} days past due)",
            from.as_str(),
            to.as_str()
        ),
        LoanEvent::LoanStatusChanged {
            from,
            to,
            days_past_due,
            ..
        } => format!("status {from} -> {to} ({days_past_due} days past due)"),
        LoanEvent::LoanWrittenOff {
            reason,
            outstanding,
            ..
        } => format!(
            "written off ({reason}), outstanding {}",
            outstanding.total()
        ),
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CreditScoreRow {
    customer_id: Uuid,
    assessed_on: NaiveDate,
    score: i32,
    source: String,
    position: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct TimelineRow {
    loan_id: Uuid,
    position: i64,
    version: i64,
    event_type: String,
    business_date: Option<NaiveDate>,
    recorded_at: DateTime<Utc>,
    actor_id: String,
    summary: String,
    details: Value,
}

#[derive(Debug, Clone)]
pub(crate) struct DecisionRow {
    loan_id: Uuid,
    decided_on: NaiveDate,
    rule_set_version: Option<String>,
    outcome: String,
    reasons: Value,
    position: i64,
    decided_by: String,
    actor_id: String,
}

/// History rows appended by a batch.
#[derive(Debug, Default)]
pub(crate) struct PortfolioRows {
    credit_scores: Vec<CreditScoreRow>,
    timeline: Vec<TimelineRow>,
    decisions: Vec<DecisionRow>,
}

impl PortfolioRows {
    pub(crate) fn extend(&mut self, other: PortfolioRows) {
        self.credit_scores.extend(other.credit_scores);
        self.timeline.extend(other.timeline);
        self.decisions.extend(other.decisions);
    }
}

fn masked<T>(value: &Sensitive<T>, erased: bool, mask: impl Fn(&T) -> String) -> String {
    match value {
        Sensitive::Known(value) if !erased => mask(value),
        _ => ERASED.to_owned(),
    }
}

/// The rows of `customers` for the given views (unregistered ones have none).
pub(crate) fn customer_rows(views: &[&CustomerView]) -> TableRows {
    let mut rows = TableRows::new("customers", &["customer_id"], OnConflict::Update);
    for view in views {
        let Some(profile) = view.customer.profile() else {
            continue;
        };
        let erased = view.customer.is_erased();
        // The current score: latest assessed_on, then latest recorded (Profile::credit_score).
        let current = profile
            .credit_assessments
            .iter()
            .enumerate()
            .max_by_key(|(index, a)| (a.assessed_on, *index))
            .map(|(_, a)| a);
        let f = &profile.financials;
        rows.row()
            .uuid("customer_id", view.customer_id)
            .text("name", profile.name.clone())
            .text("gender", wire_name(&profile.gender))
            .date("birth_date", profile.birth_date)
            .text("region", profile.region.clone())
            .text("channel", profile.channel.clone())
            .text("employer", profile.employer.clone())
            .text("risk_appetite", wire_name(&profile.risk_appetite))
            .text(
                "phone_masked",
                masked(&profile.phone, erased, |v| v.masked()),
            )
            .text(
                "national_id_masked",
                masked(&profile.national_id, erased, |v| v.masked()),
            )
            .text(
                "bank_card_masked",
                masked(&profile.bank_card, erased, |v| v.masked()),
            )
            .money("monthly_income", f.monthly_income.amount())
            .money("monthly_debt_payments", f.monthly_debt_payments.amount())
            .money("total_assets", f.total_assets.amount())
            .money("total_liabilities", f.total_liabilities.amount())
            .date("registered_on", profile.registered_on)
            .date("identity_verified_on", profile.identity_verified_on)
            .text(
                "identity_method",
                profile
                    .identity_verified_on
                    .and(view.identity_method.clone()),
            )
            .int4("credit_score", current.map(|a| i32::from(a.score)))
            .text("credit_score_source", current.map(|a| a.source.clone()))
            .date("credit_assessed_on", current.map(|a| a.assessed_on))
            .text("risk_grade", wire_name(&profile.risk_grade()))
            .text("value_tier", wire_name(&profile.value_tier()))
            .text("segment_rules_version", SEGMENT_RULES_VERSION.to_owned())
            .boolean("erased", erased)
            .date("erased_on", profile.erased_on)
            .int8("version", to_i64(view.version))
            .int8("last_position", to_i64(view.last_position));
    }
    rows
}

/// The rows of `loans` for the given views (views before lead capture have none).
pub(crate) fn loan_rows(views: &[&LoanView]) -> TableRows {
    let mut rows = TableRows::new("loans", &["loan_id"], OnConflict::Update);
    for view in views {
        let loan = &view.loan;
        let Some(app) = loan.application() else {
            continue;
        };
        let contract = match loan {
            Loan::Signed(_, contract) => Some(contract.as_ref()),
            other => other.account().map(|account| &account.contract),
        };
        let approved = match &app.verdict {
            Verdict::Approved {
                approved_amount,
                annual_rate,
                ..
            } => Some((*approved_amount, *annual_rate)),
            _ => None,
        };
        let account = loan.account();
        let outstanding = account.map(|a| a.outstanding()).unwrap_or_default();
        let payments = account.map_or(&[][..], |a| &a.payments[..]);
        // The latest counted payment: by value date, then recording order.
        let last = payments
            .iter()
            .enumerate()
            .max_by_key(|(index, p)| (p.value_date, *index))
            .map(|(_, p)| p);
        let next = match loan {
            Loan::Disbursed(a) | Loan::Repaying(a) | Loan::Overdue(a) => {
                servicing::next_due(&a.schedule, &a.position, a.position_date)
            }
            _ => None,
        };
        rows.row()
            .uuid("loan_id", view.loan_id)
            .uuid("customer_id", app.customer_id.0)
            .text("channel", app.channel.clone())
            .text("purpose", wire_name(&app.purpose))
            .text("officer_id", app.officer_id.clone())
            .text("status", loan.status_name().to_owned())
            .text("currency", app.currency.code().to_owned())
            .money("requested_amount", app.requested_amount.amount())
            .int4("term_months", to_i32(app.term_months))
            .date("captured_on", app.captured_on)
            .date("submitted_on", view.submitted_on)
            .date("decided_on", view.decided_on)
            .text("decision_outcome", view.decision_outcome.clone())
            .date("approved_on", view.approved_on)
            .money(
                "approved_amount",
                approved.map(|(amount, _)| amount.amount()),
            )
            .decimal(
                "annual_rate",
                contract
                    .map(|k| k.annual_rate.value())
                    .or(approved.map(|(_, rate)| rate.value())),
            )
            .date("rejected_on", view.rejected_on)
            .date("withdrawn_on", view.withdrawn_on)
            .date("signed_on", contract.map(|k| k.signed_on))
            .money("principal", contract.map(|k| k.principal.amount()))
            .text("method", contract.map(|k| wire_name(&k.method)))
            .date("first_due_date", contract.map(|k| k.first_due_date))
            .int4("grace_days", contract.map(|k| to_i32(k.grace_days)))
            .decimal(
                "daily_penalty_rate",
                contract.map(|k| k.daily_penalty_rate.value()),
            )
            .date("disbursed_on", account.map(|a| a.disbursed_on))
            .date("paid_off_on", view.paid_off_on)
            .date("written_off_on", account.and_then(|a| a.written_off_on))
            .money("outstanding_principal", outstanding.principal.amount())
            .money("outstanding_interest", outstanding.interest.amount())
            .money("outstanding_penalty", outstanding.penalty.amount())
            .money(
                "total_repaid",
                payments
                    .iter()
                    .fold(Money::ZERO, |sum, p| sum.saturating_add(p.amount))
                    .amount(),
            )
            .date("last_payment_on", last.map(|p| p.value_date))
            .money("last_payment_amount", last.map(|p| p.amount.amount()))
            .date("next_due_date", next.map(|n| n.due_date))
            .money("next_due_amount", next.map(|n| n.amount.amount()))
            .int4("days_past_due", account.map(|a| to_i32(a.days_past_due())))
            .text(
                "aging_bucket",
                account.map(|a| a.bucket.as_str().to_owned()),
            )
            .int8("version", to_i64(view.version))
            .int8("last_position", to_i64(view.last_position))
            .int4(
                "payments_count",
                i32::try_from(payments.len()).unwrap_or(i32::MAX),
            )
            .int4(
                "reversed_count",
                account.map_or(0, |a| {
                    i32::try_from(a.reversed_references.len()).unwrap_or(i32::MAX)
                }),
            )
            .date("position_date", account.map(|a| a.position_date));
    }
    rows
}

impl PortfolioRows {
    /// The history rows as appends (idempotent: a row already there is left as it is).
    pub(crate) fn into_tables(self) -> [TableRows; 3] {
        let mut scores = TableRows::new(
            "credit_scores",
            &["customer_id", "position"],
            OnConflict::Ignore,
        );
        for x in self.credit_scores {
            scores
                .row()
                .uuid("customer_id", x.customer_id)
                .date("assessed_on", x.assessed_on)
                .int4("score", x.score)
                .text("source", x.source)
                .int8("position", x.position);
        }
        let mut timeline =
            TableRows::new("loan_timeline", &["loan_id", "version"], OnConflict::Ignore);
        for x in self.timeline {
            timeline
                .row()
                .uuid("loan_id", x.loan_id)
                .int8("position", x.position)
                .int8("version", x.version)
                .text("event_type", x.event_type)
                .date("business_date", x.business_date)
                .timestamp("recorded_at", x.recorded_at)
                .text("actor_id", x.actor_id)
                .text("summary", x.summary)
                .json("details", x.details);
        }
        let mut decisions =
            TableRows::new("decisions", &["loan_id", "position"], OnConflict::Ignore);
        for x in self.decisions {
            decisions
                .row()
                .uuid("loan_id", x.loan_id)
                .date("decided_on", x.decided_on)
                .text("rule_set_version", x.rule_set_version)
                .text("outcome", x.outcome)
                .json("reasons", x.reasons)
                .int8("position", x.position)
                .text("decided_by", x.decided_by)
                .text("actor_id", x.actor_id);
        }
        [scores, timeline, decisions]
    }
}
