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

/// Why a JSON request body was refused, as both servers (the issuer and
/// Harim) answer it: a stable code and a message that names fields, never
/// values (docs/issuer.md, "Errors").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonRejection {
    /// `invalid_json`: not JSON at all (syntax error or cut short).
    InvalidJson,
    /// `unknown_field`: a field the route does not take.
    UnknownField {
        /// serde's first clause, "unknown field `x`".
        message: String,
    },
    /// `missing_field`: a required field is absent.
    MissingField {
        /// serde's first clause, "missing field `x`".
        message: String,
    },
    /// `invalid_type`: a transaction type that is not one of
    /// [`TxType::ALL`] ([`INVALID_TYPE_MESSAGE`]).
    InvalidType,
    /// `invalid_field`: a field has the wrong JSON type or value.
    InvalidField {
        /// The line of the error in the body (1-based).
        line: usize,
        /// The column of the error in the body (1-based).
        column: usize,
    },
}

impl JsonRejection {
    /// The stable codes, in declaration order.
    pub const CODES: [&'static str; 5] = [
        "invalid_json",
        "unknown_field",
        "missing_field",
        "invalid_type",
        "invalid_field",
    ];

    /// Classifies a `serde_json` error of a strict (`deny_unknown_fields`)
    /// request body. Pure: the same error always gives the same rejection.
    #[must_use]
    pub fn classify(e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => Self::InvalidJson,
            Category::Data => {
                let text = e.to_string();
                if text.starts_with("unknown field") {
                    Self::UnknownField {
                        message: field_message(&text),
                    }
                } else if text.starts_with("missing field") {
                    Self::MissingField {
                        message: field_message(&text),
                    }
                } else if text.starts_with(INVALID_TYPE_MESSAGE) {
                    // Issue 13, transaction types: `type` in /v1/verify and
                    // /v1/otp-requests.
                    Self::InvalidType
                } else {
                    Self::InvalidField {
                        line: e.line(),
                        column: e.column(),
                    }
                }
            }
        }
    }

    /// The stable code, one of [`Self::CODES`].
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::UnknownField { .. } => "unknown_field",
            Self::MissingField { .. } => "missing_field",
            Self::InvalidType => "invalid_type",
            Self::InvalidField { .. } => "invalid_field",
        }
    }

    /// The message sent with [`Self::code`]: it names fields, never values.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::InvalidJson => "request body is not valid JSON".to_owned(),
            Self::UnknownField { message } | Self::MissingField { message } => message.clone(),
            Self::InvalidType => INVALID_TYPE_MESSAGE.to_owned(),
            Self::InvalidField { line, column } => {
                format!("a field has the wrong type or value (line {line}, column {column})")
            }
        }
    }
}

/// serde's "unknown field `x`, expected …": the first clause only, at
/// most 120 characters.
fn field_message(text: &str) -> String {
    let first = text.split(", expected").next().unwrap_or(text);
    let first = first.split(" at line").next().unwrap_or(first);
    first.chars().take(120).collect()
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
    use proptest::prelude::*;

    fn reject(body: &[u8]) -> JsonRejection {
        let e = serde_json::from_slice::<VerifyRequest>(body).unwrap_err();
        JsonRejection::classify(&e)
    }

    #[test]
    fn json_rejections_have_the_servers_codes_and_messages() {
        let cases: [(&[u8], &str, &str); 8] = [
            (b"{", "invalid_json", "request body is not valid JSON"),
            (b"", "invalid_json", "request body is not valid JSON"),
            (
                br#"{"pan":"6104337700000001","code":"1","amount":1,"kind":"second","x":1}"#,
                "unknown_field",
                "unknown field `x`",
            ),
            (
                br#"{"pan":"6104337700000001","amount":1,"kind":"second"}"#,
                "missing_field",
                "missing field `code`",
            ),
            (
                br#"{"pan":"6104337700000001","code":"1","amount":-1,"kind":"second"}"#,
                "invalid_field",
                "a field has the wrong type or value (line 1, column 48)",
            ),
            (
                br#"{"pan":"6104337700000001","code":"1","amount":1,"kind":"second","payee":"a","type":"gift"}"#,
                "invalid_type",
                INVALID_TYPE_MESSAGE,
            ),
            (
                br#"{"pan":"6104337700000001","code":"1","amount":1,"kind":"third"}"#,
                "invalid_field",
                "a field has the wrong type or value (line 1, column 62)",
            ),
            // serde_json reports an enum given as a number as a syntax
            // error, so the servers answer `invalid_json` here.
            (
                br#"{"pan":"6104337700000001","code":"1","amount":1,"kind":1}"#,
                "invalid_json",
                "request body is not valid JSON",
            ),
        ];
        for (body, code, message) in cases {
            let r = reject(body);
            let shown = String::from_utf8_lossy(body);
            assert_eq!(r.code(), code, "{shown}");
            assert_eq!(r.message(), message, "{shown}");
        }
    }

    #[test]
    fn field_messages_keep_the_field_name_only() {
        assert_eq!(
            field_message("unknown field `x`, expected one of `pan`, `code` at line 1 column 9"),
            "unknown field `x`"
        );
        assert_eq!(
            field_message("missing field `pan` at line 1 column 2"),
            "missing field `pan`"
        );
        assert_eq!(field_message(&"y".repeat(300)).chars().count(), 120);
    }

    proptest! {
        #[test]
        fn json_rejection_never_panics_and_has_one_of_five_codes(
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            if let Err(e) = serde_json::from_slice::<VerifyRequest>(&body) {
                let r = JsonRejection::classify(&e);
                prop_assert!(JsonRejection::CODES.contains(&r.code()), "{}", r.code());
                let message = r.message();
                prop_assert!(!message.is_empty() && message.chars().count() <= 120);
            }
        }

        #[test]
        fn json_rejection_of_text_bodies_has_one_of_five_codes(body in "\\PC{0,120}") {
            if let Err(e) = serde_json::from_str::<VerifyRequest>(&body) {
                let r = JsonRejection::classify(&e);
                prop_assert!(JsonRejection::CODES.contains(&r.code()), "{}", r.code());
            }
        }

        #[test]
        fn json_rejection_of_json_objects_has_one_of_five_codes(
            fields in proptest::collection::vec(
                (
                    prop::sample::select(vec!["pan", "code", "amount", "payee", "type", "kind", "x"]),
                    prop::sample::select(vec![
                        "\"6104337700000001\"", "\"1\"", "1", "-1", "\"second\"",
                        "\"purchase\"", "\"gift\"", "null", "[]", "{}", "true",
                    ]),
                ),
                0..8,
            ),
        ) {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let body = format!("{{{}}}", body.join(","));
            if let Err(e) = serde_json::from_str::<VerifyRequest>(&body) {
                let r = JsonRejection::classify(&e);
                prop_assert!(JsonRejection::CODES.contains(&r.code()), "{}", r.code());
            }
        }

        #[test]
        fn unknown_field_names_are_unknown_fields(v in "[a-z_]{1,20}") {
            prop_assume!(!["pan", "code", "amount", "payee", "type", "kind"].contains(&v.as_str()));
            let body = format!(
                r#"{{"pan":"6104337700000001","code":"1","amount":1,"kind":"second","{v}":1}}"#
            );
            let r = reject(body.as_bytes());
            prop_assert_eq!(r.code(), "unknown_field");
            prop_assert_eq!(r.message(), format!("unknown field `{v}`"));
        }
    }

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
