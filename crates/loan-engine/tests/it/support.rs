//! Driving an [`Engine`] with JSON requests, as a transport would.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use loan_contract::{AnyEvent, CommandReply, ErrorReply, EventEnvelope};
use loan_domain::CommandKind;
use loan_domain::loan::LoanEvent;
use loan_engine::Engine;
use loan_store::EventStore;
use serde_json::{Value, json};
use uuid::Uuid;

/// A customer's sensitive values, as sent.
pub(crate) const BANK_CARD: &str = "6222021234567890128";
pub(crate) const PHONE: &str = "13912345678";
pub(crate) const NEW_PHONE: &str = "15987650432";

pub(crate) fn national_id() -> String {
    loan_testkit::synthetic::national_id("44030419880715123")
}

/// 09:30 in Beijing on `date` (the engine's business day is UTC+8).
pub(crate) fn morning(date: &str) -> DateTime<Utc> {
    let date: NaiveDate = date.parse().expect("valid date");
    Utc.from_utc_datetime(&date.and_hms_opt(1, 30, 0).expect("valid time"))
}

/// An engine and the business date its commands are sent on.
pub(crate) struct Driver<S> {
    pub(crate) engine: Engine<S>,
    pub(crate) today: String,
}

impl<S: EventStore> Driver<S> {
    pub(crate) fn new(engine: Engine<S>, today: &str) -> Self {
        Driver {
            engine,
            today: today.to_owned(),
        }
    }

    pub(crate) async fn send(
        &self,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
    ) -> CommandReply {
        self.send_with_id(Uuid::now_v7(), kind, roles, payload)
            .await
    }

    pub(crate) async fn send_with_id(
        &self,
        command_id: Uuid,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
    ) -> CommandReply {
        let body = request(command_id, roles, payload);
        self.engine
            .execute(
                kind,
                &serde_json::to_vec(&body).expect("serialise"),
                morning(&self.today),
            )
            .await
    }
}

pub(crate) fn request(command_id: Uuid, roles: &[&str], payload: Value) -> Value {
    json!({
        "command_id": command_id,
        "actor": { "id": format!("test-{}", roles.first().copied().unwrap_or("nobody")), "roles": roles },
        "correlation_id": Uuid::now_v7(),
        "payload": payload,
    })
}

/// The events of an accepted reply; panics with the error otherwise.
pub(crate) fn ok_events(reply: &CommandReply) -> &[EventEnvelope] {
    match reply {
        CommandReply::Ok { events, .. } => events,
        CommandReply::Error { error } => panic!("command refused: {error:?}"),
    }
}

/// The event type names of an accepted reply.
pub(crate) fn ok(reply: CommandReply) -> Vec<&'static str> {
    ok_events(&reply)
        .iter()
        .map(|e| e.event.type_name())
        .collect()
}

pub(crate) fn refused(reply: CommandReply) -> ErrorReply {
    match reply {
        CommandReply::Error { error } => error,
        CommandReply::Ok { events, .. } => panic!("expected a refusal, got events {events:?}"),
    }
}

pub(crate) fn registration(customer_id: Uuid) -> Value {
    json!({
        "customer_id": customer_id, "name": "Li Wei", "gender": "male", "birth_date": "1988-07-15",
        "phone": PHONE, "national_id": national_id(), "bank_card": BANK_CARD,
        "region": "guangdong", "employer": "Pearl River Logistics", "risk_appetite": "balanced", "channel": "app",
        "financials": { "monthly_income": "25000.00", "monthly_debt_payments": "2000.00", "total_assets": "400000.00", "total_liabilities": "100000.00" }
    })
}

/// Registers (with `command_id`), changes the phone, assesses and verifies a customer.
pub(crate) async fn onboard<S: EventStore>(d: &Driver<S>, customer_id: Uuid, command_id: Uuid) {
    ok(d.send_with_id(
        command_id,
        CommandKind::RegisterCustomer,
        &["customer_service"],
        registration(customer_id),
    )
    .await);
    assert_eq!(
        ok(d.send(
            CommandKind::UpdateContact,
            &["customer_service"],
            json!({ "customer_id": customer_id, "phone": NEW_PHONE }),
        )
        .await),
        ["contact_updated"]
    );
    ok(d.send(
        CommandKind::RecordCreditAssessment,
        &["system"],
        json!({ "customer_id": customer_id, "score": 735, "source": "pboc", "assessed_on": d.today }),
    )
    .await);
    ok(d.send(
        CommandKind::VerifyIdentity,
        &["system"],
        json!({ "customer_id": customer_id, "method": "face_match", "verified_on": d.today }),
    )
    .await);
}

/// A loan of `customer_id` taken to `signed` (12,000 over 12 months, first due 2026-02-10).
pub(crate) async fn signed_loan<S: EventStore>(d: &Driver<S>, customer_id: Uuid) -> Uuid {
    let loan_id = Uuid::now_v7();
    ok(d.send(
        CommandKind::CaptureLead,
        &["loan_officer"],
        json!({ "loan_id": loan_id, "customer_id": customer_id, "channel": "app", "purpose": "consumer", "requested_amount": "12000.00", "currency": "CNY", "term_months": 12 }),
    )
    .await);
    ok(d.send(
        CommandKind::SubmitForReview,
        &["loan_officer"],
        json!({ "loan_id": loan_id, "documents": ["id_card", "credit_report", "income_proof"] }),
    )
    .await);
    let decision = d
        .send(
            CommandKind::DecideAutomatically,
            &["system"],
            json!({ "loan_id": loan_id }),
        )
        .await;
    let rate = ok_events(&decision)
        .iter()
        .find_map(|envelope| match &envelope.event {
            AnyEvent::Loan(LoanEvent::ApplicationApproved { annual_rate, .. }) => {
                Some(annual_rate.to_string())
            }
            _ => None,
        })
        .expect("the policy approves this customer");
    ok(d.send(
        CommandKind::SignContract,
        &["loan_officer"],
        json!({ "loan_id": loan_id, "principal": "12000.00", "annual_rate": rate, "term_months": 12, "method": "equal_installment",
                "first_due_date": "2026-02-10", "grace_days": 3, "daily_penalty_rate": "0.0005" }),
    )
    .await);
    loan_id
}

pub(crate) async fn disburse<S: EventStore>(d: &Driver<S>, loan_id: Uuid) -> CommandReply {
    d.send(
        CommandKind::DisburseLoan,
        &["finance"],
        json!({ "loan_id": loan_id, "payout_reference": format!("PO-{loan_id}"), "value_date": d.today }),
    )
    .await
}

/// Panics if any of `secrets` appears in `bytes`: as given, as its digits only, or as any
/// run of 8 of its consecutive digits.
pub(crate) fn assert_nothing_in_clear(what: &str, bytes: &[u8], secrets: &[&str]) {
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    for secret in secrets {
        assert!(
            !contains(secret.as_bytes()),
            "{what} contains a sensitive value in clear"
        );
        let digits: String = secret.chars().filter(char::is_ascii_digit).collect();
        assert!(
            !contains(digits.as_bytes()),
            "{what} contains the digits of a sensitive value"
        );
        for run in digits.as_bytes().windows(8) {
            assert!(
                !contains(run),
                "{what} contains 8 consecutive digits of a sensitive value"
            );
        }
    }
}
