//! One loan from registration of its customer to its payoff, every step a NATS request:
//! each reply names the aggregate, carries the events of exactly that command with
//! consecutive versions, and each state-changing command is exactly one commit in the log.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use loan_contract::{AnyEvent, CommandReply};
use loan_domain::loan::{Loan, LoanEvent, LoanStatus};
use loan_domain::schedule::Schedule;
use loan_domain::servicing::{self, AgingBucket};
use loan_domain::{AggregateType, CommandKind, Money};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Harness, approved_rate, contract, lead, ok_events, registration};

/// Sends commands and checks every reply against what the log must say.
struct Journey<'h> {
    h: &'h Harness,
    /// Version of each aggregate after the last reply.
    versions: BTreeMap<Uuid, u64>,
    /// Command ids of the commands that appended, in order.
    appended: Vec<Uuid>,
}

impl Journey<'_> {
    /// Sends a command that must succeed with exactly `expected` events; checks the reply.
    async fn step(
        &mut self,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
        expected: &[&str],
    ) -> CommandReply {
        let command_id = Uuid::now_v7();
        let reply = self.h.send_with_id(command_id, kind, roles, payload).await;
        let events = ok_events(&reply);
        let types: Vec<&str> = events.iter().map(|e| e.event.type_name()).collect();
        assert_eq!(types, expected, "events of {kind}");
        let CommandReply::Ok {
            aggregate_type,
            aggregate_id,
            version,
            ..
        } = &reply
        else {
            unreachable!("ok_events accepted the reply");
        };
        assert_eq!(
            *aggregate_type,
            kind.aggregate(),
            "aggregate type of {kind}"
        );
        let before = self.versions.get(aggregate_id).copied().unwrap_or(0);
        assert_eq!(
            *version,
            before + events.len() as u64,
            "{kind}: the reply's version counts the aggregate's events"
        );
        for (offset, envelope) in events.iter().enumerate() {
            assert_eq!(
                envelope.meta.aggregate_id, *aggregate_id,
                "{kind}: event aggregate id"
            );
            assert_eq!(
                envelope.meta.aggregate_type, *aggregate_type,
                "{kind}: event aggregate type"
            );
            assert_eq!(
                envelope.meta.version,
                before + 1 + offset as u64,
                "{kind}: event versions are consecutive"
            );
            assert_eq!(
                envelope.meta.command_id, command_id,
                "{kind}: events name their command"
            );
        }
        self.versions.insert(*aggregate_id, *version);
        if !events.is_empty() {
            self.appended.push(command_id);
        }
        reply
    }
}

fn date(text: &str) -> NaiveDate {
    text.parse().expect("valid date")
}

fn schedule_of(reply: &CommandReply) -> Schedule {
    ok_events(reply)
        .iter()
        .find_map(|e| match &e.event {
            AnyEvent::Loan(LoanEvent::LoanDisbursed { schedule, .. }) => Some(schedule.clone()),
            _ => None,
        })
        .expect("the disbursement carries the schedule")
}

fn status_change(reply: &CommandReply) -> (LoanStatus, LoanStatus) {
    ok_events(reply)
        .iter()
        .find_map(|e| match &e.event {
            AnyEvent::Loan(LoanEvent::LoanStatusChanged { from, to, .. }) => Some((*from, *to)),
            _ => None,
        })
        .expect("the reply changes the loan's status")
}

fn bucket_change(reply: &CommandReply) -> (AgingBucket, AgingBucket) {
    ok_events(reply)
        .iter()
        .find_map(|e| match &e.event {
            AnyEvent::Loan(LoanEvent::AgingBucketChanged { from, to, .. }) => Some((*from, *to)),
            _ => None,
        })
        .expect("the reply changes the aging bucket")
}

fn account(loan: &Loan) -> &loan_domain::loan::Account {
    loan.account()
        .unwrap_or_else(|| panic!("the loan has no account: {}", loan.status_name()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loan_goes_from_lead_to_paid_off_through_overdue_and_cure() {
    let h = Harness::new().await;
    let instance = h.start_instance().await;
    let mut j = Journey {
        h: &h,
        versions: BTreeMap::new(),
        appended: Vec::new(),
    };

    // Onboarding on 2026-01-05.
    h.set_today("2026-01-05");
    let customer_id = Uuid::now_v7();
    j.step(
        CommandKind::RegisterCustomer,
        &["customer_service"],
        registration(customer_id),
        &["customer_registered"],
    )
    .await;
    j.step(
        CommandKind::RecordCreditAssessment,
        &["system"],
        json!({ "customer_id": customer_id, "score": 735, "source": "pboc", "assessed_on": "2026-01-05" }),
        &["credit_assessed"],
    )
    .await;
    j.step(
        CommandKind::VerifyIdentity,
        &["system"],
        json!({ "customer_id": customer_id, "method": "face_match", "verified_on": "2026-01-05" }),
        &["identity_verified"],
    )
    .await;
    assert_eq!(j.versions[&customer_id], 3);

    // Origination.
    let loan_id = Uuid::now_v7();
    j.step(
        CommandKind::CaptureLead,
        &["loan_officer"],
        lead(loan_id, customer_id),
        &["lead_captured"],
    )
    .await;
    j.step(
        CommandKind::SubmitForReview,
        &["loan_officer"],
        json!({ "loan_id": loan_id, "documents": ["id_card", "credit_report", "income_proof"] }),
        &["submitted_for_review"],
    )
    .await;
    let decision = j
        .step(
            CommandKind::DecideAutomatically,
            &["system"],
            json!({ "loan_id": loan_id }),
            &["automated_decision_made", "application_approved"],
        )
        .await;
    let rate = approved_rate(&decision);
    j.step(
        CommandKind::SignContract,
        &["loan_officer"],
        contract(loan_id, &rate, "2026-02-05"),
        &["contract_signed"],
    )
    .await;
    let disbursed = j
        .step(
            CommandKind::DisburseLoan,
            &["finance"],
            json!({ "loan_id": loan_id, "payout_reference": "PO-2026-0001", "value_date": "2026-01-05" }),
            &["loan_disbursed"],
        )
        .await;
    assert_eq!(j.versions[&loan_id], 6);
    let schedule = schedule_of(&disbursed);
    assert_eq!(schedule.installments.len(), 12);
    assert_eq!(
        schedule.total_principal(),
        Money::parse("12000.00").expect("amount")
    );
    let first = &schedule.installments[0];
    assert_eq!(first.due_date, date("2026-02-05"));

    // Installment 1 paid on its due date.
    h.set_today("2026-02-05");
    let repaid = j
        .step(
            CommandKind::RecordRepayment,
            &["finance"],
            json!({ "loan_id": loan_id, "payment_reference": "PAY-1", "amount": first.total().to_string(), "value_date": "2026-02-05" }),
            &["repayment_recorded", "loan_status_changed"],
        )
        .await;
    assert_eq!(
        status_change(&repaid),
        (LoanStatus::Disbursed, LoanStatus::Repaying)
    );

    // Installment 2 (due 2026-03-05, 3 grace days) is not paid: on 2026-03-20 it is overdue.
    h.set_today("2026-03-20");
    let evaluated = j
        .step(
            CommandKind::EvaluateDelinquency,
            &["system"],
            json!({ "loan_id": loan_id, "as_of": "2026-03-20" }),
            &[
                "penalty_accrued",
                "aging_bucket_changed",
                "loan_status_changed",
            ],
        )
        .await;
    assert_eq!(
        status_change(&evaluated),
        (LoanStatus::Repaying, LoanStatus::Overdue)
    );
    assert_eq!(
        bucket_change(&evaluated),
        (AgingBucket::Current, AgingBucket::Dpd1To30)
    );
    let (loan, version) = h.loan(loan_id).await;
    assert_eq!(loan.status(), Some(LoanStatus::Overdue));
    assert_eq!(
        version, j.versions[&loan_id],
        "the log agrees with the replies"
    );
    assert_eq!(account(&loan).days_past_due(), 15);

    // A payment value-dated today pays the penalty accrued through yesterday, then the
    // arrears: exactly what clears installment 2.
    let acc = account(&loan);
    let through_yesterday = acc
        .position_as_of(&acc.payments, date("2026-03-19"))
        .expect("position");
    let arrears = servicing::overdue_amount(
        &acc.schedule,
        &through_yesterday.installments,
        date("2026-03-20"),
    )
    .total();
    assert!(
        arrears > schedule.installments[1].total(),
        "arrears {arrears} include penalty"
    );
    let cured = j
        .step(
            CommandKind::RecordRepayment,
            &["finance"],
            json!({ "loan_id": loan_id, "payment_reference": "PAY-2", "amount": arrears.to_string(), "value_date": "2026-03-20" }),
            &["repayment_recorded", "aging_bucket_changed", "loan_status_changed"],
        )
        .await;
    assert_eq!(
        status_change(&cured),
        (LoanStatus::Overdue, LoanStatus::Repaying)
    );
    assert_eq!(
        bucket_change(&cured),
        (AgingBucket::Dpd1To30, AgingBucket::Current)
    );

    // Full settlement the same day: everything still outstanding.
    let (loan, _) = h.loan(loan_id).await;
    assert_eq!(loan.status(), Some(LoanStatus::Repaying));
    let outstanding = account(&loan).outstanding();
    assert_eq!(
        outstanding.penalty,
        Money::ZERO,
        "the cure paid the penalty"
    );
    let settled = j
        .step(
            CommandKind::RecordRepayment,
            &["finance"],
            json!({ "loan_id": loan_id, "payment_reference": "PAY-3", "amount": outstanding.total().to_string(), "value_date": "2026-03-20" }),
            &["repayment_recorded", "loan_status_changed"],
        )
        .await;
    assert_eq!(
        status_change(&settled),
        (LoanStatus::Repaying, LoanStatus::PaidOff)
    );
    assert_eq!(j.versions[&loan_id], 16);

    // The log: one commit per state-changing command, in the order they were answered,
    // and the loan rebuilt from it is paid off at the replies' version.
    let commits = h.commits().await;
    let logged: Vec<Uuid> = commits.iter().map(|c| c.command_id).collect();
    assert_eq!(
        logged, j.appended,
        "exactly one commit per state-changing command"
    );
    assert_eq!(h.stream_count().await, 12);
    // Per aggregate, the commits chain version to version up to the last reply's version.
    for (aggregate_id, version) in &j.versions {
        let chain: Vec<_> = commits
            .iter()
            .filter(|c| c.aggregate.id == *aggregate_id)
            .collect();
        assert_eq!(chain.first().map(|c| c.base_version), Some(0));
        assert!(
            chain.windows(2).all(|w| w[0].version == w[1].base_version),
            "{aggregate_id}: commits chain by version"
        );
        assert!(
            chain
                .iter()
                .all(|c| c.version - c.base_version == c.events.len() as u64),
            "{aggregate_id}: a commit's version span is its event count"
        );
        assert_eq!(chain.last().map(|c| c.version), Some(*version));
    }
    let loan_commits = commits
        .iter()
        .filter(|c| c.aggregate.aggregate_type == AggregateType::Loan)
        .count();
    assert_eq!(loan_commits, 9, "nine loan commands changed the loan");
    let (loan, version) = h.loan(loan_id).await;
    assert_eq!(loan.status(), Some(LoanStatus::PaidOff));
    assert_eq!(version, 16);
    assert_eq!(account(&loan).outstanding().total(), Money::ZERO);
    assert_eq!(account(&loan).payments.len(), 3);

    // A paid-off loan takes no more repayments.
    let after = h
        .send(
            CommandKind::RecordRepayment,
            &["finance"],
            json!({ "loan_id": loan_id, "payment_reference": "PAY-4", "amount": "1.00", "value_date": "2026-03-20" }),
        )
        .await;
    assert_eq!(
        crate::harness::refused(after).code,
        loan_contract::ErrorCode::InvalidTransition
    );
    assert_eq!(h.stream_count().await, 12, "a refusal appends nothing");

    instance.stop().await;
}
