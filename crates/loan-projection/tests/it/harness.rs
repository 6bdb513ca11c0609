//! A nats-server with the engine on a JetStream store, a scripted portfolio, and helpers
//! to project it into throwaway PostgreSQL databases and compare their rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use loan_contract::{AnyEvent, CommandReply, Subjects};
use loan_domain::CommandKind;
use loan_domain::loan::LoanEvent;
use loan_engine::{Engine, EngineConfig, MasterKey, Vault};
use loan_projection::embedded::{EmbeddedOptions, EmbeddedProjector};
use loan_projection::{Group, GroupProjector, ProjectorConfig};
use loan_store::jetstream::{JetStreamStore, StoreConfig};
use loan_store::keys::{JetStreamKeyStore, KeyStoreConfig, MemoryKeyStore};
use loan_store::memory::MemoryStore;
use loan_testkit::NatsServer;
use loan_testkit::postgres::TestDatabase;
use loan_testkit::synthetic::{bank_card, national_id};
use serde_json::{Value, json};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

/// 09:30 in Beijing on `date` (the engine's business day is UTC+8).
pub(crate) fn morning(date: &str) -> DateTime<Utc> {
    let date: NaiveDate = date.parse().expect("valid date");
    Utc.from_utc_datetime(&date.and_hms_opt(1, 30, 0).expect("valid time"))
}

pub(crate) fn date(text: &str) -> NaiveDate {
    text.parse().expect("valid date")
}

/// A nats-server, the event stream of this test, and the engine writing to it.
pub(crate) struct World {
    pub(crate) server: NatsServer,
    pub(crate) client: async_nats::Client,
    pub(crate) prefix: String,
    pub(crate) stream: String,
    pub(crate) master_key: MasterKey,
    pub(crate) engine: Engine<JetStreamStore>,
}

impl World {
    pub(crate) async fn new() -> Self {
        let server = NatsServer::start();
        let id = Uuid::now_v7().simple().to_string();
        let prefix = format!("t{}", &id[20..]);
        let stream = format!("EVENTS_{}", &id[20..]).to_uppercase();
        let client = async_nats::connect(server.url()).await.expect("connect");
        let subjects = Subjects::new(prefix.clone()).expect("prefix");
        let store =
            JetStreamStore::open(client.clone(), StoreConfig::new(stream.clone(), subjects))
                .await
                .expect("open the store");
        let keys = JetStreamKeyStore::open(client.clone(), KeyStoreConfig::for_stream(&stream, 1))
            .await
            .expect("open the key bucket");
        let master_key = MasterKey::generate();
        let vault = Vault::new(&master_key, Arc::new(keys));
        let engine = Engine::new(store, vault, EngineConfig::default());
        World {
            server,
            client,
            prefix,
            stream,
            master_key,
            engine,
        }
    }

    /// A projector configuration on `database` with consumers named `<prefix>-<group>`.
    pub(crate) fn config(
        &self,
        database: &TestDatabase,
        consumer_prefix: &str,
        batch_size: usize,
    ) -> ProjectorConfig {
        let mut config = ProjectorConfig::new(
            self.server.url(),
            self.stream.clone(),
            self.prefix.clone(),
            database.url(),
            self.master_key.clone(),
        );
        config.consumer_prefix = consumer_prefix.into();
        config.batch_size = batch_size;
        config.idle_wait = std::time::Duration::from_millis(50);
        config.retry_backoff = std::time::Duration::from_millis(50);
        config
    }

    /// The stream's last sequence.
    pub(crate) async fn head(&self) -> u64 {
        let js = async_nats::jetstream::new(self.client.clone());
        let stream = js.get_stream(&self.stream).await.expect("stream");
        stream.get_info().await.expect("info").state.last_sequence
    }

    /// Every message of the stream, as a projector receives them.
    pub(crate) async fn messages(&self) -> Vec<loan_projection::EventMessage> {
        let js = async_nats::jetstream::new(self.client.clone());
        let stream = js.get_stream(&self.stream).await.expect("stream");
        let mut out = Vec::new();
        let mut next = 1;
        while let Ok(message) = stream
            .direct_get_next_for_subject(format!("{}.events.>", self.prefix), Some(next))
            .await
        {
            next = message.sequence + 1;
            out.push(loan_projection::EventMessage {
                position: message.sequence,
                subject: message.subject.to_string(),
                payload: message.payload,
            });
        }
        out
    }

    /// Publishes raw bytes on an aggregate's event subject, as a broken producer would.
    pub(crate) async fn publish_raw(&self, aggregate: &str, id: Uuid, payload: Vec<u8>) {
        let js = async_nats::jetstream::new(self.client.clone());
        js.publish(
            format!("{}.events.{aggregate}.{id}", self.prefix),
            payload.into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    }
}

/// Where the scripted commands go: the real engine, on JetStream ([`World`]) or on the
/// in-memory log of the embedded mode ([`LocalWorld`]).
pub(crate) trait Lender {
    fn engine_execute(
        &self,
        kind: CommandKind,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> impl std::future::Future<Output = CommandReply>;

    /// Sends a command on business day `today`; panics if it is refused.
    async fn send(
        &self,
        today: &str,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
    ) -> CommandReply {
        let body = json!({
            "command_id": Uuid::now_v7(),
            "actor": { "id": format!("test-{}", roles.first().copied().unwrap_or("nobody")), "roles": roles },
            "correlation_id": Uuid::now_v7(),
            "payload": payload,
        });
        let reply = self
            .engine_execute(
                kind,
                &serde_json::to_vec(&body).expect("json"),
                morning(today),
            )
            .await;
        if let CommandReply::Error { error } = &reply {
            panic!("{kind} refused: {error:?}");
        }
        reply
    }
}

impl Lender for World {
    async fn engine_execute(
        &self,
        kind: CommandKind,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> CommandReply {
        self.engine.execute(kind, body, now).await
    }
}

/// The embedded mode's setting: the engine on an in-memory log and key store, no server.
pub(crate) struct LocalWorld {
    pub(crate) store: MemoryStore,
    pub(crate) keys: Arc<MemoryKeyStore>,
    pub(crate) master_key: MasterKey,
    pub(crate) engine: Engine<MemoryStore>,
}

impl LocalWorld {
    pub(crate) fn new() -> Self {
        let store = MemoryStore::new();
        let keys = Arc::new(MemoryKeyStore::new());
        let master_key = MasterKey::generate();
        let engine = Engine::new(
            store.clone(),
            Vault::new(&master_key, keys.clone()),
            EngineConfig::default(),
        );
        LocalWorld {
            store,
            keys,
            master_key,
            engine,
        }
    }

    /// A vault with the engine's keys, for a projector.
    pub(crate) fn vault(&self) -> Vault {
        Vault::new(&self.master_key, self.keys.clone())
    }

    /// The log's last position.
    pub(crate) fn head(&self) -> u64 {
        self.store.raw().len() as u64
    }

    /// An embedded projector of this log into the SQLite file at `path`.
    pub(crate) async fn projector(
        &self,
        path: &std::path::Path,
        batch_size: usize,
    ) -> EmbeddedProjector<MemoryStore> {
        let options = EmbeddedOptions {
            batch_size,
            ..EmbeddedOptions::default()
        };
        EmbeddedProjector::open(path, Arc::new(self.store.clone()), self.vault(), options)
            .await
            .expect("open the embedded projector")
    }
}

impl Lender for LocalWorld {
    async fn engine_execute(
        &self,
        kind: CommandKind,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> CommandReply {
        self.engine.execute(kind, body, now).await
    }
}

/// A fresh SQLite file path in the temp directory, removed (with its WAL) on drop.
pub(crate) struct SqliteFile(pub(crate) std::path::PathBuf);

impl SqliteFile {
    pub(crate) fn new(label: &str) -> Self {
        SqliteFile(std::env::temp_dir().join(format!(
            "loan-projection-{label}-{}.sqlite",
            Uuid::now_v7().simple()
        )))
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Every read-model table of a SQLite file, each as its rows in JSON, sorted: equal
/// snapshots are equal tables row for row.
pub(crate) async fn sqlite_snapshot(pool: &SqlitePool) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for table in READ_MODEL_TABLES {
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                .bind(table)
                .fetch_all(pool)
                .await
                .expect("columns");
        assert!(!columns.is_empty(), "SQLite has table {table}");
        let object = columns
            .iter()
            .map(|c| format!("'{c}', {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT json_object({object}) FROM {table} ORDER BY 1"
        ))
        .fetch_all(pool)
        .await
        .expect("rows");
        out.insert((*table).to_owned(), rows);
    }
    out
}

/// The read-model tables (both backends).
pub(crate) const READ_MODEL_TABLES: &[&str] = &[
    "allocations",
    "collection_cases",
    "credit_scores",
    "customers",
    "decisions",
    "delinquency_snapshots",
    "installments",
    "loan_timeline",
    "loans",
];

/// A checkpoint of the embedded read models.
pub(crate) async fn sqlite_checkpoint(pool: &SqlitePool, projection: &str) -> u64 {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT last_sequence FROM checkpoints WHERE projection = ?")
            .bind(projection)
            .fetch_optional(pool)
            .await
            .expect("checkpoint");
    u64::try_from(last.unwrap_or(0)).expect("position")
}

/// Projects every group of `config` up to the stream head, without interruption.
pub(crate) async fn project(config: &ProjectorConfig) {
    for group in Group::ALL {
        let mut projector = GroupProjector::open(config.clone(), group)
            .await
            .expect("open projector");
        projector.catch_up().await.expect("catch up");
    }
}

pub(crate) async fn pool(database: &TestDatabase) -> PgPool {
    PgPool::connect(database.url())
        .await
        .expect("connect to the test database")
}

/// Every read-model table, each as its rows in JSON, sorted: equal snapshots are equal
/// tables row for row.
pub(crate) async fn snapshot(pool: &PgPool) -> BTreeMap<String, Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'read_model' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut out = BTreeMap::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT row_to_json(t)::text FROM read_model.{table} t ORDER BY 1"
        ))
        .fetch_all(pool)
        .await
        .expect("rows");
        out.insert(table, rows);
    }
    out
}

/// The ids of the scripted portfolio.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Portfolio {
    pub(crate) c1: Uuid,
    pub(crate) c2: Uuid,
    pub(crate) c3: Uuid,
    /// C1, automated approval, on time then a backdated repayment.
    pub(crate) l1: Uuid,
    /// C2, underwriter approval, repayment reversed, overdue.
    pub(crate) l2: Uuid,
    /// C1, withdrawn lead.
    pub(crate) l3: Uuid,
    /// Collection case of L1: opened 03-16, cured by the backdated R2 (resolved 03-20).
    pub(crate) k1: Uuid,
    /// Collection case of L2: opened 03-31, a contact attempt and a promise to pay.
    pub(crate) k2: Uuid,
}

pub(crate) const C1_ID: &str = "44030419880715123";
pub(crate) const C2_ID: &str = "11010519900307124";
pub(crate) const C3_ID: &str = "32010219850612345";

fn registration(
    customer_id: Uuid,
    name: &str,
    (gender, birth_date, id_body): (&str, &str, &str),
    (phone, card): (&str, String),
    (region, channel, employer): (&str, &str, Option<&str>),
    financials: [&str; 4],
    risk_appetite: &str,
) -> Value {
    json!({
        "customer_id": customer_id, "name": name, "gender": gender, "birth_date": birth_date,
        "phone": phone, "national_id": national_id(id_body), "bank_card": card,
        "region": region, "employer": employer, "risk_appetite": risk_appetite, "channel": channel,
        "financials": { "monthly_income": financials[0], "monthly_debt_payments": financials[1], "total_assets": financials[2], "total_liabilities": financials[3] }
    })
}

/// The scripted portfolio: three customers (one erased), three loans.
pub(crate) async fn script(w: &impl Lender) -> Portfolio {
    let p = Portfolio {
        c1: Uuid::now_v7(),
        c2: Uuid::now_v7(),
        c3: Uuid::now_v7(),
        l1: Uuid::now_v7(),
        l2: Uuid::now_v7(),
        l3: Uuid::now_v7(),
        k1: Uuid::now_v7(),
        k2: Uuid::now_v7(),
    };
    let day = "2026-01-05";
    w.send(
        day,
        CommandKind::RegisterCustomer,
        &["customer_service"],
        registration(
            p.c1,
            "Li Wei",
            ("male", "1988-07-15", C1_ID),
            ("13912345678", "6222021234567890128".into()),
            ("guangdong", "app", Some("Pearl River Logistics")),
            ["25000.00", "2000.00", "400000.00", "100000.00"],
            "balanced",
        ),
    )
    .await;
    w.send(
        day,
        CommandKind::RecordCreditAssessment,
        &["system"],
        json!({ "customer_id": p.c1, "score": 735, "source": "pboc", "assessed_on": "2026-01-05" }),
    )
    .await;
    // Recorded later but assessed earlier: the history keeps it, the current score does not.
    w.send(day, CommandKind::RecordCreditAssessment, &["system"],
        json!({ "customer_id": p.c1, "score": 760, "source": "baihang", "assessed_on": "2026-01-04" })).await;
    w.send(
        day,
        CommandKind::VerifyIdentity,
        &["system"],
        json!({ "customer_id": p.c1, "method": "face_match", "verified_on": "2026-01-05" }),
    )
    .await;

    w.send(
        day,
        CommandKind::RegisterCustomer,
        &["customer_service"],
        registration(
            p.c2,
            "Wang Fang",
            ("female", "1990-03-07", C2_ID),
            ("13800001111", bank_card("622848001234567")),
            ("beijing", "branch", None),
            ["8000.00", "3500.00", "50000.00", "0.00"],
            "conservative",
        ),
    )
    .await;
    w.send(day, CommandKind::RecordCreditAssessment, &["system"],
        json!({ "customer_id": p.c2, "score": 650, "source": "internal-v3", "assessed_on": "2026-01-05" })).await;
    w.send(
        day,
        CommandKind::VerifyIdentity,
        &["system"],
        json!({ "customer_id": p.c2, "method": "in_branch", "verified_on": "2026-01-05" }),
    )
    .await;

    w.send(
        day,
        CommandKind::RegisterCustomer,
        &["customer_service"],
        registration(
            p.c3,
            "Zhao Lei",
            ("male", "1985-06-12", C3_ID),
            ("13700002222", bank_card("621700123456789")),
            ("jiangsu", "broker:acme", Some("Acme Trading")),
            ["40000.00", "0.00", "0.00", "0.00"],
            "aggressive",
        ),
    )
    .await;

    // L1: automated approval at the low-grade rate 0.0990, 3,000 over 3 months, equal principal.
    w.send(day, CommandKind::CaptureLead, &["loan_officer"], json!({ "loan_id": p.l1, "customer_id": p.c1, "channel": "app", "purpose": "consumer", "requested_amount": "3000.00", "currency": "CNY", "term_months": 3 })).await;
    w.send(
        day,
        CommandKind::AssignOfficer,
        &["sales_manager"],
        json!({ "loan_id": p.l1, "officer_id": "officer-7" }),
    )
    .await;
    w.send(day, CommandKind::LogFollowUp, &["loan_officer"], json!({ "loan_id": p.l1, "note": "called, documents promised", "next_follow_up_on": "2026-01-07" })).await;
    w.send(
        day,
        CommandKind::SubmitForReview,
        &["loan_officer"],
        json!({ "loan_id": p.l1, "documents": ["id_card", "credit_report", "income_proof"] }),
    )
    .await;
    let decision = w
        .send(
            day,
            CommandKind::DecideAutomatically,
            &["system"],
            json!({ "loan_id": p.l1 }),
        )
        .await;
    let approved = match &decision {
        CommandReply::Ok { events, .. } => events.iter().any(|e| matches!(&e.event, AnyEvent::Loan(LoanEvent::ApplicationApproved { annual_rate, .. }) if annual_rate.value() == rust_decimal::Decimal::new(99, 3))),
        CommandReply::Error { .. } => false,
    };
    assert!(approved, "the policy approves L1 at 0.0990: {decision:?}");
    w.send(day, CommandKind::SignContract, &["loan_officer"], json!({ "loan_id": p.l1, "principal": "3000.00", "annual_rate": "0.0990", "term_months": 3, "method": "equal_principal", "first_due_date": "2026-02-10", "grace_days": 3, "daily_penalty_rate": "0.0005" })).await;

    // L2: an underwriter approves 2,000 over 2 months at 0.12, equal principal.
    w.send(day, CommandKind::CaptureLead, &["loan_officer"], json!({ "loan_id": p.l2, "customer_id": p.c2, "channel": "branch", "purpose": "consumer", "requested_amount": "2000.00", "currency": "CNY", "term_months": 2 })).await;
    w.send(
        day,
        CommandKind::SubmitForReview,
        &["loan_officer"],
        json!({ "loan_id": p.l2, "documents": ["id_card", "credit_report", "income_proof"] }),
    )
    .await;
    w.send(day, CommandKind::ApproveApplication, &["underwriter"], json!({ "loan_id": p.l2, "approved_amount": "2000.00", "annual_rate": "0.12", "term_months": 2, "note": "income verified by phone" })).await;
    w.send(day, CommandKind::SignContract, &["loan_officer"], json!({ "loan_id": p.l2, "principal": "2000.00", "annual_rate": "0.12", "term_months": 2, "method": "equal_principal", "first_due_date": "2026-02-15", "grace_days": 3, "daily_penalty_rate": "0.0005" })).await;

    // L3: a lead of C1, withdrawn the next day.
    w.send(day, CommandKind::CaptureLead, &["loan_officer"], json!({ "loan_id": p.l3, "customer_id": p.c1, "channel": "app", "purpose": "consumer", "requested_amount": "5000.00", "currency": "CNY", "term_months": 6 })).await;
    w.send(
        "2026-01-06",
        CommandKind::WithdrawApplication,
        &["loan_officer"],
        json!({ "loan_id": p.l3, "reason": "customer changed mind" }),
    )
    .await;
    w.send(
        "2026-01-06",
        CommandKind::EraseCustomer,
        &["data_protection_officer"],
        json!({ "customer_id": p.c3, "reason": "data subject request DSR-1" }),
    )
    .await;

    w.send(
        "2026-01-10",
        CommandKind::DisburseLoan,
        &["finance"],
        json!({ "loan_id": p.l1, "payout_reference": "PO-L1", "value_date": "2026-01-10" }),
    )
    .await;
    w.send(
        "2026-01-15",
        CommandKind::DisburseLoan,
        &["finance"],
        json!({ "loan_id": p.l2, "payout_reference": "PO-L2", "value_date": "2026-01-15" }),
    )
    .await;
    w.send("2026-02-10", CommandKind::RecordRepayment, &["finance"], json!({ "loan_id": p.l1, "payment_reference": "R1", "amount": "1024.75", "value_date": "2026-02-10" })).await;
    w.send("2026-02-15", CommandKind::RecordRepayment, &["finance"], json!({ "loan_id": p.l2, "payment_reference": "R3", "amount": "1020.00", "value_date": "2026-02-15" })).await;
    w.send(
        "2026-02-20",
        CommandKind::ReverseRepayment,
        &["finance"],
        json!({ "loan_id": p.l2, "payment_reference": "R3", "reason": "payment bounced" }),
    )
    .await;
    w.send(
        "2026-03-16",
        CommandKind::EvaluateDelinquency,
        &["system"],
        json!({ "loan_id": p.l1, "as_of": "2026-03-16" }),
    )
    .await;
    w.send("2026-03-16", CommandKind::OpenCollectionCase, &["system"], json!({ "case_id": p.k1, "loan_id": p.l1, "team": "collections", "reason": "6 days past due" })).await;
    // Backdated: recorded on 20 March, value-dated 10 March (before the penalty days).
    w.send("2026-03-20", CommandKind::RecordRepayment, &["finance"], json!({ "loan_id": p.l1, "payment_reference": "R2", "amount": "1016.50", "value_date": "2026-03-10" })).await;
    w.send(
        "2026-03-20",
        CommandKind::ResolveCollectionCase,
        &["system"],
        json!({ "case_id": p.k1, "resolution": "cured", "reason": "no arrears" }),
    )
    .await;
    w.send(
        "2026-03-31",
        CommandKind::EvaluateDelinquency,
        &["system"],
        json!({ "loan_id": p.l2, "as_of": "2026-03-31" }),
    )
    .await;
    w.send("2026-03-31", CommandKind::OpenCollectionCase, &["system"], json!({ "case_id": p.k2, "loan_id": p.l2, "team": "collections", "reason": "44 days past due" })).await;
    w.send("2026-03-31", CommandKind::RecordContactAttempt, &["collector"], json!({ "case_id": p.k2, "channel": "phone", "outcome": "no_answer", "attempted_on": "2026-03-31" })).await;
    w.send("2026-03-31", CommandKind::RecordContactAttempt, &["collector"], json!({ "case_id": p.k2, "channel": "sms", "outcome": "reached", "note": "will pay on Friday", "attempted_on": "2026-03-31" })).await;
    w.send(
        "2026-03-31",
        CommandKind::RecordPromiseToPay,
        &["collector"],
        json!({ "case_id": p.k2, "amount": "1040.50", "pay_by": "2026-04-03" }),
    )
    .await;
    p
}
