//! HOTP (RFC 4226) on `ring::hmac`, and the dynamic truncation shared with
//! TOTP and OCRA.

use ring::hmac;

use crate::ProtocolError;

/// The HMAC hash functions allowed by RFC 4226, RFC 6238 and RFC 6287.
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Enum),
    uniffi(name = "OtpAlgorithm")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// HMAC-SHA1.
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl HashAlgorithm {
    pub(crate) fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }

    pub(crate) fn digest(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha512 => &ring::digest::SHA512,
        }
    }

    /// The name as written in OCRA suites (`SHA1`, `SHA256`, `SHA512`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parses `sha1`/`sha256`/`sha512`, in any case.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidField`] for any other name.
    pub fn parse(name: &str) -> Result<Self, ProtocolError> {
        match name.to_ascii_uppercase().as_str() {
            "SHA1" => Ok(Self::Sha1),
            "SHA256" => Ok(Self::Sha256),
            "SHA512" => Ok(Self::Sha512),
            _ => Err(ProtocolError::InvalidField {
                field: "algorithm",
                reason: "expected sha1, sha256 or sha512",
            }),
        }
    }
}

/// Smallest and largest number of digits a truncated code may have
/// (RFC 4226 §5.3 asks for at least 6; 31 bits of truncation carry at most
/// 10 decimal digits).
pub const MIN_DIGITS: u32 = 4;
/// See [`MIN_DIGITS`].
pub const MAX_DIGITS: u32 = 10;

pub(crate) fn check_digits(digits: u32) -> Result<(), ProtocolError> {
    if (MIN_DIGITS..=MAX_DIGITS).contains(&digits) {
        Ok(())
    } else {
        Err(ProtocolError::InvalidDigits(digits))
    }
}

/// Dynamic truncation (RFC 4226 §5.3): 31 bits taken at the offset given by
/// the low nibble of the last byte, reduced modulo 10^digits and written
/// with leading zeros.
pub(crate) fn truncate(mac: &[u8], digits: u32) -> String {
    let value = truncate_value(mac);
    let modulus = 10u64.pow(digits);
    format!(
        "{:0width$}",
        u64::from(value) % modulus,
        width = digits as usize
    )
}

/// The truncated value reduced to `digits` digits, as a number (for
/// comparisons that should not allocate).
pub(crate) fn truncate_number(mac: &[u8], digits: u32) -> u64 {
    u64::from(truncate_value(mac)) % 10u64.pow(digits)
}

fn truncate_value(mac: &[u8]) -> u32 {
    // HMAC outputs are at least 20 bytes, so offset + 3 <= 18 is in range.
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let bytes = [
        mac.get(offset).copied().unwrap_or(0) & 0x7f,
        mac.get(offset + 1).copied().unwrap_or(0),
        mac.get(offset + 2).copied().unwrap_or(0),
        mac.get(offset + 3).copied().unwrap_or(0),
    ];
    u32::from_be_bytes(bytes)
}

/// HOTP value (RFC 4226 §5.3) of `counter` under `key`.
///
/// # Errors
/// [`ProtocolError::InvalidDigits`] unless `digits` is 4–10.
pub fn hotp(
    key: &[u8],
    counter: u64,
    digits: u32,
    algorithm: HashAlgorithm,
) -> Result<String, ProtocolError> {
    check_digits(digits)?;
    let key = hmac::Key::new(algorithm.hmac(), key);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    Ok(truncate(tag.as_ref(), digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4226 Appendix D: the ten HOTP values for the ASCII secret
    /// "12345678901234567890".
    #[test]
    fn rfc4226_appendix_d() {
        let key = b"12345678901234567890";
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(
                hotp(key, counter as u64, 6, HashAlgorithm::Sha1).unwrap(),
                *want,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn digits_bounds() {
        assert_eq!(
            hotp(b"k", 0, 3, HashAlgorithm::Sha1),
            Err(ProtocolError::InvalidDigits(3))
        );
        assert_eq!(
            hotp(b"k", 0, 11, HashAlgorithm::Sha1),
            Err(ProtocolError::InvalidDigits(11))
        );
        assert_eq!(hotp(b"k", 0, 10, HashAlgorithm::Sha256).unwrap().len(), 10);
    }
}
