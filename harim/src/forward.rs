//! Calling an issuer: the bulkhead (a bounded number in flight), the
//! circuit breaker, the timeout, and the answer passed back as it came.
//! Nothing is retried: `POST /v1/verify` spends codes and
//! `POST /v1/otp-requests` texts the customer, so a request is sent at
//! most once.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::breaker::{Admission, Outcome};
use crate::metrics::{ErrorKind, Metrics, Route};
use crate::table::IssuerRuntime;

/// The client Harim calls issuers with (HTTP/1.1, pooled connections).
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A new client.
pub(crate) fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// An issuer's answer, as it came.
pub(crate) struct Forwarded {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) retry_after: Option<HeaderValue>,
    pub(crate) body: Bytes,
}

/// Why there is no answer to pass back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unavailable {
    pub(crate) kind: ErrorKind,
    /// Seconds until the breaker lets a probe through, when it is open.
    pub(crate) retry_after_secs: Option<u64>,
}

/// Records a request's end in the breaker, also when the future is
/// dropped half-way (the gateway hung up): then it is `Abandoned`.
struct Pending<'a> {
    issuer: &'a IssuerRuntime,
    admission: Admission,
    clock: &'a (dyn Fn() -> u64 + Sync),
    outcome: Option<Outcome>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let outcome = self.outcome.unwrap_or(Outcome::Abandoned);
        if let Ok(mut b) = self.issuer.breaker.lock() {
            b.record(self.admission, outcome, (self.clock)());
        }
    }
}

/// Sends `body` to the issuer's `route` with Harim's token for it.
///
/// # Errors
/// [`Unavailable`]: the breaker is open, `max_in_flight` requests are on
/// their way, or the issuer did not answer within its timeout.
pub(crate) async fn forward(
    client: &HttpClient,
    issuer: &IssuerRuntime,
    route: Route,
    body: Bytes,
    clock: &(dyn Fn() -> u64 + Sync),
    metrics: &Metrics,
) -> Result<Forwarded, Unavailable> {
    let refuse = |kind: ErrorKind, retry_after_secs: Option<u64>| {
        metrics.issuer_error(&issuer.name, kind);
        Unavailable {
            kind,
            retry_after_secs,
        }
    };
    let admission = match issuer.breaker.lock() {
        Ok(mut b) => b.admit(clock()),
        Err(_) => Admission::Refuse { retry_after_ms: 0 },
    };
    if let Admission::Refuse { retry_after_ms } = admission {
        return Err(refuse(
            ErrorKind::BreakerOpen,
            Some(retry_after_ms.div_ceil(1000).max(1)),
        ));
    }
    let mut pending = Pending {
        issuer,
        admission,
        clock,
        outcome: None,
    };
    let Ok(_permit) = std::sync::Arc::clone(&issuer.permits).try_acquire_owned() else {
        // Not sent: the breaker learns nothing (a probe may go again).
        pending.outcome = Some(Outcome::Abandoned);
        return Err(refuse(ErrorKind::Saturated, None));
    };
    let Some(auth) = issuer.token.header() else {
        pending.outcome = Some(Outcome::Abandoned);
        return Err(refuse(ErrorKind::Transport, None));
    };
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}{}", issuer.base_url, route.path()))
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(AUTHORIZATION, auth)
        .body(Full::new(body));
    let Ok(req) = req else {
        pending.outcome = Some(Outcome::Abandoned);
        return Err(refuse(ErrorKind::Transport, None));
    };
    let started = Instant::now();
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| {
            if e.is_connect() {
                ErrorKind::Connect
            } else {
                ErrorKind::Transport
            }
        })?;
        let (parts, body) = resp.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|_| ErrorKind::Transport)?
            .to_bytes();
        Ok::<_, ErrorKind>(Forwarded {
            status: parts.status,
            content_type: parts.headers.get(CONTENT_TYPE).cloned(),
            retry_after: parts.headers.get(RETRY_AFTER).cloned(),
            body: bytes,
        })
    };
    let result = match tokio::time::timeout(issuer.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(ErrorKind::Timeout),
    };
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(f) => {
            metrics.issuer_answer(&issuer.name, route, f.status.as_u16(), secs);
            if f.status.is_server_error() {
                metrics.issuer_error(&issuer.name, ErrorKind::Status5xx);
                pending.outcome = Some(Outcome::Failure);
            } else {
                pending.outcome = Some(Outcome::Success);
            }
            Ok(f)
        }
        Err(kind) => {
            pending.outcome = Some(Outcome::Failure);
            Err(refuse(kind, None))
        }
    }
}
