//! Checkpoints of the log (`<prefix>.checkpoints`, in the same stream) are never
//! delivered to a projector, never quarantined, and do not hold a projection behind: a
//! stream that ends with a checkpoint is caught up once its last commit is applied, and
//! the projection reports no lag.

use loan_contract::Subjects;
use loan_projection::{Group, GroupProjector};
use loan_store::checkpoint::{CheckpointLog, CheckpointOutcome};
use loan_store::jetstream::{JetStreamStore, StoreConfig};
use loan_testkit::postgres::TestDatabase;

use crate::harness::{World, pool, script, snapshot};

#[tokio::test]
async fn a_stream_ending_with_a_checkpoint_projects_fully_with_no_lag() {
    let world = World::new().await;
    let store = JetStreamStore::open(
        world.client.clone(),
        StoreConfig::new(
            world.stream.clone(),
            Subjects::new(world.prefix.clone()).expect("prefix"),
        ),
    )
    .await
    .expect("open the store");
    script(&world).await;
    let CheckpointOutcome::Written(checkpoint) = store
        .write_checkpoint(chrono::Utc::now())
        .await
        .expect("checkpoint")
    else {
        panic!("the scripted portfolio has commits to cover");
    };
    let last_commit = store.last_commit_position().await.expect("last commit");
    assert_eq!(checkpoint.checkpoint.covers, last_commit);
    assert_eq!(
        world.head().await,
        checkpoint.position,
        "the stream ends with the checkpoint"
    );

    let database = TestDatabase::create().await;
    let config = world.config(&database, "with-checkpoints", 4);
    for group in Group::ALL {
        let mut projector = GroupProjector::open(config.clone(), group)
            .await
            .expect("open projector");
        assert_eq!(
            projector.catch_up().await.expect("catch up"),
            last_commit,
            "{group} is caught up at the last commit"
        );
    }
    let db = pool(&database).await;
    let health = loan_projection::lag(&db, &world.client, &world.stream)
        .await
        .expect("lag");
    assert_eq!(health.len(), Group::ALL.len());
    for projection in &health {
        assert_eq!(projection.stream_head, last_commit, "{projection:?}");
        assert_eq!(projection.lag, 0, "{projection:?}");
        assert_eq!(projection.quarantined, 0, "{projection:?}");
        assert_eq!(projection.dead_letters, 0, "{projection:?}");
        assert!(projection.healthy, "{projection:?}");
    }

    // Every commit before the checkpoint was applied.
    let rows = snapshot(&db).await;
    assert!(
        rows.values().map(Vec::len).sum::<usize>() > 40,
        "the portfolio has rows"
    );
}
