//! The collection-case list shows each team its cases — open by default, oldest opening
//! first — with the customer's masked (or erased) phone, contact attempts and the latest
//! promise to pay; the same rows over PostgreSQL and SQLite, and over HTTP.

use axum::body::Body;
use axum::http::Request;
use loan_query_api::ReadModelsRef;
use loan_query_api::reports::PageRequest;
use loan_query_api::reports::collection_cases::{CaseStatus, collection_cases};
use rust_decimal_macros::dec;
use tower::ServiceExt;
use uuid::Uuid;

use crate::embedded_reports_match_postgresql::both_databases;
use crate::support::date;

/// A case as the portfolio projection writes it.
struct Case {
    id: Uuid,
    loan: Uuid,
    customer: Uuid,
    team: &'static str,
    opened_on: &'static str,
    /// (contact attempts, last contact date, channel, outcome)
    contact: Option<(i32, &'static str, &'static str, &'static str)>,
    /// (promises, latest amount, pay by)
    promise: Option<(i32, &'static str, &'static str)>,
    /// (resolution, resolved on)
    resolved: Option<(&'static str, &'static str)>,
}

impl Case {
    fn insert_sql(&self, sqlite: bool) -> String {
        let table = if sqlite {
            "collection_cases"
        } else {
            "read_model.collection_cases"
        };
        let quoted = |text: &str| format!("'{text}'");
        let null = || "NULL".to_string();
        let (attempts, last_on, channel, outcome) = match self.contact {
            Some((n, on, channel, outcome)) => (n, quoted(on), quoted(channel), quoted(outcome)),
            None => (0, null(), null(), null()),
        };
        let (promises, promised, pay_by) = match self.promise {
            Some((n, amount, by)) => (n, quoted(amount), quoted(by)),
            None => (0, null(), null()),
        };
        let (status, resolution, resolved_on) = match self.resolved {
            Some((resolution, on)) => ("resolved", quoted(resolution), quoted(on)),
            None => ("open", null(), null()),
        };
        format!(
            "INSERT INTO {table} (case_id, loan_id, customer_id, team, status, currency, opened_on,
                days_past_due_at_opening, overdue_amount_at_opening, reason, contact_attempts,
                last_contact_on, last_contact_channel, last_contact_outcome, promises,
                promised_amount, promised_pay_by, resolution, resolved_on, version, last_position)
             VALUES ('{}', '{}', '{}', '{}', '{status}', 'CNY', '{}', 2, '1010.00',
                'installment 1 is 2 days past due', {attempts}, {last_on}, {channel}, {outcome},
                {promises}, {promised}, {pay_by}, {resolution}, {resolved_on}, 3, 99)",
            self.id, self.loan, self.customer, self.team, self.opened_on
        )
    }
}

#[tokio::test]
async fn each_team_sees_its_open_cases_oldest_first_with_masked_contact() {
    let db = both_databases().await;
    let rows = &db.rows;
    let (first, second, third, resolved) = (
        Uuid::from_u128(0xc4),
        Uuid::from_u128(0xc1),
        Uuid::from_u128(0xc3),
        Uuid::from_u128(0xc2),
    );
    let cases = [
        Case {
            id: second,
            loan: rows.partial,
            customer: rows.bo,
            team: "collections",
            opened_on: "2025-06-07",
            contact: Some((2, "2025-06-09", "phone", "reached")),
            promise: Some((2, "610.00", "2025-07-05")),
            resolved: None,
        },
        Case {
            id: resolved,
            loan: rows.backdated,
            customer: rows.ana,
            team: "collections",
            opened_on: "2025-06-07",
            contact: None,
            promise: None,
            resolved: Some(("cured", "2025-06-20")),
        },
        Case {
            id: third,
            loan: rows.dpd[0].1,
            customer: rows.ana,
            team: "collections-north",
            opened_on: "2025-06-07",
            contact: None,
            promise: None,
            resolved: None,
        },
        Case {
            id: first,
            loan: rows.reversed,
            customer: rows.cy,
            team: "collections",
            opened_on: "2025-05-17",
            contact: Some((1, "2025-05-20", "sms", "no_answer")),
            promise: None,
            resolved: None,
        },
    ];
    for case in &cases {
        sqlx::raw_sql(&case.insert_sql(false))
            .execute(&db.postgres.pool)
            .await
            .unwrap();
        sqlx::raw_sql(&case.insert_sql(true))
            .execute(&db.sqlite.pool)
            .await
            .unwrap();
    }
    let all = PageRequest::all();
    let mut answers = Vec::new();
    for read_models in [
        ReadModelsRef::Postgres(&db.postgres.pool),
        ReadModelsRef::Sqlite(&db.sqlite.pool),
    ] {
        let open = collection_cases(read_models, CaseStatus::Open, None, all)
            .await
            .unwrap()
            .items;
        // Oldest opening first; on the same day, by case id.
        let ids: Vec<Uuid> = open.iter().map(|case| case.case_id).collect();
        assert_eq!(ids, vec![first, second, third]);
        // The erased customer's contact is never shown.
        assert_eq!(open[0].phone_masked, "erased");
        assert_eq!(open[0].customer_name, "erased");
        assert_eq!(open[0].last_contact_channel.as_deref(), Some("sms"));
        assert_eq!(open[1].phone_masked, "138****0001");
        assert_eq!(open[1].promises, 2);
        assert_eq!(open[1].promised_amount, Some(dec!(610.00)));
        assert_eq!(open[1].promised_pay_by, Some(date("2025-07-05")));
        assert_eq!(open[1].overdue_amount_at_opening, dec!(1010.00));
        assert_eq!(open[2].contact_attempts, 0);
        assert_eq!(open[2].promised_amount, None);

        let team = collection_cases(read_models, CaseStatus::Open, Some("collections"), all)
            .await
            .unwrap()
            .items;
        assert_eq!(
            team.iter().map(|case| case.case_id).collect::<Vec<_>>(),
            vec![first, second]
        );
        let done = collection_cases(read_models, CaseStatus::Resolved, None, all)
            .await
            .unwrap()
            .items;
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].case_id, resolved);
        assert_eq!(done[0].resolution.as_deref(), Some("cured"));
        assert_eq!(done[0].resolved_on, Some(date("2025-06-20")));
        let every = collection_cases(read_models, CaseStatus::All, None, all)
            .await
            .unwrap();
        assert_eq!(every.items.len(), 4);
        let nobody = collection_cases(read_models, CaseStatus::All, Some("legal"), all)
            .await
            .unwrap();
        assert!(nobody.items.is_empty());
        // Pages: two at a time, the second page holds the rest.
        let page = collection_cases(
            read_models,
            CaseStatus::All,
            None,
            PageRequest::new(2, 2).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(page.items, every.items[2..].to_vec());
        answers.push((open, every.items));
    }
    assert_eq!(answers[0], answers[1], "PostgreSQL and SQLite agree");

    // Over HTTP: CSV with a header row, and a clear problem for a bad status.
    let router = loan_query_api::router(db.sqlite.pool.clone());
    let get = |uri: &str| {
        router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
    };
    let response = get("/collection-cases?team=collections&format=csv")
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let csv = String::from_utf8(body.to_vec()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("case_id,loan_id,customer_id,customer_name,phone_masked,team"));
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[2].contains("610.00"), "{csv}");
    let response = get("/collection-cases?status=closed").await.unwrap();
    assert_eq!(response.status(), 400);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["parameter"], "status", "{problem}");
}
