//! Bad input over NATS gets an error reply with its stable code (and the offending field
//! where one can be named), never a panic, a timeout or an append; the service keeps
//! answering afterwards.

use loan_contract::{CommandReply, ErrorCode};
use loan_domain::CommandKind;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{
    Harness, body, disbursed_loan, lead, ok, ok_version, onboard_customer, registration,
};

/// One bad request and the refusal it must get.
struct Case {
    name: &'static str,
    subject: String,
    body: Vec<u8>,
    code: ErrorCode,
    /// `Some(field)`: the reply must name exactly this field; `None`: not checked.
    field: Option<&'static str>,
}

fn envelope(roles: &[&str], payload: Value) -> Value {
    serde_json::from_slice(&body(Uuid::now_v7(), roles, payload)).expect("a body is JSON")
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialise")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_input_is_refused_with_its_code_and_appends_nothing() {
    let h = Harness::new().await;
    let instance = h.start_instance().await;
    let customer_id = onboard_customer(&h).await;
    let loan_id = disbursed_loan(&h, customer_id, "2026-01-05", "2026-02-05").await;
    let lead_id = Uuid::now_v7();
    ok(h.send(
        CommandKind::CaptureLead,
        &["loan_officer"],
        lead(lead_id, customer_id),
    )
    .await);
    let subjects = h.subjects();
    let repay = subjects.command(CommandKind::RecordRepayment);
    let capture = subjects.command(CommandKind::CaptureLead);
    let disburse = subjects.command(CommandKind::DisburseLoan);
    let register = subjects.command(CommandKind::RegisterCustomer);
    let repayment = |amount: Value| {
        envelope(
            &["finance"],
            json!({ "loan_id": loan_id, "payment_reference": "PAY-BAD", "amount": amount, "value_date": "2026-01-05" }),
        )
    };
    let valid = repayment(json!("100.00"));
    let with = |mut value: Value, pointer: &str, key: &str, new: Value| {
        value
            .pointer_mut(pointer)
            .expect("pointer")
            .as_object_mut()
            .expect("object")
            .insert(key.into(), new);
        value
    };
    let without = |mut value: Value, pointer: &str, key: &str| {
        value
            .pointer_mut(pointer)
            .expect("pointer")
            .as_object_mut()
            .expect("object")
            .remove(key);
        value
    };
    let deep = format!(
        r#"{{"command_id":"{}","actor":{{"id":"x","roles":["finance"]}},"correlation_id":"{}","payload":{}{}}}"#,
        Uuid::now_v7(),
        Uuid::now_v7(),
        "[".repeat(200),
        "]".repeat(200)
    );
    let mut trailing = bytes(&valid);
    trailing.extend_from_slice(b" {}");
    let mut bad_national_id = registration(Uuid::now_v7());
    bad_national_id["national_id"] = json!("110101199003077777");

    let case = |name, subject: &String, body: Vec<u8>, code, field| Case {
        name,
        subject: subject.clone(),
        body,
        code,
        field,
    };
    use ErrorCode as E;
    let cases = vec![
        // Not a request at all.
        case(
            "truncated JSON",
            &repay,
            br#"{"command_id": "#.to_vec(),
            E::Malformed,
            None,
        ),
        case("not JSON", &repay, b"hello".to_vec(), E::Malformed, None),
        case("empty body", &repay, Vec::new(), E::Malformed, None),
        case(
            "not UTF-8",
            &repay,
            vec![0xff, 0xfe, 0x7b],
            E::Malformed,
            None,
        ),
        case("trailing characters", &repay, trailing, E::Malformed, None),
        case(
            "nested 200 deep",
            &repay,
            deep.into_bytes(),
            E::Malformed,
            None,
        ),
        case(
            "200 KB body",
            &repay,
            bytes(&with(
                valid.clone(),
                "/payload",
                "payment_reference",
                json!("x".repeat(200 * 1024)),
            )),
            E::Malformed,
            None,
        ),
        case(
            "a JSON array",
            &repay,
            b"[]".to_vec(),
            E::ValidationFailed,
            None,
        ),
        case(
            "JSON null",
            &repay,
            b"null".to_vec(),
            E::ValidationFailed,
            None,
        ),
        // Shape.
        case(
            "unknown envelope field",
            &repay,
            bytes(&with(valid.clone(), "", "priority", json!("high"))),
            E::ValidationFailed,
            Some("priority"),
        ),
        case(
            "unknown payload field",
            &repay,
            bytes(&with(valid.clone(), "/payload", "discount", json!("5.00"))),
            E::ValidationFailed,
            Some("payload.discount"),
        ),
        // (Which field a missing field is reported under: see the test below.)
        case(
            "missing payload field",
            &repay,
            bytes(&without(valid.clone(), "/payload", "amount")),
            E::ValidationFailed,
            None,
        ),
        case(
            "missing command id",
            &repay,
            bytes(&without(valid.clone(), "", "command_id")),
            E::ValidationFailed,
            None,
        ),
        case(
            "command id not a UUID",
            &repay,
            bytes(&with(valid.clone(), "", "command_id", json!("abc"))),
            E::ValidationFailed,
            Some("command_id"),
        ),
        case(
            "wrong type",
            &capture,
            bytes(&with(
                envelope(&["loan_officer"], lead(Uuid::now_v7(), customer_id)),
                "/payload",
                "term_months",
                json!("twelve"),
            )),
            E::ValidationFailed,
            Some("payload.term_months"),
        ),
        case(
            "negative integer",
            &capture,
            bytes(&with(
                envelope(&["loan_officer"], lead(Uuid::now_v7(), customer_id)),
                "/payload",
                "term_months",
                json!(-12),
            )),
            E::ValidationFailed,
            Some("payload.term_months"),
        ),
        case(
            "impossible date",
            &repay,
            bytes(&with(
                valid.clone(),
                "/payload",
                "value_date",
                json!("2026-02-30"),
            )),
            E::ValidationFailed,
            Some("payload.value_date"),
        ),
        case(
            "unknown role",
            &repay,
            bytes(&with(valid.clone(), "/actor", "roles", json!(["wizard"]))),
            E::ValidationFailed,
            Some("actor.roles[0]"),
        ),
        case(
            "another command's payload",
            &repay,
            bytes(&envelope(&["finance"], lead(Uuid::now_v7(), customer_id))),
            E::ValidationFailed,
            Some("payload.channel"),
        ),
        // Amounts.
        case(
            "zero amount",
            &repay,
            bytes(&repayment(json!("0.00"))),
            E::ValidationFailed,
            Some("payload.amount"),
        ),
        case(
            "negative amount",
            &repay,
            bytes(&repayment(json!("-5.00"))),
            E::ValidationFailed,
            Some("payload.amount"),
        ),
        case(
            "over-precise amount",
            &repay,
            bytes(&repayment(json!("10.005"))),
            E::ValidationFailed,
            Some("payload.amount"),
        ),
        case(
            "amount above 1e12",
            &repay,
            bytes(&repayment(json!("2000000000000.00"))),
            E::ValidationFailed,
            Some("payload.amount"),
        ),
        case(
            "amount beyond any decimal",
            &repay,
            bytes(&repayment(json!("99999999999999999999999999999999999999"))),
            E::ValidationFailed,
            Some("payload.amount"),
        ),
        case(
            "amount as a JSON number",
            &repay,
            bytes(&repayment(json!(100.5))),
            E::ValidationFailed,
            Some("payload.amount"),
        ),
        case(
            "amount not a number",
            &repay,
            bytes(&repayment(json!("NaN"))),
            E::ValidationFailed,
            Some("payload.amount"),
        ),
        case(
            "overpayment",
            &repay,
            bytes(&repayment(json!("900000.00"))),
            E::RuleViolated,
            Some("payload.amount"),
        ),
        case(
            "value date in the future",
            &repay,
            bytes(&with(
                valid.clone(),
                "/payload",
                "value_date",
                json!("2026-01-06"),
            )),
            E::ValidationFailed,
            Some("payload.value_date"),
        ),
        // Subjects.
        case(
            "unknown command",
            &format!("{}.cmd.loan.fly_to_the_moon", h.prefix),
            bytes(&valid),
            E::UnknownCommand,
            None,
        ),
        case(
            "command under the wrong aggregate",
            &format!("{}.cmd.customer.record_repayment", h.prefix),
            bytes(&valid),
            E::UnknownCommand,
            None,
        ),
        case(
            "aggregate without a command",
            &format!("{}.cmd.loan", h.prefix),
            bytes(&valid),
            E::UnknownCommand,
            None,
        ),
        // Who and when.
        case(
            "forbidden role",
            &disburse,
            bytes(&envelope(
                &["loan_officer"],
                json!({ "loan_id": lead_id, "payout_reference": "PO-X", "value_date": "2026-01-05" }),
            )),
            E::Forbidden,
            None,
        ),
        case(
            "no role at all",
            &repay,
            bytes(&with(valid.clone(), "/actor", "roles", json!([]))),
            E::Forbidden,
            None,
        ),
        case(
            "invalid transition",
            &disburse,
            bytes(&envelope(
                &["finance"],
                json!({ "loan_id": lead_id, "payout_reference": "PO-X", "value_date": "2026-01-05" }),
            )),
            E::InvalidTransition,
            None,
        ),
        case(
            "stale expected version",
            &repay,
            bytes(&with(valid.clone(), "", "expected_version", json!(3))),
            E::Conflict,
            Some("expected_version"),
        ),
        case(
            "lead for an unknown customer",
            &capture,
            bytes(&envelope(
                &["loan_officer"],
                lead(Uuid::now_v7(), Uuid::now_v7()),
            )),
            E::NotFound,
            None,
        ),
        case(
            "lead captured twice",
            &capture,
            bytes(&envelope(&["loan_officer"], lead(lead_id, customer_id))),
            E::AlreadyExists,
            None,
        ),
        case(
            "invalid national id",
            &register,
            bytes(&envelope(&["customer_service"], bad_national_id)),
            E::ValidationFailed,
            Some("payload.national_id"),
        ),
    ];

    let before = h.stream_count().await;
    let mut wrong = Vec::new();
    for case in &cases {
        let reply = h.request_raw(case.subject.clone(), case.body.clone()).await;
        match reply {
            CommandReply::Error { error } => {
                let field_ok = case
                    .field
                    .is_none_or(|field| error.field.as_deref() == Some(field));
                if error.code != case.code || !field_ok {
                    wrong.push(format!(
                        "{}: expected {:?} field {:?}, got {:?} field {:?} ({})",
                        case.name, case.code, case.field, error.code, error.field, error.message
                    ));
                }
                if case.name == "invalid national id"
                    && error.message.contains("110101199003077777")
                {
                    wrong.push(format!(
                        "{}: the message repeats the national id: {}",
                        case.name, error.message
                    ));
                }
            }
            CommandReply::Ok { events, .. } => {
                wrong.push(format!("{}: accepted with events {events:?}", case.name))
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} bad requests got the wrong reply:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    assert_eq!(
        h.stream_count().await,
        before,
        "no bad request appended anything"
    );

    // Still serving: the valid version of the same repayment is applied.
    let reply = h.request_raw(repay.clone(), bytes(&valid)).await;
    assert_eq!(
        ok_version(&reply),
        8,
        "repayment_recorded and loan_status_changed on version 6"
    );
    assert_eq!(h.stream_count().await, before + 1);
    instance.stop().await;
}

/// The contract promises "the offending field": for a missing field that is the field
/// itself (`payload.amount`), not its parent object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_field_is_named_in_the_reply() {
    let h = Harness::new().await;
    let instance = h.start_instance().await;
    let payload = json!({ "loan_id": Uuid::now_v7(), "payment_reference": "PAY-1", "amount": "1.00", "value_date": "2026-01-05" });
    let mut missing_amount = envelope(&["finance"], payload.clone());
    missing_amount["payload"]
        .as_object_mut()
        .expect("payload")
        .remove("amount");
    let mut missing_id = envelope(&["finance"], payload);
    missing_id
        .as_object_mut()
        .expect("envelope")
        .remove("command_id");
    let mut wrong = Vec::new();
    for (body, field) in [
        (missing_amount, "payload.amount"),
        (missing_id, "command_id"),
    ] {
        let reply = h
            .request_raw(
                h.subjects().command(CommandKind::RecordRepayment),
                bytes(&body),
            )
            .await;
        let error = crate::harness::refused(reply);
        assert_eq!(error.code, ErrorCode::ValidationFailed);
        if error.field.as_deref() != Some(field) {
            wrong.push(format!(
                "missing {field}: reported as field {:?} ({})",
                error.field, error.message
            ));
        }
    }
    instance.stop().await;
    assert!(
        wrong.is_empty(),
        "a missing field is not named:\n{}",
        wrong.join("\n")
    );
}
