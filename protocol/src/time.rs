//! Signed time (docs/protocol.md, "Signed time"): the issuer's clock, the
//! phone's fresh nonce and an Ed25519 signature (RFC 8032) under a domain
//! label of its own, so a network in the middle can neither feed the phone
//! a false time nor replay an old answer, and no other signed object (an
//! activation transcript) can be passed off as a time answer.

use serde::{Deserialize, Serialize};

use crate::ProtocolError;

/// The domain label, the first field of every [`time_signing_input`].
pub const TIME_LABEL: &[u8] = b"pooya/v1/time";
/// The shortest nonce, in bytes.
pub const MIN_NONCE_LEN: usize = 16;
/// The longest nonce, in bytes.
pub const MAX_NONCE_LEN: usize = 64;

/// `POST /v1/time` body (the phone's form of `GET /v1/time?nonce=HEX`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRequest {
    /// The nonce, hex ([`MIN_NONCE_LEN`] to [`MAX_NONCE_LEN`] bytes).
    pub nonce: String,
}

/// The answer of `/v1/time`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeAnswer {
    /// The nonce of the request, lowercase hex, as the issuer read it.
    pub nonce: String,
    /// The issuer's clock, Unix seconds.
    pub server_time: u64,
    /// Ed25519 signature (64 bytes, hex) of
    /// [`time_signing_input`]`(nonce, server_time)`.
    pub signature: String,
}

/// Decodes a nonce: even-length hex (either case) of [`MIN_NONCE_LEN`] to
/// [`MAX_NONCE_LEN`] bytes, nothing else.
///
/// # Errors
/// [`ProtocolError::InvalidField`] (`nonce`).
pub fn parse_nonce(text: &str) -> Result<Vec<u8>, ProtocolError> {
    const BAD: ProtocolError = ProtocolError::InvalidField {
        field: "nonce",
        reason: "must be 32 to 128 hex digits",
    };
    let len = text.len();
    if !(2 * MIN_NONCE_LEN..=2 * MAX_NONCE_LEN).contains(&len) {
        return Err(BAD);
    }
    hex::decode(text).map_err(|_| BAD)
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    // Fields are at most a few dozen bytes: the length always fits.
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

/// The bytes the issuer signs: three fields, each a 4-byte big-endian
/// length and its bytes: [`TIME_LABEL`], the nonce's bytes, the server
/// time as 8 bytes big-endian. The activation transcript's first field is
/// another label (`pooya/v2/activation`), so neither can stand for the
/// other.
pub fn time_signing_input(nonce: &[u8], server_time: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + TIME_LABEL.len() + 4 + nonce.len() + 4 + 8);
    put(&mut out, TIME_LABEL);
    put(&mut out, nonce);
    put(&mut out, &server_time.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn nonces() {
        let cases: &[(&str, bool)] = &[
            ("00112233445566778899aabbccddeeff", true),
            ("00112233445566778899AABBCCDDEEFF", true),
            (&"ab".repeat(64), true),
            (&"ab".repeat(65), false),
            ("00112233445566778899aabbccddee", false),
            ("00112233445566778899aabbccddeefg", false),
            ("00112233445566778899aabbccddeef", false),
            ("", false),
            (" 00112233445566778899aabbccddeeff", false),
        ];
        for (text, good) in cases {
            let got = parse_nonce(text);
            assert_eq!(got.is_ok(), *good, "{text:?}");
            if let Err(e) = got {
                assert_eq!(e.code(), "invalid_field");
            }
        }
    }

    #[test]
    fn the_signing_input_is_the_documented_layout() {
        let nonce = [0x11u8; 16];
        let got = time_signing_input(&nonce, 1_700_000_000);
        let mut want = Vec::new();
        want.extend_from_slice(&13u32.to_be_bytes());
        want.extend_from_slice(b"pooya/v1/time");
        want.extend_from_slice(&16u32.to_be_bytes());
        want.extend_from_slice(&nonce);
        want.extend_from_slice(&8u32.to_be_bytes());
        want.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        assert_eq!(got, want);
        assert_ne!(time_signing_input(&nonce, 1_700_000_001), got);
        assert_ne!(time_signing_input(&[0x12; 16], 1_700_000_000), got);
    }
}
