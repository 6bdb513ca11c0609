//! Two instances in one queue group: each command is delivered to one of them and applied
//! once, both serve a share, and their separate caches never let a stale state win
//! (optimistic concurrency catches it and the instance reloads).

use std::collections::BTreeSet;

use loan_contract::CommandReply;
use loan_domain::CommandKind;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::harness::{Harness, command_ids, lead, ok, onboard_customer};

/// Requests each instance answered on the `log_follow_up` endpoint, from `$SRV.STATS`.
fn follow_up_requests(stats: &Value) -> u64 {
    stats["endpoints"]
        .as_array()
        .expect("stats list endpoints")
        .iter()
        .find(|e| e["name"] == CommandKind::LogFollowUp.name())
        .and_then(|e| e["num_requests"].as_u64())
        .expect("the log_follow_up endpoint counts its requests")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_each_apply_a_share_and_nothing_twice() {
    let h = Harness::new().await;
    let first = h.start_instance().await;
    let second = h.start_instance().await;
    h.wait_for_instances(2).await;

    let customer_id = onboard_customer(&h).await;
    let loan_ids: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    for loan_id in &loan_ids {
        ok(h.send(
            CommandKind::CaptureLead,
            &["loan_officer"],
            lead(*loan_id, customer_id),
        )
        .await);
    }
    let before = h.stream_count().await;
    let stats_before: u64 = h
        .service_answers("STATS", 2)
        .await
        .iter()
        .map(follow_up_requests)
        .sum();

    // 200 follow-ups, 10 per lead, all at once: consecutive commands on one lead land on
    // either instance, so each instance's cache is regularly behind the log.
    let mut tasks = JoinSet::new();
    let mut sent = BTreeSet::new();
    for round in 0..10 {
        for loan_id in &loan_ids {
            let command_id = Uuid::now_v7();
            sent.insert(command_id);
            let sender = h.sender();
            let payload = json!({ "loan_id": loan_id, "note": format!("call {round}") });
            tasks.spawn(async move {
                sender
                    .send_until_settled(
                        command_id,
                        CommandKind::LogFollowUp,
                        &["loan_officer"],
                        payload,
                    )
                    .await
            });
        }
    }
    let mut conflicts = 0;
    while let Some(task) = tasks.join_next().await {
        let (reply, seen) = task.expect("sender task");
        assert!(
            matches!(reply, CommandReply::Ok { .. }),
            "a follow-up was refused: {reply:?}"
        );
        conflicts += u64::from(seen);
    }

    // Each applied exactly once.
    assert_eq!(
        h.stream_count().await,
        before + 200,
        "one commit per command"
    );
    let commits = h.commits().await;
    let logged = command_ids(&commits);
    assert!(sent.is_subset(&logged), "every command is in the log");
    for loan_id in &loan_ids {
        let (loan, version) = h.loan(*loan_id).await;
        assert_eq!(version, 11, "lead {loan_id}: captured and ten follow-ups");
        let notes: BTreeSet<&str> = loan
            .application()
            .expect("application")
            .follow_ups
            .iter()
            .map(|f| f.note.as_str())
            .collect();
        assert_eq!(notes.len(), 10, "lead {loan_id}: each follow-up once");
    }

    // Both instances served a share; together they answered every request we sent.
    let stats = h.service_answers("STATS", 2).await;
    let ids: BTreeSet<&str> = stats.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "two distinct instances answer STATS");
    let per_instance: Vec<u64> = stats.iter().map(follow_up_requests).collect();
    eprintln!(
        "two instances: follow-up requests per instance {per_instance:?}, {conflicts} conflict replies resent"
    );
    assert!(
        per_instance.iter().all(|n| *n > 0),
        "both instances served requests: {per_instance:?}"
    );
    assert_eq!(
        per_instance.iter().sum::<u64>() - stats_before,
        200 + conflicts,
        "every request was answered by exactly one instance"
    );

    first.stop().await;
    // The survivor carries on alone.
    let after = h
        .send(
            CommandKind::LogFollowUp,
            &["loan_officer"],
            json!({ "loan_id": loan_ids[0], "note": "one instance left" }),
        )
        .await;
    assert_eq!(crate::harness::ok_version(&after), 12);
    second.stop().await;
}
