//! The customer's own data: the phone number.

use rusqlite::{OptionalExtension, TransactionBehavior};

use super::envelope::{open_field, seal};
use super::fields::Field;
use super::{Vault, utf8};
use crate::CoreError;

impl Vault {
    /// Sets the customer's phone number, once (normalised with
    /// [`pooya_protocol::normalize_phone`]). Returns the normalised form.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::Protocol`] for a bad number,
    /// [`CoreError::PhoneAlreadySet`].
    pub fn set_phone(&mut self, phone: &str) -> Result<String, CoreError> {
        let normalized = pooya_protocol::normalize_phone(phone)?;
        self.touch()?;
        let sealed = seal(self.key()?, Field::Phone.at(1), normalized.as_bytes())?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = tx
            .query_row(
                "SELECT 1 FROM profile WHERE id = 1 AND phone IS NOT NULL",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if exists {
            return Err(CoreError::PhoneAlreadySet);
        }
        tx.execute(
            "INSERT OR REPLACE INTO profile (id, phone) VALUES (1, ?1)",
            [sealed],
        )?;
        tx.commit()?;
        Ok(normalized)
    }

    /// The phone number, if set.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::VaultCorrupted`].
    pub fn phone(&mut self) -> Result<Option<String>, CoreError> {
        self.touch()?;
        let sealed: Option<Option<Vec<u8>>> = self
            .conn
            .query_row("SELECT phone FROM profile WHERE id = 1", [], |r| r.get(0))
            .optional()?;
        let Some(Some(sealed)) = sealed else {
            return Ok(None);
        };
        let plain = open_field(self.key()?, Field::Phone.at(1), &sealed)?;
        utf8(plain).map(Some)
    }
}
