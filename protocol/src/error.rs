//! The one public error type of `pooya-protocol`, with stable codes.

use thiserror::Error;

/// Everything that can go wrong in the protocol crate.
///
/// Every variant has a stable [`code`](ProtocolError::code) that callers may
/// match on or show; messages never contain key, seed or code material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An OCRA suite string does not follow RFC 6287 §6.
    #[error("invalid OCRA suite: {0}")]
    InvalidSuite(String),
    /// An input required by the OCRA suite is missing, or one it does not
    /// use was given.
    #[error("OCRA input does not match the suite: {0}")]
    OcraInput(String),
    /// The number of digits is outside what the algorithm supports.
    #[error("unsupported number of digits: {0}")]
    InvalidDigits(u32),
    /// A key is too short or too long for the algorithm.
    #[error("invalid key length: {0} bytes")]
    InvalidKeyLength(usize),
    /// A time step of zero or one the suite cannot express.
    #[error("invalid time step: {0} s")]
    InvalidStep(u64),
    /// An amount that is not a positive whole number of Rials.
    #[error("invalid amount: {0}")]
    InvalidAmount(AmountError),
    /// A cap ladder that is empty, unsorted or too long.
    #[error("invalid cap ladder: {0}")]
    InvalidCapLadder(&'static str),
    /// A PIN policy outside the bounds in docs/protocol.md.
    #[error("invalid PIN policy: {0}")]
    InvalidPolicy(String),
    /// A payee identifier that is empty or too long.
    #[error("invalid payee: {0}")]
    InvalidPayee(&'static str),
    /// Hex text that does not decode.
    #[error("invalid hex in {0}")]
    InvalidHex(&'static str),
    /// A time before the Unix epoch or too large to count steps from.
    #[error("time out of range")]
    TimeOutOfRange,
    /// An activation public key (P-256, SEC1 uncompressed) or private key
    /// that is not a valid point or scalar.
    #[error("invalid activation key")]
    InvalidActivationKey,
    /// A sealed activation request that does not open under this issuer's
    /// activation key (RFC 9180 §5.2 `Open` failed): sealed to another
    /// key, tampered with, or not sealed at all.
    #[error("the activation request is not sealed to this issuer")]
    NotSealedToIssuer,
    /// A wire field that fails validation.
    #[error("invalid field {field}: {reason}")]
    InvalidField {
        /// The field's name on the wire.
        field: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
}

impl ProtocolError {
    /// A stable, machine-readable code for this error (documented in
    /// docs/protocol.md; never renamed).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidSuite(_) => "invalid_suite",
            Self::OcraInput(_) => "ocra_input",
            Self::InvalidDigits(_) => "invalid_digits",
            Self::InvalidKeyLength(_) => "invalid_key_length",
            Self::InvalidStep(_) => "invalid_step",
            Self::InvalidAmount(_) => "invalid_amount",
            Self::InvalidCapLadder(_) => "invalid_cap_ladder",
            Self::InvalidPolicy(_) => "invalid_policy",
            Self::InvalidPayee(_) => "invalid_payee",
            Self::InvalidHex(_) => "invalid_hex",
            Self::TimeOutOfRange => "time_out_of_range",
            Self::InvalidActivationKey => "invalid_activation_key",
            Self::NotSealedToIssuer => "not_sealed_to_issuer",
            Self::InvalidField { .. } => "invalid_field",
        }
    }
}

/// Why an amount was refused by [`parse_amount`](crate::parse_amount).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AmountError {
    /// Nothing but spaces.
    #[error("empty")]
    Empty,
    /// A character that is neither a digit nor a thousands separator, at
    /// this character index.
    #[error("unexpected character at position {0}")]
    UnexpectedChar(usize),
    /// Thousands separators not in groups of three digits.
    #[error("misplaced thousands separator")]
    BadGrouping,
    /// More than `u64::MAX` Rials.
    #[error("too large")]
    Overflow,
    /// Zero Rials: a payment or a cap is always positive.
    #[error("must be greater than zero")]
    Zero,
}

impl From<AmountError> for ProtocolError {
    fn from(e: AmountError) -> Self {
        Self::InvalidAmount(e)
    }
}
