//! The Kannel gateway's side of the server (docs/issuer.md, "Kannel"): the
//! sender built from `sms.kannel` at start, and the two routes Kannel
//! calls, authenticated by the gateway secret:
//!
//! * `GET /v1/sms/kannel/dlr?msg=…&type=%d&tag=…`: a delivery report (the
//!   `dlr-url` of each message; `tag` is the message's HMAC under the
//!   secret), recorded against the outbox message;
//! * `GET /v1/sms/kannel/inbound?secret=…&from=%p&to=%P&text=%a` (and
//!   optionally `coding=%c&charset=%C`): a message texted to the short
//!   code, answered like `POST /v1/sms/inbound`, the reply through the
//!   durable outbox; the HTTP answer is empty (the `sms-service` has
//!   `max-messages = 0`).
//!
//! Query strings are never logged (the request log names the route only).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pooya_issuer_kannel::{
    DLR_PATH, DlrQuery, GatewaySecret, INBOUND_PATH, InboundQuery, KannelConfig, KannelError,
    KannelSender,
};
use pooya_issuer_service::settings::KannelSettings;
use pooya_issuer_service::{InboundSms, Issuer, IssuerError, ServiceError, Settings, SmsSender};

use crate::error::ApiError;
use crate::openapi::{ALWAYS, Refusals};

/// The Kannel sender and the gateway secret, read at start.
pub(crate) struct Kannel {
    sender: Arc<KannelSender>,
    secret: Arc<GatewaySecret>,
}

impl Kannel {
    /// Reads the password and the gateway secret from their files or
    /// variables and builds the sender.
    ///
    /// # Errors
    /// [`IssuerError::InvalidSettings`] for a missing `sms.kannel`
    /// section, a secret that cannot be read, or a weak gateway secret.
    pub(crate) fn from_settings(settings: &Settings) -> Result<Self, IssuerError> {
        let k: &KannelSettings = settings.sms.kannel.as_ref().ok_or_else(|| {
            IssuerError::InvalidSettings(
                "sms.sender is kannel: the sms.kannel section is missing".into(),
            )
        })?;
        let password = k.password_source()?.read("password")?;
        let secret = k.gateway_secret_source()?.read("gateway_secret")?;
        KannelSettings::check_gateway_secret(&secret)?;
        let secret = Arc::new(GatewaySecret::new(secret));
        let sender = KannelSender::new(KannelConfig {
            sendsms_url: k.sendsms_url.clone(),
            username: k.username.clone(),
            password,
            from: k.from.clone(),
            public_base_url: k.public_base_url.clone(),
            gateway_secret: Arc::clone(&secret),
            timeout: Duration::from_millis(k.timeout_ms),
        });
        tracing::info!(sendsms_url = %k.sendsms_url, "SMS through Kannel");
        Ok(Self {
            sender: Arc::new(sender),
            secret,
        })
    }

    /// The sender, for the delivery worker.
    pub(crate) fn sender(&self) -> Arc<dyn SmsSender> {
        Arc::clone(&self.sender) as Arc<dyn SmsSender>
    }

    /// The gateway secret, for the routes.
    pub(crate) fn secret(&self) -> Arc<GatewaySecret> {
        Arc::clone(&self.secret)
    }
}

/// The routes Kannel calls.
pub(crate) fn routes(secret: Arc<GatewaySecret>) -> Router<Arc<Issuer>> {
    Router::new()
        .route(DLR_PATH, get(dlr))
        .route(INBOUND_PATH, get(inbound))
        .layer(Extension(secret))
}

fn bad_query(e: KannelError) -> ApiError {
    ApiError::bad_request(e.code(), e.to_string())
}

/// 200 with an empty body: what Kannel needs, nothing it could send on.
fn empty() -> Response {
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// The Kannel routes' refusals (the operation id is the handler's name).
pub(crate) const REFUSALS: &[(&str, Refusals)] = &[
    (
        "dlr",
        &[
            &[
                (400, "invalid_query"),
                (400, "invalid_report"),
                (401, "unauthorized"),
            ],
            ALWAYS,
        ],
    ),
    (
        "inbound",
        &[
            &[
                (400, "invalid_query"),
                (400, "invalid_text"),
                (400, "invalid_phone"),
                (401, "unauthorized"),
            ],
            ALWAYS,
        ],
    ),
];

/// `GET /v1/sms/kannel/dlr` (Kannel's `dlr-url`): a delivery report,
/// authenticated by `tag`, the message id's HMAC under the gateway secret.
#[utoipa::path(get, path = "/v1/sms/kannel/dlr", tag = "sms",
    params(
        ("msg" = String, Query, description = "The outbox message's id."),
        ("type" = u32, Query, description = "Kannel's delivery report type (`%d`): 1, 2, 4, 8 or 16."),
        ("tag" = String, Query, description = "The message id's HMAC-SHA256 under the gateway secret, hex."),
    ),
    responses((status = 200, description = "Recorded (or not known: Kannel must not retry).",
        content_type = "text/plain")))]
async fn dlr(
    State(issuer): State<Arc<Issuer>>,
    Extension(secret): Extension<Arc<GatewaySecret>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = DlrQuery::parse(uri.query().unwrap_or_default()).map_err(bad_query)?;
    if !secret.verify_dlr_tag(&q.message_id, q.tag.as_bytes()) {
        return Err(ServiceError::Unauthorized.into());
    }
    // Known or not, 200: Kannel must not retry a report for a message the
    // outbox no longer holds (counted in /metrics).
    issuer.delivery_report(&q.message_id, q.report).await?;
    Ok(empty())
}

/// `GET /v1/sms/kannel/inbound` (Kannel's `sms-service`): a message
/// texted to the short code, authenticated by the gateway secret.
#[utoipa::path(get, path = "/v1/sms/kannel/inbound", tag = "sms",
    params(
        ("secret" = String, Query, description = "The gateway secret (`sms.kannel.gateway_secret_*`)."),
        ("from" = String, Query, description = "The sender (`%p`)."),
        ("to" = String, Query, description = "The number texted (`%P`)."),
        ("text" = String, Query, description = "The text (`%a`)."),
        ("coding" = Option<u32>, Query, description = "Kannel's coding (`%c`): 0 (7-bit), 1 (8-bit), 2 (UCS-2)."),
        ("charset" = Option<String>, Query, description = "The text's charset (`%C`)."),
    ),
    responses((status = 200, description = "Taken: the reply goes through the outbox.",
        content_type = "text/plain")))]
async fn inbound(
    State(issuer): State<Arc<Issuer>>,
    Extension(secret): Extension<Arc<GatewaySecret>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = InboundQuery::parse(uri.query().unwrap_or_default()).map_err(bad_query)?;
    if !secret.matches(&q.secret) {
        return Err(ServiceError::Unauthorized.into());
    }
    let body = q.text().map_err(bad_query)?;
    let req = InboundSms {
        from: q.from.clone(),
        to: q.to.clone(),
        body,
    };
    issuer.sms_inbound(req).await?;
    Ok(empty())
}
