//! A running command service on a throwaway nats-server, and a client that talks to it
//! as an upstream service would: JSON requests on the command subjects.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use futures::StreamExt;
use loan_command_service::{ServiceConfig, run};
use loan_contract::{AnyEvent, CommandReply, ErrorCode, EventEnvelope, Subjects};
use loan_domain::loan::{Loan, LoanEvent};
use loan_domain::{AggregateType, CommandKind};
use loan_engine::clock::ManualClock;
use loan_engine::{EngineConfig, MasterKey, State, Vault};
use loan_store::checkpoint::Cadence;
use loan_store::jetstream::{JetStreamStore, StoreConfig};
use loan_store::keys::{JetStreamKeyStore, KeyStoreConfig};
use loan_store::{AggregateRef, Commit, EventStore};
pub(crate) use loan_testkit::synthetic::national_id;
use loan_testkit::{NatsCluster, NatsServer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The name the service registers under (`$SRV.*.loan-commands`).
pub(crate) const SERVICE_NAME: &str = "loan-commands";

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
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("the service stops within 20 s")
                .expect("service task");
        }
    }
}

/// The NATS the harness runs on.
pub(crate) enum Nats {
    /// One server: streams with one replica.
    Server(NatsServer),
    /// Three nodes: streams with three replicas.
    Cluster(NatsCluster),
}

/// A nats-server (or cluster), a subject prefix and stream of our own, a manual clock.
pub(crate) struct Harness {
    pub nats: Nats,
    /// Where the service and the test connect (every node's URL, for a cluster).
    pub url: String,
    /// Replicas of the stream and the KV buckets.
    pub replicas: usize,
    pub prefix: String,
    pub stream: String,
    pub clock: Arc<ManualClock>,
    pub client: async_nats::Client,
    /// Shared by every instance (they must agree to read each other's sensitive fields).
    pub master_key: MasterKey,
    /// The instances' checkpoint cadence: every few commits, so every test of the service
    /// runs with checkpoints interleaved in its stream.
    pub checkpoints: Cadence,
}

/// 09:30 in Beijing on `date` (the engine's business day is UTC+8).
pub(crate) fn morning(date: &str) -> DateTime<Utc> {
    let date: NaiveDate = date.parse().expect("valid date");
    Utc.from_utc_datetime(&date.and_hms_opt(1, 30, 0).expect("valid time"))
}

impl Harness {
    pub(crate) async fn new() -> Self {
        let server = NatsServer::start();
        let url = server.url();
        Self::on(Nats::Server(server), url, 1).await
    }

    /// On a three-node cluster (`sync_interval: always` on every node), replicas = 3.
    pub(crate) async fn on_cluster() -> Self {
        // Blocks until every node is healthy: off the async workers.
        let cluster = tokio::task::block_in_place(NatsCluster::start);
        let url = cluster.url_list();
        Self::on(Nats::Cluster(cluster), url, 3).await
    }

    async fn on(nats: Nats, url: String, replicas: usize) -> Self {
        let id = Uuid::now_v7().simple().to_string();
        let prefix = format!("t{}", &id[20..]);
        let stream = format!("EVENTS_{}", &id[20..]).to_uppercase();
        let servers: Vec<&str> = url.split(',').collect();
        let client = async_nats::connect(servers).await.expect("connect");
        Harness {
            nats,
            url,
            replicas,
            prefix,
            stream,
            clock: Arc::new(ManualClock::new(morning("2026-01-05"))),
            client,
            master_key: MasterKey::generate(),
            checkpoints: Cadence {
                every_commits: Some(4),
                every: None,
            },
        }
    }

    /// The single server (panics on a cluster harness).
    pub(crate) fn server(&mut self) -> &mut NatsServer {
        match &mut self.nats {
            Nats::Server(server) => server,
            Nats::Cluster(_) => panic!("this harness runs on a cluster"),
        }
    }

    /// The cluster (panics on a single-server harness).
    pub(crate) fn cluster(&mut self) -> &mut NatsCluster {
        match &mut self.nats {
            Nats::Cluster(cluster) => cluster,
            Nats::Server(_) => panic!("this harness runs on a single server"),
        }
    }

    /// The stream and bucket settings every instance (and the test's own store) uses.
    pub(crate) fn store_config(&self) -> StoreConfig {
        let mut config = StoreConfig::new(self.stream.clone(), self.subjects());
        config.replicas = self.replicas;
        config
    }

    pub(crate) fn subjects(&self) -> Subjects {
        Subjects::new(self.prefix.clone()).expect("valid prefix")
    }

    /// A cloneable client for sending commands from spawned tasks.
    pub(crate) fn sender(&self) -> Sender {
        Sender {
            client: self.client.clone(),
            subjects: self.subjects(),
        }
    }

    /// Starts an instance of the service and waits until it answers.
    pub(crate) async fn start_instance(&self) -> Instance {
        self.start_instance_with(256).await
    }

    /// Starts an instance processing at most `max_in_flight` commands at once.
    pub(crate) async fn start_instance_with(&self, max_in_flight: usize) -> Instance {
        self.start_configured(max_in_flight, None).await
    }

    /// Starts an instance with its operations HTTP listener on a free loopback port;
    /// returns the instance and that address.
    pub(crate) async fn start_instance_listening(
        &self,
        max_in_flight: usize,
    ) -> (Instance, SocketAddr) {
        let address = free_loopback_address();
        let instance = self.start_configured(max_in_flight, Some(address)).await;
        (instance, address)
    }

    async fn start_configured(
        &self,
        max_in_flight: usize,
        http_listen: Option<SocketAddr>,
    ) -> Instance {
        let config = ServiceConfig {
            nats_url: self.url.clone(),
            subjects: self.subjects(),
            store: self.store_config(),
            engine: EngineConfig::default(),
            max_in_flight,
            service_name: SERVICE_NAME.into(),
            clock: self.clock.clone(),
            // The same key for every instance: they share the stream and the key bucket.
            master_key: self.master_key.clone(),
            http_listen,
            checkpoints: self.checkpoints,
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            run(config, async {
                let _ = stopped.await;
            })
            .await
            .expect("service runs");
        });
        let instance = Instance {
            stop: Some(stop),
            task: Some(task),
        };
        // Ready when a command subject answers.
        for _ in 0..200 {
            let probe = self.client.request(
                self.subjects().command(CommandKind::CaptureLead),
                "{}".into(),
            );
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), probe).await {
                if self.replicas > 1 {
                    self.wait_for_leaders().await;
                }
                return instance;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let ended = instance.task.as_ref().is_some_and(JoinHandle::is_finished);
        panic!(
            "the command service did not become ready (its task {})",
            if ended {
                "ended: see its panic above"
            } else {
                "is still starting"
            }
        );
    }

    /// Waits until the stream and the two KV buckets of a replicated setup have elected
    /// their leaders (bounded: 30 s), so the first appends do not race the elections.
    async fn wait_for_leaders(&self) {
        let js = async_nats::jetstream::new(self.client.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for stream in [
            self.stream.clone(),
            format!("KV_{}_COMMANDS", self.stream),
            format!("KV_{}_KEYS", self.stream),
        ] {
            loop {
                let leader = match js.get_stream(&stream).await {
                    Ok(stream) => stream
                        .cached_info()
                        .cluster
                        .as_ref()
                        .and_then(|cluster| cluster.leader.clone()),
                    Err(_) => None,
                };
                if leader.is_some() {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "stream {stream} elected no leader within 30 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    pub(crate) fn set_today(&self, date: &str) {
        self.clock.set(morning(date));
    }

    /// Sends a raw body to a subject and decodes the reply.
    pub(crate) async fn request_raw(&self, subject: String, body: Vec<u8>) -> CommandReply {
        self.sender().request_raw(subject, body).await
    }

    /// Sends a command with a fresh command id.
    pub(crate) async fn send(
        &self,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
    ) -> CommandReply {
        self.send_with_id(Uuid::now_v7(), kind, roles, payload)
            .await
    }

    pub(crate) async fn send_with_id(
        &self,
        command_id: Uuid,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
    ) -> CommandReply {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let reply = self
                .sender()
                .send_with_id(command_id, kind, roles, payload.clone())
                .await;
            // On a cluster, replica elections and catch-up after a start can briefly
            // refuse a command as `unavailable`; as the contract asks, the same command is
            // resent with its id (bounded). A single server answers as is.
            match &reply {
                CommandReply::Error { error }
                    if self.replicas > 1 && error.code == ErrorCode::Unavailable =>
                {
                    assert!(attempts < 40, "still unavailable after {attempts} attempts");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                _ => return reply,
            }
        }
    }

    /// The raw bytes of every message in the stream, and their count.
    pub(crate) async fn stream_messages(&self) -> Vec<Vec<u8>> {
        let js = async_nats::jetstream::new(self.client.clone());
        let stream = js.get_stream(&self.stream).await.expect("stream exists");
        let mut out = Vec::new();
        let mut next = 1;
        while let Ok(message) = stream
            .direct_get_next_for_subject(format!("{}.events.>", self.prefix), Some(next))
            .await
        {
            next = message.sequence + 1;
            out.push(message.payload.to_vec());
        }
        out
    }

    /// Every commit in the stream, decoded, in log order.
    pub(crate) async fn commits(&self) -> Vec<Commit> {
        self.stream_messages()
            .await
            .iter()
            .map(|bytes| Commit::from_bytes(bytes).expect("every stream message is a commit"))
            .collect()
    }

    /// How many commits the stream holds (from the stream's own per-subject counts of
    /// `<prefix>.events.>`; the checkpoints on `<prefix>.checkpoints` are not commits).
    pub(crate) async fn stream_count(&self) -> u64 {
        let js = async_nats::jetstream::new(self.client.clone());
        let stream = js.get_stream(&self.stream).await.expect("stream exists");
        let mut subjects = stream
            .info_with_subjects(format!("{}.events.>", self.prefix))
            .await
            .expect("stream info");
        let mut commits = 0;
        while let Some(subject) = futures::StreamExt::next(&mut subjects).await {
            let (_, count) = subject.expect("subject counts");
            commits += count as u64;
        }
        commits
    }

    /// The event store, opened on the test's own connection (as an auditor would).
    pub(crate) async fn store(&self) -> JetStreamStore {
        JetStreamStore::open(self.client.clone(), self.store_config())
            .await
            .expect("open the event store")
    }

    /// The vault the instances use (same master key, same key bucket).
    pub(crate) async fn vault(&self) -> Vault {
        let keys = JetStreamKeyStore::open(
            self.client.clone(),
            KeyStoreConfig::for_stream(&self.stream, self.replicas),
        )
        .await
        .expect("open the key bucket");
        Vault::new(&self.master_key, Arc::new(keys))
    }

    /// A loan rebuilt from its history in the log, and its version.
    pub(crate) async fn loan(&self, loan_id: Uuid) -> (Loan, u64) {
        let aggregate = AggregateRef {
            aggregate_type: AggregateType::Loan,
            id: loan_id,
        };
        let history = self.store().await.load(aggregate).await.expect("load");
        // Loan events carry no sensitive fields: no data key is needed to read them.
        let vault = Vault::in_memory(&self.master_key);
        let cached = loan_engine::rebuild(&vault, aggregate, &history)
            .await
            .expect("rebuild");
        match cached.state {
            State::Loan(loan) => (loan, cached.version),
            other => panic!("{loan_id} rebuilt as another aggregate: {other:?}"),
        }
    }

    /// Collects the answers of every service instance to `$SRV.<verb>.loan-commands`
    /// until `expected` instances answered (bounded: panics after 10 s).
    pub(crate) async fn service_answers(&self, verb: &str, expected: usize) -> Vec<Value> {
        self.answers_on(format!("$SRV.{verb}.{SERVICE_NAME}"), expected)
            .await
    }

    /// Collects answers to a request on `subject` until `expected` arrived (bounded:
    /// panics after 10 s).
    pub(crate) async fn answers_on(&self, subject: String, expected: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let answers = self.answers_within(subject.clone(), expected).await;
            if answers.len() >= expected {
                return answers;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {expected} instances answered {subject}: {answers:?}",
                answers.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One round of a request on `subject`: answers until `expected` arrived or 1 s passed.
    async fn answers_within(&self, subject: String, expected: usize) -> Vec<Value> {
        let inbox = self.client.new_inbox();
        let mut answers_sub = self
            .client
            .subscribe(inbox.clone())
            .await
            .expect("subscribe");
        self.client
            .publish_with_reply(subject, inbox, Default::default())
            .await
            .expect("publish");
        self.client.flush().await.expect("flush");
        let mut answers = Vec::new();
        let window = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(window);
        while answers.len() < expected {
            tokio::select! {
                _ = &mut window => break,
                Some(message) = answers_sub.next() => {
                    answers.push(serde_json::from_slice(&message.payload).expect("service answers are JSON"));
                }
            }
        }
        answers
    }

    /// Waits until `expected` instances are registered with all their endpoints.
    pub(crate) async fn wait_for_instances(&self, expected: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let infos = self
                .answers_within(format!("$SRV.INFO.{SERVICE_NAME}"), expected)
                .await;
            let complete = infos
                .iter()
                .filter(|info| {
                    info["endpoints"].as_array().map(Vec::len) == Some(CommandKind::ALL.len())
                })
                .count();
            if complete >= expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{complete} of {expected} instances registered their endpoints within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Sends commands; cheap to clone into spawned tasks.
#[derive(Clone)]
pub(crate) struct Sender {
    pub client: async_nats::Client,
    pub subjects: Subjects,
}

/// The request body of a command.
pub(crate) fn body(command_id: Uuid, roles: &[&str], payload: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "command_id": command_id,
        "actor": { "id": format!("test-{}", roles.first().copied().unwrap_or("nobody")), "roles": roles },
        "correlation_id": Uuid::now_v7(),
        "payload": payload,
    }))
    .expect("serialise")
}

impl Sender {
    /// Sends a raw body to a subject and decodes the reply; panics without one in 10 s.
    pub(crate) async fn request_raw(&self, subject: String, body: Vec<u8>) -> CommandReply {
        match self
            .try_request_raw(subject.clone(), body, Duration::from_secs(10))
            .await
        {
            Ok(reply) => reply,
            Err(error) => panic!("no reply on {subject}: {error}"),
        }
    }

    /// Like [`Sender::request_raw`], but a missing reply is an `Err` (outcome unknown).
    pub(crate) async fn try_request_raw(
        &self,
        subject: String,
        body: Vec<u8>,
        wait: Duration,
    ) -> Result<CommandReply, String> {
        let message = tokio::time::timeout(wait, self.client.request(subject, body.into()))
            .await
            .map_err(|_| format!("no reply within {wait:?}"))?
            .map_err(|e| format!("request failed: {e}"))?;
        Ok(
            serde_json::from_slice(&message.payload).unwrap_or_else(|e| {
                panic!(
                    "reply is not a CommandReply ({e}): {}",
                    String::from_utf8_lossy(&message.payload)
                )
            }),
        )
    }

    pub(crate) async fn send_with_id(
        &self,
        command_id: Uuid,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
    ) -> CommandReply {
        self.request_raw(
            self.subjects.command(kind),
            body(command_id, roles, payload),
        )
        .await
    }

    /// Sends a command and, as the contract allows, resends it with the same command id
    /// while the reply is `conflict` (bounded). Returns the final reply and the number of
    /// `conflict` replies seen.
    pub(crate) async fn send_until_settled(
        &self,
        command_id: Uuid,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
    ) -> (CommandReply, u32) {
        let mut conflicts = 0;
        loop {
            let reply = self
                .send_with_id(command_id, kind, roles, payload.clone())
                .await;
            match &reply {
                CommandReply::Error { error } if error.code == ErrorCode::Conflict => {
                    conflicts += 1;
                    assert!(
                        conflicts < 100,
                        "command {command_id} still conflicts after 100 attempts"
                    );
                }
                _ => return (reply, conflicts),
            }
        }
    }
}

/// The events of an ok reply; panics with the error otherwise.
pub(crate) fn ok(reply: CommandReply) -> Vec<String> {
    match reply {
        CommandReply::Ok { events, .. } => events
            .iter()
            .map(|e| e.event.type_name().to_owned())
            .collect(),
        CommandReply::Error { error } => panic!("command refused: {error:?}"),
    }
}

/// The event envelopes of an ok reply; panics with the error otherwise.
pub(crate) fn ok_events(reply: &CommandReply) -> &[EventEnvelope] {
    match reply {
        CommandReply::Ok { events, .. } => events,
        CommandReply::Error { error } => panic!("command refused: {error:?}"),
    }
}

/// The version of an ok reply; panics with the error otherwise.
pub(crate) fn ok_version(reply: &CommandReply) -> u64 {
    match reply {
        CommandReply::Ok { version, .. } => *version,
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

/// The payload of a valid `register_customer`.
pub(crate) fn registration(customer_id: Uuid) -> Value {
    json!({
        "customer_id": customer_id, "name": "Li Wei", "gender": "male", "birth_date": "1988-07-15",
        "phone": "13912345678", "national_id": national_id("44030419880715123"), "bank_card": "6222021234567890128",
        "region": "guangdong", "employer": "Pearl River Logistics", "risk_appetite": "balanced", "channel": "app",
        "financials": { "monthly_income": "25000.00", "monthly_debt_payments": "2000.00", "total_assets": "400000.00", "total_liabilities": "100000.00" }
    })
}

/// Registers, verifies and credit-assesses a customer; returns its id.
pub(crate) async fn onboard_customer(h: &Harness) -> Uuid {
    let customer_id = Uuid::now_v7();
    ok(h.send(
        CommandKind::RegisterCustomer,
        &["customer_service"],
        registration(customer_id),
    )
    .await);
    ok(h.send(
        CommandKind::RecordCreditAssessment,
        &["system"],
        json!({ "customer_id": customer_id, "score": 735, "source": "pboc", "assessed_on": h.clock_date() }),
    )
    .await);
    ok(h.send(
        CommandKind::VerifyIdentity,
        &["system"],
        json!({ "customer_id": customer_id, "method": "face_match", "verified_on": h.clock_date() }),
    )
    .await);
    customer_id
}

impl Harness {
    /// Today's business date as a string.
    pub(crate) fn clock_date(&self) -> String {
        use loan_engine::clock::Clock;
        (self.clock.now() + chrono::Duration::hours(8))
            .date_naive()
            .to_string()
    }
}

/// The `capture_lead` payload of a 12,000 consumer loan over 12 months.
pub(crate) fn lead(loan_id: Uuid, customer_id: Uuid) -> Value {
    json!({ "loan_id": loan_id, "customer_id": customer_id, "channel": "app", "purpose": "consumer", "requested_amount": "12000.00", "currency": "CNY", "term_months": 12 })
}

/// The annual rate an approval granted (from an `application_approved` event of the reply).
pub(crate) fn approved_rate(reply: &CommandReply) -> String {
    ok_events(reply)
        .iter()
        .find_map(|envelope| match &envelope.event {
            AnyEvent::Loan(LoanEvent::ApplicationApproved { annual_rate, .. }) => {
                Some(annual_rate.to_string())
            }
            _ => None,
        })
        .expect("the reply approves the application")
}

/// The `sign_contract` payload on the approved terms (12,000 over 12 months).
pub(crate) fn contract(loan_id: Uuid, annual_rate: &str, first_due: &str) -> Value {
    json!({ "loan_id": loan_id, "principal": "12000.00", "annual_rate": annual_rate, "term_months": 12, "method": "equal_installment",
            "first_due_date": first_due, "grace_days": 3, "daily_penalty_rate": "0.0005" })
}

/// Takes a new loan of `customer_id` through lead, review, automated approval and
/// signing (12,000 over 12 months at the approved rate, first due `first_due`) on
/// `sign_on`; returns the loan id.
pub(crate) async fn signed_loan(
    h: &Harness,
    customer_id: Uuid,
    sign_on: &str,
    first_due: &str,
) -> Uuid {
    let loan_id = Uuid::now_v7();
    h.set_today(sign_on);
    ok(h.send(
        CommandKind::CaptureLead,
        &["loan_officer"],
        lead(loan_id, customer_id),
    )
    .await);
    ok(h.send(
        CommandKind::SubmitForReview,
        &["loan_officer"],
        json!({ "loan_id": loan_id, "documents": ["id_card", "credit_report", "income_proof"] }),
    )
    .await);
    let decision = h
        .send(
            CommandKind::DecideAutomatically,
            &["system"],
            json!({ "loan_id": loan_id }),
        )
        .await;
    let rate = approved_rate(&decision);
    assert_eq!(
        ok(decision),
        ["automated_decision_made", "application_approved"],
        "the policy approves this customer"
    );
    ok(h.send(
        CommandKind::SignContract,
        &["loan_officer"],
        contract(loan_id, &rate, first_due),
    )
    .await);
    loan_id
}

/// Takes a new loan of `customer_id` through lead, review, automated approval, signing
/// (12,000 over 12 months, first due `first_due`) and disbursement on `disburse_on`.
pub(crate) async fn disbursed_loan(
    h: &Harness,
    customer_id: Uuid,
    disburse_on: &str,
    first_due: &str,
) -> Uuid {
    let loan_id = signed_loan(h, customer_id, disburse_on, first_due).await;
    ok(h.send(
        CommandKind::DisburseLoan,
        &["finance"],
        json!({ "loan_id": loan_id, "payout_reference": format!("PO-{loan_id}"), "value_date": disburse_on }),
    )
    .await);
    loan_id
}

/// The distinct command ids of the commits in the log; panics if one appears twice.
pub(crate) fn command_ids(commits: &[Commit]) -> BTreeSet<Uuid> {
    let mut ids = BTreeSet::new();
    for commit in commits {
        assert!(
            ids.insert(commit.command_id),
            "command {} has more than one commit in the log",
            commit.command_id
        );
    }
    ids
}

/// A loopback address with a port that was free a moment ago.
pub(crate) fn free_loopback_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// An HTTP response: status code and body.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub status: u16,
    pub body: String,
}

impl HttpResponse {
    /// The body as JSON; panics if it is not.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `GET path` over a plain TCP connection (HTTP/1.1, `Connection: close`); an `Err` when
/// nothing listens or the connection breaks.
pub(crate) async fn http_get(address: SocketAddr, path: &str) -> std::io::Result<HttpResponse> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no response in 10 s"))??;
    let raw = String::from_utf8(raw)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no header end: {raw:?}"),
        )
    })?;
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "the test client reads only length-delimited bodies: {head}"
    );
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad status line: {head:?}"),
            )
        })?;
    Ok(HttpResponse {
        status,
        body: body.to_owned(),
    })
}

/// The samples of a Prometheus text exposition: `(name, labels) -> value` (as written).
pub(crate) fn prometheus_samples(
    text: &str,
) -> BTreeMap<(String, BTreeMap<String, String>), String> {
    let mut samples = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
        let value = value.to_owned();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("labels end with }");
                let labels = inner
                    .split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, quoted) = pair.split_once('=').expect("label key=value");
                        (key.to_owned(), quoted.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), BTreeMap::new()),
        };
        samples.insert((name, labels), value);
    }
    samples
}
