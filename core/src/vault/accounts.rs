//! Standard OTP accounts (`otpauth://` URIs and Google Authenticator
//! exports, parsed by [`pooya_protocol::otpauth`]), sealed like cards:
//! settings and names in `info`, the secret and the HOTP counter each in
//! their own field. An HOTP counter is advanced and committed before its
//! code is returned (RFC 4226 §7.2: a code shown is a code used), so a
//! crash never shows one code twice.

use pooya_protocol::{HashAlgorithm, OtpAccount, OtpCode, OtpKind, SecretBytes};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::envelope::{SecretKey, open_field, seal};
use super::fields::Field;
use super::{Vault, from_json, json, u64_field};
use crate::CoreError;

/// An account's local id in the vault.
pub type AccountId = i64;

/// An account as listed: never the secret.
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "AccountInfo")
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// Local id.
    pub id: AccountId,
    /// TOTP (with its period) or HOTP (with the counter of the next code).
    pub kind: OtpKind,
    /// The service; may be empty.
    pub issuer: String,
    /// The account's name (what rename changes).
    pub name: String,
    /// The HMAC hash.
    pub algorithm: HashAlgorithm,
    /// Digits of a code.
    pub digits: u32,
    /// When it was added (phone clock, Unix seconds).
    pub added_at: u64,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
enum StoredAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
enum StoredKind {
    Totp,
    Hotp,
}

/// The sealed `info` field.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountInfo {
    kind: StoredKind,
    issuer: String,
    name: String,
    algorithm: StoredAlgorithm,
    digits: u32,
    /// TOTP period, seconds (0 for HOTP).
    period: u64,
    added_at: u64,
}

fn stored_algorithm(a: HashAlgorithm) -> StoredAlgorithm {
    match a {
        HashAlgorithm::Sha1 => StoredAlgorithm::Sha1,
        HashAlgorithm::Sha256 => StoredAlgorithm::Sha256,
        HashAlgorithm::Sha512 => StoredAlgorithm::Sha512,
    }
}

fn algorithm(a: StoredAlgorithm) -> HashAlgorithm {
    match a {
        StoredAlgorithm::Sha1 => HashAlgorithm::Sha1,
        StoredAlgorithm::Sha256 => HashAlgorithm::Sha256,
        StoredAlgorithm::Sha512 => HashAlgorithm::Sha512,
    }
}

fn info_of(a: &OtpAccount, added_at: u64) -> AccountInfo {
    let (kind, period) = match a.kind {
        OtpKind::Totp { period } => (StoredKind::Totp, period),
        OtpKind::Hotp { .. } => (StoredKind::Hotp, 0),
    };
    AccountInfo {
        kind,
        issuer: a.issuer.clone(),
        name: a.name.clone(),
        algorithm: stored_algorithm(a.algorithm),
        digits: a.digits,
        period,
        added_at,
    }
}

/// One stored account, opened.
struct Opened {
    info: AccountInfo,
    secret: SecretBytes,
    counter: u64,
}

impl Opened {
    fn kind(&self) -> OtpKind {
        match self.info.kind {
            StoredKind::Totp => OtpKind::Totp {
                period: self.info.period,
            },
            StoredKind::Hotp => OtpKind::Hotp {
                counter: self.counter,
            },
        }
    }

    fn record(&self, id: AccountId) -> AccountRecord {
        AccountRecord {
            id,
            kind: self.kind(),
            issuer: self.info.issuer.clone(),
            name: self.info.name.clone(),
            algorithm: algorithm(self.info.algorithm),
            digits: self.info.digits,
            added_at: self.info.added_at,
        }
    }

    fn account(&self) -> OtpAccount {
        OtpAccount {
            kind: self.kind(),
            issuer: self.info.issuer.clone(),
            name: self.info.name.clone(),
            algorithm: algorithm(self.info.algorithm),
            digits: self.info.digits,
            secret: self.secret.clone(),
        }
    }
}

fn open_account(
    key: &SecretKey,
    id: AccountId,
    info: &[u8],
    secret: &[u8],
    counter: &[u8],
) -> Result<Opened, CoreError> {
    let info: AccountInfo = from_json(&open_field(key, Field::AccountInfo.at(id), info)?)?;
    let secret = SecretBytes::new(open_field(key, Field::AccountSecret.at(id), secret)?.to_vec());
    let counter = u64_field(&open_field(key, Field::AccountCounter.at(id), counter)?)?;
    Ok(Opened {
        info,
        secret,
        counter,
    })
}

impl Vault {
    fn session_key(&self) -> Result<&SecretKey, CoreError> {
        self.session
            .as_ref()
            .map(|s| &s.key)
            .ok_or(CoreError::Locked)
    }

    /// Adds a standard account; every field is sealed. Returns its id.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::Protocol`] for an account that
    /// fails [`OtpAccount::validate`].
    pub fn add_account(&mut self, account: &OtpAccount) -> Result<AccountId, CoreError> {
        Ok(self.add_accounts(std::slice::from_ref(account))?[0])
    }

    /// Adds several accounts (a Google Authenticator export) in one
    /// transaction: all of them or none.
    ///
    /// # Errors
    /// As [`Vault::add_account`].
    pub fn add_accounts(&mut self, accounts: &[OtpAccount]) -> Result<Vec<AccountId>, CoreError> {
        for a in accounts {
            a.validate()?;
        }
        let now = self.now();
        self.touch()?;
        let key = self
            .session
            .as_ref()
            .map(|s| &s.key)
            .ok_or(CoreError::Locked)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ids = Vec::with_capacity(accounts.len());
        for a in accounts {
            let counter = match a.kind {
                OtpKind::Hotp { counter } => counter,
                OtpKind::Totp { .. } => 0,
            };
            tx.execute(
                "INSERT INTO accounts (info, secret, counter) VALUES (x'', x'', x'')",
                [],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE accounts SET info = ?1, secret = ?2, counter = ?3 WHERE id = ?4",
                params![
                    seal(key, Field::AccountInfo.at(id), &json(&info_of(a, now))?)?,
                    seal(key, Field::AccountSecret.at(id), a.secret.expose_secret())?,
                    seal(key, Field::AccountCounter.at(id), &counter.to_be_bytes())?,
                    id
                ],
            )?;
            ids.push(id);
        }
        tx.commit()?;
        Ok(ids)
    }

    fn all_accounts(&mut self) -> Result<Vec<(AccountId, Opened)>, CoreError> {
        self.touch()?;
        type Row = (i64, Vec<u8>, Vec<u8>, Vec<u8>);
        let rows: Vec<Row> = self
            .conn
            .prepare_cached("SELECT id, info, secret, counter FROM accounts ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let key = self.session_key()?;
        rows.into_iter()
            .map(|(id, i, s, c)| Ok((id, open_account(key, id, &i, &s, &c)?)))
            .collect()
    }

    fn one_account(&mut self, id: AccountId) -> Result<Opened, CoreError> {
        self.touch()?;
        let row: Option<(Vec<u8>, Vec<u8>, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT info, secret, counter FROM accounts WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let (i, s, c) = row.ok_or(CoreError::AccountNotFound)?;
        open_account(self.session_key()?, id, &i, &s, &c)
    }

    /// Every standard account, in the order added (no secrets).
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::VaultCorrupted`].
    pub fn accounts(&mut self) -> Result<Vec<AccountRecord>, CoreError> {
        Ok(self
            .all_accounts()?
            .iter()
            .map(|(id, o)| o.record(*id))
            .collect())
    }

    /// The current code of an account at the vault's clock: for TOTP with
    /// the seconds it has left; for HOTP the code of the stored counter,
    /// after the counter + 1 is committed.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::AccountNotFound`],
    /// [`CoreError::VaultCorrupted`], [`CoreError::Protocol`].
    pub fn account_code(&mut self, id: AccountId) -> Result<OtpCode, CoreError> {
        let opened = self.one_account(id)?;
        let code = opened.account().code_at(self.now())?;
        if opened.info.kind == StoredKind::Hotp {
            let next = opened
                .counter
                .checked_add(1)
                .ok_or(CoreError::InvalidField {
                    field: "counter",
                    reason: "exhausted",
                })?;
            let sealed = seal(
                self.session_key()?,
                Field::AccountCounter.at(id),
                &next.to_be_bytes(),
            )?;
            let n = self.conn.execute(
                "UPDATE accounts SET counter = ?1 WHERE id = ?2",
                params![sealed, id],
            )?;
            if n != 1 {
                return Err(CoreError::AccountNotFound);
            }
        }
        Ok(code)
    }

    /// Renames an account (its account name; the issuer stays).
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::AccountNotFound`],
    /// [`CoreError::Protocol`] for a bad name.
    pub fn rename_account(&mut self, id: AccountId, name: &str) -> Result<(), CoreError> {
        let mut opened = self.one_account(id)?;
        opened.info.name = name.to_owned();
        opened.account().validate()?;
        let sealed = seal(
            self.session_key()?,
            Field::AccountInfo.at(id),
            &json(&opened.info)?,
        )?;
        let n = self.conn.execute(
            "UPDATE accounts SET info = ?1 WHERE id = ?2",
            params![sealed, id],
        )?;
        if n != 1 {
            return Err(CoreError::AccountNotFound);
        }
        Ok(())
    }

    /// Removes an account; needs the password again.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::AccountNotFound`], the password
    /// errors of [`Vault::unlock_with_password`].
    pub fn remove_account(&mut self, id: AccountId, password: &str) -> Result<(), CoreError> {
        self.one_account(id)?;
        self.reauthenticate(password)?;
        let n = self
            .conn
            .execute("DELETE FROM accounts WHERE id = ?1", [id])?;
        if n != 1 {
            return Err(CoreError::AccountNotFound);
        }
        Ok(())
    }

    /// Every standard account as an `otpauth://` URI (HOTP with its
    /// current counter), after the password again. Bank cards are never
    /// exported: their seeds stay in the vault (docs/security.md, "What
    /// export reveals").
    ///
    /// # Errors
    /// [`CoreError::Locked`], the password errors of
    /// [`Vault::unlock_with_password`], [`CoreError::VaultCorrupted`].
    pub fn export_accounts(&mut self, password: &str) -> Result<Vec<Zeroizing<String>>, CoreError> {
        self.touch()?;
        self.reauthenticate(password)?;
        Ok(self
            .all_accounts()?
            .iter()
            .map(|(_, o)| o.account().to_uri())
            .collect())
    }
}
