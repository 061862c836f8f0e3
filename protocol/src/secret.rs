//! Card seeds and the per-PIN-kind keys derived from them.
//!
//! A card has one 32-byte seed, agreed at activation. The seed is never an
//! HMAC key itself: each PIN kind uses its own key, derived with
//! HKDF-SHA256 (RFC 5869) and a distinct label, so a code of one kind says
//! nothing about the keys of another.

use core::fmt;

use ring::hkdf;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::ProtocolError;

/// Length of a card seed in bytes.
pub const SEED_LEN: usize = 32;

/// HKDF salt for card key derivation (docs/protocol.md, "Card keys").
pub const CARD_KEY_SALT: &[u8] = b"pooya/v1/card-keys";
/// HKDF info label of the first dynamic PIN key.
pub const LABEL_FIRST: &[u8] = b"pooya/v1/pin/first";
/// HKDF info label of the second dynamic PIN key (cap-bound).
pub const LABEL_SECOND: &[u8] = b"pooya/v1/pin/second";
/// HKDF info label of the transaction-bound second PIN key.
pub const LABEL_TX: &[u8] = b"pooya/v1/pin/transaction";
/// HKDF info label of the card's device key, which proves a request about
/// the card comes from the device holding its seed (removal, status;
/// docs/protocol.md, "Card requests"). Never a PIN key.
pub const LABEL_DEVICE: &[u8] = b"pooya/v1/card/device";

/// A card's 32-byte seed. Wiped on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct CardSeed([u8; SEED_LEN]);

impl CardSeed {
    /// Wraps 32 seed bytes.
    pub fn from_bytes(bytes: [u8; SEED_LEN]) -> Self {
        Self(bytes)
    }

    /// Copies a seed from a slice.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidKeyLength`] unless the slice is 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let arr: [u8; SEED_LEN] = bytes
            .try_into()
            .map_err(|_| ProtocolError::InvalidKeyLength(bytes.len()))?;
        Ok(Self(arr))
    }

    /// The seed bytes, for sealing into storage. Never log them.
    pub fn expose_secret(&self) -> &[u8; SEED_LEN] {
        &self.0
    }

    /// Derives the three per-kind keys (docs/protocol.md, "Card keys").
    pub fn derive_keys(&self) -> CardKeys {
        CardKeys {
            first: PinKey::derive(self, LABEL_FIRST),
            second: PinKey::derive(self, LABEL_SECOND),
            tx: PinKey::derive(self, LABEL_TX),
        }
    }
}

impl CardSeed {
    /// The card's device key (HKDF-SHA256 with [`CARD_KEY_SALT`] and
    /// [`LABEL_DEVICE`], as the PIN keys): the key of
    /// [`crate::card_request::proof`].
    pub fn device_key(&self) -> PinKey {
        PinKey::derive(self, LABEL_DEVICE)
    }
}

impl fmt::Debug for CardSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardSeed(<redacted>)")
    }
}

/// An HMAC key of one PIN kind. Wiped on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct PinKey([u8; 32]);

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl PinKey {
    /// HKDF-SHA256 (RFC 5869 §2.2 extract, §2.3 expand) of the seed with
    /// [`CARD_KEY_SALT`] and the given label as `info`.
    fn derive(seed: &CardSeed, label: &[u8]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, CARD_KEY_SALT).extract(&seed.0);
        let mut out = Zeroizing::new([0u8; 32]);
        let info = [label];
        // Both calls fail only for outputs longer than 255 hash lengths or a
        // length mismatch; a fixed 32-byte output rules out both.
        #[allow(clippy::expect_used)]
        prk.expand(&info, Len32)
            .and_then(|okm| okm.fill(&mut out[..]))
            .expect("HKDF-SHA256 with a 32-byte output cannot fail");
        Self(*out)
    }

    /// Wraps raw key bytes (used by diagnostics and tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key bytes. Never log them.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PinKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinKey(<redacted>)")
    }
}

/// The three keys of a card, one per PIN kind.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CardKeys {
    /// Key of the first dynamic PIN (TOTP).
    pub first: PinKey,
    /// Key of the cap-bound second dynamic PIN (OCRA).
    pub second: PinKey,
    /// Key of the transaction-bound second PIN (OCRA).
    pub tx: PinKey,
}

impl fmt::Debug for CardKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardKeys(<redacted>)")
    }
}

/// A secret byte string of any length (diagnostic keys, OATH secrets).
/// Wiped on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps the bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Decodes hex text into a secret.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidHex`] when the text is not even-length hex.
    pub fn from_hex(text: &str) -> Result<Self, ProtocolError> {
        hex::decode(text.trim())
            .map(Self)
            .map_err(|_| ProtocolError::InvalidHex("key"))
    }

    /// The bytes. Never log them.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted {} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let seed = CardSeed::from_bytes([0xAB; 32]);
        let keys = seed.derive_keys();
        for text in [
            format!("{seed:?}"),
            format!("{keys:?}"),
            format!("{:?}", keys.first),
            format!("{:?}", SecretBytes::new(vec![0xAB; 4])),
        ] {
            assert!(!text.to_lowercase().contains("ab"), "{text}");
            assert!(text.contains("redacted"));
        }
    }

    #[test]
    fn kinds_get_distinct_keys_and_never_the_seed() {
        let seed = CardSeed::from_bytes([7; 32]);
        let k = seed.derive_keys();
        assert_ne!(k.first, k.second);
        assert_ne!(k.second, k.tx);
        assert_ne!(k.first, k.tx);
        for key in [&k.first, &k.second, &k.tx] {
            assert_ne!(key.expose_secret(), seed.expose_secret());
        }
        // Deterministic.
        assert_eq!(seed.derive_keys().second, k.second);
    }

    #[test]
    fn seed_from_slice_checks_length() {
        assert_eq!(
            CardSeed::from_slice(&[1; 31]).unwrap_err(),
            ProtocolError::InvalidKeyLength(31)
        );
        assert!(CardSeed::from_slice(&[1; 32]).is_ok());
    }
}
