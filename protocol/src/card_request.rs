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
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Enum),
    uniffi(name = "CardAppStatus")
)]
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
/// with the state after the removal), signed by the issuer so a network
/// in the middle can neither tell a phone its card was revoked or moved
/// nor replay an answer to another request (docs/protocol.md, "Signed
/// card answers").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardStatusAnswer {
    /// The card's id.
    pub card_id: String,
    /// Its state.
    pub status: AppStatus,
    /// Ed25519 signature (RFC 8032, 64 bytes, hex) by the issuer's signing
    /// key of [`answer_signing_input`] over this answer and the request it
    /// answers.
    pub signature: String,
}

/// The domain label of a signed card answer, the first field of every
/// [`answer_signing_input`]. The signed time's label (`pooya/v1/time`)
/// and the activation transcript's (`pooya/v2/activation`) differ, so no
/// signature over one can verify as another.
pub const ANSWER_LABEL: &[u8] = b"pooya/v1/card-answer";

/// The bytes the issuer signs for an answer to a card request: six fields,
/// each a 4-byte big-endian length and its bytes: [`ANSWER_LABEL`], the
/// request's action label ([`CardAction::label`]), the card id, the
/// status's wire name ([`AppStatus::as_str`]), the request's time as 8
/// bytes big-endian and the request's proof (32 bytes). The request's
/// time and proof make the answer good for that one request only: an old
/// answer does not verify for a new request, nor a status answer for a
/// removal.
pub fn answer_signing_input(
    action: CardAction,
    card_id: &str,
    status: AppStatus,
    time: u64,
    proof: &[u8; 32],
) -> Vec<u8> {
    signing_input(action, card_id, status.as_str(), time, proof)
}

/// The outcome name signed in place of a status when the bank does not
/// know the card ([`not_found_signing_input`]): the error code of the 404,
/// never one of [`AppStatus`]'s wire names.
pub const NOT_FOUND_OUTCOME: &str = "card_not_found";

/// What the issuer signs in the 404 `card_not_found` answer to a card
/// request (its `signature` field; docs/protocol.md, "Signed card
/// answers"): the six fields of [`answer_signing_input`] with
/// [`NOT_FOUND_OUTCOME`] in place of the status. A removal ends on the
/// phone only on a signed answer, so a network cannot make a phone give
/// up telling the bank by answering "unknown card" itself.
pub fn not_found_signing_input(
    action: CardAction,
    card_id: &str,
    time: u64,
    proof: &[u8; 32],
) -> Vec<u8> {
    signing_input(action, card_id, NOT_FOUND_OUTCOME, time, proof)
}

fn signing_input(
    action: CardAction,
    card_id: &str,
    outcome: &str,
    time: u64,
    proof: &[u8; 32],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + card_id.len());
    put(&mut out, ANSWER_LABEL);
    put(&mut out, action.label());
    put(&mut out, card_id.as_bytes());
    put(&mut out, outcome.as_bytes());
    put(&mut out, &time.to_be_bytes());
    put(&mut out, proof);
    out
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
    fn the_answer_signing_input_is_the_documented_layout() {
        let proof = [0xabu8; 32];
        let got = answer_signing_input(CardAction::Status, "crd_1", AppStatus::Revoked, 7, &proof);
        let mut want = Vec::new();
        for field in [
            &b"pooya/v1/card-answer"[..],
            b"pooya/v1/card-request/status",
            b"crd_1",
            b"revoked",
            &7u64.to_be_bytes(),
            &proof,
        ] {
            want.extend_from_slice(&(field.len() as u32).to_be_bytes());
            want.extend_from_slice(field);
        }
        assert_eq!(got, want);
        // Every field is bound.
        for other in [
            answer_signing_input(CardAction::Remove, "crd_1", AppStatus::Revoked, 7, &proof),
            answer_signing_input(CardAction::Status, "crd_2", AppStatus::Revoked, 7, &proof),
            answer_signing_input(CardAction::Status, "crd_1", AppStatus::Active, 7, &proof),
            answer_signing_input(CardAction::Status, "crd_1", AppStatus::Revoked, 8, &proof),
            answer_signing_input(CardAction::Status, "crd_1", AppStatus::Revoked, 7, &[0; 32]),
        ] {
            assert_ne!(other, got);
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

    #[test]
    fn a_not_found_answer_is_signed_apart_from_every_state() {
        let proof = [7u8; 32];
        let nf = not_found_signing_input(CardAction::Remove, "crd_1", 1000, &proof);
        for s in [
            AppStatus::Active,
            AppStatus::Suspended,
            AppStatus::Revoked,
            AppStatus::OtherDevice,
        ] {
            assert_ne!(s.as_str(), NOT_FOUND_OUTCOME);
            assert_ne!(
                nf,
                answer_signing_input(CardAction::Remove, "crd_1", s, 1000, &proof)
            );
        }
        assert_ne!(
            nf,
            not_found_signing_input(CardAction::Status, "crd_1", 1000, &proof)
        );
        // Same layout, the outcome name in the status's place.
        let mut want = Vec::new();
        for f in [
            ANSWER_LABEL,
            CardAction::Remove.label(),
            b"crd_1".as_slice(),
            NOT_FOUND_OUTCOME.as_bytes(),
            &1000u64.to_be_bytes(),
            &proof,
        ] {
            want.extend_from_slice(&u32::try_from(f.len()).unwrap().to_be_bytes());
            want.extend_from_slice(f);
        }
        assert_eq!(nf, want);
    }
}
