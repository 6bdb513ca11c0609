//! `loan audit`: the auditors' commands — export, verify, import, history, state, report —
//! as thin shells around the `loan-audit` library (docs/audit.md).
//!
//! Every reading command takes a live JetStream stream (`--nats`, `--stream`,
//! `--subject-prefix`), an export file (`--export`) or an embedded SQLite store
//! (`--embedded`, e.g. one `import` wrote), so anything answered from the live log can be
//! reproduced offline. Exit codes: 0 success (and, for `verify`, an intact history); 3
//! when `verify` finds the history tampered with (and `import` refuses it); 2 for invalid
//! input; 1 when the tool itself failed.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use loan_audit::export::{Manifest, Selection, export};
use loan_audit::history::{Disclosure, HistoryRow, Subject, history};
use loan_audit::import::{ImportOutcome, import_into};
use loan_audit::log::{EmbeddedLog, Knowledge, LiveLog, LogReader};
use loan_audit::timeline::{DelinquencyReport, LoanAt, customer_state, delinquency_report, state};
use loan_audit::verify::{
    Verification, compare, verifier_for, verify_chains, verify_export, verify_log,
    verify_manifest_against_live,
};
use loan_audit::{MasterKey, Vault};
use loan_domain::AggregateType;
use loan_store::{AggregateRef, StoreError};
use uuid::Uuid;

use crate::failure::InvalidInput;

/// Exit code of `verify` when the history was tampered with.
const TAMPERED: u8 = 3;

/// Audit the event history: export it, verify it, and reconstruct any moment.
///
/// Every command reads a live stream (--nats), an export file (--export) or an embedded
/// SQLite store (--embedded; `import` writes one from an export).
/// Exit status: 0 success (verify: intact); 3 verify found tampering (import: refused it);
/// 2 invalid input; 1 the tool failed. See docs/audit.md.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    Export(ExportArgs),
    Verify(VerifyArgs),
    Import(ImportArgs),
    History(HistoryArgs),
    State(StateArgs),
    Report(ReportArgs),
    Replay(ReplayArgs),
}

/// Replay the whole log into scratch tables and compare them with the live read models,
/// row by row (then drop the scratch tables). Exit status 0 when every table agrees, 3
/// when they differ (the differing rows are listed). The projection must have caught up
/// with the stream first (`loan projector lag`).
#[derive(Debug, Args)]
struct ReplayArgs {
    /// NATS server URL of the live event stream.
    #[arg(long, env = "LOAN_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// Subject prefix of the deployment.
    #[arg(long, env = "LOAN_SUBJECT_PREFIX", default_value = "lending")]
    subject_prefix: String,
    /// JetStream stream holding the event log.
    #[arg(long, env = "LOAN_STREAM", default_value = "LENDING_EVENTS")]
    stream: String,
    /// PostgreSQL URL of the read-model database.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// The master key (the projectors need it to mask sensitive fields as the live ones did).
    #[arg(long, env = "LOAN_MASTER_KEY_FILE")]
    master_key_file: PathBuf,
    /// Groups to compare (default: all): portfolio, delinquency.
    #[arg(long, value_delimiter = ',')]
    group: Vec<String>,
    /// Differing rows listed per table and side.
    #[arg(long, default_value_t = 5)]
    examples: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Where the history is read from.
#[derive(Debug, Args)]
struct SourceArgs {
    /// NATS server URL of the live event stream.
    #[arg(long, env = "LOAN_NATS_URL", conflicts_with = "export")]
    nats: Option<String>,
    /// JetStream stream holding the event log.
    #[arg(long, env = "LOAN_STREAM", default_value = "LENDING_EVENTS")]
    stream: String,
    /// Subject prefix of the deployment.
    #[arg(long, env = "LOAN_SUBJECT_PREFIX", default_value = "lending")]
    subject_prefix: String,
    /// An export file (JSON lines written by `loan audit export`) instead of a live stream.
    #[arg(long)]
    export: Option<PathBuf>,
    /// An embedded SQLite store (the embedded mode's file, or one `loan audit import`
    /// wrote) instead of a live stream.
    #[arg(long, conflicts_with_all = ["nats", "export"])]
    embedded: Option<PathBuf>,
}

impl SourceArgs {
    async fn embedded(&self) -> anyhow::Result<Option<EmbeddedLog>> {
        match (&self.embedded, &self.export) {
            (Some(path), None) => Ok(Some(
                EmbeddedLog::open(path, &self.subject_prefix)
                    .await
                    .with_context(|| format!("--embedded {}", path.display()))?,
            )),
            _ => Ok(None),
        }
    }

    async fn live(&self) -> anyhow::Result<Option<LiveLog>> {
        if self.export.is_some() || self.embedded.is_some() {
            return Ok(None);
        }
        match &self.nats {
            Some(url) => Ok(Some(
                LiveLog::connect(url, &self.stream, &self.subject_prefix)
                    .await
                    .with_context(|| format!("--nats {url}"))?,
            )),
            None => Ok(None),
        }
    }

    /// The log with its checkpoints (what `verify` reads).
    async fn reader_with_checkpoints(&self) -> anyhow::Result<LogReader> {
        if let Some(path) = &self.export {
            return Ok(LogReader::open_export(path)?.with_checkpoints());
        }
        if let Some(log) = self.embedded().await? {
            return Ok(log.read_all_with_checkpoints().await?);
        }
        match self.live().await? {
            Some(log) => Ok(log.read_all_with_checkpoints().await?),
            None => Err(InvalidInput(
                "give --nats <url>, --export <file> or --embedded <store.sqlite>".into(),
            )
            .into()),
        }
    }

    async fn reader(&self) -> anyhow::Result<LogReader> {
        if let Some(path) = &self.export {
            return LogReader::open_export(path).map_err(Into::into);
        }
        if let Some(log) = self.embedded().await? {
            return Ok(log.read_all().await?);
        }
        match self.live().await? {
            Some(log) => Ok(log.read_all().await?),
            None => Err(InvalidInput(
                "give --nats <url>, --export <file> or --embedded <store.sqlite>".into(),
            )
            .into()),
        }
    }
}

/// Which aggregate: a loan, a collection case, or a customer with all their loans.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct SubjectArgs {
    /// A loan id.
    #[arg(long)]
    loan: Option<Uuid>,
    /// A customer id: the customer, every loan captured for them and those loans'
    /// collection cases.
    #[arg(long)]
    customer: Option<Uuid>,
    /// A collection case id (history only: contact attempts, promises to pay, resolution).
    #[arg(long)]
    collection_case: Option<Uuid>,
}

/// Write the history (all of it, a range, or one customer with all their loans) as JSON
/// lines, each commit exactly as stored, and a manifest to verify it by.
///
/// Lines: {"position":N,"subject":"...","commit":<commit as stored>}. The manifest holds
/// counts, first and last position, log hash, chain heads, the anchors of a partial export
/// and the file's SHA-256. Prints the replay speed on stderr.
#[derive(Debug, Args)]
struct ExportArgs {
    /// NATS server URL of the live event stream.
    #[arg(long, env = "LOAN_NATS_URL")]
    nats: String,
    #[arg(long, env = "LOAN_STREAM", default_value = "LENDING_EVENTS")]
    stream: String,
    #[arg(long, env = "LOAN_SUBJECT_PREFIX", default_value = "lending")]
    subject_prefix: String,
    /// The export file to write.
    #[arg(long, short)]
    output: PathBuf,
    /// The manifest to write (default: <output>.manifest.json).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// First stream position to export.
    #[arg(long, conflicts_with_all = ["recorded_from", "recorded_to", "customer"])]
    from_position: Option<u64>,
    /// Last stream position to export.
    #[arg(long, conflicts_with_all = ["recorded_from", "recorded_to", "customer"])]
    to_position: Option<u64>,
    /// Start at the first commit recorded at or after this RFC 3339 time.
    #[arg(long, conflicts_with = "customer")]
    recorded_from: Option<DateTime<Utc>>,
    /// Stop before the first later commit recorded at or after this RFC 3339 time.
    #[arg(long, conflicts_with = "customer")]
    recorded_to: Option<DateTime<Utc>>,
    /// Export one customer and every loan captured for them.
    #[arg(long)]
    customer: Option<Uuid>,
}

/// Recompute every link of every aggregate's hash chain and name the first broken one;
/// with an export, also compare with its manifest. Exit 0 intact, 3 tampered.
#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The export's manifest (default: <export>.manifest.json, replacing .jsonl). With
    /// --nats instead of --export: check that manifest against the live log. With
    /// --embedded: check the store against it (the store holds exactly that export; a
    /// partial export's chains start at the manifest's anchors).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Print the verification as JSON.
    #[arg(long)]
    json: bool,
}

/// Verify an export, then write it into an embedded SQLite store: every commit at its
/// original stream position with its exact bytes, in one transaction.
///
/// A tampered export is refused with the finding `verify` prints (exit 3) and nothing is
/// written. Positions, command ids or aggregates the store already holds are refused
/// (exit 2): importing twice changes nothing. Exports carry no data keys: sensitive values
/// of an imported history read masked. Afterwards, read it with --embedded <store>.
#[derive(Debug, Args)]
struct ImportArgs {
    /// The export file (JSON lines written by `loan audit export`).
    #[arg(long)]
    export: PathBuf,
    /// Its manifest (default: <export>.manifest.json, replacing .jsonl).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The embedded store to write into (created if missing).
    #[arg(long)]
    into: PathBuf,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// Every event of a loan, or of a customer with all their loans, in order: business date,
/// recording time, actor and roles, command, correlation id, event and its data, and the
/// rule-set version, inputs and reasons of automated decisions.
///
/// National IDs, bank cards and phones are masked; with --master-key-file they are
/// decrypted and masked, and shown in clear only with --reveal as well. An erased
/// customer's values read "erased".
#[derive(Debug, Args)]
struct HistoryArgs {
    #[command(flatten)]
    subject: SubjectArgs,
    #[command(flatten)]
    source: SourceArgs,
    /// The master key (decrypts sensitive values; needs the data keys: --nats for the
    /// stream's key bucket, or --embedded for the store's own).
    #[arg(long, env = "LOAN_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// Show sensitive values in clear (requires --master-key-file).
    #[arg(long, requires = "master_key_file")]
    reveal: bool,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// A loan (or a customer's loans) on a business date: status, schedule with paid amounts,
/// outstanding principal, interest and penalty, overdue amount, days past due, bucket.
///
/// Without --known-at: as we now know it was on that date (every event, including
/// repayments recorded later with earlier value dates). With --known-at: as the system
/// knew it then (only events recorded up to that time or stream position).
#[derive(Debug, Args)]
struct StateArgs {
    #[command(flatten)]
    subject: SubjectArgs,
    #[command(flatten)]
    source: SourceArgs,
    /// The business date (YYYY-MM-DD).
    #[arg(long, alias = "business-date")]
    as_of: NaiveDate,
    /// Only events recorded up to this RFC 3339 time or stream position.
    #[arg(long, value_parser = parse_knowledge)]
    known_at: Option<Knowledge>,
    /// JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// Delinquency report of a business date, replayed from the log: loans, outstanding
/// principal and overdue amount per aging bucket, and PAR1/PAR30/PAR90 (outstanding
/// principal more than 1/30/90 days past due ÷ all outstanding principal, 4 dp half-up).
#[derive(Debug, Args)]
struct ReportArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The business date (YYYY-MM-DD).
    #[arg(long, alias = "business-date")]
    as_of: NaiveDate,
    /// Only events recorded up to this RFC 3339 time or stream position (as published then).
    #[arg(long, value_parser = parse_knowledge)]
    known_at: Option<Knowledge>,
    /// List every loan with its days past due and bucket.
    #[arg(long)]
    loans: bool,
    /// JSON instead of tables.
    #[arg(long)]
    json: bool,
}

fn parse_knowledge(text: &str) -> Result<Knowledge, String> {
    Knowledge::parse(text)
}

/// Runs an audit command; the exit code tells an intact history from a tampered one.
pub(crate) fn run(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        match &args.command {
            AuditCommand::Export(args) => run_export(args).await,
            AuditCommand::Verify(args) => run_verify(args).await,
            AuditCommand::Import(args) => run_import(args).await,
            AuditCommand::History(args) => run_history(args).await,
            AuditCommand::State(args) => run_state(args).await,
            AuditCommand::Report(args) => run_report(args).await,
            AuditCommand::Replay(args) => run_replay(args).await,
        }
    })
}

async fn run_replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let master_key = MasterKey::read_file(&args.master_key_file)
        .with_context(|| format!("--master-key-file {}", args.master_key_file.display()))?;
    let groups = if args.group.is_empty() {
        loan_projection::Group::ALL.to_vec()
    } else {
        args.group
            .iter()
            .map(|name| loan_projection::Group::parse(name))
            .collect::<Result<_, _>>()
            .map_err(|e| InvalidInput(e.to_string()))?
    };
    let mut all_agree = true;
    let mut comparisons = Vec::new();
    for group in groups {
        let config = loan_projection::ProjectorConfig::new(
            args.nats.clone(),
            args.stream.clone(),
            args.subject_prefix.clone(),
            args.database_url.clone(),
            master_key.clone(),
        );
        let started = Instant::now();
        let comparison = loan_projection::replay_and_compare(config, group, args.examples)
            .await
            .with_context(|| format!("replaying {group}"))?;
        all_agree &= comparison.agrees();
        if !args.json {
            let mut table = Table::new();
            table.load_preset(presets::UTF8_FULL_CONDENSED);
            table.set_header([
                "table",
                "live rows",
                "replayed rows",
                "only live",
                "only replayed",
            ]);
            for t in &comparison.tables {
                table.add_row([
                    t.table.clone(),
                    t.live_rows.to_string(),
                    t.replayed_rows.to_string(),
                    t.only_live.to_string(),
                    t.only_replayed.to_string(),
                ]);
            }
            println!(
                "{group} at sequence {}: {} (replayed in {})\n{table}",
                comparison.sequence,
                if comparison.agrees() {
                    "AGREES"
                } else {
                    "DIFFERS"
                },
                rate(comparison.sequence, started)
            );
            for t in comparison
                .tables
                .iter()
                .filter(|t| t.only_live + t.only_replayed > 0)
            {
                for row in &t.examples_only_live {
                    println!("  {} only live:     {row}", t.table);
                }
                for row in &t.examples_only_replayed {
                    println!("  {} only replayed: {row}", t.table);
                }
            }
        }
        comparisons.push(comparison);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&comparisons)?);
    }
    Ok(if all_agree {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(TAMPERED)
    })
}

/// `events/s` from a count and an elapsed time, in integers (no floats).
fn rate(count: u64, started: Instant) -> String {
    let millis = started.elapsed().as_millis().max(1);
    format!(
        "{count} in {}.{:03} s ({} /s)",
        millis / 1000,
        millis % 1000,
        u128::from(count) * 1000 / millis
    )
}

fn default_manifest(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".jsonl").unwrap_or(&name);
    path.with_file_name(format!("{stem}.manifest.json"))
}

async fn run_export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let selection = if let Some(customer_id) = args.customer {
        Selection::Customer { customer_id }
    } else if args.recorded_from.is_some() || args.recorded_to.is_some() {
        Selection::Recorded {
            from: args.recorded_from,
            to: args.recorded_to,
        }
    } else if args.from_position.is_some() || args.to_position.is_some() {
        Selection::Positions {
            from: args.from_position.unwrap_or(1),
            to: args.to_position,
        }
    } else {
        Selection::All
    };
    let log = LiveLog::connect(&args.nats, &args.stream, &args.subject_prefix)
        .await
        .with_context(|| format!("--nats {}", args.nats))?;
    let file = std::fs::File::create(&args.output)
        .with_context(|| format!("--output {}", args.output.display()))?;
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    let started = Instant::now();
    let manifest = export(&log, &selection, &mut out, Utc::now()).await?;
    out.flush()
        .with_context(|| format!("writing {}", args.output.display()))?;
    let manifest_path = args
        .manifest
        .clone()
        .unwrap_or_else(|| default_manifest(&args.output));
    std::fs::write(&manifest_path, manifest.to_pretty_json() + "\n")
        .with_context(|| format!("writing {}", manifest_path.display()))?;
    eprintln!(
        "exported {} commits, events {} — manifest {}",
        manifest.summary.commits,
        rate(manifest.summary.events, started),
        manifest_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn run_verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let verification = if let Some(path) = &args.source.export {
        let manifest_path = args
            .manifest
            .clone()
            .unwrap_or_else(|| default_manifest(path));
        let manifest = Manifest::read(&manifest_path)?;
        verify_export(path, &manifest).await?
    } else if let Some(log) = args.source.embedded().await? {
        let mut reader = log.read_all_with_checkpoints().await?;
        match &args.manifest {
            None => verify_chains(&mut reader, [], None).await?,
            Some(manifest_path) => {
                let manifest = Manifest::read(manifest_path)?;
                let verifier = verifier_for(&manifest).map_err(InvalidInput)?;
                let mut verification = verify_log(&mut reader, verifier, None).await?;
                if verification.intact {
                    // No file here: the manifest's file hash is not compared.
                    if let Some(finding) =
                        compare(&manifest, &verification.summary, &manifest.file_sha256)
                    {
                        verification.intact = false;
                        verification.first_broken_link = Some(finding);
                    }
                }
                verification
            }
        }
    } else if let (Some(manifest_path), Some(log)) = (&args.manifest, args.source.live().await?) {
        let manifest = Manifest::read(manifest_path)?;
        verify_manifest_against_live(&log, &manifest).await?
    } else {
        let mut reader = args.source.reader_with_checkpoints().await?;
        verify_chains(&mut reader, [], None).await?
    };
    let mut out = io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&verification)?)?;
    } else {
        print_verification(&mut out, &verification)?;
    }
    out.flush()?;
    eprintln!(
        "verified {} commits, events {}",
        verification.commits_checked,
        rate(verification.summary.events, started)
    );
    Ok(if verification.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(TAMPERED)
    })
}

async fn run_import(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let manifest_path = args
        .manifest
        .clone()
        .unwrap_or_else(|| default_manifest(&args.export));
    let manifest = Manifest::read(&manifest_path)?;
    let outcome = match import_into(&args.export, &manifest, &args.into).await {
        Ok(outcome) => outcome,
        Err(loan_audit::AuditError::Store(refused @ StoreError::ImportRefused { .. })) => {
            return Err(InvalidInput(format!(
                "{refused}; nothing of {} was written to {}",
                args.export.display(),
                args.into.display()
            ))
            .into());
        }
        Err(other) => return Err(other.into()),
    };
    let mut out = io::stdout().lock();
    let code = match &outcome {
        ImportOutcome::Refused(verification) => {
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(verification)?)?;
            } else {
                print_verification(&mut out, verification)?;
                writeln!(out, "not imported: nothing was written")?;
            }
            ExitCode::from(TAMPERED)
        }
        ImportOutcome::Imported(summary) => {
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(summary)?)?;
            } else {
                writeln!(out, "imported into {}", args.into.display())?;
                writeln!(out, "commits:    {}", summary.commits)?;
                writeln!(out, "events:     {}", summary.events)?;
                writeln!(
                    out,
                    "positions:  {} to {}",
                    show(summary.first_position),
                    show(summary.last_position)
                )?;
                writeln!(out, "aggregates: {}", summary.heads.len())?;
                writeln!(out, "log hash:   {}", summary.log_hash)?;
            }
            ExitCode::SUCCESS
        }
    };
    out.flush()?;
    let events = match &outcome {
        ImportOutcome::Imported(summary) => summary.events,
        ImportOutcome::Refused(verification) => verification.summary.events,
    };
    eprintln!("import read events {}", rate(events, started));
    Ok(code)
}

fn print_verification(out: &mut dyn Write, v: &Verification) -> io::Result<()> {
    match &v.first_broken_link {
        None => {
            writeln!(out, "intact")?;
            writeln!(out, "commits:    {}", v.summary.commits)?;
            writeln!(out, "events:     {}", v.summary.events)?;
            writeln!(
                out,
                "positions:  {} to {}",
                show(v.summary.first_position),
                show(v.summary.last_position)
            )?;
            writeln!(out, "aggregates: {}", v.summary.heads.len())?;
            writeln!(out, "log hash:   {}", v.summary.log_hash)?;
            writeln!(
                out,
                "checkpoints: {}{}",
                v.summary.checkpoints,
                v.summary
                    .last_checkpoint
                    .as_ref()
                    .map_or_else(String::new, |head| format!(
                        " (last at position {})",
                        head.position
                    ))
            )
        }
        Some(finding) => {
            writeln!(out, "TAMPERED")?;
            writeln!(out, "first broken link: {finding}")?;
            writeln!(out, "commits verified before it: {}", v.commits_checked)
        }
    }
}

fn show(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn subject(args: &SubjectArgs) -> Subject {
    match (args.loan, args.customer, args.collection_case) {
        (Some(id), ..) => Subject::Aggregate(AggregateRef {
            aggregate_type: AggregateType::Loan,
            id,
        }),
        (None, Some(id), _) => Subject::CustomerWithLoans(id),
        (None, None, Some(id)) => Subject::Aggregate(AggregateRef {
            aggregate_type: AggregateType::CollectionCase,
            id,
        }),
        (None, None, None) => Subject::CustomerWithLoans(Uuid::nil()),
    }
}

async fn run_history(args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let vault: Option<Vault> = match &args.master_key_file {
        None => None,
        Some(path) => {
            let master = MasterKey::read_file(path)
                .with_context(|| format!("--master-key-file {}", path.display()))?;
            if let Some(log) = args.source.embedded().await? {
                Some(log.vault(&master))
            } else {
                let Some(log) = args.source.live().await? else {
                    return Err(InvalidInput(
                        "--master-key-file needs --nats or --embedded: the customers' data keys live in the stream's key bucket or the store's file (an export carries none)".into(),
                    )
                    .into());
                };
                Some(log.vault(&master).await?)
            }
        }
    };
    let disclosure = match (&vault, args.reveal) {
        (None, _) => Disclosure::Masked,
        (Some(vault), false) => Disclosure::MaskedWithKey(vault),
        (Some(vault), true) => Disclosure::Revealed(vault),
    };
    let mut reader = args.source.reader().await?;
    let rows = history(&mut reader, subject(&args.subject), disclosure).await?;
    let mut out = io::stdout().lock();
    if args.json {
        for row in &rows {
            writeln!(out, "{}", serde_json::to_string(row)?)?;
        }
    } else {
        writeln!(out, "{}", history_table(&rows))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn history_table(rows: &[HistoryRow]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    // Wrap the details column: to the terminal's width, or 200 columns in a pipe.
    table.set_content_arrangement(ContentArrangement::Dynamic);
    if table.width().is_none() {
        table.set_width(200);
    }
    table.set_header([
        "pos",
        "aggregate",
        "business date",
        "recorded at",
        "actor (roles)",
        "command",
        "correlation",
        "event (version)",
        "details",
    ]);
    for row in rows {
        let details = match &row.decision {
            Some(decision) => format!(
                "{} → {}\ninputs: {}\nreasons: {}",
                decision.rule_set_version, decision.outcome, decision.inputs, decision.reasons
            ),
            None => serde_json::Value::Object(row.data.clone()).to_string(),
        };
        table.add_row([
            row.position.to_string(),
            row.aggregate.clone(),
            row.business_date
                .map_or_else(String::new, |d| d.to_string()),
            row.recorded_at.to_rfc3339(),
            format!("{} ({})", row.actor, row.roles.join(", ")),
            row.command.clone(),
            row.correlation_id.to_string(),
            format!("{} ({})", row.event_type, row.version),
            details,
        ]);
    }
    table
}

async fn run_state(args: &StateArgs) -> anyhow::Result<ExitCode> {
    if args.subject.collection_case.is_some() {
        return Err(InvalidInput(
            "audit state covers loans and customers; a collection case's record is `loan audit history --collection-case`".into(),
        )
        .into());
    }
    let knowledge = args.known_at.unwrap_or(Knowledge::Everything);
    let mut reader = args.source.reader().await?;
    let mut out = io::stdout().lock();
    match subject(&args.subject) {
        Subject::CustomerWithLoans(id) => {
            let customer = customer_state(&mut reader, id, args.as_of, knowledge).await?;
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&customer)?)?;
            } else {
                writeln!(
                    out,
                    "customer {} on {} ({}): {}{}",
                    customer.customer_id,
                    customer.as_of,
                    customer.knowledge,
                    customer.status,
                    if customer.identity_verified {
                        ", identity verified"
                    } else {
                        ""
                    }
                )?;
                for loan in &customer.loans {
                    print_loan(&mut out, loan)?;
                }
            }
        }
        loan @ Subject::Aggregate(_) => {
            let loans = state(&mut reader, loan, args.as_of, knowledge).await?;
            if loans.is_empty() {
                return Err(InvalidInput(format!(
                    "no loan {} is {knowledge}",
                    args.subject.loan.unwrap_or_default()
                ))
                .into());
            }
            for loan in &loans {
                if args.json {
                    writeln!(out, "{}", serde_json::to_string_pretty(loan)?)?;
                } else {
                    print_loan(&mut out, loan)?;
                }
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn print_loan(out: &mut dyn Write, loan: &LoanAt) -> io::Result<()> {
    writeln!(
        out,
        "\nloan {} on {} ({}; {} commits, last at position {})",
        loan.loan_id,
        loan.as_of,
        loan.knowledge,
        loan.commits_known,
        show(loan.last_position_known)
    )?;
    writeln!(
        out,
        "status: {} (recorded: {})",
        loan.status, loan.recorded_status
    )?;
    let Some(book) = &loan.book else {
        return writeln!(out, "not disbursed on that date");
    };
    writeln!(
        out,
        "disbursed {} principal {}; figures at {}{}",
        book.disbursed_on,
        book.principal,
        book.computed_at,
        book.written_off_on
            .map_or_else(String::new, |d| format!(" (written off {d})"))
    )?;
    writeln!(
        out,
        "days past due: {}  bucket: {}",
        book.days_past_due,
        book.bucket.as_str()
    )?;
    writeln!(
        out,
        "outstanding: principal {}  interest {}  penalty {}  |  overdue: {}",
        book.outstanding.principal,
        book.outstanding.interest,
        book.outstanding.penalty,
        book.overdue.total()
    )?;
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "#",
        "due",
        "principal",
        "interest",
        "principal paid",
        "interest paid",
        "penalty accrued",
        "penalty paid",
        "paid",
    ]);
    for i in &book.installments {
        table.add_row([
            i.number.to_string(),
            i.due_date.to_string(),
            i.principal.to_string(),
            i.interest.to_string(),
            i.principal_paid.to_string(),
            i.interest_paid.to_string(),
            i.penalty_accrued.to_string(),
            i.penalty_paid.to_string(),
            if i.fully_paid { "yes" } else { "" }.to_owned(),
        ]);
    }
    right_align(&mut table, 2..8);
    writeln!(out, "{table}")?;
    for payment in &book.payments {
        writeln!(
            out,
            "payment {} {} value-dated {}",
            payment.reference, payment.amount, payment.value_date
        )?;
    }
    Ok(())
}

fn right_align(table: &mut Table, columns: std::ops::Range<usize>) {
    for index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

async fn run_report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let knowledge = args.known_at.unwrap_or(Knowledge::Everything);
    let mut reader = match (&args.source.export, args.source.live().await?) {
        (None, Some(log)) => log.read_loans(knowledge.last_position()).await?,
        _ => args.source.reader().await?,
    };
    let report = delinquency_report(&mut reader, args.as_of, knowledge).await?;
    let mut out = io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_report(&mut out, &report, args.loans)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn print_report(out: &mut dyn Write, r: &DelinquencyReport, loans: bool) -> io::Result<()> {
    writeln!(
        out,
        "delinquency on {} ({}; last position {})",
        r.as_of,
        r.knowledge,
        show(r.last_position_known)
    )?;
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header(["bucket", "loans", "outstanding principal", "overdue amount"]);
    for line in &r.buckets {
        table.add_row([
            line.bucket.as_str().to_owned(),
            line.loans.to_string(),
            line.outstanding_principal.to_string(),
            line.overdue_amount.to_string(),
        ]);
    }
    table.add_row([
        "total".to_owned(),
        r.loans.to_string(),
        r.outstanding_principal.to_string(),
        String::new(),
    ]);
    right_align(&mut table, 1..4);
    writeln!(out, "{table}")?;
    for par in &r.par {
        writeln!(
            out,
            "PAR{:<3} {}  (outstanding principal {} more than {} days past due)",
            par.days, par.ratio, par.outstanding_principal, par.days
        )?;
    }
    if r.written_off_loans > 0 {
        writeln!(
            out,
            "written off on or before the date: {} loans",
            r.written_off_loans
        )?;
    }
    if loans {
        let mut table = Table::new();
        table.load_preset(presets::UTF8_FULL_CONDENSED);
        table.set_header([
            "loan",
            "days past due",
            "bucket",
            "outstanding principal",
            "overdue",
        ]);
        for loan in &r.detail {
            table.add_row([
                loan.loan_id.to_string(),
                loan.days_past_due.to_string(),
                loan.bucket.as_str().to_owned(),
                loan.outstanding_principal.to_string(),
                loan.overdue_amount.to_string(),
            ]);
        }
        writeln!(out, "{table}")?;
    }
    Ok(())
}
