//! The issuer's two error types, each with stable codes
//! (docs/issuer.md, "Errors"): [`IssuerError`], what goes wrong in the
//! machinery (files, keys, storage, SMS), and [`ServiceError`], how a
//! request is refused or fails. The server maps [`ServiceError`] to an
//! HTTP status in one place.
//!
//! Messages never contain a PAN, a seed, a code or a token: they name
//! fields and reasons only.

use pooya_protocol::ProtocolError;
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
    /// The database failed.
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
    /// The hardware security module (a PKCS#11 token) refused or failed.
    #[error("key provider: {0}")]
    Hsm(#[from] HsmError),
}

/// What went wrong with a PKCS#11 token; each has its own stable code so an
/// operator knows at start what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// The module could not be loaded or initialised, or the token is not
    /// reachable (unplugged, network HSM down): `hsm_unavailable`.
    #[error("the PKCS#11 module or token is unavailable: {0}")]
    Unavailable(String),
    /// No token with the configured label: `hsm_token_not_found`.
    #[error("no PKCS#11 token labelled {0:?}")]
    TokenNotFound(String),
    /// The token refused the user PIN (`CKR_PIN_INCORRECT`, or locked):
    /// `hsm_pin_incorrect`. The PIN itself is never in the message.
    #[error("the token refused the PIN")]
    PinIncorrect,
    /// A key the issuer needs is not in the token: `hsm_key_missing`.
    #[error("key {0:?} is not in the token")]
    KeyMissing(String),
    /// The token cannot do a mechanism the issuer needs:
    /// `hsm_mechanism_unsupported`.
    #[error("the token does not support {0}")]
    MechanismUnsupported(&'static str),
    /// An operation failed in the token (`CKR_…` names the return value):
    /// `hsm_failed`.
    #[error("{operation} failed in the token: {ckr}")]
    Failed {
        /// What was being done.
        operation: &'static str,
        /// The PKCS#11 return value's name, e.g. `CKR_DEVICE_ERROR`.
        ckr: String,
    },
}

impl HsmError {
    /// A stable, machine-readable code (docs/issuer.md; never renamed).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "hsm_unavailable",
            Self::TokenNotFound(_) => "hsm_token_not_found",
            Self::PinIncorrect => "hsm_pin_incorrect",
            Self::KeyMissing(_) => "hsm_key_missing",
            Self::MechanismUnsupported(_) => "hsm_mechanism_unsupported",
            Self::Failed { .. } => "hsm_failed",
        }
    }
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
            Self::Hsm(e) => e.code(),
        }
    }

    /// An I/O failure while doing `context`.
    pub fn io(context: &'static str, e: &std::io::Error) -> Self {
        Self::Io {
            context,
            message: e.to_string(),
        }
    }
}

/// A field of a request that can be refused (400), with its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `invalid_pan`.
    Pan,
    /// `invalid_phone`.
    Phone,
    /// `invalid_code`.
    Code,
    /// `invalid_payee`.
    Payee,
    /// `invalid_amount`.
    Amount,
    /// `invalid_device_key`.
    DeviceKey,
    /// `invalid_device_label`.
    DeviceLabel,
    /// `not_sealed_to_issuer`: an activation request that does not open
    /// under the issuer's activation key.
    Sealed,
    /// `invalid_request`: a sealed request that opened but is not the
    /// expected JSON.
    SealedContent,
    /// `invalid_merchant_name`.
    MerchantName,
    /// `mixed_script_merchant_name`.
    MerchantNameScript,
    /// `invalid_query`.
    Query,
    /// `invalid_nonce` (`/v1/time`).
    Nonce,
    /// `invalid_card_id` (device card requests).
    CardId,
    /// `invalid_proof` (device card requests).
    Proof,
    /// `invalid_type`: a transaction type where none may be (a first PIN,
    /// no payee) or not one of `purchase`, `transfer`, `bill`.
    TxType,
    /// `missing_type`: a payee without its transaction type (the Central
    /// Bank rule of 1399/10/08 binds the type with the amount and payee).
    TxTypeMissing,
}

impl Field {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Pan => "invalid_pan",
            Self::Phone => "invalid_phone",
            Self::Code => "invalid_code",
            Self::Payee => "invalid_payee",
            Self::Amount => "invalid_amount",
            Self::DeviceKey => "invalid_device_key",
            Self::DeviceLabel => "invalid_device_label",
            Self::Sealed => "not_sealed_to_issuer",
            Self::Nonce => "invalid_nonce",
            Self::CardId => "invalid_card_id",
            Self::Proof => "invalid_proof",
            Self::SealedContent => "invalid_request",
            Self::MerchantName => "invalid_merchant_name",
            Self::MerchantNameScript => "mixed_script_merchant_name",
            Self::Query => "invalid_query",
            Self::TxType => "invalid_type",
            Self::TxTypeMissing => "missing_type",
        }
    }
}

/// Where an unknown payee was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayeeAt {
    /// In the path of a merchant route (404).
    Path,
    /// In a Harim request (422).
    Request,
}

/// How a request is refused, or fails. Not `non_exhaustive`: the server
/// maps every variant to a status, and a new one must be mapped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ServiceError {
    /// A field is malformed (400).
    #[error("{message}")]
    Invalid {
        /// Which.
        field: Field,
        /// Why, naming the field, never its value.
        message: String,
    },
    /// No bearer token, or an unknown one (401).
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// Another role's token (403).
    #[error("this token's role may not use this route")]
    Forbidden,
    /// The phone number or activation code is wrong, expired or spent
    /// (403); one answer for every reason.
    #[error("the phone number or the activation code is wrong, expired or already used")]
    ActivationRefused,
    /// No card with this number is enrolled (404; ops only).
    #[error("no card with this number is enrolled")]
    CardNotFound,
    /// A card request (`/v1/cards/remove`, `/v1/cards/status`) names a
    /// card the bank does not know or one without an app (404
    /// `card_not_found`), answered with the issuer's signature over
    /// `not_found_signing_input` of the request (hex), so the phone can
    /// tell the bank's answer from a network's (docs/protocol.md, "Signed
    /// card answers").
    #[error("no card with this id has an app")]
    CardNotFoundSigned {
        /// Ed25519 signature, 128 hex digits.
        signature: String,
    },
    /// No merchant is registered under this payee id (404 or 422).
    #[error("no merchant is registered under this payee id")]
    UnknownPayee(PayeeAt),
    /// Too soon or too often (429).
    #[error("please try again in {retry_after_secs} seconds")]
    RateLimited {
        /// Seconds until a request can succeed.
        retry_after_secs: u64,
    },
    /// A revoked card's app cannot be suspended or resumed: it needs a
    /// new activation at an ATM (409).
    #[error("the card's app is revoked: it must be activated again at an ATM")]
    CardRevoked,
    /// A device request's time is more than 5 minutes from the bank's
    /// clock (400): sync the time and ask again.
    #[error("the request's time is too far from the bank's clock; sync and try again")]
    StaleRequest,
    /// The machinery failed (5xx; details in the log only).
    #[error(transparent)]
    Issuer(#[from] IssuerError),
}

impl ServiceError {
    /// A malformed field.
    pub fn invalid(field: Field, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// A field the protocol crate refused (its messages name the field and
    /// the reason, never the value).
    pub fn protocol(field: Field, e: &ProtocolError) -> Self {
        Self::invalid(field, e.to_string())
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { field, .. } => field.code(),
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::ActivationRefused => "activation_refused",
            Self::CardNotFound | Self::CardNotFoundSigned { .. } => "card_not_found",
            Self::UnknownPayee(_) => "unknown_payee",
            Self::RateLimited { .. } => "rate_limited",
            Self::CardRevoked => "card_revoked",
            Self::StaleRequest => "stale_request",
            Self::Issuer(e) => e.code(),
        }
    }
}

impl From<ProtocolError> for ServiceError {
    /// A protocol error that was not mapped to a request field comes from
    /// stored data (a sealed seed or PAN that opened but does not parse):
    /// an internal failure, never the client's.
    fn from(e: ProtocolError) -> Self {
        Self::Issuer(IssuerError::Protocol(e))
    }
}
