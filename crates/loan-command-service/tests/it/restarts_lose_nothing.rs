//! Stopping the service mid-run, or killing the nats-server under it, loses no
//! acknowledged command and applies none twice: every command answered `ok` is in the
//! log, resending any command with its id after the restart applies it at most once, and
//! every aggregate ends at the version its commands imply.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use loan_contract::CommandReply;
use loan_domain::CommandKind;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::harness::{Harness, Sender, body, command_ids, lead, ok, ok_version, onboard_customer};

/// One follow-up command of the batch.
#[derive(Clone)]
pub(crate) struct Planned {
    pub command_id: Uuid,
    pub payload: Value,
}

/// What the caller learned about a command of the batch.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Answered `ok`: it is applied, and this is the reply.
    Applied(CommandReply),
    /// Answered with a retryable refusal (`conflict`, `unavailable`): resend it.
    Retryable,
    /// No instance was listening (a definite "not taken"): resend it.
    NoResponders,
    /// No answer: the outcome is unknown; resend it with the same id.
    Unknown,
}

/// Captures `leads` leads of one customer and plans `per_lead` follow-ups on each.
pub(crate) async fn leads_and_follow_ups(
    h: &Harness,
    leads: usize,
    per_lead: usize,
) -> (Vec<Uuid>, Vec<Planned>) {
    let customer_id = onboard_customer(h).await;
    let mut loan_ids = Vec::new();
    for _ in 0..leads {
        let loan_id = Uuid::now_v7();
        ok(h.send(
            CommandKind::CaptureLead,
            &["loan_officer"],
            lead(loan_id, customer_id),
        )
        .await);
        loan_ids.push(loan_id);
    }
    let mut planned = Vec::new();
    for round in 0..per_lead {
        for (n, loan_id) in loan_ids.iter().enumerate() {
            planned.push(Planned {
                command_id: Uuid::now_v7(),
                payload: json!({ "loan_id": loan_id, "note": format!("call {round} with lead {n}") }),
            });
        }
    }
    (loan_ids, planned)
}

/// Sends the batch concurrently; each task reports its outcome on `done`, and gives up
/// waiting for a reply when `give_up` turns true (or after `wait`).
pub(crate) fn spawn_batch(
    sender: &Sender,
    planned: &[Planned],
    wait: Duration,
    done: mpsc::UnboundedSender<()>,
    give_up: watch::Receiver<bool>,
) -> JoinSet<(Planned, Outcome)> {
    let mut tasks = JoinSet::new();
    for command in planned.iter().cloned() {
        let sender = sender.clone();
        let done = done.clone();
        let mut give_up = give_up.clone();
        tasks.spawn(async move {
            let subject = sender.subjects.command(CommandKind::LogFollowUp);
            let request = sender.try_request_raw(subject, body(command.command_id, &["loan_officer"], command.payload.clone()), wait);
            let outcome = tokio::select! {
                biased;
                reply = request => match reply {
                    Ok(reply @ CommandReply::Ok { .. }) => Outcome::Applied(reply),
                    Ok(CommandReply::Error { error }) if error.code.retryable() => Outcome::Retryable,
                    Ok(CommandReply::Error { error }) => panic!("a follow-up was refused: {error:?}"),
                    Err(reason) if reason.contains("no responders") => Outcome::NoResponders,
                    Err(_) => Outcome::Unknown,
                },
                _ = give_up.wait_for(|g| *g) => Outcome::Unknown,
            };
            let _ = done.send(());
            (command, outcome)
        });
    }
    tasks
}

/// Resends every planned command with its own id until it is answered `ok`; checks that
/// commands answered before get their original reply.
pub(crate) async fn resend_all(
    h: &Harness,
    planned: &[Planned],
    earlier: &BTreeMap<Uuid, CommandReply>,
) {
    let mut tasks = JoinSet::new();
    for command in planned.iter().cloned() {
        let sender = h.sender();
        let earlier = earlier.get(&command.command_id).cloned();
        tasks.spawn(async move {
            let (reply, _) = sender
                .send_until_settled(
                    command.command_id,
                    CommandKind::LogFollowUp,
                    &["loan_officer"],
                    command.payload.clone(),
                )
                .await;
            assert!(
                matches!(reply, CommandReply::Ok { .. }),
                "resent {} refused: {reply:?}",
                command.command_id
            );
            if let Some(earlier) = earlier {
                assert_eq!(
                    reply, earlier,
                    "a command answered before the restart gets its original reply"
                );
            }
        });
    }
    while let Some(task) = tasks.join_next().await {
        task.expect("resend task");
    }
}

/// Every planned command exactly once in the log, every lead at version 1 + its follow-ups.
pub(crate) async fn assert_applied_exactly_once(
    h: &Harness,
    loan_ids: &[Uuid],
    planned: &[Planned],
    per_lead: usize,
) {
    let commits = h.commits().await;
    let logged = command_ids(&commits);
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
    for loan_id in loan_ids {
        let (loan, version) = h.loan(*loan_id).await;
        assert_eq!(version, 1 + per_lead as u64, "lead {loan_id} version");
        let application = loan.application().expect("a lead has an application");
        assert_eq!(application.follow_ups.len(), per_lead);
        let notes: BTreeSet<&str> = application
            .follow_ups
            .iter()
            .map(|f| f.note.as_str())
            .collect();
        assert_eq!(notes.len(), per_lead, "no follow-up recorded twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_mid_batch_answers_what_it_applied_and_a_new_instance_continues() {
    let h = Harness::new().await;
    // Four commands at a time: when it stops, most of the batch is still queued.
    let instance = h.start_instance_with(4).await;
    let (loan_ids, planned) = leads_and_follow_ups(&h, 20, 5).await;
    assert_eq!(planned.len(), 100);

    let (done_tx, mut done) = mpsc::unbounded_channel();
    let (give_up_tx, give_up) = watch::channel(false);
    let mut batch = spawn_batch(
        &h.sender(),
        &planned,
        Duration::from_secs(30),
        done_tx,
        give_up,
    );
    // Stop after the first few answers, with the rest in flight.
    for _ in 0..5 {
        tokio::time::timeout(Duration::from_secs(10), done.recv())
            .await
            .expect("the first answers within 10 s")
            .expect("batch running");
    }
    instance.stop().await;
    // `run` returned: every reply it sent was flushed to the server. One round trip on
    // our connection delivers them to us; anything still unanswered never will be.
    h.client.flush().await.expect("flush");
    // Replies the instance sent just before its stop completed may still be on their
    // way to this client: give them a moment before calling the rest unanswered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Every task may already have its answer (and dropped its receiver).
    let _ = give_up_tx.send(true);

    let mut answered = BTreeMap::new();
    let (mut retryable, mut unknown) = (0, BTreeSet::new());
    while let Some(task) = batch.join_next().await {
        let (command, outcome) = task.expect("batch task");
        match outcome {
            Outcome::Applied(reply) => {
                answered.insert(command.command_id, reply);
            }
            Outcome::Retryable | Outcome::NoResponders => retryable += 1,
            Outcome::Unknown => {
                unknown.insert(command.command_id);
            }
        }
    }
    eprintln!(
        "graceful stop: {} answered ok, {retryable} retryable, {} unanswered",
        answered.len(),
        unknown.len()
    );
    assert!(answered.len() >= 5);

    // Every ok reply is in the log, and the drain answered every command it applied.
    let logged = command_ids(&h.commits().await);
    for command_id in answered.keys() {
        assert!(
            logged.contains(command_id),
            "command {command_id} was answered ok but is not in the log"
        );
    }
    let applied_unanswered: Vec<_> = unknown.iter().filter(|id| logged.contains(id)).collect();
    assert!(
        applied_unanswered.is_empty(),
        "applied but never answered by the draining instance: {applied_unanswered:?}"
    );

    // A new instance; every command resent with its id: applied once in all.
    let instance = h.start_instance().await;
    resend_all(&h, &planned, &answered).await;
    assert_applied_exactly_once(&h, &loan_ids, &planned, 5).await;
    // Resending once more changes nothing.
    let count = h.stream_count().await;
    resend_all(&h, &planned[..10], &BTreeMap::new()).await;
    assert_eq!(h.stream_count().await, count);
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commits_survive_a_nats_server_crash() {
    let mut h = Harness::new().await;
    let instance = h.start_instance().await;
    let (loan_ids, planned) = leads_and_follow_ups(&h, 10, 4).await;

    // Half the follow-ups answered before the crash.
    let (before_crash, during_crash) = planned.split_at(20);
    let mut answered = BTreeMap::new();
    for command in before_crash {
        let reply = h
            .send_with_id(
                command.command_id,
                CommandKind::LogFollowUp,
                &["loan_officer"],
                command.payload.clone(),
            )
            .await;
        ok_version(&reply);
        answered.insert(command.command_id, reply);
    }
    let count_before = h.stream_count().await;

    // The other half in flight when the server is killed (SIGKILL) and restarted.
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
    h.server().crash_and_restart();

    // The same instance reconnects: bounded wait until a new command is applied.
    let probe_id = Uuid::now_v7();
    let probe = json!({ "loan_id": loan_ids[0], "note": "after the crash" });
    let sender = h.sender();
    let mut attempts = 0;
    let probe_reply = loop {
        attempts += 1;
        let reply = sender
            .try_request_raw(
                sender.subjects.command(CommandKind::LogFollowUp),
                body(probe_id, &["loan_officer"], probe.clone()),
                Duration::from_secs(2),
            )
            .await;
        match &reply {
            Ok(CommandReply::Ok { .. }) => break reply.expect("an ok reply"),
            Ok(CommandReply::Error { error }) => {
                assert!(error.code.retryable(), "after the crash: {error:?}")
            }
            Err(_) => {}
        }
        assert!(
            attempts < 30,
            "the service did not recover from the server crash: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("crash: the same instance answered again after {attempts} attempt(s)");
    // Requests lost with the old server connection are never answered: stop waiting.
    h.client.flush().await.expect("flush");
    // Replies the instance sent just before its stop completed may still be on their
    // way to this client: give them a moment before calling the rest unanswered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Every task may already have its answer (and dropped its receiver).
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
        "crash: {} answered ok in all, {retryable} retryable, {unknown} unanswered",
        answered.len()
    );

    // Acknowledged commits survived the SIGKILL.
    assert!(
        h.stream_count().await > count_before,
        "the probe was appended"
    );
    let logged = command_ids(&h.commits().await);
    for command_id in answered.keys() {
        assert!(
            logged.contains(command_id),
            "acknowledged command {command_id} was lost in the crash"
        );
    }

    // Resending everything with the same ids applies each once; answered ones replay.
    resend_all(&h, &planned, &answered).await;
    let commits = h.commits().await;
    let logged = command_ids(&commits);
    assert!(logged.contains(&probe_id));
    assert_eq!(
        commits
            .iter()
            .filter(|c| c.command == CommandKind::LogFollowUp)
            .count(),
        planned.len() + 1
    );
    let (_, version) = h.loan(loan_ids[0]).await;
    assert_eq!(
        version,
        1 + 4 + 1,
        "the probed lead: captured, four follow-ups, the probe"
    );
    assert!(ok_version(&probe_reply) <= version);
    for loan_id in &loan_ids[1..] {
        let (_, version) = h.loan(*loan_id).await;
        assert_eq!(version, 1 + 4, "lead {loan_id}");
    }
    instance.stop().await;
}

/// "Upstream services send commands over NATS and get a definite answer": a graceful stop
/// must answer (or hand back as retryable) every request the queue group already routed
/// to this instance, not leave its callers waiting for their own timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_answers_every_request_it_has_taken() {
    let h = Harness::new().await;
    // One command at a time, so that most of the batch waits in the instance's queue.
    let instance = h.start_instance_with(1).await;
    let (_, planned) = leads_and_follow_ups(&h, 1, 40).await;
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let (give_up_tx, give_up) = watch::channel(false);
    let mut batch = spawn_batch(
        &h.sender(),
        &planned,
        Duration::from_secs(30),
        done_tx,
        give_up,
    );
    tokio::time::timeout(Duration::from_secs(10), done.recv())
        .await
        .expect("a first answer within 10 s")
        .expect("batch running");
    instance.stop().await;
    h.client.flush().await.expect("flush");
    // Replies the instance sent just before its stop completed may still be on their
    // way to this client: give them a moment before calling the rest unanswered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Every task may already have its answer (and dropped its receiver).
    let _ = give_up_tx.send(true);
    let mut unanswered = 0;
    while let Some(task) = batch.join_next().await {
        if let (_, Outcome::Unknown) = task.expect("batch task") {
            unanswered += 1;
        }
    }
    assert_eq!(
        unanswered,
        0,
        "{unanswered} of {} requests taken by the stopping instance were dropped without a reply",
        planned.len()
    );
}
