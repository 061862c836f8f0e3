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

/// The time source. Injected so tests control it and so the core never
/// reads the system clock by itself.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now_unix(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
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
