//! Pooya's protocol: the dynamic-PIN algorithms and the data both the
//! phone and the bank rely on. Pure: no I/O, no clock (time is always an
//! argument), no randomness.
//!
//! - [`hotp`] (RFC 4226), [`totp`](mod@totp) (RFC 6238, via `totp-rs`) and
//!   [`ocra`](mod@ocra) (RFC 6287) on `ring::hmac`;
//! - card seeds and per-kind keys ([`CardSeed`], [`CardKeys`]);
//! - the three PIN kinds, their policies, generation and [`verify`];
//! - amounts in Rials and the cap ladder ([`parse_amount`], [`CapLadder`]);
//! - card, phone and activation-code validation ([`Pan`],
//!   [`normalize_phone`], [`normalize_activation_code`]);
//! - activation v2: the HPKE-sealed request, the transcript and the seed
//!   ([`activation`]);
//! - verification wire types ([`wire`]);
//! - transaction types and payment request URIs ([`payment`]);
//! - signed time and the card-removal proof ([`time`](mod@time), [`CardKeys`]).
//!
//! docs/protocol.md is the specification these modules implement.

pub mod activation;
pub mod amount;
pub mod card_request;
mod error;
pub mod hotp;
mod hpke_open;
pub mod ids;
pub mod ocra;
pub mod otpauth;
pub mod payment;
pub mod pin;
pub mod secret;
pub mod time;
pub mod totp;
pub mod wire;

// The FFI's scaffolding for the enums that derive `uniffi::Enum` (only with
// the `uniffi` feature, which pooya-ffi turns on; docs/phone.md, "FFI").
#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!();

pub use amount::{CapLadder, format_rials, format_rials_fa, normalize_digits, parse_amount};
pub use error::{AmountError, ProtocolError};
pub use hotp::{HashAlgorithm, hotp};
pub use ids::{
    Bank, Pan, bank_for_bin, join_activation_code, normalize_activation_code,
    normalize_device_label, normalize_phone,
};
pub use ocra::{OcraInput, OcraSuite, QuestionFormat, ocra};
pub use otpauth::{OtpAccount, OtpCode, OtpKind};
pub use payment::{Language, PayeeName, PaymentError, PaymentRequest, PaymentView, TxType};
pub use pin::{
    Candidate, Claim, Outcome, Pin, PinKind, PinPolicy, Policies, Transaction, VerificationPlan,
    Verified, first_pin, plan_verification, second_pin, transaction_pin, verify,
};
pub use secret::{CardKeys, CardSeed, PinKey, SecretBytes};
pub use totp::totp;
