mod schedule_cli;
