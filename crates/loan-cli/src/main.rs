//! `loan`, the project's one user-facing binary.
//!
//! This file only declares the command line and hands each subcommand to its own module; a
//! subcommand's arguments, help text and output live in that module. Failures are reported
//! here, in one place, so that every subcommand ends the same way (see [`failure`]).

mod audit;
mod automation;
mod command_service;
mod demo;
mod embedded;
mod failure;
mod projector;
mod query_api;
mod schedule;
mod showcase;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The `loan` command line.
#[derive(Debug, Parser)]
#[command(
    name = "loan",
    version,
    about = "The loan lifecycle engine: services, and tools for loan officers."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands of `loan`.
#[derive(Debug, Subcommand)]
#[allow(
    clippy::enum_variant_names,
    reason = "the variants name the subcommands (`loan command-service`)"
)]
enum Command {
    Demo(demo::DemoArgs),
    Schedule(schedule::ScheduleArgs),
    Embedded(embedded::EmbeddedArgs),
    CommandService(command_service::CommandServiceArgs),
    Projector(projector::ProjectorArgs),
    QueryApi(query_api::QueryApiArgs),
    Audit(audit::AuditArgs),
    Automation(automation::AutomationArgs),
}

fn main() -> ExitCode {
    // Usage errors print clap's message and exit with code 2; `--help` and `--version` exit 0.
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Schedule(args) => schedule::run(args),
        Command::Embedded(args) => match embedded::run(args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(error) => Err(error),
        },
        Command::CommandService(args) => command_service::run_service(args),
        Command::Projector(args) => projector::run(args),
        Command::QueryApi(args) => query_api::run(args),
        Command::Automation(args) => automation::run(args),
        Command::Audit(args) => match audit::run(args) {
            Ok(code) => return code,
            Err(error) => Err(error),
        },
    };
    failure::exit_code(outcome)
}
