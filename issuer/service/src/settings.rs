//! Operational settings: PIN policies, lifetimes, lockout thresholds,
//! language. Loaded from a JSON file (`serve --config FILE`); every field
//! has a default, unknown fields are refused.

use pooya_protocol::Policies;
use pooya_protocol::ids::{ACTIVATION_CODE_MAX_LEN, ACTIVATION_CODE_MIN_LEN};
use serde::{Deserialize, Serialize};

use crate::IssuerError;

/// The longest `activation_ttl_secs` allowed: 7 days.
pub const MAX_ACTIVATION_TTL_SECS: u64 = 7 * 24 * 3600;
/// The largest `max_drift_steps` allowed (RFC 6238 §6).
pub const MAX_DRIFT_STEPS_BOUND: i64 = 20;
/// The longest `failure_window_secs` allowed: 7 days. Failure rows older
/// than this are pruned whatever the current setting.
pub const MAX_FAILURE_WINDOW_SECS: u64 = 7 * 24 * 3600;

/// Language of the SMS messages and bank names the issuer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Persian (the default).
    #[default]
    Fa,
    /// English.
    En,
}

/// The issuer's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// PIN policies and cap ladder handed to every card at activation.
    pub policies: Policies,
    /// Digits of an activation code, Luhn check digit included (10–16).
    pub activation_code_digits: usize,
    /// Seconds an activation code stays valid (default 15 minutes).
    pub activation_ttl_secs: u64,
    /// Wrong activation codes for one phone before all of that phone's
    /// pending codes are burned.
    pub activation_max_failures: u32,
    /// Two-channel activation codes (off by default): the enrollment
    /// answer to the ATM carries the code's first
    /// [`activation_atm_digits`](Self::activation_atm_digits) digits to show
    /// on screen or receipt, the SMS the rest (check digit included); the
    /// phone asks for both. Whoever reads only the SMS cannot activate.
    pub activation_code_split: bool,
    /// Digits of a split code shown at the ATM (4 to digits − 4).
    pub activation_atm_digits: usize,
    /// Consecutive verification failures that block a card's dynamic PINs
    /// (RFC 4226 §7.3).
    pub max_failures: u32,
    /// Seconds a card stays blocked (default 15 minutes).
    pub lockout_secs: u64,
    /// Largest clock drift, in time steps, tracked for a card (RFC 6238 §6).
    pub max_drift_steps: i64,
    /// Language of SMS messages and bank names.
    pub language: Language,
    /// The sender shown on the bank's SMS messages.
    pub sms_sender: String,
    /// The short code customers text the last four digits of a card to
    /// (the SMS version); `POST /v1/sms/inbound` answers messages to it.
    pub sms_short_code: String,
    /// Seconds a one-time PIN sent by SMS (SMS version, Harim) stays valid.
    pub otp_ttl_secs: u64,
    /// Least seconds between two one-time PINs for one card, and for one
    /// phone, on one channel.
    pub otp_min_interval_secs: u64,
    /// Most one-time PINs per card, and per phone, on one channel in any
    /// hour.
    pub otp_max_per_hour: u32,
    /// Most replies without a code (help, "please wait") the short code
    /// sends one phone in any hour; past that it stays silent.
    pub sms_max_replies_per_hour: u32,
    /// The bank name used for cards whose BIN is not in the table.
    pub bank_name: String,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// SQLite connections kept for reads.
    pub read_connections: usize,
    /// Most write jobs committed in one transaction (group commit).
    pub writer_batch_max: usize,
    /// Milliseconds between passive WAL checkpoints run beside the writer;
    /// 0 leaves checkpoints to SQLite, inside the writer's commits.
    pub checkpoint_interval_ms: u64,

    // Verification rules of issue 10 (docs/issuer.md, "Failure window" and
    // "Dynamic linking").
    /// Verification failures of one card number within
    /// `failure_window_secs` that block its dynamic PINs, whatever
    /// acceptances came between them (PSD2 RTS Art. 4; default 10).
    pub failure_window_max: u32,
    /// The sliding window of `failure_window_max`, in seconds (default 24
    /// hours, at most [`MAX_FAILURE_WINDOW_SECS`]).
    pub failure_window_secs: u64,
    /// Every verification that names a payee accepts only PINs bound to
    /// that payment (the app's transaction-bound PINs, Harim PINs): PSD2
    /// RTS Art. 5 dynamic linking.
    pub require_dynamic_linking: bool,
    /// The same, only for verifications naming a payee whose amount is
    /// above this many Rials. Set this or `require_dynamic_linking`, not
    /// both.
    pub dynamic_linking_above: Option<u64>,
    /// Timeouts and the connection cap that keep slow clients from
    /// starving the server (issue 10, item 4).
    pub limits: ConnectionLimits,
    /// How messages leave the outbox (docs/issuer.md, "SMS delivery").
    pub sms: SmsSettings,
    /// With PostgreSQL: this node's connection pool (every node has its
    /// own; the server's `max_connections` must cover all nodes').
    pub database_pool_size: usize,
    /// With PostgreSQL over TLS (`sslmode=require` in the URL): the
    /// certificate authorities (PEM file) the server's certificate must
    /// chain to.
    pub database_tls_ca: Option<std::path::PathBuf>,
}

/// The SMS gateway the delivery worker hands messages to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsSenderKind {
    /// None chosen: `serve` refuses to start (no bank runs without one).
    #[default]
    Unset,
    /// The development recorder: messages are kept in the database
    /// (`GET /v1/sms/outbox`) and sent nowhere. For tests and the demo.
    DevRecorder,
    /// A Kannel SMS gateway, through its `sendsms` HTTP interface, with
    /// delivery reports and inbound messages back to the issuer
    /// (`sms.kannel`; docs/issuer.md, "Kannel").
    Kannel,
}

/// The `sms` section of the settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsSettings {
    /// The sender.
    pub sender: SmsSenderKind,
    /// How often each node's delivery worker looks for due messages
    /// besides being woken by its own commits (messages of other nodes,
    /// retries, messages a crash left), milliseconds.
    pub poll_interval_ms: u64,
    /// This node runs a delivery worker (the default). A bank may run API
    /// nodes with `false` and deliver from others; their messages wait in
    /// the shared outbox.
    pub delivery: bool,
    /// The Kannel gateway, for `sender = "kannel"`.
    pub kannel: Option<KannelSettings>,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            sender: SmsSenderKind::Unset,
            poll_interval_ms: 500,
            delivery: true,
            kannel: None,
        }
    }
}

/// The `sms.kannel` section (docs/issuer.md, "Kannel"). Holds where the
/// secrets are, never the secrets: each comes from a file (`…_file`) or an
/// environment variable (`…_env`), read by `serve` at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KannelSettings {
    /// Kannel's `sendsms` URL, e.g. `http://127.0.0.1:13013/cgi-bin/sendsms`.
    pub sendsms_url: String,
    /// The `sendsms-user` username.
    pub username: String,
    /// A file holding the `sendsms-user` password.
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    /// An environment variable holding the `sendsms-user` password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The sender number Kannel puts on messages; `sms_sender` when unset.
    #[serde(default)]
    pub from: Option<String>,
    /// The issuer's base URL as Kannel reaches it (`http://10.0.0.5:8080`):
    /// the delivery reports' `dlr-url` starts with it.
    pub public_base_url: String,
    /// A file holding the gateway secret that authenticates Kannel's
    /// calls to the issuer (inbound messages, delivery reports).
    #[serde(default)]
    pub gateway_secret_file: Option<std::path::PathBuf>,
    /// An environment variable holding the gateway secret.
    #[serde(default)]
    pub gateway_secret_env: Option<String>,
    /// Milliseconds one `sendsms` request may take, connecting included.
    #[serde(default = "default_kannel_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_kannel_timeout_ms() -> u64 {
    5_000
}

/// The shortest gateway secret accepted, in characters.
pub const MIN_GATEWAY_SECRET_LEN: usize = 32;

/// Where a secret comes from: a file or an environment variable.
#[derive(Debug, Clone, Copy)]
pub enum SecretSource<'a> {
    /// A file; its text without the trailing line break.
    File(&'a std::path::Path),
    /// An environment variable.
    Env(&'a str),
}

impl<'a> SecretSource<'a> {
    fn of(
        file: Option<&'a std::path::Path>,
        env: Option<&'a str>,
        what: &str,
    ) -> Result<Self, IssuerError> {
        match (file, env) {
            (Some(f), None) => Ok(Self::File(f)),
            (None, Some(e)) if !e.is_empty() => Ok(Self::Env(e)),
            _ => Err(IssuerError::InvalidSettings(format!(
                "sms.kannel needs exactly one of {what}_file and {what}_env"
            ))),
        }
    }

    /// Reads the secret. Error messages name the file or variable, never
    /// the value.
    ///
    /// # Errors
    /// [`IssuerError::InvalidSettings`] when the file cannot be read, the
    /// variable is unset, or the secret is empty or not UTF-8.
    pub fn read(self, what: &str) -> Result<zeroize::Zeroizing<String>, IssuerError> {
        let text = match self {
            Self::File(path) => {
                zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    IssuerError::InvalidSettings(format!(
                        "sms.kannel.{what}_file {} cannot be read: {}",
                        path.display(),
                        e.kind()
                    ))
                })?)
            }
            Self::Env(var) => zeroize::Zeroizing::new(std::env::var(var).map_err(|_| {
                IssuerError::InvalidSettings(format!(
                    "sms.kannel.{what}_env: {var} is not set (or not UTF-8)"
                ))
            })?),
        };
        let trimmed = zeroize::Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned());
        if trimmed.is_empty() {
            return Err(IssuerError::InvalidSettings(format!(
                "sms.kannel: the {what} is empty"
            )));
        }
        Ok(trimmed)
    }
}

impl KannelSettings {
    /// Where the `sendsms-user` password comes from.
    ///
    /// # Errors
    /// [`IssuerError::InvalidSettings`] unless exactly one source is set.
    pub fn password_source(&self) -> Result<SecretSource<'_>, IssuerError> {
        SecretSource::of(
            self.password_file.as_deref(),
            self.password_env.as_deref(),
            "password",
        )
    }

    /// Where the gateway secret comes from.
    ///
    /// # Errors
    /// [`IssuerError::InvalidSettings`] unless exactly one source is set.
    pub fn gateway_secret_source(&self) -> Result<SecretSource<'_>, IssuerError> {
        SecretSource::of(
            self.gateway_secret_file.as_deref(),
            self.gateway_secret_env.as_deref(),
            "gateway_secret",
        )
    }

    /// Checks a gateway secret read from its source: at least
    /// [`MIN_GATEWAY_SECRET_LEN`] characters, all URL-safe (it is written
    /// into Kannel's `get-url` as it is).
    ///
    /// # Errors
    /// [`IssuerError::InvalidSettings`].
    pub fn check_gateway_secret(secret: &str) -> Result<(), IssuerError> {
        let url_safe = secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
        if secret.len() < MIN_GATEWAY_SECRET_LEN || !url_safe {
            return Err(IssuerError::InvalidSettings(format!(
                "sms.kannel: the gateway secret must be at least {MIN_GATEWAY_SECRET_LEN} \
                 characters of A-Z, a-z, 0-9, '-', '_', '.', '~'"
            )));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), IssuerError> {
        let bad = |s: &str| Err(IssuerError::InvalidSettings(s.to_owned()));
        let http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        if !http(&self.sendsms_url) || self.sendsms_url.contains(['?', '#']) {
            return bad("sms.kannel.sendsms_url must be an http(s) URL without a query");
        }
        if !http(&self.public_base_url) || self.public_base_url.contains(['?', '#']) {
            return bad("sms.kannel.public_base_url must be an http(s) URL without a query");
        }
        if self.username.trim().is_empty() || self.username.len() > 64 {
            return bad("sms.kannel.username must be 1 to 64 bytes");
        }
        if let Some(f) = &self.from
            && (f.trim().is_empty() || f.len() > 32)
        {
            return bad("sms.kannel.from must be 1 to 32 bytes");
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return bad("sms.kannel.timeout_ms must be 100 to 60000");
        }
        self.password_source()?;
        self.gateway_secret_source()?;
        Ok(())
    }
}

/// The most connections [`ConnectionLimits::max_connections`] may ask for.
pub const MAX_CONNECTIONS_BOUND: usize = 1_000_000;

/// Timeouts and the open-connection cap (docs/issuer.md, "Slow clients").
/// A client that does not send its request header within
/// `header_read_timeout_ms`, its body within `body_read_timeout_ms`, or is
/// not answered within `request_timeout_ms`, is cut off; past
/// `max_connections` open connections a new one is accepted and closed at
/// once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionLimits {
    /// Milliseconds a connection has to send a complete request header
    /// (also the idle time allowed between keep-alive requests).
    pub header_read_timeout_ms: u64,
    /// Milliseconds a request has to send its whole body.
    pub body_read_timeout_ms: u64,
    /// Milliseconds from a complete header to the answer.
    pub request_timeout_ms: u64,
    /// Most connections open at once. The server lowers it further when
    /// the file-descriptor limit leaves less room (docs/issuer.md).
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_connections: 4096,
        }
    }
}

impl ConnectionLimits {
    /// The header-read timeout.
    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.header_read_timeout_ms)
    }

    /// The body-read timeout.
    pub fn body_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.body_read_timeout_ms)
    }

    /// The whole-request timeout.
    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.request_timeout_ms)
    }

    fn validate(&self) -> Result<(), IssuerError> {
        let bad = |s: &str| Err(IssuerError::InvalidSettings(s.to_owned()));
        if !(100..=600_000).contains(&self.header_read_timeout_ms) {
            return bad("limits.header_read_timeout_ms must be 100 ms to 10 minutes");
        }
        if !(100..=600_000).contains(&self.body_read_timeout_ms) {
            return bad("limits.body_read_timeout_ms must be 100 ms to 10 minutes");
        }
        if !(100..=600_000).contains(&self.request_timeout_ms) {
            return bad("limits.request_timeout_ms must be 100 ms to 10 minutes");
        }
        if !(1..=MAX_CONNECTIONS_BOUND).contains(&self.max_connections) {
            return bad("limits.max_connections must be 1 to 1000000");
        }
        Ok(())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            policies: Policies::default(),
            activation_code_digits: 10,
            activation_ttl_secs: 15 * 60,
            activation_max_failures: 5,
            activation_code_split: false,
            activation_atm_digits: 5,
            max_failures: 5,
            lockout_secs: 15 * 60,
            max_drift_steps: 5,
            language: Language::Fa,
            sms_sender: "30003303".to_owned(),
            sms_short_code: "30003303".to_owned(),
            otp_ttl_secs: 120,
            otp_min_interval_secs: 60,
            otp_max_per_hour: 10,
            sms_max_replies_per_hour: 10,
            bank_name: "Pooya Bank".to_owned(),
            body_limit_bytes: 16 * 1024,
            read_connections: 4,
            writer_batch_max: 512,
            checkpoint_interval_ms: 25,
            failure_window_max: 10,
            failure_window_secs: 24 * 3600,
            require_dynamic_linking: false,
            dynamic_linking_above: None,
            limits: ConnectionLimits::default(),
            sms: SmsSettings::default(),
            database_pool_size: 32,
            database_tls_ca: None,
        }
    }
}

impl Settings {
    /// The defaults with the development recorder as SMS sender: for
    /// tests, the demo and a developer's machine, never a bank.
    pub fn development() -> Self {
        Self {
            sms: SmsSettings {
                sender: SmsSenderKind::DevRecorder,
                poll_interval_ms: 100,
                delivery: true,
                kannel: None,
            },
            ..Self::default()
        }
    }

    /// Whether a verification naming a payee, for `amount` Rials, must be
    /// dynamically linked (PSD2 RTS Art. 5): only PINs bound to that
    /// amount and payee are accepted.
    pub fn dynamic_linking_required(&self, amount: u64) -> bool {
        self.require_dynamic_linking || self.dynamic_linking_above.is_some_and(|a| amount > a)
    }

    /// Checks every bound.
    ///
    /// # Errors
    /// [`IssuerError::InvalidSettings`] naming the first broken bound.
    pub fn validate(&self) -> Result<(), IssuerError> {
        let bad = |s: &str| Err(IssuerError::InvalidSettings(s.to_owned()));
        self.policies
            .validate()
            .map_err(|e| IssuerError::InvalidSettings(e.to_string()))?;
        if !(ACTIVATION_CODE_MIN_LEN..=ACTIVATION_CODE_MAX_LEN)
            .contains(&self.activation_code_digits)
        {
            return bad("activation_code_digits must be 10 to 16");
        }
        if !(60..=MAX_ACTIVATION_TTL_SECS).contains(&self.activation_ttl_secs) {
            return bad("activation_ttl_secs must be 60 s to 7 days");
        }
        if !(1..=20).contains(&self.activation_max_failures) {
            return bad("activation_max_failures must be 1 to 20");
        }
        if self.activation_code_split
            && !(4..=self.activation_code_digits.saturating_sub(4))
                .contains(&self.activation_atm_digits)
        {
            return bad("activation_atm_digits must be 4 to activation_code_digits - 4");
        }
        if !(1..=20).contains(&self.max_failures) {
            return bad("max_failures must be 1 to 20");
        }
        if !(1..=30 * 24 * 3600).contains(&self.lockout_secs) {
            return bad("lockout_secs must be 1 s to 30 days");
        }
        if !(0..=MAX_DRIFT_STEPS_BOUND).contains(&self.max_drift_steps) {
            return bad("max_drift_steps must be 0 to 20");
        }
        if self.sms_sender.trim().is_empty() || self.sms_sender.len() > 32 {
            return bad("sms_sender must be 1 to 32 bytes");
        }
        if self.sms_short_code.is_empty()
            || self.sms_short_code.len() > 16
            || !self.sms_short_code.bytes().all(|b| b.is_ascii_digit())
        {
            return bad("sms_short_code must be 1 to 16 ASCII digits");
        }
        if !(30..=15 * 60).contains(&self.otp_ttl_secs) {
            return bad("otp_ttl_secs must be 30 s to 15 minutes");
        }
        if self.otp_min_interval_secs > 3600 {
            return bad("otp_min_interval_secs must be 0 to 3600");
        }
        if !(1..=100).contains(&self.otp_max_per_hour) {
            return bad("otp_max_per_hour must be 1 to 100");
        }
        if !(1..=100).contains(&self.sms_max_replies_per_hour) {
            return bad("sms_max_replies_per_hour must be 1 to 100");
        }
        if self.bank_name.trim().is_empty() || self.bank_name.len() > 64 {
            return bad("bank_name must be 1 to 64 bytes");
        }
        if !(1024..=1024 * 1024).contains(&self.body_limit_bytes) {
            return bad("body_limit_bytes must be 1 KiB to 1 MiB");
        }
        if !(1..=64).contains(&self.read_connections) {
            return bad("read_connections must be 1 to 64");
        }
        if !(1..=10_000).contains(&self.writer_batch_max) {
            return bad("writer_batch_max must be 1 to 10000");
        }
        if self.checkpoint_interval_ms > 10_000 {
            return bad("checkpoint_interval_ms must be 0 to 10000");
        }
        if !(1..=100).contains(&self.failure_window_max) {
            return bad("failure_window_max must be 1 to 100");
        }
        if !(60..=MAX_FAILURE_WINDOW_SECS).contains(&self.failure_window_secs) {
            return bad("failure_window_secs must be 60 s to 7 days");
        }
        match self.dynamic_linking_above {
            Some(_) if self.require_dynamic_linking => {
                return bad("set require_dynamic_linking or dynamic_linking_above, not both");
            }
            Some(0) => return bad("dynamic_linking_above must be at least 1 Rial"),
            _ => {}
        }
        self.limits.validate()?;
        if !(1..=512).contains(&self.database_pool_size) {
            return bad("database_pool_size must be 1 to 512");
        }
        if !(10..=60_000).contains(&self.sms.poll_interval_ms) {
            return bad("sms.poll_interval_ms must be 10 to 60000");
        }
        match (&self.sms.kannel, self.sms.sender) {
            (None, SmsSenderKind::Kannel) => {
                return bad("sms.sender is kannel: the sms.kannel section is missing");
            }
            (Some(k), _) => k.validate()?,
            (None, _) => {}
        }
        Ok(())
    }

    /// Reads settings from a JSON file and validates them.
    ///
    /// # Errors
    /// [`IssuerError::Io`] or [`IssuerError::InvalidSettings`].
    pub fn from_file(path: &std::path::Path) -> Result<Self, IssuerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| IssuerError::io("reading the settings file", &e))?;
        let s: Self =
            serde_json::from_str(&text).map_err(|e| IssuerError::InvalidSettings(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, r#"{"max_failures": 3, "checkpoint_interval_ms": 0}"#).unwrap();
        let s = Settings::from_file(&path).unwrap();
        assert_eq!((s.max_failures, s.checkpoint_interval_ms), (3, 0));
        std::fs::write(&path, r#"{"max_failures": 0}"#).unwrap();
        assert_eq!(
            Settings::from_file(&path).unwrap_err().code(),
            "invalid_settings"
        );
        std::fs::write(&path, "{").unwrap();
        assert_eq!(
            Settings::from_file(&path).unwrap_err().code(),
            "invalid_settings"
        );
        assert_eq!(
            Settings::from_file(&dir.path().join("missing.json"))
                .unwrap_err()
                .code(),
            "io"
        );
    }

    #[test]
    fn defaults_valid_and_partial_json() {
        Settings::default().validate().unwrap();
        let s: Settings = serde_json::from_str(r#"{"language":"en","lockout_secs":60}"#).unwrap();
        assert_eq!(s.language, Language::En);
        assert_eq!(s.lockout_secs, 60);
        assert_eq!(s.max_failures, 5);
        assert!(serde_json::from_str::<Settings>(r#"{"nope":1}"#).is_err());
        let s = Settings {
            activation_code_digits: 9,
            ..Settings::default()
        };
        assert!(s.validate().is_err());
        for bad in [
            Settings {
                sms_short_code: "3000 3303".into(),
                ..Settings::default()
            },
            Settings {
                otp_ttl_secs: 10,
                ..Settings::default()
            },
            Settings {
                otp_max_per_hour: 0,
                ..Settings::default()
            },
        ] {
            assert_eq!(bad.validate().unwrap_err().code(), "invalid_settings");
        }
    }

    #[test]
    fn verification_rules_are_validated() {
        let d = Settings::default();
        assert_eq!(
            (d.failure_window_max, d.failure_window_secs),
            (10, 24 * 3600)
        );
        assert!(!d.dynamic_linking_required(u64::MAX));
        for bad in [
            Settings {
                failure_window_max: 0,
                ..Settings::default()
            },
            Settings {
                failure_window_max: 101,
                ..Settings::default()
            },
            Settings {
                failure_window_secs: 59,
                ..Settings::default()
            },
            Settings {
                failure_window_secs: MAX_FAILURE_WINDOW_SECS + 1,
                ..Settings::default()
            },
            Settings {
                dynamic_linking_above: Some(0),
                ..Settings::default()
            },
            Settings {
                require_dynamic_linking: true,
                dynamic_linking_above: Some(1_000_000),
                ..Settings::default()
            },
        ] {
            assert_eq!(bad.validate().unwrap_err().code(), "invalid_settings");
        }
        let above = Settings {
            dynamic_linking_above: Some(1_000_000),
            ..Settings::default()
        };
        above.validate().unwrap();
        assert!(!above.dynamic_linking_required(1_000_000));
        assert!(above.dynamic_linking_required(1_000_001));
        let global: Settings =
            serde_json::from_str(r#"{"require_dynamic_linking": true}"#).unwrap();
        global.validate().unwrap();
        assert!(global.dynamic_linking_required(1));
    }

    fn kannel() -> KannelSettings {
        KannelSettings {
            sendsms_url: "http://127.0.0.1:13013/cgi-bin/sendsms".into(),
            username: "pooya".into(),
            password_file: Some("/etc/pooya/kannel-password".into()),
            password_env: None,
            from: None,
            public_base_url: "http://10.0.0.5:8080".into(),
            gateway_secret_file: None,
            gateway_secret_env: Some("POOYA_KANNEL_SECRET".into()),
            timeout_ms: 5000,
        }
    }

    #[test]
    fn a_kannel_sender_needs_every_piece() {
        let with = |k: Option<KannelSettings>| Settings {
            sms: SmsSettings {
                sender: SmsSenderKind::Kannel,
                kannel: k,
                ..SmsSettings::default()
            },
            ..Settings::default()
        };
        with(Some(kannel())).validate().unwrap();
        let json = r#"{"sms": {"sender": "kannel", "kannel": {
            "sendsms_url": "http://127.0.0.1:13013/cgi-bin/sendsms", "username": "pooya",
            "password_env": "P", "public_base_url": "http://10.0.0.5:8080",
            "gateway_secret_file": "/run/secret"}}}"#;
        let parsed: Settings = serde_json::from_str(json).unwrap();
        parsed.validate().unwrap();
        assert_eq!(parsed.sms.kannel.as_ref().unwrap().timeout_ms, 5000);
        let cases: Vec<Option<KannelSettings>> = vec![
            None,
            Some(KannelSettings {
                password_file: None,
                ..kannel()
            }),
            Some(KannelSettings {
                password_env: Some("P".into()),
                ..kannel()
            }),
            Some(KannelSettings {
                gateway_secret_env: None,
                ..kannel()
            }),
            Some(KannelSettings {
                sendsms_url: "127.0.0.1:13013".into(),
                ..kannel()
            }),
            Some(KannelSettings {
                sendsms_url: "http://k/cgi-bin/sendsms?username=x".into(),
                ..kannel()
            }),
            Some(KannelSettings {
                public_base_url: "".into(),
                ..kannel()
            }),
            Some(KannelSettings {
                username: " ".into(),
                ..kannel()
            }),
            Some(KannelSettings {
                timeout_ms: 50,
                ..kannel()
            }),
            Some(KannelSettings {
                from: Some("".into()),
                ..kannel()
            }),
        ];
        for k in cases {
            assert_eq!(
                with(k.clone()).validate().unwrap_err().code(),
                "invalid_settings",
                "{k:?}"
            );
        }
        // A password in the settings file itself is an unknown field.
        let inline = json.replace("\"password_env\": \"P\"", "\"password\": \"hunter2\"");
        assert!(serde_json::from_str::<Settings>(&inline).is_err());
    }

    #[test]
    fn kannel_secrets_come_from_files_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret-of-the-gateway-0123456789abcdef\n").unwrap();
        let got = SecretSource::File(&path).read("gateway_secret").unwrap();
        assert_eq!(got.as_str(), "s3cret-of-the-gateway-0123456789abcdef");
        KannelSettings::check_gateway_secret(&got).unwrap();
        let missing = SecretSource::File(&dir.path().join("nope"))
            .read("password")
            .unwrap_err();
        assert_eq!(missing.code(), "invalid_settings");
        assert!(missing.to_string().contains("password_file"));
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(
            SecretSource::File(&path)
                .read("password")
                .unwrap_err()
                .code(),
            "invalid_settings"
        );
        assert_eq!(
            SecretSource::Env("POOYA_TEST_SURELY_UNSET_VARIABLE")
                .read("password")
                .unwrap_err()
                .code(),
            "invalid_settings"
        );
        for weak in [
            "short",
            "has a space in it but is long enough ok",
            "ü-ü-ü-ü-ü-ü-ü-ü-ü-ü-ü-ü-ü-ü-ü-ü",
        ] {
            assert_eq!(
                KannelSettings::check_gateway_secret(weak)
                    .unwrap_err()
                    .code(),
                "invalid_settings"
            );
        }
    }
}
