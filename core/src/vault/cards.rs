//! Cards: display data, label, cap and seed, each sealed in its own
//! field.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::envelope::{SecretKey, open_field, seal};
use super::fields::Field;
use super::session::CachedCard;
use super::{
    CardId, CardRecord, CardSecret, IssuerProfile, NewCard, Vault, check_label, from_json, json,
    u64_field, utf8,
};
use crate::CoreError;
use pooya_protocol::card_request::AppStatus;
use pooya_protocol::{CardSeed, Policies};

/// The sealed part of a card that rarely changes.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CardInfo {
    pub(super) issuer: String,
    pub(super) issuer_card_id: String,
    pub(super) masked_pan: String,
    last4: String,
    pub(super) bank_name: String,
    pub(super) policies: Policies,
    pub(super) added_at: u64,
}

impl Vault {
    /// Adds a card; every field is sealed. Returns its local id.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::InvalidField`],
    /// [`CoreError::InvalidCap`], [`CoreError::Protocol`] for bad policies.
    pub fn add_card(&mut self, card: &NewCard) -> Result<CardId, CoreError> {
        self.store_card(card, None, None)
    }

    /// Stores a card in one transaction with the changes activation makes
    /// beside it: the card it replaces (the same issuer card activated
    /// again) is deleted and the issuer profile (its new time offset) is
    /// rewritten. Either all of it is stored or none. Used by
    /// [`crate::Phone::add_card`].
    pub(crate) fn store_card(
        &mut self,
        card: &NewCard,
        replaces: Option<CardId>,
        issuer: Option<&IssuerProfile>,
    ) -> Result<CardId, CoreError> {
        card.validate()?;
        if let Some(p) = issuer {
            p.validate()?;
        }
        let issuer_row = match issuer {
            Some(p) => Some((
                self.all_issuers()?
                    .into_iter()
                    .find(|(_, q)| q.name == p.name)
                    .map(|(id, _)| id)
                    .ok_or(CoreError::IssuerNotFound)?,
                json(p)?,
            )),
            None => None,
        };
        let now = self.now();
        let info = json(&CardInfo {
            issuer: card.issuer.clone(),
            issuer_card_id: card.issuer_card_id.clone(),
            masked_pan: card.masked_pan.clone(),
            last4: card.last4.clone(),
            bank_name: card.bank_name.clone(),
            policies: card.policies.clone(),
            added_at: now,
        })?;
        self.touch()?;
        if let Some(old) = replaces {
            self.forget_cached(old);
        }
        let key = self
            .session
            .as_ref()
            .map(|s| &s.key)
            .ok_or(CoreError::Locked)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(old) = replaces
            && tx.execute("DELETE FROM cards WHERE id = ?1", [old])? != 1
        {
            return Err(CoreError::CardNotFound);
        }
        tx.execute(
            "INSERT INTO cards (info, label, cap, seed) VALUES (x'', x'', x'', x'')",
            [],
        )?;
        let id = tx.last_insert_rowid();
        let p = |field: Field| field.at(id);
        tx.execute(
            "UPDATE cards SET info = ?1, label = ?2, cap = ?3, seed = ?4 WHERE id = ?5",
            params![
                seal(key, p(Field::CardInfo), &info)?,
                seal(key, p(Field::CardLabel), card.label.as_bytes())?,
                seal(key, p(Field::CardCap), &card.cap.to_be_bytes())?,
                seal(key, p(Field::CardSeed), card.seed.expose_secret())?,
                id
            ],
        )?;
        if let Some((row, plain)) = issuer_row {
            let sealed = seal(key, Field::IssuerProfile.at(row), &plain)?;
            tx.execute(
                "UPDATE issuers SET profile = ?1 WHERE id = ?2",
                params![sealed, row],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    pub(super) fn decode_card(
        key: &SecretKey,
        id: CardId,
        info: &[u8],
        label: &[u8],
        cap: &[u8],
        state: Option<&[u8]>,
    ) -> Result<CardRecord, CoreError> {
        let p = |field: Field| field.at(id);
        let info: CardInfo = from_json(&open_field(key, p(Field::CardInfo), info)?)?;
        let label = utf8(open_field(key, p(Field::CardLabel), label)?)?;
        let cap = u64_field(&open_field(key, p(Field::CardCap), cap)?)?;
        let state = super::card_life::decode_state(key, id, state)?;
        Ok(CardRecord {
            app_status: state.as_ref().map_or(AppStatus::Active, |s| s.status),
            status_checked_at: state.map(|s| s.checked_at),
            id,
            issuer: info.issuer,
            issuer_card_id: info.issuer_card_id,
            label,
            masked_pan: info.masked_pan,
            last4: info.last4,
            bank_name: info.bank_name,
            policies: info.policies,
            cap,
            added_at: info.added_at,
        })
    }

    /// Every card's display data, in the order added (no seeds).
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::VaultCorrupted`].
    pub fn cards(&mut self) -> Result<Vec<CardRecord>, CoreError> {
        self.touch()?;
        let key = self
            .session
            .as_ref()
            .map(|s| &s.key)
            .ok_or(CoreError::Locked)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id, c.info, c.label, c.cap, s.state FROM cards c \
                 LEFT JOIN card_states s ON s.card_id = c.id ORDER BY c.id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let info = r.get_ref(1)?.as_blob()?;
            let label = r.get_ref(2)?.as_blob()?;
            let cap = r.get_ref(3)?.as_blob()?;
            let state = r.get_ref(4)?.as_blob_or_null()?;
            out.push(Self::decode_card(key, id, info, label, cap, state)?);
        }
        Ok(out)
    }

    /// One card's display data.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`],
    /// [`CoreError::VaultCorrupted`].
    pub fn card(&mut self, id: CardId) -> Result<CardRecord, CoreError> {
        self.touch()?;
        let key = self
            .session
            .as_ref()
            .map(|s| &s.key)
            .ok_or(CoreError::Locked)?;
        type Row = (Vec<u8>, Vec<u8>, Vec<u8>, Option<Vec<u8>>);
        let row: Option<Row> = self
            .conn
            .prepare_cached(
                "SELECT c.info, c.label, c.cap, s.state FROM cards c \
                 LEFT JOIN card_states s ON s.card_id = c.id WHERE c.id = ?1",
            )?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let (info, label, cap, state) = row.ok_or(CoreError::CardNotFound)?;
        Self::decode_card(key, id, &info, &label, &cap, state.as_deref())
    }

    /// What PIN generation needs for one card: seed, derived keys,
    /// policies and cap. Only while unlocked; cached in the session (wiped
    /// on lock) so repeated PINs cost no database read.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`],
    /// [`CoreError::VaultCorrupted`].
    pub fn card_secret(&mut self, id: CardId) -> Result<CardSecret, CoreError> {
        self.touch()?;
        if let Some(c) = self.session.as_ref().and_then(|s| s.cards.get(&id)) {
            return Ok(c.secret.clone());
        }
        let key = self
            .session
            .as_ref()
            .map(|s| &s.key)
            .ok_or(CoreError::Locked)?;
        let row: Option<(Vec<u8>, Vec<u8>, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT info, cap, seed FROM cards WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let (info, cap, seed) = row.ok_or(CoreError::CardNotFound)?;
        let p = |field: Field| field.at(id);
        let info: CardInfo = from_json(&open_field(key, p(Field::CardInfo), &info)?)?;
        let cap = u64_field(&open_field(key, p(Field::CardCap), &cap)?)?;
        let seed = CardSeed::from_slice(&open_field(key, p(Field::CardSeed), &seed)?)
            .map_err(|_| CoreError::VaultCorrupted)?;
        let secret = CardSecret {
            id,
            issuer: info.issuer,
            keys: seed.derive_keys(),
            seed,
            policies: info.policies,
            cap,
        };
        if let Some(s) = self.session.as_mut() {
            s.cards.insert(
                id,
                CachedCard {
                    secret: secret.clone(),
                },
            );
        }
        Ok(secret)
    }

    /// Renames a card.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::InvalidField`],
    /// [`CoreError::CardNotFound`].
    pub fn rename_card(&mut self, id: CardId, label: &str) -> Result<(), CoreError> {
        check_label(label)?;
        let sealed = seal(self.key()?, Field::CardLabel.at(id), label.as_bytes())?;
        let n = self.conn.execute(
            "UPDATE cards SET label = ?1 WHERE id = ?2",
            params![sealed, id],
        )?;
        if n == 0 {
            return Err(CoreError::CardNotFound);
        }
        Ok(())
    }

    /// Removes a card; needs the password again.
    ///
    /// # Errors
    /// [`CoreError::Locked`], the password errors of
    /// [`Vault::unlock_with_password`], [`CoreError::CardNotFound`].
    pub fn remove_card(&mut self, id: CardId, password: &str) -> Result<(), CoreError> {
        self.card(id)?;
        self.reauthenticate(password)?;
        self.forget_cached(id);
        let n = self.conn.execute("DELETE FROM cards WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(CoreError::CardNotFound);
        }
        Ok(())
    }

    /// Sets a card's cap (a tier of its ladder). Lowering it is free;
    /// raising it needs the password again (`password` is ignored when
    /// lowering).
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`],
    /// [`CoreError::InvalidCap`], [`CoreError::PasswordRequired`] when
    /// raising without a password, and the password errors of
    /// [`Vault::unlock_with_password`].
    pub fn set_cap(
        &mut self,
        id: CardId,
        cap: u64,
        password: Option<&str>,
    ) -> Result<(), CoreError> {
        let card = self.card(id)?;
        if !card.policies.cap_ladder.contains(cap) {
            return Err(CoreError::InvalidCap);
        }
        if cap > card.cap {
            let pw = password.ok_or(CoreError::PasswordRequired)?;
            self.reauthenticate(pw)?;
        }
        let sealed = seal(self.key()?, Field::CardCap.at(id), &cap.to_be_bytes())?;
        self.forget_cached(id);
        let n = self.conn.execute(
            "UPDATE cards SET cap = ?1 WHERE id = ?2",
            params![sealed, id],
        )?;
        if n == 0 {
            return Err(CoreError::CardNotFound);
        }
        Ok(())
    }
}
