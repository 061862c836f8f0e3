//! `pooya-issuer serve --demo-gateway`: a demo payment page at `/demo/pay`
//! showing Harim ("request dynamic PIN") in a browser.
//!
//! The page is plain HTML and a small script (`/demo/pay.js`), no
//! framework. It never sees a token: it calls three small routes of this
//! module (`/demo/api/…`), which play the payment gateway's server. Two of
//! them pass the request on to the issuer's own public API
//! (`POST /v1/otp-requests`, `POST /v1/verify`) with the gateway's bearer
//! token, in-process through the same axum router, token check, JSON
//! parsing and metrics as any gateway's request (a `tower` oneshot call,
//! not a socket). The third, `/demo/api/outbox`, stands in for the
//! customer's phone: it reads the newest one-time PIN messages (SMS
//! version and Harim, never an activation code or any other message) sent
//! to the phone of the card the page last used, through the service layer,
//! with no token, which is why the demo gateway only listens on loopback
//! addresses and is for demonstrations only.
//!
//! Every demo route answers only requests whose `Host` is
//! `127.0.0.1:PORT`, `localhost:PORT` or `[::1]:PORT` (PORT the one it
//! listens on): a web page that points its own name at 127.0.0.1 (DNS
//! rebinding) cannot read the outbox or use the gateway token
//! (421 `misdirected_request`).

use std::fmt;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request as AxumRequest, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tower::ServiceExt;
use zeroize::Zeroizing;

use pooya_issuer_service::messages::is_one_time_pin_message;
use pooya_issuer_service::{ApiToken, HashDomain, Issuer};
use pooya_protocol::{PaymentRequest, TxType};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::error::ApiError;
use crate::http::json_body;

/// Messages the page's outbox panel shows, newest first.
const OUTBOX_SHOWN: usize = 8;

const PAGE: &str = include_str!("demo/pay.html");
const SCRIPT: &str = include_str!("demo/pay.js");
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                   style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";

/// The demo gateway's configuration: the gateway token its server side
/// uses.
#[derive(Clone)]
pub struct DemoGateway {
    /// A `gateway` role token of this issuer (checked at start).
    pub gateway_token: ApiToken,
}

impl fmt::Debug for DemoGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DemoGateway(<redacted>)")
    }
}

#[derive(Clone)]
struct DemoState {
    /// The issuer's public API router.
    api: Router,
    token: Arc<Zeroizing<String>>,
    issuer: Arc<Issuer>,
    /// The registered phone of the card the page last used (a PIN
    /// request or a payment), whose PIN messages the outbox panel shows.
    last_phone: Arc<Mutex<Option<String>>>,
}

impl DemoState {
    /// Remembers the phone of `pan`'s card, if the bank knows the card.
    async fn remember_card(&self, pan: &str) -> Result<(), ApiError> {
        let Ok(pan) = pooya_protocol::Pan::parse(pan) else {
            return Ok(());
        };
        let hash = self
            .issuer
            .keys()
            .keyed_hash(HashDomain::Pan, pan.expose_secret().as_bytes())?;
        let phone = self
            .issuer
            .store()
            .harim_card(hash)
            .await?
            .map(|card| card.phone);
        let mut last = self.last_phone.lock().unwrap_or_else(|e| e.into_inner());
        *last = phone;
        Ok(())
    }
}

/// The `Host` values the demo routes answer.
#[derive(Clone)]
struct AllowedHosts(Arc<[String; 3]>);

impl AllowedHosts {
    fn for_port(port: u16) -> Self {
        Self(Arc::new([
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ]))
    }

    fn allows(&self, host: &str) -> bool {
        self.0.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// Refuses a demo request whose `Host` (or HTTP/2 authority) is not one
/// of the loopback names with the listening port: DNS rebinding.
async fn check_host(State(allowed): State<AllowedHosts>, req: AxumRequest, next: Next) -> Response {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    match host {
        Some(h) if allowed.allows(&h) => next.run(req).await,
        _ => ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected_request",
            "the demo pages answer only to 127.0.0.1, localhost or [::1] with this port",
        )
        .into_response(),
    }
}

/// The page's "request dynamic PIN": the amount as the customer typed it.
/// No merchant name: the SMS shows the one the bank registered for
/// `payee_id` (`PUT /v1/merchants/{payee_id}`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageOtpRequest {
    pan: Zeroizing<String>,
    amount: String,
    payee_id: String,
    #[serde(rename = "type")]
    tx_type: TxType,
}

/// The page's "pay".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PagePay {
    pan: String,
    amount: String,
    payee_id: String,
    #[serde(rename = "type")]
    tx_type: TxType,
    code: String,
}

// Issue 13, payment QR codes.
/// How long a payment request the page shows stays payable, seconds.
const PAYMENT_REQUEST_SECS: u64 = 300;
/// The shortest side of the QR code's SVG, in pixels.
const QR_MIN_PX: u32 = 264;

/// The page's "show payment QR code": what to pay, as the page's form has
/// it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PagePaymentRequest {
    amount: String,
    payee_id: String,
    name: String,
    #[serde(rename = "type")]
    tx_type: TxType,
}

/// The demo routes, calling `api` (the issuer's public router) with the
/// gateway token, answering only loopback `Host`s with `port`.
pub(crate) fn router(api: Router, gateway: &DemoGateway, issuer: Arc<Issuer>, port: u16) -> Router {
    let limit = issuer.settings().body_limit_bytes;
    let state = DemoState {
        api,
        token: Arc::new(Zeroizing::new(
            gateway.gateway_token.expose_secret().to_owned(),
        )),
        issuer,
        last_phone: Arc::new(Mutex::new(None)),
    };
    Router::new()
        .route("/demo/pay", get(page))
        .route("/demo/pay.js", get(script))
        .route("/demo/api/otp-request", post(otp_request))
        .route("/demo/api/pay", post(pay))
        .route("/demo/api/payment-request", post(payment_request))
        .route("/demo/api/outbox", get(outbox))
        .layer(DefaultBodyLimit::max(limit))
        .route_layer(middleware::from_fn_with_state(
            AllowedHosts::for_port(port),
            check_host,
        ))
        .with_state(state)
}

fn with_headers(mut resp: Response, content_type: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn page() -> Response {
    with_headers(PAGE.into_response(), "text/html; charset=utf-8")
}

async fn script() -> Response {
    with_headers(SCRIPT.into_response(), "text/javascript; charset=utf-8")
}

fn amount(text: &str) -> Result<u64, ApiError> {
    pooya_protocol::parse_amount(text).map_err(|e| {
        ApiError::bad_request(
            "invalid_amount",
            format!("amount: {e} (Rials, digits with optional thousands separators)"),
        )
    })
}

/// Calls the issuer's public API as a gateway would.
async fn call_api(state: &DemoState, path: &str, body: &serde_json::Value) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(_) => return ApiError::from(crate::IssuerError::Crypto("json")).into_response(),
    };
    let bearer = Zeroizing::new(format!("Bearer {}", state.token.as_str()));
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header(CONTENT_TYPE, "application/json")
        .header(AUTHORIZATION, bearer.as_str())
        .body(Body::from(bytes));
    match req {
        Ok(req) => match state.api.clone().oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        },
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
        .into_response(),
    }
}

async fn otp_request(
    State(state): State<DemoState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: PageOtpRequest = json_body(&headers, body)?;
    let amount = amount(&req.amount)?;
    state.remember_card(&req.pan).await?;
    Ok(call_api(
        &state,
        "/v1/otp-requests",
        &json!({
            "pan": req.pan,
            "amount": amount,
            "payee_id": req.payee_id,
            "type": req.tx_type,
        }),
    )
    .await)
}

async fn pay(
    State(state): State<DemoState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: PagePay = json_body(&headers, body)?;
    let amount = amount(&req.amount)?;
    state.remember_card(&req.pan).await?;
    Ok(call_api(
        &state,
        "/v1/verify",
        &json!({
            "pan": req.pan,
            "code": req.code,
            "amount": amount,
            "payee": req.payee_id,
            "type": req.tx_type,
            "kind": "second",
        }),
    )
    .await)
}

/// A payment request URI (docs/protocol.md, "Payment request URIs") for
/// the page's form, valid for [`PAYMENT_REQUEST_SECS`] of the bank's
/// time, and its QR code rendered here as SVG (ISO/IEC 18004, error
/// correction level M, the `qrcode` crate), so the page needs no script
/// library and the phone scans exactly what the server made.
async fn payment_request(
    State(state): State<DemoState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: PagePaymentRequest = json_body(&headers, body)?;
    let amount = amount(&req.amount)?;
    let expires_at = state.issuer.now().saturating_add(PAYMENT_REQUEST_SECS);
    let request = PaymentRequest::new(amount, &req.payee_id, &req.name, req.tx_type, expires_at)
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    let uri = request.to_uri();
    let code = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M)
        .map_err(|_| ApiError::bad_request("uri_too_long", "the request does not fit a QR code"))?;
    let svg = code
        .render::<svg::Color<'_>>()
        .min_dimensions(QR_MIN_PX, QR_MIN_PX)
        .quiet_zone(true)
        .build();
    Ok(Json(json!({ "uri": uri, "svg": svg, "expires_at": expires_at })).into_response())
}

/// The one-time PIN messages (never an activation code) sent to the phone
/// of the card the page last used, newest first; none before it used one.
async fn outbox(State(state): State<DemoState>) -> Result<Response, ApiError> {
    let phone = state
        .last_phone
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut messages = match phone {
        Some(p) => state.issuer.outbox(Some(&p)).await?,
        None => Vec::new(),
    };
    messages.retain(|m| is_one_time_pin_message(&m.body));
    messages.reverse();
    messages.truncate(OUTBOX_SHOWN);
    let mut resp = Json(json!({ "messages": messages })).into_response();
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
