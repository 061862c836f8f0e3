//! The settings file (JSON; docs/harim.md, "Settings"): what Harim
//! listens on, which gateways may call it, which issuers own which BIN
//! prefixes. Every field is checked when the file is read; unknown fields
//! are refused; a refusal is `invalid_settings` naming the field, never a
//! secret. Secrets are never in the file: it names a file or an
//! environment variable that holds each token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::HarimError;
use crate::breaker::Policy;
use crate::ratelimit::Rate;
use crate::routing::{RouteError, Routes};

/// Shortest token accepted from a file or variable, in characters.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The settings file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The address to listen on (default `127.0.0.1:8480`; a reload does
    /// not move it).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The token of `POST /v1/admin/reload` (and `/metrics`).
    pub admin_token: SecretRef,
    /// The token of `/metrics` for monitoring, if it is not the admin's.
    #[serde(default)]
    pub ops_token: Option<SecretRef>,
    /// Largest request body (default 16384, as the issuer).
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// The one-time PIN lifetime an unknown card's `otp-requests` answer
    /// names: the issuers' `otp_ttl_secs` (default 120).
    #[serde(default = "default_otp_ttl")]
    pub otp_ttl_secs: u64,
    /// Timeouts on slow clients and the connection cap.
    #[serde(default)]
    pub limits: Limits,
    /// The payment gateways that may call Harim.
    pub gateways: Vec<GatewaySettings>,
    /// The issuing banks and their BIN prefixes.
    pub issuers: Vec<IssuerSettings>,
}

/// Where a secret is: exactly one of a file (its whole text, a final
/// newline dropped) or an environment variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// A file holding the secret (mode 0600 advised).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// An environment variable holding it.
    #[serde(default)]
    pub env: Option<String>,
}

/// Timeouts on slow clients, as the issuer's `limits` (docs/issuer.md,
/// "Slow clients").
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Time to send a whole request header; also the keep-alive idle time.
    pub header_read_timeout_ms: u64,
    /// Time to send the whole body (408 past it).
    pub body_read_timeout_ms: u64,
    /// From a complete header to the answer (408 past it).
    pub request_timeout_ms: u64,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_connections: 4096,
        }
    }
}

/// A payment gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Its name in logs and metrics: `[a-z0-9][a-z0-9_-]{0,31}`.
    pub name: String,
    /// Its bearer token.
    pub token: SecretRef,
    /// Requests per second it may make on average (default 50).
    #[serde(default = "default_rate")]
    pub rate_per_sec: f64,
    /// Largest burst (default 100).
    #[serde(default = "default_burst")]
    pub burst: u32,
}

/// An issuing bank.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// Its name in logs and metrics: `[a-z0-9][a-z0-9_-]{0,31}`.
    pub name: String,
    /// Its issuer's base URL, `http://host:port` (no path).
    pub base_url: String,
    /// The BIN prefixes it owns: 6–8 digits, no overlaps.
    pub bins: Vec<String>,
    /// Harim's gateway-role token at that issuer.
    pub token: SecretRef,
    /// Longest wait for its answer, connecting included (default 2000).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Most requests in flight to it at once (default 64); past it
    /// `issuer_unavailable` at once.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Its circuit breaker.
    #[serde(default)]
    pub breaker: BreakerSettings,
}

/// A circuit breaker's thresholds ([`crate::breaker`]).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    /// Consecutive failures that open it (default 5).
    pub failures: u32,
    /// How long it stays open before a probe (default 10000 ms).
    pub cool_down_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            cool_down_ms: 10_000,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8480))
}
fn default_body_limit() -> usize {
    16 * 1024
}
fn default_otp_ttl() -> u64 {
    120
}
fn default_rate() -> f64 {
    50.0
}
fn default_burst() -> u32 {
    100
}
fn default_timeout() -> u64 {
    2000
}
fn default_in_flight() -> usize {
    64
}

/// A secret read from its file or variable.
pub(crate) type Secret = Zeroizing<String>;

/// A gateway, checked, with its token read.
pub(crate) struct CheckedGateway {
    pub(crate) name: String,
    pub(crate) token: Secret,
    pub(crate) rate: Rate,
}

/// An issuer, checked, with its token read.
pub(crate) struct CheckedIssuer {
    pub(crate) name: String,
    pub(crate) base_url: String,
    pub(crate) token: Secret,
    pub(crate) timeout_ms: u64,
    pub(crate) max_in_flight: usize,
    pub(crate) breaker: Policy,
}

/// Settings after every check, secrets read: what a routing table is built
/// from.
pub(crate) struct Checked {
    pub(crate) listen: SocketAddr,
    pub(crate) admin: Secret,
    pub(crate) ops: Option<Secret>,
    pub(crate) body_limit_bytes: usize,
    pub(crate) otp_ttl_secs: u64,
    pub(crate) limits: Limits,
    pub(crate) gateways: Vec<CheckedGateway>,
    pub(crate) issuers: Vec<CheckedIssuer>,
    pub(crate) routes: Routes,
}

impl Settings {
    /// Reads and parses a settings file (no checks yet: [`Settings::check`]).
    ///
    /// # Errors
    /// `io` when it cannot be read, `invalid_settings` when it is not
    /// JSON of this shape (the message names the field and position).
    pub fn from_file(path: &Path) -> Result<Self, HarimError> {
        let text = std::fs::read_to_string(path).map_err(|e| HarimError::Io {
            context: format!("reading the settings file {}", path.display()),
            message: e.to_string(),
        })?;
        Self::from_json(&text)
    }

    /// Parses settings from JSON text.
    ///
    /// # Errors
    /// `invalid_settings` naming what serde refused (field names and
    /// positions; the file holds no secret).
    pub fn from_json(text: &str) -> Result<Self, HarimError> {
        serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            let msg = msg.split(" at line").next().unwrap_or(&msg);
            // serde quotes the values it refuses ("invalid type: string
            // \"…\""): a token pasted into the file must not come back in
            // an error. Field names are kept.
            let reason = if msg.starts_with("unknown field")
                || msg.starts_with("missing field")
                || msg.starts_with("duplicate field")
            {
                msg.split(", expected").next().unwrap_or(msg).to_owned()
            } else if e.is_data() {
                "a field has the wrong type or value".to_owned()
            } else {
                "not valid JSON".to_owned()
            };
            HarimError::settings(format!("line {} column {}", e.line(), e.column()), reason)
        })
    }

    /// Checks every field and reads every secret, with `env` for
    /// environment variables (the process's, or a test's).
    ///
    /// # Errors
    /// `invalid_settings` naming the first field refused.
    pub(crate) fn check(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Checked, HarimError> {
        if !(1024..=1024 * 1024).contains(&self.body_limit_bytes) {
            return Err(HarimError::settings(
                "body_limit_bytes",
                "must be 1024 to 1048576",
            ));
        }
        if !(30..=900).contains(&self.otp_ttl_secs) {
            return Err(HarimError::settings("otp_ttl_secs", "must be 30 to 900"));
        }
        let ms = |v: u64, field: &str| {
            if (100..=600_000).contains(&v) {
                Ok(())
            } else {
                Err(HarimError::settings(field, "must be 100 ms to 10 minutes"))
            }
        };
        ms(
            self.limits.header_read_timeout_ms,
            "limits.header_read_timeout_ms",
        )?;
        ms(
            self.limits.body_read_timeout_ms,
            "limits.body_read_timeout_ms",
        )?;
        ms(self.limits.request_timeout_ms, "limits.request_timeout_ms")?;
        if !(1..=1_000_000).contains(&self.limits.max_connections) {
            return Err(HarimError::settings(
                "limits.max_connections",
                "must be 1 to 1000000",
            ));
        }
        let admin = read_secret(&self.admin_token, "admin_token", env)?;
        let ops = match &self.ops_token {
            Some(r) => Some(read_secret(r, "ops_token", env)?),
            None => None,
        };
        let mut seen_tokens: Vec<(String, Secret)> = vec![("admin_token".into(), admin.clone())];
        if let Some(o) = &ops {
            seen_tokens.push(("ops_token".into(), o.clone()));
        }
        if self.gateways.is_empty() {
            return Err(HarimError::settings(
                "gateways",
                "at least one gateway is needed",
            ));
        }
        let mut gateways = Vec::new();
        for (i, g) in self.gateways.iter().enumerate() {
            let at = format!("gateways[{i}]");
            check_name(&g.name, &format!("{at}.name"))?;
            if gateways.iter().any(|o: &CheckedGateway| o.name == g.name) {
                return Err(HarimError::settings(
                    format!("{at}.name"),
                    "another gateway has this name",
                ));
            }
            if !(g.rate_per_sec.is_finite() && (0.01..=100_000.0).contains(&g.rate_per_sec)) {
                return Err(HarimError::settings(
                    format!("{at}.rate_per_sec"),
                    "must be 0.01 to 100000",
                ));
            }
            if !(1..=1_000_000).contains(&g.burst) {
                return Err(HarimError::settings(
                    format!("{at}.burst"),
                    "must be 1 to 1000000",
                ));
            }
            let token = read_secret(&g.token, &format!("{at}.token"), env)?;
            if let Some((other, _)) = seen_tokens
                .iter()
                .find(|(_, t)| t.as_str() == token.as_str())
            {
                return Err(HarimError::settings(
                    format!("{at}.token"),
                    format!("is the same token as {other}"),
                ));
            }
            seen_tokens.push((format!("{at}.token"), token.clone()));
            gateways.push(CheckedGateway {
                name: g.name.clone(),
                token,
                rate: Rate {
                    per_sec: g.rate_per_sec,
                    burst: g.burst,
                },
            });
        }
        if self.issuers.is_empty() {
            return Err(HarimError::settings(
                "issuers",
                "at least one issuer is needed",
            ));
        }
        let names: Vec<String> = self.issuers.iter().map(|i| i.name.clone()).collect();
        let mut routes = Routes::new();
        let mut issuers = Vec::new();
        for (i, s) in self.issuers.iter().enumerate() {
            let at = format!("issuers[{i}]");
            check_name(&s.name, &format!("{at}.name"))?;
            if names[..i].contains(&s.name) {
                return Err(HarimError::settings(
                    format!("{at}.name"),
                    "another issuer has this name",
                ));
            }
            let base_url = check_base_url(&s.base_url)
                .map_err(|r| HarimError::settings(format!("{at}.base_url"), r))?;
            if s.bins.is_empty() {
                return Err(HarimError::settings(
                    format!("{at}.bins"),
                    "an issuer owns at least one BIN prefix",
                ));
            }
            for (j, bin) in s.bins.iter().enumerate() {
                routes.add(bin, i, &names).map_err(|e: RouteError| {
                    HarimError::settings(format!("{at}.bins[{j}]"), e.to_string())
                })?;
            }
            if !(10..=60_000).contains(&s.timeout_ms) {
                return Err(HarimError::settings(
                    format!("{at}.timeout_ms"),
                    "must be 10 to 60000",
                ));
            }
            if !(1..=100_000).contains(&s.max_in_flight) {
                return Err(HarimError::settings(
                    format!("{at}.max_in_flight"),
                    "must be 1 to 100000",
                ));
            }
            if !(1..=1000).contains(&s.breaker.failures) {
                return Err(HarimError::settings(
                    format!("{at}.breaker.failures"),
                    "must be 1 to 1000",
                ));
            }
            if !(10..=3_600_000).contains(&s.breaker.cool_down_ms) {
                return Err(HarimError::settings(
                    format!("{at}.breaker.cool_down_ms"),
                    "must be 10 ms to 1 hour",
                ));
            }
            let token = read_secret(&s.token, &format!("{at}.token"), env)?;
            issuers.push(CheckedIssuer {
                name: s.name.clone(),
                base_url,
                token,
                timeout_ms: s.timeout_ms,
                max_in_flight: s.max_in_flight,
                breaker: Policy {
                    failures: s.breaker.failures,
                    cool_down_ms: s.breaker.cool_down_ms,
                },
            });
        }
        Ok(Checked {
            listen: self.listen,
            admin,
            ops,
            body_limit_bytes: self.body_limit_bytes,
            otp_ttl_secs: self.otp_ttl_secs,
            limits: self.limits,
            gateways,
            issuers,
            routes,
        })
    }
}

/// Names in logs and metric labels: `[a-z0-9][a-z0-9_-]{0,31}`.
fn check_name(name: &str, field: &str) -> Result<(), HarimError> {
    let ok = (1..=32).contains(&name.len())
        && name.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && (b == b'_' || b == b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(HarimError::settings(
            field,
            "must be 1 to 32 of a-z, 0-9, _ and -, starting with a letter or digit",
        ))
    }
}

/// `http://host:port` with no path, query or credentials; the base with
/// no trailing slash.
fn check_base_url(text: &str) -> Result<String, &'static str> {
    let uri: axum::http::Uri = text.parse().map_err(|_| "is not a URL")?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err("https is not supported yet: put a TLS proxy beside Harim (docs/harim.md)");
        }
        _ => return Err("must start with http://"),
    }
    let authority = uri.authority().ok_or("has no host")?;
    if authority.as_str().contains('@') {
        return Err("must not carry credentials: use token");
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err("must have no path or query");
    }
    Ok(format!("http://{authority}"))
}

/// Reads a secret from its file or variable.
fn read_secret(
    r: &SecretRef,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, HarimError> {
    let text: Secret = match (&r.file, &r.env) {
        (Some(path), None) => {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                HarimError::settings(
                    format!("{field}.file"),
                    format!("{} cannot be read: {}", path.display(), e.kind()),
                )
            })?);
            let trimmed = text.strip_suffix('\n').unwrap_or(&text);
            let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
            Zeroizing::new(trimmed.to_owned())
        }
        (None, Some(var)) => Zeroizing::new(env(var).ok_or_else(|| {
            HarimError::settings(
                format!("{field}.env"),
                format!("the variable {var} is not set"),
            )
        })?),
        _ => {
            return Err(HarimError::settings(
                field,
                "give exactly one of file and env",
            ));
        }
    };
    let ok =
        (MIN_TOKEN_CHARS..=256).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(HarimError::settings(
            field,
            format!("a token is {MIN_TOKEN_CHARS} to 256 visible ASCII characters"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::{Value, json};

    const ADMIN: &str = "admin-token-0123456789";

    fn env(var: &str) -> Option<String> {
        match var {
            "ADMIN" => Some(ADMIN.into()),
            "GW" => Some("gateway-token-0123456789".into()),
            "GW2" => Some("gateway-token-abcdefghij".into()),
            "BANK" => Some("pya_gateway_bank_token_1".into()),
            "SHORT" => Some("short".into()),
            _ => None,
        }
    }

    fn base() -> Value {
        json!({
            "admin_token": {"env": "ADMIN"},
            "gateways": [{"name": "shaparak", "token": {"env": "GW"}}],
            "issuers": [
                {"name": "mellat", "base_url": "http://127.0.0.1:9001", "bins": ["610433"], "token": {"env": "BANK"}},
                {"name": "saderat", "base_url": "http://127.0.0.1:9002/", "bins": ["603769", "60379912"], "token": {"env": "BANK"}}
            ]
        })
    }

    fn check(v: &Value) -> Result<Checked, HarimError> {
        Settings::from_json(&v.to_string())?.check(&env)
    }

    fn refused(v: &Value) -> (String, String) {
        match check(v) {
            Err(HarimError::InvalidSettings { field, reason }) => (field, reason),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted {v}"),
        }
    }

    #[test]
    fn a_good_file_is_checked_and_routes() {
        let c = check(&base()).unwrap();
        assert_eq!(c.issuers[1].base_url, "http://127.0.0.1:9002");
        assert_eq!(c.routes.route("6104337700000001"), Some(0));
        assert_eq!(c.routes.route("6037991200000001"), Some(1));
        assert_eq!(c.routes.route("6037990000000001"), None);
        assert_eq!(c.listen, default_listen());
        assert_eq!(c.issuers[0].timeout_ms, 2000);
    }

    #[test]
    fn bad_settings_name_the_field_and_never_a_secret() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|v| v["issuers"][1]["bins"][1] = json!("6104331")),
                "issuers[1].bins[1]",
            ),
            (
                Box::new(|v| v["issuers"][1]["bins"][0] = json!("61043")),
                "issuers[1].bins[0]",
            ),
            (
                Box::new(|v| v["issuers"][1]["bins"] = json!([])),
                "issuers[1].bins",
            ),
            (
                Box::new(|v| v["issuers"][0]["base_url"] = json!("https://bank")),
                "issuers[0].base_url",
            ),
            (
                Box::new(|v| v["issuers"][0]["base_url"] = json!("http://u:p@bank:1")),
                "issuers[0].base_url",
            ),
            (
                Box::new(|v| v["issuers"][0]["base_url"] = json!("http://bank:1/v1")),
                "issuers[0].base_url",
            ),
            (
                Box::new(|v| v["issuers"][1]["name"] = json!("mellat")),
                "issuers[1].name",
            ),
            (
                Box::new(|v| v["issuers"][0]["name"] = json!("Mellat Bank")),
                "issuers[0].name",
            ),
            (
                Box::new(|v| v["issuers"][0]["timeout_ms"] = json!(0)),
                "issuers[0].timeout_ms",
            ),
            (
                Box::new(|v| v["issuers"][0]["max_in_flight"] = json!(0)),
                "issuers[0].max_in_flight",
            ),
            (
                Box::new(|v| v["issuers"][0]["breaker"] = json!({"failures": 0})),
                "issuers[0].breaker.failures",
            ),
            (
                Box::new(|v| v["issuers"][0]["token"] = json!({"env": "NOPE"})),
                "issuers[0].token.env",
            ),
            (
                Box::new(|v| v["issuers"][0]["token"] = json!({"env": "SHORT"})),
                "issuers[0].token",
            ),
            (
                Box::new(|v| v["issuers"][0]["token"] = json!({})),
                "issuers[0].token",
            ),
            (
                Box::new(|v| v["issuers"][0]["token"] = json!({"env": "BANK", "file": "/x"})),
                "issuers[0].token",
            ),
            (
                Box::new(|v| {
                    v["issuers"][0]["token"] = json!({"file": "/nonexistent/harim-token"})
                }),
                "issuers[0].token.file",
            ),
            (
                Box::new(|v| v["gateways"][0]["token"] = json!({"env": "ADMIN"})),
                "gateways[0].token",
            ),
            (
                Box::new(|v| v["gateways"][0]["rate_per_sec"] = json!(0)),
                "gateways[0].rate_per_sec",
            ),
            (
                Box::new(|v| v["gateways"][0]["burst"] = json!(0)),
                "gateways[0].burst",
            ),
            (Box::new(|v| v["gateways"] = json!([])), "gateways"),
            (Box::new(|v| v["issuers"] = json!([])), "issuers"),
            (
                Box::new(|v| v["body_limit_bytes"] = json!(10)),
                "body_limit_bytes",
            ),
            (Box::new(|v| v["otp_ttl_secs"] = json!(5)), "otp_ttl_secs"),
            (
                Box::new(|v| v["limits"] = json!({"request_timeout_ms": 1})),
                "limits.request_timeout_ms",
            ),
        ];
        for (change, field) in cases {
            let mut v = base();
            change(&mut v);
            let (got, reason) = refused(&v);
            assert_eq!(got, field, "{v}: {reason}");
            for secret in [
                ADMIN,
                "gateway-token-0123456789",
                "pya_gateway_bank_token_1",
            ] {
                assert!(
                    !reason.contains(secret) && !got.contains(secret),
                    "{reason}"
                );
            }
        }
        let mut v = base();
        v["gateways"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "shaparak", "token": {"env": "GW2"}}));
        assert_eq!(refused(&v).0, "gateways[1].name");
        // Unknown fields and a secret written into the file are refused.
        let mut v = base();
        v["issuers"][0]["token"] = json!("pya_gateway_bank_token_1");
        let (field, reason) = refused(&v);
        assert!(field.starts_with("line 1"), "{field}");
        assert!(!reason.contains("pya_gateway_bank_token_1"), "{reason}");
        let mut v = base();
        v["issuers"][0]["weight"] = json!(1);
        assert!(refused(&v).1.contains("unknown field `weight`"));
        assert_eq!(HarimError::settings("a", "b").code(), "invalid_settings");
    }

    #[test]
    fn tokens_from_files_drop_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "file-token-0123456789\n").unwrap();
        let mut v = base();
        v["issuers"][0]["token"] = json!({"file": path});
        let c = check(&v).unwrap();
        assert_eq!(c.issuers[0].token.as_str(), "file-token-0123456789");
    }
}
