//! What a PubAck promises with three replicas (every node `sync_interval: always`): a
//! command answered `ok` was stored by a majority of the stream's replicas, so it
//! survives kill -9 of the stream leader — after a new leader is elected every
//! acknowledged commit is readable and appends continue — and without a majority
//! nothing is acknowledged at all: callers get a retryable refusal or no answer, never
//! `ok`, and readiness says the stream is unreachable. (One replica: the crash test in
//! `restarts_lose_nothing`.)

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use loan_contract::CommandReply;
use loan_domain::CommandKind;
use loan_store::Commit;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::harness::{Harness, body, command_ids, http_get, ok_version, prometheus_samples};
use crate::restarts_lose_nothing::{Outcome, Planned, leads_and_follow_ups, spawn_batch};

/// The stream's leader as the cluster reports it (`cluster.leader` of the stream info),
/// once there is one that is not `not`; bounded wait (30 s) for an election.
async fn stream_leader(h: &Harness, not: Option<&str>) -> String {
    let js = jetstream::new(h.client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let leader =
            match tokio::time::timeout(Duration::from_secs(2), js.get_stream(&h.stream)).await {
                Ok(Ok(stream)) => stream
                    .cached_info()
                    .cluster
                    .as_ref()
                    .and_then(|c| c.leader.clone()),
                _ => None,
            };
        match leader {
            Some(leader) if Some(leader.as_str()) != not => return leader,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "no stream leader other than {not:?} within 30 s (last: {other:?})"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every commit in the stream, read one by one through the stream leader (the message
/// get API, not a direct get a lagging replica could answer).
async fn commits_from_the_leader(h: &Harness) -> Vec<Commit> {
    let js = jetstream::new(h.client.clone());
    let stream = js.get_stream(&h.stream).await.expect("the stream answers");
    let state = stream.get_info().await.expect("stream info").state;
    let mut commits = Vec::new();
    let mut checkpoints = 0;
    for sequence in state.first_sequence..=state.last_sequence {
        let message = stream
            .get_raw_message(sequence)
            .await
            .unwrap_or_else(|e| panic!("message {sequence} is not readable: {e}"));
        if message.subject.as_str() == h.subjects().checkpoints() {
            // The log's own checkpoints, interleaved with the commits.
            checkpoints += 1;
            continue;
        }
        commits
            .push(Commit::from_bytes(&message.payload).expect("every other message is a commit"));
    }
    assert_eq!(
        commits.len() as u64 + checkpoints,
        state.messages,
        "no gap in the log"
    );
    commits
}

/// Sends a follow-up until it is answered `ok` (bounded): retryable refusals and missing
/// answers are expected while the cluster elects a leader and the service reconnects.
async fn send_until_ok(h: &Harness, command_id: Uuid, payload: &Value) -> (CommandReply, u32) {
    let sender = h.sender();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let reply = sender
            .try_request_raw(
                sender.subjects.command(CommandKind::LogFollowUp),
                body(command_id, &["loan_officer"], payload.clone()),
                Duration::from_secs(3),
            )
            .await;
        match reply {
            Ok(reply @ CommandReply::Ok { .. }) => return (reply, attempts),
            Ok(CommandReply::Error { error }) => {
                assert!(error.code.retryable(), "a definite refusal: {error:?}")
            }
            Err(_) => {}
        }
        assert!(
            attempts < 60,
            "command {command_id} not applied after 60 attempts"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Resends every planned command with its own id until it is answered `ok` (retryable
/// refusals are retried, as the contract asks); a command answered before gets its
/// original reply.
async fn resend_until_ok(h: &Harness, planned: &[Planned], earlier: &BTreeMap<Uuid, CommandReply>) {
    for command in planned {
        let (reply, _) = send_until_ok(h, command.command_id, &command.payload).await;
        if let Some(earlier) = earlier.get(&command.command_id) {
            assert_eq!(
                &reply, earlier,
                "a command answered before gets its original reply"
            );
        }
    }
}

/// Failed store operations by operation and kind, from a `/metrics` scrape.
fn store_errors(metrics: &str) -> BTreeMap<String, u64> {
    let mut errors = BTreeMap::new();
    for ((name, labels), value) in prometheus_samples(metrics) {
        if name == "loan_store_errors_total" {
            *errors
                .entry(format!("{}/{}", labels["operation"], labels["kind"]))
                .or_default() += value.parse::<u64>().expect("a count");
        }
    }
    errors
}

/// The follow-ups of `planned` in the log, checked to be exactly the planned ones.
fn assert_each_applied_once(commits: &[Commit], planned: &[Planned]) {
    let logged = command_ids(commits);
    for command in planned {
        assert!(
            logged.contains(&command.command_id),
            "command {} is not in the log",
            command.command_id
        );
    }
    let follow_ups = commits
        .iter()
        .filter(|c| c.command == CommandKind::LogFollowUp)
        .count();
    assert_eq!(
        follow_ups,
        planned.len(),
        "each follow-up applied exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_three_replicas_acknowledged_commits_survive_kill_9_of_the_stream_leader() {
    let mut h = Harness::on_cluster().await;
    let (instance, address) = h.start_instance_listening(256).await;
    let (loan_ids, planned) = leads_and_follow_ups(&h, 10, 4).await;
    let (before_crash, during_crash) = planned.split_at(20);
    let mut answered = BTreeMap::new();
    for command in before_crash {
        let (reply, _) = send_until_ok(&h, command.command_id, &command.payload).await;
        answered.insert(command.command_id, reply);
    }

    // The rest in flight when the leader is killed.
    let leader = stream_leader(&h, None).await;
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let (give_up_tx, give_up) = watch::channel(false);
    let mut batch = spawn_batch(
        &h.sender(),
        during_crash,
        Duration::from_secs(30),
        done_tx,
        give_up,
    );
    tokio::time::timeout(Duration::from_secs(10), done.recv())
        .await
        .expect("a first answer within 10 s")
        .expect("batch running");
    tokio::task::block_in_place(|| h.cluster().kill(&leader));
    let new_leader = stream_leader(&h, Some(&leader)).await;
    eprintln!("stream leader {leader} killed; {new_leader} elected");

    // Appends continue on the new leader, through the same instance.
    let probe_payload =
        serde_json::json!({ "loan_id": loan_ids[0], "note": "after the leader died" });
    let probe_id = Uuid::now_v7();
    let (probe, attempts) = send_until_ok(&h, probe_id, &probe_payload).await;
    eprintln!("the instance applied a command again after {attempts} attempt(s)");
    h.client.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = give_up_tx.send(true);
    let (mut retryable, mut unknown) = (0, 0);
    while let Some(task) = batch.join_next().await {
        let (command, outcome) = task.expect("batch task");
        match outcome {
            Outcome::Applied(reply) => {
                answered.insert(command.command_id, reply);
            }
            Outcome::Retryable | Outcome::NoResponders => retryable += 1,
            Outcome::Unknown => unknown += 1,
        }
    }
    eprintln!(
        "leader crash: {} answered ok, {retryable} retryable, {unknown} unanswered",
        answered.len()
    );

    // Every acknowledged commit is readable from the new leader.
    let logged = command_ids(&commits_from_the_leader(&h).await);
    for command_id in answered.keys() {
        assert!(
            logged.contains(command_id),
            "acknowledged command {command_id} was lost with the leader"
        );
    }

    // The old leader rejoins and catches up; every command resent with its id (the
    // unanswered ones too) applies once in all.
    tokio::task::block_in_place(|| h.cluster().restart(&leader));
    resend_until_ok(&h, &planned, &answered).await;
    let metrics = http_get(address, "/metrics")
        .await
        .expect("GET /metrics")
        .body;
    eprintln!(
        "store errors seen by the instance: {:?}",
        store_errors(&metrics)
    );
    let commits = commits_from_the_leader(&h).await;
    let (probe_commits, follow_ups): (Vec<Commit>, Vec<Commit>) =
        commits.into_iter().partition(|c| c.command_id == probe_id);
    assert_eq!(probe_commits.len(), 1, "the probe is in the log once");
    assert_eq!(probe_commits[0].version, ok_version(&probe));
    assert_each_applied_once(&follow_ups, &planned);
    let js = jetstream::new(h.client.clone());
    let info = js
        .get_stream(&h.stream)
        .await
        .expect("stream")
        .get_info()
        .await
        .expect("stream info");
    let cluster = info
        .cluster
        .expect("a replicated stream reports its cluster");
    assert_eq!(cluster.replicas.len(), 2, "a leader and two followers");
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_of_three_nodes_down_nothing_is_acknowledged_and_readiness_says_why() {
    let mut h = Harness::on_cluster().await;
    let (instance, address) = h.start_instance_listening(16).await;
    let (_, planned) = leads_and_follow_ups(&h, 2, 3).await;
    let (before, without_quorum) = planned.split_at(3);
    let mut answered = BTreeMap::new();
    for command in before {
        let (reply, _) = send_until_ok(&h, command.command_id, &command.payload).await;
        answered.insert(command.command_id, reply);
    }

    // Keep one node: a follower of the stream.
    let leader = stream_leader(&h, None).await;
    let names = h.cluster().names();
    let survivor = names
        .iter()
        .find(|n| **n != leader)
        .expect("a follower")
        .clone();
    for name in names.iter().filter(|n| **n != survivor) {
        tokio::task::block_in_place(|| h.cluster().kill(name));
    }

    // The instance reconnects to the survivor: connected, endpoints registered, but the
    // stream has no leader.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let not_ready = loop {
        let response = http_get(address, "/health/ready")
            .await
            .expect("GET /health/ready");
        let body = response.json();
        if body["checks"]["nats"]["ok"] == true && body["checks"]["endpoints"]["ok"] == true {
            break response;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the instance did not reconnect to {survivor} within 30 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(not_ready.status, 503, "{not_ready:?}");
    assert_eq!(not_ready.json()["failed"], serde_json::json!(["stream"]));

    // No majority, no PubAck: every command is refused as retryable or left unanswered.
    let sender = h.sender();
    let mut outcomes = Vec::new();
    for command in without_quorum {
        let reply = sender
            .try_request_raw(
                sender.subjects.command(CommandKind::LogFollowUp),
                body(
                    command.command_id,
                    &["loan_officer"],
                    command.payload.clone(),
                ),
                Duration::from_secs(15),
            )
            .await;
        match &reply {
            Ok(CommandReply::Ok { .. }) => {
                panic!(
                    "command {} acknowledged without a quorum",
                    command.command_id
                )
            }
            Ok(CommandReply::Error { error }) => {
                assert!(error.code.retryable(), "{error:?}");
                outcomes.push(format!("{:?}", error.code));
            }
            Err(reason) => outcomes.push(reason.clone()),
        }
    }
    eprintln!("without a quorum: {outcomes:?}");
    let metrics = http_get(address, "/metrics")
        .await
        .expect("GET /metrics")
        .body;
    let errors = store_errors(&metrics);
    eprintln!("store errors without a quorum: {errors:?}");
    let unavailable_replies = outcomes.iter().filter(|o| *o == "Unavailable").count() as u64;
    assert!(
        errors.values().sum::<u64>() >= unavailable_replies,
        "every `unavailable` reply comes from a failed store operation, counted: {errors:?}"
    );

    // One node back: a majority again; the refused commands apply, once each.
    let returning = names
        .iter()
        .find(|n| **n != survivor)
        .expect("a killed node")
        .clone();
    tokio::task::block_in_place(|| h.cluster().restart(&returning));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while http_get(address, "/health/ready")
        .await
        .map(|r| r.status)
        .ok()
        != Some(200)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready again within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for command in without_quorum {
        send_until_ok(&h, command.command_id, &command.payload).await;
    }
    resend_until_ok(&h, &planned, &answered).await;
    assert_each_applied_once(&commits_from_the_leader(&h).await, &planned);
    instance.stop().await;
}
