//! The issuer's SMS gateway over Kannel (docs/issuer.md, "Kannel").
//!
//! * [`KannelSender`] hands each outbox message to Kannel's `sendsms` HTTP
//!   interface (Kannel user guide, "Sending SMS messages": `username`,
//!   `password`, `from`, `to`, `text`, `charset`, `coding`, `dlr-mask`,
//!   `dlr-url`) as UTF-8 text sent as UCS-2 (`coding=2`), so Persian
//!   bodies reach the phone intact, asking for every delivery report
//!   (`dlr-mask=31`) at a `dlr-url` back to the issuer that names the
//!   outbox message and carries a tag of it under the gateway secret.
//! * [`DlrQuery`] and [`InboundQuery`] parse what Kannel calls the issuer
//!   with: a delivery report (the `dlr-url`, `%d` filled in), and an
//!   inbound message (an `sms-service`'s `get-url` with `%p`, `%P`, `%a`,
//!   `%c`).
//!
//! Neither the password, the gateway secret nor a message body is ever
//! logged or put in an error message.

use std::fmt;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use pooya_issuer_service::store::DeliveryReport;
use pooya_issuer_service::{IssuerError, Sms, SmsSender};
use ring::hmac;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Kannel's `dlr-mask` asking for every report: delivered (1), failed
/// (2), buffered (4), SMSC submit (8), SMSC reject (16).
pub const DLR_MASK: u32 = 31;
/// The issuer's delivery-report route, under `public_base_url`.
pub const DLR_PATH: &str = "/v1/sms/kannel/dlr";
/// The issuer's inbound-message route, for the `sms-service`'s `get-url`.
pub const INBOUND_PATH: &str = "/v1/sms/kannel/inbound";
/// Most bytes of a `sendsms` answer read.
const MAX_ANSWER_BYTES: u64 = 1024;
/// The HMAC context of delivery-report tags.
const DLR_TAG_CONTEXT: &[u8] = b"pooya kannel dlr-url v1\0";
/// Bytes of HMAC-SHA256 kept in a delivery-report tag (128 bits).
const DLR_TAG_BYTES: usize = 16;

/// RFC 3986 §2.3 unreserved characters stay; everything else is
/// percent-encoded (UTF-8 bytes for non-ASCII text).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Bad input from Kannel, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KannelError {
    /// The query string is malformed: a parameter missing, repeated or not
    /// expected.
    #[error("the query string is invalid: {0}")]
    InvalidQuery(&'static str),
    /// A delivery report of a type that is not one `dlr-mask=31` asks for.
    #[error("the delivery report type is not one Kannel reports")]
    InvalidReport,
    /// The message text does not decode in its coding.
    #[error("the message text does not decode")]
    InvalidText,
}

impl KannelError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidQuery(_) => "invalid_query",
            Self::InvalidReport => "invalid_report",
            Self::InvalidText => "invalid_text",
        }
    }
}

/// The secret Kannel's calls to the issuer are authenticated with: written
/// into the `sms-service`'s `get-url`, and the key of the tags in
/// `dlr-url`s. Wiped on drop, never printed.
pub struct GatewaySecret(Zeroizing<String>);

impl fmt::Debug for GatewaySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatewaySecret(<redacted>)")
    }
}

impl GatewaySecret {
    /// A secret read from its source
    /// ([`pooya_issuer_service::settings::KannelSettings::check_gateway_secret`]
    /// checks its strength).
    pub fn new(secret: Zeroizing<String>) -> Self {
        Self(secret)
    }

    /// Whether `given` is the secret, in constant time (only its length
    /// may show).
    pub fn matches(&self, given: &[u8]) -> bool {
        bool::from(self.0.as_bytes().ct_eq(given))
    }

    fn key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.0.as_bytes())
    }

    /// The tag of outbox message `message_id` in its `dlr-url`:
    /// HMAC-SHA256 (RFC 2104) under the secret, 128 bits, hex. A tag seen
    /// in Kannel's logs or DLR storage reports on that one message only.
    pub fn dlr_tag(&self, message_id: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key());
        ctx.update(DLR_TAG_CONTEXT);
        ctx.update(message_id.as_bytes());
        hex::encode(&ctx.sign().as_ref()[..DLR_TAG_BYTES])
    }

    /// Whether `tag` is [`GatewaySecret::dlr_tag`] of `message_id`, in
    /// constant time.
    pub fn verify_dlr_tag(&self, message_id: &str, tag: &[u8]) -> bool {
        bool::from(self.dlr_tag(message_id).as_bytes().ct_eq(tag))
    }
}

/// What [`KannelSender`] needs.
pub struct KannelConfig {
    /// Kannel's `sendsms` URL (no query).
    pub sendsms_url: String,
    /// The `sendsms-user` username.
    pub username: String,
    /// Its password.
    pub password: Zeroizing<String>,
    /// The sender number on messages; each message's own `from` (the
    /// settings' `sms_sender`) when `None`.
    pub from: Option<String>,
    /// The issuer's base URL as Kannel reaches it.
    pub public_base_url: String,
    /// The gateway secret (tags in `dlr-url`s).
    pub gateway_secret: std::sync::Arc<GatewaySecret>,
    /// Time allowed for one `sendsms` request, connecting included.
    pub timeout: Duration,
}

impl fmt::Debug for KannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KannelConfig")
            .field("sendsms_url", &self.sendsms_url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("from", &self.from)
            .field("public_base_url", &self.public_base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// An [`SmsSender`] over Kannel's `sendsms` interface. Blocking: the
/// delivery worker calls it from a blocking thread.
pub struct KannelSender {
    agent: ureq::Agent,
    config: KannelConfig,
}

impl fmt::Debug for KannelSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KannelSender")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn enc(s: &str) -> percent_encoding::PercentEncode<'_> {
    utf8_percent_encode(s, QUERY_VALUE)
}

impl KannelSender {
    /// A sender with its own HTTP agent (per-request timeout
    /// `config.timeout`, HTTP statuses read as answers).
    pub fn new(config: KannelConfig) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(config.timeout))
            .user_agent(concat!("pooya-issuer/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { agent, config }
    }

    /// The `dlr-url` of a message: the issuer's delivery-report route with
    /// the message id, Kannel's `%d` (the report type) and the tag.
    pub fn dlr_url(&self, message_id: &str) -> String {
        format!(
            "{}{DLR_PATH}?msg={}&type=%d&tag={}",
            self.config.public_base_url.trim_end_matches('/'),
            enc(message_id),
            self.config.gateway_secret.dlr_tag(message_id)
        )
    }

    /// The whole `sendsms` request URL of `sms` (it holds the password and
    /// the body: wiped on drop, never logged).
    pub fn request_url(&self, sms: &Sms) -> Zeroizing<String> {
        let from = self.config.from.as_deref().unwrap_or(&sms.from);
        Zeroizing::new(format!(
            "{}?username={}&password={}&from={}&to={}&charset=UTF-8&coding=2&text={}\
             &dlr-mask={DLR_MASK}&dlr-url={}",
            self.config.sendsms_url,
            enc(&self.config.username),
            enc(&self.config.password),
            enc(from),
            enc(&sms.to),
            enc(&sms.body),
            enc(&self.dlr_url(&sms.message_id)),
        ))
    }
}

/// What Kannel's `sendsms` answered, read: 202 with `0: Accepted for
/// delivery` or `3: Queued for later delivery` is taken; anything else is
/// not.
fn taken(status: u16, body: &str) -> bool {
    status == 202 && (body.starts_with("0:") || body.starts_with("3:"))
}

/// A short description of a transport failure: its kind only (ureq's
/// own messages may quote the URL, which holds the password).
fn describe(e: &ureq::Error) -> &'static str {
    match e {
        ureq::Error::Timeout(_) => "timed out",
        ureq::Error::Io(_) => "connection failed",
        ureq::Error::ConnectionFailed => "connection failed",
        ureq::Error::HostNotFound => "host not found",
        ureq::Error::BodyExceedsLimit(_) => "answer too large",
        _ => "request failed",
    }
}

impl SmsSender for KannelSender {
    /// # Errors
    /// [`IssuerError::Sms`] when Kannel answers anything but "accepted" or
    /// "queued", cannot be reached, or does not answer within the timeout:
    /// the worker retries the message with backoff.
    fn send(&self, sms: &Sms) -> Result<Option<String>, IssuerError> {
        let url = self.request_url(sms);
        let mut resp = self.agent.get(url.as_str()).call().map_err(|e| {
            let what = describe(&e);
            tracing::warn!(message_id = %sms.message_id, what, "Kannel sendsms failed");
            IssuerError::Sms(format!("kannel sendsms: {what}"))
        })?;
        drop(url);
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .unwrap_or_default();
        if taken(status, &body) {
            tracing::debug!(message_id = %sms.message_id, status, "Kannel took the message");
            Ok(None)
        } else {
            // Kannel's refusals ("3: Queued"… aside) are short fixed texts
            // naming the problem, never the message: keep the first line.
            let reason: String = body
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_control())
                .take(80)
                .collect();
            tracing::warn!(message_id = %sms.message_id, status, reason, "Kannel refused the message");
            Err(IssuerError::Sms(format!(
                "kannel sendsms answered {status}: {reason}"
            )))
        }
    }
}

/// Query parameters: names and decoded values (which may be secret).
type Pairs = Vec<(String, Zeroizing<Vec<u8>>)>;

/// Splits a raw query string into names and percent-decoded values
/// (`+` is a space, as in HTML forms and Kannel's own encoding). A name
/// must appear once at most.
fn query_pairs(raw: &str) -> Result<Pairs, KannelError> {
    let mut out: Pairs = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = percent_decode_str(name)
            .decode_utf8()
            .map_err(|_| KannelError::InvalidQuery("a parameter name is not UTF-8"))?
            .into_owned();
        if out.iter().any(|(n, _)| *n == name) {
            return Err(KannelError::InvalidQuery("a parameter is repeated"));
        }
        let value = Zeroizing::new(value.replace('+', " "));
        let bytes = Zeroizing::new(percent_decode_str(&value).collect::<Vec<u8>>());
        out.push((name, bytes));
    }
    Ok(out)
}

fn take(pairs: &mut Vec<(String, Zeroizing<Vec<u8>>)>, name: &str) -> Option<Zeroizing<Vec<u8>>> {
    let i = pairs.iter().position(|(n, _)| n == name)?;
    Some(pairs.swap_remove(i).1)
}

fn utf8(v: Zeroizing<Vec<u8>>, what: &'static str) -> Result<String, KannelError> {
    String::from_utf8(v.to_vec()).map_err(|_| KannelError::InvalidQuery(what))
}

/// A delivery report, as Kannel calls the `dlr-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlrQuery {
    /// The outbox message id.
    pub message_id: String,
    /// What happened.
    pub report: DeliveryReport,
    /// The tag from the `dlr-url` (to check with
    /// [`GatewaySecret::verify_dlr_tag`]).
    pub tag: String,
}

/// The report of a Kannel DLR type (`%d`; Kannel user guide, "Delivery
/// reports": 1 delivered, 2 failed, 4 buffered, 8 SMSC submit, 16 SMSC
/// reject).
pub fn report_of_type(t: u32) -> Option<DeliveryReport> {
    match t {
        1 => Some(DeliveryReport::Delivered),
        2 => Some(DeliveryReport::Failed),
        4 => Some(DeliveryReport::Buffered),
        8 => Some(DeliveryReport::SmscSubmitted),
        16 => Some(DeliveryReport::SmscRejected),
        _ => None,
    }
}

impl DlrQuery {
    /// Parses `msg`, `type` and `tag` from the raw query string.
    ///
    /// # Errors
    /// [`KannelError::InvalidQuery`] for a missing, repeated or unexpected
    /// parameter; [`KannelError::InvalidReport`] for a type that is not
    /// one of [`report_of_type`]'s.
    pub fn parse(raw: &str) -> Result<Self, KannelError> {
        let mut pairs = query_pairs(raw)?;
        let missing = KannelError::InvalidQuery("msg, type and tag are required");
        let message_id = utf8(take(&mut pairs, "msg").ok_or(missing.clone())?, "msg")?;
        let t = utf8(take(&mut pairs, "type").ok_or(missing.clone())?, "type")?;
        let tag = utf8(take(&mut pairs, "tag").ok_or(missing)?, "tag")?;
        if !pairs.is_empty() {
            return Err(KannelError::InvalidQuery("an unexpected parameter"));
        }
        let report = t
            .parse::<u32>()
            .ok()
            .and_then(report_of_type)
            .ok_or(KannelError::InvalidReport)?;
        Ok(Self {
            message_id,
            report,
            tag,
        })
    }
}

/// An inbound message, as an `sms-service`'s `get-url` hands it over:
/// `secret`, `from` (`%p`), `to` (`%P`), `text` (`%a`) and optionally
/// `coding` (`%c`: 2 is UCS-2, as Kannel hands over a UCS-2 message
/// without `mo-recode`) and `charset` (`%C`).
pub struct InboundQuery {
    /// The gateway secret given (to check with [`GatewaySecret::matches`]).
    pub secret: Zeroizing<Vec<u8>>,
    /// The sender's number.
    pub from: String,
    /// The number it was sent to.
    pub to: String,
    /// The text's bytes as handed over; may hold card digits, so wiped
    /// and never logged ([`InboundQuery::text`] decodes them).
    text: Zeroizing<Vec<u8>>,
    /// `coding=2`: the bytes are UCS-2.
    ucs2: bool,
    /// The `charset` given, upper-cased.
    charset: Option<Vec<u8>>,
}

impl fmt::Debug for InboundQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundQuery")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// Decodes UCS-2 / UTF-16 big-endian bytes (3GPP TS 23.038 §6.2.3 UCS2,
/// as Kannel hands it over).
fn utf16be(bytes: &[u8]) -> Result<Zeroizing<String>, KannelError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(KannelError::InvalidText);
    }
    let units: Zeroizing<Vec<u16>> = Zeroizing::new(
        bytes
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect(),
    );
    String::from_utf16(&units)
        .map(Zeroizing::new)
        .map_err(|_| KannelError::InvalidText)
}

impl InboundQuery {
    /// Parses the raw query string (the text is decoded by
    /// [`InboundQuery::text`]).
    ///
    /// # Errors
    /// [`KannelError::InvalidQuery`] for a missing, repeated or unexpected
    /// parameter, or a `coding` other than 0, 1 or 2.
    pub fn parse(raw: &str) -> Result<Self, KannelError> {
        let mut pairs = query_pairs(raw)?;
        let missing = KannelError::InvalidQuery("secret, from, to and text are required");
        let secret = take(&mut pairs, "secret").ok_or(missing.clone())?;
        let from = utf8(take(&mut pairs, "from").ok_or(missing.clone())?, "from")?;
        let to = utf8(take(&mut pairs, "to").ok_or(missing.clone())?, "to")?;
        let text = take(&mut pairs, "text").ok_or(missing)?;
        let coding = take(&mut pairs, "coding");
        let charset = take(&mut pairs, "charset");
        if !pairs.is_empty() {
            return Err(KannelError::InvalidQuery("an unexpected parameter"));
        }
        let ucs2 = match coding.as_deref().map(|c| c.as_slice()) {
            None | Some(b"") | Some(b"0") | Some(b"1") => false,
            Some(b"2") => true,
            Some(_) => return Err(KannelError::InvalidQuery("coding is 0, 1 or 2")),
        };
        Ok(Self {
            secret,
            from,
            to,
            text,
            ucs2,
            charset: charset.map(|c| c.to_ascii_uppercase()),
        })
    }

    /// The text, decoded (after the secret is checked: a caller without it
    /// learns nothing of how texts are read).
    ///
    /// # Errors
    /// [`KannelError::InvalidText`] for a text that is not UTF-8 (or
    /// UTF-16BE with `coding=2`), or of another `charset`.
    pub fn text(&self) -> Result<Zeroizing<String>, KannelError> {
        match (self.ucs2, self.charset.as_deref()) {
            (true, None | Some(b"UTF-16BE" | b"UCS-2" | b"UCS-2BE" | b"")) => utf16be(&self.text),
            (false, None | Some(b"UTF-8" | b"")) => Ok(Zeroizing::new(
                String::from_utf8(self.text.to_vec()).map_err(|_| KannelError::InvalidText)?,
            )),
            _ => Err(KannelError::InvalidText),
        }
    }
}

#[cfg(test)]
mod tests;
