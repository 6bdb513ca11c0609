//! An export of the whole log, of a range of positions, of a recording-time range and of
//! one customer verifies intact against its manifest, and the manifest describes exactly
//! what was exported (counts, positions, chain heads, anchors of partial exports).

use loan_audit::export::Selection;
use loan_audit::log::LogReader;
use loan_audit::verify::{verify_chains, verify_export};
use loan_domain::AggregateType;
use loan_store::AggregateRef;

use crate::support::{World, entries, export_to, morning, script};

fn loan(id: uuid::Uuid) -> String {
    AggregateRef {
        aggregate_type: AggregateType::Loan,
        id,
    }
    .to_string()
}

fn customer(id: uuid::Uuid) -> String {
    AggregateRef {
        aggregate_type: AggregateType::Customer,
        id,
    }
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_of_every_selection_verify_intact() {
    let w = World::new().await;
    let s = script(&w).await;
    let head = w.head().await;
    let dir = tempfile::tempdir().expect("temp dir");

    // The whole log.
    let (file, manifest) = export_to(&w, &Selection::All, dir.path(), "all").await;
    let exported = entries(&file);
    assert_eq!(exported.len() as u64, head);
    assert_eq!(manifest.summary.commits, head);
    assert_eq!(manifest.summary.first_position, Some(1));
    assert_eq!(manifest.summary.last_position, Some(head));
    assert_eq!(manifest.stream_head, head);
    let events: u64 = exported
        .iter()
        .map(|e| e.commit().expect("commit").events.len() as u64)
        .sum();
    assert_eq!(manifest.summary.events, events);
    let mut heads: Vec<&String> = manifest.summary.heads.keys().collect();
    heads.sort();
    let mut expected = [customer(s.c1), customer(s.c2), loan(s.l1), loan(s.l2)];
    expected.sort();
    assert_eq!(heads, expected.iter().collect::<Vec<_>>());
    assert!(manifest.anchors.is_empty(), "a full export needs no anchor");
    // Each line is the commit exactly as stored: the manifest's head of L1 is the chain
    // hash of the stored bytes of its last commit.
    let l1_last = exported
        .iter()
        .rev()
        .find(|e| e.commit().expect("commit").aggregate.id == s.l1)
        .expect("L1 commits");
    assert_eq!(
        manifest.summary.heads[&loan(s.l1)].hash,
        loan_store::chain_hash(&l1_last.bytes)
    );
    let verification = verify_export(&file, &manifest).await.expect("verify");
    assert!(verification.intact, "{:?}", verification.first_broken_link);
    assert_eq!(verification.summary, manifest.summary);

    // The live stream verifies to the same log hash.
    let mut live = w.log().read_all().await.expect("read");
    let verification = verify_chains(&mut live, [], None)
        .await
        .expect("verify live");
    assert!(verification.intact);
    assert_eq!(verification.summary.log_hash, manifest.summary.log_hash);

    // A range of positions: the chains of L1, L2 and C2 started before it, so they are
    // anchored at the previous_hash of their first exported commit.
    let from = s.published_position + 1;
    let (file, manifest) = export_to(
        &w,
        &Selection::Positions { from, to: None },
        dir.path(),
        "range",
    )
    .await;
    assert_eq!(manifest.summary.commits, head - s.published_position);
    assert_eq!(manifest.summary.first_position, Some(from));
    let mut anchored: Vec<&String> = manifest.anchors.keys().collect();
    anchored.sort();
    let mut expected = [customer(s.c2), loan(s.l1), loan(s.l2)];
    expected.sort();
    assert_eq!(anchored, expected.iter().collect::<Vec<_>>());
    let first_l1 = entries(&file)
        .into_iter()
        .find(|e| e.commit().expect("commit").aggregate.id == s.l1)
        .expect("an L1 commit in the range")
        .commit()
        .expect("commit");
    assert_eq!(manifest.anchors[&loan(s.l1)].hash, first_l1.previous_hash);
    assert_eq!(manifest.anchors[&loan(s.l1)].version, first_l1.base_version);
    let verification = verify_export(&file, &manifest).await.expect("verify");
    assert!(verification.intact, "{:?}", verification.first_broken_link);

    // A recording-time range: what was recorded in March (the backdated repayment, the
    // reversal and the erasure), up to but not including 21 March.
    let (file, manifest) = export_to(
        &w,
        &Selection::Recorded {
            from: Some(morning("2026-03-01")),
            to: Some(morning("2026-03-21")),
        },
        dir.path(),
        "march",
    )
    .await;
    let march: Vec<_> = entries(&file)
        .iter()
        .map(|e| e.commit().expect("commit").command.to_string())
        .collect();
    assert_eq!(march, ["record_repayment", "reverse_repayment"]);
    assert!(
        verify_export(&file, &manifest)
            .await
            .expect("verify")
            .intact
    );

    // One customer with all their loans: C2 and L2, from their first commits.
    let (file, manifest) = export_to(
        &w,
        &Selection::Customer { customer_id: s.c2 },
        dir.path(),
        "c2",
    )
    .await;
    let aggregates: std::collections::BTreeSet<uuid::Uuid> = entries(&file)
        .iter()
        .map(|e| e.commit().expect("commit").aggregate.id)
        .collect();
    assert_eq!(aggregates, [s.c2, s.l2].into_iter().collect());
    assert!(manifest.anchors.is_empty());
    assert!(
        verify_export(&file, &manifest)
            .await
            .expect("verify")
            .intact
    );

    // An export file reads back through the same reader as the live stream.
    let mut reader = LogReader::open_export(&dir.path().join("all.jsonl")).expect("open");
    let mut count = 0;
    while reader.next().await.expect("read").is_some() {
        count += 1;
    }
    assert_eq!(count, head);
}
