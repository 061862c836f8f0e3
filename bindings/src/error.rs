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
use pooya_core::{CoreError, WeakPasswordReason};

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

/// Why a new app password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PasswordProblem {
    /// Fewer than 6 characters.
    TooShort,
    /// More than 128 characters.
    TooLong,
    /// One character repeated (`111111`).
    AllSame,
    /// A straight run up or down (`123456`, `654321`, `abcdef`).
    Sequence,
    /// A control character.
    ControlCharacter,
    /// Only digits, and fewer than 8 of them.
    TooFewDigits,
    /// On the embedded list of common passwords.
    Common,
    /// A reason this build of the bindings does not know by name.
    Other,
}

impl PasswordProblem {
    /// A stable code for this problem: `too_short`, `too_long`,
    /// `all_same`, `sequence`, `control_character`, `too_few_digits`,
    /// `common`, `other`.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooShort => "too_short",
            Self::TooLong => "too_long",
            Self::AllSame => "all_same",
            Self::Sequence => "sequence",
            Self::ControlCharacter => "control_character",
            Self::TooFewDigits => "too_few_digits",
            Self::Common => "common",
            Self::Other => "other",
        }
    }
}

impl From<WeakPasswordReason> for PasswordProblem {
    fn from(r: WeakPasswordReason) -> Self {
        match r {
            WeakPasswordReason::TooShort => Self::TooShort,
            WeakPasswordReason::TooLong => Self::TooLong,
            WeakPasswordReason::AllSame => Self::AllSame,
            WeakPasswordReason::Sequence => Self::Sequence,
            WeakPasswordReason::ControlCharacter => Self::ControlCharacter,
            WeakPasswordReason::TooFewDigits => Self::TooFewDigits,
            WeakPasswordReason::Common => Self::Common,
            // Non-exhaustive in the core: still a weak password.
            _ => Self::Other,
        }
    }
}

/// Every error the Pooya library reports to Kotlin and Swift.
///
/// The variants mirror `pooya-core`'s `CoreError` (same stable codes,
/// same fields, so the apps can say "3 attempts left" or "try again in
/// 30 s" in their own language), plus the input, host and keystore-check
/// errors of the bindings themselves. All of it is mapped in [`From`]
/// impls in this file only.
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
    /// The app password was wrong; after `attempts_left` more wrong
    /// passwords the vault is wiped.
    #[error("wrong password ({attempts_left} attempts left before the vault is wiped)")]
    WrongPassword {
        /// Wrong passwords left before the wipe.
        attempts_left: u32,
    },
    /// Too many wrong passwords: the next try is allowed in
    /// `seconds_left` seconds.
    #[error("too many wrong passwords: try again in {seconds_left} s")]
    LockedOut {
        /// Seconds until the next password attempt is allowed.
        seconds_left: u64,
    },
    /// The vault was wiped after too many wrong passwords: reset it and
    /// activate the cards again.
    #[error("the vault was wiped after too many wrong passwords")]
    Wiped,
    /// The vault file is damaged or was altered.
    #[error("the vault is corrupted")]
    VaultCorrupted,
    /// There is no vault yet: create one.
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
    /// The vault is locked (by `lock()`, by the idle timeout, or never
    /// unlocked): show the lock screen.
    #[error("the vault is locked")]
    Locked,
    /// The operation needs the app password again (raising a cap).
    #[error("this needs the app password")]
    PasswordRequired,
    /// The new app password is too weak.
    #[error("password refused: {}", reason.code())]
    WeakPassword {
        /// Why.
        reason: PasswordProblem,
    },
    /// A host setting (`VaultSettings`) below the security floors or
    /// out of range.
    #[error("configuration refused: {reason}")]
    InvalidConfig {
        /// Which bound (English, for logs).
        reason: String,
    },
    /// The biometric key was invalidated by an enrollment change: the
    /// biometric slot was deleted; unlock with the password and enable
    /// biometrics again.
    #[error("biometric key invalidated: use the password and enable biometrics again")]
    BiometricInvalidated,
    /// The user cancelled the biometric prompt.
    #[error("biometric prompt cancelled")]
    BiometricCancelled,
    /// The platform locked the biometric sensor.
    #[error("biometrics locked out by the platform")]
    BiometricLockout,
    /// No biometric hardware, no enrolled biometrics, or no gate given.
    #[error("biometrics unavailable")]
    BiometricUnavailable,
    /// Biometric unlock is not enabled for this vault.
    #[error("biometric unlock is not enabled")]
    BiometricNotEnabled,
    /// The biometric gate failed for another reason.
    #[error("biometric hook failed: {details}")]
    BiometricFailed {
        /// What the platform reported.
        details: String,
    },
    /// The device keystore failed (for example the vault was copied
    /// from another device).
    #[error("device keystore failed: {details}")]
    Keystore {
        /// What the keystore reported.
        details: String,
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
    /// The phone number is set once per vault and already is.
    #[error("the phone number is already set")]
    PhoneAlreadySet,
    /// A cap that is not a tier of the card's cap ladder.
    #[error("the cap is not a tier of this card's cap ladder")]
    InvalidCap,
    /// The storage failed for a reason other than corruption (disk full,
    /// permissions).
    #[error("storage failed: {details}")]
    Storage {
        /// The storage's description (never contains field values).
        details: String,
    },
    /// An activation code that is not 10–16 digits or whose check digit
    /// is wrong (a typo): caught before any network call.
    #[error("activation code refused: {reason}")]
    InvalidActivationCode {
        /// Why (English, for logs; the code is not echoed).
        reason: String,
    },
    /// Cards can only be added once the phone number is set.
    #[error("set the phone number first")]
    PhoneNotSet,
    /// No answer from the bank: the host's `Transport` threw (no network,
    /// timeout, TLS). Nothing was stored.
    #[error("network failed: {details}")]
    Network {
        /// What the transport reported.
        details: String,
    },
    /// The bank refused the activation code (wrong, expired, already used,
    /// superseded, or another phone number). Nothing was stored.
    #[error("the bank refused the activation code (wrong, expired or already used)")]
    ActivationRefused,
    /// The bank answered with another HTTP error. Nothing was stored.
    #[error("the bank answered HTTP {status} ({issuer_code})")]
    IssuerError {
        /// The HTTP status.
        status: u16,
        /// The bank's error code (letters, digits, `_`), empty if none.
        issuer_code: String,
    },
    /// The bank's answer is malformed. Nothing was stored.
    #[error("the bank's answer is malformed: {reason}")]
    BadResponse {
        /// What is wrong with it (English, for logs).
        reason: String,
    },
    /// The bank's answer is not signed by the pinned issuer key: a
    /// tampered answer or another server. Nothing was stored.
    #[error("the bank's answer is not signed by the pinned issuer key")]
    BadSignature,
    /// The bank's signed PIN policies are outside what the phone accepts.
    /// Nothing was stored.
    #[error("the bank's PIN policies are refused: {reason}")]
    PolicyRefused {
        /// Which bound (English, for logs).
        reason: String,
    },
    /// The bank's clock differs from the phone's by more than a day.
    /// Nothing was stored.
    #[error("the bank's clock differs from this phone's by {skew_secs} s")]
    ServerTimeImplausible {
        /// Bank time minus phone time, in seconds.
        skew_secs: i64,
    },
    /// A cap below the smallest tier of the card's ladder.
    #[error("the cap is below the smallest tier ({lowest_tier} Rials)")]
    CapBelowLowestTier {
        /// The smallest tier, in Rials.
        lowest_tier: u64,
    },
    /// A transaction-bound PIN for more than the card's cap: raise the cap
    /// first (that needs the password).
    #[error("the amount is above the card's cap ({cap} Rials)")]
    AmountAboveCap {
        /// The card's cap, in Rials.
        cap: u64,
    },
    /// More than one card ends in these four digits: use the card id.
    #[error("more than one card ends in these digits")]
    AmbiguousCard,
    /// The issuer profile was stored without an activation key (before
    /// activation v2): add the issuer again with both keys.
    #[error("the issuer has no activation key: add it again with its activation key")]
    ActivationKeyMissing,
    // Issue 13, payment QR codes.
    /// A scanned payment request the strict parser refused; `reason` is
    /// its stable code (`not_payment_uri`, `invalid_amount`,
    /// `missing_parameter`, … docs/protocol.md, "Payment request URIs").
    #[error("not a valid payment request ({reason})")]
    InvalidPaymentRequest {
        /// The parser's stable code.
        reason: String,
    },
    /// The payment request has expired: ask the page for a new one.
    #[error("the payment request expired at {expires_at}")]
    PaymentRequestExpired {
        /// Its expiry, Unix seconds (bank time).
        expires_at: u64,
    },
    // Issue 13, a card's life on the phone (docs/phone.md).
    /// The bank suspended this card's app (its last signed state): no PIN
    /// is made until a `sync` says it is active again.
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

#[uniffi::export]
impl PooyaError {
    /// The stable, machine-readable code of this error (never renamed;
    /// the vault's codes are those of `pooya-core`): `invalid_amount`,
    /// `invalid_input`, `host_failure`, `keystore_unusable`, `internal`,
    /// `wrong_password`, `locked_out`, `wiped`, `vault_corrupted`,
    /// `no_vault`, `vault_exists`, `vault_too_new`, `locked`,
    /// `password_required`, `weak_password`, `invalid_config`,
    /// `biometric_invalidated`, `biometric_cancelled`,
    /// `biometric_lockout`, `biometric_unavailable`,
    /// `biometric_not_enabled`, `biometric_failed`, `keystore`,
    /// `card_not_found`, `issuer_not_found`, `issuer_exists`,
    /// `phone_already_set`, `invalid_cap`, `storage`,
    /// `invalid_activation_code`, `phone_not_set`, `network`,
    /// `activation_refused`, `issuer_error`, `bad_response`,
    /// `bad_signature`, `policy_refused`, `server_time_implausible`,
    /// `cap_below_lowest_tier`, `amount_above_cap`, `ambiguous_card`,
    /// `activation_key_missing`, `invalid_payment_request`,
    /// `payment_request_expired`, `card_suspended`, `card_revoked`,
    /// `card_on_other_device`.
    pub fn code(&self) -> String {
        match self {
            Self::InvalidAmount { .. } => "invalid_amount",
            Self::InvalidInput { .. } => "invalid_input",
            Self::HostFailure { .. } => "host_failure",
            Self::KeystoreUnusable { .. } => "keystore_unusable",
            Self::Internal { .. } => "internal",
            Self::WrongPassword { .. } => "wrong_password",
            Self::LockedOut { .. } => "locked_out",
            Self::Wiped => "wiped",
            Self::VaultCorrupted => "vault_corrupted",
            Self::NoVault => "no_vault",
            Self::VaultExists => "vault_exists",
            Self::VaultTooNew { .. } => "vault_too_new",
            Self::Locked => "locked",
            Self::PasswordRequired => "password_required",
            Self::WeakPassword { .. } => "weak_password",
            Self::InvalidConfig { .. } => "invalid_config",
            Self::BiometricInvalidated => "biometric_invalidated",
            Self::BiometricCancelled => "biometric_cancelled",
            Self::BiometricLockout => "biometric_lockout",
            Self::BiometricUnavailable => "biometric_unavailable",
            Self::BiometricNotEnabled => "biometric_not_enabled",
            Self::BiometricFailed { .. } => "biometric_failed",
            Self::Keystore { .. } => "keystore",
            Self::CardNotFound => "card_not_found",
            Self::AccountNotFound => "account_not_found",
            Self::IssuerNotFound => "issuer_not_found",
            Self::IssuerExists => "issuer_exists",
            Self::PhoneAlreadySet => "phone_already_set",
            Self::InvalidCap => "invalid_cap",
            Self::Storage { .. } => "storage",
            Self::InvalidActivationCode { .. } => "invalid_activation_code",
            Self::PhoneNotSet => "phone_not_set",
            Self::Network { .. } => "network",
            Self::ActivationRefused => "activation_refused",
            Self::IssuerError { .. } => "issuer_error",
            Self::BadResponse { .. } => "bad_response",
            Self::BadSignature => "bad_signature",
            Self::PolicyRefused { .. } => "policy_refused",
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
        .to_owned()
    }
}

impl From<CoreError> for PooyaError {
    /// The one mapping of the core's error: same codes, same fields.
    /// `WeakKdfParams` and `InvalidConfig` both become
    /// [`PooyaError::InvalidConfig`] (both refuse a `VaultSettings`);
    /// `InvalidField` and `Protocol` become [`PooyaError::InvalidInput`]
    /// (or [`PooyaError::InvalidAmount`]).
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::WrongPassword { attempts_left } => Self::WrongPassword { attempts_left },
            CoreError::LockedOut { seconds_left } => Self::LockedOut { seconds_left },
            CoreError::Wiped => Self::Wiped,
            CoreError::VaultCorrupted => Self::VaultCorrupted,
            CoreError::NoVault => Self::NoVault,
            CoreError::VaultExists => Self::VaultExists,
            CoreError::VaultTooNew { found, supported } => Self::VaultTooNew { found, supported },
            CoreError::Locked => Self::Locked,
            CoreError::PasswordRequired => Self::PasswordRequired,
            CoreError::WeakPassword(r) => Self::WeakPassword { reason: r.into() },
            CoreError::WeakKdfParams(r) | CoreError::InvalidConfig(r) => Self::InvalidConfig {
                reason: r.to_owned(),
            },
            CoreError::BiometricInvalidated => Self::BiometricInvalidated,
            CoreError::BiometricCancelled => Self::BiometricCancelled,
            CoreError::BiometricLockout => Self::BiometricLockout,
            CoreError::BiometricUnavailable => Self::BiometricUnavailable,
            CoreError::BiometricNotEnabled => Self::BiometricNotEnabled,
            CoreError::BiometricFailed(details) => Self::BiometricFailed { details },
            CoreError::Keystore(details) => Self::Keystore { details },
            // Only the desktop key file raises it; a phone shell sees it
            // as a keystore failure with the full explanation.
            e @ CoreError::DeviceKeyDamaged { .. } => Self::Keystore {
                details: e.to_string(),
            },
            CoreError::CardNotFound => Self::CardNotFound,
            CoreError::AccountNotFound => Self::AccountNotFound,
            CoreError::IssuerNotFound => Self::IssuerNotFound,
            CoreError::IssuerExists => Self::IssuerExists,
            CoreError::PhoneAlreadySet => Self::PhoneAlreadySet,
            CoreError::InvalidCap => Self::InvalidCap,
            CoreError::InvalidField { field, reason } => Self::InvalidInput {
                field: field.to_owned(),
                reason: reason.to_owned(),
            },
            CoreError::Protocol(p) => p.into(),
            CoreError::Storage(details) => Self::Storage { details },
            CoreError::InvalidActivationCode(r) => Self::InvalidActivationCode {
                reason: r.to_owned(),
            },
            CoreError::PhoneNotSet => Self::PhoneNotSet,
            CoreError::Network(details) => Self::Network { details },
            CoreError::ActivationRefused => Self::ActivationRefused,
            CoreError::IssuerError { status, code } => Self::IssuerError {
                status,
                issuer_code: code,
            },
            CoreError::BadResponse(r) => Self::BadResponse {
                reason: r.to_owned(),
            },
            CoreError::BadSignature => Self::BadSignature,
            CoreError::PolicyRefused(reason) => Self::PolicyRefused { reason },
            CoreError::ServerTimeImplausible { skew_secs } => {
                Self::ServerTimeImplausible { skew_secs }
            }
            CoreError::CapBelowLowestTier { lowest_tier } => {
                Self::CapBelowLowestTier { lowest_tier }
            }
            CoreError::AmountAboveCap { cap } => Self::AmountAboveCap { cap },
            CoreError::AmbiguousCard => Self::AmbiguousCard,
            CoreError::ActivationKeyMissing => Self::ActivationKeyMissing,
            CoreError::InvalidPaymentRequest { reason } => Self::InvalidPaymentRequest {
                reason: reason.to_owned(),
            },
            CoreError::PaymentRequestExpired { expires_at } => {
                Self::PaymentRequestExpired { expires_at }
            }
            CoreError::CardSuspended => Self::CardSuspended,
            CoreError::CardRevoked => Self::CardRevoked,
            CoreError::CardOnOtherDevice => Self::CardOnOtherDevice,
            // `CoreError` is non-exhaustive; the test
            // `every_core_error_has_its_own_variant` fails when a variant
            // known to this build lands here.
            other => Self::Internal {
                details: format!("{other} ({})", other.code()),
            },
        }
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

    /// Every `CoreError` variant this build knows, one of each.
    fn all_core_errors() -> Vec<CoreError> {
        vec![
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
            CoreError::WeakKdfParams("memory below 19 MiB"),
            CoreError::InvalidConfig("idle timeout"),
            CoreError::BiometricInvalidated,
            CoreError::BiometricCancelled,
            CoreError::BiometricLockout,
            CoreError::BiometricUnavailable,
            CoreError::BiometricNotEnabled,
            CoreError::BiometricFailed("sensor".into()),
            CoreError::Keystore("KeyStoreException".into()),
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
            CoreError::Protocol(ProtocolError::InvalidField {
                field: "phone",
                reason: "not a mobile number",
            }),
            CoreError::Storage("disk full".into()),
            CoreError::InvalidActivationCode("check digit"),
            CoreError::PhoneNotSet,
            CoreError::Network("connection refused".into()),
            CoreError::ActivationRefused,
            CoreError::IssuerError {
                status: 500,
                code: "internal".into(),
            },
            CoreError::BadResponse("not JSON"),
            CoreError::BadSignature,
            CoreError::PolicyRefused("digits".into()),
            CoreError::ServerTimeImplausible { skew_secs: -90_000 },
            CoreError::CapBelowLowestTier {
                lowest_tier: 5_000_000,
            },
            CoreError::AmountAboveCap { cap: 20_000_000 },
            CoreError::AmbiguousCard,
            CoreError::ActivationKeyMissing,
            CoreError::InvalidPaymentRequest {
                reason: "missing_parameter",
            },
            CoreError::PaymentRequestExpired { expires_at: 5 },
            CoreError::DeviceKeyDamaged {
                path: "/tmp/vault.db.devkey".into(),
            },
            CoreError::CardSuspended,
            CoreError::CardRevoked,
            CoreError::CardOnOtherDevice,
        ]
    }

    #[test]
    fn every_core_error_has_its_own_variant() {
        for core in all_core_errors() {
            let ffi = PooyaError::from(core.clone());
            assert_ne!(ffi.code(), "internal", "{core:?} fell through to Internal");
            // Same code as the core, except where two core variants are
            // deliberately merged.
            let want = match core.code() {
                "weak_kdf_params" => "invalid_config",
                "invalid_field" => "invalid_input",
                "device_key_damaged" => "keystore",
                c => c,
            };
            assert_eq!(ffi.code(), want, "{core:?}");
        }
    }

    #[test]
    fn core_error_fields_survive() {
        assert_eq!(
            PooyaError::from(CoreError::WrongPassword { attempts_left: 4 }),
            PooyaError::WrongPassword { attempts_left: 4 }
        );
        assert_eq!(
            PooyaError::from(CoreError::LockedOut { seconds_left: 29 }),
            PooyaError::LockedOut { seconds_left: 29 }
        );
        assert_eq!(
            PooyaError::from(CoreError::WeakPassword(WeakPasswordReason::TooShort)),
            PooyaError::WeakPassword {
                reason: PasswordProblem::TooShort
            }
        );
        assert_eq!(
            PooyaError::from(CoreError::VaultTooNew {
                found: 3,
                supported: 1
            }),
            PooyaError::VaultTooNew {
                found: 3,
                supported: 1
            }
        );
        let e = PooyaError::from(CoreError::Protocol(ProtocolError::InvalidField {
            field: "phone",
            reason: "not a mobile number",
        }));
        assert!(matches!(&e, PooyaError::InvalidInput { field, .. } if field == "phone"));
        assert_eq!(
            PooyaError::from(CoreError::IssuerError {
                status: 502,
                code: "sms_failed".into()
            }),
            PooyaError::IssuerError {
                status: 502,
                issuer_code: "sms_failed".into()
            }
        );
        assert_eq!(
            PooyaError::from(CoreError::CapBelowLowestTier { lowest_tier: 7 }),
            PooyaError::CapBelowLowestTier { lowest_tier: 7 }
        );
        assert_eq!(
            PooyaError::from(CoreError::Network("timed out".into())).to_string(),
            "network failed: timed out"
        );
        assert_eq!(
            PooyaError::from(CoreError::Protocol(ProtocolError::InvalidAmount(
                AmountError::Zero
            ))),
            PooyaError::InvalidAmount {
                reason: AmountProblem::Zero
            }
        );
    }

    #[test]
    fn inactive_cards_map_to_their_own_variants() {
        let cases = [
            (
                CoreError::CardSuspended,
                PooyaError::CardSuspended,
                "card_suspended",
            ),
            (
                CoreError::CardRevoked,
                PooyaError::CardRevoked,
                "card_revoked",
            ),
            (
                CoreError::CardOnOtherDevice,
                PooyaError::CardOnOtherDevice,
                "card_on_other_device",
            ),
        ];
        for (core, want, code) in cases {
            let message = core.to_string();
            let ffi = PooyaError::from(core);
            assert_eq!(ffi, want);
            assert_eq!(ffi.code(), code);
            assert_eq!(ffi.to_string(), message);
        }
    }

    #[test]
    fn codes_are_distinct() {
        let mut all = vec![
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
        all.extend(
            all_core_errors()
                .into_iter()
                .filter(|e| {
                    !matches!(
                        e.code(),
                        "weak_kdf_params"
                            | "invalid_field"
                            | "invalid_input"
                            | "device_key_damaged"
                    )
                })
                .map(PooyaError::from),
        );
        let mut codes: Vec<String> = all.iter().map(PooyaError::code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
