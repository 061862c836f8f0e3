//! JSON wire types of verification (`POST /v1/verify`) shared by the bank
//! and its gateways, and hex helpers. Activation's are in
//! [`crate::activation`].

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ProtocolError;
use crate::pin::PinKind;

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
/// `Debug` masks the card number and hides the code; the card number, the
/// code and the payee are wiped on drop.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
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
    #[zeroize(skip)]
    pub kind: VerifyKind,
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
    }

    #[test]
    fn verify_request_refuses_unknown_fields() {
        let ok = r#"{"pan":"6104337700000001","code":"12345678","amount":5,"kind":"second"}"#;
        assert!(serde_json::from_str::<VerifyRequest>(ok).is_ok());
        let bad = r#"{"pan":"6104337700000001","code":"1","amount":5,"kind":"second","x":1}"#;
        assert!(serde_json::from_str::<VerifyRequest>(bad).is_err());
    }
}
