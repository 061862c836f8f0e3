//! Issuer (bank) profiles, each sealed as one JSON field.

use rusqlite::{TransactionBehavior, params};

use super::envelope::{open_field, seal};
use super::fields::Field;
use super::{IssuerProfile, Vault, from_json, json};
use crate::CoreError;

impl Vault {
    pub(super) fn all_issuers(&mut self) -> Result<Vec<(i64, IssuerProfile)>, CoreError> {
        self.touch()?;
        let rows: Vec<(i64, Vec<u8>)> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id, profile FROM issuers ORDER BY id")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let key = self.key()?;
        rows.into_iter()
            .map(|(id, sealed)| {
                let plain = open_field(key, Field::IssuerProfile.at(id), &sealed)?;
                Ok((id, from_json(&plain)?))
            })
            .collect()
    }

    /// Stores a new issuer profile.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::InvalidField`],
    /// [`CoreError::IssuerExists`].
    pub fn add_issuer(&mut self, profile: &IssuerProfile) -> Result<(), CoreError> {
        profile.validate()?;
        if self
            .all_issuers()?
            .iter()
            .any(|(_, p)| p.name == profile.name)
        {
            return Err(CoreError::IssuerExists);
        }
        let plain = json(profile)?;
        self.touch()?;
        let key = self
            .session
            .as_ref()
            .map(|s| &s.key)
            .ok_or(CoreError::Locked)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("INSERT INTO issuers (profile) VALUES (x'')", [])?;
        let id = tx.last_insert_rowid();
        let sealed = seal(key, Field::IssuerProfile.at(id), &plain)?;
        tx.execute(
            "UPDATE issuers SET profile = ?1 WHERE id = ?2",
            params![sealed, id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every issuer profile, in the order added.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::VaultCorrupted`].
    pub fn issuers(&mut self) -> Result<Vec<IssuerProfile>, CoreError> {
        Ok(self.all_issuers()?.into_iter().map(|(_, p)| p).collect())
    }

    /// The issuer profile named `name`.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::IssuerNotFound`],
    /// [`CoreError::VaultCorrupted`].
    pub fn issuer(&mut self, name: &str) -> Result<IssuerProfile, CoreError> {
        self.all_issuers()?
            .into_iter()
            .map(|(_, p)| p)
            .find(|p| p.name == name)
            .ok_or(CoreError::IssuerNotFound)
    }

    /// Replaces the stored profile with the same name (new URL, key or
    /// time offset).
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::InvalidField`],
    /// [`CoreError::IssuerNotFound`].
    pub fn update_issuer(&mut self, profile: &IssuerProfile) -> Result<(), CoreError> {
        profile.validate()?;
        let id = self
            .all_issuers()?
            .into_iter()
            .find(|(_, p)| p.name == profile.name)
            .map(|(id, _)| id)
            .ok_or(CoreError::IssuerNotFound)?;
        let plain = json(profile)?;
        let sealed = seal(self.key()?, Field::IssuerProfile.at(id), &plain)?;
        self.conn.execute(
            "UPDATE issuers SET profile = ?1 WHERE id = ?2",
            params![sealed, id],
        )?;
        Ok(())
    }
}
