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
//!
//! Through Harim ([`DemoHarim`], issue 14 item 1): the two payment routes
//! send the same bodies over HTTP to a `pooya-harim` with the gateway's
//! Harim token instead, so the page pays with cards of every bank behind
//! it; Harim's answers (and its own errors, `issuer_unavailable`,
//! `rate_limited`, …) come back to the page unchanged. The phone panel then
//! reads every bank's `GET /v1/sms/outbox` with that bank's ops token.

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

use pooya_issuer_service::messages::{is_one_time_pin_message, persian_digits};
use pooya_issuer_service::{ApiToken, HashDomain, Issuer};
use pooya_protocol::{PaymentRequest, TxType};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::error::ApiError;
use crate::http::json_body;

mod harim;
pub use harim::{DemoBank, DemoHarim};

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

/// Where the page's payment requests go.
#[derive(Clone)]
enum Upstream {
    /// This issuer's public API router, in-process, with its gateway
    /// token.
    Local {
        api: Router,
        token: Arc<Zeroizing<String>>,
    },
    /// Harim over HTTP, with the gateway's Harim token; the phone panel
    /// reads the banks' outboxes over HTTP too (when any are listed).
    Harim(Arc<HarimLink>),
}

struct HarimLink {
    client: harim::HttpClient,
    settings: DemoHarim,
}

/// The card the page last used (a PIN request or a payment), whose
/// phone's PIN messages the panel shows.
#[derive(Clone)]
struct LastCard {
    /// Its last four digits, as a Harim PIN SMS names the card.
    last4: Zeroizing<String>,
    /// When the page used it, this issuer's clock.
    since: u64,
    /// Its registered phone: from this issuer's store when the card is
    /// this bank's; else learned from the first PIN SMS naming the card
    /// that a bank of the demo sent since then.
    phone: Option<String>,
}

#[derive(Clone)]
struct DemoState {
    upstream: Upstream,
    issuer: Arc<Issuer>,
    last_card: Arc<Mutex<Option<LastCard>>>,
}

impl DemoState {
    /// Remembers `pan`'s card, and its phone if this bank knows the card.
    async fn remember_card(&self, pan: &str) -> Result<(), ApiError> {
        let Ok(pan) = pooya_protocol::Pan::parse(pan) else {
            return Ok(());
        };
        let digits = pan.expose_secret();
        let hash = self
            .issuer
            .keys()
            .keyed_hash(HashDomain::Pan, digits.as_bytes())?;
        let phone = self
            .issuer
            .store()
            .harim_card(hash)
            .await?
            .map(|card| card.phone);
        let last4 = Zeroizing::new(
            digits
                .get(digits.len().saturating_sub(4)..)
                .unwrap_or_default()
                .to_owned(),
        );
        let mut last = self.last_card.lock().unwrap_or_else(|e| e.into_inner());
        *last = Some(LastCard {
            last4,
            since: self.issuer.now(),
            phone,
        });
        Ok(())
    }

    fn last_card(&self) -> Option<LastCard> {
        self.last_card
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records the phone learned for `card`, if the page has not used
    /// another card meanwhile.
    fn learned_phone(&self, card: &LastCard, phone: String) {
        let mut last = self.last_card.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = last.as_mut()
            && l.since == card.since
            && *l.last4 == *card.last4
        {
            l.phone = Some(phone);
        }
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

/// What the demo gateway calls: this issuer's router, or Harim.
pub(crate) enum DemoUpstream<'a> {
    /// `api` (the issuer's public router) with the gateway token.
    Local(Router, &'a DemoGateway),
    /// Harim over HTTP.
    Harim(&'a DemoHarim),
}

/// The demo routes, calling `upstream`, answering only loopback `Host`s
/// with `port`.
pub(crate) fn router(upstream: DemoUpstream<'_>, issuer: Arc<Issuer>, port: u16) -> Router {
    let limit = issuer.settings().body_limit_bytes;
    let upstream = match upstream {
        DemoUpstream::Local(api, gateway) => Upstream::Local {
            api,
            token: Arc::new(Zeroizing::new(
                gateway.gateway_token.expose_secret().to_owned(),
            )),
        },
        DemoUpstream::Harim(settings) => Upstream::Harim(Arc::new(HarimLink {
            client: harim::client(),
            settings: settings.clone(),
        })),
    };
    let state = DemoState {
        upstream,
        issuer,
        last_card: Arc::new(Mutex::new(None)),
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

/// Calls the issuer's public API (or Harim's, the same two routes) as a
/// gateway would.
async fn call_api(state: &DemoState, path: &str, body: &serde_json::Value) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(_) => return ApiError::from(crate::IssuerError::Crypto("json")).into_response(),
    };
    let (api, token) = match &state.upstream {
        Upstream::Local { api, token } => (api, token),
        Upstream::Harim(link) => return call_harim(link, path, bytes).await,
    };
    let bearer = Zeroizing::new(format!("Bearer {}", token.as_str()));
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header(CONTENT_TYPE, "application/json")
        .header(AUTHORIZATION, bearer.as_str())
        .body(Body::from(bytes));
    match req {
        Ok(req) => match api.clone().oneshot(req).await {
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

/// Sends a gateway request to Harim and passes its answer back as it
/// came (status, `Content-Type`, `Retry-After`, body): the bank's answer,
/// or Harim's own error. No answer from Harim is 502 `harim_unreachable`
/// (504 `harim_timeout` past the timeout).
async fn call_harim(link: &HarimLink, path: &str, body: Vec<u8>) -> Response {
    let url = format!("{}{path}", link.settings.base_url);
    let sent = harim::exchange(
        &link.client,
        axum::http::Method::POST,
        &url,
        &link.settings.token,
        Some(body),
        link.settings.timeout,
    )
    .await;
    match sent {
        Ok(a) => {
            let mut resp = Response::new(Body::from(a.body));
            *resp.status_mut() = a.status;
            if let Some(ct) = a.content_type {
                resp.headers_mut().insert(CONTENT_TYPE, ct);
            }
            if let Some(ra) = a.retry_after {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, ra);
            }
            resp
        }
        Err(why) => {
            tracing::warn!(
                route = path,
                ?why,
                "the demo gateway got no answer from Harim"
            );
            harim_error(why).into_response()
        }
    }
}

fn harim_error(why: harim::Unanswered) -> ApiError {
    match why {
        harim::Unanswered::Timeout => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "harim_timeout",
            "Harim did not answer in time",
        ),
        harim::Unanswered::Transport | harim::Unanswered::TooLarge => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "harim_unreachable",
            "Harim could not be reached",
        ),
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
/// From this issuer's store, or through Harim with banks listed, from
/// every bank's ops API (`GET /v1/sms/outbox?phone=…`), each message
/// naming its bank; `unreachable` names the banks that did not answer.
async fn outbox(State(state): State<DemoState>) -> Result<Response, ApiError> {
    let card = state.last_card();
    let banks = match &state.upstream {
        Upstream::Harim(link) if !link.settings.banks.is_empty() => Some(Arc::clone(link)),
        _ => None,
    };
    let (mut messages, unreachable) = match (card, banks) {
        (None, _) => (Vec::new(), Vec::new()),
        (Some(card), None) => {
            let mut messages = Vec::new();
            if let Some(p) = &card.phone {
                for m in state.issuer.outbox(Some(p)).await? {
                    messages.push(PanelSms {
                        bank: None,
                        to: m.to,
                        from: m.from,
                        body: m.body,
                        created_at: m.created_at,
                    });
                }
            }
            (messages, Vec::new())
        }
        (Some(card), Some(link)) => banks_outbox(&state, &link, &card).await,
    };
    messages.retain(|m| is_one_time_pin_message(&m.body));
    // Outboxes list oldest first; the same second keeps that order, reversed.
    messages.reverse();
    messages.sort_by_key(|m| std::cmp::Reverse(m.created_at));
    messages.truncate(OUTBOX_SHOWN);
    let mut resp =
        Json(json!({ "messages": messages, "unreachable": unreachable })).into_response();
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// A message on the phone panel.
#[derive(serde::Serialize, Deserialize)]
struct PanelSms {
    /// The bank that sent it, through Harim with banks listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bank: Option<String>,
    to: String,
    from: String,
    body: Zeroizing<String>,
    created_at: u64,
}

#[derive(Deserialize)]
struct OutboxAnswer {
    messages: Vec<PanelSms>,
}

/// How much earlier than the page's request a bank's clock may date the
/// PIN SMS that tells the panel a card's phone, seconds.
const CLOCK_SLACK_SECS: u64 = 120;

/// Does this message's first line name the card ending in `last4`, as a
/// Harim PIN SMS does (`… with card 0001`, `… با کارت ۰۰۰۱`)?
fn names_card(body: &str, last4: &str) -> bool {
    let first = body.lines().next().unwrap_or_default();
    is_one_time_pin_message(body)
        && (first.ends_with(&format!(" with card {last4}"))
            || first.ends_with(&format!(" با کارت {}", persian_digits(last4))))
}

/// `phone` for a query string (RFC 3986 §2.1: `+` and anything but
/// unreserved characters percent-encoded).
fn query_value(phone: &str) -> String {
    let mut out = String::with_capacity(phone.len() + 4);
    for b in phone.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One bank's outbox (`phone` or all of it), or `None` when it did not
/// answer well.
async fn bank_outbox(
    link: &HarimLink,
    bank: &DemoBank,
    phone: Option<&str>,
) -> Option<Vec<PanelSms>> {
    let url = match phone {
        Some(p) => format!("{}/v1/sms/outbox?phone={}", bank.base_url, query_value(p)),
        None => format!("{}/v1/sms/outbox", bank.base_url),
    };
    let answer = harim::exchange(
        &link.client,
        axum::http::Method::GET,
        &url,
        &bank.ops_token,
        None,
        link.settings.timeout,
    )
    .await;
    match answer {
        Ok(a) if a.status == StatusCode::OK => {
            match serde_json::from_slice::<OutboxAnswer>(&a.body) {
                Ok(o) => Some(
                    o.messages
                        .into_iter()
                        .map(|mut m| {
                            m.bank = Some(bank.name.clone());
                            m
                        })
                        .collect(),
                ),
                Err(_) => {
                    tracing::warn!(bank = %bank.name, "a bank's outbox answer is not readable");
                    None
                }
            }
        }
        Ok(a) => {
            tracing::warn!(bank = %bank.name, status = a.status.as_u16(), "a bank refused its outbox");
            None
        }
        Err(why) => {
            tracing::debug!(bank = %bank.name, ?why, "a bank's outbox did not answer");
            None
        }
    }
}

/// The PIN messages to the phone of `card` from every bank; first learns
/// the phone, when this issuer does not know the card, from the newest
/// PIN SMS naming it that a bank sent since the page used it.
async fn banks_outbox(
    state: &DemoState,
    link: &HarimLink,
    card: &LastCard,
) -> (Vec<PanelSms>, Vec<String>) {
    let mut unreachable = Vec::new();
    let phone = match &card.phone {
        Some(p) => p.clone(),
        None => {
            let mut newest: Option<PanelSms> = None;
            for bank in &link.settings.banks {
                let Some(all) = bank_outbox(link, bank, None).await else {
                    unreachable.push(bank.name.clone());
                    continue;
                };
                for m in all {
                    if m.created_at.saturating_add(CLOCK_SLACK_SECS) >= card.since
                        && names_card(&m.body, &card.last4)
                        && newest.as_ref().is_none_or(|n| m.created_at > n.created_at)
                    {
                        newest = Some(m);
                    }
                }
            }
            match newest {
                Some(m) => {
                    state.learned_phone(card, m.to.clone());
                    m.to
                }
                None => return (Vec::new(), unreachable),
            }
        }
    };
    let mut messages = Vec::new();
    unreachable.clear();
    for bank in &link.settings.banks {
        match bank_outbox(link, bank, Some(&phone)).await {
            Some(ms) => messages.extend(ms),
            None => unreachable.push(bank.name.clone()),
        }
    }
    (messages, unreachable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_harim_pin_sms_names_its_card_in_either_language() {
        let en = "Bank: dynamic PIN for a purchase with card 0001\nPayee: Shop\nAmount: 1 Rials\n1234567";
        let fa = "بانک: رمز پویای خرید با کارت ۰۰۰۱\nپذیرنده: Shop";
        assert!(names_card(en, "0001"));
        assert!(names_card(fa, "0001"));
        assert!(!names_card(en, "1001"));
        assert!(!names_card(fa, "0002"));
        // Not a PIN message: an activation code never names a phone here.
        assert!(!names_card(
            "Your activation code ... with card 0001",
            "0001"
        ));
    }

    #[test]
    fn a_phone_is_percent_encoded_for_the_query() {
        assert_eq!(query_value("+989121234567"), "%2B989121234567");
        assert_eq!(query_value("0912 123"), "0912%20123");
    }
}
