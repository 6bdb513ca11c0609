//! The command service against a real nats-server.
#![allow(
    unused_crate_dependencies,
    reason = "a test binary links every dependency of its crate; it uses only some"
)]

mod a_loan_lives_its_whole_life_over_nats;
mod harness;
