//! Harim's HTTP API (axum): the two routed operations, reload, health and
//! metrics. docs/harim.md describes every route.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;

use crate::forward::forward;
use crate::local::{
    self, ApiError, ErrorBody, OtpRequest, OtpRequestAnswer, VerifyAnswer, VerifyBody,
};
use crate::metrics::Route;
use crate::server::ReloadReport;
use crate::server::Shared;
use crate::table::{Caller, Table};

/// Largest body read at all; the table's `body_limit_bytes` (at most this)
/// is checked after.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The router of a running Harim.
pub(crate) fn router(state: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/otp-requests", post(otp_requests))
        .route("/v1/verify", post(verify))
        .route("/v1/admin/reload", post(reload))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), observe))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
    .into_response()
}

/// Counts and logs every answer: route, status, duration; never a body.
async fn observe(State(state): State<Arc<Shared>>, req: Request, next: Next) -> Response {
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
    state.metrics.http(&route, status);
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

/// Did reading the body fail on the body-read deadline?
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

/// The body, as the issuer reads it: 408, 413, 400 `invalid_body`, 415.
fn read_body(
    table: &Table,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body too large",
        )
    };
    let body = body.map_err(|r| {
        if is_timeout(&r) {
            ApiError::request_timeout()
        } else if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::bad_request("invalid_body", "request body could not be read")
        }
    })?;
    if body.len() > table.body_limit_bytes {
        return Err(too_large());
    }
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
    Ok(body)
}

/// The caller of a request (a header that is not visible ASCII is no
/// token).
fn caller(state: &Shared, table: &Table, headers: &HeaderMap) -> Caller {
    let value = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    table.caller(&state.key, value)
}

/// `POST /v1/otp-requests`: "request dynamic PIN" on a payment page,
/// routed to the card's issuer, which texts the PIN to the card's phone.
#[utoipa::path(
    post,
    path = "/v1/otp-requests",
    tag = "routed",
    request_body(content = OtpRequest, content_type = "application/json"),
    security(("gateway" = [])),
    responses(
        (status = 202, description = "Requested: the issuer's answer, or for a BIN no bank owns the answer a bank gives a card it does not know", body = OtpRequestAnswer),
        (status = 400, description = "Malformed, as the issuer says it: `invalid_pan`, `invalid_amount`, `invalid_payee`, `missing_type`, `invalid_type`, `invalid_json`, `invalid_body`, `unknown_field`, `missing_field`, `invalid_field`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no gateway token, or an unknown one", body = ErrorBody),
        (status = 403, description = "`forbidden`: the admin's or ops's token", body = ErrorBody),
        (status = 408, description = "`request_timeout`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`unknown_payee`: the issuer has no merchant of this payee id", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the gateway's limit at Harim, or the issuer's per card or phone; `Retry-After` and `retry_after_secs`", body = ErrorBody),
        (status = 503, description = "`issuer_unavailable`: the card's bank did not answer in time, its breaker is open or it is saturated; or the issuer's own `unavailable`", body = ErrorBody),
    )
)]
pub(crate) async fn otp_requests(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    routed(&state, Route::OtpRequests, &headers, body).await
}

/// `POST /v1/verify`: is this dynamic PIN good for this payment? Routed to
/// the card's issuer.
#[utoipa::path(
    post,
    path = "/v1/verify",
    tag = "routed",
    request_body(content = VerifyBody, content_type = "application/json"),
    security(("gateway" = [])),
    responses(
        (status = 200, description = "The issuer's verdict; for a BIN no bank owns, `rejected` `wrong_code` as for a card a bank does not know", body = VerifyAnswer),
        (status = 400, description = "Malformed, as the issuer says it: `invalid_pan`, `invalid_code`, `invalid_amount`, `invalid_payee`, `missing_type`, `invalid_type`, `invalid_json`, `invalid_body`, `unknown_field`, `missing_field`, `invalid_field`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 408, description = "`request_timeout`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the gateway's limit at Harim; `Retry-After`", body = ErrorBody),
        (status = 503, description = "`issuer_unavailable`, or the issuer's own `unavailable`", body = ErrorBody),
    )
)]
pub(crate) async fn verify(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    routed(&state, Route::Verify, &headers, body).await
}

/// A gateway's request: its token, its rate limit, the body, the card's
/// issuer by BIN; then the issuer's answer as it came, Harim's
/// `issuer_unavailable`, or the unknown-card answer.
async fn routed(
    state: &Shared,
    route: Route,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // The table this request started with, to its end (a reload swaps
    // the shared one, not this).
    let table = state.table();
    let gateway = match caller(state, &table, headers) {
        Caller::Gateway(g) => g,
        Caller::Unknown => return ApiError::unauthorized().into_response(),
        Caller::Admin | Caller::Ops => return ApiError::forbidden().into_response(),
    };
    state.metrics.gateway_request(&gateway.name, route);
    let limited = match gateway.bucket.lock() {
        Ok(mut b) => b.take(state.now_ms()).err(),
        Err(_) => None,
    };
    if let Some(secs) = limited {
        state.metrics.gateway_limited(&gateway.name);
        tracing::info!(gateway = %gateway.name, route = route.path(), "rate limited");
        return ApiError::rate_limited(secs).into_response();
    }
    let body = match read_body(&table, headers, body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let issuer = local::routing_pan(&body)
        .and_then(|pan| table.routes.route(pan.expose_secret()))
        .and_then(|i| table.issuers.get(i));
    let Some(issuer) = issuer else {
        // No issuer owns this card number (or it is no card number):
        // the answer an issuer gives a card it does not know.
        let answer = match route {
            Route::OtpRequests => {
                local::unknown_otp_request(&body, state.now_secs(), table.otp_ttl_secs)
            }
            Route::Verify => local::unknown_verify(&body),
        };
        let resp = answer.unwrap_or_else(IntoResponse::into_response);
        if resp.status().is_success() {
            state.metrics.unknown_bin(route);
        }
        tracing::info!(gateway = %gateway.name, route = route.path(), status = resp.status().as_u16(), "answered by Harim: no issuer for the card");
        return resp;
    };
    let started = Instant::now();
    let clock = || state.now_ms();
    match forward(&state.client, issuer, route, body, &clock, &state.metrics).await {
        Ok(f) => {
            tracing::info!(
                gateway = %gateway.name,
                issuer = %issuer.name,
                route = route.path(),
                status = f.status.as_u16(),
                micros = started.elapsed().as_micros() as u64,
                "forwarded"
            );
            let mut resp = Response::new(Body::from(f.body));
            *resp.status_mut() = f.status;
            if let Some(ct) = f.content_type {
                resp.headers_mut().insert(CONTENT_TYPE, ct);
            }
            if let Some(ra) = f.retry_after {
                resp.headers_mut().insert(RETRY_AFTER, ra);
            }
            resp
        }
        Err(u) => {
            tracing::warn!(
                gateway = %gateway.name,
                issuer = %issuer.name,
                route = route.path(),
                kind = u.kind.as_str(),
                micros = started.elapsed().as_micros() as u64,
                "issuer unavailable"
            );
            ApiError::issuer_unavailable(u.retry_after_secs).into_response()
        }
    }
}

/// `POST /v1/admin/reload` (admin): reads the settings file again.
#[utoipa::path(
    post,
    path = "/v1/admin/reload",
    tag = "operations",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The new table is in force", body = ReloadReport),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the admin token", body = ErrorBody),
        (status = 422, description = "`invalid_settings` (naming the field) or `io`: the file is refused, the table in force is kept", body = ErrorBody),
    )
)]
pub(crate) async fn reload(State(state): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let table = state.table();
    match caller(&state, &table, &headers) {
        Caller::Admin => {}
        Caller::Unknown => return ApiError::unauthorized().into_response(),
        _ => return ApiError::forbidden().into_response(),
    }
    drop(table);
    match state.reload() {
        Ok(report) => Json(report).into_response(),
        Err(e) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()).into_response()
        }
    }
}

/// `GET /healthz` answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// `GET /healthz`: the server runs (for the load balancer).
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Running", body = Health)))]
pub(crate) async fn healthz() -> Response {
    Json(Health { status: "ok" }).into_response()
}

/// `GET /metrics` (ops or admin): Prometheus text format (docs/harim.md,
/// "Operations").
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(("ops" = []), ("admin" = [])),
    responses(
        (status = 200, description = "Prometheus text format, version 0.0.4", body = String, content_type = "text/plain"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a gateway's token", body = ErrorBody),
    )
)]
pub(crate) async fn metrics(State(state): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let table = state.table();
    match caller(&state, &table, &headers) {
        Caller::Admin | Caller::Ops => {}
        Caller::Unknown => return ApiError::unauthorized().into_response(),
        Caller::Gateway(_) => return ApiError::forbidden().into_response(),
    }
    let mut resp = state.metrics.render(&table).into_response();
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The document (docs/openapi/harim.json)", content_type = "application/json")))]
pub(crate) async fn openapi_json() -> Response {
    let mut resp = crate::openapi::document().into_response();
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The whole-request timeout (`limits.request_timeout_ms`): 408 past it.
pub(crate) async fn deadline(
    State(limit): State<std::time::Duration>,
    req: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!("request cut off at the whole-request timeout");
            ApiError::request_timeout().into_response()
        }
    }
}
