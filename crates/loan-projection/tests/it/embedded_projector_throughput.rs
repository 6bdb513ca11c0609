//! How fast the embedded projector fills the SQLite read models: the scripted portfolio
//! written many times through the real engine onto the in-memory log, then projected in
//! one catch-up. Prints figures; asserts only that everything was applied (a figure
//! depends on the machine, so it is never asserted). Run with
//! `cargo test -p loan-projection --release --test it embedded_projector_throughput -- --ignored --nocapture`.

use std::time::Instant;

use loan_projection::Group;

use crate::harness::{LocalWorld, SqliteFile, script, sqlite_checkpoint};

#[tokio::test]
#[ignore = "a measurement, not a check: run on a quiet machine with --ignored --nocapture"]
async fn embedded_projector_throughput() {
    let portfolios: usize = std::env::var("LOAN_BENCH_PORTFOLIOS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let world = LocalWorld::new();
    let written = Instant::now();
    for _ in 0..portfolios {
        script(&world).await;
    }
    let writing = written.elapsed();
    let commits = world.head();
    let events: usize = world
        .store
        .raw()
        .iter()
        .map(|bytes| {
            loan_store::Commit::from_bytes(bytes)
                .map(|c| c.events.len())
                .unwrap_or(0)
        })
        .sum();

    let file = SqliteFile::new("throughput");
    let mut projector = world.projector(file.path(), 500).await;
    let started = Instant::now();
    let reached = projector.catch_up().await.expect("catch up");
    let elapsed = started.elapsed();
    assert_eq!(reached, commits);
    for group in Group::ALL {
        assert_eq!(
            sqlite_checkpoint(projector.pool(), group.name()).await,
            commits
        );
    }
    let micros = elapsed.as_micros().max(1);
    let per_second = |n: u128| n * 1_000_000 / micros;
    println!(
        "embedded projector: {portfolios} scripted portfolios, {commits} commits, {events} events \
         (written by the engine in {:.2} s); both groups projected into SQLite in {:.2} s: \
         {} events/s, {} commits/s",
        writing.as_secs_f64(),
        elapsed.as_secs_f64(),
        per_second(events as u128),
        per_second(u128::from(commits)),
    );
}
