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
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::SEGMENT_RULES_VERSION;
use crate::schema::ident;
use crate::sql::upsert;
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

const CUSTOMER_COLUMNS: &[(&str, &str)] = &[
    ("customer_id", "uuid"),
    ("name", "text"),
    ("gender", "text"),
    ("birth_date", "date"),
    ("region", "text"),
    ("channel", "text"),
    ("employer", "text"),
    ("risk_appetite", "text"),
    ("phone_masked", "text"),
    ("national_id_masked", "text"),
    ("bank_card_masked", "text"),
    ("monthly_income", "numeric"),
    ("monthly_debt_payments", "numeric"),
    ("total_assets", "numeric"),
    ("total_liabilities", "numeric"),
    ("registered_on", "date"),
    ("identity_verified_on", "date"),
    ("identity_method", "text"),
    ("credit_score", "int4"),
    ("credit_score_source", "text"),
    ("credit_assessed_on", "date"),
    ("risk_grade", "text"),
    ("value_tier", "text"),
    ("segment_rules_version", "text"),
    ("erased", "bool"),
    ("erased_on", "date"),
    ("version", "int8"),
    ("last_position", "int8"),
];

/// Rewrites the rows of `customers` (one multi-row upsert). Unregistered views are skipped.
pub(crate) async fn write_customers(
    tx: &mut Transaction<'_, Postgres>,
    schema: &str,
    views: &[&CustomerView],
) -> Result<(), sqlx::Error> {
    #[derive(Default)]
    struct Cols {
        customer_id: Vec<Uuid>,
        name: Vec<String>,
        gender: Vec<String>,
        birth_date: Vec<NaiveDate>,
        region: Vec<String>,
        channel: Vec<String>,
        employer: Vec<Option<String>>,
        risk_appetite: Vec<String>,
        phone: Vec<String>,
        national_id: Vec<String>,
        bank_card: Vec<String>,
        monthly_income: Vec<Decimal>,
        monthly_debt_payments: Vec<Decimal>,
        total_assets: Vec<Decimal>,
        total_liabilities: Vec<Decimal>,
        registered_on: Vec<NaiveDate>,
        identity_verified_on: Vec<Option<NaiveDate>>,
        identity_method: Vec<Option<String>>,
        credit_score: Vec<Option<i32>>,
        credit_score_source: Vec<Option<String>>,
        credit_assessed_on: Vec<Option<NaiveDate>>,
        risk_grade: Vec<String>,
        value_tier: Vec<String>,
        segment_rules_version: Vec<String>,
        erased: Vec<bool>,
        erased_on: Vec<Option<NaiveDate>>,
        version: Vec<i64>,
        last_position: Vec<i64>,
    }
    let mut c = Cols::default();
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
        c.customer_id.push(view.customer_id);
        c.name.push(profile.name.clone());
        c.gender.push(wire_name(&profile.gender));
        c.birth_date.push(profile.birth_date);
        c.region.push(profile.region.clone());
        c.channel.push(profile.channel.clone());
        c.employer.push(profile.employer.clone());
        c.risk_appetite.push(wire_name(&profile.risk_appetite));
        c.phone.push(masked(&profile.phone, erased, |v| v.masked()));
        c.national_id
            .push(masked(&profile.national_id, erased, |v| v.masked()));
        c.bank_card
            .push(masked(&profile.bank_card, erased, |v| v.masked()));
        let f = &profile.financials;
        c.monthly_income.push(f.monthly_income.amount());
        c.monthly_debt_payments
            .push(f.monthly_debt_payments.amount());
        c.total_assets.push(f.total_assets.amount());
        c.total_liabilities.push(f.total_liabilities.amount());
        c.registered_on.push(profile.registered_on);
        c.identity_verified_on.push(profile.identity_verified_on);
        c.identity_method.push(
            profile
                .identity_verified_on
                .and(view.identity_method.clone()),
        );
        c.credit_score.push(current.map(|a| i32::from(a.score)));
        c.credit_score_source
            .push(current.map(|a| a.source.clone()));
        c.credit_assessed_on.push(current.map(|a| a.assessed_on));
        c.risk_grade.push(wire_name(&profile.risk_grade()));
        c.value_tier.push(wire_name(&profile.value_tier()));
        c.segment_rules_version.push(SEGMENT_RULES_VERSION.into());
        c.erased.push(erased);
        c.erased_on.push(profile.erased_on);
        c.version.push(to_i64(view.version));
        c.last_position.push(to_i64(view.last_position));
    }
    if c.customer_id.is_empty() {
        return Ok(());
    }
    let sql = upsert(schema, "customers", CUSTOMER_COLUMNS, &["customer_id"]);
    sqlx::query(&sql)
        .bind(c.customer_id)
        .bind(c.name)
        .bind(c.gender)
        .bind(c.birth_date)
        .bind(c.region)
        .bind(c.channel)
        .bind(c.employer)
        .bind(c.risk_appetite)
        .bind(c.phone)
        .bind(c.national_id)
        .bind(c.bank_card)
        .bind(c.monthly_income)
        .bind(c.monthly_debt_payments)
        .bind(c.total_assets)
        .bind(c.total_liabilities)
        .bind(c.registered_on)
        .bind(c.identity_verified_on)
        .bind(c.identity_method)
        .bind(c.credit_score)
        .bind(c.credit_score_source)
        .bind(c.credit_assessed_on)
        .bind(c.risk_grade)
        .bind(c.value_tier)
        .bind(c.segment_rules_version)
        .bind(c.erased)
        .bind(c.erased_on)
        .bind(c.version)
        .bind(c.last_position)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const LOAN_COLUMNS: &[(&str, &str)] = &[
    ("loan_id", "uuid"),
    ("customer_id", "uuid"),
    ("channel", "text"),
    ("purpose", "text"),
    ("officer_id", "text"),
    ("status", "text"),
    ("currency", "text"),
    ("requested_amount", "numeric"),
    ("term_months", "int4"),
    ("captured_on", "date"),
    ("submitted_on", "date"),
    ("decided_on", "date"),
    ("decision_outcome", "text"),
    ("approved_on", "date"),
    ("approved_amount", "numeric"),
    ("annual_rate", "numeric"),
    ("rejected_on", "date"),
    ("withdrawn_on", "date"),
    ("signed_on", "date"),
    ("principal", "numeric"),
    ("method", "text"),
    ("first_due_date", "date"),
    ("grace_days", "int4"),
    ("daily_penalty_rate", "numeric"),
    ("disbursed_on", "date"),
    ("paid_off_on", "date"),
    ("written_off_on", "date"),
    ("outstanding_principal", "numeric"),
    ("outstanding_interest", "numeric"),
    ("outstanding_penalty", "numeric"),
    ("total_repaid", "numeric"),
    ("last_payment_on", "date"),
    ("last_payment_amount", "numeric"),
    ("next_due_date", "date"),
    ("next_due_amount", "numeric"),
    ("days_past_due", "int4"),
    ("aging_bucket", "text"),
    ("version", "int8"),
    ("last_position", "int8"),
    ("payments_count", "int4"),
    ("reversed_count", "int4"),
    ("position_date", "date"),
];

/// Rewrites the rows of `loans` (one multi-row upsert). Views before lead capture are skipped.
pub(crate) async fn write_loans(
    tx: &mut Transaction<'_, Postgres>,
    schema: &str,
    views: &[&LoanView],
) -> Result<(), sqlx::Error> {
    #[derive(Default)]
    struct Cols {
        loan_id: Vec<Uuid>,
        customer_id: Vec<Uuid>,
        channel: Vec<String>,
        purpose: Vec<String>,
        officer_id: Vec<Option<String>>,
        status: Vec<String>,
        currency: Vec<String>,
        requested_amount: Vec<Decimal>,
        term_months: Vec<i32>,
        captured_on: Vec<NaiveDate>,
        submitted_on: Vec<Option<NaiveDate>>,
        decided_on: Vec<Option<NaiveDate>>,
        decision_outcome: Vec<Option<String>>,
        approved_on: Vec<Option<NaiveDate>>,
        approved_amount: Vec<Option<Decimal>>,
        annual_rate: Vec<Option<Decimal>>,
        rejected_on: Vec<Option<NaiveDate>>,
        withdrawn_on: Vec<Option<NaiveDate>>,
        signed_on: Vec<Option<NaiveDate>>,
        principal: Vec<Option<Decimal>>,
        method: Vec<Option<String>>,
        first_due_date: Vec<Option<NaiveDate>>,
        grace_days: Vec<Option<i32>>,
        daily_penalty_rate: Vec<Option<Decimal>>,
        disbursed_on: Vec<Option<NaiveDate>>,
        paid_off_on: Vec<Option<NaiveDate>>,
        written_off_on: Vec<Option<NaiveDate>>,
        outstanding_principal: Vec<Decimal>,
        outstanding_interest: Vec<Decimal>,
        outstanding_penalty: Vec<Decimal>,
        total_repaid: Vec<Decimal>,
        last_payment_on: Vec<Option<NaiveDate>>,
        last_payment_amount: Vec<Option<Decimal>>,
        next_due_date: Vec<Option<NaiveDate>>,
        next_due_amount: Vec<Option<Decimal>>,
        days_past_due: Vec<Option<i32>>,
        aging_bucket: Vec<Option<String>>,
        version: Vec<i64>,
        last_position: Vec<i64>,
        payments_count: Vec<i32>,
        reversed_count: Vec<i32>,
        position_date: Vec<Option<NaiveDate>>,
    }
    let mut c = Cols::default();
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
        c.loan_id.push(view.loan_id);
        c.customer_id.push(app.customer_id.0);
        c.channel.push(app.channel.clone());
        c.purpose.push(wire_name(&app.purpose));
        c.officer_id.push(app.officer_id.clone());
        c.status.push(loan.status_name().to_owned());
        c.currency.push(app.currency.code().to_owned());
        c.requested_amount.push(app.requested_amount.amount());
        c.term_months.push(to_i32(app.term_months));
        c.captured_on.push(app.captured_on);
        c.submitted_on.push(view.submitted_on);
        c.decided_on.push(view.decided_on);
        c.decision_outcome.push(view.decision_outcome.clone());
        c.approved_on.push(view.approved_on);
        c.approved_amount
            .push(approved.map(|(amount, _)| amount.amount()));
        c.annual_rate.push(
            contract
                .map(|k| k.annual_rate.value())
                .or(approved.map(|(_, rate)| rate.value())),
        );
        c.rejected_on.push(view.rejected_on);
        c.withdrawn_on.push(view.withdrawn_on);
        c.signed_on.push(contract.map(|k| k.signed_on));
        c.principal.push(contract.map(|k| k.principal.amount()));
        c.method.push(contract.map(|k| wire_name(&k.method)));
        c.first_due_date.push(contract.map(|k| k.first_due_date));
        c.grace_days.push(contract.map(|k| to_i32(k.grace_days)));
        c.daily_penalty_rate
            .push(contract.map(|k| k.daily_penalty_rate.value()));
        c.disbursed_on.push(account.map(|a| a.disbursed_on));
        c.paid_off_on.push(view.paid_off_on);
        c.written_off_on
            .push(account.and_then(|a| a.written_off_on));
        let outstanding = account.map(|a| a.outstanding()).unwrap_or_default();
        c.outstanding_principal.push(outstanding.principal.amount());
        c.outstanding_interest.push(outstanding.interest.amount());
        c.outstanding_penalty.push(outstanding.penalty.amount());
        let payments = account.map_or(&[][..], |a| &a.payments[..]);
        c.total_repaid.push(
            payments
                .iter()
                .fold(Money::ZERO, |sum, p| sum.saturating_add(p.amount))
                .amount(),
        );
        // The latest counted payment: by value date, then recording order.
        let last = payments
            .iter()
            .enumerate()
            .max_by_key(|(index, p)| (p.value_date, *index))
            .map(|(_, p)| p);
        c.last_payment_on.push(last.map(|p| p.value_date));
        c.last_payment_amount.push(last.map(|p| p.amount.amount()));
        let next = match loan {
            Loan::Disbursed(a) | Loan::Repaying(a) | Loan::Overdue(a) => {
                servicing::next_due(&a.schedule, &a.position, a.position_date)
            }
            _ => None,
        };
        c.next_due_date.push(next.map(|n| n.due_date));
        c.next_due_amount.push(next.map(|n| n.amount.amount()));
        c.days_past_due
            .push(account.map(|a| to_i32(a.days_past_due())));
        c.aging_bucket
            .push(account.map(|a| a.bucket.as_str().to_owned()));
        c.version.push(to_i64(view.version));
        c.last_position.push(to_i64(view.last_position));
        c.payments_count
            .push(i32::try_from(payments.len()).unwrap_or(i32::MAX));
        c.reversed_count.push(account.map_or(0, |a| {
            i32::try_from(a.reversed_references.len()).unwrap_or(i32::MAX)
        }));
        c.position_date.push(account.map(|a| a.position_date));
    }
    if c.loan_id.is_empty() {
        return Ok(());
    }
    let sql = upsert(schema, "loans", LOAN_COLUMNS, &["loan_id"]);
    sqlx::query(&sql)
        .bind(c.loan_id)
        .bind(c.customer_id)
        .bind(c.channel)
        .bind(c.purpose)
        .bind(c.officer_id)
        .bind(c.status)
        .bind(c.currency)
        .bind(c.requested_amount)
        .bind(c.term_months)
        .bind(c.captured_on)
        .bind(c.submitted_on)
        .bind(c.decided_on)
        .bind(c.decision_outcome)
        .bind(c.approved_on)
        .bind(c.approved_amount)
        .bind(c.annual_rate)
        .bind(c.rejected_on)
        .bind(c.withdrawn_on)
        .bind(c.signed_on)
        .bind(c.principal)
        .bind(c.method)
        .bind(c.first_due_date)
        .bind(c.grace_days)
        .bind(c.daily_penalty_rate)
        .bind(c.disbursed_on)
        .bind(c.paid_off_on)
        .bind(c.written_off_on)
        .bind(c.outstanding_principal)
        .bind(c.outstanding_interest)
        .bind(c.outstanding_penalty)
        .bind(c.total_repaid)
        .bind(c.last_payment_on)
        .bind(c.last_payment_amount)
        .bind(c.next_due_date)
        .bind(c.next_due_amount)
        .bind(c.days_past_due)
        .bind(c.aging_bucket)
        .bind(c.version)
        .bind(c.last_position)
        .bind(c.payments_count)
        .bind(c.reversed_count)
        .bind(c.position_date)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Appends the history rows (idempotent: a row already there is left as it is).
pub(crate) async fn write_rows(
    tx: &mut Transaction<'_, Postgres>,
    schema: &str,
    rows: PortfolioRows,
) -> Result<(), sqlx::Error> {
    let s = ident(schema);
    if !rows.credit_scores.is_empty() {
        let r = rows.credit_scores;
        sqlx::query(&format!(
            "INSERT INTO {s}.credit_scores (customer_id, assessed_on, score, source, position)
             SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::int4[], $4::text[], $5::int8[])
             ON CONFLICT DO NOTHING"
        ))
        .bind(r.iter().map(|x| x.customer_id).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.assessed_on).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.score).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.source.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.position).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !rows.timeline.is_empty() {
        let r = rows.timeline;
        sqlx::query(&format!(
            "INSERT INTO {s}.loan_timeline (loan_id, position, version, event_type, business_date, recorded_at, actor_id, summary, details)
             SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::text[], $5::date[], $6::timestamptz[], $7::text[], $8::text[], $9::jsonb[])
             ON CONFLICT DO NOTHING"
        ))
        .bind(r.iter().map(|x| x.loan_id).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.position).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.version).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.event_type.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.business_date).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.recorded_at).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.actor_id.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.summary.clone()).collect::<Vec<_>>())
        .bind(r.into_iter().map(|x| x.details).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !rows.decisions.is_empty() {
        let r = rows.decisions;
        sqlx::query(&format!(
            "INSERT INTO {s}.decisions (loan_id, decided_on, rule_set_version, outcome, reasons, position, decided_by, actor_id)
             SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::text[], $4::text[], $5::jsonb[], $6::int8[], $7::text[], $8::text[])
             ON CONFLICT DO NOTHING"
        ))
        .bind(r.iter().map(|x| x.loan_id).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.decided_on).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.rule_set_version.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.outcome.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.reasons.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.position).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.decided_by.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.actor_id.clone()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
