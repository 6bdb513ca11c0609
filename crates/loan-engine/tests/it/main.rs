//! The engine end to end, against an in-memory event store and a real nats-server.
#![allow(
    unused_crate_dependencies,
    reason = "a test binary links every dependency of its crate; it uses only some"
)]
mod customers_can_be_crypto_shredded;
mod support;
mod the_history_is_tamper_evident;
