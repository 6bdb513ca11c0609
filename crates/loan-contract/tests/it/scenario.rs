//! A scripted history that exercises every command and every event type through the real
//! path: JSON request → `decode_command` → `decide` → `seal` → `evolve`.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeZone, Utc};
use loan_contract::event::CommitContext;
use loan_contract::{
    AnyCommand, AnyEvent, CommandReply, ErrorReply, EventEnvelope, decode_command,
};
use loan_domain::collection::{self, CollectionCase};
use loan_domain::customer::{self, Customer};
use loan_domain::loan::{self, Loan};
use loan_domain::{AggregateType, CommandKind, Context, LendingRules};
use loan_testkit::synthetic::{bank_card as luhn_card, national_id};
use serde_json::{Value, json};
use uuid::Uuid;

/// One applied (or refused) request of the script.
pub(crate) struct Step {
    pub kind: CommandKind,
    pub request: Value,
    pub reply: CommandReply,
}

/// An in-memory stand-in for the command service, enough to drive the contract.
#[derive(Default)]
pub(crate) struct Script {
    customers: HashMap<Uuid, (Customer, u64)>,
    loans: HashMap<Uuid, (Loan, u64)>,
    cases: HashMap<Uuid, (CollectionCase, u64)>,
    next_id: u128,
    pub today: Option<NaiveDate>,
    pub steps: Vec<Step>,
}

fn date(text: &str) -> NaiveDate {
    text.parse().expect("valid date")
}

impl Script {
    fn id(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | self.next_id)
    }

    /// Sends one command as a JSON request; returns the reply (events or error).
    pub(crate) fn send(
        &mut self,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
    ) -> CommandReply {
        let today = self.today.expect("set today first");
        let command_id = self.id();
        let request = json!({
            "command_id": command_id,
            "actor": { "id": format!("staff-{}", roles[0]), "roles": roles },
            "correlation_id": Uuid::from_u128(0xC0),
            "payload": payload,
        });
        let body = serde_json::to_vec(&request).expect("serialise request");
        let reply = match decode_command(kind, &body) {
            Err(error) => CommandReply::Error { error },
            Ok(decoded) => self.apply(decoded, today),
        };
        self.steps.push(Step {
            kind,
            request,
            reply: reply.clone(),
        });
        reply
    }

    fn apply(&mut self, decoded: loan_contract::DecodedCommand, today: NaiveDate) -> CommandReply {
        let rules = LendingRules::default();
        let ctx = Context {
            actor: &decoded.envelope.actor,
            today,
            rules: &rules,
        };
        let aggregate_id = decoded.command.aggregate_id();
        let (aggregate_type, base_version, events) = match &decoded.command {
            AnyCommand::Customer(command) => {
                let (state, version) = self
                    .customers
                    .get(&aggregate_id)
                    .cloned()
                    .unwrap_or_default();
                match customer::decide(&state, command, &ctx) {
                    Ok(events) => (
                        AggregateType::Customer,
                        version,
                        events
                            .into_iter()
                            .map(AnyEvent::Customer)
                            .collect::<Vec<_>>(),
                    ),
                    Err(error) => {
                        return CommandReply::Error {
                            error: ErrorReply::from_domain(&error),
                        };
                    }
                }
            }
            AnyCommand::Loan(command) => {
                let (state, version) = self.loans.get(&aggregate_id).cloned().unwrap_or_default();
                let customer_id = match command {
                    loan::LoanCommand::CaptureLead(c) => Some(c.customer_id.0),
                    _ => state.application().map(|app| app.customer_id.0),
                };
                let customer = customer_id
                    .and_then(|id| self.customers.get(&id))
                    .map(|(c, _)| c.clone());
                match loan::decide(&state, command, customer.as_ref(), &ctx) {
                    Ok(events) => (
                        AggregateType::Loan,
                        version,
                        events.into_iter().map(AnyEvent::Loan).collect::<Vec<_>>(),
                    ),
                    Err(error) => {
                        return CommandReply::Error {
                            error: ErrorReply::from_domain(&error),
                        };
                    }
                }
            }
            AnyCommand::CollectionCase(command) => {
                let (state, version) = self.cases.get(&aggregate_id).cloned().unwrap_or_default();
                let loan_id = match command {
                    collection::CollectionCaseCommand::Open(c) => Some(c.loan_id.0),
                    _ => state.file().map(|file| file.loan_id.0),
                };
                let loan = loan_id
                    .and_then(|id| self.loans.get(&id))
                    .map(|(l, _)| l.clone());
                match collection::decide(&state, command, loan.as_ref(), &ctx) {
                    Ok(events) => (
                        AggregateType::CollectionCase,
                        version,
                        events
                            .into_iter()
                            .map(AnyEvent::CollectionCase)
                            .collect::<Vec<_>>(),
                    ),
                    Err(error) => {
                        return CommandReply::Error {
                            error: ErrorReply::from_domain(&error),
                        };
                    }
                }
            }
        };
        let commit = CommitContext {
            aggregate_id,
            base_version,
            recorded_at: Utc.from_utc_datetime(&today.and_hms_opt(9, 30, 0).expect("valid time")),
            command_id: decoded.envelope.command_id,
            correlation_id: decoded.envelope.correlation_id,
            causation_id: decoded.envelope.causation_id,
            actor: decoded.envelope.actor.clone(),
        };
        let mut ids = Vec::new();
        for _ in 0..events.len() {
            ids.push(self.id());
        }
        let mut ids = ids.into_iter();
        let sealed = EventEnvelope::seal(events, &commit, || ids.next().expect("enough ids"));
        let version = base_version + sealed.len() as u64;
        for envelope in &sealed {
            match &envelope.event {
                AnyEvent::Customer(event) => {
                    let entry = self.customers.entry(aggregate_id).or_default();
                    entry.0 = customer::evolve(std::mem::take(&mut entry.0), event);
                    entry.1 = version;
                }
                AnyEvent::Loan(event) => {
                    let entry = self.loans.entry(aggregate_id).or_default();
                    entry.0 = loan::evolve(std::mem::take(&mut entry.0), event);
                    entry.1 = version;
                }
                AnyEvent::CollectionCase(event) => {
                    let entry = self.cases.entry(aggregate_id).or_default();
                    entry.0 = collection::evolve(std::mem::take(&mut entry.0), event);
                    entry.1 = version;
                }
            }
        }
        CommandReply::Ok {
            aggregate_type,
            aggregate_id,
            version,
            events: sealed,
        }
    }

    pub(crate) fn loan(&self, id: Uuid) -> &Loan {
        &self.loans[&id].0
    }

    /// Every event the script committed, in order.
    pub(crate) fn events(&self) -> Vec<EventEnvelope> {
        self.steps
            .iter()
            .flat_map(|step| match &step.reply {
                CommandReply::Ok { events, .. } => events.clone(),
                CommandReply::Error { .. } => Vec::new(),
            })
            .collect()
    }
}

pub(crate) fn ok(reply: CommandReply) -> Vec<EventEnvelope> {
    match reply {
        CommandReply::Ok { events, .. } => events,
        CommandReply::Error { error } => panic!("command refused: {error:?}"),
    }
}

/// Runs the full scripted history: one customer, a loan from lead to write-off, a loan
/// approved by a person then withdrawn, and a rejected one; finally the customer is erased.
pub(crate) fn full_history() -> Script {
    let mut s = Script::default();
    let customer_id = Uuid::from_u128(0xC1);
    let (loan_a, loan_b, loan_c) = (
        Uuid::from_u128(0xA1),
        Uuid::from_u128(0xB1),
        Uuid::from_u128(0xD1),
    );
    s.today = Some(date("2026-01-05"));
    ok(s.send(
        CommandKind::RegisterCustomer,
        &["customer_service"],
        json!({
            "customer_id": customer_id, "name": "Wang Fang", "gender": "female", "birth_date": "1990-03-07",
            "phone": "+86 138 1234 5678", "national_id": national_id("11010519900307124"), "bank_card": luhn_card("622202123456789012"),
            "region": "beijing", "employer": "Acme Trading", "risk_appetite": "balanced", "channel": "app",
            "financials": { "monthly_income": "20000.00", "monthly_debt_payments": "1000.00", "total_assets": "350000.00", "total_liabilities": "50000.00" }
        }),
    ));
    ok(s.send(
        CommandKind::UpdateContact,
        &["customer_service"],
        json!({ "customer_id": customer_id, "region": "shanghai" }),
    ));
    ok(s.send(
        CommandKind::UpdateEmployment,
        &["customer_service"],
        json!({ "customer_id": customer_id, "employer": "Acme Shipping" }),
    ));
    ok(s.send(
        CommandKind::UpdateFinancials,
        &["underwriter"],
        json!({ "customer_id": customer_id, "financials": { "monthly_income": "22000.00", "monthly_debt_payments": "1000.00", "total_assets": "350000.00", "total_liabilities": "50000.00" } }),
    ));
    ok(s.send(CommandKind::RecordCreditAssessment, &["system"], json!({ "customer_id": customer_id, "score": 720, "source": "pboc", "assessed_on": "2026-01-04" })));
    ok(s.send(
        CommandKind::VerifyIdentity,
        &["system"],
        json!({ "customer_id": customer_id, "method": "face_match", "verified_on": "2026-01-05" }),
    ));

    // Loan A: lead → automated approval → signed → disbursed → repaying → overdue → written off.
    let lead = |loan_id: Uuid| json!({ "loan_id": loan_id, "customer_id": customer_id, "channel": "app", "purpose": "consumer", "requested_amount": "12000.00", "currency": "CNY", "term_months": 12 });
    let documents = json!(["id_card", "credit_report", "income_proof"]);
    ok(s.send(CommandKind::CaptureLead, &["loan_officer"], lead(loan_a)));
    ok(s.send(
        CommandKind::AssignOfficer,
        &["sales_manager"],
        json!({ "loan_id": loan_a, "officer_id": "officer-17" }),
    ));
    ok(s.send(CommandKind::LogFollowUp, &["loan_officer"], json!({ "loan_id": loan_a, "note": "Called; documents promised by Friday.", "next_follow_up_on": "2026-01-09" })));
    ok(s.send(
        CommandKind::SubmitForReview,
        &["loan_officer"],
        json!({ "loan_id": loan_a, "documents": documents }),
    ));
    ok(s.send(
        CommandKind::DecideAutomatically,
        &["system"],
        json!({ "loan_id": loan_a }),
    ));
    ok(s.send(
        CommandKind::SignContract,
        &["loan_officer"],
        json!({ "loan_id": loan_a, "principal": "12000.00", "annual_rate": "0.0990", "term_months": 12, "method": "equal_installment",
                "first_due_date": "2026-02-10", "grace_days": 3, "daily_penalty_rate": "0.0005" }),
    ));
    s.today = Some(date("2026-01-10"));
    ok(s.send(
        CommandKind::DisburseLoan,
        &["finance"],
        json!({ "loan_id": loan_a, "payout_reference": "PAYOUT-0001", "value_date": "2026-01-10" }),
    ));
    s.today = Some(date("2026-02-10"));
    let first_installment = s
        .loan(loan_a)
        .account()
        .expect("disbursed")
        .schedule
        .installments[0]
        .total();
    ok(s.send(
        CommandKind::RecordRepayment,
        &["system"],
        json!({ "loan_id": loan_a, "payment_reference": "PAY-0001", "amount": first_installment, "value_date": "2026-02-10" }),
    ));
    s.today = Some(date("2026-03-20"));
    ok(s.send(
        CommandKind::EvaluateDelinquency,
        &["system"],
        json!({ "loan_id": loan_a, "as_of": "2026-03-20" }),
    ));
    // The automation opens a collection case; a collector works it.
    let case_a = Uuid::from_u128(0xCA5E);
    ok(s.send(CommandKind::OpenCollectionCase, &["system"], json!({ "case_id": case_a, "loan_id": loan_a, "team": "collections",
        "reason": "installment 2 due 2026-03-10 is unpaid on 2026-03-20: 10 days past due, beyond the 1 days allowed" })));
    ok(s.send(
        CommandKind::RecordContactAttempt,
        &["collector"],
        json!({ "case_id": case_a, "channel": "phone", "outcome": "reached",
        "note": "borrower lost their job; will pay part", "attempted_on": "2026-03-20" }),
    ));
    ok(s.send(
        CommandKind::RecordPromiseToPay,
        &["collector"],
        json!({ "case_id": case_a, "amount": "100.00", "pay_by": "2026-03-20" }),
    ));
    ok(s.send(CommandKind::RecordRepayment, &["finance"], json!({ "loan_id": loan_a, "payment_reference": "PAY-0002", "amount": "100.00", "value_date": "2026-03-20" })));
    ok(s.send(CommandKind::ReverseRepayment, &["finance"], json!({ "loan_id": loan_a, "payment_reference": "PAY-0002", "reason": "bounced: insufficient funds" })));
    ok(s.send(
        CommandKind::WriteOffLoan,
        &["risk_manager"],
        json!({ "loan_id": loan_a, "reason": "borrower unreachable; collection exhausted" }),
    ));
    ok(s.send(
        CommandKind::ResolveCollectionCase,
        &["system"],
        json!({ "case_id": case_a, "resolution": "written_off",
        "reason": "loan written off on 2026-03-20" }),
    ));
    // A refused command: a written-off loan takes no repayment (the example error reply).
    let refused = s.send(
        CommandKind::RecordRepayment,
        &["finance"],
        json!({ "loan_id": loan_a, "payment_reference": "PAY-0003", "amount": "50.00", "value_date": "2026-03-20" }),
    );
    assert!(
        matches!(refused, CommandReply::Error { .. }),
        "a written-off loan refuses repayments: {refused:?}"
    );

    // Loan B: approved by a person, then withdrawn. Loan C: rejected by a person.
    ok(s.send(CommandKind::CaptureLead, &["loan_officer"], lead(loan_b)));
    ok(s.send(
        CommandKind::SubmitForReview,
        &["loan_officer"],
        json!({ "loan_id": loan_b, "documents": documents }),
    ));
    ok(s.send(
        CommandKind::ApproveApplication,
        &["underwriter"],
        json!({ "loan_id": loan_b, "approved_amount": "10000.00", "annual_rate": "0.1200", "term_months": 12, "note": "approved at a lower amount" }),
    ));
    ok(s.send(
        CommandKind::WithdrawApplication,
        &["customer_service"],
        json!({ "loan_id": loan_b, "reason": "found a cheaper offer" }),
    ));
    ok(s.send(CommandKind::CaptureLead, &["loan_officer"], lead(loan_c)));
    ok(s.send(
        CommandKind::SubmitForReview,
        &["loan_officer"],
        json!({ "loan_id": loan_c, "documents": documents }),
    ));
    ok(s.send(
        CommandKind::RejectApplication,
        &["underwriter"],
        json!({ "loan_id": loan_c, "reasons": ["income could not be verified"] }),
    ));

    // The customer asks to be forgotten once every loan is closed.
    s.today = Some(date("2026-07-01"));
    ok(s.send(
        CommandKind::EraseCustomer,
        &["data_protection_officer"],
        json!({ "customer_id": customer_id, "reason": "data subject erasure request DSR-2026-0042" }),
    ));
    s
}
