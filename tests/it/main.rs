mod audit_cli;
mod schedule_cli;
