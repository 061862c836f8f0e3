//! The demo gateway through Harim (issue 14, item 1): its two payment
//! requests sent over HTTP to a `pooya-harim` (docs/harim.md) with the
//! gateway's Harim token, and the phone panel read from every bank's ops
//! API (`GET /v1/sms/outbox`). Settings come from a JSON file
//! (docs/issuer.md, "The demo gateway through Harim"); no secret is in it.
//!
//! The client is hyper-util's pooled HTTP/1.1 client, the one pooya-harim
//! calls issuers with: async, so a slow Harim or bank holds no thread.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use zeroize::Zeroizing;

use pooya_issuer_service::{ApiToken, IssuerError};

/// The longest answer the demo gateway reads from Harim or a bank.
const ANSWER_LIMIT: usize = 1 << 20;
/// The default for `timeout_ms`.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// Where the demo gateway sends its requests instead of this issuer's own
/// router, and whose outboxes the phone panel reads.
#[derive(Clone)]
pub struct DemoHarim {
    /// Harim's base URL, `http://host:port`.
    pub base_url: String,
    /// The gateway's token at Harim.
    pub token: ApiToken,
    /// Every bank of the demo, read for the phone panel; none reads this
    /// issuer's own store, as without Harim.
    pub banks: Vec<DemoBank>,
    /// The longest wait for Harim's or a bank's answer.
    pub timeout: Duration,
}

/// A bank whose outbox the phone panel reads.
#[derive(Clone)]
pub struct DemoBank {
    /// A name for the panel and the logs.
    pub name: String,
    /// The bank's issuer, `http://host:port`.
    pub base_url: String,
    /// An `ops` token of that issuer (`GET /v1/sms/outbox`).
    pub ops_token: ApiToken,
}

impl fmt::Debug for DemoHarim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoHarim")
            .field("base_url", &self.base_url)
            .field("token", &self.token)
            .field("banks", &self.banks)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl fmt::Debug for DemoBank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoBank")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("ops_token", &self.ops_token)
            .finish()
    }
}

/// Where a token is read: a file's whole text (one final newline
/// dropped) or an environment variable; exactly one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenSource {
    file: Option<PathBuf>,
    env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HarimFile {
    base_url: String,
    token: TokenSource,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BankFile {
    name: String,
    base_url: String,
    ops_token: TokenSource,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    harim: HarimFile,
    #[serde(default)]
    banks: Vec<BankFile>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

fn invalid(field: &str, why: &str) -> IssuerError {
    IssuerError::InvalidSettings(format!("demo Harim settings: {field}: {why}"))
}

/// Checks a base URL: `http://host:port`, no credentials, path or query.
/// Returns it without a final `/`.
fn base_url(field: &str, text: &str) -> Result<String, IssuerError> {
    let uri: Uri = text
        .parse()
        .map_err(|_| invalid(field, "not a URL (http://host:port)"))?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid(field, "must be http://host:port"));
    }
    let Some(authority) = uri.authority() else {
        return Err(invalid(field, "must be http://host:port"));
    };
    if authority.as_str().contains('@') {
        return Err(invalid(field, "no credentials in the URL"));
    }
    if authority.port_u16().is_none() {
        return Err(invalid(field, "needs a port"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(invalid(field, "no path or query"));
    }
    Ok(format!("http://{authority}"))
}

/// Reads a token: 16–256 visible ASCII characters.
fn token(
    field: &str,
    source: &TokenSource,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ApiToken, IssuerError> {
    let text = Zeroizing::new(match (&source.file, &source.env) {
        (Some(path), None) => std::fs::read_to_string(path)
            .map_err(|_| invalid(field, "the token file cannot be read"))?,
        (None, Some(name)) => {
            env(name).ok_or_else(|| invalid(field, "the environment variable is not set"))?
        }
        _ => return Err(invalid(field, "give exactly one of file and env")),
    });
    let trimmed = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text.as_str());
    if !(16..=256).contains(&trimmed.len()) || !trimmed.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            field,
            "a token is 16 to 256 visible ASCII characters",
        ));
    }
    Ok(ApiToken::new(trimmed))
}

impl DemoHarim {
    /// Reads the settings file at `path`, tokens from their files or from
    /// `env` (the process environment in the binary).
    ///
    /// # Errors
    /// [`IssuerError::InvalidSettings`] naming the field (never a token),
    /// also when the file cannot be read.
    pub fn from_file(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, IssuerError> {
        let text = std::fs::read(path).map_err(|e| {
            IssuerError::InvalidSettings(format!(
                "demo Harim settings {}: {}",
                path.display(),
                e.kind()
            ))
        })?;
        Self::from_json(&text, env)
    }

    /// As [`DemoHarim::from_file`], from the file's bytes.
    ///
    /// # Errors
    /// [`IssuerError::InvalidSettings`] naming the field.
    pub fn from_json(
        json: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, IssuerError> {
        let file: SettingsFile = serde_json::from_slice(json).map_err(|e| {
            // serde's message names fields and types, never values of a
            // string it could not place.
            IssuerError::InvalidSettings(format!(
                "demo Harim settings: {}",
                e.to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or("invalid JSON")
            ))
        })?;
        let timeout_ms = file.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(100..=60_000).contains(&timeout_ms) {
            return Err(invalid("timeout_ms", "must be 100 to 60000"));
        }
        let mut banks = Vec::with_capacity(file.banks.len());
        for (i, b) in file.banks.iter().enumerate() {
            let valid_name = !b.name.is_empty()
                && b.name.len() <= 32
                && b.name.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'
                });
            if !valid_name {
                return Err(invalid(
                    &format!("banks[{i}].name"),
                    "must be [a-z0-9_-]{1,32}",
                ));
            }
            if banks.iter().any(|x: &DemoBank| x.name == b.name) {
                return Err(invalid(&format!("banks[{i}].name"), "names a bank twice"));
            }
            banks.push(DemoBank {
                name: b.name.clone(),
                base_url: base_url(&format!("banks[{i}].base_url"), &b.base_url)?,
                ops_token: token(&format!("banks[{i}].ops_token"), &b.ops_token, env)?,
            });
        }
        Ok(Self {
            base_url: base_url("harim.base_url", &file.harim.base_url)?,
            token: token("harim.token", &file.harim.token, env)?,
            banks,
            timeout: Duration::from_millis(timeout_ms),
        })
    }
}

/// The client for Harim and the banks.
pub(super) type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub(super) fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// An answer, as it came.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) content_type: Option<HeaderValue>,
    pub(super) retry_after: Option<HeaderValue>,
    pub(super) body: Bytes,
}

/// Why there is no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unanswered {
    /// Not within the timeout.
    Timeout,
    /// No connection, or it broke.
    Transport,
    /// The answer was larger than [`ANSWER_LIMIT`].
    TooLarge,
}

/// One exchange: `method` `url` with `token` as bearer and, for a POST,
/// `body` as JSON; the whole answer within `timeout`. Nothing is retried
/// (a PIN request texts the customer, a verification spends the code).
pub(super) async fn exchange(
    client: &HttpClient,
    method: Method,
    url: &str,
    token: &ApiToken,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Answer, Unanswered> {
    let bearer = Zeroizing::new(format!("Bearer {}", token.expose_secret()));
    let mut auth = HeaderValue::from_str(&bearer).map_err(|_| Unanswered::Transport)?;
    auth.set_sensitive(true);
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header(AUTHORIZATION, auth);
    if body.is_some() {
        req = req.header(CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|_| Unanswered::Transport)?;
    let work = async {
        let resp = client
            .request(req)
            .await
            .map_err(|_| Unanswered::Transport)?;
        let status = resp.status();
        let content_type = resp.headers().get(CONTENT_TYPE).cloned();
        let retry_after = resp.headers().get(RETRY_AFTER).cloned();
        let body = Limited::new(resp.into_body(), ANSWER_LIMIT)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    Unanswered::TooLarge
                } else {
                    Unanswered::Transport
                }
            })?
            .to_bytes();
        Ok(Answer {
            status,
            content_type,
            retry_after,
            body,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(Unanswered::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "harim-gw-token-000001";

    fn env(name: &str) -> Option<String> {
        match name {
            "GW" => Some(TOKEN.to_owned()),
            "OPS" => Some("ops-token-of-bank-0001".to_owned()),
            "SHORT" => Some("short".to_owned()),
            _ => None,
        }
    }

    fn read(json: &str) -> Result<DemoHarim, IssuerError> {
        DemoHarim::from_json(json.as_bytes(), &env)
    }

    #[test]
    fn a_good_file_is_read_and_debug_hides_the_tokens() {
        let h = read(
            r#"{"harim": {"base_url": "http://127.0.0.1:8480/", "token": {"env": "GW"}},
                "banks": [{"name": "mellat", "base_url": "http://127.0.0.1:8080", "ops_token": {"env": "OPS"}}]}"#,
        )
        .unwrap();
        assert_eq!(h.base_url, "http://127.0.0.1:8480");
        assert_eq!(h.token.expose_secret(), TOKEN);
        assert_eq!(h.banks.len(), 1);
        assert_eq!(h.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
        let debug = format!("{h:?}");
        assert!(
            !debug.contains(TOKEN) && !debug.contains("ops-token"),
            "{debug}"
        );
    }

    #[test]
    fn a_token_file_loses_one_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.token");
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        let json =
            serde_json::json!({"harim": {"base_url": "http://[::1]:1", "token": {"file": path}}});
        let h = read(&json.to_string()).unwrap();
        assert_eq!(h.token.expose_secret(), TOKEN);
        assert!(h.banks.is_empty());
    }

    #[test]
    fn bad_files_are_refused_naming_the_field_never_a_token() {
        let harim = r#""harim": {"base_url": "http://127.0.0.1:8480", "token": {"env": "GW"}}"#;
        let cases = [
            (
                r#"{"harim": {"base_url": "https://h:1", "token": {"env": "GW"}}}"#.to_owned(),
                "harim.base_url: must be http://host:port",
            ),
            (
                r#"{"harim": {"base_url": "http://u:p@h:1", "token": {"env": "GW"}}}"#.to_owned(),
                "harim.base_url: no credentials",
            ),
            (
                r#"{"harim": {"base_url": "http://h", "token": {"env": "GW"}}}"#.to_owned(),
                "harim.base_url: needs a port",
            ),
            (
                r#"{"harim": {"base_url": "http://h:1/v1", "token": {"env": "GW"}}}"#.to_owned(),
                "harim.base_url: no path",
            ),
            (
                r#"{"harim": {"base_url": "http://h:1", "token": {"env": "SHORT"}}}"#.to_owned(),
                "harim.token: a token is 16 to 256",
            ),
            (
                r#"{"harim": {"base_url": "http://h:1", "token": {"env": "NONE"}}}"#.to_owned(),
                "harim.token: the environment variable is not set",
            ),
            (
                r#"{"harim": {"base_url": "http://h:1", "token": {"env": "GW", "file": "/x"}}}"#
                    .to_owned(),
                "harim.token: give exactly one",
            ),
            (
                format!(r#"{{{harim}, "timeout_ms": 5}}"#),
                "timeout_ms: must be 100 to 60000",
            ),
            (
                format!(
                    r#"{{{harim}, "banks": [{{"name": "Mellat", "base_url": "http://h:1", "ops_token": {{"env": "OPS"}}}}]}}"#
                ),
                "banks[0].name",
            ),
            (
                format!(
                    r#"{{{harim}, "banks": [{{"name": "a", "base_url": "http://h:1", "ops_token": {{"env": "OPS"}}}}, {{"name": "a", "base_url": "http://h:2", "ops_token": {{"env": "OPS"}}}}]}}"#
                ),
                "banks[1].name: names a bank twice",
            ),
            (
                format!(r#"{{{harim}, "extra": 1}}"#),
                "unknown field `extra`",
            ),
        ];
        for (json, want) in cases {
            match read(&json) {
                Err(e) => {
                    assert_eq!(e.code(), "invalid_settings", "{json}");
                    let text = e.to_string();
                    assert!(text.contains(want), "{json}: {text}");
                    assert!(!text.contains(TOKEN), "{text}");
                }
                Ok(_) => panic!("accepted {json}"),
            }
        }
    }
}
