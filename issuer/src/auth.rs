//! API roles and bearer-token checks.

use std::collections::HashMap;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use serde::Serialize;

use crate::error::ApiError;
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
pub(crate) struct Tokens(pub(crate) HashMap<[u8; 32], Role>);

impl Tokens {
    /// Checks the request's bearer token against `required`: no or unknown
    /// token → 401, another role's token → 403.
    pub(crate) fn check(
        &self,
        keys: &dyn KeyProvider,
        headers: &HeaderMap,
        required: Role,
    ) -> Result<(), ApiError> {
        let value = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let (scheme, token) = value
            .trim()
            .split_once(' ')
            .ok_or_else(ApiError::unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::unauthorized());
        }
        let token = token.trim();
        if token.is_empty() || token.len() > 256 {
            return Err(ApiError::unauthorized());
        }
        let hash = keys
            .keyed_hash(HashDomain::ApiToken, token.as_bytes())
            .map_err(ApiError::from)?;
        match self.0.get(&hash) {
            None => Err(ApiError::unauthorized()),
            Some(role) if *role == required => Ok(()),
            Some(_) => Err(ApiError::forbidden()),
        }
    }
}
