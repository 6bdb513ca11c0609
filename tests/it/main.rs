mod audit_cli;
mod command_service_cli;
mod schedule_cli;
mod the_pipeline_runs_from_the_binaries;
