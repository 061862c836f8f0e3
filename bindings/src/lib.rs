//! uniffi bindings of `pooya-core` for Kotlin and Swift: thin wrappers only.
//!
//! Everything here converts between FFI-friendly types (strings, byte
//! vectors, records, one error enum) and the core's own types; the logic
//! lives in `pooya-core` and `pooya-protocol`. Nothing that holds a card
//! seed or a key is ever exported: only PIN codes and display data cross.
//!
//! Layout (see README.md, "Crate layout"):
//! - [`error`]: [`PooyaError`], the one error type (Kotlin
//!   `PooyaException`, Swift `PooyaError`), with stable codes;
//! - [`hooks`]: the foreign traits the shells implement
//!   ([`DeviceKeystore`], [`BiometricGate`], [`Transport`], [`Clock`]) and
//!   their adapters into `pooya_core::hooks`;
//! - [`text`]: input parsing and display formatting for the UI (amounts in
//!   Rials, phone numbers, activation codes);
//! - [`diagnostics`]: the no-op call (FFI baseline) and the device-keystore
//!   self-check;
//! - [`vault`]: [`PooyaApp`], the phone (vault, app lock, issuers, card
//!   activation, caps, PINs) as one thread-safe object, with records of
//!   display data only;
//! - [`network`]: the calls that use the network (`add_card`,
//!   `sync_time`) as async methods of [`PooyaApp`] over the async
//!   [`Transport`], in the core's prepare → await → finish steps;
//! - [`card_life`]: a card's life on the phone (`remove_card` telling
//!   the bank, `sync` learning each card's signed state) and its records;
//! - [`accounts`]: the standard OTP accounts (otpauth:// URIs, Google
//!   Authenticator exports) on [`PooyaApp`], with their records.

uniffi::setup_scaffolding!();

pub mod accounts;
pub mod card_life;
pub mod diagnostics;
pub mod error;
pub mod hooks;
pub mod network;
pub mod payment;
pub mod text;
pub mod vault;

pub use accounts::{AccountCode, AccountInfo, OtpAccountKind, OtpAlgorithm};
pub use card_life::CardAppStatus;
pub use diagnostics::{check_device_keystore, noop};
pub use error::{AmountProblem, PasswordProblem, PooyaError};
pub use hooks::{
    BiometricError, BiometricGate, Clock, DeviceKeystore, HostError, HttpResponse, Transport,
};
pub use payment::{Language, PaymentInfo, TxType};
pub use vault::{
    ActivatedCard, CapInfo, CardInfo, IssuerInfo, PinInfo, PinKind, PooyaApp, VaultSettings,
    VaultState, default_vault_settings,
};
