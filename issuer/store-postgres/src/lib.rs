//! The issuer's store for several nodes: PostgreSQL through a pool of
//! `tokio-postgres` connections (`deadpool-postgres`). It implements
//! [`pooya_issuer_service::Store`] with the same tables, rows, events and
//! outbox rows as the SQLite store (`pooya-issuer-sqlite`), and applies the
//! same pure decisions (`pooya_issuer_service::rules`).
//!
//! Every rule that must hold across processes holds in the database
//! (docs/issuer.md, "Several nodes"): each method is one transaction at
//! READ COMMITTED that takes the row or advisory locks its decision needs
//! before it reads what it decides on (`SELECT … FOR UPDATE`,
//! `INSERT … ON CONFLICT … RETURNING`, `pg_advisory_xact_lock`,
//! `FOR UPDATE SKIP LOCKED` for the outbox), and commits with
//! `synchronous_commit = on` before it answers. A transaction that fails
//! with a serialization failure or a deadlock (SQLSTATE 40001, 40P01) is
//! retried whole, up to [`MAX_ATTEMPTS`] times.
//!
//! TLS: this build connects without TLS (`sslmode=disable`, or `prefer`
//! falling back to plain). `sslmode=require` is refused with
//! [`pooya_issuer_service::IssuerError::InvalidSettings`]; connecting over
//! TLS needs a `tokio_postgres::tls::MakeTlsConnect` such as
//! `postgres-native-tls` or `tokio-postgres-rustls`, not built in yet. Use
//! a Unix socket or a loopback/private network to the database meanwhile.

mod error;
pub mod migrate;
mod sealed;
mod store;

pub use error::MAX_ATTEMPTS;
pub use migrate::{MIGRATIONS, latest_version};
pub use store::{PostgresOptions, PostgresStore};
