//! A throwaway PostgreSQL database per test.
//!
//! [`TestDatabase::create`] makes a database named with a fresh UUID on the server at
//! `LOAN_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`: the
//! development server, trust authentication) and [`TestDatabase::drop_database`] removes
//! it (also closing any session still connected). A test that cannot reach the server
//! fails with a message saying so; it never silently skips.

use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

/// The server's maintenance database URL the tests use.
pub fn admin_url() -> String {
    std::env::var("LOAN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The server's URL without a database (`postgres://user@host:port`), to which a test
/// appends `/<database>`.
pub fn server_url() -> String {
    let admin = admin_url();
    match admin.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, _database)) => format!("{scheme}://{authority}"),
            None => admin,
        },
        None => admin,
    }
}

/// A database of its own for one test.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database `test_<uuid>`.
    pub async fn create() -> Self {
        let admin = admin_url();
        let name = format!("test_{}", Uuid::now_v7().simple());
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("cannot reach PostgreSQL at {admin} (set LOAN_TEST_POSTGRES_URL): {e}")
        });
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let _ = conn.close().await;
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        TestDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `postgres://.../<name>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database, disconnecting whoever is still connected.
    pub async fn drop_database(self) {
        let admin = admin_url();
        if let Ok(mut conn) = PgConnection::connect(&admin).await {
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name).as_str())
                .await;
            let _ = conn.close().await;
        }
    }
}
