//! The JetStream store passes the conformance suite and keeps its durability promises.

use loan_contract::Subjects;
use loan_store::conformance;
use loan_store::jetstream::{JetStreamStore, StoreConfig};
use loan_store::{EventStore, History};
use loan_testkit::NatsServer;
use uuid::Uuid;

async fn open(url: &str, name: &str) -> JetStreamStore {
    let client = async_nats::connect(url)
        .await
        .expect("connect to the test nats-server");
    let prefix = format!("t{}", name.to_lowercase());
    JetStreamStore::open(
        client,
        StoreConfig::new(
            format!("EVENTS_{name}"),
            Subjects::new(prefix).expect("valid prefix"),
        ),
    )
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
                loan_store::Appended::Stored { position } => position,
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
