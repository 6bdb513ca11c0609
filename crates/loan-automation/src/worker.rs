//! The I/O shell around the pure rules: read the stream, run the days, send the actions.
//!
//! One step of a worker ([`Worker::run_once`]):
//! 1. **consume**: fold every commit after the stored progress into the [`Portfolio`]
//!    (its own durable pull consumer `automation-<worker>`), and store the new stream
//!    sequence
//!    (a credit assessment folded here may fire a `credit_score_drop`: stored in the
//!    same transaction as the sequence that caused it);
//! 2. **days**: for each calendar day after the last one run, up to today, in order,
//!    compute the day's actions ([`rules::on_day`], the overdue-rate alerts, and the
//!    daily report of the day before, which is then over) and store them in the outbox
//!    in the same transaction as "this day is done" — so a missed day is caught up, in
//!    order;
//! 3. **leads**: route every lead without an officer ([`rules::lead_routing`]), counting
//!    the rule's earlier assignments the stream does not show yet;
//! 4. **dispatch**: send every pending action with its deterministic id, and mark it
//!    completed once the receiver answered.
//!
//! A worker killed anywhere restarts from the stored progress: state is refolded from
//! the stream, days already run are not run again, pending actions are resent with the
//! same ids and de-duplicated by their receivers. See [`crate::outbox`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use chrono::{FixedOffset, NaiveDate};
use futures::StreamExt;
use loan_contract::command::CommandEnvelope;
use loan_contract::{CommandReply, NotificationKind, Subjects};
use loan_domain::{Actor, CommandKind, Role};
use loan_engine::clock::Clock;
use loan_engine::{CommitReader, MasterKey, Vault};
use loan_store::Commit;
use loan_store::keys::{JetStreamKeyStore, KeyStoreConfig};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tracing::{debug, info, warn};

use crate::AutomationError;
use crate::calendar::days_after;
use crate::outbox::{self, Pending, Progress};
use crate::portfolio::Portfolio;
use crate::rules::{self, Action, RuleConfig};

/// Everything a worker needs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub nats_url: String,
    pub subjects: Subjects,
    /// The event stream (the log).
    pub stream: String,
    /// Replicas of the event stream (for the key bucket and the notification stream).
    pub replicas: usize,
    /// The stream capturing `<prefix>.notify.>`, created if missing.
    pub notification_stream: String,
    /// Its duplicate window: a notification re-published within it is dropped.
    pub notification_duplicate_window: Duration,
    pub database_url: String,
    /// Name of this worker: its progress row and its consumer (`automation-<worker>`).
    pub worker: String,
    pub rules: RuleConfig,
    /// The lender's time zone (the business date of "now").
    pub business_offset: FixedOffset,
    /// Unwraps customers' data keys, only to mask their phone in reminders.
    pub master_key: MasterKey,
    /// The first day to run on a fresh worker (default: today).
    pub start_date: Option<NaiveDate>,
    /// The system actor commands are sent as (role `system`).
    pub actor_id: String,
    /// How long to wait for the command service's reply before retrying later.
    pub request_timeout: Duration,
    /// Pause between steps of [`run`] when there is nothing to do.
    pub poll_interval: Duration,
}

impl WorkerConfig {
    /// Defaults for everything but where things are.
    pub fn new(
        nats_url: impl Into<String>,
        subjects: Subjects,
        stream: impl Into<String>,
        database_url: impl Into<String>,
        master_key: MasterKey,
    ) -> Self {
        let stream = stream.into();
        WorkerConfig {
            nats_url: nats_url.into(),
            notification_stream: format!("{stream}_NOTIFICATIONS"),
            subjects,
            stream,
            replicas: 1,
            notification_duplicate_window: Duration::from_secs(24 * 3600),
            database_url: database_url.into(),
            worker: "default".into(),
            rules: RuleConfig::default(),
            business_offset: FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset"),
            master_key,
            start_date: None,
            actor_id: "svc:automation".into(),
            request_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// What a dispatch round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Commands answered `ok` (first time or as a repeat).
    pub commands_ok: usize,
    /// Commands refused for good (the loan moved on); recorded with their code.
    pub commands_refused: usize,
    /// Notifications acknowledged by the notification stream.
    pub published: usize,
    /// Notifications the stream dropped as duplicates (a re-publish after a crash).
    pub duplicates: usize,
    /// Actions left pending after a transient failure.
    pub pending: usize,
}

/// A running worker: connections, the rules' state and progress.
pub struct Worker {
    config: WorkerConfig,
    client: async_nats::Client,
    js: jetstream::Context,
    pool: PgPool,
    vault: Vault,
    portfolio: Portfolio,
    /// Stream sequence folded into `portfolio` (may run ahead of the stored progress
    /// only during [`Worker::consume`]).
    folded: u64,
    progress: Progress,
    consumer: Option<consumer::PullConsumer>,
    /// Actions caused by commits folded beyond the stored progress (credit score drops),
    /// stored with the progress by [`Worker::consume`].
    triggered: Vec<Action>,
    /// Whether folding fires the event rules (not for an on-demand sweep, which folds
    /// the stream only to know the loans).
    event_rules: bool,
}

impl Worker {
    /// Connects, runs the migrations, creates the notification stream if needed, and
    /// refolds the state up to the stored progress.
    pub async fn open(config: WorkerConfig) -> Result<Self, AutomationError> {
        let servers: Vec<&str> = config.nats_url.split(',').map(str::trim).collect();
        let client =
            async_nats::connect(servers)
                .await
                .map_err(|source| AutomationError::Connect {
                    url: config.nats_url.clone(),
                    source,
                })?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&config.database_url)
            .await?;
        Self::with(config, client, pool).await
    }

    /// [`Worker::open`] on existing connections.
    pub async fn with(
        config: WorkerConfig,
        client: async_nats::Client,
        pool: PgPool,
    ) -> Result<Self, AutomationError> {
        outbox::migrate(&pool).await?;
        let js = jetstream::new(client.clone());
        js.get_or_create_stream(stream::Config {
            name: config.notification_stream.clone(),
            description: Some(
                "Loan engine: notifications of the automation rules for gateways (SMS, e-mail, app); Nats-Msg-Id = the notification id".into(),
            ),
            subjects: vec![config.subjects.all_notifications()],
            storage: stream::StorageType::File,
            num_replicas: config.replicas,
            duplicate_window: config.notification_duplicate_window,
            max_age: Duration::from_secs(30 * 24 * 3600).max(config.notification_duplicate_window),
            ..Default::default()
        })
        .await
        .map_err(|e| AutomationError::nats("creating the notification stream", e))?;
        let keys = JetStreamKeyStore::open(
            client.clone(),
            KeyStoreConfig::for_stream(&config.stream, config.replicas),
        )
        .await?;
        let vault = Vault::new(&config.master_key, Arc::new(keys));
        let progress = outbox::progress(&pool, &config.worker).await?;
        let mut worker = Worker {
            config,
            client,
            js,
            pool,
            vault,
            portfolio: Portfolio::default(),
            folded: 0,
            progress,
            consumer: None,
            triggered: Vec::new(),
            event_rules: true,
        };
        worker.refold().await?;
        Ok(worker)
    }

    pub fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }

    pub fn progress(&self) -> Progress {
        self.progress
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Folds the stream from the start up to the stored progress (state only: the
    /// actions those commits caused are already in the outbox).
    async fn refold(&mut self) -> Result<(), AutomationError> {
        let head = self.stream_head().await?;
        let target = self.progress.last_sequence.min(head);
        if target < self.progress.last_sequence {
            // The stream holds less than the progress says (a recreated stream).
            warn!(worker = %self.config.worker, head, progress = self.progress.last_sequence, "stream shorter than the stored progress");
        }
        self.fold_through(target).await
    }

    /// The position of the event stream's last commit now (the stream may end with a
    /// checkpoint on `<prefix>.checkpoints`, which the worker's consumer never receives).
    async fn stream_head(&self) -> Result<u64, AutomationError> {
        let stream = self.js.get_stream(&self.config.stream).await.map_err(|e| {
            AutomationError::nats(format!("opening stream {}", self.config.stream), e)
        })?;
        loan_store::jetstream::last_commit_position(&stream, &self.config.subjects)
            .await
            .map_err(|e| AutomationError::nats("reading the last commit's position", e))
    }

    /// Folds commits until `target` (a stream sequence) is folded.
    async fn fold_through(&mut self, target: u64) -> Result<(), AutomationError> {
        let mut empty_batches = 0;
        while self.folded < target {
            if self.fold_batch(Some(target)).await? == 0 {
                empty_batches += 1;
                if empty_batches >= 20 {
                    self.consumer = None;
                    return Err(AutomationError::nats(
                        "reading the stream",
                        format!(
                            "no commit after sequence {} although the stream reaches {target}",
                            self.folded
                        ),
                    ));
                }
            } else {
                empty_batches = 0;
            }
        }
        Ok(())
    }

    /// Step 1: folds every commit in the stream now and stores the new stream sequence
    /// (commits appended meanwhile are left to the next step). Returns how many commits
    /// were folded.
    pub async fn consume(&mut self) -> Result<u64, AutomationError> {
        let before = self.folded;
        let head = self.stream_head().await?;
        self.fold_through(head).await?;
        if self.folded > self.progress.last_sequence {
            let progress = Progress {
                last_sequence: self.folded,
                ..self.progress
            };
            let triggered = std::mem::take(&mut self.triggered);
            if let Err(error) =
                outbox::commit(&self.pool, &self.config.worker, progress, &triggered).await
            {
                self.triggered = triggered;
                return Err(error);
            }
            if !triggered.is_empty() {
                info!(worker = %self.config.worker, actions = triggered.len(), "event rules fired");
            }
            self.progress = progress;
        }
        Ok(self.folded - before)
    }

    /// Reads one batch after `self.folded` (at most up to `limit`) and folds it.
    async fn fold_batch(&mut self, limit: Option<u64>) -> Result<usize, AutomationError> {
        let consumer = self.ensure_consumer().await?;
        // Ask for exactly what is missing (at most 500): the batch then ends as soon as
        // it is there instead of waiting for its expiry.
        let wanted = limit.map_or(500, |limit| limit.saturating_sub(self.folded).clamp(1, 500));
        let mut messages = consumer
            .batch()
            .max_messages(usize::try_from(wanted).unwrap_or(500))
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .map_err(|e| AutomationError::nats("fetching commits", e))?;
        let mut batch = Vec::new();
        let mut last = None;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| AutomationError::nats("receiving commits", e))?;
            let position = message
                .info()
                .map_err(|e| AutomationError::nats("reading message metadata", e))?
                .stream_sequence;
            if limit.is_some_and(|limit| position > limit) {
                // Beyond the refold target: read again by the next consume.
                self.consumer = None;
                break;
            }
            batch.push((position, message.payload.clone()));
            last = Some(message);
        }
        let mut reader = CommitReader::new(&self.vault);
        let mut folded = 0;
        for (position, payload) in batch {
            if position <= self.folded {
                continue; // redelivered
            }
            match Commit::from_bytes(&payload) {
                Ok(commit) => match reader.decode_events(position, commit.events).await {
                    Ok(events) => {
                        let fresh = self.event_rules && position > self.progress.last_sequence;
                        for envelope in &events {
                            let reassessed =
                                self.portfolio.apply(envelope, self.config.business_offset);
                            let Some(change) = reassessed.filter(|_| fresh) else {
                                continue;
                            };
                            if self
                                .config
                                .start_date
                                .is_some_and(|start| change.recorded_on < start)
                            {
                                continue; // history before the worker's first day
                            }
                            self.triggered.extend(rules::credit_score_drop(
                                &self.portfolio,
                                &change,
                                &self.config.rules,
                            ));
                        }
                    }
                    Err(loan_store::StoreError::Unavailable { context, .. }) => {
                        self.consumer = None;
                        return Err(AutomationError::nats(
                            context,
                            "the key store is unavailable",
                        ));
                    }
                    Err(error) => {
                        warn!(position, %error, "a commit cannot be decoded; the rules skip it")
                    }
                },
                Err(error) => warn!(position, %error, "not a commit; the rules skip it"),
            }
            self.folded = position;
            folded += 1;
        }
        if let Some(last) = last {
            if let Err(error) = last.ack().await {
                debug!(%error, "acknowledgement failed (the stored progress decides, not the consumer)");
            }
        }
        Ok(folded)
    }

    /// The durable consumer, recreated at the folded position + 1 when there is none:
    /// the stored progress decides where reading resumes, not the consumer's own state.
    async fn ensure_consumer(&mut self) -> Result<consumer::PullConsumer, AutomationError> {
        if let Some(consumer) = &self.consumer {
            return Ok(consumer.clone());
        }
        let stream = self.js.get_stream(&self.config.stream).await.map_err(|e| {
            AutomationError::nats(format!("opening stream {}", self.config.stream), e)
        })?;
        let name = format!("automation-{}", self.config.worker);
        let _ = stream.delete_consumer(&name).await;
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name.clone()),
                description: Some(
                    "Automation rules (resumes from automation.workers.last_sequence)".into(),
                ),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: self.folded + 1,
                },
                ack_policy: consumer::AckPolicy::All,
                ack_wait: Duration::from_secs(120),
                filter_subject: self.config.subjects.all_events(),
                ..Default::default()
            })
            .await
            .map_err(|e| AutomationError::nats(format!("creating consumer {name}"), e))?;
        self.consumer = Some(consumer.clone());
        Ok(consumer)
    }

    /// Step 2: runs the day rules for every day after the last one run, up to `today`, in
    /// order; each day's actions and "day done" in one transaction. Returns the number
    /// of new actions.
    pub async fn run_days(&mut self, today: NaiveDate) -> Result<usize, AutomationError> {
        let after = match self.progress.swept_through {
            Some(day) => day,
            None => self
                .config
                .start_date
                .unwrap_or(today)
                .pred_opt()
                .unwrap_or(today),
        };
        let mut inserted = 0;
        for day in days_after(after, today) {
            let mut actions = rules::on_day(&self.portfolio, day, &self.config.rules);
            let alerted = outbox::alerted_segments(&self.pool).await?;
            actions.extend(rules::overdue_rate_alerts(
                &self.portfolio,
                day,
                &self.config.rules,
                &alerted,
            ));
            // Day end: running day D means D - 1 is over (the first day a fresh worker
            // runs has no day before it of its own).
            if let (Some(_), Some(ended)) = (self.progress.swept_through, day.pred_opt()) {
                actions.push(rules::daily_report(
                    &self.portfolio,
                    ended,
                    &self.config.rules,
                ));
            }
            let progress = Progress {
                swept_through: Some(day),
                ..self.progress
            };
            let new = outbox::commit(&self.pool, &self.config.worker, progress, &actions).await?;
            self.progress = progress;
            info!(worker = %self.config.worker, %day, actions = actions.len(), new, "day run");
            inserted += new;
        }
        Ok(inserted)
    }

    /// Step 4: sends pending actions in order (at most `limit`, all when `None`). Stops
    /// at the first transient failure; those actions stay pending.
    pub async fn dispatch(
        &mut self,
        limit: Option<usize>,
    ) -> Result<DispatchReport, AutomationError> {
        let mut report = DispatchReport::default();
        let mut budget = limit.unwrap_or(usize::MAX);
        while budget > 0 {
            let take = i64::try_from(budget.min(200)).unwrap_or(200);
            let batch = outbox::pending(&self.pool, take).await?;
            if batch.is_empty() {
                break;
            }
            for action in batch {
                budget = budget.saturating_sub(1);
                match self.send(&action).await {
                    Ok(Sent::CommandOk) => report.commands_ok += 1,
                    Ok(Sent::Refused(code)) => {
                        report.commands_refused += 1;
                        info!(action_id = %action.action_id, rule = %action.rule, code, "command refused; recorded as final");
                    }
                    Ok(Sent::Published) => report.published += 1,
                    Ok(Sent::Duplicate) => report.duplicates += 1,
                    Err(error) => {
                        warn!(action_id = %action.action_id, %error, "sending failed; the action stays pending");
                        outbox::failed(&self.pool, action.action_id, &error.to_string()).await?;
                        report.pending = outbox::pending(&self.pool, i64::MAX).await?.len();
                        return Ok(report);
                    }
                }
            }
        }
        Ok(report)
    }

    async fn send(&self, action: &Pending) -> Result<Sent, AutomationError> {
        let sent = match action.effect.as_str() {
            "command" => self.send_command(action).await?,
            _ => self.publish(action).await?,
        };
        let outcome = match &sent {
            Sent::CommandOk => "ok".to_owned(),
            Sent::Refused(code) => code.clone(),
            Sent::Published => "published".to_owned(),
            Sent::Duplicate => "published (duplicate dropped)".to_owned(),
        };
        outbox::complete(&self.pool, action.action_id, &outcome).await?;
        Ok(sent)
    }

    async fn send_command(&self, action: &Pending) -> Result<Sent, AutomationError> {
        let kind = CommandKind::ALL
            .into_iter()
            .find(|kind| kind.name() == action.name)
            .ok_or_else(|| AutomationError::Config(format!("unknown command {}", action.name)))?;
        let envelope = CommandEnvelope {
            command_id: action.action_id,
            actor: Actor::new(self.config.actor_id.clone(), [Role::System]),
            correlation_id: action.correlation_id,
            causation_id: None,
            expected_version: None,
            payload: action.body.clone(),
        };
        let body = serde_json::to_vec(&envelope)?;
        let request = self
            .client
            .request(self.config.subjects.command(kind), body.into());
        let message = tokio::time::timeout(self.config.request_timeout, request)
            .await
            .map_err(|_| AutomationError::nats("command request", "no reply in time"))?
            .map_err(|e| AutomationError::nats("command request", e))?;
        let reply: CommandReply = serde_json::from_slice(&message.payload)?;
        match reply {
            CommandReply::Ok { .. } => Ok(Sent::CommandOk),
            CommandReply::Error { error } if error.code.retryable() => Err(AutomationError::nats(
                "command service",
                format!("{:?}: {}", error.code, error.message),
            )),
            CommandReply::Error { error } => Ok(Sent::Refused(
                serde_json::to_value(error.code)?
                    .as_str()
                    .unwrap_or("refused")
                    .to_owned(),
            )),
        }
    }

    async fn publish(&self, action: &Pending) -> Result<Sent, AutomationError> {
        let kind = NotificationKind::ALL
            .into_iter()
            .find(|kind| kind.name() == action.name)
            .ok_or_else(|| {
                AutomationError::Config(format!("unknown notification {}", action.name))
            })?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", action.action_id.to_string().as_str());
        let body = serde_json::to_vec(&action.body)?;
        let ack = self
            .js
            .publish_with_headers(
                self.config.subjects.notification(kind),
                headers,
                body.into(),
            )
            .await
            .map_err(|e| AutomationError::nats("publishing a notification", e))?
            .await
            .map_err(|e| AutomationError::nats("notification acknowledgement", e))?;
        Ok(if ack.duplicate {
            Sent::Duplicate
        } else {
            Sent::Published
        })
    }

    /// Step 3: lead routing on `today` over the state folded so far; the assignments go
    /// to the outbox (a lead's id names its assignment: deciding it again inserts
    /// nothing). Returns the number of new actions.
    pub async fn route_leads(&mut self, today: NaiveDate) -> Result<usize, AutomationError> {
        if self.config.rules.routing.is_empty() {
            return Ok(0);
        }
        let routed = outbox::routed_leads(&self.pool).await?;
        let actions = rules::lead_routing(&self.portfolio, today, &self.config.rules, &routed);
        if actions.is_empty() {
            return Ok(0);
        }
        let new = outbox::record(&self.pool, &actions).await?;
        info!(worker = %self.config.worker, %today, actions = actions.len(), new, "leads routed");
        Ok(new)
    }

    /// One full step: consume, run the days through `today`, route the leads, send.
    pub async fn run_once(&mut self, today: NaiveDate) -> Result<DispatchReport, AutomationError> {
        self.consume().await?;
        self.run_days(today).await?;
        self.route_leads(today).await?;
        self.dispatch(None).await
    }

    /// The delinquency sweep of `date` on demand: its actions go to the outbox (repeats
    /// ignored: the regular sweep of that date later finds them there) and are sent. The
    /// worker's day progress does not move, and no event rule fires (the credit score
    /// drops are the running worker's).
    pub async fn sweep(
        &mut self,
        date: NaiveDate,
    ) -> Result<(usize, DispatchReport), AutomationError> {
        self.event_rules = false;
        self.consume().await?;
        let actions: Vec<Action> =
            rules::delinquency_sweep(&self.portfolio, date, &self.config.rules);
        let new = outbox::record(&self.pool, &actions).await?;
        let report = self.dispatch(None).await?;
        Ok((new, report))
    }
}

enum Sent {
    CommandOk,
    Refused(String),
    Published,
    Duplicate,
}

/// Runs a worker until `shutdown` completes: a step whenever there is something to do,
/// today taken from `clock` in the lender's time zone. Transient failures are logged and
/// the step is retried after the poll interval.
pub async fn run(
    config: WorkerConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AutomationError> {
    let poll = config.poll_interval;
    let offset = config.business_offset;
    let mut worker = Worker::open(config).await?;
    tokio::pin!(shutdown);
    loop {
        let today = clock.now().with_timezone(&offset).date_naive();
        if let Err(error) = worker.run_once(today).await {
            warn!(%error, "automation step failed; retrying");
            worker.consumer = None;
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
    info!("automation worker stopped");
    Ok(())
}

/// `loan automation sweep --date D`: the delinquency sweep of one date, on demand.
pub async fn sweep(
    config: WorkerConfig,
    date: NaiveDate,
) -> Result<(usize, DispatchReport), AutomationError> {
    Worker::open(config).await?.sweep(date).await
}
