//! The phone side of Pooya: the encrypted vault, app lock, cards, caps, the
//! activation client and dynamic PINs. Host facilities (keystore, biometrics,
//! network, clock) come in through the traits in [`hooks`].

pub mod hooks;

/// The protocol crate, re-exported so hosts and bindings need only the core.
pub use pooya_protocol as protocol;
