//! The vault file's lifecycle: create (owner-only), open (WAL, full
//! sync, schema check), destroy, and the status read without a password.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::envelope::{SecretKey, seal};
use super::fields::Field;
use super::lock::{Counter, counter_check, read_counter};
use super::lockout::Gate;
use super::session::Session;
use super::slots::{BIOMETRIC_SLOT, PASSWORD_SLOT, new_password_slot, write_slot};
use super::{CANARY, Hooks, Vault, VaultConfig, VaultStatus, password, schema};
use crate::CoreError;
use crate::hooks::{BiometricGate, Clock, DeviceKeystore};

/// Creates the vault file with owner-only permissions (0600 on Unix); the
/// WAL and shared-memory files SQLite makes beside it copy them.
pub(super) fn create_private_file(path: &Path) -> Result<(), CoreError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .map(|_| ())
        .map_err(|e| CoreError::Storage(format!("cannot create the vault file: {}", e.kind())))
}

pub(super) fn open_connection(path: &Path) -> Result<Connection, CoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(CoreError::Storage("cannot enable the WAL journal".into()));
    }
    // FULL: every commit (the wrong-password counter above all) is on disk
    // before the call returns. secure_delete: deleted cards and slots are
    // overwritten, not left in free pages.
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = ON;
         PRAGMA trusted_schema = OFF;",
    )?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(CoreError::VaultCorrupted);
    }
    Ok(conn)
}

pub(super) fn vault_row_exists(conn: &Connection) -> Result<bool, CoreError> {
    let has_table: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'vault_state')",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(false);
    }
    Ok(conn
        .query_row("SELECT 1 FROM vault_state WHERE id = 1", [], |_| Ok(()))
        .optional()?
        .is_some())
}

impl Vault {
    /// Creates a vault at `path` protected by `password`, and returns it
    /// unlocked. New password slots use `config`'s KDF parameters.
    ///
    /// # Errors
    /// [`CoreError::WeakPassword`]; [`CoreError::VaultExists`] when a vault
    /// (even a wiped one) is already there; [`CoreError::Keystore`];
    /// storage errors.
    pub fn create(
        path: &Path,
        password: &str,
        keystore: Arc<dyn DeviceKeystore>,
        biometric: Option<Arc<dyn BiometricGate>>,
        clock: Arc<dyn Clock>,
        config: VaultConfig,
    ) -> Result<Self, CoreError> {
        password::check_strength(password).map_err(CoreError::WeakPassword)?;
        if path.exists() {
            let conn = open_connection(path)?;
            if schema::current_version(&conn)? > 0 && vault_row_exists(&conn)? {
                return Err(CoreError::VaultExists);
            }
        } else {
            create_private_file(path)?;
        }
        let mut conn = open_connection(path)?;
        schema::migrate(&mut conn)?;
        schema::verify_schema(&conn)?;
        let hooks = Hooks {
            keystore,
            biometric,
            clock,
        };
        let data_key = SecretKey::random()?;
        let slot = new_password_slot(&*hooks.keystore, password, config.kdf(), &data_key)?;
        let canary = seal(&data_key, Field::Canary.at(1), CANARY)?;
        let counter = Counter::clear();
        {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if vault_row_exists(&tx)? {
                return Err(CoreError::VaultExists);
            }
            // Leftovers of an interrupted create, if any.
            tx.execute_batch(
                "DELETE FROM key_slots; DELETE FROM cards; DELETE FROM issuers; DELETE FROM profile; DELETE FROM accounts; DELETE FROM card_states; DELETE FROM pending_removals;",
            )?;
            tx.execute(
                "INSERT INTO vault_state (id, canary, failed_attempts, last_failure_at, wiped, state_check)
                 VALUES (1, ?1, 0, 0, 0, ?2)",
                params![canary, counter_check(&counter)],
            )?;
            write_slot(&tx, PASSWORD_SLOT, &slot)?;
            tx.commit()?;
        }
        let now = hooks.clock.now_unix();
        Ok(Self {
            conn,
            path: path.to_owned(),
            hooks,
            config,
            session: Some(Session {
                key: data_key,
                last_activity: now,
                cards: HashMap::new(),
            }),
        })
    }

    /// Opens the vault at `path`, locked. Runs no KDF: this is what the
    /// app does at start, before showing the lock screen.
    ///
    /// # Errors
    /// [`CoreError::NoVault`] when there is no (finished) vault at `path`;
    /// [`CoreError::VaultCorrupted`]; [`CoreError::VaultTooNew`]; storage
    /// errors.
    pub fn open(
        path: &Path,
        keystore: Arc<dyn DeviceKeystore>,
        biometric: Option<Arc<dyn BiometricGate>>,
        clock: Arc<dyn Clock>,
        config: VaultConfig,
    ) -> Result<Self, CoreError> {
        if !path.exists() {
            return Err(CoreError::NoVault);
        }
        let mut conn = open_connection(path)?;
        if schema::current_version(&conn)? == 0 {
            return Err(CoreError::NoVault);
        }
        schema::migrate(&mut conn)?;
        schema::verify_schema(&conn)?;
        if !vault_row_exists(&conn)? {
            return Err(CoreError::NoVault);
        }
        read_counter(&conn)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
            hooks: Hooks {
                keystore,
                biometric,
                clock,
            },
            config,
            session: None,
        })
    }

    /// Deletes the vault's files (the database, its WAL and shared-memory
    /// files), for example after a wipe, before activating again. The
    /// desktop device key file is left alone.
    ///
    /// # Errors
    /// [`CoreError::Storage`] when a file exists but cannot be removed.
    pub fn destroy(path: &Path) -> Result<(), CoreError> {
        let mut names = vec![path.to_owned()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            names.push(PathBuf::from(p));
        }
        for p in names {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(CoreError::Storage(format!(
                        "cannot remove a vault file: {}",
                        e.kind()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The time of the vault's clock (the host's [`Clock`] hook), Unix
    /// seconds: the phone's own clock, before any issuer time offset.
    pub fn now_unix(&self) -> u64 {
        self.now()
    }

    /// The host's boot clock ([`Clock::boot_time`]), when its reading is one
    /// the vault can store (a boot id of 1 to 128 bytes).
    pub fn boot_time(&self) -> Option<crate::hooks::BootTime> {
        super::lock::storable_boot(self.hooks.clock.boot_time())
    }

    /// The path of the vault file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The vault's settings.
    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// The vault's state for the lock screen.
    ///
    /// # Errors
    /// [`CoreError::VaultCorrupted`] or storage errors.
    pub fn status(&self) -> Result<VaultStatus, CoreError> {
        let now = self.now();
        let c = read_counter(&self.conn)?;
        let policy = self.config.lockout();
        let lockout_seconds_left =
            match policy.gate_at(c.failures, &c.last_failure(), &self.moment()) {
                Gate::Wait(s) => s,
                Gate::Open | Gate::Wipe => 0,
            };
        let biometric_enabled = self
            .conn
            .query_row(
                "SELECT 1 FROM key_slots WHERE id = ?1",
                [BIOMETRIC_SLOT],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        let cards: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM cards", [], |r| r.get(0))?;
        let phone_set = self
            .conn
            .query_row(
                "SELECT 1 FROM profile WHERE id = 1 AND phone IS NOT NULL",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        Ok(VaultStatus {
            locked: c.wiped || !self.session_alive(now),
            wiped: c.wiped,
            failed_attempts: c.failures,
            attempts_left: if c.wiped {
                0
            } else {
                policy.attempts_left(c.failures)
            },
            lockout_seconds_left,
            biometric_enabled,
            card_count: u32::try_from(cards).map_err(|_| CoreError::VaultCorrupted)?,
            phone_set,
        })
    }

    /// Runs SQLite's full `PRAGMA integrity_check` (slow on big files; for
    /// diagnostics and tests).
    ///
    /// # Errors
    /// [`CoreError::VaultCorrupted`] unless the check says `ok`.
    pub fn integrity_check(&self) -> Result<(), CoreError> {
        let r: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if r == "ok" {
            Ok(())
        } else {
            Err(CoreError::VaultCorrupted)
        }
    }
}
