//! JSON wire types shared by the phone and the bank, and the activation
//! transcript both sides sign, check and derive the card seed from.
//!
//! Activation (docs/protocol.md, "Activation"): the phone sends an X25519
//! public key with the activation code; the issuer answers with its own
//! ephemeral X25519 key, the card's display data and policies, and an
//! Ed25519 signature over the [`ActivationTranscript`]. Both sides derive
//! the card seed with [`derive_card_seed`] from the X25519 shared secret and
//! the transcript, so the seed never crosses the wire.

use ring::{digest, hkdf};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ProtocolError;
use crate::pin::{PinKind, Policies};
use crate::secret::{CardSeed, SEED_LEN};

/// Domain label at the start of every activation transcript.
pub const TRANSCRIPT_LABEL: &[u8] = b"pooya/v1/activation";
/// HKDF info label of the card seed.
pub const SEED_LABEL: &[u8] = b"pooya/v1/card-seed";

/// `POST /v1/activations` request body. `Debug` hides the code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationRequest {
    /// The customer's mobile number, as registered at the ATM.
    pub phone: String,
    /// The activation code from the SMS.
    pub code: String,
    /// The phone's X25519 public key, hex (32 bytes).
    pub device_public_key: String,
    /// A name for the device, shown to the bank's operators.
    pub device_label: String,
}

/// `POST /v1/activations` answer body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationResponse {
    /// The issuer's identifier of the card.
    pub card_id: String,
    /// The masked card number (`6104 33•• •••• 1234`).
    pub masked_pan: String,
    /// The last four digits.
    pub last4: String,
    /// The bank's name.
    pub bank_name: String,
    /// PIN policies and cap ladder.
    pub policies: Policies,
    /// The issuer's clock, Unix seconds.
    pub server_time: u64,
    /// The issuer's ephemeral X25519 public key, hex (32 bytes).
    pub issuer_ephemeral_public_key: String,
    /// Ed25519 signature over the transcript, hex (64 bytes).
    pub signature: String,
}

/// Everything an activation binds together: the exact bytes the issuer
/// signs and both sides feed into the seed derivation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationTranscript<'a> {
    /// The normalised phone number (`+989…`).
    pub phone: &'a str,
    /// The normalised activation code (ASCII digits).
    pub code: &'a str,
    /// The phone's X25519 public key.
    pub device_public_key: &'a [u8],
    /// The device label.
    pub device_label: &'a str,
    /// The issuer's ephemeral X25519 public key.
    pub issuer_ephemeral_public_key: &'a [u8],
    /// The card id.
    pub card_id: &'a str,
    /// The masked PAN.
    pub masked_pan: &'a str,
    /// The last four digits.
    pub last4: &'a str,
    /// The bank name.
    pub bank_name: &'a str,
    /// The policies.
    pub policies: &'a Policies,
    /// The issuer's clock.
    pub server_time: u64,
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

impl ActivationTranscript<'_> {
    /// The canonical bytes: the label, then every field as a 4-byte
    /// big-endian length and its bytes, numbers as 8-byte big-endian, in
    /// the order of the struct (docs/protocol.md, "Activation transcript").
    /// The code is inside, so the bytes are secret until the code is spent.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Vec::with_capacity(512);
        put(&mut out, TRANSCRIPT_LABEL);
        put(&mut out, self.phone.as_bytes());
        put(&mut out, self.code.as_bytes());
        put(&mut out, self.device_public_key);
        put(&mut out, self.device_label.as_bytes());
        put(&mut out, self.issuer_ephemeral_public_key);
        put(&mut out, self.card_id.as_bytes());
        put(&mut out, self.masked_pan.as_bytes());
        put(&mut out, self.last4.as_bytes());
        put(&mut out, self.bank_name.as_bytes());
        let p = self.policies;
        for policy in [&p.first, &p.second] {
            put(&mut out, &u64::from(policy.digits).to_be_bytes());
            put(&mut out, &policy.step.to_be_bytes());
            put(&mut out, &u64::from(policy.window).to_be_bytes());
        }
        let tiers: Vec<u8> = p
            .cap_ladder
            .tiers()
            .iter()
            .flat_map(|t| t.to_be_bytes())
            .collect();
        put(&mut out, &tiers);
        put(&mut out, &self.server_time.to_be_bytes());
        Zeroizing::new(out)
    }
}

struct SeedLen;
impl hkdf::KeyType for SeedLen {
    fn len(&self) -> usize {
        SEED_LEN
    }
}

/// The card seed: HKDF-SHA256 (RFC 5869) with the X25519 shared secret as
/// input key material, SHA-256 of the transcript as salt and
/// [`SEED_LABEL`] as info.
pub fn derive_card_seed(shared_secret: &[u8], transcript: &[u8]) -> CardSeed {
    let salt = digest::digest(&digest::SHA256, transcript);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt.as_ref()).extract(shared_secret);
    let mut out = Zeroizing::new([0u8; SEED_LEN]);
    let info = [SEED_LABEL];
    // Fails only for outputs over 255 hash lengths or a length mismatch;
    // a fixed 32-byte output rules out both.
    #[allow(clippy::expect_used)]
    prk.expand(&info, SeedLen)
        .and_then(|okm| okm.fill(&mut out[..]))
        .expect("HKDF-SHA256 with a 32-byte output cannot fail");
    CardSeed::from_bytes(*out)
}

/// Decodes a fixed-length hex field.
///
/// # Errors
/// [`ProtocolError::InvalidField`] when it is not `N` bytes of hex.
pub fn decode_hex_array<const N: usize>(
    field: &'static str,
    text: &str,
) -> Result<[u8; N], ProtocolError> {
    let bytes = hex::decode(text).map_err(|_| ProtocolError::InvalidField {
        field,
        reason: "not hex",
    })?;
    bytes.try_into().map_err(|_| ProtocolError::InvalidField {
        field,
        reason: "wrong length",
    })
}

/// `POST /v1/verify` request body (the payment gateway asks the bank).
/// `Debug` masks the card number and hides the code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The card number.
    pub pan: String,
    /// The code the customer typed.
    pub code: String,
    /// The amount in Rials (ignored for first PINs).
    pub amount: u64,
    /// The payee, for transaction-bound codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<String>,
    /// `first` (ATM/POS) or `second` (card not present).
    pub kind: VerifyKind,
}

impl core::fmt::Debug for ActivationRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ActivationRequest")
            .field("phone", &self.phone)
            .field("code", &"<redacted>")
            .field("device_public_key", &self.device_public_key)
            .field("device_label", &self.device_label)
            .finish()
    }
}

impl core::fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Only the last four digits, and only when the text is long enough
        // to be a card number.
        let chars: Vec<char> = self.pan.chars().collect();
        let last4: String = if chars.len() >= 12 {
            chars[chars.len() - 4..].iter().collect()
        } else {
            String::from("?")
        };
        f.debug_struct("VerifyRequest")
            .field("pan", &format_args!("••••{last4}"))
            .field("code", &"<redacted>")
            .field("amount", &self.amount)
            .field("payee", &self.payee)
            .field("kind", &self.kind)
            .finish()
    }
}

/// The PIN kind a gateway asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyKind {
    /// First dynamic PIN.
    First,
    /// Second dynamic PIN (cap-bound, transaction-bound, SMS or Harim).
    Second,
}

/// `POST /v1/verify` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResponse {
    /// The verdict.
    pub result: VerifyResult,
    /// A stable reason code (docs/issuer.md).
    pub reason: String,
    /// Which PIN kind matched, when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<PinKind>,
}

/// The verdict of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyResult {
    /// The code is good for this payment; it is now spent.
    Accepted,
    /// The code is wrong, expired, spent or for another payment.
    Rejected,
    /// The card's dynamic PINs are blocked after repeated failures.
    Blocked,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(policies: &Policies) -> ActivationTranscript<'_> {
        ActivationTranscript {
            phone: "+989121234567",
            code: "1234567897",
            device_public_key: &[1; 32],
            device_label: "Pixel",
            issuer_ephemeral_public_key: &[2; 32],
            card_id: "c1",
            masked_pan: "6104 33•• •••• 0001",
            last4: "0001",
            bank_name: "Bank Mellat",
            policies,
            server_time: 1_700_000_000,
        }
    }

    #[test]
    fn every_field_changes_the_seed() {
        let p = Policies::default();
        let base = transcript(&p);
        let seed = derive_card_seed(&[9; 32], &base.to_bytes());
        let mut p2 = Policies::default();
        p2.second.window = 0;
        let variants = [
            ActivationTranscript {
                phone: "+989121234568",
                ..base.clone()
            },
            ActivationTranscript {
                code: "1234567898",
                ..base.clone()
            },
            ActivationTranscript {
                device_label: "Pixe",
                ..base.clone()
            },
            ActivationTranscript {
                card_id: "c2",
                ..base.clone()
            },
            ActivationTranscript {
                server_time: 1,
                ..base.clone()
            },
            ActivationTranscript {
                policies: &p2,
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(derive_card_seed(&[9; 32], &v.to_bytes()), seed);
        }
        assert_ne!(derive_card_seed(&[8; 32], &base.to_bytes()), seed);
        assert_eq!(derive_card_seed(&[9; 32], &base.to_bytes()), seed);
    }

    #[test]
    fn requests_debug_hides_secrets() {
        let v = VerifyRequest {
            pan: "6104337700000001".into(),
            code: "98765432".into(),
            amount: 5,
            payee: None,
            kind: VerifyKind::Second,
        };
        let text = format!("{v:?}");
        assert!(
            !text.contains("61043377") && !text.contains("98765432"),
            "{text}"
        );
        assert!(text.contains("0001"));
        let a = ActivationRequest {
            phone: "+989121234567".into(),
            code: "1234567897".into(),
            device_public_key: "00".into(),
            device_label: "Pixel".into(),
        };
        assert!(!format!("{a:?}").contains("1234567897"));
    }

    #[test]
    fn verify_request_refuses_unknown_fields() {
        let ok = r#"{"pan":"6104337700000001","code":"12345678","amount":5,"kind":"second"}"#;
        assert!(serde_json::from_str::<VerifyRequest>(ok).is_ok());
        let bad = r#"{"pan":"6104337700000001","code":"1","amount":5,"kind":"second","x":1}"#;
        assert!(serde_json::from_str::<VerifyRequest>(bad).is_err());
    }
}
