//! Password change: a fresh data key and every sealed field resealed
//! under it, in one transaction.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::envelope::{Place, SecretKey, open_field, seal};
use super::fields::Field;
use super::slots::{BIOMETRIC_SLOT, PASSWORD_SLOT, new_password_slot, write_slot};
use super::{Vault, password};
use crate::CoreError;

/// Opens every sealed field with `old` and seals it again with `new`, in
/// the caller's transaction. Each field keeps its place (table, row,
/// field) as associated data.
pub(super) fn reseal_all(
    conn: &Connection,
    old: &SecretKey,
    new: &SecretKey,
) -> Result<(), CoreError> {
    let reseal = |place: Place<'_>, sealed: &[u8]| -> Result<Vec<u8>, CoreError> {
        let plain = open_field(old, place, sealed)?;
        seal(new, place, &plain)
    };
    let canary: Option<Vec<u8>> =
        conn.query_row("SELECT canary FROM vault_state WHERE id = 1", [], |r| {
            r.get(0)
        })?;
    let canary = canary.ok_or(CoreError::Wiped)?;
    conn.execute(
        "UPDATE vault_state SET canary = ?1 WHERE id = 1",
        [reseal(Field::Canary.at(1), &canary)?],
    )?;
    let phone: Option<Option<Vec<u8>>> = conn
        .query_row("SELECT phone FROM profile WHERE id = 1", [], |r| r.get(0))
        .optional()?;
    if let Some(Some(phone)) = phone {
        conn.execute(
            "UPDATE profile SET phone = ?1 WHERE id = 1",
            [reseal(Field::Phone.at(1), &phone)?],
        )?;
    }
    let issuers: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT id, profile FROM issuers")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, sealed) in issuers {
        conn.execute(
            "UPDATE issuers SET profile = ?1 WHERE id = ?2",
            params![reseal(Field::IssuerProfile.at(id), &sealed)?, id],
        )?;
    }
    type CardRow = (i64, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);
    let cards: Vec<CardRow> = conn
        .prepare("SELECT id, info, label, cap, seed FROM cards")?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    for (id, info, label, cap, seed) in cards {
        let p = |field: Field| field.at(id);
        conn.execute(
            "UPDATE cards SET info = ?1, label = ?2, cap = ?3, seed = ?4 WHERE id = ?5",
            params![
                reseal(p(Field::CardInfo), &info)?,
                reseal(p(Field::CardLabel), &label)?,
                reseal(p(Field::CardCap), &cap)?,
                reseal(p(Field::CardSeed), &seed)?,
                id
            ],
        )?;
    }
    type AccountRow = (i64, Vec<u8>, Vec<u8>, Vec<u8>);
    let accounts: Vec<AccountRow> = conn
        .prepare("SELECT id, info, secret, counter FROM accounts")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (id, info, secret, counter) in accounts {
        conn.execute(
            "UPDATE accounts SET info = ?1, secret = ?2, counter = ?3 WHERE id = ?4",
            params![
                reseal(Field::AccountInfo.at(id), &info)?,
                reseal(Field::AccountSecret.at(id), &secret)?,
                reseal(Field::AccountCounter.at(id), &counter)?,
                id
            ],
        )?;
    }
    // Schema version 4: card states and pending removals.
    let states: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT card_id, state FROM card_states")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, state) in states {
        conn.execute(
            "UPDATE card_states SET state = ?1 WHERE card_id = ?2",
            params![reseal(Field::CardState.at(id), &state)?, id],
        )?;
    }
    let pending: Vec<(i64, Vec<u8>, Vec<u8>)> = conn
        .prepare("SELECT id, info, device_key FROM pending_removals")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (id, info, key) in pending {
        conn.execute(
            "UPDATE pending_removals SET info = ?1, device_key = ?2 WHERE id = ?3",
            params![
                reseal(Field::PendingRemovalInfo.at(id), &info)?,
                reseal(Field::PendingRemovalKey.at(id), &key)?,
                id
            ],
        )?;
    }
    Ok(())
}

impl Vault {
    /// Changes the app password: checks the new one, asks for the old one
    /// again, and rotates the data key (docs/security.md, "Password change
    /// rotates the data key"): a fresh random data key, every sealed field
    /// (canary, phone, issuer profiles, every card field) opened with the
    /// old key and sealed again with the new one, and the new password slot
    /// written, all in one transaction. A copy of the file taken before the
    /// change, opened with the old password, yields only the data as it was
    /// then: nothing written afterwards is sealed under a key it holds.
    ///
    /// The biometric slot wraps the old key and cannot be rewrapped without
    /// a biometric prompt, so it is dropped and the platform key removed:
    /// the customer turns fingerprint unlock on again
    /// ([`Vault::enable_biometrics`]). The new slot uses the configured KDF
    /// parameters and fresh salt and device secret; the old data key is
    /// wiped from memory.
    ///
    /// # Errors
    /// [`CoreError::WeakPassword`] (checked first, costs no attempt),
    /// [`CoreError::Locked`], the password errors of
    /// [`Vault::unlock_with_password`], [`CoreError::VaultCorrupted`] when a
    /// stored field does not open; on any error nothing is changed.
    pub fn change_password(&mut self, old: &str, new: &str) -> Result<(), CoreError> {
        password::check_strength(new).map_err(CoreError::WeakPassword)?;
        let old_key = self.reauthenticate(old)?;
        let new_key = SecretKey::random()?;
        let slot = new_password_slot(&*self.hooks.keystore, new, self.config.kdf(), &new_key)?;
        let had_biometric = {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            reseal_all(&tx, &old_key, &new_key)?;
            write_slot(&tx, PASSWORD_SLOT, &slot)?;
            let dropped = tx.execute("DELETE FROM key_slots WHERE id = ?1", [BIOMETRIC_SLOT])?;
            tx.commit()?;
            dropped > 0
        };
        drop(old_key);
        if let Some(s) = self.session.as_mut() {
            s.key = new_key;
            s.cards.clear();
        }
        if had_biometric && let Some(gate) = &self.hooks.biometric {
            let _ = gate.remove();
        }
        // Move the new pages into the main file and truncate the WAL, so
        // the old slot and the fields under the old key (which the old
        // password still opens) do not linger in WAL frames; secure_delete
        // overwrites the old pages. A busy checkpoint is retried by SQLite
        // later.
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(())
    }
}
