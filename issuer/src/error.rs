//! The HTTP form of the service's errors ([`ApiError`]): every
//! [`ServiceError`] and [`IssuerError`] is mapped to a status here, in
//! one place (docs/issuer.md, "Errors").
//!
//! Messages never contain a PAN, a seed, a code or a token: they name
//! fields and reasons only; internal failures say only "internal error".

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pooya_issuer_service::{IssuerError, PayeeAt, ServiceError};
use pooya_protocol::wire::JsonRejection;
use serde::Serialize;

/// An HTTP error answer: a status and `{"error": code, "message": text}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable error code (docs/issuer.md, "Errors").
    pub code: &'static str,
    /// A human-readable explanation, free of secrets.
    pub message: String,
    /// For 429: seconds until a retry can succeed (`Retry-After`, RFC
    /// 9110 §10.2.3, and `retry_after_secs` in the body).
    pub retry_after_secs: Option<u64>,
    /// For a card request's 404 `card_not_found`: the issuer's signature
    /// over the request (docs/protocol.md, "Signed card answers").
    pub signature: Option<String>,
}

/// Every error answer's body (docs/issuer.md, "Errors"); the OpenAPI
/// document narrows `error` per operation and status.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorBody<'a> {
    /// The stable code.
    error: &'a str,
    /// A human-readable explanation, free of secrets.
    message: &'a str,
    /// With 429: seconds until a retry can succeed (as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    retry_after_secs: Option<u64>,
    /// With 404 `card_not_found` to a card request: the issuer's Ed25519
    /// signature over the request (docs/protocol.md, "Signed card
    /// answers"), 128 hex digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9a-f]{128}$")]
    signature: Option<&'a str>,
}

impl ApiError {
    /// An error answer.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
            signature: None,
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

/// A refused JSON body: 400 with the rejection's stable code and message
/// (docs/issuer.md, "Errors").
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        Self::bad_request(r.code(), r.message())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ServiceError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden | ServiceError::ActivationRefused => StatusCode::FORBIDDEN,
            ServiceError::CardNotFound | ServiceError::UnknownPayee(PayeeAt::Path) => {
                StatusCode::NOT_FOUND
            }
            ServiceError::UnknownPayee(PayeeAt::Request) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::CardRevoked => StatusCode::CONFLICT,
            ServiceError::StaleRequest => StatusCode::BAD_REQUEST,
            ServiceError::RateLimited { retry_after_secs } => {
                let secs = *retry_after_secs;
                let mut api = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "a dynamic PIN was requested for this card a moment ago; please try again in {secs} seconds"
                    ),
                );
                api.retry_after_secs = Some(secs);
                return api;
            }
            ServiceError::CardNotFoundSigned { signature } => {
                let mut api = Self::new(StatusCode::NOT_FOUND, e.code(), e.to_string());
                api.signature = Some(signature.clone());
                return api;
            }
            ServiceError::Issuer(inner) => return Self::from(inner.clone()),
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<IssuerError> for ApiError {
    fn from(e: IssuerError) -> Self {
        // A protocol error here comes from stored data (a sealed seed or
        // PAN that does not parse), never from the request: requests'
        // fields are refused as `ServiceError::Invalid`.
        let status = match &e {
            IssuerError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            IssuerError::Sms(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(code = e.code(), error = %e, "request failed");
        }
        let message = match &e {
            // Internal details stay in the log.
            IssuerError::Storage(_)
            | IssuerError::Io { .. }
            | IssuerError::Crypto(_)
            | IssuerError::Protocol(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        let code = match &e {
            IssuerError::Storage(_)
            | IssuerError::Io { .. }
            | IssuerError::Crypto(_)
            | IssuerError::Protocol(_) => "internal",
            other => other.code(),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
            retry_after_secs: self.retry_after_secs,
            signature: self.signature.as_deref(),
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_internal_details_hidden() {
        let e = IssuerError::Storage("no such table: cards".into());
        assert_eq!(e.code(), "storage");
        let api = ApiError::from(e);
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(api.code, "internal");
        assert!(!api.message.contains("cards"));
        let api = ApiError::from(IssuerError::Unavailable);
        assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(api.code, "unavailable");
        // A stored seed that opens but does not parse is the bank's
        // failure, not the client's.
        let api = ApiError::from(ServiceError::from(
            pooya_protocol::ProtocolError::InvalidKeyLength(5),
        ));
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(api.code, "internal");
        let api = ApiError::from(ServiceError::RateLimited {
            retry_after_secs: 7,
        });
        assert_eq!(
            (api.status, api.code, api.retry_after_secs),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited", Some(7))
        );
    }
}
