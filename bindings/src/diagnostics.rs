//! Calls that are not about cards: the FFI baseline and the device
//! keystore self-check.

use std::sync::Arc;

use pooya_core::hooks::DeviceKeystore as _;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::PooyaError;
use crate::hooks::{DeviceKeystore, KeystoreAdapter};

/// Does nothing. The baseline for measuring the cost of a Kotlin or Swift
/// call into the library (docs/benchmarks.md).
#[uniffi::export]
pub fn noop() {}

/// The length of the probe the keystore self-check seals: the size of the
/// device-binding secret the vault will ask the keystore to seal.
const PROBE_LEN: usize = 32;

/// Checks that a [`DeviceKeystore`] implementation behaves as the vault
/// needs before the app creates a vault with it: it seals a random 32-byte
/// value, which must not appear in the sealed blob; opens it, which must
/// give the same bytes back (compared in constant time); and opens the blob
/// with one bit flipped, which must fail (an AEAD such as AES-GCM does;
/// a bare cipher does not). Apps call it once on first start to show "this
/// device's secure storage does not work" rather than fail during setup.
///
/// # Errors
/// [`PooyaError::HostFailure`] when sealing or opening the genuine blob
/// throws; [`PooyaError::KeystoreUnusable`] when the keystore answered but
/// wrongly; [`PooyaError::Internal`] when no random bytes are available.
#[uniffi::export]
pub fn check_device_keystore(keystore: Arc<dyn DeviceKeystore>) -> Result<(), PooyaError> {
    let keystore = KeystoreAdapter(keystore);
    let mut probe = Zeroizing::new([0u8; PROBE_LEN]);
    SystemRandom::new()
        .fill(probe.as_mut())
        .map_err(|_| PooyaError::Internal {
            details: "no system randomness".to_owned(),
        })?;

    let sealed = keystore.seal(probe.as_ref())?;
    if sealed
        .windows(PROBE_LEN)
        .any(|w| bool::from(w.ct_eq(probe.as_ref())))
    {
        return Err(unusable("the sealed blob contains the plaintext"));
    }
    let opened = keystore.open(&sealed)?;
    if !bool::from(opened.as_slice().ct_eq(probe.as_ref())) {
        return Err(unusable("opening did not give back what was sealed"));
    }

    let mut tampered = sealed;
    let Some(last) = tampered.last_mut() else {
        return Err(unusable("the sealed blob is empty"));
    };
    *last ^= 0x01;
    if keystore.open(&tampered).is_ok() {
        return Err(unusable(
            "an altered blob opened: the seal is not authenticated",
        ));
    }
    Ok(())
}

fn unusable(reason: &str) -> PooyaError {
    PooyaError::KeystoreUnusable {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

    use super::*;
    use crate::HostError;

    /// A software stand-in for the Android Keystore key: AES-256-GCM with a
    /// random nonce prepended, as the Kotlin shell does.
    struct GcmKeystore(LessSafeKey);

    impl GcmKeystore {
        fn new() -> Self {
            let mut k = [0u8; 32];
            SystemRandom::new().fill(&mut k).unwrap();
            Self(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k).unwrap()))
        }
    }

    fn fail(m: &str) -> HostError {
        HostError::Failed { details: m.into() }
    }

    impl DeviceKeystore for GcmKeystore {
        fn seal(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, HostError> {
            let mut nonce = [0u8; NONCE_LEN];
            SystemRandom::new().fill(&mut nonce).unwrap();
            let mut buf = plaintext;
            self.0
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    &mut buf,
                )
                .map_err(|_| fail("seal"))?;
            Ok([nonce.as_slice(), &buf].concat())
        }
        fn open(&self, sealed: Vec<u8>) -> Result<Vec<u8>, HostError> {
            if sealed.len() < NONCE_LEN {
                return Err(fail("short"));
            }
            let (n, c) = sealed.split_at(NONCE_LEN);
            let nonce = Nonce::try_assume_unique_for_key(n).map_err(|_| fail("nonce"))?;
            let mut buf = c.to_vec();
            let p = self
                .0
                .open_in_place(nonce, Aad::empty(), &mut buf)
                .map_err(|_| fail("tag mismatch"))?;
            Ok(p.to_vec())
        }
    }

    /// Each kind of broken keystore the check must catch.
    enum Broken {
        Identity,
        XorNoTag,
        WrongBytes,
        Empty,
        Throws,
    }

    struct BrokenKeystore(Broken, Mutex<u32>);

    impl DeviceKeystore for BrokenKeystore {
        fn seal(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, HostError> {
            *self.1.lock().unwrap() += 1;
            match self.0 {
                Broken::Identity => Ok(plaintext),
                Broken::XorNoTag | Broken::WrongBytes => {
                    Ok(plaintext.iter().map(|b| b ^ 0x77).collect())
                }
                Broken::Empty => Ok(Vec::new()),
                Broken::Throws => Err(fail("KeyStoreException: key unavailable")),
            }
        }
        fn open(&self, sealed: Vec<u8>) -> Result<Vec<u8>, HostError> {
            match self.0 {
                Broken::WrongBytes => Ok(vec![0; PROBE_LEN]),
                _ => Ok(sealed.iter().map(|b| b ^ 0x77).collect()),
            }
        }
    }

    #[test]
    fn a_real_aead_keystore_passes() {
        check_device_keystore(Arc::new(GcmKeystore::new())).unwrap();
    }

    #[test]
    fn broken_keystores_are_refused_with_a_reason() {
        let cases = [
            (
                Broken::Identity,
                "keystore_unusable",
                "contains the plaintext",
            ),
            (Broken::XorNoTag, "keystore_unusable", "not authenticated"),
            (Broken::WrongBytes, "keystore_unusable", "did not give back"),
            (Broken::Empty, "keystore_unusable", "did not give back"),
            (Broken::Throws, "host_failure", "key unavailable"),
        ];
        for (kind, code, text) in cases {
            let ks = Arc::new(BrokenKeystore(kind, Mutex::new(0)));
            let err = check_device_keystore(ks.clone()).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
            assert!(err.to_string().contains(text), "{err}");
            assert_eq!(*ks.1.lock().unwrap(), 1, "seals exactly once");
        }
    }

    #[test]
    fn noop_is_callable() {
        noop();
    }
}
