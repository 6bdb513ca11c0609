//! The event stores: JetStream against a real nats-server, SQLite on temporary files.
#![allow(
    unused_crate_dependencies,
    reason = "a test binary links every dependency of its crate; it uses only some"
)]
mod checkpoints_cover_everything_before_them;
mod jetstream_store_conforms;
mod sqlite_store_conforms;
