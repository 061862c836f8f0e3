//! The issuer's embedded store: one SQLite file in the data directory,
//! numbered migrations (`migrations/NNN_name.sql`, the version in
//! `PRAGMA user_version`), one writer thread that group-commits every
//! state change (`synchronous = FULL`), and a pool of read connections.
//! It implements [`pooya_issuer_service::Store`]; the decisions it applies
//! are the service's pure functions (`pooya_issuer_service::rules`).
//!
//! One process owns the file: several nodes need the PostgreSQL store.

pub mod db;
mod sealed;
mod store;
mod writer;

use pooya_issuer_service::IssuerError;

pub use db::{DB_FILE, KEY_FILE, latest_version, secure_data_dir};
pub use store::{SqliteOptions, SqliteStore, read_outbox};

/// This crate's error: an [`IssuerError`], made from SQLite's errors too
/// (their messages carry SQL text and SQLite's reason, never bound
/// parameter values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// SQLite failed.
    Storage(String),
    /// A thread could not be started.
    Server(String),
    /// The writer has stopped.
    Unavailable,
    /// The data directory is not private.
    UnsafeDataDir(String),
    /// The database is from a newer build.
    SchemaTooNew {
        /// Its version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// Anything else.
    Issuer(IssuerError),
}

impl DbError {
    /// An I/O failure while doing `context`.
    pub fn io(context: &'static str, e: &std::io::Error) -> Self {
        Self::Issuer(IssuerError::io(context, e))
    }

    /// The stable code of the [`IssuerError`] it is.
    pub fn code(&self) -> &'static str {
        IssuerError::from(self.clone()).code()
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        IssuerError::from(self.clone()).fmt(f)
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

impl From<IssuerError> for DbError {
    fn from(e: IssuerError) -> Self {
        Self::Issuer(e)
    }
}

impl From<DbError> for IssuerError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Storage(m) => IssuerError::Storage(m),
            DbError::Server(m) => IssuerError::Server(m),
            DbError::Unavailable => IssuerError::Unavailable,
            DbError::UnsafeDataDir(m) => IssuerError::UnsafeDataDir(m),
            DbError::SchemaTooNew { found, supported } => {
                IssuerError::SchemaTooNew { found, supported }
            }
            DbError::Issuer(e) => e,
        }
    }
}
