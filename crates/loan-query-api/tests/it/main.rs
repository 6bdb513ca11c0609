//! The query API against a real PostgreSQL: each test creates its own database (named
//! with a UUID), migrates it with the projector's migrations, scripts a small portfolio
//! and compares the reports with figures worked out by hand. The embedded mode's tests
//! also write the same rows into a throwaway SQLite file and compare every report and
//! route across the two databases.
#![allow(
    unused_crate_dependencies,
    reason = "a test binary links every dependency of its crate; it uses only some"
)]
mod analyst_role_reads_views_only;
mod collection_cases_list_the_teams_cases;
mod customer_360_segments_and_pipeline_match_hand_figures;
mod daily_snapshots_record_each_closed_day;
mod delinquency_is_computed_as_of_any_date;
mod embedded_reports_match_postgresql;
mod http_answers_the_same_over_sqlite;
mod http_serves_json_csv_and_problems;
mod openapi_document_does_not_drift;
mod portfolio_rows;
mod support;
