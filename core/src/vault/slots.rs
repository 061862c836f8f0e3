//! Key slots: the data key wrapped once per way in (the password slot
//! under Argon2id and the device secret, the biometric slot by the host's
//! gate), their checksums, and biometric unlock.

use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

use super::envelope::{self, SecretKey, seal};
use super::fields::Field;
use super::kdf::{self, KdfParams, SALT_LEN};
use super::lock::read_counter;
use super::{DEVICE_SECRET_LEN, Vault, ct_eq, password, sha256_parts};
use crate::CoreError;
use crate::hooks::{BiometricError, DeviceKeystore};

/// Slot id of the password slot.
pub(super) const PASSWORD_SLOT: i64 = 1;
/// Slot id of the biometric slot.
pub(super) const BIOMETRIC_SLOT: i64 = 2;

/// A stored key slot.
pub(super) struct Slot {
    pub(super) params: Option<KdfParams>,
    pub(super) salt: Vec<u8>,
    pub(super) host_blob: Vec<u8>,
    pub(super) wrapped_key: Vec<u8>,
}

pub(super) fn slot_checksum(id: i64, kind: &str, slot: &Slot) -> Vec<u8> {
    let (m, t, p) = slot.params.map_or((0, 0, 0), |k| {
        (k.memory_kib(), k.iterations(), k.parallelism())
    });
    sha256_parts(&[
        b"pooya/vault/slot/v1",
        &id.to_be_bytes(),
        kind.as_bytes(),
        &m.to_be_bytes(),
        &t.to_be_bytes(),
        &p.to_be_bytes(),
        &slot.salt,
        &slot.host_blob,
        &slot.wrapped_key,
    ])
}

pub(super) fn read_slot(conn: &Connection, id: i64) -> Result<Option<Slot>, CoreError> {
    type Row = (
        String,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<Vec<u8>>,
        Vec<u8>,
        Option<Vec<u8>>,
        Vec<u8>,
    );
    let row: Option<Row> = conn
        .query_row(
            "SELECT kind, kdf_memory_kib, kdf_iterations, kdf_parallelism, salt, host_blob, wrapped_key, checksum
             FROM key_slots WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .optional()?;
    let Some((kind, m, t, p, salt, host_blob, wrapped, checksum)) = row else {
        return Ok(None);
    };
    let expected_kind = if id == PASSWORD_SLOT {
        "password"
    } else {
        "biometric"
    };
    if kind != expected_kind {
        return Err(CoreError::VaultCorrupted);
    }
    let params = match (m, t, p) {
        (Some(m), Some(t), Some(p)) => {
            let m = u32::try_from(m).map_err(|_| CoreError::VaultCorrupted)?;
            let t = u32::try_from(t).map_err(|_| CoreError::VaultCorrupted)?;
            let p = u32::try_from(p).map_err(|_| CoreError::VaultCorrupted)?;
            Some(KdfParams::new(m, t, p).map_err(|_| CoreError::VaultCorrupted)?)
        }
        (None, None, None) => None,
        _ => return Err(CoreError::VaultCorrupted),
    };
    let slot = Slot {
        params,
        salt: salt.unwrap_or_default(),
        host_blob,
        wrapped_key: wrapped.unwrap_or_default(),
    };
    if !ct_eq(&slot_checksum(id, &kind, &slot), &checksum) {
        return Err(CoreError::VaultCorrupted);
    }
    if id == PASSWORD_SLOT && (slot.params.is_none() || slot.salt.len() != SALT_LEN) {
        return Err(CoreError::VaultCorrupted);
    }
    Ok(Some(slot))
}

pub(super) fn write_slot(conn: &Connection, id: i64, slot: &Slot) -> Result<(), CoreError> {
    let kind = if id == PASSWORD_SLOT {
        "password"
    } else {
        "biometric"
    };
    let (m, t, p) = match slot.params {
        Some(k) => (
            Some(i64::from(k.memory_kib())),
            Some(i64::from(k.iterations())),
            Some(i64::from(k.parallelism())),
        ),
        None => (None, None, None),
    };
    let opt = |v: &Vec<u8>| if v.is_empty() { None } else { Some(v.clone()) };
    conn.execute(
        "INSERT OR REPLACE INTO key_slots
         (id, kind, kdf_memory_kib, kdf_iterations, kdf_parallelism, salt, host_blob, wrapped_key, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            id,
            kind,
            m,
            t,
            p,
            opt(&slot.salt),
            slot.host_blob,
            opt(&slot.wrapped_key),
            slot_checksum(id, kind, slot)
        ],
    )?;
    Ok(())
}

/// Builds a password slot wrapping `data_key`: a fresh device secret
/// sealed by the keystore, a fresh salt, Argon2id with `params`.
pub(super) fn new_password_slot(
    keystore: &dyn DeviceKeystore,
    password: &str,
    params: KdfParams,
    data_key: &SecretKey,
) -> Result<Slot, CoreError> {
    let pw = password::normalize(password);
    slot_for_normalized(keystore, &pw, params, data_key)
}

/// [`new_password_slot`] for a password already in the form the KDF sees.
pub(super) fn slot_for_normalized(
    keystore: &dyn DeviceKeystore,
    pw: &str,
    params: KdfParams,
    data_key: &SecretKey,
) -> Result<Slot, CoreError> {
    let mut device_secret = Zeroizing::new([0u8; DEVICE_SECRET_LEN]);
    envelope::fill_random(&mut device_secret[..])?;
    let host_blob = keystore.seal(&device_secret[..])?;
    let mut salt = vec![0u8; SALT_LEN];
    envelope::fill_random(&mut salt)?;
    let kek = kdf::derive_kek(pw.as_bytes(), &device_secret[..], &salt, params)?;
    let wrapped_key = seal(
        &kek,
        Field::SlotDataKey.at(PASSWORD_SLOT),
        data_key.expose_secret(),
    )?;
    Ok(Slot {
        params: Some(params),
        salt,
        host_blob,
        wrapped_key,
    })
}

impl Vault {
    /// Unlocks with biometrics: the host's [`BiometricGate`] prompts the
    /// user and unwraps the data key. Does not touch the wrong-password
    /// counter.
    ///
    /// # Errors
    /// [`CoreError::BiometricNotEnabled`], [`CoreError::BiometricUnavailable`]
    /// (no hook), [`CoreError::BiometricCancelled`],
    /// [`CoreError::BiometricLockout`], [`CoreError::BiometricInvalidated`]
    /// (the slot is deleted: use the password), [`CoreError::Wiped`].
    pub fn unlock_with_biometrics(&mut self) -> Result<(), CoreError> {
        if read_counter(&self.conn)?.wiped {
            return Err(CoreError::Wiped);
        }
        let slot = read_slot(&self.conn, BIOMETRIC_SLOT)?.ok_or(CoreError::BiometricNotEnabled)?;
        let gate = self
            .hooks
            .biometric
            .clone()
            .ok_or(CoreError::BiometricUnavailable)?;
        let bytes = match gate.open(&slot.host_blob) {
            Ok(b) => b,
            Err(BiometricError::Invalidated) => {
                self.drop_biometric_slot()?;
                return Err(CoreError::BiometricInvalidated);
            }
            Err(e) => return Err(e.into()),
        };
        let key = SecretKey::from_slice(&bytes);
        match key {
            Some(key) if self.check_canary(&key).is_ok() => {
                self.start_session(key);
                Ok(())
            }
            _ => {
                // The platform handed back something that is not the data
                // key: treat the slot as invalid, the password still works.
                self.drop_biometric_slot()?;
                Err(CoreError::BiometricInvalidated)
            }
        }
    }

    pub(super) fn drop_biometric_slot(&mut self) -> Result<(), CoreError> {
        self.conn
            .execute("DELETE FROM key_slots WHERE id = ?1", [BIOMETRIC_SLOT])?;
        if let Some(gate) = &self.hooks.biometric {
            let _ = gate.remove();
        }
        Ok(())
    }

    /// Enables biometric unlock: needs the vault unlocked and the password
    /// again; the host's gate wraps the data key.
    ///
    /// # Errors
    /// [`CoreError::Locked`], the password errors of
    /// [`Vault::unlock_with_password`], [`CoreError::BiometricUnavailable`]
    /// and the other biometric errors.
    pub fn enable_biometrics(&mut self, password: &str) -> Result<(), CoreError> {
        let gate = self
            .hooks
            .biometric
            .clone()
            .ok_or(CoreError::BiometricUnavailable)?;
        let key = self.reauthenticate(password)?;
        let blob = gate.enroll(key.expose_secret())?;
        write_slot(
            &self.conn,
            BIOMETRIC_SLOT,
            &Slot {
                params: None,
                salt: Vec::new(),
                host_blob: blob,
                wrapped_key: Vec::new(),
            },
        )
    }

    /// Disables biometric unlock. Needs an unlocked session (no password:
    /// it only removes a way in), so someone holding a locked phone cannot
    /// quietly turn the customer's fingerprint unlock off.
    ///
    /// # Errors
    /// [`CoreError::Locked`]; storage errors.
    pub fn disable_biometrics(&mut self) -> Result<(), CoreError> {
        self.touch()?;
        self.drop_biometric_slot()
    }
}
