//! The command id is the idempotency key: a resent command gets its original reply (same
//! events, event ids and version) and is never applied twice, whether resent later,
//! concurrently, or to a restarted instance whose cache is gone; the same id with another
//! payload is refused.

use loan_contract::{CommandReply, ErrorCode};
use loan_domain::CommandKind;
use loan_engine::clock::Clock;
use loan_engine::{Engine, EngineConfig};
use loan_store::jetstream::JetStreamStore;
use loan_store::{
    AggregateRef, Appended, CommandRecord, Commit, EventStore, History, Recorded, StoreError,
};
use serde_json::json;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::harness::{
    Harness, lead, ok, ok_events, ok_version, onboard_customer, refused, registration,
};

fn follow_up(loan_id: Uuid, note: &str) -> serde_json::Value {
    json!({ "loan_id": loan_id, "note": note, "next_follow_up_on": "2026-01-09" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_command_gets_its_original_reply_and_is_applied_once() {
    let h = Harness::new().await;
    let instance = h.start_instance().await;
    let customer_id = onboard_customer(&h).await;
    let loan_id = Uuid::now_v7();
    ok(h.send(
        CommandKind::CaptureLead,
        &["loan_officer"],
        lead(loan_id, customer_id),
    )
    .await);
    ok(h.send(
        CommandKind::SubmitForReview,
        &["loan_officer"],
        json!({ "loan_id": loan_id, "documents": ["id_card", "credit_report", "income_proof"] }),
    )
    .await);
    let before = h.stream_count().await;

    // A command of two events, sent twice with the same id (new correlation id each time).
    let command_id = Uuid::now_v7();
    let payload = json!({ "loan_id": loan_id });
    let first = h
        .send_with_id(
            command_id,
            CommandKind::DecideAutomatically,
            &["system"],
            payload.clone(),
        )
        .await;
    assert_eq!(ok_events(&first).len(), 2);
    let again = h
        .send_with_id(
            command_id,
            CommandKind::DecideAutomatically,
            &["system"],
            payload.clone(),
        )
        .await;
    assert_eq!(
        again, first,
        "the resent command gets the original reply: same events, event ids, version"
    );
    assert_eq!(h.stream_count().await, before + 1, "applied once");

    // Still the original reply after the aggregate moved on.
    ok(h.send(
        CommandKind::LogFollowUp,
        &["loan_officer"],
        follow_up(loan_id, "called the applicant"),
    )
    .await);
    let later = h
        .send_with_id(
            command_id,
            CommandKind::DecideAutomatically,
            &["system"],
            payload,
        )
        .await;
    assert_eq!(later, first, "the original reply, not the current version");
    assert_eq!(ok_version(&later), 4);

    // The same id with another payload, or for another command, is refused.
    let other_loan = Uuid::now_v7();
    let mismatch = refused(
        h.send_with_id(
            command_id,
            CommandKind::DecideAutomatically,
            &["system"],
            json!({ "loan_id": other_loan }),
        )
        .await,
    );
    assert_eq!(
        mismatch.code,
        ErrorCode::IdempotencyMismatch,
        "{mismatch:?}"
    );
    assert_eq!(mismatch.field.as_deref(), Some("command_id"));
    let mismatch = refused(
        h.send_with_id(
            command_id,
            CommandKind::LogFollowUp,
            &["loan_officer"],
            follow_up(loan_id, "reused id"),
        )
        .await,
    );
    assert_eq!(
        mismatch.code,
        ErrorCode::IdempotencyMismatch,
        "{mismatch:?}"
    );
    assert_eq!(mismatch.field.as_deref(), Some("command_id"));
    assert_eq!(
        h.stream_count().await,
        before + 2,
        "refusals append nothing"
    );

    // A command that changed nothing is remembered too: its resend gets the same empty reply.
    ok(h.send(
        CommandKind::AssignOfficer,
        &["sales_manager"],
        json!({ "loan_id": loan_id, "officer_id": "officer-7" }),
    )
    .await);
    let count = h.stream_count().await;
    let noop_id = Uuid::now_v7();
    let noop_payload = json!({ "loan_id": loan_id, "officer_id": "officer-7" });
    let noop = h
        .send_with_id(
            noop_id,
            CommandKind::AssignOfficer,
            &["sales_manager"],
            noop_payload.clone(),
        )
        .await;
    assert!(
        ok_events(&noop).is_empty(),
        "assigning the same officer again changes nothing"
    );
    assert_eq!(ok_version(&noop), 6);
    assert_eq!(
        h.send_with_id(
            noop_id,
            CommandKind::AssignOfficer,
            &["sales_manager"],
            noop_payload
        )
        .await,
        noop
    );
    assert_eq!(
        h.stream_count().await,
        count,
        "a command without events appends nothing"
    );

    let commits = h.commits().await;
    assert_eq!(
        commits
            .iter()
            .filter(|c| c.command_id == command_id)
            .count(),
        1
    );
    crate::harness::command_ids(&commits);
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_of_one_command_are_applied_once() {
    let h = Harness::new().await;
    let instance = h.start_instance().await;
    let customer_id = onboard_customer(&h).await;
    let loan_id = Uuid::now_v7();
    ok(h.send(
        CommandKind::CaptureLead,
        &["loan_officer"],
        lead(loan_id, customer_id),
    )
    .await);
    let before = h.stream_count().await;

    let command_id = Uuid::now_v7();
    let mut copies = JoinSet::new();
    for _ in 0..20 {
        let sender = h.sender();
        copies.spawn(async move {
            sender
                .send_with_id(
                    command_id,
                    CommandKind::LogFollowUp,
                    &["loan_officer"],
                    follow_up(loan_id, "sent by an impatient caller"),
                )
                .await
        });
    }
    let mut replies = Vec::new();
    while let Some(reply) = copies.join_next().await {
        replies.push(reply.expect("copy task"));
    }
    let winner = replies
        .iter()
        .find(|r| matches!(r, CommandReply::Ok { .. }))
        .unwrap_or_else(|| panic!("no copy was applied: {replies:?}"))
        .clone();
    assert_eq!(ok_version(&winner), 2);
    for reply in &replies {
        match reply {
            CommandReply::Ok { .. } => assert_eq!(reply, &winner, "every copy gets the one reply"),
            CommandReply::Error { error } => {
                // Resending is safe: a retryable refusal must resolve to the same reply.
                assert!(
                    error.code.retryable(),
                    "a copy got a definite refusal: {error:?}"
                );
            }
        }
    }
    let resent = h
        .send_with_id(
            command_id,
            CommandKind::LogFollowUp,
            &["loan_officer"],
            follow_up(loan_id, "sent by an impatient caller"),
        )
        .await;
    assert_eq!(resent, winner);
    assert_eq!(
        h.stream_count().await,
        before + 1,
        "twenty copies, one commit"
    );
    let (_, version) = h.loan(loan_id).await;
    assert_eq!(version, 2);
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_instance_still_knows_the_command() {
    let h = Harness::new().await;
    let instance = h.start_instance().await;
    let customer_id = onboard_customer(&h).await;
    let other_customer = Uuid::now_v7();
    let registration_id = Uuid::now_v7();
    let registered = h
        .send_with_id(
            registration_id,
            CommandKind::RegisterCustomer,
            &["customer_service"],
            registration(other_customer),
        )
        .await;
    assert_eq!(ok_events(&registered).len(), 1);
    let loan_id = Uuid::now_v7();
    let lead_id = Uuid::now_v7();
    let captured = h
        .send_with_id(
            lead_id,
            CommandKind::CaptureLead,
            &["loan_officer"],
            lead(loan_id, customer_id),
        )
        .await;
    let follow_up_id = Uuid::now_v7();
    let followed = h
        .send_with_id(
            follow_up_id,
            CommandKind::LogFollowUp,
            &["loan_officer"],
            follow_up(loan_id, "before the restart"),
        )
        .await;
    assert_eq!(ok_version(&followed), 2);
    let before = h.stream_count().await;
    instance.stop().await;

    // A new instance: empty cache; the command record persists in the KV bucket.
    let instance = h.start_instance().await;
    assert_eq!(
        h.send_with_id(
            follow_up_id,
            CommandKind::LogFollowUp,
            &["loan_officer"],
            follow_up(loan_id, "before the restart")
        )
        .await,
        followed,
        "the original reply after a restart"
    );
    assert_eq!(
        h.send_with_id(
            lead_id,
            CommandKind::CaptureLead,
            &["loan_officer"],
            lead(loan_id, customer_id)
        )
        .await,
        captured,
    );
    assert_eq!(
        h.send_with_id(
            registration_id,
            CommandKind::RegisterCustomer,
            &["customer_service"],
            registration(other_customer)
        )
        .await,
        registered,
        "a replayed registration (sensitive fields included) equals the original reply"
    );
    let mismatch = refused(
        h.send_with_id(
            follow_up_id,
            CommandKind::LogFollowUp,
            &["loan_officer"],
            follow_up(loan_id, "after the restart"),
        )
        .await,
    );
    assert_eq!(mismatch.code, ErrorCode::IdempotencyMismatch);
    assert_eq!(mismatch.field.as_deref(), Some("command_id"));
    assert_eq!(h.stream_count().await, before, "nothing applied twice");

    // And the aggregate continues at the right version.
    let next = h
        .send(
            CommandKind::LogFollowUp,
            &["loan_officer"],
            follow_up(loan_id, "after the restart"),
        )
        .await;
    assert_eq!(ok_version(&next), 3);
    instance.stop().await;
}

/// An engine that appends but dies before it remembers the command id: the window the
/// engine covers by finding the command in the aggregate's history.
struct DiesBeforeRemembering(JetStreamStore);

impl EventStore for DiesBeforeRemembering {
    async fn load(&self, aggregate: AggregateRef) -> Result<History, StoreError> {
        self.0.load(aggregate).await
    }
    async fn append(&self, commit: &Commit, expected_last: u64) -> Result<Appended, StoreError> {
        self.0.append(commit, expected_last).await
    }
    async fn commit_at(&self, position: u64) -> Result<Option<Recorded>, StoreError> {
        self.0.commit_at(position).await
    }
    async fn read_after(&self, after: u64, max: usize) -> Result<Vec<Recorded>, StoreError> {
        self.0.read_after(after, max).await
    }
    async fn remember_command(&self, _: Uuid, _: &CommandRecord) -> Result<(), StoreError> {
        Ok(())
    }
    async fn recall_command(&self, command_id: Uuid) -> Result<Option<CommandRecord>, StoreError> {
        self.0.recall_command(command_id).await
    }
}

/// Another instance (its own cache) applies a follow-up and then `command_id` to the lead,
/// and dies before remembering the id. The service's cached lead is now two commits behind.
async fn applied_elsewhere_not_remembered(
    h: &Harness,
    engine: &Engine<DiesBeforeRemembering>,
    lead_id: Uuid,
    command_id: Uuid,
) -> CommandReply {
    let body =
        |id, note: &str| crate::harness::body(id, &["loan_officer"], follow_up(lead_id, note));
    let now = h.clock.now();
    ok(engine
        .execute(
            CommandKind::LogFollowUp,
            &body(Uuid::now_v7(), "by the other instance"),
            now,
        )
        .await);
    let reply = engine
        .execute(
            CommandKind::LogFollowUp,
            &body(command_id, "the command"),
            now,
        )
        .await;
    assert_eq!(ok_version(&reply), 3);
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_applied_but_not_remembered_is_recognised_on_retry() {
    let h = Harness::new().await;
    let instance = h.start_instance().await;
    let customer_id = onboard_customer(&h).await;
    let other = Engine::new(
        DiesBeforeRemembering(h.store().await),
        h.vault().await,
        EngineConfig::default(),
    );
    let mut wrong = Vec::new();

    // The retry, same payload: the original reply (the command's events, version 3).
    let lead_id = Uuid::now_v7();
    ok(h.send(
        CommandKind::CaptureLead,
        &["loan_officer"],
        lead(lead_id, customer_id),
    )
    .await);
    let command_id = Uuid::now_v7();
    let original = applied_elsewhere_not_remembered(&h, &other, lead_id, command_id).await;
    let retry = h
        .send_with_id(
            command_id,
            CommandKind::LogFollowUp,
            &["loan_officer"],
            follow_up(lead_id, "the command"),
        )
        .await;
    if retry != original {
        wrong.push(format!(
            "same payload: version {:?} instead of {} (events {:?})",
            ok_version(&retry),
            ok_version(&original),
            ok_events(&retry)
                .iter()
                .map(|e| e.meta.version)
                .collect::<Vec<_>>()
        ));
    }

    // The retry with another payload for the same lead: idempotency_mismatch.
    let lead_id = Uuid::now_v7();
    ok(h.send(
        CommandKind::CaptureLead,
        &["loan_officer"],
        lead(lead_id, customer_id),
    )
    .await);
    let command_id = Uuid::now_v7();
    applied_elsewhere_not_remembered(&h, &other, lead_id, command_id).await;
    let retry = h
        .send_with_id(
            command_id,
            CommandKind::LogFollowUp,
            &["loan_officer"],
            follow_up(lead_id, "another note"),
        )
        .await;
    if !matches!(&retry, CommandReply::Error { error } if error.code == ErrorCode::IdempotencyMismatch)
    {
        wrong.push(format!("another payload, same lead: {retry:?}"));
    }

    // The same id with a payload for another lead: idempotency_mismatch.
    let lead_id = Uuid::now_v7();
    let another_lead = Uuid::now_v7();
    ok(h.send(
        CommandKind::CaptureLead,
        &["loan_officer"],
        lead(lead_id, customer_id),
    )
    .await);
    ok(h.send(
        CommandKind::CaptureLead,
        &["loan_officer"],
        lead(another_lead, customer_id),
    )
    .await);
    let command_id = Uuid::now_v7();
    applied_elsewhere_not_remembered(&h, &other, lead_id, command_id).await;
    let retry = h
        .send_with_id(
            command_id,
            CommandKind::LogFollowUp,
            &["loan_officer"],
            follow_up(another_lead, "the command"),
        )
        .await;
    match &retry {
        CommandReply::Error { error } if error.code == ErrorCode::IdempotencyMismatch => {}
        CommandReply::Ok {
            aggregate_id,
            events,
            ..
        } => wrong.push(format!(
            "payload for another lead: ok for aggregate {aggregate_id} with the events of {:?}",
            events
                .iter()
                .map(|e| e.meta.aggregate_id)
                .collect::<Vec<_>>()
        )),
        other => wrong.push(format!("payload for another lead: {other:?}")),
    }

    // Whatever the replies, nothing was applied twice.
    let commits = h.commits().await;
    crate::harness::command_ids(&commits);
    instance.stop().await;
    assert!(
        wrong.is_empty(),
        "a retry of a command applied but not remembered got the wrong reply:\n{}",
        wrong.join("\n")
    );
}
