//! API roles and bearer-token checks (RFC 6750 §2.1).

use std::collections::HashMap;

use serde::Serialize;

use crate::error::ServiceError;
use crate::keys::{HashDomain, KeyProvider};

/// Who may call what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// ATMs: enrollment.
    Atm,
    /// Payment gateways: verification (and Harim requests).
    Gateway,
    /// The SMS centre: inbound messages.
    Sms,
    /// The operations team: outbox, metrics.
    Ops,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Atm, Role::Gateway, Role::Sms, Role::Ops];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Atm => "atm",
            Self::Gateway => "gateway",
            Self::Sms => "sms",
            Self::Ops => "ops",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The token table, keyed by the token's keyed hash.
#[derive(Debug, Default)]
pub struct Tokens(HashMap<[u8; 32], Role>);

impl Tokens {
    /// The table of these tokens.
    pub fn new(tokens: impl IntoIterator<Item = ([u8; 32], Role)>) -> Self {
        Self(tokens.into_iter().collect())
    }

    /// Checks a request's `Authorization` header value against
    /// `required`: no or unknown token → [`ServiceError::Unauthorized`],
    /// another role's token → [`ServiceError::Forbidden`].
    ///
    /// # Errors
    /// As above, or when the keyed hash cannot be computed.
    pub fn check(
        &self,
        keys: &dyn KeyProvider,
        authorization: Option<&str>,
        required: Role,
    ) -> Result<(), ServiceError> {
        let value = authorization.ok_or(ServiceError::Unauthorized)?;
        let (scheme, token) = value
            .trim()
            .split_once(' ')
            .ok_or(ServiceError::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ServiceError::Unauthorized);
        }
        let token = token.trim();
        if token.is_empty() || token.len() > 256 {
            return Err(ServiceError::Unauthorized);
        }
        let hash = keys.keyed_hash(HashDomain::ApiToken, token.as_bytes())?;
        match self.0.get(&hash) {
            None => Err(ServiceError::Unauthorized),
            Some(role) if *role == required => Ok(()),
            Some(_) => Err(ServiceError::Forbidden),
        }
    }
}
