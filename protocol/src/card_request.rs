//! Requests about a card that only the device holding its seed can make
//! (docs/protocol.md, "Card requests"): telling the bank the customer
//! removed the card from the phone, and asking the card's state at a sync.
//! Each carries an HMAC-SHA256 (RFC 2104) under the card's device key
//! ([`crate::CardSeed::device_key`]) over the action's label, the card id
//! and the bank time, so it cannot be made without the seed, cannot be
//! turned into the other action, and goes stale.

use serde::{Deserialize, Serialize};

use crate::ProtocolError;
use crate::secret::PinKey;

/// How far a request's time may be from the bank's clock, seconds.
pub const MAX_REQUEST_SKEW_SECS: u64 = 300;

/// What a card request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardAction {
    /// `POST /v1/cards/remove`: the customer removed the card from this
    /// phone; its app PINs must stop working.
    Remove,
    /// `POST /v1/cards/status`: the card's state, at a sync.
    Status,
}

impl CardAction {
    /// The label, the first field of the proof's input.
    pub fn label(self) -> &'static [u8] {
        match self {
            Self::Remove => b"pooya/v1/card-request/remove",
            Self::Status => b"pooya/v1/card-request/status",
        }
    }
}

/// The body of `POST /v1/cards/remove` and `POST /v1/cards/status`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardRequest {
    /// The issuer's card id (from the activation answer).
    pub card_id: String,
    /// The bank time the phone believes it is, Unix seconds.
    pub time: u64,
    /// [`proof`], 64 hex digits.
    pub proof: String,
}

/// The state of a card's app as the bank answers a status request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppStatus {
    /// PINs work.
    Active,
    /// The bank suspended the app for this card for now (PINs refused;
    /// it may be resumed).
    Suspended,
    /// The app's activation is over (a lost phone, the bank's decision,
    /// or removed on the phone): a new activation at an ATM is needed.
    Revoked,
    /// The card's app is active on another device (activated again
    /// since): this phone's seed no longer works.
    OtherDevice,
}

impl AppStatus {
    /// The stable wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
            Self::OtherDevice => "other_device",
        }
    }
}

/// `POST /v1/cards/status` answer body (and `POST /v1/cards/remove`'s,
/// with the state after the removal).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardStatusAnswer {
    /// The card's id.
    pub card_id: String,
    /// Its state.
    pub status: AppStatus,
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    // Labels and card ids are short: the length always fits.
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

/// The proof's input: three fields, each a 4-byte big-endian length and
/// its bytes: the action's label, the card id, the time as 8 bytes
/// big-endian.
pub fn proof_input(action: CardAction, card_id: &str, time: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + card_id.len());
    put(&mut out, action.label());
    put(&mut out, card_id.as_bytes());
    put(&mut out, &time.to_be_bytes());
    out
}

/// HMAC-SHA256 under the device key of [`proof_input`].
pub fn proof(device_key: &PinKey, action: CardAction, card_id: &str, time: u64) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, device_key.expose_secret());
    let tag = ring::hmac::sign(&key, &proof_input(action, card_id, time));
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Whether a request's `time` is within [`MAX_REQUEST_SKEW_SECS`] of the
/// bank's clock `now`.
pub fn fresh(time: u64, now: u64) -> bool {
    time.abs_diff(now) <= MAX_REQUEST_SKEW_SECS
}

/// Decodes a request's proof (64 hex digits).
///
/// # Errors
/// [`ProtocolError::InvalidField`] (`proof`).
pub fn parse_proof(text: &str) -> Result<[u8; 32], ProtocolError> {
    crate::wire::decode_hex_array::<32>("proof", text).map_err(|_| ProtocolError::InvalidField {
        field: "proof",
        reason: "must be 64 hex digits",
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::CardSeed;

    #[test]
    fn proofs_bind_key_action_card_and_time() {
        let seed = CardSeed::from_bytes([7; 32]);
        let k = seed.device_key();
        let p = proof(&k, CardAction::Remove, "crd_1", 100);
        assert_eq!(p, proof(&k, CardAction::Remove, "crd_1", 100));
        assert_ne!(p, proof(&k, CardAction::Status, "crd_1", 100));
        assert_ne!(p, proof(&k, CardAction::Remove, "crd_2", 100));
        assert_ne!(p, proof(&k, CardAction::Remove, "crd_1", 101));
        let other = CardSeed::from_bytes([8; 32]).device_key();
        assert_ne!(p, proof(&other, CardAction::Remove, "crd_1", 100));
        // The device key is none of the PIN keys.
        let keys = seed.derive_keys();
        for pin_key in [&keys.first, &keys.second, &keys.tx] {
            assert_ne!(pin_key.expose_secret(), k.expose_secret());
        }
    }

    #[test]
    fn freshness_and_parsing() {
        assert!(fresh(1000, 1300));
        assert!(fresh(1300, 1000));
        assert!(!fresh(1000, 1301));
        assert!(!fresh(u64::MAX, 0));
        assert!(parse_proof(&"ab".repeat(32)).is_ok());
        for bad in ["", "ab", &"ab".repeat(33), &"zz".repeat(32)] {
            assert_eq!(
                parse_proof(bad).unwrap_err().code(),
                "invalid_field",
                "{bad}"
            );
        }
        assert_eq!(AppStatus::OtherDevice.as_str(), "other_device");
        assert_eq!(
            serde_json::to_string(&AppStatus::OtherDevice).unwrap(),
            "\"other_device\""
        );
    }
}
