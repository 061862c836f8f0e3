//! [`PooyaApp`]: the phone (`pooya_core::Phone`: the vault, its app lock,
//! issuers, card activation, caps and PINs) as one object for Kotlin and
//! Swift.
//!
//! `pooya_core::Phone` owns a `Vault`, which is `Send` but not `Sync` (one
//! SQLite connection, `&mut self` methods); the object holds it behind a
//! [`Mutex`], so calls from several threads run one at a time. Calls block
//! (Argon2id for the password, the biometric prompt): apps call them off
//! the main thread. The calls that use the network are async
//! (`crate::network`) and never hold the lock while they wait.
//!
//! Only display data crosses: [`VaultState`], [`CardInfo`],
//! [`IssuerInfo`], [`ActivatedCard`], [`CapInfo`], and [`PinInfo`] (the PIN
//! code itself, which the customer is shown). Passwords and activation
//! codes come in as `String`s and are moved into [`Zeroizing`] buffers at
//! once; card seeds and keys stay in the core.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use pooya_core::hooks::{
    BiometricGate as CoreGate, Clock as CoreClock, DeviceKeystore as CoreKeystore, SystemClock,
    Transport as CoreTransport,
};
use pooya_core::{
    CapChange, CoreError, KdfParams, LockoutPolicy, Phone, PinView, Vault, VaultConfig, VaultStatus,
};
use zeroize::Zeroizing;

// The records the core derives for the FFI (feature `uniffi`), under the
// names Kotlin and Swift know (docs/phone.md, "FFI").
pub use pooya_core::protocol::PinKind;
pub use pooya_core::{
    AddedCard as ActivatedCard, BankTime as TimeStatusInfo, CardView as CardInfo,
    IssuerView as IssuerInfo, TimeSource, TimeSync as TimeSyncInfo,
};

use crate::PooyaError;
use crate::hooks::{
    AsyncOnlyTransport, BiometricAdapter, BiometricGate, Clock, ClockAdapter, DeviceKeystore,
    KeystoreAdapter, Transport,
};

/// The host's vault settings. Each may only be tightened from the
/// default: the core refuses Argon2id parameters below 19 MiB / 2 passes
/// and idle timeouts of 0 or above 300 s (`InvalidConfig`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VaultSettings {
    /// Argon2id memory for new password slots, in KiB (default 65,536).
    pub kdf_memory_kib: u32,
    /// Argon2id passes (default 12).
    pub kdf_iterations: u32,
    /// Argon2id lanes (default 1).
    pub kdf_parallelism: u32,
    /// Idle seconds before the vault locks itself (1–300, default 300).
    pub idle_timeout_secs: u64,
}

/// The default settings (what `null`/`nil` settings mean): Argon2id
/// 64 MiB × 12 passes × 1 lane, idle lock after 5 minutes.
#[uniffi::export]
pub fn default_vault_settings() -> VaultSettings {
    let d = VaultConfig::default();
    VaultSettings {
        kdf_memory_kib: d.kdf().memory_kib(),
        kdf_iterations: d.kdf().iterations(),
        kdf_parallelism: d.kdf().parallelism(),
        idle_timeout_secs: d.idle_timeout_secs(),
    }
}

impl TryFrom<VaultSettings> for VaultConfig {
    type Error = PooyaError;

    fn try_from(s: VaultSettings) -> Result<Self, PooyaError> {
        let kdf = KdfParams::new(s.kdf_memory_kib, s.kdf_iterations, s.kdf_parallelism)?;
        Ok(VaultConfig::new(
            kdf,
            LockoutPolicy::default(),
            s.idle_timeout_secs,
        )?)
    }
}

/// The vault's state for the lock screen (needs no password).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VaultState {
    /// Whether a vault exists (false: show onboarding, call
    /// `createVault`). When false, `locked` is true and every other field
    /// is zero/false.
    pub has_vault: bool,
    /// Whether the vault is locked now (idle time counted).
    pub locked: bool,
    /// Whether the vault was wiped after too many wrong passwords.
    pub wiped: bool,
    /// Consecutive wrong passwords so far.
    pub failed_attempts: u32,
    /// Wrong passwords left before the wipe.
    pub attempts_left: u32,
    /// Seconds until the next password attempt is allowed (0: now).
    pub lockout_seconds_left: u64,
    /// Whether biometric unlock is enabled.
    pub biometric_enabled: bool,
    /// How many cards are stored.
    pub card_count: u32,
    /// Whether the phone number is set.
    pub phone_set: bool,
}

impl VaultState {
    fn absent() -> Self {
        Self {
            has_vault: false,
            locked: true,
            wiped: false,
            failed_attempts: 0,
            attempts_left: 0,
            lockout_seconds_left: 0,
            biometric_enabled: false,
            card_count: 0,
            phone_set: false,
        }
    }
}

impl From<VaultStatus> for VaultState {
    fn from(s: VaultStatus) -> Self {
        Self {
            has_vault: true,
            locked: s.locked,
            wiped: s.wiped,
            failed_attempts: s.failed_attempts,
            attempts_left: s.attempts_left,
            lockout_seconds_left: s.lockout_seconds_left,
            biometric_enabled: s.biometric_enabled,
            card_count: s.card_count,
            phone_set: s.phone_set,
        }
    }
}

// ---- end of signed time ------------------------------------------------

/// The outcome of a cap change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct CapInfo {
    /// The card.
    pub card_id: i64,
    /// The cap before, in Rials.
    pub previous: u64,
    /// The amount asked for.
    pub requested: u64,
    /// The cap now: the largest tier not above `requested`.
    pub cap: u64,
    /// Whether `requested` fell between tiers and was rounded down (tell
    /// the customer).
    pub rounded_down: bool,
}

impl From<CapChange> for CapInfo {
    fn from(c: CapChange) -> Self {
        Self {
            card_id: c.card_id,
            previous: c.previous,
            requested: c.requested,
            cap: c.cap,
            rounded_down: c.rounded_down(),
        }
    }
}

/// A dynamic PIN to show: the code and its validity window. Times are in
/// the issuer's clock (the phone's clock plus the issuer's offset); show
/// a countdown from `seconds_left`.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct PinInfo {
    /// The card.
    pub card_id: i64,
    /// Which PIN.
    pub kind: PinKind,
    /// The code, ASCII digits, leading zeros kept.
    pub code: String,
    /// The policy's time step, in seconds.
    pub step_secs: u64,
    /// First second of the code's step (issuer time, Unix seconds).
    pub valid_from: u64,
    /// First second after the code's step (issuer time).
    pub valid_until: u64,
    /// Seconds left until `valid_until` when the code was made.
    pub seconds_left: u64,
    /// The issuer-corrected time the code was made at.
    pub issuer_time: u64,
    /// The cap tier a second PIN is bound to, in Rials.
    pub cap: Option<u64>,
    /// The cap asked for (second PINs with a requested cap).
    pub requested_cap: Option<u64>,
    /// Whether the requested cap was lowered to the card's cap or
    /// rounded down to a tier (tell the customer).
    pub cap_adjusted: bool,
    /// The exact amount of a transaction-bound PIN, in Rials.
    pub amount: Option<u64>,
    /// The payee of a transaction-bound PIN (trimmed).
    pub payee: Option<String>,
    /// The transaction type of a transaction-bound PIN.
    pub tx_type: Option<pooya_core::protocol::TxType>,
}

impl std::fmt::Debug for PinInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinInfo")
            .field("card_id", &self.card_id)
            .field("kind", &self.kind)
            .field("code", &"<redacted>")
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

impl From<PinView> for PinInfo {
    fn from(p: PinView) -> Self {
        // `PinView` wipes its code on drop, so the code is copied out (the
        // copy is what the app shows).
        Self {
            card_id: p.card_id,
            kind: p.kind,
            code: p.code.clone(),
            step_secs: p.step_secs,
            valid_from: p.valid_from,
            valid_until: p.valid_until,
            seconds_left: p.seconds_left,
            issuer_time: p.issuer_time,
            cap: p.cap,
            requested_cap: p.requested_cap,
            cap_adjusted: p.cap_adjusted(),
            amount: p.amount,
            payee: p.payee.clone(),
            tx_type: p.tx_type,
        }
    }
}

/// The host hooks, adapted into the core's traits once.
struct Hooks {
    keystore: Arc<dyn CoreKeystore>,
    biometric: Option<Arc<dyn CoreGate>>,
    clock: Arc<dyn CoreClock>,
    transport: Arc<dyn CoreTransport>,
}

/// The Pooya phone library: one vault file, its app lock, issuers,
/// cards, caps and PINs. Construct one per vault path and keep it for the
/// app's life (Kotlin `PooyaApp(...)`, Swift `PooyaApp(...)`; it is
/// thread-safe).
///
/// The vault is opened lazily (opening runs no KDF) and stays open; a
/// vault that does not exist yet makes the calls that need it fail with
/// `NoVault` until [`PooyaApp::create_vault`].
#[derive(uniffi::Object)]
pub struct PooyaApp {
    path: PathBuf,
    device_label: String,
    hooks: Hooks,
    config: VaultConfig,
    phone: Mutex<Option<Phone>>,
    /// The host's network, awaited by `crate::network` (issue 13, item 6).
    pub(crate) transport: Arc<dyn Transport>,
    /// One network call at a time (see `crate::network`).
    pub(crate) network_turn: async_lock::Mutex<()>,
}

impl std::fmt::Debug for PooyaApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooyaApp")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Moves a password handed over the FFI into a buffer wiped on drop.
fn secret(password: String) -> Zeroizing<String> {
    Zeroizing::new(password)
}

impl PooyaApp {
    /// Deletes the biometric platform key, if the host has a gate; best
    /// effort (see [`PooyaApp::reset_vault`]).
    fn remove_biometric_key(&self) {
        if let Some(gate) = &self.hooks.biometric {
            let _ = gate.remove();
        }
    }

    /// The phone slot, recovering from a poisoned lock: a panic in an
    /// earlier call (reported to the host as an exception) must not brick
    /// the app. SQLite kept the file consistent; the session is ended so
    /// the user unlocks again.
    fn guard(&self) -> MutexGuard<'_, Option<Phone>> {
        match self.phone.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                let mut g = poisoned.into_inner();
                if let Some(p) = g.as_mut() {
                    p.vault_mut().lock();
                }
                self.phone.clear_poison();
                g
            }
        }
    }

    fn phone_over(&self, vault: Vault) -> Result<Phone, CoreError> {
        Phone::new(vault, self.hooks.transport.clone(), &self.device_label)
    }

    fn open_phone(&self) -> Result<Phone, CoreError> {
        let vault = Vault::open(
            &self.path,
            self.hooks.keystore.clone(),
            self.hooks.biometric.clone(),
            self.hooks.clock.clone(),
            self.config.clone(),
        )?;
        self.phone_over(vault)
    }

    /// Runs `f` on the phone, opening the vault first if needed.
    pub(crate) fn with_phone<T>(
        &self,
        f: impl FnOnce(&mut Phone) -> Result<T, CoreError>,
    ) -> Result<T, PooyaError> {
        let mut g = self.guard();
        if g.is_none() {
            *g = Some(self.open_phone()?);
        }
        match g.as_mut() {
            Some(p) => f(p).map_err(PooyaError::from),
            None => Err(PooyaError::NoVault),
        }
    }

    /// Runs `f` on the vault, opening it first if needed.
    pub(crate) fn with_vault<T>(
        &self,
        f: impl FnOnce(&mut Vault) -> Result<T, CoreError>,
    ) -> Result<T, PooyaError> {
        self.with_phone(|p| f(p.vault_mut()))
    }
}

#[uniffi::export]
impl PooyaApp {
    /// A library instance for the vault file at `vault_path`, with the
    /// host's hooks: the device keystore (required), the biometric gate
    /// (`null` on devices without biometrics), the network, and the clock
    /// (`null`: the system clock, read in Rust; a foreign clock costs a
    /// callback on every call that reads the time, several per PIN).
    /// `device_label` names this device to the bank's operators at
    /// activation (1–64 characters without control characters, e.g.
    /// "Pixel 8"; the core checks it when it opens the vault, so a bad one
    /// makes the first vault call fail with `InvalidInput { field:
    /// "device_label" }`). `settings` `null` means
    /// [`default_vault_settings`]. Nothing is read or written yet.
    ///
    /// # Errors
    /// `InvalidConfig` when `settings` are below the floors.
    #[uniffi::constructor(default(biometric = None, clock = None, settings = None))]
    pub fn new(
        vault_path: String,
        device_label: String,
        keystore: Arc<dyn DeviceKeystore>,
        transport: Arc<dyn Transport>,
        biometric: Option<Arc<dyn BiometricGate>>,
        clock: Option<Arc<dyn Clock>>,
        settings: Option<VaultSettings>,
    ) -> Result<Arc<Self>, PooyaError> {
        let config = match settings {
            Some(s) => VaultConfig::try_from(s)?,
            None => VaultConfig::default(),
        };
        let biometric = biometric.map(|b| Arc::new(BiometricAdapter(b)) as Arc<dyn CoreGate>);
        Ok(Arc::new(Self {
            path: PathBuf::from(vault_path),
            device_label,
            hooks: Hooks {
                keystore: Arc::new(KeystoreAdapter(keystore)),
                biometric,
                clock: match clock {
                    Some(c) => Arc::new(ClockAdapter(c)),
                    None => Arc::new(SystemClock),
                },
                transport: Arc::new(AsyncOnlyTransport),
            },
            config,
            phone: Mutex::new(None),
            transport,
            network_turn: async_lock::Mutex::new(()),
        }))
    }

    /// Whether a vault exists at the path (a finished one).
    ///
    /// # Errors
    /// `VaultCorrupted`, `VaultTooNew` or `Storage` when the file is
    /// there but cannot be opened.
    pub fn has_vault(&self) -> Result<bool, PooyaError> {
        match self.with_vault(|_| Ok(())) {
            Ok(()) => Ok(true),
            Err(PooyaError::NoVault) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates the vault protected by `password` and leaves it unlocked
    /// (onboarding). Runs Argon2id once.
    ///
    /// # Errors
    /// `WeakPassword`, `VaultExists`, `Keystore`, `Storage`.
    pub fn create_vault(&self, password: String) -> Result<(), PooyaError> {
        let password = secret(password);
        let mut g = self.guard();
        if g.is_some() {
            return Err(PooyaError::VaultExists);
        }
        let v = Vault::create(
            &self.path,
            &password,
            self.hooks.keystore.clone(),
            self.hooks.biometric.clone(),
            self.hooks.clock.clone(),
            self.config.clone(),
        )?;
        *g = Some(self.phone_over(v)?);
        Ok(())
    }

    /// Deletes the vault's files so the customer can start over: every
    /// card must be activated again. Allowed only when nothing is lost
    /// that the caller could not already reach:
    ///
    /// - the vault was wiped after too many wrong passwords (`password`
    ///   may be `null`), or there is no finished vault (leftovers of an
    ///   interrupted `createVault` are removed);
    /// - otherwise `password` must be the current app password. It is
    ///   checked like an unlock: a wrong one is a counted attempt (the
    ///   lockout delays apply, and the 10th wipes the vault, after which a
    ///   reset needs no password).
    ///
    /// # Errors
    /// `PasswordRequired` (`password` is `null` and the vault is not
    /// wiped), `WrongPassword { attemptsLeft }`, `LockedOut { secondsLeft }`,
    /// `Wiped` (this password was the 10th wrong one: call again with
    /// `null`), `Keystore`, `VaultCorrupted`, `Storage` when a file cannot
    /// be removed. On any error nothing is deleted.
    ///
    /// After the files are gone the biometric gate's platform key is
    /// deleted too (`BiometricGate.remove`: Android
    /// `KeyStore.deleteEntry`, iOS `SecItemDelete`), best effort: a failure
    /// there is not reported, since the vault it wrapped no longer exists
    /// (docs/security.md, "Reset and wipe remove the biometric key").
    pub fn reset_vault(&self, password: Option<String>) -> Result<(), PooyaError> {
        let password = password.map(secret);
        let mut g = self.guard();
        if g.is_none() {
            match self.open_phone() {
                Ok(p) => *g = Some(p),
                // No finished vault: nothing to lose, clear any leftovers.
                Err(CoreError::NoVault) => {
                    Vault::destroy(&self.path)?;
                    self.remove_biometric_key();
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let Some(phone) = g.as_mut() else {
            return Err(PooyaError::NoVault);
        };
        let vault = phone.vault_mut();
        if !vault.status()?.wiped {
            match &password {
                None => return Err(PooyaError::PasswordRequired),
                Some(p) => vault.unlock_with_password(p)?,
            }
        }
        // Close the connection before removing its files.
        *g = None;
        Vault::destroy(&self.path)?;
        self.remove_biometric_key();
        Ok(())
    }

    /// The state for the lock screen; never needs the password.
    ///
    /// # Errors
    /// `VaultCorrupted`, `VaultTooNew`, `Storage`.
    pub fn status(&self) -> Result<VaultState, PooyaError> {
        match self.with_vault(|v| v.status()) {
            Ok(s) => Ok(s.into()),
            Err(PooyaError::NoVault) => Ok(VaultState::absent()),
            Err(e) => Err(e),
        }
    }

    /// Unlocks with the app password (a counted attempt).
    ///
    /// # Errors
    /// `WrongPassword { attemptsLeft }`, `LockedOut { secondsLeft }`,
    /// `Wiped` (this was the last attempt, or it happened before),
    /// `NoVault`, `Keystore`, `VaultCorrupted`.
    pub fn unlock_with_password(&self, password: String) -> Result<(), PooyaError> {
        let password = secret(password);
        self.with_vault(|v| v.unlock_with_password(&password))
    }

    /// Unlocks with biometrics: the host's gate prompts the user (the
    /// call blocks meanwhile). Does not count as a password attempt.
    ///
    /// # Errors
    /// `BiometricNotEnabled`, `BiometricUnavailable`, `BiometricCancelled`,
    /// `BiometricLockout`, `BiometricFailed`, `BiometricInvalidated` (the
    /// biometric slot was deleted: ask for the password), `Wiped`.
    pub fn unlock_with_biometrics(&self) -> Result<(), PooyaError> {
        self.with_vault(Vault::unlock_with_biometrics)
    }

    /// Enables biometric unlock: needs the vault unlocked and the
    /// password again; the gate enrolls (and may prompt).
    ///
    /// # Errors
    /// `Locked`, the password errors of
    /// [`PooyaApp::unlock_with_password`], `BiometricUnavailable` and the
    /// other biometric errors.
    pub fn enable_biometrics(&self, password: String) -> Result<(), PooyaError> {
        let password = secret(password);
        self.with_vault(|v| v.enable_biometrics(&password))
    }

    /// Disables biometric unlock and deletes the platform key.
    ///
    /// # Errors
    /// `Storage`, `NoVault`.
    pub fn disable_biometrics(&self) -> Result<(), PooyaError> {
        self.with_vault(Vault::disable_biometrics)
    }

    /// Changes the app password (needs the vault unlocked and the old
    /// password). The data key is rotated: every stored field is sealed
    /// again under a new key, so a copy of the vault file taken before
    /// opens only the data as it was then. Biometric unlock is turned off
    /// (its platform key is deleted); call `enableBiometrics` again.
    ///
    /// # Errors
    /// `WeakPassword` (checked first, costs no attempt), `Locked`, the
    /// password errors of [`PooyaApp::unlock_with_password`].
    pub fn change_password(
        &self,
        old_password: String,
        new_password: String,
    ) -> Result<(), PooyaError> {
        let old = secret(old_password);
        let new = secret(new_password);
        self.with_vault(|v| v.change_password(&old, &new))
    }

    /// Locks the vault now: keys are wiped from memory.
    pub fn lock(&self) {
        if let Some(p) = self.guard().as_mut() {
            p.vault_mut().lock();
        }
    }

    /// Locks the vault if it was idle for the timeout; returns whether it
    /// is locked. Call from a timer and when the app goes to the
    /// background.
    pub fn lock_if_idle(&self) -> bool {
        self.guard()
            .as_mut()
            .is_none_or(|p| p.vault_mut().lock_if_idle())
    }

    /// Whether the vault is unlocked now (idle time counted; not counted
    /// as activity).
    pub fn is_unlocked(&self) -> bool {
        self.guard()
            .as_ref()
            .is_some_and(|p| p.vault().is_unlocked())
    }

    /// Sets the customer's mobile number, once (the number registered at
    /// the ATM); returns it normalised (`+989…`). Persian and
    /// Arabic-Indic digits are accepted.
    ///
    /// # Errors
    /// `Locked`, `InvalidInput { field: "phone" }`, `PhoneAlreadySet`.
    pub fn set_phone(&self, phone: String) -> Result<String, PooyaError> {
        self.with_phone(|p| p.set_phone_number(&phone))
    }

    /// The phone number (`+989…`), if set.
    ///
    /// # Errors
    /// `Locked`.
    pub fn phone(&self) -> Result<Option<String>, PooyaError> {
        self.with_phone(Phone::phone_number)
    }

    /// Stores an issuer (bank) profile: a unique name, the base URL of
    /// its API (`https://`, or `http://` to a loopback address), its
    /// Ed25519 public key as 64 hex digits, which every activation answer
    /// must be signed with, and its activation key (P-256, SEC1
    /// uncompressed) as 130 hex digits, which every activation request is
    /// sealed to.
    ///
    /// # Errors
    /// `Locked`, `InvalidInput` (`public_key`, `activation_key`, `name`,
    /// `base_url`), `IssuerExists`.
    pub fn add_issuer(
        &self,
        name: String,
        base_url: String,
        public_key: String,
        activation_key: String,
    ) -> Result<IssuerInfo, PooyaError> {
        self.with_phone(|p| p.add_issuer(&name, &base_url, &public_key, &activation_key))
    }

    /// The stored issuer profiles, in the order added.
    ///
    /// # Errors
    /// `Locked`.
    pub fn issuers(&self) -> Result<Vec<IssuerInfo>, PooyaError> {
        self.with_phone(Phone::issuers)
    }

    // add_card and sync_time are async: crate::network.

    /// The bank time PINs of `issuer` use now, and whether to sync.
    /// Offline.
    ///
    /// # Errors
    /// `Locked`, `IssuerNotFound`.
    pub fn time_status(&self, issuer: String) -> Result<TimeStatusInfo, PooyaError> {
        self.with_phone(|p| p.time_status(&issuer))
    }

    /// Every card's display data, in the order added.
    ///
    /// # Errors
    /// `Locked`.
    pub fn cards(&self) -> Result<Vec<CardInfo>, PooyaError> {
        self.with_phone(Phone::cards)
    }

    /// One card's display data.
    ///
    /// # Errors
    /// `Locked`, `CardNotFound`.
    pub fn card(&self, card_id: i64) -> Result<CardInfo, PooyaError> {
        self.with_phone(|p| p.card(card_id))
    }

    /// Finds a card by what the customer typed: its last four digits
    /// (ASCII or Persian) or its id.
    ///
    /// # Errors
    /// `Locked`, `CardNotFound`, `AmbiguousCard` (several cards end in
    /// these digits).
    pub fn find_card(&self, selector: String) -> Result<CardInfo, PooyaError> {
        self.with_phone(|p| p.find_card(&selector))
    }

    /// Renames a card; returns it.
    ///
    /// # Errors
    /// `Locked`, `InvalidInput { field: "label" }`, `CardNotFound`.
    pub fn rename_card(&self, card_id: i64, label: String) -> Result<CardInfo, PooyaError> {
        self.with_phone(|p| p.rename_card(card_id, &label))
    }

    /// Sets a card's cap from an amount in Rials: the largest tier of its
    /// ladder not above `amount` (`rounded_down` tells the customer).
    /// Lowering is free; raising needs the password (`password` is not
    /// checked when lowering).
    ///
    /// # Errors
    /// `Locked`, `CardNotFound`, `CapBelowLowestTier { lowestTier }`,
    /// `PasswordRequired` when raising without a password, and the
    /// password errors of [`PooyaApp::unlock_with_password`].
    pub fn set_cap(
        &self,
        card_id: i64,
        amount: u64,
        password: Option<String>,
    ) -> Result<CapInfo, PooyaError> {
        let password = password.map(secret);
        Ok(self
            .with_phone(|p| p.set_cap(card_id, amount, password.as_deref().map(String::as_str)))?
            .into())
    }

    /// The first dynamic PIN (ATM, POS) now. Offline.
    ///
    /// # Errors
    /// `Locked`, `CardNotFound`.
    pub fn first_pin(&self, card_id: i64) -> Result<PinInfo, PooyaError> {
        Ok(self.with_phone(|p| p.first_pin(card_id))?.into())
    }

    /// The second dynamic PIN (online payments, card-to-card, bills) now,
    /// bound to the card's cap. Offline. The app's most frequent call: it
    /// takes only the id so a Kotlin call makes no argument buffer
    /// (docs/benchmarks.md).
    ///
    /// # Errors
    /// `Locked`, `CardNotFound`.
    pub fn second_pin(&self, card_id: i64) -> Result<PinInfo, PooyaError> {
        Ok(self.with_phone(|p| p.second_pin(card_id, None))?.into())
    }

    /// The second dynamic PIN now, bound to `cap` limited to the card's
    /// cap and rounded down to a tier (`cap_adjusted` then tells the
    /// customer). Offline.
    ///
    /// # Errors
    /// `Locked`, `CardNotFound`, `CapBelowLowestTier`.
    pub fn second_pin_for_cap(&self, card_id: i64, cap: u64) -> Result<PinInfo, PooyaError> {
        Ok(self
            .with_phone(|p| p.second_pin(card_id, Some(cap)))?
            .into())
    }

    /// The second dynamic PIN bound to exactly a transaction of `tx_type`
    /// (purchase, card-to-card transfer, bill) for `amount` Rials to
    /// `payee` (the merchant or the destination card) now. Offline.
    ///
    /// # Errors
    /// `Locked`, `CardNotFound`, `AmountAboveCap { cap }`,
    /// `InvalidAmount` (zero), `InvalidInput { field: "payee" }`.
    pub fn transaction_pin(
        &self,
        card_id: i64,
        tx_type: pooya_core::protocol::TxType,
        amount: u64,
        payee: String,
    ) -> Result<PinInfo, PooyaError> {
        Ok(self
            .with_phone(|p| p.transaction_pin(card_id, tx_type, amount, &payee))?
            .into())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The object with Rust implementations of the foreign traits (what a
    //! Kotlin implementation becomes); the Kotlin tests cover the JVM side.

    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::hooks::{BiometricError, HostError, HttpResponse};

    struct XorKeystore;

    impl DeviceKeystore for XorKeystore {
        fn seal(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, HostError> {
            Ok(plaintext.iter().map(|b| b ^ 0x5A).collect())
        }
        fn open(&self, sealed: Vec<u8>) -> Result<Vec<u8>, HostError> {
            Ok(sealed.iter().map(|b| b ^ 0x5A).collect())
        }
    }

    pub(crate) struct Gate {
        invalidated: std::sync::atomic::AtomicBool,
        /// How often the platform key was deleted.
        removes: std::sync::atomic::AtomicU32,
    }

    impl Gate {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                invalidated: false.into(),
                removes: 0.into(),
            })
        }
    }

    impl BiometricGate for Gate {
        fn enroll(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, BiometricError> {
            Ok(plaintext.into_iter().rev().collect())
        }
        fn open(&self, sealed: Vec<u8>) -> Result<Vec<u8>, BiometricError> {
            if self.invalidated.load(Ordering::SeqCst) {
                return Err(BiometricError::Invalidated);
            }
            Ok(sealed.into_iter().rev().collect())
        }
        fn remove(&self) -> Result<(), BiometricError> {
            self.removes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    pub(crate) struct NoNetwork;

    #[async_trait::async_trait]
    impl Transport for NoNetwork {
        async fn post_json(
            &self,
            _: String,
            _: Vec<u8>,
            _: u64,
        ) -> Result<HttpResponse, HostError> {
            Err(HostError::Failed {
                details: "offline".into(),
            })
        }
    }

    pub(crate) struct TestClock(pub(crate) AtomicU64);

    impl Clock for TestClock {
        fn now_unix(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
        fn boot_time(&self) -> Option<crate::hooks::BootTime> {
            // Time moves only by hand here, on both clocks together.
            Some(crate::hooks::BootTime {
                boot_id: "test-boot".into(),
                since_boot_ms: self.0.load(Ordering::SeqCst).saturating_mul(1000),
            })
        }
    }

    fn fast() -> VaultSettings {
        VaultSettings {
            kdf_memory_kib: KdfParams::FLOOR.memory_kib(),
            kdf_iterations: KdfParams::FLOOR.iterations(),
            kdf_parallelism: KdfParams::FLOOR.parallelism(),
            idle_timeout_secs: 60,
        }
    }

    fn app(dir: &std::path::Path, gate: Option<Arc<Gate>>, clock: Arc<TestClock>) -> Arc<PooyaApp> {
        app_over(dir, gate, clock, Arc::new(NoNetwork))
    }

    /// An app over the vault in `dir` with the host's `transport`.
    pub(crate) fn app_over(
        dir: &std::path::Path,
        gate: Option<Arc<Gate>>,
        clock: Arc<TestClock>,
        transport: Arc<dyn Transport>,
    ) -> Arc<PooyaApp> {
        PooyaApp::new(
            dir.join("vault.db").display().to_string(),
            "test phone".into(),
            Arc::new(XorKeystore),
            transport,
            gate.map(|g| g as Arc<dyn BiometricGate>),
            Some(clock),
            Some(fast()),
        )
        .unwrap()
    }

    pub(crate) fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "pooya-ffi-vault-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn weak_settings_are_refused() {
        let dir = tempdir();
        let mut s = fast();
        s.kdf_memory_kib = 1024;
        let e = PooyaApp::new(
            dir.join("v").display().to_string(),
            "test phone".into(),
            Arc::new(XorKeystore),
            Arc::new(NoNetwork),
            None,
            None,
            Some(s),
        )
        .unwrap_err();
        assert_eq!(e.code(), "invalid_config");
        let mut s = fast();
        s.idle_timeout_secs = 3600;
        assert!(VaultConfig::try_from(s).is_err());
        assert_eq!(default_vault_settings().kdf_memory_kib, 64 * 1024);
    }

    #[test]
    fn lifecycle_errors_and_biometric_invalidation() {
        let dir = tempdir();
        let clock = Arc::new(TestClock(AtomicU64::new(1_800_000_000)));
        let gate = Gate::new();
        let a = app(&dir, Some(gate.clone()), clock.clone());
        assert!(!a.has_vault().unwrap());
        assert!(!a.status().unwrap().has_vault);
        assert_eq!(
            a.unlock_with_password("x".into()).unwrap_err(),
            PooyaError::NoVault
        );
        assert_eq!(
            a.create_vault("123456".into()).unwrap_err().code(),
            "weak_password"
        );
        a.create_vault("correct horse".into()).unwrap();
        assert_eq!(
            a.create_vault("correct horse".into()).unwrap_err(),
            PooyaError::VaultExists
        );
        assert!(a.is_unlocked());
        assert_eq!(a.set_phone("۰۹۱۲۱۲۳۴۵۶۷".into()).unwrap(), "+989121234567");
        a.enable_biometrics("correct horse".into()).unwrap();
        a.lock();
        assert_eq!(a.cards().unwrap_err(), PooyaError::Locked);

        // A second instance on the same file sees the same vault.
        let b = app(&dir, Some(gate.clone()), clock.clone());
        let st = b.status().unwrap();
        assert!(st.has_vault && st.locked && st.biometric_enabled && st.phone_set);
        assert_eq!(
            b.unlock_with_password("wrong one".into()).unwrap_err(),
            PooyaError::WrongPassword { attempts_left: 9 }
        );
        b.unlock_with_biometrics().unwrap();
        assert!(b.cards().unwrap().is_empty());
        b.lock();

        gate.invalidated.store(true, Ordering::SeqCst);
        assert_eq!(
            b.unlock_with_biometrics().unwrap_err(),
            PooyaError::BiometricInvalidated
        );
        assert!(!b.status().unwrap().biometric_enabled);
        assert_eq!(
            b.unlock_with_biometrics().unwrap_err(),
            PooyaError::BiometricNotEnabled
        );
        b.unlock_with_password("correct horse".into()).unwrap();

        // Idle lock through the foreign clock.
        clock.0.fetch_add(61, Ordering::SeqCst);
        assert!(b.lock_if_idle());
        assert!(!b.is_unlocked());

        // A live vault is reset only with its password; a wrong one is a
        // counted attempt and deletes nothing.
        assert_eq!(
            b.reset_vault(None).unwrap_err(),
            PooyaError::PasswordRequired
        );
        assert_eq!(
            b.reset_vault(Some("wrong one".into())).unwrap_err(),
            PooyaError::WrongPassword { attempts_left: 9 }
        );
        assert!(b.has_vault().unwrap());
        assert_eq!(b.status().unwrap().failed_attempts, 1);
        b.reset_vault(Some("correct horse".into())).unwrap();
        assert!(!b.has_vault().unwrap());
        // With no vault there is nothing to lose.
        b.reset_vault(None).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reset_removes_the_biometric_platform_key() {
        // With the password, on a live vault.
        let dir = tempdir();
        let clock = Arc::new(TestClock(AtomicU64::new(1_800_000_000)));
        let gate = Gate::new();
        let a = app(&dir, Some(gate.clone()), clock.clone());
        a.create_vault("correct horse".into()).unwrap();
        a.enable_biometrics("correct horse".into()).unwrap();
        assert_eq!(gate.removes.load(Ordering::SeqCst), 0);
        a.reset_vault(Some("correct horse".into())).unwrap();
        assert_eq!(gate.removes.load(Ordering::SeqCst), 1);
        // A refused reset leaves the key alone.
        a.create_vault("correct horse".into()).unwrap();
        a.enable_biometrics("correct horse".into()).unwrap();
        a.lock();
        assert_eq!(
            a.reset_vault(None).unwrap_err(),
            PooyaError::PasswordRequired
        );
        assert_eq!(gate.removes.load(Ordering::SeqCst), 1);
        a.reset_vault(Some("correct horse".into())).unwrap();
        assert_eq!(gate.removes.load(Ordering::SeqCst), 2);
        // No finished vault: leftovers and any stale platform key go.
        a.reset_vault(None).unwrap();
        assert_eq!(gate.removes.load(Ordering::SeqCst), 3);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reset_without_password_only_after_a_wipe() {
        let dir = tempdir();
        let clock = Arc::new(TestClock(AtomicU64::new(1_800_000_000)));
        let a = app(&dir, None, clock.clone());
        a.create_vault("correct horse".into()).unwrap();
        a.set_phone("09121234567".into()).unwrap();
        a.lock();
        assert_eq!(
            a.reset_vault(None).unwrap_err(),
            PooyaError::PasswordRequired
        );
        let mut last = None;
        for _ in 0..10 {
            // Past every lockout delay.
            clock.0.fetch_add(2 * 3600, Ordering::SeqCst);
            last = Some(a.unlock_with_password("wrong one".into()).unwrap_err());
        }
        assert_eq!(last, Some(PooyaError::Wiped));
        assert!(a.status().unwrap().wiped);
        a.reset_vault(None).unwrap();
        assert!(!a.has_vault().unwrap());
        // Start over: a new vault on the same path, empty.
        a.create_vault("another horse".into()).unwrap();
        let st = a.status().unwrap();
        assert!(!st.wiped && !st.phone_set);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A valid activation key (a P-256 point), hex.
    pub(crate) fn activation_key() -> String {
        hex::encode(
            pooya_core::protocol::activation::ActivationSecretKey::derive(&[7; 32]).public_key(),
        )
    }

    #[test]
    fn issuers_round_trip_with_a_hex_key() {
        let dir = tempdir();
        let a = app(
            &dir,
            None,
            Arc::new(TestClock(AtomicU64::new(1_800_000_000))),
        );
        a.create_vault("correct horse".into()).unwrap();
        let key = "ab".repeat(32);
        let activation = activation_key();
        let added = a
            .add_issuer(
                "bank".into(),
                "http://127.0.0.1:9/".into(),
                key.clone(),
                activation.clone(),
            )
            .unwrap();
        assert_eq!(added.base_url, "http://127.0.0.1:9");
        let e = a
            .add_issuer(
                "other".into(),
                "http://127.0.0.1:9/".into(),
                "abcd".into(),
                activation.clone(),
            )
            .unwrap_err();
        assert!(matches!(&e, PooyaError::InvalidInput { field, .. } if field == "public_key"));
        let e = a
            .add_issuer(
                "other".into(),
                "http://127.0.0.1:9/".into(),
                key.clone(),
                "04".repeat(65),
            )
            .unwrap_err();
        assert!(matches!(&e, PooyaError::InvalidInput { field, .. } if field == "activation_key"));
        let list = a.issuers().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].public_key_hex, key);
        assert_eq!(
            list[0].activation_key_hex.as_deref(),
            Some(activation.as_str())
        );
        assert_eq!(
            a.enable_biometrics("correct horse".into()).unwrap_err(),
            PooyaError::BiometricUnavailable
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
