//! Every commit the engine writes links to its aggregate's previous commit, so changing,
//! reordering or dropping a commit of the history is detected, and names its position.

use std::sync::Arc;

use loan_domain::CommandKind;
use loan_engine::vault::{MasterKey, Vault};
use loan_engine::{Engine, EngineConfig};
use loan_store::chain::{BrokenLink, ChainVerifier, compare};
use loan_store::keys::MemoryKeyStore;
use loan_store::memory::MemoryStore;
use loan_store::{Commit, GENESIS_HASH};
use serde_json::json;
use uuid::Uuid;

use crate::support::{Driver, disburse, ok, onboard, signed_loan};

/// A short real history: a customer, two loans, a disbursement and two repayments.
async fn history() -> Vec<Vec<u8>> {
    let store = MemoryStore::new();
    let vault = Vault::new(&MasterKey::generate(), Arc::new(MemoryKeyStore::new()));
    let d = Driver::new(
        Engine::new(store.clone(), vault, EngineConfig::default()),
        "2026-01-05",
    );
    let customer_id = Uuid::now_v7();
    onboard(&d, customer_id, Uuid::now_v7()).await;
    let first = signed_loan(&d, customer_id).await;
    let _second = signed_loan(&d, customer_id).await;
    ok(disburse(&d, first).await);
    for reference in ["PAY-1", "PAY-2"] {
        ok(d.send(
            CommandKind::RecordRepayment,
            &["finance"],
            json!({ "loan_id": first, "payment_reference": reference, "amount": "500.00", "value_date": "2026-01-05" }),
        )
        .await);
    }
    store.raw()
}

fn verify(log: &[(u64, Vec<u8>)]) -> Result<loan_store::chain::ChainSummary, BrokenLink> {
    let mut verifier = ChainVerifier::new();
    for (position, bytes) in log {
        verifier.push(*position, bytes)?;
    }
    Ok(verifier.finish())
}

fn positioned(raw: Vec<Vec<u8>>) -> Vec<(u64, Vec<u8>)> {
    (1..).zip(raw).collect()
}

/// Index of the second commit of the aggregate of the commit at `index`.
fn next_of_same_aggregate(log: &[(u64, Vec<u8>)], index: usize) -> usize {
    let aggregate = Commit::from_bytes(&log[index].1).expect("commit").aggregate;
    log.iter()
        .enumerate()
        .skip(index + 1)
        .find(|(_, (_, bytes))| Commit::from_bytes(bytes).expect("commit").aggregate == aggregate)
        .map(|(i, _)| i)
        .expect("the aggregate has a later commit")
}

#[tokio::test]
async fn the_engine_writes_an_intact_hash_chain() {
    let log = positioned(history().await);
    let summary = verify(&log).expect("an untouched history verifies");
    assert_eq!(summary.commits, log.len() as u64);
    assert_eq!(summary.heads.len(), 3, "one customer and two loans");
    let first = Commit::from_bytes(&log[0].1).expect("commit");
    assert_eq!(
        first.previous_hash, GENESIS_HASH,
        "an aggregate's chain starts at genesis"
    );
    let second = Commit::from_bytes(&log[1].1).expect("commit");
    assert_eq!(
        second.previous_hash,
        loan_store::chain_hash(&log[0].1),
        "the customer's second commit links to its first"
    );
}

#[tokio::test]
async fn a_changed_commit_breaks_the_chain_at_the_next_commit_of_its_aggregate() {
    let mut log = positioned(history().await);
    // Change the payout reference inside the disbursement commit as stored.
    let target = log
        .iter()
        .position(|(_, b)| String::from_utf8_lossy(b).contains("\"loan_disbursed\""))
        .expect("a disbursement");
    let tampered = String::from_utf8(log[target].1.clone())
        .expect("utf-8")
        .replacen("PO-", "PX-", 1);
    log[target].1 = tampered.into_bytes();
    let next = next_of_same_aggregate(&log, target);
    match verify(&log) {
        Err(BrokenLink::WrongPrevious { position, .. }) => {
            assert_eq!(position, log[next].0, "the first broken link is named")
        }
        other => panic!("a changed commit must break the chain, got {other:?}"),
    }
}

#[tokio::test]
async fn reordered_commits_break_the_chain() {
    let mut log = positioned(history().await);
    // Swap the bytes of two commits of the same loan, keeping positions in order.
    let a = log
        .iter()
        .position(|(_, b)| String::from_utf8_lossy(b).contains("PAY-1"))
        .expect("first repayment");
    let b = next_of_same_aggregate(&log, a);
    let (bytes_a, bytes_b) = (log[a].1.clone(), log[b].1.clone());
    log[a].1 = bytes_b;
    log[b].1 = bytes_a;
    let error = verify(&log).expect_err("a reordered history must not verify");
    assert_eq!(error.position(), Some(log[a].0), "{error}");
}

#[tokio::test]
async fn a_dropped_commit_is_detected_in_the_middle_and_at_the_end() {
    let log = positioned(history().await);
    let expected = verify(&log).expect("untouched");

    // In the middle of an aggregate's chain: the next commit no longer links.
    let mut middle = log.clone();
    let dropped = middle
        .iter()
        .position(|(_, b)| String::from_utf8_lossy(b).contains("PAY-1"))
        .expect("first repayment");
    middle.remove(dropped);
    assert!(
        matches!(verify(&middle), Err(BrokenLink::WrongPrevious { .. })),
        "a commit dropped inside a chain is detected"
    );

    // The last commit of the log: every chain still links, but the summary (an export's
    // manifest, a checkpoint) no longer matches.
    let mut end = log.clone();
    end.pop();
    let found = verify(&end).expect("the remaining chains link");
    let error = compare(&expected, &found).expect_err("a dropped last commit is detected");
    assert!(error.to_string().contains("number of commits"), "{error}");
}
