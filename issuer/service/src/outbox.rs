//! The durable SMS outbox (docs/issuer.md, "SMS delivery").
//!
//! Every message is written by the store in the same transaction as the
//! state it reports ([`NewSms`] in the store's operations), as a typed
//! [`Notice`]: JSON, sealed under the key provider when it holds a code
//! (associated data: its random `message_id`). A [`DeliveryWorker`] in each
//! node claims due messages (leased, so two nodes never send one message
//! at once), renders them in the bank's language, hands them to the
//! [`SmsSender`] and records the outcome: delivered (payload wiped) or
//! retried with exponential backoff, and given up after
//! [`MAX_ATTEMPTS`]. A crash between the commit and the delivery loses
//! nothing: the message waits for the next claim. A crash between the
//! sender's acceptance and the record sends it again after the lease, the
//! one case of a second copy (at-least-once delivery).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use pooya_protocol::TxType;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::IssuerError;
use crate::clock::Clock;
use crate::keys::KeyProvider;
use crate::messages::Message;
use crate::metrics::Metrics;
use crate::rules::Block;
use crate::settings::Settings;
use crate::store::{DevSms, QueuedSms, Store};

/// The key-provider purpose of sealed outbox payloads.
pub const PAYLOAD_PURPOSE: &str = "sms-payload";
/// The key-provider purpose of the development recorder's bodies.
pub const DEV_BODY_PURPOSE: &str = "sms-body";
/// Attempts before a message is given up (`failed`): with the backoff
/// below, about a day of retrying.
pub const MAX_ATTEMPTS: u32 = 20;
/// How long a claim lasts before another worker may take the message.
pub const LEASE_SECS: i64 = 60;
/// The longest wait between two attempts.
pub const MAX_BACKOFF_SECS: i64 = 3600;

/// What a message says, as stored: owned, serialisable, rendered at
/// delivery ([`Notice::message`] → [`Message::render`]). The variants that
/// hold a code are sealed at rest and wiped on drop.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Notice {
    /// The activation code (or its SMS part).
    ActivationCode {
        /// The code as shown (grouped, or the SMS part).
        code: String,
        /// Minutes it stays valid.
        minutes: u64,
        /// Last four digits of the card.
        last4: String,
        /// Only the code's second part.
        split: bool,
    },
    /// The SMS version was enabled.
    SmsChannelEnabled {
        /// Last four digits of the card.
        last4: String,
        /// The short code.
        short_code: String,
    },
    /// The card moved to another phone (to the old one).
    PhoneChanged {
        /// Last four digits of the card.
        last4: String,
    },
    /// A card was activated on a device.
    CardActivated {
        /// Last four digits of the card.
        last4: String,
        /// The device's label.
        device_label: String,
        /// When.
        at: u64,
    },
    /// Blocked for a while.
    CardBlocked {
        /// Last four digits of the card.
        last4: String,
        /// Minutes.
        minutes: u64,
    },
    /// Blocked, and the next block lasts.
    CardBlockedLastWarning {
        /// Last four digits of the card.
        last4: String,
        /// Minutes.
        minutes: u64,
    },
    /// Blocked until lifted.
    CardBlockedUntilLifted {
        /// Last four digits of the card.
        last4: String,
    },
    /// A card's app state changed (issue 13, item 2): a lost phone at an
    /// ATM, the bank's suspension, resumption or revocation, or the card
    /// removed on the phone.
    AppStatusChanged {
        /// Last four digits of the card.
        last4: String,
        /// Who changed it.
        #[zeroize(skip)]
        cause: crate::store::StatusCause,
    },
    /// An SMS-version PIN.
    SmsPin {
        /// The code.
        code: String,
        /// Last four digits of the card.
        last4: String,
        /// Minutes it stays valid.
        minutes: u64,
        /// When it expires.
        expires_at: u64,
    },
    /// "Please wait".
    SmsWait {
        /// Seconds until a code can be sent.
        seconds: u64,
    },
    /// How to use the short code.
    SmsHelp {
        /// The short code.
        short_code: String,
    },
    /// A Harim PIN for one payment.
    HarimPin {
        /// The code.
        code: String,
        /// Last four digits of the card.
        last4: String,
        /// The amount in Rials.
        amount: u64,
        /// The transaction type; absent in a notice queued before types
        /// existed (the SMS then reads as a purchase, as it did).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[zeroize(skip)]
        tx_type: Option<TxType>,
        /// The registered payee name.
        payee_name: String,
        /// Minutes it stays valid.
        minutes: u64,
        /// When it expires.
        expires_at: u64,
    },
}

/// The kind of a [`Notice`], stored beside it (`sms_outbox.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// [`Notice::ActivationCode`].
    ActivationCode,
    /// [`Notice::SmsChannelEnabled`].
    SmsChannelEnabled,
    /// [`Notice::PhoneChanged`].
    PhoneChanged,
    /// [`Notice::CardActivated`].
    CardActivated,
    /// [`Notice::CardBlocked`].
    CardBlocked,
    /// [`Notice::CardBlockedLastWarning`].
    CardBlockedLastWarning,
    /// [`Notice::CardBlockedUntilLifted`].
    CardBlockedUntilLifted,
    /// [`Notice::AppStatusChanged`].
    AppStatusChanged,
    /// [`Notice::SmsPin`].
    SmsPin,
    /// [`Notice::SmsWait`].
    SmsWait,
    /// [`Notice::SmsHelp`].
    SmsHelp,
    /// [`Notice::HarimPin`].
    HarimPin,
}

impl NoticeKind {
    const ALL: [NoticeKind; 12] = [
        Self::AppStatusChanged,
        Self::ActivationCode,
        Self::SmsChannelEnabled,
        Self::PhoneChanged,
        Self::CardActivated,
        Self::CardBlocked,
        Self::CardBlockedLastWarning,
        Self::CardBlockedUntilLifted,
        Self::SmsPin,
        Self::SmsWait,
        Self::SmsHelp,
        Self::HarimPin,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActivationCode => "activation_code",
            Self::SmsChannelEnabled => "sms_channel_enabled",
            Self::PhoneChanged => "phone_changed",
            Self::CardActivated => "card_activated",
            Self::CardBlocked => "card_blocked",
            Self::CardBlockedLastWarning => "card_blocked_last_warning",
            Self::CardBlockedUntilLifted => "card_blocked_until_lifted",
            Self::AppStatusChanged => "app_status_changed",
            Self::SmsPin => "sms_pin",
            Self::SmsWait => "sms_wait",
            Self::SmsHelp => "sms_help",
            Self::HarimPin => "harim_pin",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Debug for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Notice::{:?}", self.kind())
    }
}

impl Notice {
    /// Its kind.
    pub fn kind(&self) -> NoticeKind {
        match self {
            Self::ActivationCode { .. } => NoticeKind::ActivationCode,
            Self::SmsChannelEnabled { .. } => NoticeKind::SmsChannelEnabled,
            Self::PhoneChanged { .. } => NoticeKind::PhoneChanged,
            Self::CardActivated { .. } => NoticeKind::CardActivated,
            Self::CardBlocked { .. } => NoticeKind::CardBlocked,
            Self::CardBlockedLastWarning { .. } => NoticeKind::CardBlockedLastWarning,
            Self::CardBlockedUntilLifted { .. } => NoticeKind::CardBlockedUntilLifted,
            Self::AppStatusChanged { .. } => NoticeKind::AppStatusChanged,
            Self::SmsPin { .. } => NoticeKind::SmsPin,
            Self::SmsWait { .. } => NoticeKind::SmsWait,
            Self::SmsHelp { .. } => NoticeKind::SmsHelp,
            Self::HarimPin { .. } => NoticeKind::HarimPin,
        }
    }

    /// It carries a code: sealed at rest.
    pub fn holds_secret(&self) -> bool {
        matches!(
            self,
            Self::ActivationCode { .. } | Self::SmsPin { .. } | Self::HarimPin { .. }
        )
    }

    /// The notice of a block (after it is committed), one per block.
    pub fn of_block(block: &Block, last4: &str, lockout_secs: i64) -> Notice {
        let minutes = u64::try_from(lockout_secs).unwrap_or(0).div_ceil(60);
        let last4 = last4.to_owned();
        if block.until_lifted() {
            Notice::CardBlockedUntilLifted { last4 }
        } else if block.next_until_lifted {
            Notice::CardBlockedLastWarning { last4, minutes }
        } else {
            Notice::CardBlocked { last4, minutes }
        }
    }

    /// The message to render.
    pub fn message(&self) -> Message<'_> {
        match self {
            Self::ActivationCode {
                code,
                minutes,
                last4,
                split,
            } => Message::ActivationCode {
                code,
                minutes: *minutes,
                last4,
                split: *split,
            },
            Self::SmsChannelEnabled { last4, short_code } => {
                Message::SmsChannelEnabled { last4, short_code }
            }
            Self::PhoneChanged { last4 } => Message::PhoneChanged { last4 },
            Self::CardActivated {
                last4,
                device_label,
                at,
            } => Message::CardActivated {
                last4,
                device_label,
                at: *at,
            },
            Self::CardBlocked { last4, minutes } => Message::CardBlocked {
                last4,
                minutes: *minutes,
            },
            Self::CardBlockedLastWarning { last4, minutes } => Message::CardBlockedLastWarning {
                last4,
                minutes: *minutes,
            },
            Self::CardBlockedUntilLifted { last4 } => Message::CardBlockedUntilLifted { last4 },
            Self::AppStatusChanged { last4, cause } => Message::AppStatusChanged {
                last4,
                cause: *cause,
            },
            Self::SmsPin {
                code,
                last4,
                minutes,
                expires_at,
            } => Message::SmsPin {
                code,
                last4,
                minutes: *minutes,
                expires_at: *expires_at,
            },
            Self::SmsWait { seconds } => Message::SmsWait { seconds: *seconds },
            Self::SmsHelp { short_code } => Message::SmsHelp { short_code },
            Self::HarimPin {
                code,
                last4,
                amount,
                tx_type,
                payee_name,
                minutes,
                expires_at,
            } => Message::HarimPin {
                code,
                last4,
                amount: *amount,
                tx_type: tx_type.unwrap_or(TxType::Purchase),
                payee_name,
                minutes: *minutes,
                expires_at: *expires_at,
            },
        }
    }

    /// A message to `to`, with a fresh id; its payload is sealed when it
    /// holds a code.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] when sealing or the random id fails.
    pub fn to(self, to: &str, keys: &dyn KeyProvider) -> Result<NewSms, IssuerError> {
        let message_id = new_message_id()?;
        let json = Zeroizing::new(
            serde_json::to_vec(&self).map_err(|_| IssuerError::Crypto("encoding a notice"))?,
        );
        let sealed = self.holds_secret();
        let payload = if sealed {
            keys.seal(PAYLOAD_PURPOSE, message_id.as_bytes(), &json)?
        } else {
            json.to_vec()
        };
        Ok(NewSms {
            message_id,
            to: to.to_owned(),
            kind: self.kind(),
            payload,
            sealed,
        })
    }

    /// A notice that holds no code, as a message to `to` (what stores
    /// queue inside their transactions: block notices, "please wait").
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] for a notice that holds a code (it must be
    /// sealed by the service), or when the random id fails.
    pub fn plain_to(self, to: &str) -> Result<NewSms, IssuerError> {
        if self.holds_secret() {
            return Err(IssuerError::Crypto("a code-bearing notice must be sealed"));
        }
        let payload =
            serde_json::to_vec(&self).map_err(|_| IssuerError::Crypto("encoding a notice"))?;
        Ok(NewSms {
            message_id: new_message_id()?,
            to: to.to_owned(),
            kind: self.kind(),
            payload,
            sealed: false,
        })
    }

    /// Reads a queued message's notice back.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] when the payload does not open or parse.
    pub fn open(q: &QueuedSms, keys: &dyn KeyProvider) -> Result<Notice, IssuerError> {
        let json = if q.sealed {
            keys.open(PAYLOAD_PURPOSE, q.message_id.as_bytes(), &q.payload)?
        } else {
            Zeroizing::new(q.payload.clone())
        };
        let notice: Notice = serde_json::from_slice(&json)
            .map_err(|_| IssuerError::Crypto("an outbox payload does not parse"))?;
        if notice.kind() != q.kind || notice.holds_secret() != q.sealed {
            return Err(IssuerError::Crypto(
                "an outbox payload does not match its row",
            ));
        }
        Ok(notice)
    }
}

/// A random message id: `msg_` and 32 hex digits.
///
/// # Errors
/// [`IssuerError::Crypto`] when the OS random source fails.
pub fn new_message_id() -> Result<String, IssuerError> {
    let mut b = [0u8; 16];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| IssuerError::Crypto("random"))?;
    Ok(format!("msg_{}", hex::encode(b)))
}

/// A message to queue, in the transaction of the state it reports.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSms {
    /// Its random id (the sealed payload's context).
    pub message_id: String,
    /// The recipient, `+989…`.
    pub to: String,
    /// What it says.
    pub kind: NoticeKind,
    /// The notice's JSON, sealed when it holds a code.
    pub payload: Vec<u8>,
    /// `payload` is sealed.
    pub sealed: bool,
}

impl fmt::Debug for NewSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSms")
            .field("message_id", &self.message_id)
            .field("to", &self.to)
            .field("kind", &self.kind)
            .field("sealed", &self.sealed)
            .finish_non_exhaustive()
    }
}

/// One SMS message, rendered, handed to a sender.
#[derive(Clone)]
pub struct Sms {
    /// The outbox's id of the message (for delivery reports).
    pub message_id: String,
    /// The recipient, `+989…`.
    pub to: String,
    /// The sender shown to the recipient (the bank's number).
    pub from: String,
    /// The text; may carry a code, so wiped on drop and never logged.
    pub body: Zeroizing<String>,
    /// When it was queued, Unix seconds.
    pub created_at: u64,
}

impl fmt::Debug for Sms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sms")
            .field("message_id", &self.message_id)
            .field("to", &self.to)
            .field("from", &self.from)
            .field("body", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Something that delivers SMS messages: an SMS gateway. Called from a
/// blocking thread by the delivery worker, after the message's state is
/// committed.
pub trait SmsSender: Send + Sync + 'static {
    /// Hands one message over for delivery; `Ok` with the gateway's
    /// reference when it took it.
    ///
    /// # Errors
    /// [`IssuerError::Sms`] when the gateway refuses it or cannot be
    /// reached (the message is retried).
    fn send(&self, sms: &Sms) -> Result<Option<String>, IssuerError>;
}

/// The development recorder: "delivers" by keeping each message (body
/// sealed) in the store's `dev_sms_log`, where tests and the demo read it
/// (`GET /v1/sms/outbox`). Not an SMS gateway: the `sms.sender` setting
/// `dev_recorder` (docs/issuer.md, "SMS delivery").
pub struct DevRecorder {
    store: Arc<dyn Store>,
    keys: Arc<dyn KeyProvider>,
    runtime: tokio::runtime::Handle,
}

impl DevRecorder {
    /// A recorder writing to `store`, on `runtime`.
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<dyn KeyProvider>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            store,
            keys,
            runtime,
        }
    }
}

impl SmsSender for DevRecorder {
    fn send(&self, sms: &Sms) -> Result<Option<String>, IssuerError> {
        let body_sealed =
            self.keys
                .seal(DEV_BODY_PURPOSE, sms.to.as_bytes(), sms.body.as_bytes())?;
        let row = DevSms {
            to: sms.to.clone(),
            from: sms.from.clone(),
            body_sealed,
            created_at: i64::try_from(sms.created_at).unwrap_or(i64::MAX),
        };
        self.runtime.block_on(self.store.record_dev_sms(row))?;
        Ok(None)
    }
}

/// A message the development recorder kept, opened. Its `Debug` hides the
/// text (it may carry a code), which is wiped on drop.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    /// The recipient.
    pub to: String,
    /// The sender.
    pub from: String,
    /// The text; may carry a one-time PIN or an activation code.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub body: Zeroizing<String>,
    /// Unix seconds.
    pub created_at: u64,
}

impl fmt::Debug for OutboxEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxEntry")
            .field("to", &self.to)
            .field("from", &self.from)
            .field("body", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Most messages one read of the development log returns (the newest).
pub const OUTBOX_LIMIT: u32 = 1000;

/// Reads the development recorder's messages, oldest first.
///
/// # Errors
/// What the store returns, or [`IssuerError::Crypto`] for a body the key
/// does not open.
pub async fn read_dev_log(
    store: &dyn Store,
    keys: &dyn KeyProvider,
    phone: Option<&str>,
) -> Result<Vec<OutboxEntry>, IssuerError> {
    open_dev_rows(store.dev_sms(phone, OUTBOX_LIMIT).await?, keys)
}

/// Opens the development recorder's rows.
///
/// # Errors
/// [`IssuerError::Crypto`] for a body the key does not open.
pub fn open_dev_rows(
    rows: Vec<DevSms>,
    keys: &dyn KeyProvider,
) -> Result<Vec<OutboxEntry>, IssuerError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let body = keys.open(DEV_BODY_PURPOSE, r.to.as_bytes(), &r.body_sealed)?;
        let body = Zeroizing::new(
            String::from_utf8(body.to_vec())
                .map_err(|_| IssuerError::Crypto("an outbox body is not UTF-8"))?,
        );
        out.push(OutboxEntry {
            to: r.to,
            from: r.from,
            body,
            created_at: u64::try_from(r.created_at).unwrap_or(0),
        });
    }
    Ok(out)
}

/// The wait before attempt `attempts + 1`: 2, 4, 8 … seconds, at most
/// [`MAX_BACKOFF_SECS`].
pub fn backoff_secs(attempts: u32) -> i64 {
    let exp = attempts.min(20);
    (2i64 << exp).min(MAX_BACKOFF_SECS)
}

/// The delivery worker of one node.
pub struct DeliveryWorker {
    store: Arc<dyn Store>,
    sender: Arc<dyn SmsSender>,
    keys: Arc<dyn KeyProvider>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: Settings,
    wake: Arc<Notify>,
}

/// Stops a running [`DeliveryWorker`].
pub struct DeliveryHandle {
    stop: Arc<Notify>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl DeliveryHandle {
    /// The handle of a node that delivers nothing (`sms.delivery = false`).
    pub fn idle() -> Self {
        Self {
            stop: Arc::new(Notify::new()),
            task: None,
        }
    }

    /// Stops after the message in hand and waits.
    pub async fn stop(mut self) {
        self.stop.notify_one();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DeliveryHandle {
    fn drop(&mut self) {
        // Not stopped: cut off (a message in hand waits for its lease).
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl DeliveryWorker {
    /// A worker; `wake` is notified by the service after each commit that
    /// queued a message.
    pub fn new(
        store: Arc<dyn Store>,
        sender: Arc<dyn SmsSender>,
        keys: Arc<dyn KeyProvider>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: Settings,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            sender,
            keys,
            clock,
            metrics,
            settings,
            wake,
        }
    }

    /// Runs the worker on the current runtime until stopped: claims due
    /// messages when woken, and every `poll` (messages of other nodes,
    /// retries, messages left by a crash).
    pub fn spawn(self, poll: Duration) -> DeliveryHandle {
        let stop = Arc::new(Notify::new());
        let stopped = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            loop {
                let more = match self.run_once(16).await {
                    Ok(n) => n == 16,
                    Err(e) => {
                        tracing::warn!(code = e.code(), error = %e, "claiming SMS failed");
                        false
                    }
                };
                if more {
                    continue;
                }
                tokio::select! {
                    _ = stopped.notified() => break,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
            }
        });
        DeliveryHandle {
            stop,
            task: Some(task),
        }
    }

    /// Claims and delivers up to `limit` due messages, one after another;
    /// how many were claimed.
    ///
    /// # Errors
    /// What the store returns when claiming.
    pub async fn run_once(&self, limit: u32) -> Result<usize, IssuerError> {
        let now = self.now();
        let claimed = self.store.claim_messages(now, limit, LEASE_SECS).await?;
        let n = claimed.len();
        for q in claimed {
            self.deliver(q).await;
        }
        Ok(n)
    }

    fn now(&self) -> i64 {
        i64::try_from(self.clock.now()).unwrap_or(i64::MAX)
    }

    async fn deliver(&self, q: QueuedSms) {
        let notice = match Notice::open(&q, self.keys.as_ref()) {
            Ok(n) => n,
            Err(e) => {
                // A payload that does not open never will: give it up.
                tracing::error!(
                    id = q.id,
                    code = e.code(),
                    "an outbox message does not open"
                );
                self.metrics.sms(false);
                let _ = self.store.message_failed(q.id, None, e.code()).await;
                return;
            }
        };
        let sms = Sms {
            message_id: q.message_id.clone(),
            to: q.to.clone(),
            from: self.settings.sms_sender.clone(),
            body: Zeroizing::new(notice.message().render(self.settings.language)),
            created_at: u64::try_from(q.created_at).unwrap_or(0),
        };
        drop(notice);
        let sender = Arc::clone(&self.sender);
        let r = tokio::task::spawn_blocking(move || sender.send(&sms))
            .await
            .unwrap_or_else(|_| Err(IssuerError::Sms("the sender panicked".into())));
        let now = self.now();
        let recorded = match r {
            Ok(reference) => {
                self.metrics.sms(true);
                self.store.message_delivered(q.id, now, reference).await
            }
            Err(e) => {
                self.metrics.sms(false);
                let attempts = q.attempts.saturating_add(1);
                let retry_at = (attempts < MAX_ATTEMPTS).then(|| now + backoff_secs(q.attempts));
                tracing::warn!(
                    id = q.id,
                    attempts,
                    gave_up = retry_at.is_none(),
                    code = e.code(),
                    "SMS delivery failed"
                );
                self.store.message_failed(q.id, retry_at, e.code()).await
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(
                id = q.id,
                code = e.code(),
                "recording an SMS outcome failed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::FileKeyProvider;

    #[test]
    fn notices_round_trip_sealed_when_they_hold_a_code() {
        let keys = FileKeyProvider::from_master_key(&[7u8; 32]).unwrap();
        let pin = Notice::SmsPin {
            code: "1234567".into(),
            last4: "0001".into(),
            minutes: 2,
            expires_at: 5,
        };
        let sms = pin.clone().to("+989121234567", &keys).unwrap();
        assert!(sms.sealed);
        assert!(!sms.payload.windows(7).any(|w| w == b"1234567"));
        let q = QueuedSms {
            id: 1,
            message_id: sms.message_id.clone(),
            to: sms.to.clone(),
            kind: sms.kind,
            payload: sms.payload.clone(),
            sealed: true,
            attempts: 0,
            created_at: 5,
        };
        assert_eq!(Notice::open(&q, &keys).unwrap(), pin);
        // Another message's id does not open it; a plain notice cannot
        // pose as a sealed one.
        let other = QueuedSms {
            message_id: "msg_other".into(),
            ..q.clone()
        };
        assert_eq!(Notice::open(&other, &keys).unwrap_err().code(), "crypto");
        assert_eq!(pin.clone().plain_to("+98").unwrap_err().code(), "crypto");
        let wait = Notice::SmsWait { seconds: 30 }
            .plain_to("+989121234567")
            .unwrap();
        assert!(!wait.sealed);
        assert_eq!(format!("{pin:?}"), "Notice::SmsPin");
        assert_eq!(
            NoticeKind::parse(NoticeKind::HarimPin.as_str()),
            Some(NoticeKind::HarimPin)
        );
    }

    #[test]
    fn harim_notices_carry_their_type_and_older_ones_read_as_purchases() {
        let with = Notice::HarimPin {
            code: "7654321".into(),
            last4: "0001".into(),
            amount: 1000,
            tx_type: Some(TxType::Transfer),
            payee_name: "Shop".into(),
            minutes: 2,
            expires_at: 5,
        };
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.contains(r#""tx_type":"transfer""#), "{json}");
        assert_eq!(serde_json::from_str::<Notice>(&json).unwrap(), with);
        let text = with.message().render(crate::settings::Language::En);
        assert!(
            text.starts_with("Bank: dynamic PIN for a card-to-card transfer "),
            "{text}"
        );
        // A notice queued by an issuer before transaction types.
        let old = json.replace(r#""tx_type":"transfer","#, "");
        assert_ne!(old, json);
        let read: Notice = serde_json::from_str(&old).unwrap();
        let text = read.message().render(crate::settings::Language::En);
        assert!(
            text.starts_with("Bank: dynamic PIN for a purchase "),
            "{text}"
        );
    }

    #[test]
    fn backoff_doubles_to_an_hour() {
        assert_eq!(
            (0..6).map(backoff_secs).collect::<Vec<_>>(),
            vec![2, 4, 8, 16, 32, 64]
        );
        assert_eq!(backoff_secs(30), MAX_BACKOFF_SECS);
    }
}
