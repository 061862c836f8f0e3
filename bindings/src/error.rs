//! The one public error of the bindings (Kotlin `PooyaException`, Swift
//! `PooyaError`) and the single place where core and protocol errors are
//! mapped into it.
//!
//! Each variant has a stable [`code`](PooyaError::code) the apps can key
//! their translations on; the fields carry what a message needs
//! (`field`, `reason`, a character position). Messages never contain
//! secret material: inputs are not echoed.

use pooya_core::hooks::HostError as CoreHostError;
use pooya_core::protocol::{AmountError, ProtocolError};

/// What is wrong with an amount the user typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AmountProblem {
    /// Nothing but spaces.
    Empty,
    /// A character that is neither a digit nor a thousands separator.
    UnexpectedCharacter {
        /// Index of the offending character (in Unicode scalar values,
        /// counted from the start of the text as typed).
        position: u32,
    },
    /// Thousands separators not in groups of three digits.
    BadGrouping,
    /// More Rials than can be represented.
    TooLarge,
    /// Zero Rials: an amount or a cap is always positive.
    Zero,
}

impl AmountProblem {
    /// A stable code for this problem: `empty`, `unexpected_character`,
    /// `bad_grouping`, `too_large`, `zero`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::UnexpectedCharacter { .. } => "unexpected_character",
            Self::BadGrouping => "bad_grouping",
            Self::TooLarge => "too_large",
            Self::Zero => "zero",
        }
    }
}

/// Every error the Pooya library reports to Kotlin and Swift.
///
/// Phase 2 (the vault) adds `WrongPassword { attempts_left }`,
/// `LockedOut { seconds_left }`, `Wiped`, `WeakPassword`,
/// `BiometricInvalidated` and the others of `pooya-core`'s public error,
/// each mapped in [`From`] impls in this file only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum PooyaError {
    /// An amount of Rials that does not parse.
    #[error("invalid amount: {}", reason.code())]
    InvalidAmount {
        /// What is wrong with it.
        reason: AmountProblem,
    },
    /// An input field failed validation (`phone`, `code`, `pan`, `payee`,
    /// ...). `reason` is English, for logs; localize on `field`.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The field's stable name.
        field: String,
        /// Why it was refused (English, no input echoed).
        reason: String,
    },
    /// A host hook (keystore, transport, biometrics) failed; `details` is
    /// what the host reported.
    #[error("host hook failed: {details}")]
    HostFailure {
        /// The host's own description, for logs and support.
        details: String,
    },
    /// The device keystore works but does not behave as a sealing key
    /// must (see [`check_device_keystore`](crate::check_device_keystore)).
    #[error("device keystore unusable: {reason}")]
    KeystoreUnusable {
        /// What the self-check saw (English, for logs).
        reason: String,
    },
    /// A bug or an unexpected state inside the library.
    #[error("internal error: {details}")]
    Internal {
        /// Description for logs and bug reports.
        details: String,
    },
}

#[uniffi::export]
impl PooyaError {
    /// The stable, machine-readable code of this error (never renamed):
    /// `invalid_amount`, `invalid_input`, `host_failure`,
    /// `keystore_unusable`, `internal`.
    pub fn code(&self) -> String {
        match self {
            Self::InvalidAmount { .. } => "invalid_amount",
            Self::InvalidInput { .. } => "invalid_input",
            Self::HostFailure { .. } => "host_failure",
            Self::KeystoreUnusable { .. } => "keystore_unusable",
            Self::Internal { .. } => "internal",
        }
        .to_owned()
    }
}

impl From<AmountError> for PooyaError {
    fn from(e: AmountError) -> Self {
        let reason = match e {
            AmountError::Empty => AmountProblem::Empty,
            AmountError::UnexpectedChar(i) => AmountProblem::UnexpectedCharacter {
                position: u32::try_from(i).unwrap_or(u32::MAX),
            },
            AmountError::BadGrouping => AmountProblem::BadGrouping,
            AmountError::Overflow => AmountProblem::TooLarge,
            AmountError::Zero => AmountProblem::Zero,
            // `AmountError` is non-exhaustive: a new kind is still an
            // invalid amount; report it as a generic input error.
            other => {
                return Self::InvalidInput {
                    field: "amount".to_owned(),
                    reason: other.to_string(),
                };
            }
        };
        Self::InvalidAmount { reason }
    }
}

impl From<ProtocolError> for PooyaError {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::InvalidAmount(a) => a.into(),
            ProtocolError::InvalidField { field, reason } => Self::InvalidInput {
                field: field.to_owned(),
                reason: reason.to_owned(),
            },
            ProtocolError::InvalidPayee(reason) => Self::InvalidInput {
                field: "payee".to_owned(),
                reason: reason.to_owned(),
            },
            // The rest are configuration or algorithm errors that user
            // input cannot cause through this API.
            other => Self::Internal {
                details: format!("{} ({})", other, other.code()),
            },
        }
    }
}

impl From<CoreHostError> for PooyaError {
    fn from(e: CoreHostError) -> Self {
        Self::HostFailure { details: e.message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_errors_map_to_their_problem() {
        let cases = [
            (AmountError::Empty, AmountProblem::Empty),
            (
                AmountError::UnexpectedChar(3),
                AmountProblem::UnexpectedCharacter { position: 3 },
            ),
            (AmountError::BadGrouping, AmountProblem::BadGrouping),
            (AmountError::Overflow, AmountProblem::TooLarge),
            (AmountError::Zero, AmountProblem::Zero),
        ];
        for (core, want) in cases {
            let e = PooyaError::from(core);
            assert_eq!(e, PooyaError::InvalidAmount { reason: want });
            assert_eq!(e.code(), "invalid_amount");
            // Through ProtocolError too.
            assert_eq!(PooyaError::from(ProtocolError::from(core)), e);
        }
    }

    #[test]
    fn protocol_errors_keep_field_and_code() {
        let e = PooyaError::from(ProtocolError::InvalidField {
            field: "phone",
            reason: "must be digits",
        });
        assert_eq!(
            e,
            PooyaError::InvalidInput {
                field: "phone".into(),
                reason: "must be digits".into()
            }
        );
        assert_eq!(e.code(), "invalid_input");
        assert_eq!(e.to_string(), "invalid phone: must be digits");

        let e = PooyaError::from(ProtocolError::InvalidPayee("empty"));
        assert!(matches!(&e, PooyaError::InvalidInput { field, .. } if field == "payee"));

        let e = PooyaError::from(ProtocolError::InvalidDigits(3));
        assert_eq!(e.code(), "internal");
        assert!(e.to_string().contains("invalid_digits"));
    }

    #[test]
    fn codes_are_distinct() {
        let all = [
            PooyaError::InvalidAmount {
                reason: AmountProblem::Zero,
            },
            PooyaError::InvalidInput {
                field: String::new(),
                reason: String::new(),
            },
            PooyaError::HostFailure {
                details: String::new(),
            },
            PooyaError::KeystoreUnusable {
                reason: String::new(),
            },
            PooyaError::Internal {
                details: String::new(),
            },
        ];
        let mut codes: Vec<String> = all.iter().map(PooyaError::code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
