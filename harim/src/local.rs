//! What Harim answers itself, in the issuer's words: the error shape
//! (`{"error", "message"}`, docs/issuer.md, "Errors"), strict JSON bodies,
//! and the answer an issuer gives a card it does not know, for a card
//! whose BIN no issuer owns (no enumeration: docs/harim.md, "Unknown
//! BINs"). The checks run in the issuer's order with its messages, so a
//! gateway gets the same status and body from Harim as from an issuer.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pooya_protocol::pin::normalize_payee;
use pooya_protocol::wire::{JsonRejection, VerifyKind};
use pooya_protocol::{Pan, TxType, normalize_digits};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

/// Longest code a verification accepts, as the issuer.
const MAX_CODE_LEN: usize = 16;

/// An error answer: a status and `{"error": code, "message": text}` (a
/// 429 adds `retry_after_secs` and `Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) retry_after_secs: Option<u64>,
    /// `Retry-After` without the body field (503 `issuer_unavailable`).
    pub(crate) retry_after_header: Option<u64>,
}

/// The error body, fields in the issuer's order (docs/issuer.md, "Errors";
/// docs/harim.md, "Errors Harim itself gives").
#[derive(Serialize, Deserialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// The stable code: `unauthorized`, `forbidden`, `rate_limited`,
    /// `issuer_unavailable`, `not_found`, `method_not_allowed`,
    /// `request_timeout`, `payload_too_large`, `unsupported_media_type`,
    /// `invalid_settings`, `io`, `internal`, or an issuer's code passed
    /// back (`invalid_pan`, `invalid_code`, `invalid_amount`,
    /// `invalid_payee`, `missing_type`, `invalid_type`, `invalid_json`,
    /// `invalid_body`, `unknown_field`, `missing_field`, `invalid_field`,
    /// `unknown_payee`, `rate_limited`, `unavailable`, `internal`).
    #[schema(example = "issuer_unavailable")]
    pub(crate) error: String,
    /// What went wrong, naming fields, never values.
    pub(crate) message: String,
    /// For 429: seconds until a retry can succeed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) retry_after_secs: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
            retry_after_header: None,
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401, as the issuer says it.
    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }

    /// 403, as the issuer says it.
    pub(crate) fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token's role may not use this route",
        )
    }

    /// 408 `request_timeout` (RFC 9110 §15.5.9).
    pub(crate) fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took too long",
        )
    }

    /// 429 `rate_limited`: the gateway's own limit at Harim.
    pub(crate) fn rate_limited(secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("this gateway sent too many requests; please try again in {secs} seconds"),
        );
        e.retry_after_secs = Some(secs);
        e
    }

    /// 503 `issuer_unavailable`: the card's bank cannot be reached now.
    pub(crate) fn issuer_unavailable(retry_after_secs: Option<u64>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "issuer_unavailable",
            "the card's issuing bank is not answering; please try again later",
        );
        e.retry_after_header = retry_after_secs;
        e
    }
}

/// A refused JSON body: 400 with the issuer's code and message for it.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        Self::bad_request(r.code(), r.message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
            retry_after_secs: self.retry_after_secs,
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs.or(self.retry_after_header)
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(RETRY_AFTER, v);
        }
        resp
    }
}

/// Parses a JSON body strictly, as the issuer: no unknown fields; its
/// error codes (`invalid_json`, `unknown_field`, `missing_field`,
/// `invalid_type`, `invalid_field`) and messages, which never echo values.
///
/// # Errors
/// The 400 the issuer gives for the same body.
pub(crate) fn strict_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::from(JsonRejection::classify(&e)))
}

/// The card number of a body, read leniently for routing only: `None`
/// when the body is not a JSON object with a string `pan`.
pub(crate) fn routing_pan(body: &[u8]) -> Option<Pan> {
    #[derive(Deserialize)]
    struct PanOnly {
        pan: Zeroizing<String>,
    }
    let p: PanOnly = serde_json::from_slice(body).ok()?;
    Pan::parse(&p.pan).ok()
}

/// A transaction type (docs/protocol.md, "Transaction-bound PIN").
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum TxTypeName {
    /// A purchase.
    Purchase,
    /// A card-to-card transfer.
    Transfer,
    /// A bill payment.
    Bill,
}

/// The PIN kind a gateway asks about.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum PinKindName {
    /// First dynamic PIN (ATM, POS).
    First,
    /// Second dynamic PIN (card not present).
    Second,
}

/// A verification's verdict.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum VerifyResultName {
    /// Good for this payment; now spent.
    Accepted,
    /// Wrong, expired, spent or for another payment.
    Rejected,
    /// The card's dynamic PINs are blocked.
    Blocked,
}

/// `POST /v1/otp-requests` body, field for field the issuer's
/// `OtpRequest` (the same names and order, so the same serde errors).
/// The card number is wiped on drop.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct OtpRequest {
    /// The card number: 16 digits (ASCII or Persian; spaces and dashes
    /// allowed), Luhn check digit. Its BIN prefix routes the request.
    #[schema(value_type = String, example = "6104337700000001")]
    pan: Zeroizing<String>,
    /// The amount in Rials (> 0).
    #[schema(example = 1250000, minimum = 1)]
    amount: u64,
    /// The payee the gateway will send as `payee` to `/v1/verify`:
    /// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`, registered at the bank.
    #[schema(example = "IR-SHOP-42")]
    payee_id: String,
    /// The transaction type: required (`missing_type` without it).
    #[serde(
        rename = "type",
        default,
        deserialize_with = "pooya_protocol::wire::deserialize_tx_type"
    )]
    #[schema(value_type = Option<TxTypeName>)]
    tx_type: Option<TxType>,
}

/// The `otp-requests` answer (202), the same whether or not the bank
/// knows the card; fields in the issuer's order.
#[derive(Serialize, ToSchema)]
pub(crate) struct OtpRequestAnswer {
    /// Always `requested`.
    #[schema(example = "requested")]
    status: &'static str,
    /// When a PIN sent now expires, Unix seconds.
    expires_at: u64,
    /// Its lifetime, seconds.
    #[schema(example = 120)]
    valid_for_secs: u64,
}

/// `POST /v1/verify` body, field for field
/// `pooya_protocol::wire::VerifyRequest` (the same names and order, so
/// the same serde errors). Card number and code are wiped on drop.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyBody {
    /// The card number, as in `otp-requests`; its BIN prefix routes it.
    #[schema(value_type = String, example = "6104337700000001")]
    pan: Zeroizing<String>,
    /// The code the customer typed: 1–16 digits (ASCII or Persian,
    /// spaces allowed).
    #[schema(value_type = String, example = "2741380")]
    code: Zeroizing<String>,
    /// The amount in Rials (> 0 for a second PIN).
    #[schema(example = 1250000)]
    amount: u64,
    /// The payee, for transaction-bound and Harim PINs (second PINs only).
    #[serde(default)]
    #[schema(example = "IR-SHOP-42")]
    payee: Option<String>,
    /// The transaction type: required with a payee, refused without one.
    #[serde(
        rename = "type",
        default,
        deserialize_with = "pooya_protocol::wire::deserialize_tx_type"
    )]
    #[schema(value_type = Option<TxTypeName>)]
    tx_type: Option<TxType>,
    /// `first` (ATM/POS) or `second` (card not present).
    #[schema(value_type = PinKindName)]
    kind: VerifyKind,
}

/// The `verify` answer (200): a verdict, a stable reason, and the PIN kind
/// that matched when accepted.
#[derive(Serialize, ToSchema)]
pub(crate) struct VerifyAnswer {
    /// The verdict.
    result: VerifyResultName,
    /// `ok`, `wrong_code`, `replayed`, `dynamic_linking_required`,
    /// `card_suspended`, `card_revoked` or `too_many_failures`
    /// (docs/issuer.md, "`POST /v1/verify`").
    #[schema(example = "ok")]
    reason: &'static str,
    /// `first`, `second` or `transaction`, when accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "transaction")]
    matched: Option<&'static str>,
}

fn invalid_pan(e: &pooya_protocol::ProtocolError) -> ApiError {
    ApiError::bad_request("invalid_pan", e.to_string())
}

/// What an issuer answers `POST /v1/otp-requests` for a card it does not
/// know: 202 `requested`, `expires_at` = now + `otp_ttl_secs`.
///
/// # Errors
/// The issuer's 400s for a malformed body, in its order.
pub(crate) fn unknown_otp_request(body: &[u8], now: u64, ttl: u64) -> Result<Response, ApiError> {
    let req: OtpRequest = strict_json(body)?;
    Pan::parse(&req.pan).map_err(|e| invalid_pan(&e))?;
    if req.amount == 0 {
        return Err(ApiError::bad_request(
            "invalid_amount",
            "amount must be a positive number of Rials",
        ));
    }
    normalize_payee(&req.payee_id)
        .map_err(|e| ApiError::bad_request("invalid_payee", e.to_string()))?;
    if req.tx_type.is_none() {
        return Err(ApiError::bad_request(
            "missing_type",
            "type (purchase, transfer or bill) is required",
        ));
    }
    let answer = OtpRequestAnswer {
        status: "requested",
        expires_at: now.saturating_add(ttl),
        valid_for_secs: ttl,
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// What an issuer answers `POST /v1/verify` for a card it does not know:
/// 200 `rejected` `wrong_code`.
///
/// # Errors
/// The issuer's 400s for a malformed body, in its order.
pub(crate) fn unknown_verify(body: &[u8]) -> Result<Response, ApiError> {
    let req: VerifyBody = strict_json(body)?;
    Pan::parse(&req.pan).map_err(|e| invalid_pan(&e))?;
    let compact = Zeroizing::new(req.code.chars().filter(|c| *c != ' ').collect::<String>());
    match normalize_digits(&compact).map(Zeroizing::new) {
        Some(d) if !d.is_empty() && d.len() <= MAX_CODE_LEN => {}
        _ => {
            return Err(ApiError::bad_request(
                "invalid_code",
                "code must be 1 to 16 digits",
            ));
        }
    }
    let payee = match &req.payee {
        None => false,
        Some(p) => {
            normalize_payee(p)
                .map_err(|e| ApiError::bad_request("invalid_payee", e.to_string()))?;
            true
        }
    };
    match req.kind {
        VerifyKind::First if payee => {
            return Err(ApiError::bad_request(
                "invalid_payee",
                "payee is only for second PINs",
            ));
        }
        VerifyKind::First if req.tx_type.is_some() => {
            return Err(ApiError::bad_request(
                "invalid_type",
                "type is only for second PINs with a payee",
            ));
        }
        VerifyKind::Second if payee && req.tx_type.is_none() => {
            return Err(ApiError::bad_request(
                "missing_type",
                "type (purchase, transfer or bill) is required with a payee",
            ));
        }
        VerifyKind::Second if !payee && req.tx_type.is_some() => {
            return Err(ApiError::bad_request(
                "invalid_type",
                "type is only for payments with a payee",
            ));
        }
        VerifyKind::Second if req.amount == 0 => {
            return Err(ApiError::bad_request(
                "invalid_amount",
                "amount must be a positive number of Rials",
            ));
        }
        _ => {}
    }
    let answer = VerifyAnswer {
        result: VerifyResultName::Rejected,
        reason: "wrong_code",
        matched: None,
    };
    Ok(Json(answer).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn routing_reads_only_a_valid_pan() {
        assert!(routing_pan(br#"{"pan":"6104337700000001","x":1}"#).is_some());
        assert!(routing_pan(br#"{"pan":"6104 3377 0000 0001"}"#).is_some());
        for bad in [
            &br#"{"pan":"6104337700000002"}"#[..],
            br#"{"pan":1}"#,
            b"[]",
            b"not json",
            br#"{}"#,
        ] {
            assert!(
                routing_pan(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn json_errors_are_the_issuers() {
        for (body, code) in [
            (&b"{"[..], "invalid_json"),
            (br#"{"pan":"6104337700000001","code":"1","amount":1,"kind":"second","x":1}"#, "unknown_field"),
            (br#"{"pan":"6104337700000001","amount":1,"kind":"second"}"#, "missing_field"),
            (br#"{"pan":"6104337700000001","code":"1","amount":-1,"kind":"second"}"#, "invalid_field"),
            (br#"{"pan":"6104337700000001","code":"1","amount":1,"kind":"second","payee":"a","type":"gift"}"#, "invalid_type"),
            (br#"{"pan":"6104337700000002","code":"1","amount":1,"kind":"second"}"#, "invalid_pan"),
            (br#"{"pan":"6104337700000001","code":"12a","amount":1,"kind":"second"}"#, "invalid_code"),
            (br#"{"pan":"6104337700000001","code":"1","amount":0,"kind":"second"}"#, "invalid_amount"),
            (br#"{"pan":"6104337700000001","code":"1","amount":1,"kind":"second","payee":"a"}"#, "missing_type"),
        ] {
            assert_eq!(unknown_verify(body).unwrap_err().code, code, "{}", String::from_utf8_lossy(body));
        }
        assert!(
            unknown_verify(br#"{"pan":"6104337700000001","code":"1","amount":1,"kind":"second"}"#)
                .is_ok()
        );
    }

    proptest! {
        #[test]
        fn unknown_card_answers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = unknown_verify(&body);
            let _ = unknown_otp_request(&body, 0, 120);
            let _ = routing_pan(&body);
        }

        #[test]
        fn field_messages_never_echo_values(v in "[a-z]{12,20}") {
            let body = format!(r#"{{"pan":"{v}","code":"1","amount":1,"kind":"second"}}"#);
            let e = unknown_verify(body.as_bytes()).unwrap_err();
            prop_assert!(!e.message.contains(&v));
            let body = format!(r#"{{"pan":"6104337700000001","code":"1","amount":1,"kind":"second","{v}":1}}"#);
            let e = unknown_verify(body.as_bytes()).unwrap_err();
            prop_assert_eq!(e.code, "unknown_field");
        }
    }
}
