//! Bearer tokens: what Harim keeps of the tokens it accepts (a keyed hash,
//! HMAC-SHA256 under a key drawn at start, RFC 2104) and of those it
//! sends (the token itself, wiped on drop).

use std::fmt;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::HarimError;

/// Longest token accepted, as the issuer does.
const MAX_TOKEN_LEN: usize = 256;

/// The key of the token hashes, drawn from the OS CSPRNG once per
/// process and kept across reloads.
pub(crate) struct TokenKey(hmac::Key);

impl TokenKey {
    /// A fresh key.
    ///
    /// # Errors
    /// `server` if the OS CSPRNG fails.
    pub(crate) fn new() -> Result<Self, HarimError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut bytes[..])
            .map_err(|_| HarimError::Server("the OS random generator failed".into()))?;
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes[..])))
    }

    /// The keyed hash of a token.
    pub(crate) fn digest(&self, token: &str) -> TokenDigest {
        let tag = hmac::sign(&self.0, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        TokenDigest(out)
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// The keyed hash of a token; compared in constant time.
#[derive(Clone, Copy)]
pub(crate) struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// Constant-time equality.
    pub(crate) fn matches(&self, other: &TokenDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl PartialEq for TokenDigest {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other)
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(<redacted>)")
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (RFC 6750 §2.1),
/// parsed as the issuer does: the scheme case-insensitive, spaces
/// trimmed, 1–256 characters. `None`: no usable token.
pub(crate) fn bearer(value: Option<&str>) -> Option<&str> {
    let (scheme, token) = value?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty() && token.len() <= MAX_TOKEN_LEN).then_some(token)
}

/// A token Harim sends to an issuer; wiped on drop, never printed.
pub(crate) struct OutgoingToken(Zeroizing<String>);

impl OutgoingToken {
    pub(crate) fn new(token: Zeroizing<String>) -> Self {
        Self(token)
    }

    /// The `Authorization` header's value, marked sensitive (HPACK never
    /// indexes it; hyper's `Debug` hides it).
    pub(crate) fn header(&self) -> Option<axum::http::HeaderValue> {
        let text = Zeroizing::new(format!("Bearer {}", self.0.as_str()));
        let mut v = axum::http::HeaderValue::from_str(&text).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

impl fmt::Debug for OutgoingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutgoingToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bearer_headers_as_the_issuer_reads_them() {
        for (value, want) in [
            (Some("Bearer abc"), Some("abc")),
            (Some("bearer  abc "), Some("abc")),
            (Some(" BEARER abc"), Some("abc")),
            (Some("Basic abc"), None),
            (Some("Bearer"), None),
            (Some("Bearer "), None),
            (Some(""), None),
            (None, None),
        ] {
            assert_eq!(bearer(value), want, "{value:?}");
        }
        let long = format!("Bearer {}", "a".repeat(257));
        assert_eq!(bearer(Some(&long)), None);
    }

    #[test]
    fn digests_are_keyed_and_redacted() {
        let k1 = TokenKey::new().unwrap();
        let k2 = TokenKey::new().unwrap();
        assert!(k1.digest("tok").matches(&k1.digest("tok")));
        assert!(!k1.digest("tok").matches(&k1.digest("tok2")));
        assert!(!k1.digest("tok").matches(&k2.digest("tok")));
        assert_eq!(format!("{:?}", k1.digest("tok")), "TokenDigest(<redacted>)");
        let out = OutgoingToken::new(Zeroizing::new("secret-token".into()));
        assert!(!format!("{out:?}").contains("secret"));
        assert!(out.header().unwrap().is_sensitive());
    }
}
