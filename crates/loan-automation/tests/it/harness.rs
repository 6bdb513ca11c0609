//! A command service on a throwaway nats-server with a manual clock, a throwaway
//! database, the scripted portfolio, and readers of what the automation did (the log,
//! the notification stream, the outbox).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use loan_automation::rules::{OfficerRoute, RoutingTable};
use loan_automation::{BusinessCalendar, Worker, WorkerConfig};
use loan_command_service::{ServiceConfig, run};
use loan_contract::{AnyEvent, CommandReply, Subjects};
use loan_domain::loan::LoanEvent;
use loan_domain::schedule::Schedule;
use loan_domain::{CommandKind, Rate};
use loan_engine::MasterKey;
use loan_engine::clock::ManualClock;
use loan_store::Commit;
use loan_testkit::NatsServer;
use loan_testkit::postgres::TestDatabase;
use loan_testkit::synthetic::national_id;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub(crate) fn date(text: &str) -> NaiveDate {
    text.parse().expect("valid date")
}

/// 09:30 in Beijing on `day`.
fn morning(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(1, 30, 0).expect("valid time"))
}

pub(crate) struct Harness {
    _server: NatsServer,
    pub url: String,
    pub prefix: String,
    pub stream: String,
    pub clock: Arc<ManualClock>,
    pub client: async_nats::Client,
    pub master_key: MasterKey,
    pub database: Option<TestDatabase>,
    stop: Option<oneshot::Sender<()>>,
    service: Option<JoinHandle<()>>,
}

impl Harness {
    pub(crate) async fn start() -> Self {
        let server = NatsServer::start();
        let url = server.url();
        let id = Uuid::now_v7().simple().to_string();
        let prefix = format!("t{}", &id[20..]);
        let stream = format!("EVENTS_{}", &id[20..]).to_uppercase();
        let client = async_nats::connect(url.as_str()).await.expect("connect");
        let clock = Arc::new(ManualClock::new(morning(date("2026-01-05"))));
        let master_key = MasterKey::generate();
        let mut config = ServiceConfig::new(
            url.clone(),
            Subjects::new(prefix.clone()).expect("prefix"),
            stream.clone(),
            master_key.clone(),
        );
        config.clock = clock.clone();
        // Checkpoints every few commits: the worker's stream ends with one now and then,
        // which its consumer never receives and its notion of the head skips.
        config.checkpoints = loan_store::checkpoint::Cadence {
            every_commits: Some(3),
            every: None,
        };
        let (stop, stopped) = oneshot::channel();
        let service = tokio::spawn(async move {
            run(config, async {
                let _ = stopped.await;
            })
            .await
            .expect("command service runs");
        });
        let h = Harness {
            _server: server,
            url,
            prefix,
            stream,
            clock,
            client,
            master_key,
            database: Some(TestDatabase::create().await),
            stop: Some(stop),
            service: Some(service),
        };
        // Ready when a command subject answers.
        for _ in 0..400 {
            let probe = h
                .client
                .request(h.subjects().command(CommandKind::CaptureLead), "{}".into());
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), probe).await {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the command service did not become ready");
    }

    pub(crate) async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(service) = self.service.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), service).await;
        }
        if let Some(database) = self.database.take() {
            database.drop_database().await;
        }
    }

    pub(crate) fn subjects(&self) -> Subjects {
        Subjects::new(self.prefix.clone()).expect("prefix")
    }

    pub(crate) fn set_today(&self, day: NaiveDate) {
        self.clock.set(morning(day));
    }

    /// The worker configuration of the tests: holiday 2026-02-17, reminders 3 days
    /// ahead, follow-up after 3 days, officer o-1 reports to m-1; routing: o-a takes one
    /// consumer lead of guangdong, o-b two of guangdong or beijing, no default officer;
    /// an overdue rate above 0.5 alerts; a credit score drop of more than 50 points alerts.
    pub(crate) fn worker_config(&self) -> WorkerConfig {
        let database = self.database.as_ref().expect("database");
        let mut config = WorkerConfig::new(
            self.url.clone(),
            self.subjects(),
            self.stream.clone(),
            database.url(),
            self.master_key.clone(),
        );
        config.notification_stream = format!("{}_NOTIFY", self.stream);
        config.start_date = Some(date("2026-01-05"));
        config.rules.calendar = BusinessCalendar::new(
            [chrono::Weekday::Sat, chrono::Weekday::Sun],
            [date("2026-02-17")],
        );
        config.rules.managers.insert("o-1".into(), "m-1".into());
        config.rules.default_manager = Some("m-0".into());
        config.rules.routing = RoutingTable {
            officers: vec![
                OfficerRoute::parse("o-a:guangdong:consumer:1").expect("route"),
                OfficerRoute::parse("o-b:guangdong+beijing:consumer:2").expect("route"),
            ],
            default_officer: None,
        };
        config.rules.overdue_rate_threshold = Some(Rate::parse("0.5").expect("rate"));
        config.rules.credit_drop_points = Some(50);
        config
    }

    pub(crate) async fn worker(&self) -> Worker {
        Worker::open(self.worker_config())
            .await
            .expect("worker opens")
    }

    pub(crate) async fn send(
        &self,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
    ) -> CommandReply {
        let body = serde_json::to_vec(&json!({
            "command_id": Uuid::now_v7(),
            "actor": { "id": "test", "roles": roles },
            "correlation_id": Uuid::now_v7(),
            "payload": payload,
        }))
        .expect("serialise");
        let message = tokio::time::timeout(
            Duration::from_secs(10),
            self.client
                .request(self.subjects().command(kind), body.into()),
        )
        .await
        .expect("a reply within 10 s")
        .expect("request");
        serde_json::from_slice(&message.payload).expect("a command reply")
    }

    pub(crate) async fn ok(
        &self,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
    ) -> CommandReply {
        let reply = self.send(kind, roles, payload).await;
        if let CommandReply::Error { error } = &reply {
            panic!("{kind} refused: {error:?}");
        }
        reply
    }

    /// A registered, assessed (score 735) and verified customer of guangdong (phone
    /// 13912345678).
    pub(crate) async fn customer(&self, n: u32) -> Uuid {
        self.customer_in(n, "guangdong").await
    }

    /// [`Harness::customer`] of `region`.
    pub(crate) async fn customer_in(&self, n: u32, region: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.ok(CommandKind::RegisterCustomer, &["customer_service"], json!({
            "customer_id": id, "name": "Li Wei", "gender": "male", "birth_date": "1988-07-15",
            "phone": "13912345678", "national_id": national_id("44030419880715123"), "bank_card": "6222021234567890128",
            "region": region, "employer": "Pearl River Logistics", "risk_appetite": "balanced", "channel": format!("app{n}"),
            "financials": { "monthly_income": "25000.00", "monthly_debt_payments": "2000.00", "total_assets": "400000.00", "total_liabilities": "100000.00" }
        })).await;
        let today = (self.clock_now() + chrono::Duration::hours(8)).date_naive();
        self.ok(
            CommandKind::RecordCreditAssessment,
            &["system"],
            json!({ "customer_id": id, "score": 735, "source": "pboc", "assessed_on": today }),
        )
        .await;
        self.ok(
            CommandKind::VerifyIdentity,
            &["system"],
            json!({ "customer_id": id, "method": "face_match", "verified_on": today }),
        )
        .await;
        id
    }

    fn clock_now(&self) -> DateTime<Utc> {
        use loan_engine::clock::Clock;
        self.clock.now()
    }

    /// A credit assessment of `score` recorded today.
    pub(crate) async fn assess(&self, customer_id: Uuid, score: u16) {
        let today = (self.clock_now() + chrono::Duration::hours(8)).date_naive();
        self.ok(
            CommandKind::RecordCreditAssessment,
            &["system"],
            json!({ "customer_id": customer_id, "score": score, "source": "pboc", "assessed_on": today }),
        )
        .await;
    }

    pub(crate) async fn lead(&self, customer_id: Uuid) -> Uuid {
        let loan_id = Uuid::now_v7();
        self.ok(CommandKind::CaptureLead, &["loan_officer"], json!({ "loan_id": loan_id, "customer_id": customer_id, "channel": "app", "purpose": "consumer", "requested_amount": "12000.00", "currency": "CNY", "term_months": 12 })).await;
        loan_id
    }

    /// A loan disbursed today (12,000 over 12 months, grace 3 days), first due
    /// `first_due`; returns its id and schedule.
    pub(crate) async fn disbursed_loan(
        &self,
        customer_id: Uuid,
        first_due: &str,
    ) -> (Uuid, Schedule) {
        let loan_id = self.lead(customer_id).await;
        self.ok(CommandKind::SubmitForReview, &["loan_officer"], json!({ "loan_id": loan_id, "documents": ["id_card", "credit_report", "income_proof"] })).await;
        let decision = self
            .ok(
                CommandKind::DecideAutomatically,
                &["system"],
                json!({ "loan_id": loan_id }),
            )
            .await;
        let rate = events(&decision)
            .find_map(|e| match e {
                LoanEvent::ApplicationApproved { annual_rate, .. } => Some(annual_rate.to_string()),
                _ => None,
            })
            .expect("approved by the policy");
        self.ok(CommandKind::SignContract, &["loan_officer"], json!({ "loan_id": loan_id, "principal": "12000.00", "annual_rate": rate, "term_months": 12, "method": "equal_installment",
            "first_due_date": first_due, "grace_days": 3, "daily_penalty_rate": "0.0005" })).await;
        let today = (self.clock_now() + chrono::Duration::hours(8)).date_naive();
        let disbursed = self.ok(CommandKind::DisburseLoan, &["finance"], json!({ "loan_id": loan_id, "payout_reference": format!("PO-{loan_id}"), "value_date": today })).await;
        let schedule = events(&disbursed)
            .find_map(|e| match e {
                LoanEvent::LoanDisbursed { schedule, .. } => Some(schedule.clone()),
                _ => None,
            })
            .expect("the disbursement carries the schedule");
        (loan_id, schedule)
    }

    /// Every commit of the log, in order.
    pub(crate) async fn commits(&self) -> Vec<Commit> {
        self.messages(&self.stream)
            .await
            .into_iter()
            .map(|(_, payload)| Commit::from_bytes(&payload).expect("a commit"))
            .collect()
    }

    /// Every notification published: (Nats-Msg-Id header, body).
    pub(crate) async fn notifications(&self) -> Vec<(String, Value)> {
        let stream = self.worker_config().notification_stream;
        self.messages(&stream)
            .await
            .into_iter()
            .map(|(id, payload)| (id, serde_json::from_slice(&payload).expect("JSON body")))
            .collect()
    }

    async fn messages(&self, stream: &str) -> Vec<(String, Vec<u8>)> {
        let js = async_nats::jetstream::new(self.client.clone());
        let mut stream = js.get_stream(stream).await.expect("stream exists");
        let last = stream
            .info()
            .await
            .expect("stream info")
            .state
            .last_sequence;
        let mut out = Vec::new();
        for sequence in 1..=last {
            let message = stream.get_raw_message(sequence).await.expect("message");
            if message.subject.as_str() == self.subjects().checkpoints() {
                // The log's checkpoints are not commits.
                continue;
            }
            let id = message
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.to_string())
                .unwrap_or_default();
            out.push((id, message.payload.to_vec()));
        }
        out
    }

    /// (rule, loan, business day, outcome) of every action in the outbox, in order.
    pub(crate) async fn actions(&self) -> Vec<(String, Option<Uuid>, NaiveDate, Option<String>)> {
        let pool = sqlx::PgPool::connect(self.database.as_ref().expect("database").url())
            .await
            .expect("connect");
        let rows = sqlx::query_as(
            "SELECT rule, loan_id, business_on, outcome FROM automation.actions ORDER BY dispatch_order",
        )
        .fetch_all(&pool)
        .await
        .expect("actions");
        pool.close().await;
        rows
    }

    /// Every row of the daily report read model, in date order.
    pub(crate) async fn daily_report_rows(&self) -> Vec<loan_automation::outbox::DailyReportRow> {
        let pool = sqlx::PgPool::connect(self.database.as_ref().expect("database").url())
            .await
            .expect("connect");
        let rows =
            loan_automation::outbox::daily_reports(&pool, date("2000-01-01"), date("2100-01-01"))
                .await
                .expect("daily reports");
        pool.close().await;
        rows
    }
}

/// The loan events of a reply.
pub(crate) fn events(reply: &CommandReply) -> impl Iterator<Item = &LoanEvent> {
    let events = match reply {
        CommandReply::Ok { events, .. } => events.as_slice(),
        CommandReply::Error { .. } => &[],
    };
    events.iter().filter_map(|e| match &e.event {
        AnyEvent::Loan(event) => Some(event),
        _ => None,
    })
}

/// The business days in `from..=through` (weekends and 2026-02-17 off).
pub(crate) fn business_days(from: &str, through: &str) -> BTreeSet<NaiveDate> {
    let calendar = BusinessCalendar::new(
        [chrono::Weekday::Sat, chrono::Weekday::Sun],
        [date("2026-02-17")],
    );
    date(from)
        .iter_days()
        .take_while(|d| *d <= date(through))
        .filter(|d| calendar.is_business_day(*d))
        .collect()
}
