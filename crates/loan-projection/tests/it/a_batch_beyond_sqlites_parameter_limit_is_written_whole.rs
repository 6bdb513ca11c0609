//! A batch whose rows need more bound parameters than one SQLite statement takes
//! (32,766) is written in several multi-row statements inside its one transaction, with
//! the same rows as small batches give.

use crate::harness::{LocalWorld, SqliteFile, script, sqlite_snapshot};

#[tokio::test]
async fn a_batch_beyond_sqlites_parameter_limit_is_written_whole() {
    let world = LocalWorld::new();
    for _ in 0..200 {
        script(&world).await;
    }
    let head = world.head();

    let whole_file = SqliteFile::new("whole");
    let mut whole = world.projector(whole_file.path(), 100_000).await;
    let outcomes = whole.step().await.expect("one batch");
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| o.fetched as u64 == head && o.checkpoint == head),
        "the whole log in one batch per group: {outcomes:?}"
    );
    let timeline: i64 = sqlx::query_scalar("SELECT count(*) FROM loan_timeline")
        .fetch_one(whole.pool())
        .await
        .expect("timeline");
    // 9 parameters per timeline row: more rows than one statement can carry.
    assert!(timeline * 9 > 32_766, "{timeline} timeline rows");

    let small_file = SqliteFile::new("small");
    let mut small = world.projector(small_file.path(), 7).await;
    assert_eq!(small.catch_up().await.expect("catch up"), head);
    assert_eq!(
        sqlite_snapshot(whole.pool()).await,
        sqlite_snapshot(small.pool()).await
    );
}
