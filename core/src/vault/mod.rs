//! The phone vault: one SQLite file holding the customer's cards, issuer
//! profiles and phone number, every personal or secret field sealed under
//! a random 256-bit data key (envelope encryption), and the app lock
//! around it (key slots, lockout, session, idle auto-lock).
//!
//! docs/security.md ("Phone vault") describes the design and threat model.

pub mod envelope;
pub mod kdf;
pub mod lockout;
pub mod password;
mod records;
pub mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ring::digest;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::CoreError;
use crate::hooks::{BiometricError, BiometricGate, BootTime, Clock, DeviceKeystore};
use envelope::{Place, SecretKey, open_field, seal};
use kdf::{KdfParams, SALT_LEN};
use lockout::{Gate, Moment};
use pooya_protocol::{CardSeed, Policies};

pub use records::{
    CardId, CardRecord, CardSecret, IssuerProfile, MAX_IDLE_TIMEOUT_SECS, NewCard, VaultConfig,
    VaultStatus, check_label,
};

/// The plaintext sealed as the canary: proves a key is the data key.
const CANARY: &[u8] = b"pooya/vault/canary/v1";
/// Slot id of the password slot.
const PASSWORD_SLOT: i64 = 1;
/// Slot id of the biometric slot.
const BIOMETRIC_SLOT: i64 = 2;
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

/// Cached material of one card while unlocked (dropped on lock).
struct CachedCard {
    secret: CardSecret,
}

/// The unlocked state: the data key in zeroizing memory.
struct Session {
    key: SecretKey,
    last_activity: u64,
    cards: HashMap<CardId, CachedCard>,
}

/// The wrong-password counter as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counter {
    failures: u32,
    last_failure_at: u64,
    /// The last failure on the host's boot clock (schema version 2).
    last_failure_boot: Option<BootTime>,
    wiped: bool,
}

impl Counter {
    /// No failure counted.
    fn clear() -> Self {
        Self {
            failures: 0,
            last_failure_at: 0,
            last_failure_boot: None,
            wiped: false,
        }
    }

    /// When the last failure happened, on both clocks.
    fn last_failure(&self) -> Moment {
        Moment {
            unix: self.last_failure_at,
            boot: self.last_failure_boot.clone(),
        }
    }
}

/// A stored key slot.
struct Slot {
    params: Option<KdfParams>,
    salt: Vec<u8>,
    host_blob: Vec<u8>,
    wrapped_key: Vec<u8>,
}

/// The sealed part of a card that rarely changes.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardInfo {
    issuer: String,
    issuer_card_id: String,
    masked_pan: String,
    last4: String,
    bank_name: String,
    policies: Policies,
    added_at: u64,
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

/// The counter's checksum. Without a boot-clock reading it keeps its
/// version-1 form, so files from before schema version 2 still verify.
fn counter_check(c: &Counter) -> Vec<u8> {
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
fn storable_boot(b: Option<BootTime>) -> Option<BootTime> {
    b.filter(|b| !b.boot_id.is_empty() && b.boot_id.len() <= BootTime::MAX_ID_LEN)
        .filter(|b| i64::try_from(b.since_boot_ms).is_ok())
}

fn slot_checksum(id: i64, kind: &str, slot: &Slot) -> Vec<u8> {
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

/// Creates the vault file with owner-only permissions (0600 on Unix); the
/// WAL and shared-memory files SQLite makes beside it copy them.
fn create_private_file(path: &Path) -> Result<(), CoreError> {
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

fn open_connection(path: &Path) -> Result<Connection, CoreError> {
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

fn vault_row_exists(conn: &Connection) -> Result<bool, CoreError> {
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

fn read_counter(conn: &Connection) -> Result<Counter, CoreError> {
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

fn write_counter(conn: &Connection, c: &Counter) -> Result<(), CoreError> {
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

fn read_slot(conn: &Connection, id: i64) -> Result<Option<Slot>, CoreError> {
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

fn write_slot(conn: &Connection, id: i64, slot: &Slot) -> Result<(), CoreError> {
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
fn new_password_slot(
    keystore: &dyn DeviceKeystore,
    password: &str,
    params: KdfParams,
    data_key: &SecretKey,
) -> Result<Slot, CoreError> {
    let pw = password::normalize(password);
    slot_for_normalized(keystore, &pw, params, data_key)
}

/// [`new_password_slot`] for a password already in the form the KDF sees.
fn slot_for_normalized(
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
        Place::new("key_slots", PASSWORD_SLOT, "data_key"),
        data_key.expose_secret(),
    )?;
    Ok(Slot {
        params: Some(params),
        salt,
        host_blob,
        wrapped_key,
    })
}

/// Opens every sealed field with `old` and seals it again with `new`, in
/// the caller's transaction. Each field keeps its place (table, row,
/// field) as associated data.
fn reseal_all(conn: &Connection, old: &SecretKey, new: &SecretKey) -> Result<(), CoreError> {
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
        [reseal(Place::new("vault_state", 1, "canary"), &canary)?],
    )?;
    let phone: Option<Option<Vec<u8>>> = conn
        .query_row("SELECT phone FROM profile WHERE id = 1", [], |r| r.get(0))
        .optional()?;
    if let Some(Some(phone)) = phone {
        conn.execute(
            "UPDATE profile SET phone = ?1 WHERE id = 1",
            [reseal(Place::new("profile", 1, "phone"), &phone)?],
        )?;
    }
    let issuers: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT id, profile FROM issuers")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, sealed) in issuers {
        conn.execute(
            "UPDATE issuers SET profile = ?1 WHERE id = ?2",
            params![reseal(Place::new("issuers", id, "profile"), &sealed)?, id],
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
        let p = |field| Place::new("cards", id, field);
        conn.execute(
            "UPDATE cards SET info = ?1, label = ?2, cap = ?3, seed = ?4 WHERE id = ?5",
            params![
                reseal(p("info"), &info)?,
                reseal(p("label"), &label)?,
                reseal(p("cap"), &cap)?,
                reseal(p("seed"), &seed)?,
                id
            ],
        )?;
    }
    Ok(())
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
        let canary = seal(&data_key, Place::new("vault_state", 1, "canary"), CANARY)?;
        let counter = Counter::clear();
        {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if vault_row_exists(&tx)? {
                return Err(CoreError::VaultExists);
            }
            // Leftovers of an interrupted create, if any.
            tx.execute_batch(
                "DELETE FROM key_slots; DELETE FROM cards; DELETE FROM issuers; DELETE FROM profile;",
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
    pub fn boot_time(&self) -> Option<BootTime> {
        storable_boot(self.hooks.clock.boot_time())
    }

    /// The path of the vault file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The vault's settings.
    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    fn now(&self) -> u64 {
        self.hooks.clock.now_unix()
    }

    /// Now on both of the host's clocks.
    fn moment(&self) -> Moment {
        Moment {
            unix: self.now(),
            boot: storable_boot(self.hooks.clock.boot_time()),
        }
    }

    /// Whether the session is still alive at `now` (not idle too long; a
    /// clock that went backwards ends it).
    fn session_alive(&self, now: u64) -> bool {
        self.session.as_ref().is_some_and(|s| {
            now >= s.last_activity && now - s.last_activity < self.config.idle_timeout_secs()
        })
    }

    /// Checks the session and records activity.
    fn touch(&mut self) -> Result<(), CoreError> {
        let now = self.now();
        if !self.session_alive(now) {
            self.session = None;
            return Err(CoreError::Locked);
        }
        if let Some(s) = self.session.as_mut() {
            s.last_activity = now;
        }
        Ok(())
    }

    /// Checks the session, records activity and returns the data key.
    fn key(&mut self) -> Result<&SecretKey, CoreError> {
        self.touch()?;
        self.session
            .as_ref()
            .map(|s| &s.key)
            .ok_or(CoreError::Locked)
    }

    /// Whether the vault is unlocked now (idle time counted). Does not
    /// count as activity.
    pub fn is_unlocked(&self) -> bool {
        self.session_alive(self.now())
    }

    /// Locks the vault: the data key and every cached card key are wiped
    /// from memory.
    pub fn lock(&mut self) {
        self.session = None;
    }

    /// Locks the vault if it has been idle for the timeout, wiping the key
    /// from memory now rather than at the next call. Hosts call this from
    /// a timer and when the app goes to the background. Returns whether
    /// the vault is (now) locked.
    pub fn lock_if_idle(&mut self) -> bool {
        if !self.session_alive(self.now()) {
            self.session = None;
        }
        self.session.is_none()
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

    /// Wipes every secret: cards, issuers, phone, key slots. The counter
    /// row stays, marked wiped.
    fn wipe(&mut self) -> Result<(), CoreError> {
        self.session = None;
        let now = self.now();
        {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(
                "DELETE FROM cards; DELETE FROM issuers; DELETE FROM profile; DELETE FROM key_slots;
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
    fn password_attempt(&mut self, password: &str) -> Result<SecretKey, CoreError> {
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
        let place = Place::new("key_slots", PASSWORD_SLOT, "data_key");
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

    fn check_canary(&self, key: &SecretKey) -> Result<(), CoreError> {
        let canary: Option<Vec<u8>> =
            self.conn
                .query_row("SELECT canary FROM vault_state WHERE id = 1", [], |r| {
                    r.get(0)
                })?;
        let canary = canary.ok_or(CoreError::Wiped)?;
        match envelope::open(key, Place::new("vault_state", 1, "canary"), &canary) {
            Ok(p) if ct_eq(&p, CANARY) => Ok(()),
            _ => Err(CoreError::VaultCorrupted),
        }
    }

    fn start_session(&mut self, key: SecretKey) {
        let now = self.now();
        self.session = Some(Session {
            key,
            last_activity: now,
            cards: HashMap::new(),
        });
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
    fn reauthenticate(&mut self, password: &str) -> Result<SecretKey, CoreError> {
        self.touch()?;
        let key = self.password_attempt(password)?;
        let same = self.session.as_ref().is_some_and(|s| s.key.ct_eq(&key));
        if !same {
            self.session = None;
            return Err(CoreError::VaultCorrupted);
        }
        Ok(key)
    }

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

    fn drop_biometric_slot(&mut self) -> Result<(), CoreError> {
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

    // ---- phone ----------------------------------------------------------

    /// Sets the customer's phone number, once (normalised with
    /// [`pooya_protocol::normalize_phone`]). Returns the normalised form.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::Protocol`] for a bad number,
    /// [`CoreError::PhoneAlreadySet`].
    pub fn set_phone(&mut self, phone: &str) -> Result<String, CoreError> {
        let normalized = pooya_protocol::normalize_phone(phone)?;
        self.touch()?;
        let sealed = seal(
            self.key()?,
            Place::new("profile", 1, "phone"),
            normalized.as_bytes(),
        )?;
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
        let plain = open_field(self.key()?, Place::new("profile", 1, "phone"), &sealed)?;
        utf8(plain).map(Some)
    }

    // ---- issuers --------------------------------------------------------

    fn all_issuers(&mut self) -> Result<Vec<(i64, IssuerProfile)>, CoreError> {
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
                let plain = open_field(key, Place::new("issuers", id, "profile"), &sealed)?;
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
        let sealed = seal(key, Place::new("issuers", id, "profile"), &plain)?;
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
        let sealed = seal(self.key()?, Place::new("issuers", id, "profile"), &plain)?;
        self.conn.execute(
            "UPDATE issuers SET profile = ?1 WHERE id = ?2",
            params![sealed, id],
        )?;
        Ok(())
    }

    // ---- cards ----------------------------------------------------------

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
        let p = |field| Place::new("cards", id, field);
        tx.execute(
            "UPDATE cards SET info = ?1, label = ?2, cap = ?3, seed = ?4 WHERE id = ?5",
            params![
                seal(key, p("info"), &info)?,
                seal(key, p("label"), card.label.as_bytes())?,
                seal(key, p("cap"), &card.cap.to_be_bytes())?,
                seal(key, p("seed"), card.seed.expose_secret())?,
                id
            ],
        )?;
        if let Some((row, plain)) = issuer_row {
            let sealed = seal(key, Place::new("issuers", row, "profile"), &plain)?;
            tx.execute(
                "UPDATE issuers SET profile = ?1 WHERE id = ?2",
                params![sealed, row],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    fn decode_card(
        key: &SecretKey,
        id: CardId,
        info: &[u8],
        label: &[u8],
        cap: &[u8],
    ) -> Result<CardRecord, CoreError> {
        let p = |field| Place::new("cards", id, field);
        let info: CardInfo = from_json(&open_field(key, p("info"), info)?)?;
        let label = utf8(open_field(key, p("label"), label)?)?;
        let cap = u64_field(&open_field(key, p("cap"), cap)?)?;
        Ok(CardRecord {
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
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, info, label, cap FROM cards ORDER BY id")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let info = r.get_ref(1)?.as_blob()?;
            let label = r.get_ref(2)?.as_blob()?;
            let cap = r.get_ref(3)?.as_blob()?;
            out.push(Self::decode_card(key, id, info, label, cap)?);
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
        let row: Option<(Vec<u8>, Vec<u8>, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT info, label, cap FROM cards WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let (info, label, cap) = row.ok_or(CoreError::CardNotFound)?;
        Self::decode_card(key, id, &info, &label, &cap)
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
        let p = |field| Place::new("cards", id, field);
        let info: CardInfo = from_json(&open_field(key, p("info"), &info)?)?;
        let cap = u64_field(&open_field(key, p("cap"), &cap)?)?;
        let seed = CardSeed::from_slice(&open_field(key, p("seed"), &seed)?)
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

    fn forget_cached(&mut self, id: CardId) {
        if let Some(s) = self.session.as_mut() {
            s.cards.remove(&id);
        }
    }

    /// Renames a card.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::InvalidField`],
    /// [`CoreError::CardNotFound`].
    pub fn rename_card(&mut self, id: CardId, label: &str) -> Result<(), CoreError> {
        check_label(label)?;
        let sealed = seal(
            self.key()?,
            Place::new("cards", id, "label"),
            label.as_bytes(),
        )?;
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
        let sealed = seal(
            self.key()?,
            Place::new("cards", id, "cap"),
            &cap.to_be_bytes(),
        )?;
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

#[cfg(test)]
mod tests {
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
