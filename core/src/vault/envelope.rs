//! Versioned AEAD envelopes for sealed fields and wrapped keys.
//!
//! Envelope v1 (docs/security.md, "Envelope format"):
//!
//! ```text
//! version (1 byte, 0x01) | algorithm (1 byte, 0x01 = AES-256-GCM) | nonce (12 bytes) | ciphertext | tag (16 bytes)
//! ```
//!
//! The associated data names where the ciphertext belongs, so a ciphertext
//! copied to another table, row or field (or relabelled with another
//! format version) fails to open:
//!
//! ```text
//! "pooya/vault" | version | len(table) | table | row id (i64, big-endian) | len(field) | field
//! ```
//!
//! Nonces are 96 random bits from the OS (NIST SP 800-38D §8.2.2); a vault
//! seals far fewer than 2^32 messages under one key.

use core::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::CoreError;

/// The current envelope format version.
pub const ENVELOPE_V1: u8 = 1;
/// Algorithm byte of AES-256-GCM.
pub const ALG_AES_256_GCM: u8 = 1;
/// Bytes an envelope adds to its plaintext.
pub const OVERHEAD: usize = 2 + NONCE_LEN + 16;
/// Length of every key in the vault.
pub const KEY_LEN: usize = 32;

/// A 256-bit symmetric key (the vault's data key, or a key-encryption
/// key). Wiped on drop; `Debug` never shows it.
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl SecretKey {
    /// A fresh random key from the OS generator.
    ///
    /// # Errors
    /// [`CoreError::Storage`] if the OS generator fails.
    pub fn random() -> Result<Self, CoreError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut k[..])?;
        Ok(Self(k))
    }

    /// Wraps key bytes.
    pub fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        Self(bytes)
    }

    /// Copies a key from a slice.
    ///
    /// # Errors
    /// `None` unless the slice is 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return None;
        }
        k.copy_from_slice(bytes);
        Some(Self(k))
    }

    /// The key bytes. Never log them.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0[..].ct_eq(&other.0[..]).into()
    }

    fn aead_key(&self) -> Result<LessSafeKey, CoreError> {
        UnboundKey::new(&AES_256_GCM, &self.0[..])
            .map(LessSafeKey::new)
            .map_err(|_| CoreError::Storage("AEAD key setup failed".into()))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Fills `out` from the OS generator.
///
/// # Errors
/// [`CoreError::Storage`] if the generator fails.
pub fn fill_random(out: &mut [u8]) -> Result<(), CoreError> {
    SystemRandom::new()
        .fill(out)
        .map_err(|_| CoreError::Storage("random generator failed".into()))
}

/// Where a sealed value belongs: table, row id and field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    /// The table.
    pub table: &'a str,
    /// The row's id.
    pub row: i64,
    /// The column.
    pub field: &'a str,
}

impl<'a> Place<'a> {
    /// A place.
    pub fn new(table: &'a str, row: i64, field: &'a str) -> Self {
        Self { table, row, field }
    }

    fn aad(&self, version: u8) -> Vec<u8> {
        let mut a = Vec::with_capacity(32 + self.table.len() + self.field.len());
        a.extend_from_slice(b"pooya/vault");
        a.push(version);
        // Table and field names are short constants of this crate.
        a.push(u8::try_from(self.table.len()).unwrap_or(u8::MAX));
        a.extend_from_slice(self.table.as_bytes());
        a.extend_from_slice(&self.row.to_be_bytes());
        a.push(u8::try_from(self.field.len()).unwrap_or(u8::MAX));
        a.extend_from_slice(self.field.as_bytes());
        a
    }
}

/// Seals `plaintext` for `place` under `key` into a v1 envelope.
///
/// # Errors
/// [`CoreError::Storage`] if the random generator or AEAD setup fails.
pub fn seal(key: &SecretKey, place: Place<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CoreError> {
    let aead = key.aead_key()?;
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
    out.push(ENVELOPE_V1);
    out.push(ALG_AES_256_GCM);
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    aead.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(place.aad(ENVELOPE_V1)),
        &mut body,
    )
    .map_err(|_| CoreError::Storage("AEAD seal failed".into()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Why an envelope did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Too short, unknown version or unknown algorithm.
    Malformed,
    /// The tag did not verify: wrong key, wrong place or altered bytes.
    Authentication,
}

/// Opens a v1 envelope sealed for `place` under `key`.
///
/// # Errors
/// [`OpenError::Malformed`] for a truncated envelope or an unknown version
/// or algorithm; [`OpenError::Authentication`] when the tag fails.
pub fn open(
    key: &SecretKey,
    place: Place<'_>,
    envelope: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if envelope.len() < OVERHEAD {
        return Err(OpenError::Malformed);
    }
    let (header, rest) = envelope.split_at(2);
    if header != [ENVELOPE_V1, ALG_AES_256_GCM] {
        return Err(OpenError::Malformed);
    }
    let (nonce, body) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Malformed)?;
    let aead = key.aead_key().map_err(|_| OpenError::Malformed)?;
    let mut buf = Zeroizing::new(body.to_vec());
    let len = aead
        .open_in_place(nonce, Aad::from(place.aad(ENVELOPE_V1)), &mut buf[..])
        .map_err(|_| OpenError::Authentication)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Opens a field of the vault; any failure means the file was damaged or
/// altered.
///
/// # Errors
/// [`CoreError::VaultCorrupted`].
pub fn open_field(
    key: &SecretKey,
    place: Place<'_>,
    envelope: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CoreError> {
    open(key, place, envelope).map_err(|_| CoreError::VaultCorrupted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_bytes(Zeroizing::new([b; 32]))
    }

    #[test]
    fn round_trip_and_layout() {
        let k = key(1);
        let p = Place::new("cards", 7, "seed");
        let env = seal(&k, p, b"secret seed").unwrap();
        assert_eq!(env.len(), 11 + OVERHEAD);
        assert_eq!(&env[..2], &[ENVELOPE_V1, ALG_AES_256_GCM]);
        assert_eq!(&open(&k, p, &env).unwrap()[..], b"secret seed");
        // Fresh nonce every time.
        assert_ne!(seal(&k, p, b"secret seed").unwrap(), env);
    }

    #[test]
    fn place_and_key_are_bound() {
        let k = key(1);
        let p = Place::new("cards", 7, "seed");
        let env = seal(&k, p, b"x").unwrap();
        for other in [
            Place::new("cards", 8, "seed"),
            Place::new("cards", 7, "label"),
            Place::new("issuers", 7, "seed"),
        ] {
            assert_eq!(open(&k, other, &env), Err(OpenError::Authentication));
        }
        assert_eq!(open(&key(2), p, &env), Err(OpenError::Authentication));
        // Relabelling the version byte is refused (unknown version) and
        // could not verify anyway since the AAD carries the version.
        let mut v2 = env.clone();
        v2[0] = 2;
        assert_eq!(open(&k, p, &v2), Err(OpenError::Malformed));
    }

    #[test]
    fn debug_is_redacted() {
        let text = format!("{:?}", key(0xAB));
        assert!(!text.to_lowercase().contains("ab,"));
        assert!(text.contains("redacted"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_open_or_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let r = open(&key(3), Place::new("t", 1, "f"), &bytes);
            prop_assert!(r.is_err());
        }

        #[test]
        fn any_flip_is_detected(plain in proptest::collection::vec(any::<u8>(), 0..64), pos in any::<usize>(), bit in 0u8..8) {
            let k = key(4);
            let p = Place::new("cards", 1, "info");
            let mut env = seal(&k, p, &plain).unwrap();
            let i = pos % env.len();
            env[i] ^= 1 << bit;
            prop_assert!(open(&k, p, &env).is_err());
        }
    }
}
