//! The HTTP API (axum): routes, role checks, strict JSON bodies, error
//! answers, metrics. docs/issuer.md describes every route.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use pooya_protocol::activation::SealedActivationRequest;
use pooya_protocol::wire::{JsonRejection, VerifyRequest};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower_http::catch_panic::CatchPanicLayer;

use pooya_issuer_service::merchants::MerchantRequest;
use pooya_issuer_service::store::Stored;
use pooya_issuer_service::{
    EnrollmentRequest, InboundSms, Issuer, OtpRequest, Role, ServiceError, UnblockRequest,
};

use crate::error::ApiError;
use crate::openapi::{ALWAYS, AUTH, BODY, Refusals};

type Shared = State<Arc<Issuer>>;

/// The router of a running issuer.
pub(crate) fn router(
    issuer: Arc<Issuer>,
    kannel: Option<Arc<pooya_issuer_kannel::GatewaySecret>>,
) -> Router {
    let limit = issuer.settings().body_limit_bytes;
    let served = Arc::new(crate::openapi::served(kannel.is_some()));
    let routes = match kannel {
        Some(secret) => crate::kannel::routes(secret),
        None => Router::new(),
    };
    routes
        .route("/v1/enrollments", post(enroll))
        .route("/v1/activations", post(activate))
        .route("/v1/verify", post(verify))
        .route("/v1/cards/unblock", post(unblock))
        .route("/v1/sms/inbound", post(sms_inbound))
        .route("/v1/otp-requests", post(otp_request))
        .route("/v1/sms/outbox", get(outbox))
        .route(
            "/v1/merchants/{payee_id}",
            put(put_merchant).get(get_merchant),
        )
        // Signed time (issue 13, item 1).
        .route("/v1/time", get(time_get).post(time_post))
        // A card's whole life (issue 13, item 2).
        .route("/v1/cards/deactivate", post(card_deactivate))
        .route("/v1/cards/suspend", post(card_suspend))
        .route("/v1/cards/resume", post(card_resume))
        .route("/v1/cards/revoke", post(card_revoke))
        .route("/v1/cards/remove", post(card_remove))
        .route("/v1/cards/status", post(card_status))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        // The OpenAPI contract (issue 14, item 2).
        .route("/openapi.json", get(openapi_json))
        .layer(axum::Extension(served))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&issuer), observe))
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(issuer)
}

// ---- the OpenAPI contract (docs/issuer.md, "The OpenAPI contract") ----

/// Each operation's refusals (the operation id is the handler's name),
/// written beside the handler; crate::openapi puts them in the document.
pub(crate) const REFUSALS: &[(&str, Refusals)] = &[
    ("enroll", ENROLL),
    ("activate", ACTIVATE),
    ("verify", VERIFY),
    ("unblock", UNBLOCK),
    ("sms_inbound", SMS_INBOUND),
    ("otp_request", OTP_REQUEST),
    ("outbox", OUTBOX),
    ("put_merchant", PUT_MERCHANT),
    ("get_merchant", GET_MERCHANT),
    ("time_get", TIME_GET),
    ("time_post", TIME_POST),
    ("card_deactivate", CARD_CHANGE),
    ("card_suspend", CARD_CHANGE_REVOCABLE),
    ("card_resume", CARD_CHANGE_REVOCABLE),
    ("card_revoke", CARD_CHANGE),
    ("card_remove", CARD_REQUEST),
    ("card_status", CARD_REQUEST),
    ("healthz", &[ALWAYS]),
    ("metrics", &[AUTH, ALWAYS]),
    ("openapi_json", &[ALWAYS]),
];

/// `GET /openapi.json` (public): this issuer's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this issuer's routes.",
        content_type = "application/json", body = Object)))]
async fn openapi_json(axum::Extension(doc): axum::Extension<Arc<String>>) -> Response {
    let mut resp = doc.as_str().to_owned().into_response();
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

// ---- end of the OpenAPI contract ----------------------------------------

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
    .into_response()
}

async fn observe(State(issuer): Shared, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "other".to_owned());
    let method = req.method().clone();
    let resp = next.run(req).await;
    let micros = started.elapsed().as_micros() as u64;
    let status = resp.status().as_u16();
    issuer.metrics().request(&route, status, micros);
    tracing::debug!(%method, route, status, micros, "request");
    resp
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// Parses a JSON body strictly: `application/json`, within the size
/// limit, no unknown fields. Error messages never echo values.
pub(crate) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|r| {
        if is_timeout(&r) {
            request_timeout()
        } else if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body too large",
            )
        } else {
            ApiError::bad_request("invalid_body", "request body could not be read")
        }
    })?;
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json",
        ));
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::from(JsonRejection::classify(&e)))
}

/// Did reading the body fail on the body-read deadline
/// (`limits.body_read_timeout_ms`)?
fn is_timeout(r: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(r);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// 408 `request_timeout` (RFC 9110 §15.5.9): the request was not received
/// or answered in time.
fn request_timeout() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "the request took too long",
    )
}

/// The whole-request timeout (`limits.request_timeout_ms`): from a complete
/// header to the answer, body read included. A request past it is answered
/// 408 `request_timeout`; a write job it queued still completes in the
/// writer, as after a client hang-up.
pub(crate) async fn deadline(
    State(limit): State<std::time::Duration>,
    req: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!("request cut off at the whole-request timeout");
            request_timeout().into_response()
        }
    }
}

/// The prologue of every authenticated JSON route: the role's token first
/// (401/403 before any body is read), then the body.
fn authorized_json<T: DeserializeOwned>(
    issuer: &Issuer,
    role: Role,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    authorize(issuer, headers, role)?;
    json_body(headers, body)
}

/// The bearer token's role check (401/403).
pub(crate) fn authorize(issuer: &Issuer, headers: &HeaderMap, role: Role) -> Result<(), ApiError> {
    // A header that is not visible ASCII is no token.
    let value = match headers.get(AUTHORIZATION) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| ServiceError::Unauthorized)?),
    };
    Ok(issuer.authorize(value, role)?)
}

const ENROLL: Refusals = &[
    AUTH,
    BODY,
    &[(400, "invalid_pan"), (400, "invalid_phone")],
    ALWAYS,
];

/// `POST /v1/enrollments` (atm): a card registered at an ATM; for `app`
/// the activation code goes out by SMS.
#[utoipa::path(post, path = "/v1/enrollments", tag = "atm",
    request_body = EnrollmentRequest,
    responses((status = 201, description = "Enrolled.", body = pooya_issuer_service::EnrollmentResponse)),
    security(("atm" = [])))]
async fn enroll(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: EnrollmentRequest = authorized_json(&issuer, Role::Atm, &headers, body)?;
    let resp = issuer.enroll(req).await?;
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

const ACTIVATE: Refusals = &[
    BODY,
    &[
        (400, "not_sealed_to_issuer"),
        (400, "invalid_request"),
        (400, "invalid_phone"),
        (400, "invalid_code"),
        (400, "invalid_device_key"),
        (400, "invalid_device_label"),
        (403, "activation_refused"),
    ],
    ALWAYS,
];

/// `POST /v1/activations` (public): the phone's sealed activation request
/// (docs/protocol.md, "Activation").
#[utoipa::path(post, path = "/v1/activations", tag = "phone",
    request_body = SealedActivationRequest,
    responses((status = 201, description = "Activated: the card's seed agreement and policies.",
        body = pooya_protocol::activation::ActivationResponse)))]
async fn activate(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: SealedActivationRequest = json_body(&headers, body)?;
    let resp = issuer.activate(req).await?;
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

const VERIFY: Refusals = &[
    AUTH,
    BODY,
    &[
        (400, "invalid_pan"),
        (400, "invalid_code"),
        (400, "invalid_amount"),
        (400, "invalid_payee"),
        (400, "invalid_type"),
        (400, "missing_type"),
    ],
    ALWAYS,
];

/// `POST /v1/verify` (gateway): is this dynamic PIN good for this payment?
#[utoipa::path(post, path = "/v1/verify", tag = "gateway",
    request_body = VerifyRequest,
    responses((status = 200, description = "The verdict (a refused PIN is a 200 too).",
        body = pooya_protocol::wire::VerifyResponse)),
    security(("gateway" = [])))]
async fn verify(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: VerifyRequest = authorized_json(&issuer, Role::Gateway, &headers, body)?;
    let resp = issuer.verify(req).await?;
    Ok(Json(resp).into_response())
}

const UNBLOCK: Refusals = &[
    AUTH,
    BODY,
    &[(400, "invalid_pan"), (404, "card_not_found")],
    ALWAYS,
];

/// `POST /v1/cards/unblock` (ops): lifts a block of a card's PINs.
#[utoipa::path(post, path = "/v1/cards/unblock", tag = "ops",
    request_body = UnblockRequest,
    responses((status = 200, description = "Unblocked.", body = pooya_issuer_service::UnblockResponse)),
    security(("ops" = [])))]
async fn unblock(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: UnblockRequest = authorized_json(&issuer, Role::Ops, &headers, body)?;
    let resp = issuer.unblock(req).await?;
    Ok(Json(resp).into_response())
}

const SMS_INBOUND: Refusals = &[AUTH, BODY, &[(400, "invalid_phone")], ALWAYS];

/// `POST /v1/sms/inbound` (sms): a message texted to the short code.
#[utoipa::path(post, path = "/v1/sms/inbound", tag = "sms",
    request_body = InboundSms,
    responses((status = 200, description = "Taken (the reply goes through the outbox).",
        body = pooya_issuer_service::InboundAnswer)),
    security(("sms" = [])))]
async fn sms_inbound(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: InboundSms = authorized_json(&issuer, Role::Sms, &headers, body)?;
    let resp = issuer.sms_inbound(req).await?;
    Ok(Json(resp).into_response())
}

const OTP_REQUEST: Refusals = &[
    AUTH,
    BODY,
    &[
        (400, "invalid_pan"),
        (400, "invalid_amount"),
        (400, "invalid_payee"),
        (400, "invalid_type"),
        (400, "missing_type"),
        (422, "unknown_payee"),
        (429, "rate_limited"),
    ],
    ALWAYS,
];

/// `POST /v1/otp-requests` (gateway): Harim's "request dynamic PIN".
#[utoipa::path(post, path = "/v1/otp-requests", tag = "gateway",
    request_body = OtpRequest,
    responses((status = 202, description = "Requested: the same answer whether or not the card is known.",
        body = pooya_issuer_service::OtpRequestAnswer)),
    security(("gateway" = [])))]
async fn otp_request(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: OtpRequest = authorized_json(&issuer, Role::Gateway, &headers, body)?;
    let answer = issuer.otp_request(req).await?;
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// The `{payee_id}` of a merchant route; a path that is not UTF-8 is an
/// invalid payee id like any other.
fn path_payee(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id).map_err(|_| {
        ApiError::bad_request(
            "invalid_payee",
            "the payee id in the path could not be read",
        )
    })
}

const PUT_MERCHANT: Refusals = &[
    AUTH,
    BODY,
    &[
        (400, "invalid_payee"),
        (400, "invalid_merchant_name"),
        (400, "mixed_script_merchant_name"),
    ],
    ALWAYS,
];

/// `PUT /v1/merchants/{payee_id}` (ops): registers or renames a merchant.
#[utoipa::path(put, path = "/v1/merchants/{payee_id}", tag = "ops",
    params(("payee_id" = String, Path, description = "The payee id bound into transaction PINs.")),
    request_body = MerchantRequest,
    responses(
        (status = 201, description = "Registered.", body = pooya_issuer_service::merchants::Merchant),
        (status = 200, description = "Renamed.", body = pooya_issuer_service::merchants::Merchant)),
    security(("ops" = [])))]
async fn put_merchant(
    State(issuer): Shared,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: MerchantRequest = authorized_json(&issuer, Role::Ops, &headers, body)?;
    let id = path_payee(path)?;
    let (stored, merchant) = issuer.put_merchant(&id, req).await?;
    let status = match stored {
        Stored::Created => StatusCode::CREATED,
        Stored::Updated => StatusCode::OK,
    };
    Ok((status, Json(merchant)).into_response())
}

const GET_MERCHANT: Refusals = &[
    AUTH,
    &[(400, "invalid_payee"), (404, "unknown_payee")],
    ALWAYS,
];

/// `GET /v1/merchants/{payee_id}` (ops).
#[utoipa::path(get, path = "/v1/merchants/{payee_id}", tag = "ops",
    params(("payee_id" = String, Path, description = "The payee id bound into transaction PINs.")),
    responses((status = 200, description = "The merchant.", body = pooya_issuer_service::merchants::Merchant)),
    security(("ops" = [])))]
async fn get_merchant(
    State(issuer): Shared,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&issuer, &headers, Role::Ops)?;
    let id = path_payee(path)?;
    Ok(Json(issuer.get_merchant(&id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboxQuery {
    phone: Option<String>,
}

/// `GET /v1/sms/outbox` answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OutboxAnswer {
    /// The development recorder's messages, oldest first.
    messages: Vec<pooya_issuer_service::OutboxEntry>,
}

const OUTBOX: Refusals = &[
    AUTH,
    &[(400, "invalid_query"), (400, "invalid_phone")],
    ALWAYS,
];

/// `GET /v1/sms/outbox` (ops): the development SMS recorder.
#[utoipa::path(get, path = "/v1/sms/outbox", tag = "ops",
    params(("phone" = Option<String>, Query, description = "Only messages to this number.")),
    responses((status = 200, description = "The messages.", body = OutboxAnswer)),
    security(("ops" = [])))]
async fn outbox(State(issuer): Shared, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    authorize(&issuer, &headers, Role::Ops)?;
    let Query(q) = Query::<OutboxQuery>::try_from_uri(&uri)
        .map_err(|_| ApiError::bad_request("invalid_query", "the only query parameter is phone"))?;
    let messages = issuer.outbox(q.phone.as_deref()).await?;
    Ok(Json(OutboxAnswer { messages }).into_response())
}

// ---- signed time (docs/issuer.md, "Signed time") ----------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeQuery {
    nonce: String,
}

const TIME_GET: Refusals = &[&[(400, "invalid_query"), (400, "invalid_nonce")], ALWAYS];

/// `GET /v1/time?nonce=HEX`: public.
#[utoipa::path(get, path = "/v1/time", tag = "phone",
    params(("nonce" = String, Query, description = "16 to 64 bytes, hex.")),
    responses((status = 200, description = "The bank's signed time.", body = pooya_protocol::time::TimeAnswer)))]
async fn time_get(State(issuer): Shared, uri: Uri) -> Result<Response, ApiError> {
    let Query(q) = Query::<TimeQuery>::try_from_uri(&uri).map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            "the only query parameter is nonce, and it is required",
        )
    })?;
    Ok(Json(issuer.signed_time(&q.nonce)?).into_response())
}

const TIME_POST: Refusals = &[BODY, &[(400, "invalid_nonce")], ALWAYS];

/// `POST /v1/time` `{"nonce"}`: the same answer, for a phone whose
/// transport hook only posts JSON.
#[utoipa::path(post, path = "/v1/time", tag = "phone",
    request_body = pooya_protocol::time::TimeRequest,
    responses((status = 200, description = "The bank's signed time.", body = pooya_protocol::time::TimeAnswer)))]
async fn time_post(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: pooya_protocol::time::TimeRequest = json_body(&headers, body)?;
    Ok(Json(issuer.signed_time(&req.nonce)?).into_response())
}

// ---- end of signed time ------------------------------------------------

// ---- a card's whole life (docs/issuer.md, "A card's whole life") -------

const CARD_CHANGE: Refusals = &[
    AUTH,
    BODY,
    &[(400, "invalid_pan"), (404, "card_not_found")],
    ALWAYS,
];

/// A revoked card's app is neither suspended nor resumed (409).
const CARD_CHANGE_REVOCABLE: Refusals = &[
    AUTH,
    BODY,
    &[
        (400, "invalid_pan"),
        (404, "card_not_found"),
        (409, "card_revoked"),
    ],
    ALWAYS,
];

const CARD_REQUEST: Refusals = &[
    BODY,
    &[
        (400, "invalid_card_id"),
        (400, "invalid_proof"),
        (400, "stale_request"),
        (404, "card_not_found"),
    ],
    ALWAYS,
];

async fn card_change(
    issuer: &Issuer,
    role: Role,
    cause: pooya_issuer_service::StatusCause,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: pooya_issuer_service::card_life::CardStatusRequest =
        authorized_json(issuer, role, headers, body)?;
    Ok(Json(issuer.change_card_status(req, cause).await?).into_response())
}

/// `POST /v1/cards/deactivate` (atm): a lost phone, at an ATM.
#[utoipa::path(post, path = "/v1/cards/deactivate", tag = "atm",
    request_body = pooya_issuer_service::card_life::CardStatusRequest,
    responses((status = 200, description = "Revoked at the ATM. `changed` is false when it was so already.",
        body = pooya_issuer_service::card_life::CardStatusResponse)),
    security(("atm" = [])))]
async fn card_deactivate(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    use pooya_issuer_service::StatusCause;
    card_change(
        &issuer,
        Role::Atm,
        StatusCause::AtmDeactivation,
        &headers,
        body,
    )
    .await
}

/// `POST /v1/cards/suspend` (ops).
#[utoipa::path(post, path = "/v1/cards/suspend", tag = "ops",
    request_body = pooya_issuer_service::card_life::CardStatusRequest,
    responses((status = 200, description = "Suspended. `changed` is false when it was so already.",
        body = pooya_issuer_service::card_life::CardStatusResponse)),
    security(("ops" = [])))]
async fn card_suspend(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    use pooya_issuer_service::StatusCause;
    card_change(&issuer, Role::Ops, StatusCause::OpsSuspend, &headers, body).await
}

/// `POST /v1/cards/resume` (ops).
#[utoipa::path(post, path = "/v1/cards/resume", tag = "ops",
    request_body = pooya_issuer_service::card_life::CardStatusRequest,
    responses((status = 200, description = "Resumed. `changed` is false when it was so already.",
        body = pooya_issuer_service::card_life::CardStatusResponse)),
    security(("ops" = [])))]
async fn card_resume(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    use pooya_issuer_service::StatusCause;
    card_change(&issuer, Role::Ops, StatusCause::OpsResume, &headers, body).await
}

/// `POST /v1/cards/revoke` (ops).
#[utoipa::path(post, path = "/v1/cards/revoke", tag = "ops",
    request_body = pooya_issuer_service::card_life::CardStatusRequest,
    responses((status = 200, description = "Revoked. `changed` is false when it was so already.",
        body = pooya_issuer_service::card_life::CardStatusResponse)),
    security(("ops" = [])))]
async fn card_revoke(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    use pooya_issuer_service::StatusCause;
    card_change(&issuer, Role::Ops, StatusCause::OpsRevoke, &headers, body).await
}

/// `POST /v1/cards/remove` (public, proved with the card's device key).
#[utoipa::path(post, path = "/v1/cards/remove", tag = "phone",
    request_body = pooya_protocol::card_request::CardRequest,
    responses((status = 200, description = "Removed: the state after the removal.",
        body = pooya_protocol::card_request::CardStatusAnswer)))]
async fn card_remove(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    use pooya_protocol::card_request::{CardAction, CardRequest};
    let req: CardRequest = json_body(&headers, body)?;
    Ok(Json(issuer.card_request(CardAction::Remove, req).await?).into_response())
}

/// `POST /v1/cards/status` (public, proved with the card's device key).
#[utoipa::path(post, path = "/v1/cards/status", tag = "phone",
    request_body = pooya_protocol::card_request::CardRequest,
    responses((status = 200, description = "The card's app state.",
        body = pooya_protocol::card_request::CardStatusAnswer)))]
async fn card_status(
    State(issuer): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    use pooya_protocol::card_request::{CardAction, CardRequest};
    let req: CardRequest = json_body(&headers, body)?;
    Ok(Json(issuer.card_request(CardAction::Status, req).await?).into_response())
}

// ---- end of a card's whole life ----------------------------------------

/// `GET /healthz` answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

/// `GET /healthz` (public): the database answers and takes writes.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Healthy.", body = Health)))]
async fn healthz(State(issuer): Shared) -> Response {
    match issuer.health().await {
        Ok(()) => Json(Health { status: "ok" }).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `GET /metrics` (ops): Prometheus text exposition format 0.0.4.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "The metrics.",
        content_type = "text/plain; version=0.0.4; charset=utf-8", body = String)),
    security(("ops" = [])))]
async fn metrics(State(issuer): Shared, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&issuer, &headers, Role::Ops)?;
    let text = issuer.render_metrics().await;
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}
