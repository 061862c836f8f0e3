//! The stored wrong-password counter (checksummed, on both clocks),
//! password attempts with the lockout around them, the canary check and
//! the wipe. The pure policy is in [`super::lockout`].

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::envelope::{self, SecretKey};
use super::fields::Field;
use super::lockout::{Gate, Moment};
use super::slots::{PASSWORD_SLOT, new_password_slot, read_slot, write_slot};
use super::{CANARY, Vault, ct_eq, kdf, password, sha256_parts, to_i64, to_u64};
use crate::CoreError;
use crate::hooks::BootTime;

/// The wrong-password counter as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Counter {
    pub(super) failures: u32,
    pub(super) last_failure_at: u64,
    /// The last failure on the host's boot clock (schema version 2).
    pub(super) last_failure_boot: Option<BootTime>,
    pub(super) wiped: bool,
}

impl Counter {
    /// No failure counted.
    pub(super) fn clear() -> Self {
        Self {
            failures: 0,
            last_failure_at: 0,
            last_failure_boot: None,
            wiped: false,
        }
    }

    /// When the last failure happened, on both clocks.
    pub(super) fn last_failure(&self) -> Moment {
        Moment {
            unix: self.last_failure_at,
            boot: self.last_failure_boot.clone(),
        }
    }
}

/// The counter's checksum. Without a boot-clock reading it keeps its
/// version-1 form, so files from before schema version 2 still verify.
pub(super) fn counter_check(c: &Counter) -> Vec<u8> {
    match &c.last_failure_boot {
        None => sha256_parts(&[
            b"pooya/vault/counter/v1",
            &c.failures.to_be_bytes(),
            &c.last_failure_at.to_be_bytes(),
            &[u8::from(c.wiped)],
        ]),
        Some(b) => sha256_parts(&[
            b"pooya/vault/counter/v2",
            &c.failures.to_be_bytes(),
            &c.last_failure_at.to_be_bytes(),
            b.boot_id.as_bytes(),
            &b.since_boot_ms.to_be_bytes(),
            &[u8::from(c.wiped)],
        ]),
    }
}

/// A boot-clock reading the vault can store (a too long or empty id
/// counts as none).
pub(super) fn storable_boot(b: Option<BootTime>) -> Option<BootTime> {
    b.filter(|b| !b.boot_id.is_empty() && b.boot_id.len() <= BootTime::MAX_ID_LEN)
        .filter(|b| i64::try_from(b.since_boot_ms).is_ok())
}

pub(super) fn read_counter(conn: &Connection) -> Result<Counter, CoreError> {
    type Row = (i64, i64, i64, Vec<u8>, Option<String>, Option<i64>);
    let (f, l, w, check, boot_id, boot_ms): Row = conn
        .query_row(
            "SELECT failed_attempts, last_failure_at, wiped, state_check, last_failure_boot_id, last_failure_boot_ms
             FROM vault_state WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?
        .ok_or(CoreError::VaultCorrupted)?;
    let last_failure_boot = match (boot_id, boot_ms) {
        (Some(boot_id), Some(ms)) => Some(BootTime {
            boot_id,
            since_boot_ms: to_u64(ms)?,
        }),
        (None, None) => None,
        _ => return Err(CoreError::VaultCorrupted),
    };
    let c = Counter {
        failures: u32::try_from(f).map_err(|_| CoreError::VaultCorrupted)?,
        last_failure_at: to_u64(l)?,
        last_failure_boot,
        wiped: w != 0,
    };
    if !ct_eq(&counter_check(&c), &check) {
        return Err(CoreError::VaultCorrupted);
    }
    Ok(c)
}

pub(super) fn write_counter(conn: &Connection, c: &Counter) -> Result<(), CoreError> {
    let n = conn.execute(
        "UPDATE vault_state SET failed_attempts = ?1, last_failure_at = ?2, wiped = ?3, state_check = ?4,
         last_failure_boot_id = ?5, last_failure_boot_ms = ?6 WHERE id = 1",
        params![
            i64::from(c.failures),
            to_i64(c.last_failure_at)?,
            i64::from(c.wiped),
            counter_check(c),
            c.last_failure_boot.as_ref().map(|b| b.boot_id.as_str()),
            c.last_failure_boot
                .as_ref()
                .map(|b| to_i64(b.since_boot_ms))
                .transpose()?
        ],
    )?;
    if n != 1 {
        return Err(CoreError::VaultCorrupted);
    }
    Ok(())
}

impl Vault {
    /// Wipes every secret: cards, issuers, phone, key slots. The counter
    /// row stays, marked wiped.
    pub(super) fn wipe(&mut self) -> Result<(), CoreError> {
        self.session = None;
        let now = self.now();
        {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(
                "DELETE FROM cards; DELETE FROM issuers; DELETE FROM profile; DELETE FROM key_slots; DELETE FROM accounts; DELETE FROM card_states; DELETE FROM pending_removals;
                 UPDATE vault_state SET canary = NULL WHERE id = 1;",
            )?;
            let c = read_counter(&tx).unwrap_or(Counter {
                failures: self.config.lockout().wipe_after(),
                last_failure_at: now,
                last_failure_boot: None,
                wiped: true,
            });
            write_counter(&tx, &Counter { wiped: true, ..c })?;
            tx.commit()?;
        }
        // Move the wiped pages out of the WAL too. A busy checkpoint is
        // retried by SQLite later; the slots are gone either way.
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        if let Some(gate) = &self.hooks.biometric {
            let _ = gate.remove();
        }
        Ok(())
    }

    /// One password attempt, with the lockout around it: returns the data
    /// key or the error to show. The attempt is counted durably before the
    /// KDF runs; success resets the count.
    pub(super) fn password_attempt(&mut self, password: &str) -> Result<SecretKey, CoreError> {
        let now = self.moment();
        if read_counter(&self.conn)?.wiped {
            self.session = None;
            return Err(CoreError::Wiped);
        }
        let slot = read_slot(&self.conn, PASSWORD_SLOT)?.ok_or(CoreError::VaultCorrupted)?;
        let params = slot.params.ok_or(CoreError::VaultCorrupted)?;
        // The device secret first: a keystore failure is not a wrong
        // password and must not cost an attempt.
        let device_secret = self.hooks.keystore.open(&slot.host_blob)?;
        // Read the count, apply the gate and count this attempt in one
        // IMMEDIATE transaction, committed (synchronous = FULL) before the
        // KDF runs. Attempts from other connections or processes serialise
        // on SQLite's write lock here, so each sees the count the previous
        // one wrote: parallel guesses cannot share one count.
        let failures = {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let counter = read_counter(&tx)?;
            let gate = (!counter.wiped).then(|| {
                self.config
                    .lockout()
                    .gate_at(counter.failures, &counter.last_failure(), &now)
            });
            match gate {
                None => {
                    drop(tx);
                    self.session = None;
                    return Err(CoreError::Wiped);
                }
                Some(Gate::Wait(seconds_left)) => {
                    return Err(CoreError::LockedOut { seconds_left });
                }
                Some(Gate::Wipe) => {
                    drop(tx);
                    self.wipe()?;
                    return Err(CoreError::Wiped);
                }
                Some(Gate::Open) => {}
            }
            let failures = counter.failures.saturating_add(1);
            write_counter(
                &tx,
                &Counter {
                    failures,
                    last_failure_at: now.unix,
                    last_failure_boot: now.boot,
                    wiped: false,
                },
            )?;
            tx.commit()?;
            failures
        };
        let place = Field::SlotDataKey.at(PASSWORD_SLOT);
        let pw = password::normalize(password);
        let kek = kdf::derive_kek(pw.as_bytes(), &device_secret, &slot.salt, params)?;
        let mut opened = envelope::open(&kek, place, &slot.wrapped_key);
        let mut legacy = false;
        if matches!(opened, Err(envelope::OpenError::Authentication)) {
            // A slot set before NFC and ي/ك unification holds the password
            // in its old form: one more KDF, still this one attempt.
            let old_form = password::legacy_normalize(password);
            if *old_form != *pw {
                let kek = kdf::derive_kek(old_form.as_bytes(), &device_secret, &slot.salt, params)?;
                opened = envelope::open(&kek, place, &slot.wrapped_key);
                legacy = opened.is_ok();
            }
        }
        match opened {
            Ok(bytes) => {
                // The password was right: reset the count even if what
                // follows finds damage.
                write_counter(&self.conn, &Counter::clear())?;
                let key = SecretKey::from_slice(&bytes).ok_or(CoreError::VaultCorrupted)?;
                self.check_canary(&key)?;
                if legacy {
                    // Rewrap under the current form, so either keyboard's
                    // letters open it from now on. Best effort: if it
                    // fails the old form keeps working.
                    if let Ok(new) =
                        new_password_slot(&*self.hooks.keystore, password, self.config.kdf(), &key)
                    {
                        let _ = write_slot(&self.conn, PASSWORD_SLOT, &new);
                    }
                }
                Ok(key)
            }
            Err(envelope::OpenError::Malformed) => Err(CoreError::VaultCorrupted),
            Err(envelope::OpenError::Authentication) => {
                if failures >= self.config.lockout().wipe_after() {
                    self.wipe()?;
                    Err(CoreError::Wiped)
                } else {
                    Err(CoreError::WrongPassword {
                        attempts_left: self.config.lockout().attempts_left(failures),
                    })
                }
            }
        }
    }

    pub(super) fn check_canary(&self, key: &SecretKey) -> Result<(), CoreError> {
        let canary: Option<Vec<u8>> =
            self.conn
                .query_row("SELECT canary FROM vault_state WHERE id = 1", [], |r| {
                    r.get(0)
                })?;
        let canary = canary.ok_or(CoreError::Wiped)?;
        match envelope::open(key, Field::Canary.at(1), &canary) {
            Ok(p) if ct_eq(&p, CANARY) => Ok(()),
            _ => Err(CoreError::VaultCorrupted),
        }
    }

    /// Unlocks with the app password.
    ///
    /// # Errors
    /// [`CoreError::WrongPassword`] (with attempts left),
    /// [`CoreError::LockedOut`] (with seconds left), [`CoreError::Wiped`]
    /// (this attempt was the last one, or the vault was wiped before),
    /// [`CoreError::Keystore`], [`CoreError::VaultCorrupted`].
    pub fn unlock_with_password(&mut self, password: &str) -> Result<(), CoreError> {
        let key = self.password_attempt(password)?;
        self.start_session(key);
        Ok(())
    }

    /// Requires the password again while unlocked (raising a cap, removing
    /// a card, changing the password, enabling biometrics). Counts like an
    /// unlock attempt.
    pub(super) fn reauthenticate(&mut self, password: &str) -> Result<SecretKey, CoreError> {
        self.touch()?;
        let key = self.password_attempt(password)?;
        let same = self.session.as_ref().is_some_and(|s| s.key.ct_eq(&key));
        if !same {
            self.session = None;
            return Err(CoreError::VaultCorrupted);
        }
        Ok(key)
    }
}
