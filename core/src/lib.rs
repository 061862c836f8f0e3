//! The phone side of Pooya: the encrypted vault, app lock, cards, caps, the
//! activation client and dynamic PINs. Host facilities (keystore, biometrics,
//! network, clock) come in through the traits in [`hooks`].
//!
//! - [`vault`]: the encrypted SQLite vault and the app lock (key slots,
//!   lockout, session, idle auto-lock); start at [`Vault`].
//! - [`Phone`]: the vault plus the network hook: activate cards with the
//!   SMS code ([`activation`] checks the bank's answer), list, rename and
//!   remove them, set caps, read PINs offline ([`pins`]).
//! - [`KeyFileKeystore`]: the desktop device keystore (a key file, weaker
//!   than a phone's hardware keystore).
//! - [`CoreError`]: the one public error type, with stable codes.
//! - `testing` (feature `testing`): in-memory hooks for tests.

pub mod activation;
pub mod bank_time;
pub mod card_life;
mod error;
pub mod hooks;
mod keyfile;
mod phone;
pub mod pins;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod vault;
mod views;

pub use bank_time::{BankTime, TimeAnchor, TimeSource};
pub use card_life::{
    BankNotice, CardAnswer, CardRemoval, CardRequestTarget, CardSync, PreparedCardRequest,
    SyncedCard,
};
pub use error::{CoreError, WeakPasswordReason};
pub use keyfile::KeyFileKeystore;
pub use phone::{
    AddCardRequest, AddedCard, CardView, ClockReading, Exchange, IssuerView, Phone, TimeSync,
    TimeSyncRequest,
};
pub use pins::{CapChange, PinView};
pub use vault::kdf::KdfParams;
pub use vault::lockout::LockoutPolicy;
pub use vault::{
    CardId, CardRecord, CardSecret, CardState, Hooks, IssuerProfile, NewCard, PendingRemoval,
    PendingRemovalId, Vault, VaultConfig, VaultStatus,
};

// The FFI's scaffolding for the records that derive `uniffi::Record` (only
// with the `uniffi` feature; docs/phone.md, "FFI").
#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!();

/// The protocol crate, re-exported so hosts and bindings need only the core.
pub use pooya_protocol as protocol;
