//! The phone vault: one SQLite file holding the customer's cards, issuer
//! profiles and phone number, every personal or secret field sealed under
//! a random 256-bit data key (envelope encryption), and the app lock
//! around it (key slots, lockout, session, idle auto-lock).
//!
//! docs/security.md ("Phone vault") describes the design and threat model.
//!
//! Layout, by job (docs/phone.md, "The vault's layout"):
//! - `file`: the file's lifecycle (create, open, destroy, status);
//! - `slots`: key slots and biometric unlock; `rekey`: password change;
//! - `lock`: the stored wrong-password counter, attempts and the wipe
//!   ([`lockout`] is the pure policy); `session`: the unlocked session;
//! - `profile`, `issuers`, `cards`, `accounts` (standard OTP accounts):
//!   what the vault stores, one job each;
//! - [`fields`]: the typed names of every sealed field; [`envelope`]: the
//!   AEAD envelope; [`kdf`], [`password`], [`schema`], `records`.

mod accounts;
mod card_life;
mod cards;
pub mod envelope;
pub mod fields;
mod file;
mod issuers;
pub mod kdf;
mod lock;
pub mod lockout;
pub mod password;
mod profile;
mod records;
mod rekey;
pub mod schema;
mod session;
mod slots;

use std::path::PathBuf;
use std::sync::Arc;

use ring::digest;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::CoreError;
use crate::hooks::{BiometricGate, Clock, DeviceKeystore};
use session::Session;

pub use accounts::{AccountId, AccountRecord};
pub use card_life::{CardState, PendingRemoval, PendingRemovalId};
pub use records::{
    CardId, CardRecord, CardSecret, IssuerProfile, MAX_IDLE_TIMEOUT_SECS, NewCard, VaultConfig,
    VaultStatus, check_label,
};

/// The plaintext sealed as the canary: proves a key is the data key.
const CANARY: &[u8] = b"pooya/vault/canary/v1";
/// Length of the device-binding secret.
const DEVICE_SECRET_LEN: usize = 32;

/// The hooks a vault uses, shared with the host (and across the FFI).
#[derive(Clone)]
pub struct Hooks {
    /// Device binding of the password slot.
    pub keystore: Arc<dyn DeviceKeystore>,
    /// The biometric key, if the device has one.
    pub biometric: Option<Arc<dyn BiometricGate>>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
}

impl core::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hooks")
            .field("biometric", &self.biometric.is_some())
            .finish_non_exhaustive()
    }
}

/// The phone vault. Open it with [`Vault::open`] (fast, no KDF), unlock it
/// with [`Vault::unlock_with_password`] or
/// [`Vault::unlock_with_biometrics`]; it locks itself after
/// [`VaultConfig::idle_timeout_secs`] without use.
pub struct Vault {
    conn: Connection,
    path: PathBuf,
    hooks: Hooks,
    config: VaultConfig,
    session: Option<Session>,
}

impl core::fmt::Debug for Vault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.path)
            .field("unlocked", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

fn sha256_parts(parts: &[&[u8]]) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    ctx.finish().as_ref().to_vec()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

fn to_u64(v: i64) -> Result<u64, CoreError> {
    u64::try_from(v).map_err(|_| CoreError::VaultCorrupted)
}

fn to_i64(v: u64) -> Result<i64, CoreError> {
    i64::try_from(v).map_err(|_| CoreError::InvalidField {
        field: "time",
        reason: "out of range",
    })
}

fn json<T: Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>, CoreError> {
    serde_json::to_vec(value)
        .map(Zeroizing::new)
        .map_err(|_| CoreError::Storage("serialisation failed".into()))
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, CoreError> {
    serde_json::from_slice(bytes).map_err(|_| CoreError::VaultCorrupted)
}

fn utf8(bytes: Zeroizing<Vec<u8>>) -> Result<String, CoreError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| CoreError::VaultCorrupted)
}

fn u64_field(bytes: &[u8]) -> Result<u64, CoreError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| CoreError::VaultCorrupted)?;
    Ok(u64::from_be_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::envelope::SecretKey;
    use super::kdf::KdfParams;
    use super::slots::{PASSWORD_SLOT, slot_for_normalized, write_slot};
    use super::*;
    use crate::testing::{ManualClock, MemoryKeystore};

    #[test]
    fn a_slot_set_before_letter_unification_still_opens_and_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.db");
        let keystore = Arc::new(MemoryKeystore::new());
        let set = "كتاب علي 42";
        let mut v = Vault::create(
            &path,
            set,
            keystore.clone(),
            None,
            Arc::new(ManualClock::new(1_800_000_000)),
            VaultConfig::with_kdf(KdfParams::FLOOR),
        )
        .unwrap();
        // Rewrite the password slot as a build before issue 10 made it:
        // the password with only its digits normalised.
        let key = SecretKey::from_slice(v.key().unwrap().expose_secret()).unwrap();
        let old_form = password::legacy_normalize(set);
        let slot = slot_for_normalized(&*keystore, &old_form, KdfParams::FLOOR, &key).unwrap();
        write_slot(&v.conn, PASSWORD_SLOT, &slot).unwrap();
        v.lock();
        // Typed as set: the current form (Persian letters) fails on the
        // old slot, the old form opens it and the slot is rewrapped...
        v.unlock_with_password(set).unwrap();
        // ...so the Persian keyboard opens it from now on.
        v.lock();
        v.unlock_with_password("کتاب علی 42").unwrap();
        assert_eq!(v.status().unwrap().failed_attempts, 0);
        v.lock();
        assert_eq!(
            v.unlock_with_password("کتاب علی 43").unwrap_err(),
            CoreError::WrongPassword { attempts_left: 9 }
        );
    }
}
