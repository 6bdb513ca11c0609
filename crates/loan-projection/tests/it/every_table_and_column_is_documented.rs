//! Every table and column of the projector's schemas carries a comment in the database
//! and an entry in docs/read-models.md.

use loan_testkit::postgres::TestDatabase;

use crate::harness::pool;

/// schema, table, table comment, column, column comment.
type Column = (String, String, Option<String>, String, Option<String>);

#[tokio::test]
async fn every_table_and_column_is_documented() {
    let database = TestDatabase::create().await;
    let db = pool(&database).await;
    loan_projection::migrate(&db).await.expect("migrate");
    loan_projection::migrate(&db)
        .await
        .expect("migrations are idempotent");
    let columns: Vec<Column> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text, obj_description(c.oid, 'pg_class'), a.attname::text, col_description(c.oid, a.attnum)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE n.nspname IN ('read_model', 'projection') AND c.relkind = 'r' AND c.relname <> '_sqlx_migrations'
         ORDER BY 1, 2, a.attnum",
    )
    .fetch_all(&db)
    .await
    .expect("catalog");
    assert!(columns.len() > 100, "{} columns", columns.len());
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/read-models.md"
    ))
    .expect("docs/read-models.md");
    for (schema, table, table_comment, column, comment) in columns {
        assert!(
            table_comment.is_some_and(|c| !c.is_empty()),
            "{schema}.{table} has no comment"
        );
        assert!(
            comment.is_some_and(|c| !c.is_empty()),
            "{schema}.{table}.{column} has no comment"
        );
        let heading = format!("### `{schema}.{table}`");
        let section = doc
            .split_once(&heading)
            .map(|(_, rest)| rest.split("\n### ").next().unwrap_or(""))
            .unwrap_or_else(|| panic!("docs/read-models.md has no section {heading}"));
        assert!(
            section.contains(&format!("| `{column}` |")),
            "docs/read-models.md does not list {schema}.{table}.{column}"
        );
    }
    db.close().await;
    database.drop_database().await;
}
