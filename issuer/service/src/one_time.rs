//! One-time second PINs sent by SMS (issue 6): the SMS version, where a
//! customer texts the last four digits of a card to the short code
//! (`POST /v1/sms/inbound`), and Harim, where a payment page asks for a PIN
//! bound to one amount and payee (`POST /v1/otp-requests`); and their part
//! in `POST /v1/verify`.
//!
//! Codes are seven digits from the OS CSPRNG, stored only as keyed hashes
//! ([`HashDomain::OneTimeCode`]) over the card, the channel and, for Harim,
//! the amount and payee (dynamic linking, PSD2 RTS Art. 5), valid for
//! `otp_ttl_secs`, spent once. Rate limits apply per card and per phone.

use std::fmt;

use pooya_protocol::pin::normalize_payee;
use pooya_protocol::{Pan, PinKind, Transaction, TxType, normalize_digits, normalize_phone};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::IssuerError;
use crate::error::{Field, PayeeAt, ServiceError};
use crate::keys::HashDomain;
use crate::metrics::ReplyCount;
use crate::outbox::Notice;
use crate::rules::{HOUR, OtpLimits};
use crate::service::Issuer;
use crate::store::{CodeChannel, CodeState, IssueCode, Issued};

/// Digits of a one-time PIN sent by SMS.
pub const ONE_TIME_CODE_DIGITS: usize = 7;
/// Longest inbound SMS text looked at, in characters (longer is "other
/// text").
const MAX_INBOUND_BODY_CHARS: usize = 160;

/// `POST /v1/sms/inbound` body: a message the SMS centre received. Its
/// `Debug` hides the text (card digits), which is wiped on drop.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InboundSms {
    /// The sender's mobile number, in any form `normalize_phone` accepts.
    pub from: String,
    /// The number it was sent to (the short code).
    pub to: String,
    /// The text: the last four digits of a card.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub body: Zeroizing<String>,
}

impl fmt::Debug for InboundSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundSms")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("body", &"<redacted>")
            .finish()
    }
}

/// What the issuer did with an inbound message.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundStatus {
    /// Sent to the short code: answered (a code, help or "please wait"),
    /// or left unanswered past the per-phone reply limit. The answer is the
    /// same in every case.
    Accepted,
    /// Sent to another number: not for this service, no reply.
    Ignored,
}

/// `POST /v1/sms/inbound` answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundAnswer {
    /// What was done.
    pub status: InboundStatus,
}

/// `POST /v1/otp-requests` body: a payment page's "request dynamic PIN".
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OtpRequest {
    /// The card number; wiped on drop.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub pan: Zeroizing<String>,
    /// The amount in Rials.
    pub amount: u64,
    /// The payee's identifier, bound into the code (as `payee` in
    /// `/v1/verify`). The name the SMS shows is the one the bank
    /// registered for it (`PUT /v1/merchants/{payee_id}`); the gateway
    /// cannot supply one.
    pub payee_id: String,
    /// The transaction type (`purchase`, `transfer`, `bill`), bound into
    /// the code and named in the SMS. Required: `missing_type` without it.
    #[serde(
        rename = "type",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "pooya_protocol::wire::deserialize_tx_type"
    )]
    pub tx_type: Option<TxType>,
}

impl fmt::Debug for OtpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpRequest")
            .field("pan", &"<redacted>")
            .field("amount", &self.amount)
            .field("payee_id", &self.payee_id)
            .field("type", &self.tx_type)
            .finish()
    }
}

/// `POST /v1/otp-requests` answer (202), the same whether or not the bank
/// knows the card.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpRequestAnswer {
    /// Always `requested`: if the card is registered, its phone gets the
    /// PIN by SMS.
    pub status: String,
    /// When a PIN sent now expires, Unix seconds.
    pub expires_at: u64,
    /// Its lifetime, seconds.
    pub valid_for_secs: u64,
}

/// What a code is bound to, besides its card.
#[derive(Clone, Copy)]
enum Binding<'a> {
    Sms,
    /// A Harim code: the transaction's type, amount and payee.
    Harim(Transaction<'a>),
}

/// Which one-time code a verification matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OneTimeMatch {
    /// Nothing matched.
    None,
    /// A pending code: spend it (row id) and answer `matched: kind`.
    Spend {
        /// The code's row.
        id: i64,
        /// `second` for the SMS version, `transaction` for Harim.
        kind: PinKind,
    },
    /// A code already spent.
    Replayed,
}

/// The one-time codes of a card, checked against a verification.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OneTimeLookup {
    /// The card had one-time codes issued in the last hour.
    pub(crate) any: bool,
    /// What the code matched.
    pub(crate) matched: OneTimeMatch,
}

/// The last four digits of a card in an inbound SMS: exactly four ASCII,
/// Persian or Arabic-Indic digits, with any spaces and direction marks
/// around or between them. Anything else is `None`.
pub fn parse_last4(body: &str) -> Option<String> {
    if body.chars().count() > MAX_INBOUND_BODY_CHARS {
        return None;
    }
    let kept: String = body
        .chars()
        .filter(|c| !(c.is_whitespace() || is_format_mark(*c)))
        .collect();
    let digits = normalize_digits(&kept)?;
    (digits.len() == 4).then_some(digits)
}

/// Invisible marks phones put into right-to-left text.
fn is_format_mark(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}'
    )
}

/// Is `to` the short code (also written `+98…`, `98…` or `0098…`, with
/// Persian digits or spaces)?
fn is_short_code(to: &str, short_code: &str) -> bool {
    let compact: String = to
        .chars()
        .filter(|c| !(c.is_whitespace() || *c == '-' || is_format_mark(*c)))
        .collect();
    let compact = compact.strip_prefix('+').unwrap_or(&compact);
    let Some(d) = normalize_digits(compact) else {
        return false;
    };
    d == short_code
        || d.strip_prefix("0098") == Some(short_code)
        || d.strip_prefix("98") == Some(short_code)
}

/// Seven uniformly random digits from the OS CSPRNG.
fn new_code(rng: &SystemRandom) -> Result<Zeroizing<String>, IssuerError> {
    let mut code = Zeroizing::new(String::with_capacity(ONE_TIME_CODE_DIGITS));
    while code.len() < ONE_TIME_CODE_DIGITS {
        let mut bytes = Zeroizing::new([0u8; 16]);
        rng.fill(&mut bytes[..])
            .map_err(|_| IssuerError::Crypto("random"))?;
        // Rejection sampling: 250 = 25 × 10 keeps the digits uniform.
        for b in bytes.iter().filter(|b| **b < 250) {
            if code.len() == ONE_TIME_CODE_DIGITS {
                break;
            }
            code.push(char::from(b'0' + b % 10));
        }
    }
    Ok(code)
}

/// What the short code answers a message it cannot serve.
enum Reply {
    Help,
    Silent,
}

impl Issuer {
    fn otp_limits(&self) -> OtpLimits {
        OtpLimits::from_settings(&self.settings)
    }

    /// The keyed hash of a one-time code and what it is bound to.
    fn one_time_hash(
        &self,
        card_id: &str,
        binding: Binding<'_>,
        code: &str,
    ) -> Result<[u8; 32], IssuerError> {
        let mut data = Zeroizing::new(Vec::with_capacity(96));
        match binding {
            Binding::Sms => data.extend_from_slice(b"sms\0"),
            // Version 2 binds the transaction type too (issue 13); a code
            // hashed as version 1 (`harim\0`) no longer matches.
            Binding::Harim(_) => data.extend_from_slice(b"harim2\0"),
        }
        data.extend_from_slice(card_id.as_bytes());
        data.push(0);
        if let Binding::Harim(tx) = binding {
            // Type names and payees have no control characters, so NUL
            // ends them.
            data.extend_from_slice(tx.tx_type.as_str().as_bytes());
            data.push(0);
            data.extend_from_slice(&tx.amount.to_be_bytes());
            data.extend_from_slice(tx.payee.as_bytes());
            data.push(0);
        }
        data.extend_from_slice(code.as_bytes());
        self.keys.keyed_hash(HashDomain::OneTimeCode, &data)
    }

    /// `POST /v1/sms/inbound`: the SMS version. The code, its rate-limit
    /// count and its message are committed together; the reply goes out
    /// from the outbox.
    ///
    /// # Errors
    /// `invalid_phone`, or a storage failure.
    pub async fn sms_inbound(&self, req: InboundSms) -> Result<InboundAnswer, ServiceError> {
        if !is_short_code(&req.to, &self.settings.sms_short_code) {
            tracing::info!("inbound SMS to another number ignored");
            return Ok(InboundAnswer {
                status: InboundStatus::Ignored,
            });
        }
        let phone =
            normalize_phone(&req.from).map_err(|e| ServiceError::protocol(Field::Phone, &e))?;
        let now = self.now();
        let at = i64::try_from(now).unwrap_or(i64::MAX);
        let last4 = parse_last4(&req.body);
        let card = match &last4 {
            Some(l) => self.store.sms_card(&phone, l).await?,
            None => None,
        };
        let max_replies = self.settings.sms_max_replies_per_hour;
        let ttl = self.settings.otp_ttl_secs;
        let expires_at = now + ttl;
        let reply = match card {
            Some(card) => {
                let code = new_code(&self.rng)?;
                let hash = self.one_time_hash(&card.id, Binding::Sms, &code)?;
                let message = Notice::SmsPin {
                    code: code.to_string(),
                    last4: card.last4.clone(),
                    minutes: ttl.div_ceil(60),
                    expires_at,
                }
                .to(&phone, self.keys.as_ref())?;
                let issued = self
                    .store
                    .issue_one_time_code(IssueCode {
                        channel: CodeChannel::Sms,
                        card_id: Some(card.id.clone()),
                        subjects: vec![card.pan_hash.to_vec(), phone.as_bytes().to_vec()],
                        code_hash: hash,
                        expires_at: i64::try_from(expires_at).unwrap_or(i64::MAX),
                        limits: self.otp_limits(),
                        message: Some(message),
                        wait_reply: Some((phone.clone(), max_replies)),
                        now: at,
                    })
                    .await?;
                match issued {
                    Issued::Issued => {
                        self.metrics.one_time_code(false);
                        tracing::info!("one-time PIN queued for an SMS request");
                        self.wake_outbox();
                    }
                    Issued::Limited { told_to_wait, .. } => {
                        self.metrics.rate_limited(false);
                        if told_to_wait {
                            self.metrics.sms_reply(ReplyCount::Wait);
                            self.wake_outbox();
                        } else {
                            self.suppressed();
                        }
                    }
                }
                None
            }
            None => {
                let help = Notice::SmsHelp {
                    short_code: self.settings.sms_short_code.clone(),
                }
                .plain_to(&phone)?;
                Some(
                    if self
                        .store
                        .reply_without_code(&phone, at, max_replies, help)
                        .await?
                    {
                        Reply::Help
                    } else {
                        Reply::Silent
                    },
                )
            }
        };
        match reply {
            Some(Reply::Help) => {
                self.metrics.sms_reply(ReplyCount::Help);
                self.wake_outbox();
            }
            Some(Reply::Silent) => self.suppressed(),
            None => {}
        }
        Ok(InboundAnswer {
            status: InboundStatus::Accepted,
        })
    }

    fn suppressed(&self) {
        self.metrics.sms_reply(ReplyCount::Suppressed);
        tracing::info!("short-code reply suppressed: the phone's hourly limit is reached");
    }

    /// `POST /v1/otp-requests`: Harim. A card the bank does not know gets
    /// the same answer after the same work (a code is made and hashed, the
    /// rate limits of its card number are checked and counted), only no
    /// code is stored and no SMS sent.
    ///
    /// # Errors
    /// `invalid_pan`, `invalid_amount`, `invalid_payee`, `missing_type`,
    /// `unknown_payee`, `rate_limited`, or a storage failure.
    pub async fn otp_request(&self, req: OtpRequest) -> Result<OtpRequestAnswer, ServiceError> {
        let pan = Pan::parse(&req.pan).map_err(|e| ServiceError::protocol(Field::Pan, &e))?;
        if req.amount == 0 {
            return Err(ServiceError::invalid(
                Field::Amount,
                "amount must be a positive number of Rials",
            ));
        }
        let payee_id = normalize_payee(&req.payee_id)
            .map_err(|e| ServiceError::protocol(Field::Payee, &e))?
            .to_owned();
        let tx_type = req.tx_type.ok_or_else(|| {
            ServiceError::invalid(
                Field::TxTypeMissing,
                "type (purchase, transfer or bill) is required",
            )
        })?;
        // The name shown comes from the bank's registry (issue 10, item 6),
        // checked before the card so the answer says nothing about cards.
        let payee_name = self
            .store
            .merchant(&payee_id)
            .await?
            .ok_or(ServiceError::UnknownPayee(PayeeAt::Request))?
            .name;
        let now = self.now();
        let at = i64::try_from(now).unwrap_or(i64::MAX);
        let ttl = self.settings.otp_ttl_secs;
        let expires_at = now + ttl;
        let pan_hash = self
            .keys
            .keyed_hash(HashDomain::Pan, pan.expose_secret().as_bytes())?;
        let card = self.store.harim_card(pan_hash).await?;
        let code = new_code(&self.rng)?;
        let card_id = card.as_ref().map(|c| c.id.clone()).unwrap_or_default();
        let hash = self.one_time_hash(
            &card_id,
            Binding::Harim(Transaction::new(tx_type, req.amount, &payee_id)),
            &code,
        )?;
        let mut subjects = vec![pan_hash.to_vec()];
        let message = match &card {
            Some(c) => {
                subjects.push(c.phone.as_bytes().to_vec());
                Some(
                    Notice::HarimPin {
                        code: code.to_string(),
                        last4: c.last4.clone(),
                        amount: req.amount,
                        tx_type: Some(tx_type),
                        payee_name,
                        minutes: ttl.div_ceil(60),
                        expires_at,
                    }
                    .to(&c.phone, self.keys.as_ref())?,
                )
            }
            None => None,
        };
        let issued = self
            .store
            .issue_one_time_code(IssueCode {
                channel: CodeChannel::Harim,
                card_id: card.as_ref().map(|c| c.id.clone()),
                subjects,
                code_hash: hash,
                expires_at: i64::try_from(expires_at).unwrap_or(i64::MAX),
                limits: self.otp_limits(),
                message,
                wait_reply: None,
                now: at,
            })
            .await?;
        if let Issued::Limited {
            retry_after_secs, ..
        } = issued
        {
            self.metrics.rate_limited(true);
            return Err(ServiceError::RateLimited { retry_after_secs });
        }
        if let Some(c) = card {
            self.metrics.one_time_code(true);
            self.wake_outbox();
            tracing::info!(card_id = %c.id, "Harim PIN queued");
        }
        Ok(OtpRequestAnswer {
            status: "requested".to_owned(),
            expires_at,
            valid_for_secs: ttl,
        })
    }

    /// Checks `code` against the card's one-time codes of the last hour,
    /// every one of them in constant time. `harim` is the transaction the
    /// verification names, its payee normalised (Harim codes are bound to
    /// its type, exact amount and payee).
    pub(crate) async fn check_one_time(
        &self,
        card_id: &str,
        code: &str,
        harim: Option<Transaction<'_>>,
        now: u64,
    ) -> Result<OneTimeLookup, IssuerError> {
        let at = i64::try_from(now).unwrap_or(i64::MAX);
        let rows = self.store.one_time_codes(card_id, at - HOUR).await?;
        let mut lookup = OneTimeLookup {
            any: !rows.is_empty(),
            matched: OneTimeMatch::None,
        };
        if rows.is_empty() || code.len() != ONE_TIME_CODE_DIGITS {
            return Ok(lookup);
        }
        let sms = self.one_time_hash(card_id, Binding::Sms, code)?;
        let harim = match harim {
            Some(tx) => Some(self.one_time_hash(card_id, Binding::Harim(tx), code)?),
            None => None,
        };
        let mut found: Option<(i64, CodeChannel, bool, bool)> = None;
        for row in &rows {
            let candidate = match row.channel {
                CodeChannel::Sms => Some(&sms),
                CodeChannel::Harim => harim.as_ref(),
            };
            let Some(candidate) = candidate else {
                continue;
            };
            let equal: bool = candidate.as_slice().ct_eq(row.code_hash.as_slice()).into();
            if equal && found.is_none() {
                found = Some((
                    row.id,
                    row.channel,
                    row.state == CodeState::Pending && row.expires_at > at,
                    row.state == CodeState::Used,
                ));
            }
        }
        lookup.matched = match found {
            Some((id, ch, true, _)) => OneTimeMatch::Spend {
                id,
                kind: ch.pin_kind(),
            },
            Some((_, _, false, true)) => OneTimeMatch::Replayed,
            _ => OneTimeMatch::None,
        };
        Ok(lookup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn last_four_digits_in_any_script() {
        for (body, want) in [
            ("0001", Some("0001")),
            (" 0 0 0 1 ", Some("0001")),
            ("۰۰۰۱", Some("0001")),
            ("٠٠٠١", Some("0001")),
            ("\u{200F}۱۲۳۴\u{200F}", Some("1234")),
            ("12 34\n", Some("1234")),
            ("123", None),
            ("12345", None),
            ("help", None),
            ("1234 please", None),
            ("", None),
            ("12-34", None),
        ] {
            assert_eq!(parse_last4(body).as_deref(), want, "{body:?}");
        }
    }

    #[test]
    fn short_code_forms() {
        for to in [
            "30003303",
            "+9830003303",
            "9830003303",
            "۳۰۰۰۳۳۰۳",
            "3000 3303",
        ] {
            assert!(is_short_code(to, "30003303"), "{to}");
        }
        for to in ["3000330", "300033031", "+989121234567", "", "abc"] {
            assert!(!is_short_code(to, "30003303"), "{to}");
        }
    }

    #[test]
    fn codes_are_seven_uniform_digits() {
        let rng = SystemRandom::new();
        let mut counts = [0u32; 10];
        for _ in 0..2000 {
            let c = new_code(&rng).unwrap();
            assert_eq!(c.len(), ONE_TIME_CODE_DIGITS);
            for b in c.bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        // 14,000 digits: each expected 1,400 times; 1,200..1,600 is over
        // five standard deviations wide.
        assert!(
            counts.iter().all(|n| (1200..1600).contains(n)),
            "{counts:?}"
        );
    }

    proptest! {
        #[test]
        fn parse_last4_never_panics_and_yields_four_ascii_digits(body in ".{0,200}") {
            if let Some(d) = parse_last4(&body) {
                prop_assert_eq!(d.len(), 4);
                prop_assert!(d.bytes().all(|b| b.is_ascii_digit()));
            }
        }

        #[test]
        fn spaced_digits_parse(d in "[0-9]{4}", sp in proptest::collection::vec(" {0,3}", 5)) {
            let body: String = sp.iter().zip(d.chars().map(Some).chain([None]))
                .map(|(s, c)| format!("{s}{}", c.map(String::from).unwrap_or_default()))
                .collect();
            prop_assert_eq!(parse_last4(&body), Some(d));
        }
    }
}
