//! The one public error type of `pooya-issuer`, with stable codes, and its
//! HTTP form ([`ApiError`]), mapped in one place.
//!
//! Messages never contain a PAN, a seed, a code or a token: they name
//! fields and reasons only.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pooya_protocol::ProtocolError;
use serde::Serialize;
use thiserror::Error;

/// Everything that can go wrong in the issuer outside an HTTP request:
/// opening the data directory, keys, storage, SMS delivery.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// A file could not be read, written or created.
    #[error("{context}: {message}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The operating system's message.
        message: String,
    },
    /// The SQLite database failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The database was written by a newer version of the issuer.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// The version in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// `init` was run on a data directory that already holds an issuer.
    #[error("the data directory is already initialised")]
    AlreadyInitialized,
    /// `serve` was run on a data directory `init` never prepared.
    #[error("the data directory is not initialised: run `pooya-issuer init` first")]
    NotInitialized,
    /// The master key does not open the data sealed in this database.
    #[error("the master key does not match this database")]
    WrongMasterKey,
    /// The master key file is missing, malformed or readable by others.
    #[error("master key file: {0}")]
    KeyFile(&'static str),
    /// A sealing, opening, signing or key-agreement primitive failed.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// Settings outside their bounds.
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    /// The SMS provider refused or failed to take a message.
    #[error("SMS delivery failed: {0}")]
    Sms(String),
    /// The storage writer has stopped (the server is shutting down).
    #[error("the issuer is shutting down")]
    Unavailable,
    /// The data directory is not safe to use: owned by another user, or
    /// its modes could not be made private (docs/security.md, "Data at
    /// rest").
    #[error("unsafe data directory: {0}")]
    UnsafeDataDir(String),
    /// The HTTP server could not start or stopped with an error.
    #[error("server: {0}")]
    Server(String),
    /// A protocol-level check failed.
    #[error("protocol: {0}")]
    Protocol(#[from] ProtocolError),
}

impl IssuerError {
    /// A stable, machine-readable code (docs/issuer.md; never renamed).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Storage(_) => "storage",
            Self::SchemaTooNew { .. } => "schema_too_new",
            Self::AlreadyInitialized => "already_initialized",
            Self::NotInitialized => "not_initialized",
            Self::WrongMasterKey => "wrong_master_key",
            Self::KeyFile(_) => "key_file",
            Self::Crypto(_) => "crypto",
            Self::InvalidSettings(_) => "invalid_settings",
            Self::Sms(_) => "sms_failed",
            Self::Unavailable => "unavailable",
            Self::Server(_) => "server",
            Self::UnsafeDataDir(_) => "unsafe_data_dir",
            Self::Protocol(e) => e.code(),
        }
    }

    pub(crate) fn io(context: &'static str, e: &std::io::Error) -> Self {
        Self::Io {
            context,
            message: e.to_string(),
        }
    }
}

impl From<rusqlite::Error> for IssuerError {
    fn from(e: rusqlite::Error) -> Self {
        // rusqlite's messages carry SQL text and SQLite's reason, never
        // bound parameter values.
        Self::Storage(e.to_string())
    }
}

/// An HTTP error answer: a status and `{"error": code, "message": text}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable error code (docs/issuer.md, "Errors").
    pub code: &'static str,
    /// A human-readable explanation, free of secrets.
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error answer.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token's role may not use this route",
        )
    }

    /// A field refused by the protocol crate's validation.
    pub fn from_protocol(code: &'static str, e: &ProtocolError) -> Self {
        // ProtocolError messages name the field and the reason, never the
        // value (pooya-protocol's contract).
        Self::bad_request(code, e.to_string())
    }
}

impl From<IssuerError> for ApiError {
    fn from(e: IssuerError) -> Self {
        let status = match &e {
            IssuerError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            IssuerError::Sms(_) => StatusCode::BAD_GATEWAY,
            IssuerError::Protocol(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(code = e.code(), error = %e, "request failed");
        }
        let message = match &e {
            // Internal details stay in the log.
            IssuerError::Storage(_) | IssuerError::Io { .. } | IssuerError::Crypto(_) => {
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let code = match &e {
            IssuerError::Storage(_) | IssuerError::Io { .. } | IssuerError::Crypto(_) => "internal",
            other => other.code(),
        };
        Self::new(status, code, message)
    }
}

impl From<ProtocolError> for ApiError {
    fn from(e: ProtocolError) -> Self {
        Self::bad_request(e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_internal_details_hidden() {
        let e = IssuerError::Storage("no such table: cards".into());
        assert_eq!(e.code(), "storage");
        let api = ApiError::from(e);
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(api.code, "internal");
        assert!(!api.message.contains("cards"));
        let api = ApiError::from(IssuerError::Unavailable);
        assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(api.code, "unavailable");
    }
}
