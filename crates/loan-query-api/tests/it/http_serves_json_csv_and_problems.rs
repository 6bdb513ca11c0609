//! The HTTP API over the scripted portfolio: JSON and CSV of the same report, pagination,
//! problem details naming the bad parameter, 404 for an unknown customer, and `serve`
//! answering on a real socket until shut down.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use loan_query_api::http::problem::Problem;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;
use uuid::Uuid;

use crate::support::{TestDb, script_portfolio};

struct Answer {
    status: StatusCode,
    content_type: String,
    next_offset: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn problem(&self) -> Problem {
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.body
        );
        serde_json::from_str(&self.body).unwrap()
    }
}

async fn get(router: &axum::Router, uri: &str, accept: Option<&str>) -> Answer {
    let mut request = Request::get(uri);
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let header_text = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let content_type = header_text("content-type").unwrap_or_default();
    let next_offset = header_text("x-next-offset");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        content_type,
        next_offset,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

#[tokio::test]
async fn reports_come_as_json_or_csv_with_the_same_figures() {
    let db = TestDb::create().await;
    let p = script_portfolio(&db.pool).await;
    let router = loan_query_api::router(db.pool.clone());

    let json = get(&router, "/delinquency/buckets?as_of=2025-03-31", None).await;
    assert_eq!(json.status, StatusCode::OK, "{}", json.body);
    assert_eq!(json.content_type, "application/json");
    let body = json.json();
    assert_eq!(body["items"][2]["aging_bucket"], "dpd_31_to_60");
    assert_eq!(body["items"][2]["outstanding_principal"], "3900.00");
    assert_eq!(body["next_offset"], Value::Null);

    // Same report as CSV, by parameter and by Accept header: figures by hand (see
    // delinquency_is_computed_as_of_any_date).
    let expected = "group_key,aging_bucket,loans,outstanding_principal,overdue_amount\n\
                    all,current,1,400.00,0.00\n\
                    all,dpd_1_to_30,1,600.00,205.00\n\
                    all,dpd_31_to_60,2,3900.00,2676.00\n\
                    all,dpd_61_to_90,0,0.00,0.00\n\
                    all,dpd_90_plus,0,0.00,0.00\n";
    let csv = get(
        &router,
        "/delinquency/buckets?as_of=2025-03-31&format=csv",
        None,
    )
    .await;
    assert_eq!(csv.content_type, "text/csv; charset=utf-8");
    assert_eq!(csv.body, expected);
    let accepted = get(
        &router,
        "/delinquency/buckets?as_of=2025-03-31",
        Some("text/csv"),
    )
    .await;
    assert_eq!(accepted.body, expected);

    let par = get(
        &router,
        "/delinquency/par?as_of=2025-05-31&format=csv",
        None,
    )
    .await;
    assert_eq!(
        par.body,
        "group_key,loans,outstanding_principal,at_risk_1,at_risk_30,at_risk_90,par1,par30,par90\n\
         all,2,3400.00,3400.00,3400.00,3000.00,1.0000,1.0000,0.8824\n"
    );

    // An empty report still has its header row.
    let empty = get(
        &router,
        "/delinquency/loans?as_of=2024-01-01&format=csv",
        None,
    )
    .await;
    assert_eq!(
        empty.body,
        "loan_id,customer_id,purpose,channel,officer_id,days_past_due,aging_bucket,\
         outstanding_principal,overdue_amount\n"
    );

    // Every paginated report: CSV columns are the JSON item keys, in the same rows.
    for uri in [
        "/segments?as_of=2025-03-31",
        "/segments/customers",
        "/segments/region/north/members",
        "/delinquency/loans?as_of=2025-03-31",
        "/delinquency/buckets?as_of=2025-03-31&by=officer",
        "/delinquency/par?as_of=2025-03-31&by=value_tier",
        "/delinquency/roll-rates?from=2025-03-31&to=2025-05-31",
        "/delinquency/vintages?as_of=2025-05-31",
        "/collection-queue?as_of=2025-03-31",
        "/pipeline?by=month",
    ] {
        let json = get(&router, uri, None).await;
        assert_eq!(json.status, StatusCode::OK, "{uri}: {}", json.body);
        let items = json.json()["items"].as_array().unwrap().clone();
        assert!(!items.is_empty(), "{uri}");
        let separator = if uri.contains('?') { '&' } else { '?' };
        let csv = get(&router, &format!("{uri}{separator}format=csv"), None).await;
        let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect();
        let keys: Vec<String> = items[0].as_object().unwrap().keys().cloned().collect();
        let mut sorted_header = header.clone();
        sorted_header.sort();
        let mut sorted_keys = keys;
        sorted_keys.sort();
        assert_eq!(sorted_header, sorted_keys, "{uri}");
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), items.len(), "{uri}");
        for (record, item) in records.iter().zip(&items) {
            for (column, cell) in header.iter().zip(record.iter()) {
                let expected = match &item[column] {
                    Value::Null => String::new(),
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                assert_eq!(cell, expected, "{uri} {column}");
            }
        }
    }

    // Customer 360: nested JSON; CSV in long form.
    let ana = get(
        &router,
        &format!("/customers/{}?as_of=2025-03-31", p.ana),
        None,
    )
    .await;
    assert_eq!(ana.status, StatusCode::OK, "{}", ana.body);
    let body = ana.json();
    assert_eq!(body["profile"]["phone_masked"], "138****0001");
    assert_eq!(body["loans"][1]["days_past_due"], 16);
    let csv = get(
        &router,
        &format!("/customers/{}?as_of=2025-03-31&format=csv", p.ana),
        None,
    )
    .await;
    assert!(
        csv.body.starts_with("section,item,field,value\n"),
        "{}",
        csv.body
    );
    assert!(
        csv.body.contains("\nloans,1,days_past_due,16\n"),
        "{}",
        csv.body
    );
    assert!(
        csv.body.contains("\nprofile,,phone_masked,138****0001\n"),
        "{}",
        csv.body
    );
}

#[tokio::test]
async fn pages_follow_each_other_up_to_the_maximum() {
    let db = TestDb::create().await;
    script_portfolio(&db.pool).await;
    let router = loan_query_api::router(db.pool.clone());
    let all = get(&router, "/segments?as_of=2025-03-31", None)
        .await
        .json();
    let all = all["items"].as_array().unwrap().clone();
    assert_eq!(all.len(), 15);

    let mut collected = Vec::new();
    let mut offset = Some("0".to_string());
    while let Some(at) = offset {
        let page = get(
            &router,
            &format!("/segments?as_of=2025-03-31&limit=4&offset={at}"),
            None,
        )
        .await;
        let body = page.json();
        assert_eq!(body["limit"], 4);
        collected.extend(body["items"].as_array().unwrap().iter().cloned());
        assert_eq!(
            page.next_offset.as_deref(),
            body["next_offset"]
                .as_u64()
                .map(|n| n.to_string())
                .as_deref()
        );
        offset = page.next_offset;
    }
    assert_eq!(collected, all);

    for (uri, parameter) in [
        ("/segments?limit=0", "limit"),
        ("/segments?limit=1001", "limit"),
        ("/segments?limit=many", "limit"),
        ("/segments?offset=-3", "offset"),
        ("/segments?limit=5&limit=6", "limit"),
        ("/segments?page=2", "page"),
    ] {
        let answer = get(&router, uri, None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        let problem = answer.problem();
        assert_eq!(problem.parameter.as_deref(), Some(parameter), "{uri}");
        assert_eq!(problem.status, 400);
    }
}

#[tokio::test]
async fn bad_parameters_are_problems_naming_the_parameter() {
    let db = TestDb::create().await;
    script_portfolio(&db.pool).await;
    let router = loan_query_api::router(db.pool.clone());

    let unknown = get(&router, &format!("/customers/{}", Uuid::now_v7()), None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let problem = unknown.problem();
    assert_eq!(problem.problem_type, "urn:loan-query-api:problem:not-found");
    assert_eq!(problem.status, 404);
    assert!(problem.detail.contains("customer"), "{}", problem.detail);

    for (uri, parameter) in [
        ("/delinquency/loans?as_of=2025-02-30", "as_of"),
        ("/delinquency/par?as_of=31.03.2025", "as_of"),
        ("/delinquency/par?as_of=2025-03-31&by=colour", "by"),
        ("/delinquency/roll-rates?from=2025-03-31", "to"),
        (
            "/delinquency/roll-rates?from=2025-05-31&to=2025-03-31",
            "to",
        ),
        ("/delinquency/roll-rates?from=March&to=2025-03-31", "from"),
        ("/delinquency/snapshots/2025-3-31", "date"),
        ("/customers/not-a-uuid", "customer_id"),
        (
            "/customers/00000000-0000-0000-0000-000000000000?as_of=today",
            "as_of",
        ),
        ("/segments/colour/blue/members", "dimension"),
        ("/pipeline?by=week", "by"),
        ("/pipeline?from=2025-04-01&to=2025-03-01", "to"),
        ("/collection-queue?format=xml", "format"),
    ] {
        let answer = get(&router, uri, None).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{uri}: {}",
            answer.body
        );
        let problem = answer.problem();
        assert_eq!(
            problem.problem_type,
            "urn:loan-query-api:problem:invalid-parameter"
        );
        assert_eq!(problem.parameter.as_deref(), Some(parameter), "{uri}");
        assert!(
            problem.detail.contains(parameter),
            "{uri}: {}",
            problem.detail
        );
    }

    let nowhere = get(&router, "/no/such/report", None).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(nowhere.problem().status, 404);
    let live = get(&router, "/health/live", None).await;
    assert_eq!((live.status, live.body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn serve_answers_on_a_socket_until_shut_down() {
    let db = TestDb::create().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(loan_query_api::serve(
        listener,
        db.pool.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.contains("\"/delinquency/roll-rates\""),
        "{response}"
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "still listening"
    );
}
