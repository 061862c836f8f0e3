//! Harim's error type, with stable codes (docs/harim.md, "Errors").
//! Messages name fields, files and variables, never a secret.

use thiserror::Error;

/// What can go wrong in Harim outside a request: settings, files, the
/// server.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HarimError {
    /// The settings file is unreadable or says something Harim refuses;
    /// `field` names where (`issuers[1].bins[0]`).
    #[error("invalid settings: {field}: {reason}")]
    InvalidSettings {
        /// The field, as a path into the settings file.
        field: String,
        /// Why, never quoting a secret.
        reason: String,
    },
    /// A file could not be read.
    #[error("{context}: {message}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's message.
        message: String,
    },
    /// The HTTP server could not start or stopped with an error.
    #[error("server: {0}")]
    Server(String),
}

impl HarimError {
    /// A stable, machine-readable code (never renamed).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidSettings { .. } => "invalid_settings",
            Self::Io { .. } => "io",
            Self::Server(_) => "server",
        }
    }

    /// An invalid setting at `field`.
    pub(crate) fn settings(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidSettings {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
