//! Integration tests of the projectors against a real nats-server and PostgreSQL (and of
//! the embedded projector on SQLite, with no server): a
//! scripted portfolio driven through the real engine, projected into a database of its
//! own.
#![allow(
    unused_crate_dependencies,
    reason = "the test binary links the crate's dependencies without using them all"
)]

mod a_batch_beyond_sqlites_parameter_limit_is_written_whole;
mod a_poisoned_aggregate_is_quarantined_in_sqlite;
mod a_poisoned_aggregate_is_quarantined_while_others_flow;
mod a_scripted_portfolio_reads_as_computed_by_hand;
mod checkpoints_in_the_stream_are_never_projected;
mod embedded_projector_throughput;
mod every_table_and_column_is_documented;
mod harness;
mod kill_and_resume_loses_nothing;
mod rebuild_equals_incremental;
mod sqlite_and_postgres_hold_identical_rows;
mod sqlite_rebuild_and_replay_agree_and_catch_tampering;
mod the_embedded_projector_resumes_after_a_kill;
