//! The same commits projected into PostgreSQL by the live runner and into SQLite by the
//! embedded projector give identical rows in every read-model table: every value, with
//! SQLite spelling it as its DDL says (money at two decimals as PostgreSQL's
//! numeric(20,2) holds it, dates YYYY-MM-DD, timestamps RFC 3339 UTC, booleans 0/1).

use std::collections::BTreeMap;
use std::sync::Arc;

use loan_engine::Vault;
use loan_projection::embedded::{EmbeddedOptions, EmbeddedProjector};
use loan_store::keys::{JetStreamKeyStore, KeyStoreConfig};
use loan_store::memory::MemoryStore;
use loan_store::{Appended, EventStore};
use loan_testkit::postgres::TestDatabase;
use serde_json::Value;
use sqlx::{PgPool, Row, SqlitePool};

use crate::harness::{READ_MODEL_TABLES, SqliteFile, World, pool, project, script};

/// table → key → column → value (NULL as None).
type Tables = BTreeMap<String, BTreeMap<String, BTreeMap<String, Option<String>>>>;

/// JSON with object keys sorted (jsonb reorders keys; the text form is not the value).
fn canonical_json(text: &str) -> String {
    fn sort(value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let sorted: BTreeMap<String, Value> =
                    map.into_iter().map(|(k, v)| (k, sort(v))).collect();
                Value::Object(sorted.into_iter().collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sort).collect()),
            other => other,
        }
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value) => sort(value).to_string(),
        Err(_) => format!("not JSON: {text}"),
    }
}

/// Columns of a PostgreSQL read-model table: (name, data type), in order.
async fn pg_columns(pg: &PgPool, table: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = 'read_model' AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(pg)
    .await
    .expect("columns")
}

async fn pg_key(pg: &PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = format('read_model.%I', $1::text)::regclass AND i.indisprimary
         ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    .bind(table)
    .fetch_all(pg)
    .await
    .expect("primary key")
}

fn keyed(
    key: &[String],
    columns: &[String],
    rows: Vec<Vec<Option<String>>>,
) -> BTreeMap<String, BTreeMap<String, Option<String>>> {
    rows.into_iter()
        .map(|row| {
            let values: BTreeMap<String, Option<String>> =
                columns.iter().cloned().zip(row).collect();
            let key = key
                .iter()
                .map(|k| values.get(k).cloned().flatten().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("/");
            (key, values)
        })
        .collect()
}

/// PostgreSQL's rows, each value spelled the way the SQLite DDL stores it.
async fn pg_tables(pg: &PgPool) -> (Tables, BTreeMap<String, Vec<String>>) {
    let mut tables = Tables::new();
    let mut json_columns = BTreeMap::new();
    for table in READ_MODEL_TABLES {
        let columns = pg_columns(pg, table).await;
        assert!(!columns.is_empty(), "PostgreSQL has read_model.{table}");
        let select: Vec<String> = columns
            .iter()
            .map(|(name, data_type)| match data_type.as_str() {
                "timestamp with time zone" => format!(
                    "to_char({name} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
                ),
                "boolean" => format!("CASE WHEN {name} THEN '1' ELSE '0' END"),
                _ => format!("{name}::text"),
            })
            .collect();
        let rows = sqlx::query(&format!(
            "SELECT {} FROM read_model.{table}",
            select.join(", ")
        ))
        .fetch_all(pg)
        .await
        .expect("rows");
        let json: Vec<String> = columns
            .iter()
            .filter(|(_, t)| t == "jsonb")
            .map(|(n, _)| n.clone())
            .collect();
        let rows: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, (name, _))| {
                        let value: Option<String> = row.try_get(i).expect("text");
                        if json.contains(name) {
                            value.map(|v| canonical_json(&v))
                        } else {
                            value
                        }
                    })
                    .collect()
            })
            .collect();
        let names: Vec<String> = columns.into_iter().map(|(n, _)| n).collect();
        let key = pg_key(pg, table).await;
        tables.insert((*table).to_owned(), keyed(&key, &names, rows));
        json_columns.insert((*table).to_owned(), json);
    }
    (tables, json_columns)
}

/// SQLite's rows as stored (integers as their decimal text; JSON canonical).
async fn sqlite_tables(
    db: &SqlitePool,
    keys: &BTreeMap<String, Vec<String>>,
    json_columns: &BTreeMap<String, Vec<String>>,
) -> Tables {
    let mut tables = Tables::new();
    for table in READ_MODEL_TABLES {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                .bind(table)
                .fetch_all(db)
                .await
                .expect("columns");
        let select: Vec<String> = names.iter().map(|n| format!("CAST({n} AS TEXT)")).collect();
        let rows = sqlx::query(&format!("SELECT {} FROM {table}", select.join(", ")))
            .fetch_all(db)
            .await
            .expect("rows");
        let json = &json_columns[*table];
        let rows: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|row| {
                names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        let value: Option<String> = row.try_get(i).expect("text");
                        if json.contains(name) {
                            value.map(|v| canonical_json(&v))
                        } else {
                            value
                        }
                    })
                    .collect()
            })
            .collect();
        tables.insert((*table).to_owned(), keyed(&keys[*table], &names, rows));
    }
    tables
}

/// Every difference, naming table, key and column.
fn differences(pg: &Tables, sqlite: &Tables) -> Vec<String> {
    let mut out = Vec::new();
    for (table, pg_rows) in pg {
        let Some(sqlite_rows) = sqlite.get(table) else {
            out.push(format!("{table}: missing in SQLite"));
            continue;
        };
        for (key, pg_row) in pg_rows {
            let Some(sqlite_row) = sqlite_rows.get(key) else {
                out.push(format!("{table} [{key}]: row only in PostgreSQL"));
                continue;
            };
            for (column, pg_value) in pg_row {
                match sqlite_row.get(column) {
                    None => out.push(format!("{table} [{key}] {column}: no such SQLite column")),
                    Some(value) if value != pg_value => out.push(format!(
                        "{table} [{key}] {column}: PostgreSQL {pg_value:?}, SQLite {value:?}"
                    )),
                    Some(_) => {}
                }
            }
            for column in sqlite_row.keys().filter(|c| !pg_row.contains_key(*c)) {
                out.push(format!(
                    "{table} [{key}] {column}: no such PostgreSQL column"
                ));
            }
        }
        for key in sqlite_rows.keys().filter(|k| !pg_rows.contains_key(*k)) {
            out.push(format!("{table} [{key}]: row only in SQLite"));
        }
    }
    out
}

#[tokio::test]
async fn the_scripted_portfolio_reads_the_same_in_sqlite_as_in_postgres() {
    let world = World::new().await;
    let p = script(&world).await;

    let database = TestDatabase::create().await;
    project(&world.config(&database, "projector", 500)).await;
    let pg = pool(&database).await;

    // The same commits, copied into an in-memory log at the same positions.
    let memory = MemoryStore::new();
    let mut last_of = BTreeMap::new();
    let mut after = 0;
    loop {
        let batch = world
            .engine
            .store()
            .read_after(after, 7)
            .await
            .expect("read the log");
        let Some(last) = batch.last() else { break };
        after = last.position;
        for recorded in batch {
            let expected = last_of
                .get(&recorded.commit.aggregate)
                .copied()
                .unwrap_or(0);
            let appended = memory
                .append(&recorded.commit, expected)
                .await
                .expect("append");
            assert_eq!(
                appended,
                Appended::Stored {
                    position: recorded.position,
                    hash: loan_store::chain_hash(&recorded.commit.to_bytes())
                },
                "the copy keeps every position"
            );
            last_of.insert(recorded.commit.aggregate, recorded.position);
        }
    }
    assert_eq!(after, world.head().await);

    let keys = JetStreamKeyStore::open(
        world.client.clone(),
        KeyStoreConfig::for_stream(&world.stream, 1),
    )
    .await
    .expect("key bucket");
    let file = SqliteFile::new("identical");
    // Small batches on this side: the rows may not depend on how the log was cut.
    let mut embedded = EmbeddedProjector::open(
        file.path(),
        Arc::new(memory),
        Vault::new(&world.master_key, Arc::new(keys)),
        EmbeddedOptions {
            batch_size: 4,
            ..EmbeddedOptions::default()
        },
    )
    .await
    .expect("open");
    assert_eq!(embedded.catch_up().await.expect("catch up"), after);
    let db = embedded.pool().clone();

    let (pg_rows, json_columns) = pg_tables(&pg).await;
    let mut keys = BTreeMap::new();
    for table in READ_MODEL_TABLES {
        keys.insert((*table).to_owned(), pg_key(&pg, table).await);
    }
    let sqlite_rows = sqlite_tables(&db, &keys, &json_columns).await;
    let rows: usize = pg_rows.values().map(BTreeMap::len).sum();
    assert!(rows > 40, "the portfolio has rows: {rows}");
    let differences = differences(&pg_rows, &sqlite_rows);
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );

    // What the comparison covered, spelled out for a few values.
    let l1 = p.l1.to_string();
    let loan = &sqlite_rows["loans"][&l1];
    assert_eq!(loan["principal"].as_deref(), Some("3000.00"));
    assert_eq!(loan["annual_rate"].as_deref(), Some("0.099"));
    assert_eq!(loan["disbursed_on"].as_deref(), Some("2026-01-10"));
    assert_eq!(loan["stale"].as_deref(), Some("0"));
    let c3 = &sqlite_rows["customers"][&p.c3.to_string()];
    assert_eq!(
        (c3["phone_masked"].as_deref(), c3["erased"].as_deref()),
        (Some("erased"), Some("1"))
    );
    let recorded_at: Vec<String> = sqlx::query_scalar(
        "SELECT recorded_at FROM loan_timeline WHERE loan_id = ? ORDER BY version",
    )
    .bind(&l1)
    .fetch_all(&db)
    .await
    .expect("timeline");
    assert_eq!(
        recorded_at.first().map(String::as_str),
        Some("2026-01-05T01:30:00.000000Z")
    );

    drop(embedded);
    db.close().await;
    pg.close().await;
    database.drop_database().await;
}
