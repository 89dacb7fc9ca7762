//! The durable inbox against real SQLite files in temporary directories and real HTTP servers on
//! 127.0.0.1. The store behaviour is one conformance suite (`conformance.rs`) run through a
//! factory, so another backend can be run through the same tests.

mod conformance;
mod crash;
mod dedup;
mod dispatcher;
mod forward_credentials;
mod forward_headers;
mod handler_wake;
mod ignored_settings;
mod logs;
mod metrics;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
mod postgres_lost_commit;
#[cfg(feature = "postgres")]
mod postgres_multi;
#[cfg(feature = "postgres")]
mod postgres_read_only;
#[cfg(feature = "postgres")]
mod postgres_read_timeout;
#[cfg(feature = "postgres")]
mod postgres_schema;
#[cfg(feature = "postgres")]
mod postgres_writable;
mod public_constructors;
mod receiver;
mod review_fixes;
mod shutdown_claim;
mod sqlite;
mod sqlite_read_only;
mod sqlite_read_timeout;
mod support;
mod transient_retries;
