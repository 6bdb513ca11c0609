//! Concurrent commands on one aggregate: optimistic concurrency lets exactly one of
//! competing transitions win, and lets compatible commands all land, each once, in order.

use std::collections::BTreeSet;

use loan_contract::{AnyEvent, CommandReply, ErrorCode};
use loan_domain::loan::{LoanEvent, LoanStatus};
use loan_domain::{CommandKind, Money};
use serde_json::json;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::harness::{
    Harness, disbursed_loan, ok_events, ok_version, onboard_customer, signed_loan,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_disbursements_disburse_once() {
    let h = Harness::new().await;
    let instance = h.start_instance().await;
    let customer_id = onboard_customer(&h).await;
    let loan_id = signed_loan(&h, customer_id, "2026-01-05", "2026-02-05").await;
    let before = h.stream_count().await;

    let mut racers = JoinSet::new();
    for i in 0..50 {
        let sender = h.sender();
        racers.spawn(async move {
            sender
                .send_with_id(
                    Uuid::now_v7(),
                    CommandKind::DisburseLoan,
                    &["finance"],
                    json!({ "loan_id": loan_id, "payout_reference": format!("PO-{i}"), "value_date": "2026-01-05" }),
                )
                .await
        });
    }
    let (mut winners, mut invalid_transition, mut conflict) = (Vec::new(), 0, 0);
    while let Some(reply) = racers.join_next().await {
        match reply.expect("racer task") {
            CommandReply::Ok {
                events, version, ..
            } => winners.push((events, version)),
            CommandReply::Error { error } if error.code == ErrorCode::InvalidTransition => {
                invalid_transition += 1
            }
            CommandReply::Error { error } if error.code == ErrorCode::Conflict => conflict += 1,
            CommandReply::Error { error } => {
                panic!("a racer got an indefinite or wrong refusal: {error:?}")
            }
        }
    }
    assert_eq!(winners.len(), 1, "exactly one disbursement wins");
    let (events, version) = &winners[0];
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.type_name(), "loan_disbursed");
    assert_eq!(*version, 6);
    assert_eq!(
        invalid_transition + conflict,
        49,
        "every loser gets a definite refusal"
    );
    eprintln!(
        "disbursement race: 1 winner, {invalid_transition} invalid_transition, {conflict} conflict"
    );

    assert_eq!(
        h.stream_count().await,
        before + 1,
        "one commit for the race"
    );
    let disbursements = h
        .commits()
        .await
        .iter()
        .filter(|c| c.aggregate.id == loan_id && c.command == CommandKind::DisburseLoan)
        .count();
    assert_eq!(disbursements, 1);
    let (loan, version) = h.loan(loan_id).await;
    assert_eq!(loan.status(), Some(LoanStatus::Disbursed));
    assert_eq!(version, 6);
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_repayments_all_land_once_each() {
    let h = Harness::new().await;
    let instance = h.start_instance().await;
    let customer_id = onboard_customer(&h).await;
    let loan_id = disbursed_loan(&h, customer_id, "2026-01-05", "2026-02-05").await;
    let before = h.stream_count().await;
    h.set_today("2026-01-20");

    // 50 × 100.00 = 5,000.00, well under what the loan owes: none is an overpayment.
    let mut payers = JoinSet::new();
    for i in 0..50 {
        let sender = h.sender();
        payers.spawn(async move {
            sender
                .send_until_settled(
                    Uuid::now_v7(),
                    CommandKind::RecordRepayment,
                    &["finance"],
                    json!({ "loan_id": loan_id, "payment_reference": format!("PAY-{i:02}"), "amount": "100.00", "value_date": "2026-01-20" }),
                )
                .await
        });
    }
    let mut versions = BTreeSet::new();
    let mut references = BTreeSet::new();
    let mut conflicts = 0;
    while let Some(outcome) = payers.join_next().await {
        let (reply, seen) = outcome.expect("payer task");
        conflicts += seen;
        assert!(
            versions.insert(ok_version(&reply)),
            "two replies claim the same version"
        );
        for envelope in ok_events(&reply) {
            if let AnyEvent::Loan(LoanEvent::RepaymentRecorded {
                payment_reference,
                amount,
                ..
            }) = &envelope.event
            {
                assert_eq!(*amount, Money::parse("100.00").expect("amount"));
                assert!(
                    references.insert(payment_reference.clone()),
                    "{payment_reference} recorded twice"
                );
            }
        }
    }
    eprintln!(
        "repayment race: 50 applied, {conflicts} conflict replies resent with the same command id"
    );
    assert_eq!(references.len(), 50, "every repayment recorded once");
    // Disbursed at version 6; the first repayment also moves the loan to repaying.
    assert_eq!(versions.last().copied(), Some(57));
    assert_eq!(versions.len(), 50);

    assert_eq!(
        h.stream_count().await,
        before + 50,
        "one commit per repayment"
    );
    let (loan, version) = h.loan(loan_id).await;
    assert_eq!(version, 57);
    assert_eq!(loan.status(), Some(LoanStatus::Repaying));
    let account = loan.account().expect("a disbursed loan has an account");
    assert_eq!(account.payments.len(), 50);
    let paid = Money::sum(
        account
            .position
            .iter()
            .flat_map(|p| [p.principal_paid, p.interest_paid, p.penalty_paid]),
    )
    .expect("sum");
    assert_eq!(
        paid,
        Money::parse("5000.00").expect("amount"),
        "the positions add up to the payments"
    );
    let owed = account.outstanding().total();
    let total = Money::sum(account.schedule.installments.iter().map(|i| i.total())).expect("sum");
    assert_eq!(
        owed.checked_add(paid).expect("sum"),
        total,
        "paid + outstanding = scheduled"
    );
    instance.stop().await;
}
