//! The automation rules against a real nats-server, the real command service and a
//! throwaway PostgreSQL database, over simulated months of a scripted portfolio.
#![allow(
    unused_crate_dependencies,
    reason = "a test binary links every dependency of its crate; it uses only some"
)]

mod harness;
mod rules_fire_exactly_once_over_simulated_months;
