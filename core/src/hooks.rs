//! Host hooks: what the platform supplies to the core. Each is a trait the
//! Android and iOS shells implement (through `pooya-ffi`) and the desktop
//! CLI implements in Rust. The core never reaches the keystore, the
//! biometric sensor, the network or the clock by itself.

use zeroize::Zeroizing;

/// A hook failed. The message comes from the host and is for logs and
/// support; it must never contain secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host hook failed: {message}")]
pub struct HostError {
    /// What the host reported.
    pub message: String,
    /// Set only by [`crate::KeyFileKeystore`] for a key file that exists
    /// but is empty or truncated; becomes
    /// [`CoreError::DeviceKeyDamaged`](crate::CoreError::DeviceKeyDamaged).
    pub(crate) damaged_key_file: Option<String>,
}

impl HostError {
    /// A host error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            damaged_key_file: None,
        }
    }

    /// The key file at `path` exists but does not hold a whole key.
    pub(crate) fn damaged_key_file(path: &std::path::Path, len: usize) -> Self {
        Self {
            message: format!("device key file is {len} bytes, not 32"),
            damaged_key_file: Some(path.display().to_string()),
        }
    }
}

/// Device binding: a non-exportable platform key (Android Keystore,
/// iOS Secure Enclave / Keychain) that seals small secrets, so a copied
/// vault file cannot be attacked away from the device. Needs no user
/// authentication.
pub trait DeviceKeystore: Send + Sync {
    /// Seals `plaintext` (at most 64 bytes) with the device key and returns
    /// an opaque blob.
    ///
    /// # Errors
    /// [`HostError`] when the platform key cannot be created or used.
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, HostError>;

    /// Opens a blob made by [`DeviceKeystore::seal`] on this device.
    ///
    /// # Errors
    /// [`HostError`] when the blob was not made by this device's key.
    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, HostError>;
}

/// Why a biometric operation did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BiometricError {
    /// The user dismissed the prompt.
    #[error("biometric prompt cancelled")]
    Cancelled,
    /// Too many failed attempts: the platform locked the sensor.
    #[error("biometrics locked out by the platform")]
    Lockout,
    /// The biometric enrollment changed and the platform key is gone
    /// (Android `KeyPermanentlyInvalidatedException`,
    /// iOS `.biometryCurrentSet`).
    #[error("biometric key invalidated by an enrollment change")]
    Invalidated,
    /// No biometric hardware or no enrolled biometrics.
    #[error("biometrics unavailable")]
    Unavailable,
    /// Anything else the platform reported.
    #[error("biometric hook failed: {0}")]
    Failed(String),
}

/// A user-authentication-bound platform key (a fingerprint or face unlocks
/// it). The core uses it to wrap the vault's data key in the biometric
/// slot. Calls may block while the platform shows its prompt; the core
/// calls them off the UI thread.
pub trait BiometricGate: Send + Sync {
    /// Creates (or replaces) the authentication-bound key and seals
    /// `plaintext` with it.
    ///
    /// # Errors
    /// A [`BiometricError`].
    fn enroll(&self, plaintext: &[u8]) -> Result<Vec<u8>, BiometricError>;

    /// Prompts the user and opens a blob made by
    /// [`BiometricGate::enroll`].
    ///
    /// # Errors
    /// A [`BiometricError`]; [`BiometricError::Invalidated`] makes the core
    /// drop the biometric slot.
    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, BiometricError>;

    /// Deletes the platform key (the user turned biometrics off, or it was
    /// invalidated).
    ///
    /// # Errors
    /// A [`BiometricError`].
    fn remove(&self) -> Result<(), BiometricError>;
}

/// A reading of the device's boot clock: time since the device started,
/// which the user cannot set (Android `SystemClock.elapsedRealtime()` and
/// Linux `CLOCK_BOOTTIME`, both counting through sleep; iOS
/// `ProcessInfo.systemUptime`, which stops while asleep, so a delay only
/// lasts longer there). The boot id must not change when the date is set
/// (iOS: `kern.bootsessionuuid`, not `kern.boottime`). Readings are comparable only within one boot, so
/// each carries the boot's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootTime {
    /// Names this boot of the device; differs after every restart (Linux
    /// `/proc/sys/kernel/random/boot_id`, Android
    /// `Settings.Global.BOOT_COUNT`, iOS `kern.boottime`). At most
    /// [`BootTime::MAX_ID_LEN`] bytes.
    pub boot_id: String,
    /// Milliseconds since that boot.
    pub since_boot_ms: u64,
}

impl BootTime {
    /// Longest boot id the core stores; longer ones count as no reading.
    pub const MAX_ID_LEN: usize = 128;
}

/// The time source. Injected so tests control it and so the core never
/// reads the system clock by itself.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch (the wall clock, which the user can
    /// set).
    fn now_unix(&self) -> u64;

    /// The boot clock, which the user cannot set, or `None` when the host
    /// has none. The vault measures its wrong-password delays on it
    /// (docs/security.md, "Lockout clock"); later time checks may too.
    fn boot_time(&self) -> Option<BootTime>;
}

/// The system clock: the wall clock, and on Linux the boot clock from
/// `/proc/uptime` (`CLOCK_BOOTTIME`, counted through suspend) and
/// `/proc/sys/kernel/random/boot_id`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// Parses the first field of `/proc/uptime` (`"12345.67 ..."`, seconds
    /// with two decimals) as milliseconds.
    fn parse_uptime_ms(text: &str) -> Option<u64> {
        let first = text.split_ascii_whitespace().next()?;
        let (secs, frac) = first.split_once('.').unwrap_or((first, "0"));
        if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let secs: u64 = secs.parse().ok()?;
        let mut ms = 0u64;
        for (i, d) in frac.bytes().take(3).enumerate() {
            ms += u64::from(d - b'0') * [100, 10, 1][i];
        }
        secs.checked_mul(1000)?.checked_add(ms)
    }

    fn linux_boot_time() -> Option<BootTime> {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let id = id.trim();
        if id.is_empty() || id.len() > BootTime::MAX_ID_LEN {
            return None;
        }
        let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
        Some(BootTime {
            boot_id: id.to_owned(),
            since_boot_ms: Self::parse_uptime_ms(&uptime)?,
        })
    }
}

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn boot_time(&self) -> Option<BootTime> {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            Self::linux_boot_time()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_parsing() {
        let cases: &[(&str, Option<u64>)] = &[
            ("12345.67 4567.89\n", Some(12_345_670)),
            ("0.01 0.00", Some(10)),
            ("7 1", Some(7000)),
            ("1.2345 0", Some(1234)),
            ("", None),
            ("abc 1", None),
            ("-1.00 1", None),
            ("1. 1", None),
            ("99999999999999999999.00 0", None),
        ];
        for (text, want) in cases {
            assert_eq!(SystemClock::parse_uptime_ms(text), *want, "{text:?}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_linux_boot_clock_reads_and_moves_forward() {
        let a = SystemClock.boot_time().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let b = SystemClock.boot_time().unwrap();
        assert_eq!(a.boot_id, b.boot_id);
        assert!(b.since_boot_ms >= a.since_boot_ms);
        assert_eq!(a.boot_id.len(), 36, "{}", a.boot_id);
    }
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// The network: the host POSTs JSON and returns what came back. The core
/// builds every request and checks every answer.
pub trait Transport: Send + Sync {
    /// POSTs `body` (JSON, `Content-Type: application/json`) to `url`,
    /// giving up after `timeout_ms` milliseconds.
    ///
    /// # Errors
    /// [`HostError`] only when no HTTP answer arrived (connection refused,
    /// timeout, TLS failure); an HTTP error status is an `Ok` answer.
    fn post_json(&self, url: &str, body: &[u8], timeout_ms: u64)
    -> Result<HttpResponse, HostError>;
}
