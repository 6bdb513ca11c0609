//! A running command service on a throwaway nats-server, and a client that talks to it
//! as an upstream service would: JSON requests on the command subjects.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use loan_command_service::{ServiceConfig, run};
use loan_contract::{CommandReply, Subjects};
use loan_domain::CommandKind;
use loan_engine::EngineConfig;
use loan_engine::clock::ManualClock;
use loan_store::jetstream::StoreConfig;
use loan_testkit::NatsServer;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// One instance of the service, stoppable.
pub(crate) struct Instance {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Instance {
    /// Graceful shutdown: waits until in-flight commands are answered.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task).await.expect("the service stops within 20 s").expect("service task");
        }
    }
}

/// A nats-server, a subject prefix and stream of our own, a manual clock.
pub(crate) struct Harness {
    pub server: NatsServer,
    pub prefix: String,
    pub stream: String,
    pub clock: Arc<ManualClock>,
    pub client: async_nats::Client,
}

/// 09:30 in Beijing on `date` (the engine's business day is UTC+8).
pub(crate) fn morning(date: &str) -> DateTime<Utc> {
    let date: NaiveDate = date.parse().expect("valid date");
    Utc.from_utc_datetime(&date.and_hms_opt(1, 30, 0).expect("valid time"))
}

impl Harness {
    pub(crate) async fn new() -> Self {
        let server = NatsServer::start();
        let id = Uuid::now_v7().simple().to_string();
        let prefix = format!("t{}", &id[20..]);
        let stream = format!("EVENTS_{}", &id[20..]).to_uppercase();
        let client = async_nats::connect(server.url()).await.expect("connect");
        Harness { server, prefix, stream, clock: Arc::new(ManualClock::new(morning("2026-01-05"))), client }
    }

    pub(crate) fn subjects(&self) -> Subjects {
        Subjects::new(self.prefix.clone()).expect("valid prefix")
    }

    /// Starts an instance of the service and waits until it answers.
    pub(crate) async fn start_instance(&self) -> Instance {
        let config = ServiceConfig {
            nats_url: self.server.url(),
            subjects: self.subjects(),
            store: StoreConfig::new(self.stream.clone(), self.subjects()),
            engine: EngineConfig::default(),
            max_in_flight: 256,
            service_name: "loan-commands".into(),
            clock: self.clock.clone(),
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            run(config, async {
                let _ = stopped.await;
            })
            .await
            .expect("service runs");
        });
        let instance = Instance { stop: Some(stop), task: Some(task) };
        // Ready when a command subject answers.
        for _ in 0..200 {
            let probe = self.client.request(self.subjects().command(CommandKind::CaptureLead), "{}".into());
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), probe).await {
                return instance;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the command service did not become ready");
    }

    pub(crate) fn set_today(&self, date: &str) {
        self.clock.set(morning(date));
    }

    /// Sends a raw body to a subject and decodes the reply.
    pub(crate) async fn request_raw(&self, subject: String, body: Vec<u8>) -> CommandReply {
        let message = tokio::time::timeout(Duration::from_secs(10), self.client.request(subject, body.into()))
            .await
            .expect("a reply within 10 s")
            .expect("request succeeds");
        serde_json::from_slice(&message.payload).unwrap_or_else(|e| panic!("reply is not a CommandReply ({e}): {}", String::from_utf8_lossy(&message.payload)))
    }

    /// Sends a command with a fresh command id.
    pub(crate) async fn send(&self, kind: CommandKind, roles: &[&str], payload: Value) -> CommandReply {
        self.send_with_id(Uuid::now_v7(), kind, roles, payload).await
    }

    pub(crate) async fn send_with_id(&self, command_id: Uuid, kind: CommandKind, roles: &[&str], payload: Value) -> CommandReply {
        let body = json!({
            "command_id": command_id,
            "actor": { "id": format!("test-{}", roles.first().copied().unwrap_or("nobody")), "roles": roles },
            "correlation_id": Uuid::now_v7(),
            "payload": payload,
        });
        self.request_raw(self.subjects().command(kind), serde_json::to_vec(&body).expect("serialise")).await
    }

    /// The raw bytes of every message in the stream, and their count.
    pub(crate) async fn stream_messages(&self) -> Vec<Vec<u8>> {
        let js = async_nats::jetstream::new(self.client.clone());
        let stream = js.get_stream(&self.stream).await.expect("stream exists");
        let mut out = Vec::new();
        let mut next = 1;
        loop {
            match stream.direct_get_next_for_subject(format!("{}.events.>", self.prefix), Some(next)).await {
                Ok(message) => {
                    next = message.sequence + 1;
                    out.push(message.payload.to_vec());
                }
                Err(_) => break,
            }
        }
        out
    }
}

/// The events of an ok reply; panics with the error otherwise.
pub(crate) fn ok(reply: CommandReply) -> Vec<String> {
    match reply {
        CommandReply::Ok { events, .. } => events.iter().map(|e| e.event.type_name().to_owned()).collect(),
        CommandReply::Error { error } => panic!("command refused: {error:?}"),
    }
}

/// The error code of a refused reply; panics if it was accepted.
pub(crate) fn refused(reply: CommandReply) -> loan_contract::ErrorReply {
    match reply {
        CommandReply::Error { error } => error,
        CommandReply::Ok { events, .. } => panic!("expected a refusal, got events {events:?}"),
    }
}

pub(crate) fn national_id(body17: &str) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body17.chars().zip(WEIGHTS).map(|(c, w)| c.to_digit(10).expect("digit") * w).sum();
    format!("{body17}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

/// Registers, verifies and credit-assesses a customer; returns its id.
pub(crate) async fn onboard_customer(h: &Harness) -> Uuid {
    let customer_id = Uuid::now_v7();
    ok(h
        .send(
            CommandKind::RegisterCustomer,
            &["customer_service"],
            json!({
                "customer_id": customer_id, "name": "Li Wei", "gender": "male", "birth_date": "1988-07-15",
                "phone": "13912345678", "national_id": national_id("44030419880715123"), "bank_card": "6222021234567890128",
                "region": "guangdong", "employer": "Pearl River Logistics", "risk_appetite": "balanced", "channel": "app",
                "financials": { "monthly_income": "25000.00", "monthly_debt_payments": "2000.00", "total_assets": "400000.00", "total_liabilities": "100000.00" }
            }),
        )
        .await);
    ok(h.send(CommandKind::RecordCreditAssessment, &["system"], json!({ "customer_id": customer_id, "score": 735, "source": "pboc", "assessed_on": h.clock_date() })).await);
    ok(h.send(CommandKind::VerifyIdentity, &["system"], json!({ "customer_id": customer_id, "method": "face_match", "verified_on": h.clock_date() })).await);
    customer_id
}

impl Harness {
    /// Today's business date as a string.
    pub(crate) fn clock_date(&self) -> String {
        use loan_engine::clock::Clock;
        (self.clock.now() + chrono::Duration::hours(8)).date_naive().to_string()
    }
}

/// Takes a new loan of `customer_id` through lead, review, automated approval, signing
/// (12,000 over 12 months, first due `first_due`) and disbursement on `disburse_on`.
pub(crate) async fn disbursed_loan(h: &Harness, customer_id: Uuid, disburse_on: &str, first_due: &str) -> Uuid {
    let loan_id = Uuid::now_v7();
    h.set_today(disburse_on);
    ok(h.send(
        CommandKind::CaptureLead,
        &["loan_officer"],
        json!({ "loan_id": loan_id, "customer_id": customer_id, "channel": "app", "purpose": "consumer", "requested_amount": "12000.00", "currency": "CNY", "term_months": 12 }),
    )
    .await);
    ok(h.send(CommandKind::SubmitForReview, &["loan_officer"], json!({ "loan_id": loan_id, "documents": ["id_card", "credit_report", "income_proof"] })).await);
    let decision = ok(h.send(CommandKind::DecideAutomatically, &["system"], json!({ "loan_id": loan_id })).await);
    assert_eq!(decision, ["automated_decision_made", "application_approved"], "the policy approves this customer");
    ok(h.send(
        CommandKind::SignContract,
        &["loan_officer"],
        json!({ "loan_id": loan_id, "principal": "12000.00", "annual_rate": "0.1200", "term_months": 12, "method": "equal_installment",
                "first_due_date": first_due, "grace_days": 3, "daily_penalty_rate": "0.0005" }),
    )
    .await);
    ok(h.send(CommandKind::DisburseLoan, &["finance"], json!({ "loan_id": loan_id, "payout_reference": format!("PO-{loan_id}"), "value_date": disburse_on })).await);
    loan_id
}
