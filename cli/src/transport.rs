//! The desktop [`Transport`]: HTTP(S) POSTs with `ureq`.

use std::time::Duration;

use pooya_core::activation::MAX_RESPONSE_BYTES;
use pooya_core::hooks::{HostError, HttpResponse, Transport};

/// POSTs JSON with `ureq` (rustls for `https://`). HTTP error statuses
/// are answers, not errors; the body is read up to the core's limit
/// plus one byte, so an oversized answer is still seen as oversized.
#[derive(Debug, Default, Clone, Copy)]
pub struct UreqTransport;

impl Transport for UreqTransport {
    fn post_json(
        &self,
        url: &str,
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<HttpResponse, HostError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(timeout_ms)))
            .user_agent(concat!("pooya/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut resp = agent
            .post(url)
            .content_type("application/json")
            .send(body)
            .map_err(|e| HostError::new(describe(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES as u64 + 1)
            .read_to_vec()
            .map_err(|e| HostError::new(describe(&e)))?;
        Ok(HttpResponse { status, body })
    }
}

/// A short description of a transport failure (no bodies, no secrets:
/// only the kind of failure and the host from the URL we built).
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timed out".to_owned(),
        ureq::Error::Io(io) => format!("connection failed ({})", io.kind()),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::BodyExceedsLimit(_) => "answer too large".to_owned(),
        other => other.to_string(),
    }
}
