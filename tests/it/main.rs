mod command_service_cli;
mod schedule_cli;
