//! `loan automation`: the automation rules (process managers) — the daily delinquency
//! sweep, due reminders, the follow-up watch, collections, lead routing, risk alerts and
//! the daily report — the sweep of one date on demand, and the daily reports read back.
//!
//! The rules read the event stream and the clock and act only through the command
//! service and notifications on `<prefix>.notify.<kind>` (docs/automation.md).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use loan_automation::rules::{OfficerRoute, RoutingTable};
use loan_automation::{BusinessCalendar, WorkerConfig};
use loan_command_service::MasterKey;
use loan_contract::Subjects;

use crate::command_service::{LogFormat, install_logging, shutdown_signal};

/// Run the automation rules: delinquency sweep, due reminders, follow-up watch, collections,
/// lead routing, risk alerts, daily report.
#[derive(Debug, Args)]
pub(crate) struct AutomationArgs {
    #[command(subcommand)]
    action: AutomationAction,
}

#[derive(Debug, Subcommand)]
enum AutomationAction {
    /// Run the rules until SIGTERM or Ctrl-C (migrations of schema `automation` run first).
    ///
    /// Each step folds new commits, runs the day rules for every calendar day since the
    /// last one run (a missed day is caught up, in order), and sends the actions with
    /// their stable ids. A killed worker resumes with nothing missed or repeated.
    Run(Box<RunArgs>),
    /// Sweep one date now: evaluate_delinquency for every loan in arrears beyond grace on
    /// DATE. Idempotent per loan and date (the regular sweep of DATE repeats nothing).
    Sweep(Box<SweepArgs>),
    /// Print the daily reports (read model automation.daily_reports) of a date range, one
    /// JSON object per line.
    DailyReport(DailyReportArgs),
}

#[derive(Debug, Args)]
struct DailyReportArgs {
    /// PostgreSQL URL of the automation's database.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// First business date (YYYY-MM-DD).
    #[arg(long)]
    from: NaiveDate,
    /// Last business date (default: FROM).
    #[arg(long)]
    to: Option<NaiveDate>,
}

#[derive(Debug, Args)]
struct Settings {
    /// NATS server URL(s), comma-separated for a cluster.
    #[arg(long, env = "LOAN_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Subject prefix of this deployment.
    #[arg(long, env = "LOAN_SUBJECT_PREFIX", default_value = "lending")]
    prefix: String,
    /// JetStream stream holding the event log.
    #[arg(long, env = "LOAN_STREAM", default_value = "LENDING_EVENTS")]
    stream: String,
    /// Replicas of the stream (and of the notification stream created here).
    #[arg(long, env = "LOAN_STREAM_REPLICAS", default_value_t = 1)]
    replicas: usize,
    /// Stream capturing <PREFIX>.notify.> (default: <STREAM>_NOTIFICATIONS).
    #[arg(long, env = "LOAN_NOTIFICATION_STREAM")]
    notification_stream: Option<String>,
    /// Duplicate window of the notification stream, in seconds.
    #[arg(
        long,
        env = "LOAN_NOTIFICATION_DUPLICATE_WINDOW_SECS",
        default_value_t = 86_400
    )]
    notification_duplicate_window_secs: u64,
    /// PostgreSQL URL: the worker keeps its progress and outbox in schema `automation`.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// File holding the master key (the command service's): used only to mask phones.
    #[arg(long, env = "LOAN_MASTER_KEY_FILE")]
    master_key_file: std::path::PathBuf,
    /// Worker name: its progress row and durable consumer (automation-<WORKER>).
    #[arg(long, env = "LOAN_AUTOMATION_WORKER", default_value = "default")]
    worker: String,
    /// Offset of the lender's business day from UTC, in hours.
    #[arg(
        long,
        env = "LOAN_BUSINESS_UTC_OFFSET_HOURS",
        default_value_t = 8,
        allow_negative_numbers = true
    )]
    business_utc_offset_hours: i32,
    /// Weekend days, comma-separated (`none` for none).
    #[arg(long, env = "LOAN_AUTOMATION_WEEKEND", default_value = "sat,sun")]
    weekend: String,
    /// Holidays (no sweep), comma-separated dates.
    #[arg(long, env = "LOAN_AUTOMATION_HOLIDAYS", value_delimiter = ',')]
    holidays: Vec<NaiveDate>,
    /// Days before a due date the reminder goes out.
    #[arg(long, env = "LOAN_AUTOMATION_REMINDER_DAYS", default_value_t = 3)]
    reminder_days_before: u32,
    /// Days without any event after which a lead or review is reported.
    #[arg(long, env = "LOAN_AUTOMATION_FOLLOW_UP_DAYS", default_value_t = 3)]
    follow_up_after_days: u32,
    /// Officer → manager mapping, comma-separated OFFICER=MANAGER pairs.
    #[arg(long, env = "LOAN_AUTOMATION_MANAGERS", value_delimiter = ',')]
    managers: Vec<String>,
    /// Who hears about unassigned leads and officers without a manager.
    #[arg(long, env = "LOAN_AUTOMATION_DEFAULT_MANAGER")]
    default_manager: Option<String>,
    /// A loan more than this many days past due gets a collection case.
    #[arg(
        long,
        env = "LOAN_AUTOMATION_COLLECTION_AFTER_DAYS",
        default_value_t = 1
    )]
    collection_after_days: u32,
    /// The team new collection cases are assigned to (a label: a-z, 0-9, _ - . : @).
    #[arg(
        long,
        env = "LOAN_AUTOMATION_COLLECTION_TEAM",
        default_value = "collections"
    )]
    collection_team: String,
    /// Lead routing table, a JSON file: {"officers": [{"officer_id", "regions", "purposes",
    /// "capacity"}], "default_officer"} (docs/automation.md). Without it and without
    /// --route / --default-officer, lead routing is off.
    #[arg(long, env = "LOAN_AUTOMATION_ROUTING_FILE")]
    routing_file: Option<std::path::PathBuf>,
    /// Routes added to the table, comma-separated OFFICER:REGIONS:PURPOSES:CAPACITY (lists
    /// joined with +, * for all), e.g. o-1:guangdong+fujian:consumer:20.
    #[arg(long, env = "LOAN_AUTOMATION_ROUTES", value_delimiter = ',')]
    route: Vec<String>,
    /// Who gets a lead no officer can take (otherwise it is reported: lead_unrouted).
    #[arg(long, env = "LOAN_AUTOMATION_DEFAULT_OFFICER")]
    default_officer: Option<String>,
    /// An overdue rate (overdue ÷ loans in servicing) above this fires a risk_alert; `off`.
    #[arg(
        long,
        env = "LOAN_AUTOMATION_OVERDUE_RATE_THRESHOLD",
        default_value = "0.05"
    )]
    overdue_rate_threshold: String,
    /// A credit score drop of more than this many points fires credit_score_drop; `off`.
    #[arg(long, env = "LOAN_AUTOMATION_CREDIT_DROP_POINTS", default_value = "50")]
    credit_drop_points: String,
    /// Recipients of the risk alerts, comma-separated.
    #[arg(
        long,
        env = "LOAN_AUTOMATION_RISK_RECIPIENTS",
        value_delimiter = ',',
        default_value = "risk"
    )]
    risk_recipients: Vec<String>,
    /// Recipients of the daily report, comma-separated.
    #[arg(
        long,
        env = "LOAN_AUTOMATION_REPORT_RECIPIENTS",
        value_delimiter = ',',
        default_value = "management"
    )]
    report_recipients: Vec<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    settings: Settings,
    /// First day a fresh worker runs the day rules for (default: today).
    #[arg(long, env = "LOAN_AUTOMATION_START_DATE")]
    start_date: Option<NaiveDate>,
    /// Seconds between steps.
    #[arg(long, env = "LOAN_AUTOMATION_POLL_SECS", default_value_t = 5)]
    poll_secs: u64,
    /// Log format on stderr.
    #[arg(long, env = "LOAN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
}

#[derive(Debug, Args)]
struct SweepArgs {
    #[command(flatten)]
    settings: Settings,
    /// The date to sweep (YYYY-MM-DD); not after today.
    #[arg(long)]
    date: NaiveDate,
}

impl Settings {
    fn config(&self) -> anyhow::Result<WorkerConfig> {
        let subjects = Subjects::new(self.prefix.clone())
            .map_err(anyhow::Error::msg)
            .context("--prefix")?;
        let master_key = MasterKey::read_file(&self.master_key_file)
            .with_context(|| format!("--master-key-file {}", self.master_key_file.display()))?;
        let mut config = WorkerConfig::new(
            self.nats_url.clone(),
            subjects,
            self.stream.clone(),
            self.database_url.clone(),
            master_key,
        );
        config.replicas = self.replicas;
        if let Some(stream) = &self.notification_stream {
            config.notification_stream = stream.clone();
        }
        config.notification_duplicate_window =
            Duration::from_secs(self.notification_duplicate_window_secs);
        config.worker = self.worker.clone();
        config.business_offset =
            chrono::FixedOffset::east_opt(self.business_utc_offset_hours * 3600)
                .context("--business-utc-offset-hours must be between -23 and 23")?;
        let weekend = BusinessCalendar::parse_weekend(&self.weekend).context("--weekend")?;
        config.rules.calendar = BusinessCalendar::new(weekend, self.holidays.iter().copied());
        config.rules.reminder_days_before = self.reminder_days_before;
        config.rules.follow_up_after_days = self.follow_up_after_days;
        config.rules.managers = self
            .managers
            .iter()
            .filter(|pair| !pair.trim().is_empty())
            .map(|pair| {
                pair.split_once('=')
                    .map(|(o, m)| (o.trim().to_owned(), m.trim().to_owned()))
                    .with_context(|| format!("--managers: {pair:?} is not OFFICER=MANAGER"))
            })
            .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
        config.rules.default_manager = self.default_manager.clone();
        config.rules.collection_after_days = self.collection_after_days;
        let team = &self.collection_team;
        if team.is_empty()
            || team.len() > 64
            || !team
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.:@".contains(&b))
        {
            anyhow::bail!("--collection-team {team:?}: 1 to 64 characters of a-z, 0-9, _ - . : @");
        }
        config.rules.collection_team = team.clone();
        config.rules.routing = self.routing()?;
        config.rules.overdue_rate_threshold = match self.overdue_rate_threshold.trim() {
            "off" => None,
            text => Some(
                loan_automation::rules::parse_threshold(text)
                    .context("--overdue-rate-threshold")?,
            ),
        };
        config.rules.credit_drop_points = match self.credit_drop_points.trim() {
            "off" => None,
            text => Some(text.parse().with_context(|| {
                format!("--credit-drop-points {text:?}: a whole number of points or `off`")
            })?),
        };
        let names = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
                .collect()
        };
        config.rules.risk_recipients = names(&self.risk_recipients);
        config.rules.report_recipients = names(&self.report_recipients);
        Ok(config)
    }

    fn routing(&self) -> anyhow::Result<RoutingTable> {
        let mut table = match &self.routing_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--routing-file {}", path.display()))?;
                RoutingTable::from_json(&text)
                    .with_context(|| format!("--routing-file {}", path.display()))?
            }
            None => RoutingTable::default(),
        };
        for route in self.route.iter().filter(|r| !r.trim().is_empty()) {
            table
                .officers
                .push(OfficerRoute::parse(route).context("--route")?);
        }
        if let Some(officer) = &self.default_officer {
            table.default_officer = Some(officer.trim().to_owned());
        }
        table.validate().context("--route / --routing-file")?;
        Ok(table)
    }
}

pub(crate) fn run(args: &AutomationArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match &args.action {
        AutomationAction::Run(run) => {
            install_logging(run.log_format);
            let mut config = run.settings.config()?;
            config.start_date = run.start_date;
            config.poll_interval = Duration::from_secs(run.poll_secs.max(1));
            let clock = Arc::new(loan_automation::clock::SystemClock);
            runtime
                .block_on(loan_automation::run(config, clock, shutdown_signal()))
                .context("the automation worker failed")
        }
        AutomationAction::Sweep(sweep) => {
            let mut config = sweep.settings.config()?;
            // Its own progress row and consumer: never moves a running worker's.
            config.worker = format!("{}-on-demand", config.worker);
            let (new, report) = runtime
                .block_on(loan_automation::sweep(config, sweep.date))
                .with_context(|| format!("sweeping {}", sweep.date))?;
            println!(
                "swept {}: {new} new evaluation(s); {} answered ok, {} refused, {} still pending",
                sweep.date, report.commands_ok, report.commands_refused, report.pending
            );
            Ok(())
        }
        AutomationAction::DailyReport(args) => {
            let through = args.to.unwrap_or(args.from);
            let rows = runtime.block_on(async {
                let pool = sqlx::PgPool::connect(&args.database_url)
                    .await
                    .context("connecting to --database-url")?;
                let rows = loan_automation::outbox::daily_reports(&pool, args.from, through)
                    .await
                    .context("reading automation.daily_reports")?;
                pool.close().await;
                anyhow::Ok(rows)
            })?;
            for row in rows {
                println!(
                    "{}",
                    serde_json::json!({
                        "business_date": row.business_on,
                        "new_leads": row.new_leads,
                        "approvals": row.approvals,
                        "disbursed_amount": row.disbursed_amount.to_string(),
                        "repaid_amount": row.repaid_amount.to_string(),
                        "newly_overdue": row.newly_overdue,
                        "active_loans": row.active_loans,
                        "outstanding_principal": row.outstanding_principal.to_string(),
                        "par30_principal": row.par30_principal.to_string(),
                        "par30": row.par30.to_string(),
                        "notification_id": row.notification_id,
                    })
                );
            }
            Ok(())
        }
    }
}
