//! JSON wire types of verification (`POST /v1/verify`) shared by the bank
//! and its gateways, and hex helpers. Activation's are in
//! [`crate::activation`].

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ProtocolError;
use crate::payment::TxType;
use crate::pin::PinKind;

/// The message of a refused transaction type in a JSON body; servers map
/// an error starting with it to `invalid_type`.
pub const INVALID_TYPE_MESSAGE: &str = "transaction type must be purchase, transfer or bill";

/// Deserializes an optional `type` field ([`TxType`]) with an error that
/// names it ([`INVALID_TYPE_MESSAGE`]), not serde's "unknown variant".
///
/// # Errors
/// A custom serde error starting with [`INVALID_TYPE_MESSAGE`].
pub fn deserialize_tx_type<'de, D>(d: D) -> Result<Option<TxType>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text: Option<String> = Option::deserialize(d)?;
    match text {
        None => Ok(None),
        Some(t) => TxType::parse(&t)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(INVALID_TYPE_MESSAGE)),
    }
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
/// `Debug` masks the card number and hides the code; the card number, the
/// code and the payee are wiped on drop.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The transaction type (`purchase`, `transfer`, `bill`): required
    /// with a payee, refused without one (docs/protocol.md, "The
    /// verification request").
    #[serde(
        rename = "type",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_tx_type"
    )]
    #[zeroize(skip)]
    pub tx_type: Option<TxType>,
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
            .field("type", &self.tx_type)
            .field("kind", &self.kind)
            .finish()
    }
}

/// The PIN kind a gateway asks about.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyKind {
    /// First dynamic PIN.
    First,
    /// Second dynamic PIN (cap-bound, transaction-bound, SMS or Harim).
    Second,
}

/// `POST /v1/verify` answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
            tx_type: None,
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

    #[test]
    fn verify_request_type_is_a_wire_name() {
        let body = |t: &str| {
            format!(
                r#"{{"pan":"6104337700000001","code":"12345678","amount":5,"payee":"shop-1","type":{t},"kind":"second"}}"#
            )
        };
        for t in TxType::ALL {
            let req: VerifyRequest =
                serde_json::from_str(&body(&format!("\"{}\"", t.as_str()))).unwrap();
            assert_eq!(req.tx_type, Some(t));
            let back = serde_json::to_string(&req).unwrap();
            assert!(
                back.contains(&format!("\"type\":\"{}\"", t.as_str())),
                "{back}"
            );
        }
        for bad in ["\"Purchase\"", "\"card_to_card\"", "\"\"", "1"] {
            let err = serde_json::from_str::<VerifyRequest>(&body(bad)).unwrap_err();
            assert!(
                err.to_string().starts_with(INVALID_TYPE_MESSAGE) || bad == "1",
                "{bad}: {err}"
            );
        }
        let none: VerifyRequest = serde_json::from_str(
            r#"{"pan":"6104337700000001","code":"12345678","amount":5,"kind":"second"}"#,
        )
        .unwrap();
        assert_eq!(none.tx_type, None);
        assert!(!serde_json::to_string(&none).unwrap().contains("type"));
    }
}
