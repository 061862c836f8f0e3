//! TOTP (RFC 6238) through the `totp-rs` crate.

use totp_rs::{Algorithm, Builder};
use zeroize::Zeroizing;

use crate::{HashAlgorithm, ProtocolError};

/// Digits a TOTP code may have here: `totp-rs` enforces RFC 4226's 6–8.
pub const TOTP_DIGITS: core::ops::RangeInclusive<u32> = 6..=8;

/// The TOTP time step counter (RFC 6238 §4.2: `T = floor((time - T0) / X)`,
/// with `T0 = 0`).
///
/// # Errors
/// [`ProtocolError::InvalidStep`] when `step` is zero.
pub fn time_step(unix_time: u64, step: u64) -> Result<u64, ProtocolError> {
    unix_time
        .checked_div(step)
        .ok_or(ProtocolError::InvalidStep(step))
}

/// The TOTP value (RFC 6238 §4) at `unix_time` with a step of `step`
/// seconds.
///
/// # Errors
/// [`ProtocolError::InvalidDigits`] unless `digits` is 6–8;
/// [`ProtocolError::InvalidKeyLength`] for keys shorter than 16 bytes
/// (RFC 4226 §4 R6); [`ProtocolError::InvalidStep`] for a zero step.
pub fn totp(
    key: &[u8],
    unix_time: u64,
    step: u64,
    digits: u32,
    algorithm: HashAlgorithm,
) -> Result<String, ProtocolError> {
    if !TOTP_DIGITS.contains(&digits) {
        return Err(ProtocolError::InvalidDigits(digits));
    }
    if step == 0 {
        return Err(ProtocolError::InvalidStep(step));
    }
    if key.len() < 16 {
        return Err(ProtocolError::InvalidKeyLength(key.len()));
    }
    let algorithm = match algorithm {
        HashAlgorithm::Sha1 => Algorithm::SHA1,
        HashAlgorithm::Sha256 => Algorithm::SHA256,
        HashAlgorithm::Sha512 => Algorithm::SHA512,
    };
    let digits_u8 = u8::try_from(digits).map_err(|_| ProtocolError::InvalidDigits(digits))?;
    let totp = Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits_u8)
        .with_step_duration(step)
        .with_skew(0)
        .with_secret(key)
        .build()
        .map_err(|_| ProtocolError::InvalidField {
            field: "totp",
            reason: "parameters refused by RFC 6238 checks",
        })?;
    let code = Zeroizing::new(totp.generate(unix_time).to_string());
    Ok(code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED20: &[u8] = b"12345678901234567890";
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// RFC 6238 Appendix B: all 18 vectors, 8 digits, 30 s step, with the
    /// 20-, 32- and 64-byte seeds for SHA1, SHA256 and SHA512.
    #[test]
    fn rfc6238_appendix_b() {
        let table: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (time, sha1, sha256, sha512) in table {
            assert_eq!(
                totp(SEED20, time, 30, 8, HashAlgorithm::Sha1).unwrap(),
                sha1
            );
            assert_eq!(
                totp(SEED32, time, 30, 8, HashAlgorithm::Sha256).unwrap(),
                sha256
            );
            assert_eq!(
                totp(SEED64, time, 30, 8, HashAlgorithm::Sha512).unwrap(),
                sha512
            );
        }
    }

    #[test]
    fn bounds() {
        assert_eq!(
            totp(SEED20, 0, 30, 9, HashAlgorithm::Sha1),
            Err(ProtocolError::InvalidDigits(9))
        );
        assert_eq!(
            totp(SEED20, 0, 0, 6, HashAlgorithm::Sha1),
            Err(ProtocolError::InvalidStep(0))
        );
        assert_eq!(
            totp(b"short", 0, 30, 6, HashAlgorithm::Sha1),
            Err(ProtocolError::InvalidKeyLength(5))
        );
        assert_eq!(time_step(119, 60).unwrap(), 1);
    }
}
