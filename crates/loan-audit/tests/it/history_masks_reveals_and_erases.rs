//! `history` shows who did what, when, by which command: sensitive values masked without
//! the key (`***`), masked as everywhere else with the key, in clear only when revealed
//! with the key, and `erased` for an erased customer whatever is asked. Automated
//! decisions show their rule-set version, inputs and reasons. A history read from an
//! export equals the one read from the live stream.

use loan_audit::export::Selection;
use loan_audit::history::{Disclosure, HistoryRow, MASKED, Subject, history};
use loan_audit::log::LogReader;
use loan_domain::AggregateType;
use loan_domain::pii::{NationalId, PhoneNumber};
use loan_store::AggregateRef;
use loan_testkit::synthetic::national_id;
use serde_json::Value;

use crate::support::{C1_ID_BODY, C1_PHONE, C2_ID_BODY, World, date, export_to, morning, script};

fn customer(id: uuid::Uuid) -> Subject {
    Subject::Aggregate(AggregateRef {
        aggregate_type: AggregateType::Customer,
        id,
    })
}

fn registration(rows: &[HistoryRow]) -> &HistoryRow {
    rows.iter()
        .find(|row| row.event_type == "customer_registered")
        .expect("a registration")
}

fn field<'r>(row: &'r HistoryRow, name: &str) -> &'r str {
    row.data
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{name} missing from {:?}", row.data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_values_are_masked_revealed_or_erased() {
    let w = World::new().await;
    let s = script(&w).await;
    let vault = w.log().vault(&w.master_key).await.expect("vault");
    // Without the key.
    let mut reader = w.log().read_all().await.expect("read");
    let masked = history(&mut reader, customer(s.c1), Disclosure::Masked)
        .await
        .expect("history");
    let row = registration(&masked);
    assert_eq!(field(row, "national_id"), MASKED);
    assert_eq!(field(row, "bank_card"), MASKED);
    assert_eq!(field(row, "phone"), MASKED);
    assert!(!row.data.contains_key("national_id_index"));
    assert!(!row.data.contains_key("phone_index"));
    assert_eq!(field(row, "name"), "Li Wei");
    assert_eq!(row.actor, "staff-customer_service");
    assert_eq!(row.roles, ["customer_service"]);
    assert_eq!(row.command, "register_customer");
    assert_eq!(row.recorded_at, morning("2026-01-05"));
    let json = serde_json::to_string(&masked).expect("json");
    assert!(!json.contains(&national_id(C1_ID_BODY)[..10]));
    assert!(!json.contains(C1_PHONE));

    // With the key, not revealed: masked as the domain masks.
    let mut reader = w.log().read_all().await.expect("read");
    let rows = history(
        &mut reader,
        customer(s.c1),
        Disclosure::MaskedWithKey(&vault),
    )
    .await
    .expect("history");
    let row = registration(&rows);
    let clear_id = national_id(C1_ID_BODY);
    assert_eq!(
        field(row, "national_id"),
        NationalId::parse(&clear_id).expect("valid").masked()
    );
    assert_eq!(
        field(row, "phone"),
        PhoneNumber::parse(C1_PHONE).expect("valid").masked()
    );
    assert!(
        !serde_json::to_string(&rows)
            .expect("json")
            .contains(&clear_id)
    );

    // With the key and revealed: in clear.
    let mut reader = w.log().read_all().await.expect("read");
    let rows = history(&mut reader, customer(s.c1), Disclosure::Revealed(&vault))
        .await
        .expect("history");
    assert_eq!(field(registration(&rows), "national_id"), clear_id);
    assert_eq!(field(registration(&rows), "phone"), C1_PHONE);

    // The erased customer reads "erased", with or without the key, even when revealed.
    for disclosure in [
        Disclosure::Masked,
        Disclosure::MaskedWithKey(&vault),
        Disclosure::Revealed(&vault),
    ] {
        let mut reader = w.log().read_all().await.expect("read");
        let rows = history(&mut reader, customer(s.c2), disclosure)
            .await
            .expect("history");
        let row = registration(&rows);
        for name in ["national_id", "bank_card", "phone"] {
            assert_eq!(field(row, name), "erased");
        }
        assert!(
            !serde_json::to_string(&rows)
                .expect("json")
                .contains(&national_id(C2_ID_BODY))
        );
        assert_eq!(
            rows.last().expect("rows").event_type,
            "customer_erased",
            "the erasure itself is in the history"
        );
    }

    // A customer with all their loans, in log order: the automated decision shows its
    // rule-set version, inputs and reasons; the backdated repayment its two dates.
    let mut reader = w.log().read_all().await.expect("read");
    let rows = history(
        &mut reader,
        Subject::CustomerWithLoans(s.c1),
        Disclosure::Masked,
    )
    .await
    .expect("history");
    assert!(rows.windows(2).all(|w| w[0].position <= w[1].position));
    assert!(rows.iter().any(|r| r.aggregate == format!("loan/{}", s.l1)));
    assert!(!rows.iter().any(|r| r.aggregate == format!("loan/{}", s.l2)));
    let decision = rows
        .iter()
        .find_map(|r| r.decision.as_ref())
        .expect("an automated decision");
    assert_eq!(decision.rule_set_version, "credit-policy/v1");
    assert_eq!(decision.outcome, "approve");
    assert_eq!(decision.inputs["credit_score"], 735);
    let reasons = decision.reasons.as_array().expect("reasons");
    assert!(
        reasons
            .iter()
            .any(|r| r["rule"] == "min_credit_score" && r["passed"] == true)
    );
    let repayment = rows
        .iter()
        .find(|r| r.event_type == "repayment_recorded")
        .expect("the backdated repayment");
    assert_eq!(repayment.business_date, Some(date("2026-02-09")));
    assert_eq!(repayment.recorded_at, morning("2026-03-05"));
    assert_eq!(repayment.roles, ["finance"]);
    assert_eq!(repayment.command, "record_repayment");

    // The same history from an export file.
    let dir = tempfile::tempdir().expect("temp dir");
    let (file, _) = export_to(&w, &Selection::All, dir.path(), "all").await;
    let mut reader = LogReader::open_export(&file).expect("open");
    let offline = history(
        &mut reader,
        Subject::CustomerWithLoans(s.c1),
        Disclosure::Masked,
    )
    .await
    .expect("history");
    assert_eq!(offline, rows);
}
