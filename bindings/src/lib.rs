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
//!   self-check.
//!
//! The vault, cards and PINs will be wrapped in a `vault` module as one
//! `PooyaApp` object holding the core's vault and the adapted hooks, with
//! records for card display data (masked PAN, bank, label, cap) and PINs
//! (code, validity window, seconds left).

uniffi::setup_scaffolding!();

pub mod diagnostics;
pub mod error;
pub mod hooks;
pub mod text;

pub use diagnostics::{check_device_keystore, noop};
pub use error::{AmountProblem, PooyaError};
pub use hooks::{
    BiometricError, BiometricGate, Clock, DeviceKeystore, HostError, HttpResponse, Transport,
};
