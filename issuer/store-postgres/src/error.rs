//! The crate's internal error and its one mapping to [`IssuerError`].

use pooya_issuer_service::IssuerError;
use tokio_postgres::error::SqlState;

/// Attempts of one transaction that fails with a serialization failure
/// or a deadlock (SQLSTATE 40001, 40P01) before the error is returned.
pub const MAX_ATTEMPTS: u32 = 3;

/// What a transaction body fails with.
#[derive(Debug)]
pub(crate) enum PgError {
    /// The database (or the connection to it) failed.
    Db(tokio_postgres::Error),
    /// Anything else, returned as is.
    Issuer(IssuerError),
}

impl PgError {
    /// The whole transaction may succeed if run again: PostgreSQL chose it
    /// as the victim of a serialization failure or a deadlock.
    pub(crate) fn retryable(&self) -> bool {
        match self {
            Self::Db(e) => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
            ),
            Self::Issuer(_) => false,
        }
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

impl From<IssuerError> for PgError {
    fn from(e: IssuerError) -> Self {
        Self::Issuer(e)
    }
}

impl From<PgError> for IssuerError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Db(e) => IssuerError::Storage(message(&e)),
            PgError::Issuer(e) => e,
        }
    }
}

/// The database's message without any value: the severity, the message and
/// the SQLSTATE of a server error, never its DETAIL (which quotes key
/// values, `Key (pan_hash)=(\x…) already exists`) or its WHERE; for a
/// client-side error its description (parameters are named by index, never
/// shown).
pub(crate) fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => e.to_string(),
    }
}

/// A malformed stored value.
pub(crate) fn corrupt(what: &'static str) -> PgError {
    PgError::Issuer(IssuerError::Storage(format!(
        "a stored {what} is malformed"
    )))
}
