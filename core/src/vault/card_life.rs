//! A card's life in the vault (schema version 4; docs/phone.md, "A card's
//! life on the phone"): each card's app state as the bank last signed it,
//! and the removals the bank was not told of yet, each sealed like every
//! other field.

use core::fmt;

use pooya_protocol::PinKey;
use pooya_protocol::card_request::AppStatus;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::envelope::{SecretKey, open_field, seal};
use super::fields::Field;
use super::{CardId, Vault, from_json, json};
use crate::CoreError;

/// A card's app state as the bank signed it at a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardState {
    /// The state.
    pub status: AppStatus,
    /// The bank time of the answer (the request's time), Unix seconds.
    pub checked_at: u64,
}

/// The local id of a pending removal.
pub type PendingRemovalId = i64;

/// A card removed on this phone whose removal the bank has not been told
/// of: just what proves the removal later. The device key is wiped on
/// drop and never shown by `Debug`; the seed is not kept.
#[derive(Clone)]
pub struct PendingRemoval {
    /// Local id.
    pub id: PendingRemovalId,
    /// The issuer profile's name.
    pub issuer: String,
    /// The issuer's card id.
    pub issuer_card_id: String,
    /// When the card was removed (phone clock, Unix seconds).
    pub removed_at: u64,
    /// The card's device key ([`pooya_protocol::CardSeed::device_key`]).
    pub device_key: PinKey,
}

impl fmt::Debug for PendingRemoval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingRemoval")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("removed_at", &self.removed_at)
            .field("device_key", &self.device_key)
            .finish_non_exhaustive()
    }
}

/// The sealed `info` of a pending removal.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingInfo {
    issuer: String,
    issuer_card_id: String,
    removed_at: u64,
}

/// Opens a card's sealed state (`None`: never synced).
pub(super) fn decode_state(
    key: &SecretKey,
    id: CardId,
    sealed: Option<&[u8]>,
) -> Result<Option<CardState>, CoreError> {
    sealed
        .map(|s| from_json(&open_field(key, Field::CardState.at(id), s)?))
        .transpose()
}

impl Vault {
    /// Card `id`'s app state as last signed by the bank; `None` before
    /// the first sync (or for no such card).
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::VaultCorrupted`].
    pub fn card_state(&mut self, id: CardId) -> Result<Option<CardState>, CoreError> {
        self.touch()?;
        let sealed: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT state FROM card_states WHERE card_id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        decode_state(self.key()?, id, sealed.as_deref())
    }

    /// Records card `id`'s app state.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`].
    pub fn set_card_state(&mut self, id: CardId, state: &CardState) -> Result<(), CoreError> {
        let plain = json(state)?;
        let sealed = seal(self.key()?, Field::CardState.at(id), &plain)?;
        // Only for a card that exists, in one statement.
        let n = self.conn.execute(
            "INSERT INTO card_states (card_id, state) SELECT id, ?2 FROM cards WHERE id = ?1 \
             ON CONFLICT (card_id) DO UPDATE SET state = excluded.state",
            params![id, sealed],
        )?;
        if n == 0 {
            return Err(CoreError::CardNotFound);
        }
        Ok(())
    }

    /// Removes card `id` after the password and, in the same transaction,
    /// stores `pending` (issuer, issuer card id, device key) as a pending
    /// removal, so a crash or a lost network between the removal and the
    /// bank's answer never loses the removal. Returns the pending
    /// removal's id.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`], the password
    /// errors of [`Vault::unlock_with_password`], storage errors; on any
    /// error nothing changes.
    pub fn remove_card_pending(
        &mut self,
        id: CardId,
        password: &str,
        issuer: &str,
        issuer_card_id: &str,
        device_key: &PinKey,
    ) -> Result<PendingRemovalId, CoreError> {
        self.card(id)?;
        self.reauthenticate(password)?;
        self.forget_cached(id);
        let info = json(&PendingInfo {
            issuer: issuer.to_owned(),
            issuer_card_id: issuer_card_id.to_owned(),
            removed_at: self.now(),
        })?;
        self.touch()?;
        let key = self
            .session
            .as_ref()
            .map(|s| &s.key)
            .ok_or(CoreError::Locked)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute("DELETE FROM cards WHERE id = ?1", [id])? != 1 {
            return Err(CoreError::CardNotFound);
        }
        tx.execute(
            "INSERT INTO pending_removals (info, device_key) VALUES (x'', x'')",
            [],
        )?;
        let pid = tx.last_insert_rowid();
        tx.execute(
            "UPDATE pending_removals SET info = ?1, device_key = ?2 WHERE id = ?3",
            params![
                seal(key, Field::PendingRemovalInfo.at(pid), &info)?,
                seal(
                    key,
                    Field::PendingRemovalKey.at(pid),
                    device_key.expose_secret()
                )?,
                pid
            ],
        )?;
        tx.commit()?;
        Ok(pid)
    }

    /// Every pending removal, oldest first.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::VaultCorrupted`].
    pub fn pending_removals(&mut self) -> Result<Vec<PendingRemoval>, CoreError> {
        self.touch()?;
        let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT id, info, device_key FROM pending_removals ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let key = self.key()?;
        rows.into_iter()
            .map(|(id, info, sealed_key)| {
                let info: PendingInfo =
                    from_json(&open_field(key, Field::PendingRemovalInfo.at(id), &info)?)?;
                let device_key = open_field(key, Field::PendingRemovalKey.at(id), &sealed_key)?;
                let device_key =
                    <[u8; 32]>::try_from(&device_key[..]).map_err(|_| CoreError::VaultCorrupted)?;
                Ok(PendingRemoval {
                    id,
                    issuer: info.issuer,
                    issuer_card_id: info.issuer_card_id,
                    removed_at: info.removed_at,
                    device_key: PinKey::from_bytes(device_key),
                })
            })
            .collect()
    }

    /// Forgets a pending removal (the bank was told). Returns whether it
    /// was there.
    ///
    /// # Errors
    /// [`CoreError::Locked`], storage errors.
    pub fn drop_pending_removal(&mut self, id: PendingRemovalId) -> Result<bool, CoreError> {
        self.touch()?;
        Ok(self
            .conn
            .execute("DELETE FROM pending_removals WHERE id = ?1", [id])?
            > 0)
    }
}
