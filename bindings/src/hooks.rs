//! The host hooks as uniffi foreign traits, and their adapters into the
//! core's [`pooya_core::hooks`] traits.
//!
//! The shells implement these in Kotlin (`android/`) and Swift (`ios/`);
//! the bindings wrap each implementation in an adapter
//! ([`KeystoreAdapter`], [`BiometricAdapter`], [`ClockAdapter`]) that the core takes as its own trait object. The
//! adapters only convert: byte slices to vectors, returned secrets into
//! [`Zeroizing`] buffers, and host errors into the core's error types.
//! The async [`Transport`] has no adapter: `crate::network` awaits it
//! between the core's prepare and finish steps.
//!
//! A host implementation that throws something other than the declared
//! error ([`HostError`] / [`BiometricError`]) is reported as
//! `HostError::Failed` / `BiometricError::Failed` with the exception's
//! description, never as a crash.

use std::sync::Arc;

use pooya_core::hooks as core;
use zeroize::Zeroizing;

/// A failure reported by a host hook (Kotlin `HostException`, Swift
/// `HostError`). The message is for logs and support and must never
/// contain secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum HostError {
    /// The hook could not do its job.
    #[error("{details}")]
    Failed {
        /// What went wrong, in the host's words.
        details: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for HostError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failed {
            details: format!("unexpected host exception: {}", e.reason),
        }
    }
}

impl From<HostError> for core::HostError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Failed { details } => core::HostError::new(details),
        }
    }
}

/// Why a biometric operation did not complete (Kotlin
/// `BiometricException`, Swift `BiometricError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum BiometricError {
    /// The user dismissed the prompt.
    #[error("biometric prompt cancelled")]
    Cancelled,
    /// Too many failed attempts: the platform locked the sensor.
    #[error("biometrics locked out by the platform")]
    Lockout,
    /// The biometric enrollment changed and the platform key is gone
    /// (Android `KeyPermanentlyInvalidatedException`, iOS
    /// `.biometryCurrentSet` item no longer readable).
    #[error("biometric key invalidated by an enrollment change")]
    Invalidated,
    /// No biometric hardware or no enrolled biometrics.
    #[error("biometrics unavailable")]
    Unavailable,
    /// Anything else the platform reported.
    #[error("biometric hook failed: {details}")]
    Failed {
        /// The platform's description, for logs.
        details: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for BiometricError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failed {
            details: format!("unexpected host exception: {}", e.reason),
        }
    }
}

impl From<BiometricError> for core::BiometricError {
    fn from(e: BiometricError) -> Self {
        match e {
            BiometricError::Cancelled => Self::Cancelled,
            BiometricError::Lockout => Self::Lockout,
            BiometricError::Invalidated => Self::Invalidated,
            BiometricError::Unavailable => Self::Unavailable,
            BiometricError::Failed { details } => Self::Failed(details),
        }
    }
}

/// Device binding: a non-exportable platform key that needs no user
/// authentication (Android Keystore AES-GCM key; iOS Secure Enclave or
/// Keychain). See `pooya_core::hooks::DeviceKeystore`.
#[uniffi::export(with_foreign)]
pub trait DeviceKeystore: Send + Sync {
    /// Seals `plaintext` (at most 64 bytes) with the device key and
    /// returns an opaque, authenticated blob.
    ///
    /// # Errors
    /// [`HostError`] when the platform key cannot be created or used.
    fn seal(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, HostError>;

    /// Opens a blob made by [`DeviceKeystore::seal`] on this device; must
    /// fail when the blob was altered.
    ///
    /// # Errors
    /// [`HostError`] when the blob was not made by this device's key or
    /// was altered.
    fn open(&self, sealed: Vec<u8>) -> Result<Vec<u8>, HostError>;
}

/// A user-authentication-bound platform key that wraps the vault's data
/// key in the biometric slot. Calls block while the platform prompt is
/// shown: the library always calls them from the thread the app called
/// it on, so apps call the library off the main thread.
#[uniffi::export(with_foreign)]
pub trait BiometricGate: Send + Sync {
    /// Creates (or replaces) the authentication-bound key and seals
    /// `plaintext` with it.
    ///
    /// # Errors
    /// A [`BiometricError`].
    fn enroll(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, BiometricError>;

    /// Prompts the user and opens a blob made by [`BiometricGate::enroll`].
    ///
    /// # Errors
    /// A [`BiometricError`]; [`BiometricError::Invalidated`] makes the
    /// core drop the biometric slot and ask for the password.
    fn open(&self, sealed: Vec<u8>) -> Result<Vec<u8>, BiometricError>;

    /// Deletes the platform key.
    ///
    /// # Errors
    /// A [`BiometricError`].
    fn remove(&self) -> Result<(), BiometricError>;
}

/// An HTTP answer from the host's network stack.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpResponse {
    /// The status code (an error status is still an answer).
    pub status: u16,
    /// The response body.
    pub body: Vec<u8>,
}

/// The network: POST JSON, return what came back. The core builds every
/// request and checks every answer.
///
/// Async (Kotlin `suspend fun`, Swift `async`): the library awaits it
/// without holding the vault, so the app's main thread is never blocked
/// and other calls go on meanwhile (docs/phone.md, "FFI"). When the
/// caller's coroutine or task is cancelled the library drops the call,
/// which cancels the host's coroutine or task; the host should then stop
/// the request (close the connection).
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// POSTs `body` (JSON, `Content-Type: application/json`) to `url`,
    /// giving up after `timeout_ms` milliseconds.
    ///
    /// # Errors
    /// [`HostError`] only when no HTTP answer arrived (connection refused,
    /// timeout, TLS failure); an HTTP error status is a normal answer.
    async fn post_json(
        &self,
        url: String,
        body: Vec<u8>,
        timeout_ms: u64,
    ) -> Result<HttpResponse, HostError>;
}

/// A reading of the device's boot clock (see
/// `pooya_core::hooks::BootTime`): Android `SystemClock.elapsedRealtime()`
/// with `Settings.Global.BOOT_COUNT`, iOS `ProcessInfo.systemUptime` with
/// `kern.boottime`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BootTime {
    /// Names this boot; differs after every restart (at most 128 bytes).
    pub boot_id: String,
    /// Milliseconds since that boot, counted through sleep.
    pub since_boot_ms: u64,
}

/// The time source.
#[uniffi::export(with_foreign)]
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch (the wall clock the user can set).
    fn now_unix(&self) -> u64;

    /// The boot clock the user cannot set, or `null`/`nil` when the
    /// platform has none; the vault's lockout delays run on it.
    fn boot_time(&self) -> Option<BootTime>;
}

/// A foreign [`DeviceKeystore`] as the core's trait.
pub struct KeystoreAdapter(pub Arc<dyn DeviceKeystore>);

impl core::DeviceKeystore for KeystoreAdapter {
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, core::HostError> {
        self.0.seal(plaintext.to_vec()).map_err(Into::into)
    }

    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, core::HostError> {
        self.0
            .open(sealed.to_vec())
            .map(Zeroizing::new)
            .map_err(Into::into)
    }
}

/// A foreign [`BiometricGate`] as the core's trait.
pub struct BiometricAdapter(pub Arc<dyn BiometricGate>);

impl core::BiometricGate for BiometricAdapter {
    fn enroll(&self, plaintext: &[u8]) -> Result<Vec<u8>, core::BiometricError> {
        self.0.enroll(plaintext.to_vec()).map_err(Into::into)
    }

    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, core::BiometricError> {
        self.0
            .open(sealed.to_vec())
            .map(Zeroizing::new)
            .map_err(Into::into)
    }

    fn remove(&self) -> Result<(), core::BiometricError> {
        self.0.remove().map_err(Into::into)
    }
}

/// The core's synchronous transport as the FFI's `Phone` holds it: it
/// refuses every request, because every call of the FFI that touches the
/// network goes through the async [`Transport`] in steps
/// (`crate::network`), never through the core's blocking hook. Reaching
/// it would be a bug of this crate, reported as `Network`.
pub struct AsyncOnlyTransport;

impl core::Transport for AsyncOnlyTransport {
    fn post_json(&self, _: &str, _: &[u8], _: u64) -> Result<core::HttpResponse, core::HostError> {
        Err(core::HostError::new(
            "pooya-ffi sends requests through the async Transport only",
        ))
    }
}

/// A foreign [`Clock`] as the core's trait.
pub struct ClockAdapter(pub Arc<dyn Clock>);

impl core::Clock for ClockAdapter {
    fn now_unix(&self) -> u64 {
        self.0.now_unix()
    }

    fn boot_time(&self) -> Option<core::BootTime> {
        self.0.boot_time().map(|b| core::BootTime {
            boot_id: b.boot_id,
            since_boot_ms: b.since_boot_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    //! The adapters with Rust implementations of the foreign traits (the
    //! same trait objects a Kotlin or Swift implementation becomes); the
    //! Kotlin tests cover the real foreign side.

    use std::sync::Mutex;

    use super::*;
    use pooya_core::hooks::{
        BiometricGate as CoreGate, Clock as CoreClock, DeviceKeystore as CoreKeystore,
        Transport as CoreTransport,
    };

    /// Seals by XOR with a fixed pad and a tag byte: enough to see that
    /// the adapter passes bytes both ways unchanged.
    struct PadKeystore;

    impl DeviceKeystore for PadKeystore {
        fn seal(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, HostError> {
            let mut out = vec![0xA5];
            out.extend(plaintext.iter().map(|b| b ^ 0x5C));
            Ok(out)
        }
        fn open(&self, sealed: Vec<u8>) -> Result<Vec<u8>, HostError> {
            match sealed.split_first() {
                Some((0xA5, rest)) => Ok(rest.iter().map(|b| b ^ 0x5C).collect()),
                _ => Err(HostError::Failed {
                    details: "not sealed here".into(),
                }),
            }
        }
    }

    #[test]
    fn keystore_adapter_round_trips_and_maps_errors() {
        let ks = KeystoreAdapter(Arc::new(PadKeystore));
        let sealed = ks.seal(b"device secret").unwrap();
        assert_eq!(sealed[0], 0xA5);
        assert_eq!(ks.open(&sealed).unwrap().as_slice(), b"device secret");
        let err = ks.open(b"\x00junk").unwrap_err();
        assert_eq!(err, core::HostError::new("not sealed here"));
    }

    struct ScriptedGate {
        answer: BiometricError,
        removed: Mutex<u32>,
    }

    impl BiometricGate for ScriptedGate {
        fn enroll(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, BiometricError> {
            Ok(plaintext.into_iter().rev().collect())
        }
        fn open(&self, _sealed: Vec<u8>) -> Result<Vec<u8>, BiometricError> {
            Err(self.answer.clone())
        }
        fn remove(&self) -> Result<(), BiometricError> {
            *self.removed.lock().unwrap() += 1;
            Ok(())
        }
    }

    #[test]
    fn biometric_adapter_maps_every_outcome() {
        let cases = [
            (BiometricError::Cancelled, core::BiometricError::Cancelled),
            (BiometricError::Lockout, core::BiometricError::Lockout),
            (
                BiometricError::Invalidated,
                core::BiometricError::Invalidated,
            ),
            (
                BiometricError::Unavailable,
                core::BiometricError::Unavailable,
            ),
            (
                BiometricError::Failed {
                    details: "sensor error 7".into(),
                },
                core::BiometricError::Failed("sensor error 7".into()),
            ),
        ];
        for (ffi, want) in cases {
            let inner = Arc::new(ScriptedGate {
                answer: ffi,
                removed: Mutex::new(0),
            });
            let gate = BiometricAdapter(inner.clone());
            assert_eq!(gate.enroll(b"abc").unwrap(), b"cba");
            assert_eq!(gate.open(b"cba").unwrap_err(), want);
            gate.remove().unwrap();
            assert_eq!(*inner.removed.lock().unwrap(), 1);
        }
    }

    #[test]
    fn the_core_transport_of_the_ffi_refuses_to_block() {
        let e = AsyncOnlyTransport
            .post_json("http://127.0.0.1:1/v1/time", b"{}", 1500)
            .unwrap_err();
        assert!(e.message.contains("async Transport"), "{e}");
    }

    struct FixedClock(u64, Option<BootTime>);

    impl Clock for FixedClock {
        fn now_unix(&self) -> u64 {
            self.0
        }
        fn boot_time(&self) -> Option<BootTime> {
            self.1.clone()
        }
    }

    #[test]
    fn clock_adapter_reads_the_foreign_clock() {
        let boot = BootTime {
            boot_id: "boot-7".into(),
            since_boot_ms: 42_000,
        };
        let c = ClockAdapter(Arc::new(FixedClock(1_700_000_000, Some(boot))));
        assert_eq!(c.now_unix(), 1_700_000_000);
        assert_eq!(
            c.boot_time(),
            Some(core::BootTime {
                boot_id: "boot-7".into(),
                since_boot_ms: 42_000
            })
        );
        assert_eq!(
            ClockAdapter(Arc::new(FixedClock(1, None))).boot_time(),
            None
        );
    }

    #[test]
    fn unexpected_callback_errors_become_failures() {
        let e = HostError::from(uniffi::UnexpectedUniFFICallbackError::new("boom"));
        assert!(matches!(e, HostError::Failed { details } if details.contains("boom")));
        let e = BiometricError::from(uniffi::UnexpectedUniFFICallbackError::new("boom"));
        assert!(matches!(e, BiometricError::Failed { details } if details.contains("boom")));
    }
}
