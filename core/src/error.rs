//! The one public error type of `pooya-core`, with stable codes.
//!
//! Internal failures (SQLite, AEAD, Argon2, JSON) are mapped into
//! [`CoreError`] in exactly one place each (the `From` impls and helpers at
//! the bottom of this file). Messages never contain passwords, keys, seeds,
//! card numbers or phone numbers.

use thiserror::Error;

use crate::hooks::{BiometricError, HostError};
use pooya_protocol::ProtocolError;

/// Why an app password was refused ([`CoreError::WeakPassword`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WeakPasswordReason {
    /// Fewer than 6 characters.
    TooShort,
    /// More than 128 characters.
    TooLong,
    /// One character repeated (`111111`, `aaaaaa`).
    AllSame,
    /// A straight run up or down (`123456`, `654321`, `abcdef`).
    Sequence,
    /// A control character.
    ControlCharacter,
    /// Only digits, and fewer than 8 of them (a PIN-like password).
    TooFewDigits,
    /// On the embedded list of common passwords
    /// (`core/src/vault/common_passwords.txt`).
    Common,
}

impl WeakPasswordReason {
    /// A stable, machine-readable code (`too_short`, `too_long`,
    /// `all_same`, `sequence`, `control_character`, `too_few_digits`,
    /// `common`).
    pub fn code(self) -> &'static str {
        match self {
            Self::TooShort => "too_short",
            Self::TooLong => "too_long",
            Self::AllSame => "all_same",
            Self::Sequence => "sequence",
            Self::ControlCharacter => "control_character",
            Self::TooFewDigits => "too_few_digits",
            Self::Common => "common",
        }
    }
}

impl core::fmt::Display for WeakPasswordReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::TooShort => "shorter than 6 characters",
            Self::TooLong => "longer than 128 characters",
            Self::AllSame => "one character repeated",
            Self::Sequence => "a straight run such as 123456",
            Self::ControlCharacter => "contains a control character",
            Self::TooFewDigits => "only digits, fewer than 8",
            Self::Common => "a commonly used password",
        })
    }
}

/// Everything that can go wrong in the core.
///
/// Every variant has a stable [`code`](CoreError::code) that the Kotlin and
/// Swift shells match on to show a localized message; the codes are listed
/// in docs/security.md and never renamed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The app password was wrong. After `attempts_left` more wrong
    /// passwords the vault is wiped.
    #[error("wrong password ({attempts_left} attempts left before the vault is wiped)")]
    WrongPassword {
        /// Wrong passwords left before the wipe.
        attempts_left: u32,
    },
    /// Too many wrong passwords: wait this long before the next try.
    #[error("too many wrong passwords: try again in {seconds_left} s")]
    LockedOut {
        /// Seconds until the next password attempt is allowed.
        seconds_left: u64,
    },
    /// The vault was wiped after too many wrong passwords; cards must be
    /// activated again.
    #[error("the vault was wiped after too many wrong passwords")]
    Wiped,
    /// The vault file is damaged (or was altered): a checksum, an AEAD tag
    /// or SQLite's own structure check failed.
    #[error("the vault is corrupted")]
    VaultCorrupted,
    /// No vault at this path (or only an unfinished one).
    #[error("no vault at this path")]
    NoVault,
    /// A vault already exists at this path.
    #[error("a vault already exists at this path")]
    VaultExists,
    /// The vault was written by a newer version of the app.
    #[error(
        "the vault was written by a newer app version (schema {found}, this app knows {supported})"
    )]
    VaultTooNew {
        /// Schema version in the file.
        found: u32,
        /// Newest schema version this build knows.
        supported: u32,
    },
    /// The vault is locked (never unlocked, `lock()` was called or it was
    /// idle too long); unlock it first.
    #[error("the vault is locked")]
    Locked,
    /// The operation needs the app password again (raising a cap).
    #[error("this needs the app password")]
    PasswordRequired,
    /// The new app password is too weak.
    #[error("password refused: {0}")]
    WeakPassword(WeakPasswordReason),
    /// Argon2id parameters below the floors (or above the ceilings).
    #[error("KDF parameters refused: {0}")]
    WeakKdfParams(&'static str),
    /// A host setting that would loosen a security bound (lockout,
    /// idle timeout).
    #[error("configuration refused: {0}")]
    InvalidConfig(&'static str),
    /// The biometric key was invalidated by an enrollment change; the
    /// biometric slot was deleted and the password is needed.
    #[error("biometric key invalidated: use the password and enable biometrics again")]
    BiometricInvalidated,
    /// The user cancelled the biometric prompt.
    #[error("biometric prompt cancelled")]
    BiometricCancelled,
    /// The platform locked the biometric sensor.
    #[error("biometrics locked out by the platform")]
    BiometricLockout,
    /// No biometric hardware, no enrolled biometrics, or no biometric hook.
    #[error("biometrics unavailable")]
    BiometricUnavailable,
    /// Biometric unlock is not enabled for this vault.
    #[error("biometric unlock is not enabled")]
    BiometricNotEnabled,
    /// The biometric hook failed for another reason.
    #[error("biometric hook failed: {0}")]
    BiometricFailed(String),
    /// The device keystore hook failed (for example the vault was copied
    /// from another device).
    #[error("device keystore failed: {0}")]
    Keystore(String),
    /// The desktop device key file exists but is empty or shorter than a
    /// key: almost always left by a crash during the very first `init`,
    /// before any vault was sealed with it. It is never replaced
    /// automatically, since a real key file damaged later would make the
    /// vault beside it unrecoverable.
    #[error(
        "the device key file {path} is empty or truncated (probably left by an interrupted first \
         run): if the vault beside it was never created, delete this key file and run init \
         again; otherwise restore the key file from a backup"
    )]
    DeviceKeyDamaged {
        /// The key file's path.
        path: String,
    },
    /// No card with this id.
    #[error("no such card")]
    CardNotFound,
    /// No standard OTP account with this id.
    #[error("no such account")]
    AccountNotFound,
    /// No issuer with this name.
    #[error("no such issuer")]
    IssuerNotFound,
    /// An issuer with this name is already stored.
    #[error("issuer already stored")]
    IssuerExists,
    /// The phone number is already set; it is set once per vault.
    #[error("the phone number is already set")]
    PhoneAlreadySet,
    /// A cap that is not a tier of the card's cap ladder.
    #[error("the cap is not a tier of this card's cap ladder")]
    InvalidCap,
    /// A field the core refused (empty label, bad URL, …).
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Input refused by the protocol crate (phone number, policies, …).
    #[error("invalid input: {0}")]
    Protocol(ProtocolError),
    /// The storage failed for a reason other than corruption (disk full,
    /// permissions, I/O).
    #[error("storage failed: {0}")]
    Storage(String),
    /// An activation code that is not 10–16 digits or whose check digit is
    /// wrong (a typo): caught before any network call.
    #[error("activation code refused: {0}")]
    InvalidActivationCode(&'static str),
    /// Cards can only be added once the phone number is set.
    #[error("set the phone number first")]
    PhoneNotSet,
    /// No HTTP answer arrived (the host's transport failed: no network,
    /// timeout, TLS). Nothing was stored.
    #[error("network failed: {0}")]
    Network(String),
    /// The issuer refused the activation code: wrong, expired, already
    /// used, superseded, or the phone number is not the one registered at
    /// the ATM. Nothing was stored.
    #[error("the bank refused the activation code (wrong, expired or already used)")]
    ActivationRefused,
    /// The issuer answered with another HTTP error. `code` is the issuer's
    /// error code (letters, digits and `_` only), empty when it sent none.
    #[error("the bank answered HTTP {status} ({code})")]
    IssuerError {
        /// The HTTP status.
        status: u16,
        /// The issuer's error code, sanitised.
        code: String,
    },
    /// The issuer's answer is malformed: not JSON, unknown or missing
    /// fields, bad hex, inconsistent card data. Nothing was stored.
    #[error("the bank's answer is malformed: {0}")]
    BadResponse(&'static str),
    /// The issuer's signature over the activation transcript does not
    /// verify against the pinned key: a tampered answer or another issuer.
    /// Nothing was stored.
    #[error("the bank's answer is not signed by the pinned issuer key")]
    BadSignature,
    /// The issuer's signed PIN policies are outside the bounds the phone
    /// accepts. Nothing was stored.
    #[error("the bank's PIN policies are refused: {0}")]
    PolicyRefused(String),
    /// The issuer's clock differs from the phone's by more than a day.
    /// Nothing was stored.
    #[error("the bank's clock differs from this phone's by {skew_secs} s (more than a day)")]
    ServerTimeImplausible {
        /// Issuer time minus phone time, in seconds.
        skew_secs: i64,
    },
    /// A requested cap below the smallest tier of the card's ladder.
    #[error("the cap is below the smallest tier ({lowest_tier} Rials)")]
    CapBelowLowestTier {
        /// The smallest tier, in Rials.
        lowest_tier: u64,
    },
    /// A transaction-bound PIN for more than the card's cap; raise the cap
    /// first (that needs the password).
    #[error("the amount is above the card's cap ({cap} Rials)")]
    AmountAboveCap {
        /// The card's cap, in Rials.
        cap: u64,
    },
    /// More than one card ends in these four digits: use the card id.
    #[error("more than one card ends in these digits: use the card id")]
    AmbiguousCard,
    /// The issuer profile has no activation (HPKE) key: it was added before
    /// activation v2. Add the issuer again with both keys.
    #[error(
        "the issuer profile has no activation key: add the issuer again with its activation key"
    )]
    ActivationKeyMissing,
    // Issue 13, payment QR codes.
    /// A scanned payment request URI the protocol's strict parser refused
    /// (docs/protocol.md, "Payment request URIs"); `reason` is its stable
    /// code (`not_payment_uri`, `invalid_amount`, `missing_parameter`, …).
    #[error("not a valid payment request ({reason})")]
    InvalidPaymentRequest {
        /// The parser's stable code ([`pooya_protocol::PaymentError::code`]).
        reason: &'static str,
    },
    /// The payment request's expiry has passed (in the bank's time as the
    /// phone knows it): ask the payment page for a new one.
    #[error("the payment request expired at {expires_at}")]
    PaymentRequestExpired {
        /// Its expiry, Unix seconds.
        expires_at: u64,
    },
    // Issue 13, a card's life on the phone (docs/phone.md).
    /// The bank suspended this card's app (its last signed state): no PIN
    /// is made until a sync says it is active again.
    #[error("the bank suspended this card's app for now: sync later")]
    CardSuspended,
    /// The card's app was revoked (deactivated at an ATM, by the bank, or
    /// removed on a phone): activate it again at an ATM.
    #[error("this card was deactivated: activate it again at an ATM")]
    CardRevoked,
    /// The card was activated on another device since: this phone's seed
    /// no longer works; activate it again at an ATM to use it here.
    #[error("this card is active on another device: activate it again at an ATM")]
    CardOnOtherDevice,
}

impl From<pooya_protocol::PaymentError> for CoreError {
    fn from(e: pooya_protocol::PaymentError) -> Self {
        match e {
            pooya_protocol::PaymentError::Expired { expires_at, .. } => {
                Self::PaymentRequestExpired { expires_at }
            }
            other => Self::InvalidPaymentRequest {
                reason: other.code(),
            },
        }
    }
}

impl CoreError {
    /// A stable, machine-readable code for this error (documented in
    /// docs/security.md; never renamed).
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongPassword { .. } => "wrong_password",
            Self::LockedOut { .. } => "locked_out",
            Self::Wiped => "wiped",
            Self::VaultCorrupted => "vault_corrupted",
            Self::NoVault => "no_vault",
            Self::VaultExists => "vault_exists",
            Self::VaultTooNew { .. } => "vault_too_new",
            Self::Locked => "locked",
            Self::PasswordRequired => "password_required",
            Self::WeakPassword(_) => "weak_password",
            Self::WeakKdfParams(_) => "weak_kdf_params",
            Self::InvalidConfig(_) => "invalid_config",
            Self::BiometricInvalidated => "biometric_invalidated",
            Self::BiometricCancelled => "biometric_cancelled",
            Self::BiometricLockout => "biometric_lockout",
            Self::BiometricUnavailable => "biometric_unavailable",
            Self::BiometricNotEnabled => "biometric_not_enabled",
            Self::BiometricFailed(_) => "biometric_failed",
            Self::Keystore(_) => "keystore",
            Self::DeviceKeyDamaged { .. } => "device_key_damaged",
            Self::CardNotFound => "card_not_found",
            Self::AccountNotFound => "account_not_found",
            Self::IssuerNotFound => "issuer_not_found",
            Self::IssuerExists => "issuer_exists",
            Self::PhoneAlreadySet => "phone_already_set",
            Self::InvalidCap => "invalid_cap",
            Self::InvalidField { .. } => "invalid_field",
            Self::Protocol(_) => "invalid_input",
            Self::Storage(_) => "storage",
            Self::InvalidActivationCode(_) => "invalid_activation_code",
            Self::PhoneNotSet => "phone_not_set",
            Self::Network(_) => "network",
            Self::ActivationRefused => "activation_refused",
            Self::IssuerError { .. } => "issuer_error",
            Self::BadResponse(_) => "bad_response",
            Self::BadSignature => "bad_signature",
            Self::PolicyRefused(_) => "policy_refused",
            Self::ServerTimeImplausible { .. } => "server_time_implausible",
            Self::CapBelowLowestTier { .. } => "cap_below_lowest_tier",
            Self::AmountAboveCap { .. } => "amount_above_cap",
            Self::AmbiguousCard => "ambiguous_card",
            Self::ActivationKeyMissing => "activation_key_missing",
            Self::InvalidPaymentRequest { .. } => "invalid_payment_request",
            Self::PaymentRequestExpired { .. } => "payment_request_expired",
            Self::CardSuspended => "card_suspended",
            Self::CardRevoked => "card_revoked",
            Self::CardOnOtherDevice => "card_on_other_device",
        }
    }
}

impl From<ProtocolError> for CoreError {
    fn from(e: ProtocolError) -> Self {
        Self::Protocol(e)
    }
}

impl From<HostError> for CoreError {
    fn from(e: HostError) -> Self {
        match e.damaged_key_file {
            Some(path) => Self::DeviceKeyDamaged { path },
            None => Self::Keystore(e.message),
        }
    }
}

impl From<BiometricError> for CoreError {
    fn from(e: BiometricError) -> Self {
        match e {
            BiometricError::Cancelled => Self::BiometricCancelled,
            BiometricError::Lockout => Self::BiometricLockout,
            BiometricError::Invalidated => Self::BiometricInvalidated,
            BiometricError::Unavailable => Self::BiometricUnavailable,
            BiometricError::Failed(m) => Self::BiometricFailed(m),
        }
    }
}

impl From<rusqlite::types::FromSqlError> for CoreError {
    /// A stored value of the wrong type: the file was damaged.
    fn from(_: rusqlite::types::FromSqlError) -> Self {
        Self::VaultCorrupted
    }
}

impl From<rusqlite::Error> for CoreError {
    /// SQLite's corruption codes and values of the wrong type become
    /// [`CoreError::VaultCorrupted`]; everything else is
    /// [`CoreError::Storage`]. SQLite messages never contain field values
    /// here: every value is bound as a parameter.
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(
                    f.code,
                    ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase | ErrorCode::SchemaChanged
                ) =>
            {
                Self::VaultCorrupted
            }
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnIndex(_)
            | rusqlite::Error::InvalidColumnName(_) => Self::VaultCorrupted,
            _ => Self::Storage(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_distinct() {
        let all = [
            CoreError::WrongPassword { attempts_left: 3 },
            CoreError::LockedOut { seconds_left: 30 },
            CoreError::Wiped,
            CoreError::VaultCorrupted,
            CoreError::NoVault,
            CoreError::VaultExists,
            CoreError::VaultTooNew {
                found: 9,
                supported: 1,
            },
            CoreError::Locked,
            CoreError::PasswordRequired,
            CoreError::WeakPassword(WeakPasswordReason::Sequence),
            CoreError::WeakKdfParams("m"),
            CoreError::InvalidConfig("x"),
            CoreError::BiometricInvalidated,
            CoreError::BiometricCancelled,
            CoreError::BiometricLockout,
            CoreError::BiometricUnavailable,
            CoreError::BiometricNotEnabled,
            CoreError::BiometricFailed("x".into()),
            CoreError::Keystore("x".into()),
            CoreError::DeviceKeyDamaged { path: "k".into() },
            CoreError::CardNotFound,
            CoreError::AccountNotFound,
            CoreError::IssuerNotFound,
            CoreError::IssuerExists,
            CoreError::PhoneAlreadySet,
            CoreError::InvalidCap,
            CoreError::InvalidField {
                field: "label",
                reason: "empty",
            },
            CoreError::Protocol(ProtocolError::TimeOutOfRange),
            CoreError::Storage("disk full".into()),
            CoreError::InvalidActivationCode("x"),
            CoreError::PhoneNotSet,
            CoreError::Network("x".into()),
            CoreError::ActivationRefused,
            CoreError::IssuerError {
                status: 500,
                code: "internal".into(),
            },
            CoreError::BadResponse("x"),
            CoreError::BadSignature,
            CoreError::PolicyRefused("x".into()),
            CoreError::ServerTimeImplausible { skew_secs: 1 },
            CoreError::CapBelowLowestTier { lowest_tier: 1 },
            CoreError::AmountAboveCap { cap: 1 },
            CoreError::AmbiguousCard,
            CoreError::InvalidPaymentRequest {
                reason: "not_payment_uri",
            },
            CoreError::PaymentRequestExpired { expires_at: 1 },
            CoreError::CardSuspended,
            CoreError::CardRevoked,
            CoreError::CardOnOtherDevice,
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(CoreError::code).collect();
        assert_eq!(codes.len(), all.len());
        assert_eq!(all[0].code(), "wrong_password");
        assert_eq!(all[1].code(), "locked_out");
        assert_eq!(all[12].code(), "biometric_invalidated");
    }

    #[test]
    fn biometric_errors_map_one_to_one() {
        assert_eq!(
            CoreError::from(BiometricError::Invalidated),
            CoreError::BiometricInvalidated
        );
        assert_eq!(
            CoreError::from(BiometricError::Cancelled),
            CoreError::BiometricCancelled
        );
        assert_eq!(
            CoreError::from(BiometricError::Lockout),
            CoreError::BiometricLockout
        );
    }
}
