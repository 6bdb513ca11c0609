//! The command service writes checkpoints of the log at its configured cadence (every N
//! commits, or every T), several instances never write conflicting ones, and the log
//! with its checkpoints verifies intact from the start.

use std::time::Duration;

use loan_domain::CommandKind;
use loan_store::EventStore;
use loan_store::chain::ChainVerifier;
use loan_store::checkpoint::{Cadence, CheckpointLog, CheckpointRecord};
use loan_store::jetstream::JetStreamStore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::harness::{Harness, lead, ok, onboard_customer};

/// Waits (bounded: the bound only turns a hang into a failure) until the last checkpoint
/// covers `position`.
async fn checkpoint_covering(store: &JetStreamStore, position: u64) -> CheckpointRecord {
    for _ in 0..600 {
        if let Some(last) = store.last_checkpoint().await.expect("last checkpoint") {
            if last.checkpoint.covers >= position {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no checkpoint covering position {position} was written");
}

/// Verifies every commit and checkpoint of the stream in log order; returns the number
/// of checkpoints.
async fn verify_stream(store: &JetStreamStore) -> u64 {
    let commits = store.read_after(0, 100_000).await.expect("commits");
    let checkpoints = store
        .checkpoints_after(0, 100_000)
        .await
        .expect("checkpoints");
    let mut verifier = ChainVerifier::new();
    let (mut c, mut k) = (commits.iter().peekable(), checkpoints.iter().peekable());
    loop {
        let take_checkpoint = match (c.peek(), k.peek()) {
            (None, None) => break,
            (Some(commit), Some(checkpoint)) => checkpoint.position < commit.position,
            (None, Some(_)) => true,
            (Some(_), None) => false,
        };
        if take_checkpoint {
            let checkpoint = k.next().expect("peeked");
            verifier
                .push_checkpoint(checkpoint.position, &checkpoint.checkpoint.to_bytes())
                .expect("the checkpoint verifies");
        } else {
            let commit = c.next().expect("peeked");
            verifier
                .push(commit.position, &commit.commit.to_bytes())
                .expect("the commit's link holds");
        }
    }
    verifier.finish().checkpoints
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_follows_every_third_commit() {
    let mut h = Harness::new().await;
    // Onboarding by an instance that writes no checkpoints.
    h.checkpoints = Cadence {
        every_commits: None,
        every: None,
    };
    let onboarding = h.start_instance().await;
    let customer_id = onboard_customer(&h).await;
    onboarding.stop().await;
    let store = h.store().await;
    assert_eq!(store.last_checkpoint().await.expect("last"), None);

    h.checkpoints = Cadence {
        every_commits: Some(3),
        every: None,
    };
    let instance = h.start_instance().await;
    let mut covered = Vec::new();
    for n in 1..=7 {
        ok(h.send(
            CommandKind::CaptureLead,
            &["loan_officer"],
            lead(Uuid::now_v7(), customer_id),
        )
        .await);
        if n % 3 == 0 {
            let position = store.last_commit_position().await.expect("head");
            let checkpoint = checkpoint_covering(&store, position).await;
            let commits = store.read_after(0, 10_000).await.expect("read").len() as u64;
            assert_eq!(checkpoint.checkpoint.covers, position, "after lead {n}");
            assert_eq!(checkpoint.checkpoint.commits, commits, "after lead {n}");
            covered.push(checkpoint.position);
        }
    }
    instance.stop().await;
    let all: Vec<u64> = store
        .checkpoints_after(0, 100)
        .await
        .expect("checkpoints")
        .iter()
        .map(|c| c.position)
        .collect();
    assert_eq!(
        all, covered,
        "one checkpoint after the 3rd and the 6th lead, none after the 7th"
    );
    assert_eq!(verify_stream(&store).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_is_written_after_the_interval() {
    let mut h = Harness::new().await;
    h.checkpoints = Cadence {
        every_commits: None,
        every: Some(Duration::from_millis(100)),
    };
    let instance = h.start_instance().await;
    let store = h.store().await;
    onboard_customer(&h).await;
    let head = store.last_commit_position().await.expect("head");
    let checkpoint = checkpoint_covering(&store, head).await;
    instance.stop().await;
    assert_eq!(checkpoint.checkpoint.covers, head);
    assert_eq!(
        checkpoint.checkpoint.commits,
        store.read_after(0, 10_000).await.expect("read").len() as u64
    );
    assert!(verify_stream(&store).await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_checkpointing_every_commit_never_write_conflicting_checkpoints() {
    let mut h = Harness::new().await;
    h.checkpoints = Cadence {
        every_commits: Some(1),
        every: None,
    };
    let first = h.start_instance().await;
    let second = h.start_instance().await;
    let customer_id = onboard_customer(&h).await;
    let mut sends = JoinSet::new();
    for _ in 0..24 {
        let sender = h.sender();
        sends.spawn(async move {
            sender
                .send_with_id(
                    Uuid::now_v7(),
                    CommandKind::CaptureLead,
                    &["loan_officer"],
                    lead(Uuid::now_v7(), customer_id),
                )
                .await
        });
    }
    while let Some(reply) = sends.join_next().await {
        ok(reply.expect("sent"));
    }
    let store = h.store().await;
    let head = store.last_commit_position().await.expect("head");
    // A last trigger may have raced the last commits: one more round settles it.
    let last = checkpoint_covering_or_write(&store, head).await;
    first.stop().await;
    second.stop().await;
    assert_eq!(last.checkpoint.covers, head);
    let checkpoints = verify_stream(&store).await;
    assert!(checkpoints >= 1, "checkpoints were written");
}

/// The last checkpoint once it covers `position`; if the instances' triggers all raced
/// the last commits, writes it here as an operator would on demand.
async fn checkpoint_covering_or_write(store: &JetStreamStore, position: u64) -> CheckpointRecord {
    for _ in 0..40 {
        if let Some(last) = store.last_checkpoint().await.expect("last") {
            if last.checkpoint.covers >= position {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = store
        .write_checkpoint(chrono::Utc::now())
        .await
        .expect("checkpoint on demand");
    checkpoint_covering(store, position).await
}
