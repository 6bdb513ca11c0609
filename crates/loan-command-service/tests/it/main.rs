//! The command service against a real nats-server.
#![allow(
    unused_crate_dependencies,
    reason = "a test binary links every dependency of its crate; it uses only some"
)]

mod a_command_id_is_applied_once;
mod a_loan_lives_its_whole_life_over_nats;
mod acknowledged_commits_survive_a_node_crash;
mod bad_input_never_appends;
mod checkpoints_are_written_at_the_configured_cadence;
mod commands_are_accepted_over_http;
mod harness;
mod health_and_metrics_are_visible_over_http;
mod racing_commands_have_one_winner;
mod restarts_lose_nothing;
mod the_service_is_discoverable;
mod two_instances_share_the_load;
