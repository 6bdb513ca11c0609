//! The JetStream store passes the conformance suite and keeps its durability promises.

use loan_contract::Subjects;
use loan_store::conformance;
use loan_store::group_commit::GroupCommit;
use loan_store::jetstream::{JetStreamStore, StoreConfig};
use loan_store::{EventStore, History};
use loan_testkit::NatsServer;
use uuid::Uuid;

async fn open(url: &str, name: &str) -> JetStreamStore {
    open_with(url, name, None).await
}

async fn open_with(url: &str, name: &str, group_commit: Option<GroupCommit>) -> JetStreamStore {
    let client = async_nats::connect(url)
        .await
        .expect("connect to the test nats-server");
    let prefix = format!("t{}", name.to_lowercase());
    let mut config = StoreConfig::new(
        format!("EVENTS_{name}"),
        Subjects::new(prefix).expect("valid prefix"),
    );
    config.group_commit = group_commit;
    JetStreamStore::open(client, config)
        .await
        .expect("open store")
}

fn unique() -> String {
    Uuid::now_v7().simple().to_string()[20..].to_uppercase()
}

#[tokio::test]
async fn the_jetstream_store_passes_the_conformance_suite() {
    let server = NatsServer::start();
    let url = server.url();
    conformance::run_all(|| {
        let url = url.clone();
        async move { open(&url, &unique()).await }
    })
    .await;
}

#[tokio::test]
async fn the_jetstream_store_with_group_commit_passes_the_conformance_suite() {
    let server = NatsServer::start();
    let url = server.url();
    let group = GroupCommit {
        min_batch: 2,
        ..GroupCommit::default()
    };
    conformance::run_all(|| {
        let url = url.clone();
        async move { open_with(&url, &unique(), Some(group)).await }
    })
    .await;
}

#[tokio::test]
async fn concurrent_appends_are_written_in_atomic_batches() {
    let server = NatsServer::start();
    let group = GroupCommit {
        min_batch: 2,
        ..GroupCommit::default()
    };
    let store = open_with(&server.url(), &unique(), Some(group)).await;
    assert_eq!(
        store.group_commit_stats(),
        Some(Default::default()),
        "nats-server 2.15 has atomic batches"
    );
    let fresh: Vec<_> = (0..64)
        .map(|_| conformance::sample_commit(conformance::new_loan(), 0, 1))
        .collect();
    let results =
        futures::future::join_all(fresh.iter().map(|commit| store.append(commit, 0))).await;
    for (commit, result) in fresh.iter().zip(results) {
        let Ok(loan_store::Appended::Stored { position, .. }) = result else {
            panic!("fresh commit not stored: {result:?}");
        };
        let at = store
            .commit_at(position)
            .await
            .expect("read")
            .expect("there");
        assert_eq!(&at.commit, commit, "position {position} holds its commit");
    }
    let first = store.group_commit_stats().expect("group commit on");
    assert!(
        first.batches >= 1 && first.batched_commits >= 2 && first.refused_batches == 0,
        "concurrent appends went out in batches: {first:?}"
    );

    conformance::concurrent_appends_land_where_acknowledged(&store).await;
    let after = store.group_commit_stats().expect("group commit on");
    assert!(
        after.refused_batches >= 1,
        "the batch holding the stale append and the retry was refused as a whole and \
         its commits published one by one: {after:?}"
    );
}

#[tokio::test]
async fn the_stream_is_append_only_and_configured_as_documented() {
    let server = NatsServer::start();
    let name = unique();
    let store = open(&server.url(), &name).await;
    let loan = conformance::new_loan();
    store
        .append(&conformance::sample_commit(loan, 0, 1), 0)
        .await
        .expect("append");
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(format!("EVENTS_{name}"))
        .await
        .expect("stream exists");
    let config = stream.info().await.expect("info").config.clone();
    assert!(
        config.deny_delete && config.deny_purge && !config.allow_rollup,
        "append-only: {config:?}"
    );
    assert!(config.allow_direct, "direct get allowed");
    assert_eq!(
        config.storage,
        async_nats::jetstream::stream::StorageType::File
    );
    assert!(
        stream.delete_message(1).await.is_err(),
        "deleting an event is refused"
    );
    assert!(stream.purge().await.is_err(), "purging the log is refused");
    assert_eq!(
        store.load(loan).await.expect("load").commits.len(),
        1,
        "the event is still there"
    );
}

#[tokio::test]
async fn acknowledged_commits_survive_a_server_crash() {
    let mut server = NatsServer::start();
    let name = unique();
    let loan = conformance::new_loan();
    let before: History = {
        let store = open(&server.url(), &name).await;
        let mut last = 0;
        for version in 0..20 {
            let commit = conformance::sample_commit(loan, version, 1);
            last = match store.append(&commit, last).await.expect("append") {
                loan_store::Appended::Stored { position, .. } => position,
                other => panic!("unexpected {other:?}"),
            };
        }
        store.load(loan).await.expect("load")
    };
    // SIGKILL right after the acks: with sync_interval always every acked commit is on disk.
    server.crash_and_restart();
    let store = open(&server.url(), &name).await;
    let after = store.load(loan).await.expect("load after restart");
    assert_eq!(after, before, "every acknowledged commit survived kill -9");
}

#[tokio::test]
async fn the_in_memory_store_passes_the_same_conformance_suite() {
    conformance::run_all(|| async { loan_store::memory::MemoryStore::new() }).await;
}
