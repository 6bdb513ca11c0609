//! The embedded projector stopped after a few batches, or killed at arbitrary points
//! (its task aborted mid-batch), and started again on the same SQLite file ends with
//! exactly the rows of an uninterrupted run: no lost and no doubled effect.

use std::time::Duration;

use loan_projection::Group;

use crate::harness::{LocalWorld, SqliteFile, script, sqlite_checkpoint, sqlite_snapshot};

#[tokio::test]
async fn the_embedded_projector_killed_and_resumed_equals_an_uninterrupted_run() {
    let world = LocalWorld::new();
    script(&world).await;
    let head = world.head();

    let reference_file = SqliteFile::new("reference");
    let mut reference = world.projector(reference_file.path(), 500).await;
    assert_eq!(reference.catch_up().await.expect("catch up"), head);
    let expected = sqlite_snapshot(reference.pool()).await;
    assert!(
        expected.values().map(Vec::len).sum::<usize>() > 40,
        "the portfolio has rows"
    );

    // Stopped after a few batches of 3, then resumed by a new projector.
    let stopped_file = SqliteFile::new("stopped");
    let mut projector = world.projector(stopped_file.path(), 3).await;
    for _ in 0..4 {
        projector.step().await.expect("a batch");
    }
    let pool = projector.pool().clone();
    for group in Group::ALL {
        assert_eq!(
            sqlite_checkpoint(&pool, group.name()).await,
            12,
            "{group}: four batches of three"
        );
    }
    assert_ne!(sqlite_snapshot(&pool).await, expected, "not done yet");
    drop(projector);
    let mut resumed = world.projector(stopped_file.path(), 3).await;
    assert_eq!(resumed.catch_up().await.expect("resume"), head);
    assert_eq!(sqlite_snapshot(resumed.pool()).await, expected);
    // Caught up, a further catch-up changes nothing.
    assert_eq!(resumed.catch_up().await.expect("again"), head);
    assert_eq!(sqlite_snapshot(resumed.pool()).await, expected);

    // Killed at arbitrary points: the task aborted after varying delays, wherever it is
    // (reading, decoding, inside the transaction), then a fresh projector started.
    let killed_file = SqliteFile::new("killed");
    let mut kills = 0;
    let mut round: u64 = 0;
    loop {
        let projector = world.projector(killed_file.path(), 2).await;
        let pool = projector.pool().clone();
        let mut done = true;
        for group in Group::ALL {
            done &= sqlite_checkpoint(&pool, group.name()).await == head;
        }
        if done {
            break;
        }
        round += 1;
        assert!(round < 500, "the projection makes progress");
        let task = tokio::spawn(async move {
            let mut projector = projector;
            projector.catch_up().await
        });
        tokio::time::sleep(Duration::from_micros(300 + (round * 997) % 4000)).await;
        if !task.is_finished() {
            kills += 1;
        }
        task.abort();
        let _ = task.await;
        pool.close().await;
    }
    assert!(kills >= 3, "the projector was killed {kills} times");
    let mut last = world.projector(killed_file.path(), 2).await;
    assert_eq!(last.catch_up().await.expect("catch up"), head);
    assert_eq!(sqlite_snapshot(last.pool()).await, expected);
}
