//! The committed OpenAPI document (`proto/query-api/openapi.json`) is what the code
//! serves; `UPDATE_PROTO=1 cargo test -p loan-query-api` regenerates it.

use std::path::PathBuf;

#[test]
fn committed_openapi_document_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto/query-api/openapi.json");
    let generated = format!(
        "{}\n",
        loan_query_api::http::openapi()
            .to_pretty_json()
            .expect("OpenAPI as JSON")
    );
    if std::env::var_os("UPDATE_PROTO").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "proto/query-api/openapi.json is out of date; run `UPDATE_PROTO=1 cargo test -p loan-query-api` and commit"
    );
    let document: serde_json::Value = serde_json::from_str(&generated).unwrap();
    for path in [
        "/customers/{customer_id}",
        "/delinquency/par",
        "/pipeline",
        "/health/live",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path} missing");
    }
}
