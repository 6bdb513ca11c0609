//! The demo book goes through the real engine: every command accepted, every kind of
//! story present, and the same seed gives the same book.

#![allow(unused_crate_dependencies)]

use chrono::NaiveDate;
use loan_demo::{DemoConfig, Summary};
use loan_engine::{Engine, EngineConfig, MasterKey, Vault};
use loan_store::EventStore as _;
use loan_store::memory::MemoryStore;

async fn play(seed: u64) -> (Summary, Vec<(String, u64)>) {
    let store = MemoryStore::new();
    let engine = Engine::new(
        store.clone(),
        Vault::in_memory(&MasterKey::generate()),
        EngineConfig::default(),
    );
    let config = DemoConfig {
        seed,
        customers: 300,
        start: NaiveDate::from_ymd_opt(2025, 1, 2).unwrap(),
        months: 16,
        concurrency: 8,
    };
    let summary = loan_demo::run(&config, &engine, &|_, _, _| {})
        .await
        .unwrap_or_else(|error| panic!("the demo book must go through: {error}"));
    // Every aggregate's final version, in a stable order.
    let mut versions = std::collections::BTreeMap::new();
    let mut after = 0;
    loop {
        let batch = store.read_after(after, 1000).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        for recorded in &batch {
            versions.insert(
                recorded.commit.aggregate.to_string(),
                recorded.commit.version,
            );
        }
    }
    (summary, versions.into_iter().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_story_happens_and_the_seed_repeats_the_book() {
    let (summary, versions) = play(11).await;
    println!("{summary:#?}");
    assert_eq!(summary.customers, 300);
    assert_eq!(summary.applications, 300);
    for (what, count) in [
        ("approved automatically", summary.approved_automatically),
        ("referred", summary.referred),
        ("approved manually", summary.approved_manually),
        ("rejected", summary.rejected),
        ("withdrawn", summary.withdrawn),
        ("disbursed", summary.disbursed_loans),
        ("late payments", summary.late_payments),
        ("partial payments", summary.partial_payments),
        ("backdated payments", summary.backdated_payments),
        ("reversed payments", summary.reversed_payments),
        ("cured", summary.cured),
        ("paid off", summary.paid_off),
        ("written off", summary.written_off),
        ("evaluations", summary.evaluations),
    ] {
        assert!(count > 0, "the book has no {what}: {summary:#?}");
    }
    assert!(
        summary.disbursed_loans <= summary.approved_automatically + summary.approved_manually,
        "only approved applications are disbursed"
    );
    assert!(
        summary.repaid.is_positive()
            && summary.repaid < summary.disbursed.saturating_add(summary.disbursed)
    );
    assert!(summary.showcase.is_some());

    let (again, versions_again) = play(11).await;
    assert_eq!(summary, again, "same seed, same book");
    assert_eq!(versions, versions_again, "same aggregates, same versions");
    let (other, _) = play(12).await;
    assert_ne!(summary, other, "another seed, another book");
}
