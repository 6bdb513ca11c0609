//! A collection case's events show in its history (who opened it, who worked it, when),
//! in the history of its loan's customer, and in that customer's export; the loan's own
//! history stays the loan's.

use loan_audit::export::Selection;
use loan_audit::history::{Disclosure, Subject, history};
use loan_domain::{AggregateType, CommandKind};
use loan_store::AggregateRef;
use serde_json::json;
use uuid::Uuid;

use crate::support::{World, entries, export_to, script};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_events_show_in_the_case_and_customer_histories_and_exports() {
    let w = World::new().await;
    let s = script(&w).await;
    // L2's only payment bounced (recorded 20 March): 44 days past due on 26 March.
    let case_id = Uuid::now_v7();
    w.send(
        "2026-03-26",
        CommandKind::OpenCollectionCase,
        &["system"],
        json!({
        "case_id": case_id, "loan_id": s.l2, "team": "collections", "reason": "44 days past due" }),
    )
    .await;
    w.send("2026-03-26", CommandKind::RecordContactAttempt, &["collector"], json!({
        "case_id": case_id, "channel": "visit", "outcome": "reached", "attempted_on": "2026-03-26" })).await;
    w.send(
        "2026-03-27",
        CommandKind::RecordPromiseToPay,
        &["collector"],
        json!({
        "case_id": case_id, "amount": "1060.00", "pay_by": "2026-04-03" }),
    )
    .await;

    let case = Subject::Aggregate(AggregateRef {
        aggregate_type: AggregateType::CollectionCase,
        id: case_id,
    });
    let mut reader = w.log().read_all().await.expect("read");
    let rows = history(&mut reader, case, Disclosure::Masked)
        .await
        .expect("history");
    let seen: Vec<(&str, &str, &str, String)> = rows
        .iter()
        .map(|r| {
            (
                r.event_type.as_str(),
                r.actor.as_str(),
                r.command.as_str(),
                r.business_date.map(|d| d.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "collection_case_opened",
                "staff-system",
                "open_collection_case",
                "2026-03-26".to_owned()
            ),
            (
                "contact_attempted",
                "staff-collector",
                "record_contact_attempt",
                "2026-03-26".to_owned()
            ),
            (
                "promise_to_pay_recorded",
                "staff-collector",
                "record_promise_to_pay",
                "2026-03-27".to_owned()
            ),
        ]
    );
    assert_eq!(rows[0].aggregate, format!("collection_case/{case_id}"));
    assert_eq!(rows[0].data["loan_id"], s.l2.to_string());
    assert_eq!(rows[0].data["days_past_due"], 44);
    assert_eq!(rows[2].data["amount"], "1060.00");

    // The customer's history holds the case of their loan; the other customer's does not.
    let case_events = |rows: &[loan_audit::history::HistoryRow]| {
        rows.iter()
            .filter(|r| r.aggregate.starts_with("collection_case/"))
            .count()
    };
    let mut reader = w.log().read_all().await.expect("read");
    let c2 = history(
        &mut reader,
        Subject::CustomerWithLoans(s.c2),
        Disclosure::Masked,
    )
    .await
    .expect("history");
    assert_eq!(case_events(&c2), 3);
    let mut reader = w.log().read_all().await.expect("read");
    let c1 = history(
        &mut reader,
        Subject::CustomerWithLoans(s.c1),
        Disclosure::Masked,
    )
    .await
    .expect("history");
    assert_eq!(case_events(&c1), 0);

    // So does the customer's export.
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, manifest) = export_to(
        &w,
        &Selection::Customer { customer_id: s.c2 },
        dir.path(),
        "c2",
    )
    .await;
    let exported: Vec<_> = entries(&path)
        .iter()
        .map(|entry| entry.commit().expect("a commit").aggregate)
        .filter(|aggregate| aggregate.aggregate_type == AggregateType::CollectionCase)
        .collect();
    assert_eq!(exported.len(), 3, "the case's three commits");
    assert!(exported.iter().all(|a| a.id == case_id));
    assert_eq!(
        manifest.selection,
        Selection::Customer { customer_id: s.c2 }
    );
}
