//! The HTTP API over the embedded SQLite read models answers every route exactly as over
//! PostgreSQL — status, content type, next-offset header and body, JSON and CSV, problem
//! details included — for the same rows (portfolio_rows).

use axum::body::Body;
use axum::http::{Request, header};
use tower::ServiceExt;

use crate::embedded_reports_match_postgresql::both_databases;

/// Status, content type, `X-Next-Offset` and body of one request.
async fn answer(
    router: &axum::Router,
    uri: &str,
    accept: Option<&str>,
) -> (u16, String, Option<String>, String) {
    let mut request = Request::get(uri);
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let header_text = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_string())
    };
    let content_type = header_text("content-type").unwrap_or_default();
    let next_offset = header_text("x-next-offset");
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        content_type,
        next_offset,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn every_route_answers_the_same_over_sqlite_and_postgresql() {
    let db = both_databases().await;
    let postgres = loan_query_api::router(db.postgres.pool.clone());
    let sqlite = loan_query_api::router(db.sqlite.pool.clone());
    let ana = db.rows.ana;
    let cy = db.rows.cy;
    let uris = [
        format!("/customers/{ana}?as_of=2025-06-30"),
        format!("/customers/{cy}?as_of=2025-05-31&format=csv"),
        "/segments?as_of=2025-06-30".to_string(),
        "/segments?as_of=2025-03-31&format=csv".to_string(),
        "/segments/customers?limit=10&offset=5".to_string(),
        "/segments/customers?format=csv".to_string(),
        "/segments/region/north/members".to_string(),
        "/segments/region/%C3%96stra/members?format=csv".to_string(),
        "/segments/loan_purpose/business/members?limit=2".to_string(),
        "/delinquency/loans?as_of=2025-06-30".to_string(),
        "/delinquency/loans?as_of=2025-06-30&limit=5&offset=10&format=csv".to_string(),
        "/delinquency/loans?as_of=2024-01-01&format=csv".to_string(),
        "/delinquency/buckets?as_of=2025-06-30&by=officer".to_string(),
        "/delinquency/buckets?as_of=2025-05-16&by=region&format=csv".to_string(),
        "/delinquency/par?as_of=2025-06-30&by=channel".to_string(),
        "/delinquency/par?as_of=2025-06-30&by=risk_grade&format=csv".to_string(),
        "/delinquency/par?as_of=2025-06-30&by=officer&limit=2".to_string(),
        "/delinquency/roll-rates?from=2025-03-31&to=2025-06-30".to_string(),
        "/delinquency/roll-rates?from=2025-05-31&to=2025-06-30&format=csv&limit=9".to_string(),
        "/delinquency/vintages?as_of=2025-06-30".to_string(),
        "/delinquency/vintages?as_of=2025-06-30&format=csv".to_string(),
        "/delinquency/snapshots/2025-06-30".to_string(),
        "/collection-queue?as_of=2025-06-30".to_string(),
        "/collection-queue?as_of=2025-06-30&format=csv&limit=3".to_string(),
        "/collection-cases".to_string(),
        "/collection-cases?status=all&team=collections&format=csv".to_string(),
        "/collection-cases?status=closed".to_string(),
        "/pipeline?by=month".to_string(),
        "/pipeline?by=officer&from=2024-11-01&to=2025-04-30&format=csv".to_string(),
        "/pipeline".to_string(),
        // Problems: the same on both.
        "/delinquency/par?as_of=2025-02-30".to_string(),
        "/delinquency/par?by=planet".to_string(),
        "/delinquency/roll-rates?from=2025-06-30&to=2025-03-31".to_string(),
        "/segments/planet/x/members".to_string(),
        "/collection-queue?limit=0".to_string(),
        format!("/customers/{}", uuid::Uuid::nil()),
        "/customers/not-a-uuid".to_string(),
        "/no/such/route".to_string(),
        "/health/live".to_string(),
    ];
    // A recorded snapshot to serve.
    loan_query_api::reports::snapshots::write_snapshot(
        &db.postgres.pool,
        crate::portfolio_rows::report_date(),
    )
    .await
    .unwrap();
    loan_query_api::reports::snapshots::write_snapshot(
        &db.sqlite.pool,
        crate::portfolio_rows::report_date(),
    )
    .await
    .unwrap();
    let mut statuses = Vec::new();
    for uri in &uris {
        for accept in [None, Some("text/csv")] {
            let on_postgres = answer(&postgres, uri, accept).await;
            let on_sqlite = answer(&sqlite, uri, accept).await;
            assert_eq!(
                on_sqlite, on_postgres,
                "GET {uri} (Accept: {accept:?}): SQLite (left) differs"
            );
            statuses.push(on_sqlite.0);
        }
    }
    // The comparison covered real reports, and each kind of problem.
    for status in [200, 400, 404] {
        assert!(
            statuses.contains(&status),
            "no {status} answer among {statuses:?}"
        );
    }
    let (_, content_type, next, body) =
        answer(&sqlite, "/delinquency/loans?as_of=2025-06-30&limit=5", None).await;
    assert_eq!(content_type, "application/json");
    assert_eq!(next.as_deref(), Some("5"));
    assert!(
        body.contains("\"outstanding_principal\":\""),
        "money as decimal strings: {body}"
    );
}
