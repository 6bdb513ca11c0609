//! A nats-server, an engine writing to a JetStream stream, and the scripted history every
//! audit test reads: two customers, two loans, a backdated repayment, a reversal and an
//! erasure.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use loan_audit::log::{Knowledge, LiveLog};
use loan_contract::{AnyEvent, CommandReply, Subjects};
use loan_domain::CommandKind;
use loan_domain::loan::LoanEvent;
use loan_domain::money::Money;
use loan_engine::{Engine, EngineConfig, MasterKey, Vault};
use loan_store::jetstream::{JetStreamStore, StoreConfig};
use loan_store::keys::{JetStreamKeyStore, KeyStoreConfig};
use loan_testkit::NatsServer;
use loan_testkit::synthetic::{bank_card, national_id};
use serde_json::{Value, json};
use uuid::Uuid;

/// 09:30 in Beijing on `date` (the engine's business day is UTC+8).
pub(crate) fn morning(date: &str) -> DateTime<Utc> {
    let date: NaiveDate = date.parse().expect("valid date");
    Utc.from_utc_datetime(&date.and_hms_opt(1, 30, 0).expect("valid time"))
}

pub(crate) fn date(text: &str) -> NaiveDate {
    text.parse().expect("valid date")
}

pub(crate) fn money(text: &str) -> Money {
    text.parse().expect("valid amount")
}

/// A nats-server, the event stream of this test, and the engine writing to it.
pub(crate) struct World {
    /// Kept alive for the test: dropping it stops the server.
    _server: NatsServer,
    pub(crate) client: async_nats::Client,
    pub(crate) prefix: String,
    pub(crate) stream: String,
    pub(crate) master_key: MasterKey,
    pub(crate) engine: Engine<JetStreamStore>,
    /// When set, a checkpoint is written into the log after every this many commands.
    checkpoints: Option<(JetStreamStore, u64)>,
    sent: std::sync::atomic::AtomicU64,
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
            _server: server,
            client,
            prefix,
            stream,
            master_key,
            engine,
            checkpoints: None,
            sent: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A world whose log gets a checkpoint after every `every` commands.
    pub(crate) async fn with_checkpoints(every: u64) -> Self {
        let mut world = Self::new().await;
        let subjects = Subjects::new(world.prefix.clone()).expect("prefix");
        let store = JetStreamStore::open(
            world.client.clone(),
            StoreConfig::new(world.stream.clone(), subjects),
        )
        .await
        .expect("open the store");
        world.checkpoints = Some((store, every));
        world
    }

    /// The log as an auditor opens it.
    pub(crate) fn log(&self) -> LiveLog {
        LiveLog::with_client(self.client.clone(), &self.stream, &self.prefix).expect("log")
    }

    /// Sends a command on business day `today`; panics if it is refused.
    pub(crate) async fn send(
        &self,
        today: &str,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
    ) -> CommandReply {
        let body = json!({
            "command_id": Uuid::now_v7(),
            "actor": { "id": format!("staff-{}", roles.first().copied().unwrap_or("nobody")), "roles": roles },
            "correlation_id": Uuid::now_v7(),
            "payload": payload,
        });
        let reply = self
            .engine
            .execute(
                kind,
                &serde_json::to_vec(&body).expect("json"),
                morning(today),
            )
            .await;
        if let CommandReply::Error { error } = &reply {
            panic!("{kind} refused: {error:?}");
        }
        let sent = self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some((store, every)) = &self.checkpoints {
            if sent % every == 0 {
                let outcome =
                    loan_store::checkpoint::CheckpointLog::write_checkpoint(store, morning(today))
                        .await
                        .expect("checkpoint");
                assert!(
                    matches!(
                        outcome,
                        loan_store::checkpoint::CheckpointOutcome::Written(_)
                    ),
                    "{outcome:?}"
                );
            }
        }
        reply
    }

    /// The stream's last position.
    pub(crate) async fn head(&self) -> u64 {
        self.log().head().await.expect("head")
    }
}

/// The ids of the scripted history, and the stream position where the published
/// figures of 28 February were taken.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Script {
    /// Li Wei: L1, approved by the policy.
    pub(crate) c1: Uuid,
    /// Wang Fang: L2, approved by an underwriter; erased at the end.
    pub(crate) c2: Uuid,
    /// 12,000.00 over 12 months at 9.90%, equal principal, first due 2026-02-10; unpaid
    /// on 28 February as known then; repaid by a repayment recorded on 5 March
    /// value-dated 9 February.
    pub(crate) l1: Uuid,
    /// 6,000.00 over 6 months at 12%, equal principal, first due 2026-02-10; repaid on
    /// time on 10 February, that repayment reversed on 20 March.
    pub(crate) l2: Uuid,
    /// The last position recorded by the end of 28 February (Beijing time).
    pub(crate) published_position: u64,
}

pub(crate) const C1_ID_BODY: &str = "44030419880715123";
pub(crate) const C2_ID_BODY: &str = "11010519900307124";
pub(crate) const C1_PHONE: &str = "13912345678";

/// End of 28 February in Beijing: when the February figures were published.
pub(crate) fn published_at() -> Knowledge {
    Knowledge::parse("2026-02-28T23:59:59+08:00").expect("time")
}

fn registration(
    customer_id: Uuid,
    name: &str,
    (gender, birth_date, id_body): (&str, &str, &str),
    phone: &str,
    card: String,
) -> Value {
    json!({
        "customer_id": customer_id, "name": name, "gender": gender, "birth_date": birth_date,
        "phone": phone, "national_id": national_id(id_body), "bank_card": card,
        "region": "guangdong", "employer": "Pearl River Logistics", "risk_appetite": "balanced", "channel": "app",
        "financials": { "monthly_income": "25000.00", "monthly_debt_payments": "2000.00", "total_assets": "400000.00", "total_liabilities": "100000.00" }
    })
}

/// Writes the scripted history through the engine.
pub(crate) async fn script(w: &World) -> Script {
    let c1 = Uuid::now_v7();
    let c2 = Uuid::now_v7();
    let l1 = Uuid::now_v7();
    let l2 = Uuid::now_v7();
    let day = "2026-01-05";
    w.send(
        day,
        CommandKind::RegisterCustomer,
        &["customer_service"],
        registration(
            c1,
            "Li Wei",
            ("male", "1988-07-15", C1_ID_BODY),
            C1_PHONE,
            bank_card("622202123456789012"),
        ),
    )
    .await;
    w.send(
        day,
        CommandKind::RegisterCustomer,
        &["customer_service"],
        registration(
            c2,
            "Wang Fang",
            ("female", "1990-03-07", C2_ID_BODY),
            "13800001111",
            bank_card("622848001234567"),
        ),
    )
    .await;
    for customer in [c1, c2] {
        w.send(
            day,
            CommandKind::RecordCreditAssessment,
            &["system"],
            json!({ "customer_id": customer, "score": 735, "source": "pboc", "assessed_on": day }),
        )
        .await;
        w.send(
            day,
            CommandKind::VerifyIdentity,
            &["system"],
            json!({ "customer_id": customer, "method": "face_match", "verified_on": day }),
        )
        .await;
    }

    let day = "2026-01-06";
    let documents = json!(["id_card", "credit_report", "income_proof"]);
    w.send(day, CommandKind::CaptureLead, &["loan_officer"], json!({ "loan_id": l1, "customer_id": c1, "channel": "app", "purpose": "consumer", "requested_amount": "12000.00", "currency": "CNY", "term_months": 12 })).await;
    w.send(
        day,
        CommandKind::SubmitForReview,
        &["loan_officer"],
        json!({ "loan_id": l1, "documents": documents }),
    )
    .await;
    let decision = w
        .send(
            day,
            CommandKind::DecideAutomatically,
            &["system"],
            json!({ "loan_id": l1 }),
        )
        .await;
    let approved_at_low_grade = match &decision {
        CommandReply::Ok { events, .. } => events.iter().any(|e| {
            matches!(&e.event, AnyEvent::Loan(LoanEvent::ApplicationApproved { annual_rate, .. })
                if annual_rate.value() == rust_decimal::Decimal::new(99, 3))
        }),
        CommandReply::Error { .. } => false,
    };
    assert!(
        approved_at_low_grade,
        "the policy approves L1 at 9.90%: {decision:?}"
    );
    w.send(day, CommandKind::SignContract, &["loan_officer"], json!({ "loan_id": l1, "principal": "12000.00", "annual_rate": "0.0990", "term_months": 12, "method": "equal_principal", "first_due_date": "2026-02-10", "grace_days": 3, "daily_penalty_rate": "0.0005" })).await;

    w.send(day, CommandKind::CaptureLead, &["loan_officer"], json!({ "loan_id": l2, "customer_id": c2, "channel": "branch", "purpose": "consumer", "requested_amount": "6000.00", "currency": "CNY", "term_months": 6 })).await;
    w.send(
        day,
        CommandKind::SubmitForReview,
        &["loan_officer"],
        json!({ "loan_id": l2, "documents": documents }),
    )
    .await;
    w.send(day, CommandKind::ApproveApplication, &["underwriter"], json!({ "loan_id": l2, "approved_amount": "6000.00", "annual_rate": "0.12", "term_months": 6, "note": "income verified by phone" })).await;
    w.send(day, CommandKind::SignContract, &["loan_officer"], json!({ "loan_id": l2, "principal": "6000.00", "annual_rate": "0.12", "term_months": 6, "method": "equal_principal", "first_due_date": "2026-02-10", "grace_days": 3, "daily_penalty_rate": "0.0005" })).await;

    for (loan, reference) in [(l1, "PO-L1"), (l2, "PO-L2")] {
        w.send(
            "2026-01-10",
            CommandKind::DisburseLoan,
            &["finance"],
            json!({ "loan_id": loan, "payout_reference": reference, "value_date": "2026-01-10" }),
        )
        .await;
    }
    // L2's first installment (1,000.00 principal + 60.00 interest), paid on its due date.
    w.send("2026-02-10", CommandKind::RecordRepayment, &["finance"],
        json!({ "loan_id": l2, "payment_reference": "R2", "amount": "1060.00", "value_date": "2026-02-10" })).await;
    // The month-end sweep finds L1 unpaid: overdue.
    w.send(
        "2026-02-28",
        CommandKind::EvaluateDelinquency,
        &["system"],
        json!({ "loan_id": l1, "as_of": "2026-02-28" }),
    )
    .await;
    let published_position = w.head().await;

    // Recorded on 5 March: L1's first installment (1,000.00 + 99.00) had been paid on
    // 9 February, before its due date.
    w.send("2026-03-05", CommandKind::RecordRepayment, &["finance"],
        json!({ "loan_id": l1, "payment_reference": "R1", "amount": "1099.00", "value_date": "2026-02-09" })).await;
    // Recorded on 20 March: L2's payment of 10 February bounced.
    w.send(
        "2026-03-20",
        CommandKind::ReverseRepayment,
        &["finance"],
        json!({ "loan_id": l2, "payment_reference": "R2", "reason": "payment bounced" }),
    )
    .await;
    w.send(
        "2026-03-25",
        CommandKind::EraseCustomer,
        &["data_protection_officer"],
        json!({ "customer_id": c2, "reason": "data subject request DSR-7" }),
    )
    .await;
    Script {
        c1,
        c2,
        l1,
        l2,
        published_position,
    }
}

/// Exports `selection` of the world's log to `<dir>/<name>.jsonl`; returns the file and
/// the manifest (also written, as `<dir>/<name>.manifest.json`).
pub(crate) async fn export_to(
    w: &World,
    selection: &loan_audit::export::Selection,
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, loan_audit::export::Manifest) {
    let path = dir.join(format!("{name}.jsonl"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let manifest =
        loan_audit::export::export(&w.log(), selection, &mut file, morning("2026-04-01"))
            .await
            .expect("export");
    drop(file);
    std::fs::write(
        dir.join(format!("{name}.manifest.json")),
        manifest.to_pretty_json(),
    )
    .expect("write the manifest");
    (path, manifest)
}

/// Every entry of an export file.
pub(crate) fn entries(path: &std::path::Path) -> Vec<loan_audit::log::LogEntry> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(|line| loan_audit::log::parse_export_line(line.as_bytes()).expect("export line"))
        .collect()
}

/// The position of the first commit of `aggregate` (an id) carrying an event of `event_type`.
pub(crate) fn position_of(
    entries: &[loan_audit::log::LogEntry],
    aggregate: Uuid,
    event_type: &str,
) -> u64 {
    entries
        .iter()
        .find(|entry| {
            if entry.is_checkpoint() {
                return false;
            }
            let commit = entry.commit().expect("commit");
            commit.aggregate.id == aggregate
                && commit.events.iter().any(|e| e.event_type == event_type)
        })
        .map(|entry| entry.position)
        .unwrap_or_else(|| panic!("no {event_type} of {aggregate}"))
}
