//! `/v1/time`: the issuer's clock, signed (docs/protocol.md, "Signed
//! time").

use pooya_protocol::time::{TimeAnswer, parse_nonce, time_signing_input};

use crate::service::Issuer;
use crate::{Field, ServiceError};

impl Issuer {
    /// `GET /v1/time?nonce=HEX` (and `POST /v1/time {"nonce"}`): the
    /// issuer's time with the caller's nonce, signed by the issuer's
    /// Ed25519 key (RFC 8032) through the key provider, so the key may
    /// live in an HSM. Public: the answer says nothing but the time.
    ///
    /// # Errors
    /// `invalid_nonce`; the provider's failure (`crypto`, `hsm_*`).
    pub fn signed_time(&self, nonce_hex: &str) -> Result<TimeAnswer, ServiceError> {
        let nonce = parse_nonce(nonce_hex).map_err(|e| ServiceError::protocol(Field::Nonce, &e))?;
        let server_time = self.now();
        let signature = self
            .keys
            .sign(&self.signing_key, &time_signing_input(&nonce, server_time))?;
        Ok(TimeAnswer {
            nonce: hex::encode(&nonce),
            server_time,
            signature: hex::encode(signature),
        })
    }
}
