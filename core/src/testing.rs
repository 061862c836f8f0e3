//! In-memory host hooks for tests (this crate's and others': the CLI,
//! end-to-end tests and the bindings). Enabled by the `testing` feature.
//!
//! These are real implementations with test-friendly knobs, not stubs: the
//! keystore and the biometric gate really encrypt (AES-256-GCM), so a
//! blob from one instance does not open in another with a different key.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::hooks::{BiometricError, BiometricGate, BootTime, Clock, DeviceKeystore, HostError};
use crate::vault::envelope::fill_random;

fn seal_with(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce).ok()?;
    let mut body = plaintext.to_vec();
    aead.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&body);
    Some(out)
}

fn open_with(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + 16 {
        return None;
    }
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).ok()?;
    let mut buf = Zeroizing::new(sealed[NONCE_LEN..].to_vec());
    let n = aead
        .open_in_place(nonce, Aad::from(aad), &mut buf[..])
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    // The OS generator does not fail on supported platforms; a zero key
    // would only make a test keystore predictable.
    let _ = fill_random(&mut k);
    k
}

/// A [`DeviceKeystore`] holding its key in memory.
pub struct MemoryKeystore {
    key: Zeroizing<[u8; 32]>,
    failing: std::sync::atomic::AtomicBool,
}

impl core::fmt::Debug for MemoryKeystore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MemoryKeystore(<redacted>)")
    }
}

impl Default for MemoryKeystore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryKeystore {
    /// A keystore with a random key (a fresh "device").
    pub fn new() -> Self {
        Self::with_key(random_key())
    }

    /// A keystore with a given key, so two processes can be the same
    /// "device".
    pub fn with_key(key: [u8; 32]) -> Self {
        Self {
            key: Zeroizing::new(key),
            failing: false.into(),
        }
    }

    /// Makes every call fail with a [`HostError`] (a broken platform
    /// keystore), or work again.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), HostError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(HostError::new("keystore unavailable (test)"))
        } else {
            Ok(())
        }
    }
}

impl DeviceKeystore for MemoryKeystore {
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, HostError> {
        self.check()?;
        seal_with(&self.key, b"memory-keystore", plaintext)
            .ok_or_else(|| HostError::new("seal failed"))
    }

    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, HostError> {
        self.check()?;
        open_with(&self.key, b"memory-keystore", sealed)
            .ok_or_else(|| HostError::new("blob not sealed by this device key"))
    }
}

/// A [`BiometricGate`] whose "platform key" lives in memory. It can be
/// told to answer an error to the next prompts, or to behave as if the
/// enrollment changed ([`FakeBiometricGate::invalidate`]).
pub struct FakeBiometricGate {
    key: Mutex<Option<Zeroizing<[u8; 32]>>>,
    next_error: Mutex<Option<BiometricError>>,
    prompts: AtomicU32,
}

impl core::fmt::Debug for FakeBiometricGate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FakeBiometricGate")
            .field("prompts", &self.prompts())
            .finish_non_exhaustive()
    }
}

impl Default for FakeBiometricGate {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeBiometricGate {
    /// A gate with no key enrolled yet.
    pub fn new() -> Self {
        Self {
            key: Mutex::new(None),
            next_error: Mutex::new(None),
            prompts: AtomicU32::new(0),
        }
    }

    /// A gate whose platform key is `key` already (so two processes share
    /// an "enrollment").
    pub fn with_key(key: [u8; 32]) -> Self {
        let g = Self::new();
        if let Ok(mut k) = g.key.lock() {
            *k = Some(Zeroizing::new(key));
        }
        g
    }

    /// The next `open`/`enroll` answers `error` (once).
    pub fn fail_next(&self, error: BiometricError) {
        if let Ok(mut e) = self.next_error.lock() {
            *e = Some(error);
        }
    }

    /// The enrollment changed: the platform key is gone and `open` answers
    /// [`BiometricError::Invalidated`] until the next `enroll`.
    pub fn invalidate(&self) {
        if let Ok(mut k) = self.key.lock() {
            *k = None;
        }
    }

    /// Whether a platform key exists.
    pub fn is_enrolled(&self) -> bool {
        self.key.lock().map(|k| k.is_some()).unwrap_or(false)
    }

    /// How many prompts were shown (`open` calls).
    pub fn prompts(&self) -> u32 {
        self.prompts.load(Ordering::SeqCst)
    }

    fn take_error(&self) -> Result<(), BiometricError> {
        match self.next_error.lock() {
            Ok(mut e) => e.take().map_or(Ok(()), Err),
            Err(_) => Err(BiometricError::Failed("lock poisoned".into())),
        }
    }
}

impl BiometricGate for FakeBiometricGate {
    fn enroll(&self, plaintext: &[u8]) -> Result<Vec<u8>, BiometricError> {
        self.take_error()?;
        let mut guard = self
            .key
            .lock()
            .map_err(|_| BiometricError::Failed("lock poisoned".into()))?;
        let key = guard.get_or_insert_with(|| Zeroizing::new(random_key()));
        seal_with(key, b"fake-biometric", plaintext)
            .ok_or_else(|| BiometricError::Failed("seal failed".into()))
    }

    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, BiometricError> {
        self.prompts.fetch_add(1, Ordering::SeqCst);
        self.take_error()?;
        let guard = self
            .key
            .lock()
            .map_err(|_| BiometricError::Failed("lock poisoned".into()))?;
        let key = guard.as_ref().ok_or(BiometricError::Invalidated)?;
        open_with(key, b"fake-biometric", sealed)
            .ok_or_else(|| BiometricError::Failed("blob not sealed by this key".into()))
    }

    fn remove(&self) -> Result<(), BiometricError> {
        self.invalidate();
        Ok(())
    }
}

/// A [`Clock`] the test sets by hand: a wall clock and a boot clock.
/// [`ManualClock::advance`] moves both (time passes);
/// [`ManualClock::set`] moves only the wall clock (the user sets the
/// phone's clock); [`ManualClock::reboot`] starts a new boot.
#[derive(Debug)]
pub struct ManualClock {
    wall: AtomicU64,
    boot: Mutex<Option<BootTime>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(0)
    }
}

impl ManualClock {
    /// A clock at `now` (Unix seconds), in boot `manual-boot-1`, which
    /// began at the epoch: `now` seconds ago on the boot clock. So two
    /// clocks made at different times (two processes of one test) agree
    /// on how much time passed between them.
    pub fn new(now: u64) -> Self {
        Self {
            wall: AtomicU64::new(now),
            boot: Mutex::new(Some(BootTime {
                boot_id: "manual-boot-1".into(),
                since_boot_ms: now.saturating_mul(1000),
            })),
        }
    }

    /// A clock at `now` on a host with no boot clock
    /// ([`Clock::boot_time`] answers `None`).
    pub fn without_boot_clock(now: u64) -> Self {
        Self {
            wall: AtomicU64::new(now),
            boot: Mutex::new(None),
        }
    }

    /// Sets the wall clock only, as a user changing the phone's time does;
    /// the boot clock does not move.
    pub fn set(&self, now: u64) {
        self.wall.store(now, Ordering::SeqCst);
    }

    /// Time passes: both clocks move forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.wall.fetch_add(secs, Ordering::SeqCst);
        if let Ok(mut b) = self.boot.lock()
            && let Some(b) = b.as_mut()
        {
            b.since_boot_ms = b.since_boot_ms.saturating_add(secs.saturating_mul(1000));
        }
    }

    /// The device restarts: a new boot `boot_id`, `since_boot_secs` after
    /// it (the wall clock is left alone).
    pub fn reboot(&self, boot_id: &str, since_boot_secs: u64) {
        if let Ok(mut b) = self.boot.lock() {
            *b = Some(BootTime {
                boot_id: boot_id.into(),
                since_boot_ms: since_boot_secs.saturating_mul(1000),
            });
        }
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> u64 {
        self.wall.load(Ordering::SeqCst)
    }

    fn boot_time(&self) -> Option<BootTime> {
        self.boot.lock().ok().and_then(|b| b.clone())
    }
}
