//! `loan automation`: the automation rules (process managers) — the daily delinquency
//! sweep, due reminders, the follow-up watch, collections — and the sweep of one date on
//! demand.
//!
//! The rules read the event stream and the clock and act only through the command
//! service and notifications on `<prefix>.notify.<kind>` (docs/automation.md).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use loan_automation::{BusinessCalendar, WorkerConfig};
use loan_command_service::MasterKey;
use loan_contract::Subjects;

use crate::command_service::{LogFormat, install_logging, shutdown_signal};

/// Run the automation rules: delinquency sweep, due reminders, follow-up watch.
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
    Run(RunArgs),
    /// Sweep one date now: evaluate_delinquency for every loan in arrears beyond grace on
    /// DATE. Idempotent per loan and date (the regular sweep of DATE repeats nothing).
    Sweep(SweepArgs),
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
        Ok(config)
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
    }
}
