//! The issuer's operations, apart from HTTP: enrollment, activation,
//! verification, outbox. Handlers parse and authorise; these functions
//! decide.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pooya_protocol::activation::{
    ACTIVATION_KEY_LEN, ActivationResponse, ActivationSecretKey, ActivationTranscript, ENC_LEN,
    SealedActivationRequest, derive_card_seed, open_request,
};
use pooya_protocol::pin::normalize_payee;
use pooya_protocol::wire::{
    VerifyKind, VerifyRequest, VerifyResponse, VerifyResult, decode_hex_array,
};
use pooya_protocol::{
    CardSeed, Claim, Outcome, Pan, PinKind, ProtocolError, Verified, normalize_activation_code,
    normalize_digits, normalize_phone, verify,
};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::Ed25519KeyPair;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::IssuerError;
use crate::auth::{Role, Tokens};
use crate::clock::Clock;
use crate::db::{DB_FILE, KEY_FILE, ReadPool, open_writer};
use crate::error::ApiError;
use crate::init::{
    CANARY, META_CANARY, META_PUBLIC_KEY, META_SIGNING_KEY, PURPOSE_CANARY, PURPOSE_SIGNING_KEY,
};
use crate::keys::{FileKeyProvider, HashDomain, KeyProvider};
use crate::messages::Message;
use crate::metrics::{Metrics, VerifyCount};
use crate::otp::{ONE_TIME_CODE_DIGITS, OneTimeMatch, spend_one_time};
use crate::settings::{Language, MAX_ACTIVATION_TTL_SECS, MAX_FAILURE_WINDOW_SECS, Settings};
use crate::sms::{OutboxEntry, OutboxSender, Sms, SmsQueue, SmsSender, read_outbox_with};
use crate::writer::{Writer, WriterStats, WriterThread};

const PURPOSE_PAN: &str = "pan";
const PURPOSE_SEED: &str = "seed";
/// Longest code accepted for verification, in digits.
const MAX_CODE_LEN: usize = 16;
/// The card id the dummy seed is sealed to: verifications with nothing to
/// check against do the app's work with it (and with no one-time codes).
const DUMMY_CARD_ID: &str = "crd_dummy";
/// Blocks of a card number's dynamic PINs within [`ESCALATION_WINDOW_SECS`]
/// after which the block lasts until an ops unblock or a re-enrollment.
pub(crate) const ESCALATE_AFTER_BLOCKS: i64 = 3;
/// The window of [`ESCALATE_AFTER_BLOCKS`]: 24 hours.
pub(crate) const ESCALATION_WINDOW_SECS: i64 = 24 * 3600;
/// How long an unknown card number's failure counters are kept idle.
const PROBE_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// `blocked_until` of a block that lasts until it is lifted.
pub(crate) const BLOCKED_UNTIL_LIFTED: i64 = i64::MAX;

/// `POST /v1/enrollments` body. Its `Debug` hides the card number, which
/// is wiped on drop.
#[derive(Clone, Deserialize, Serialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentRequest {
    /// The card number (16 digits, Luhn).
    pub pan: String,
    /// The customer's mobile number.
    pub phone: String,
    /// `app` or `sms`.
    #[zeroize(skip)]
    pub channel: Channel,
}

impl std::fmt::Debug for EnrollmentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentRequest")
            .field("pan", &"<redacted>")
            .field("phone", &self.phone)
            .field("channel", &self.channel)
            .finish()
    }
}

/// `POST /v1/cards/unblock` body (ops). The card number is wiped on drop.
#[derive(Clone, Deserialize, Serialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct UnblockRequest {
    /// The card number.
    pub pan: String,
}

impl std::fmt::Debug for UnblockRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnblockRequest")
            .field("pan", &"<redacted>")
            .finish()
    }
}

/// `POST /v1/cards/unblock` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UnblockResponse {
    /// The issuer's card id.
    pub card_id: String,
    /// Its dynamic PINs were blocked until now.
    pub was_blocked: bool,
}

/// How the customer gets dynamic PINs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The phone app (activation code by SMS).
    App,
    /// The SMS version (one-time PINs by SMS).
    Sms,
}

/// `POST /v1/enrollments` answer.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentResponse {
    /// The issuer's card id.
    pub card_id: String,
    /// The channel enrolled.
    pub channel: Channel,
    /// The masked card number.
    pub masked_pan: String,
    /// When the activation code expires (Unix seconds; `app` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_expires_at: Option<u64>,
    /// With two-channel codes (`activation_code_split`): the code's first
    /// part, for the ATM to show on screen or receipt; the SMS carries the
    /// rest. A secret until spent: `Debug` hides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_code_atm_part: Option<String>,
}

impl std::fmt::Debug for EnrollmentResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentResponse")
            .field("card_id", &self.card_id)
            .field("channel", &self.channel)
            .field("masked_pan", &self.masked_pan)
            .field("activation_expires_at", &self.activation_expires_at)
            .field(
                "activation_code_atm_part",
                &self.activation_code_atm_part.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The shared state of a running issuer.
pub(crate) struct Issuer {
    pub(crate) settings: Settings,
    pub(crate) keys: Arc<dyn KeyProvider>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sms: Arc<dyn SmsSender>,
    pub(crate) writer: Writer,
    pub(crate) readers: ReadPool,
    pub(crate) tokens: Tokens,
    pub(crate) metrics: Metrics,
    pub(crate) writer_stats: Arc<WriterStats>,
    /// Messages sent after their answer (one-time PINs, short-code
    /// replies), in order.
    pub(crate) sms_queue: Arc<SmsQueue>,
    signing_key: Ed25519KeyPair,
    issuer_public_key: Vec<u8>,
    /// The HPKE (P-256) key activation requests are sealed to.
    activation_key: ActivationSecretKey,
    activation_public_key: [u8; ACTIVATION_KEY_LEN],
    /// A random seed, sealed to [`DUMMY_CARD_ID`], made at start.
    dummy_seed_sealed: Vec<u8>,
    pub(crate) rng: SystemRandom,
}

fn meta(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, IssuerError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

fn housekeeping(clock: Arc<dyn Clock>) -> crate::writer::Housekeeping {
    Box::new(move |c: &Connection| {
        let now = clock.now() as i64;
        // Spent steps of builds before migration 005 (the high-water marks
        // in `step_marks` replaced them), once past every window.
        c.execute("DELETE FROM used_steps WHERE expires_at <= ?1", [now])?;
        // Failures older than the longest allowed failure window.
        c.execute(
            "DELETE FROM verify_failures WHERE at <= ?1",
            [now - MAX_FAILURE_WINDOW_SECS as i64],
        )?;
        // Failure counts of phones that have not tried for longer than any
        // activation code can live: no code they counted against is still
        // pending.
        c.execute(
            "DELETE FROM activation_failures WHERE updated_at < ?1",
            [now - MAX_ACTIVATION_TTL_SECS as i64],
        )?;
        // Blocks past the escalation window. Unknown card numbers'
        // counters stay as long as a known card's would matter to a prober
        // (a known card's failures never expire), bounded at 30 idle days.
        c.execute(
            "DELETE FROM verify_blocks WHERE at <= ?1",
            [now - ESCALATION_WINDOW_SECS],
        )?;
        c.execute(
            "DELETE FROM probe_failures WHERE updated_at < ?1",
            [now - PROBE_RETENTION_SECS],
        )?;
        // One-time codes' rate-limit rows past the hour, old codes.
        crate::otp::prune(c, now)?;
        Ok(())
    })
}

impl Issuer {
    /// Opens an initialised data directory and starts the writer.
    pub(crate) fn open(
        data_dir: &Path,
        settings: Settings,
        clock: Arc<dyn Clock>,
        sms: Option<Arc<dyn SmsSender>>,
        keys: Option<Arc<dyn KeyProvider>>,
    ) -> Result<(Arc<Issuer>, WriterThread), IssuerError> {
        settings.validate()?;
        let db_path = data_dir.join(DB_FILE);
        if !db_path.exists() {
            return Err(IssuerError::NotInitialized);
        }
        let keys: Arc<dyn KeyProvider> = match keys {
            Some(k) => k,
            None => Arc::new(FileKeyProvider::load(&data_dir.join(KEY_FILE))?),
        };
        let conn = open_writer(&db_path)?;
        let canary = meta(&conn, META_CANARY)?.ok_or(IssuerError::NotInitialized)?;
        match keys.open(PURPOSE_CANARY, b"", &canary) {
            Ok(v) if &v[..] == CANARY => {}
            _ => return Err(IssuerError::WrongMasterKey),
        }
        let sealed = meta(&conn, META_SIGNING_KEY)?.ok_or(IssuerError::NotInitialized)?;
        let pkcs8 = keys.open(PURPOSE_SIGNING_KEY, b"", &sealed)?;
        let signing_key = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| IssuerError::Crypto("loading the signing key"))?;
        let issuer_public_key = meta(&conn, META_PUBLIC_KEY)?.ok_or(IssuerError::NotInitialized)?;
        let (activation_key, activation_public_key) =
            crate::init::ensure_activation_key(&conn, keys.as_ref())?;
        let rng = SystemRandom::new();
        let mut dummy_seed = Zeroizing::new([0u8; 32]);
        rng.fill(&mut dummy_seed[..])
            .map_err(|_| IssuerError::Crypto("random"))?;
        let dummy_seed_sealed =
            keys.seal(PURPOSE_SEED, DUMMY_CARD_ID.as_bytes(), &dummy_seed[..])?;
        let mut tokens = HashMap::new();
        {
            let mut stmt =
                conn.prepare("SELECT token_hash, role FROM api_tokens WHERE revoked_at IS NULL")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (hash, role) = row?;
                if let (Ok(h), Some(role)) =
                    (<[u8; 32]>::try_from(hash.as_slice()), Role::parse(&role))
                {
                    tokens.insert(h, role);
                }
            }
        }
        let stats = Arc::new(WriterStats::default());
        let (writer, thread) = Writer::start(
            conn,
            settings.writer_batch_max,
            Arc::clone(&stats),
            housekeeping(Arc::clone(&clock)),
            Duration::from_secs(60),
            match settings.checkpoint_interval_ms {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
        )?;
        let sms: Arc<dyn SmsSender> = match sms {
            Some(s) => s,
            None => Arc::new(OutboxSender::new(writer.clone(), Arc::clone(&keys))),
        };
        let readers = ReadPool::new(&db_path, settings.read_connections);
        let sms_queue = Arc::new(SmsQueue::start()?);
        Ok((
            Arc::new(Issuer {
                settings,
                keys,
                clock,
                sms,
                writer,
                readers,
                tokens: Tokens(tokens),
                metrics: Metrics::default(),
                writer_stats: stats,
                sms_queue,
                signing_key,
                issuer_public_key,
                activation_key,
                activation_public_key,
                dummy_seed_sealed,
                rng,
            }),
            thread,
        ))
    }

    /// The issuer's Ed25519 public key, hex.
    pub(crate) fn public_key_hex(&self) -> String {
        hex::encode(&self.issuer_public_key)
    }

    /// The issuer's activation (HPKE) public key, hex of the SEC1 point.
    pub(crate) fn activation_key_hex(&self) -> String {
        hex::encode(self.activation_public_key)
    }

    fn random_bytes<const N: usize>(&self) -> Result<[u8; N], IssuerError> {
        let mut b = [0u8; N];
        self.rng
            .fill(&mut b)
            .map_err(|_| IssuerError::Crypto("random"))?;
        Ok(b)
    }

    fn new_card_id(&self) -> Result<String, IssuerError> {
        Ok(format!("crd_{}", hex::encode(self.random_bytes::<10>()?)))
    }

    /// A uniformly random activation code: `digits - 1` random digits and
    /// a Luhn check digit.
    fn new_activation_code(&self) -> Result<Zeroizing<String>, IssuerError> {
        let n = self.settings.activation_code_digits - 1;
        let mut code = Zeroizing::new(String::with_capacity(n + 1));
        while code.len() < n {
            let bytes = Zeroizing::new(self.random_bytes::<32>()?);
            // Rejection sampling: 250 = 25 × 10 keeps the digits uniform.
            for b in bytes.iter().filter(|b| **b < 250) {
                if code.len() == n {
                    break;
                }
                code.push(char::from(b'0' + b % 10));
            }
        }
        let check = pooya_protocol::ids::luhn_check_digit(&code);
        code.push(check);
        Ok(code)
    }

    fn code_hash(&self, phone: &str, code: &str) -> Result<[u8; 32], IssuerError> {
        let mut data = Zeroizing::new(Vec::with_capacity(phone.len() + 1 + code.len()));
        data.extend_from_slice(phone.as_bytes());
        data.push(0);
        data.extend_from_slice(code.as_bytes());
        self.keys.keyed_hash(HashDomain::ActivationCode, &data)
    }

    fn bank_name(&self, pan: &Pan) -> String {
        match (pan.bank(), self.settings.language) {
            (Some(b), Language::Fa) => b.name_fa.to_owned(),
            (Some(b), Language::En) => b.name_en.to_owned(),
            (None, _) => self.settings.bank_name.clone(),
        }
    }

    /// Hands a message to the SMS sender on a blocking thread.
    pub(crate) async fn send_sms(&self, to: &str, message: Message<'_>) -> Result<(), IssuerError> {
        let sms = Sms {
            to: to.to_owned(),
            from: self.settings.sms_sender.clone(),
            body: Zeroizing::new(message.render(self.settings.language)),
            created_at: self.clock.now(),
        };
        let sender = Arc::clone(&self.sms);
        let r = tokio::task::spawn_blocking(move || sender.send(&sms))
            .await
            .unwrap_or_else(|_| Err(IssuerError::Sms("the sender panicked".into())));
        self.metrics.sms(r.is_ok());
        if let Err(e) = &r {
            tracing::warn!(code = e.code(), "SMS delivery failed");
        }
        r
    }

    /// `POST /v1/enrollments`.
    pub(crate) async fn enroll(
        self: &Arc<Self>,
        req: EnrollmentRequest,
    ) -> Result<EnrollmentResponse, ApiError> {
        let pan = Pan::parse(&req.pan).map_err(|e| ApiError::from_protocol("invalid_pan", &e))?;
        let phone = normalize_phone(&req.phone)
            .map_err(|e| ApiError::from_protocol("invalid_phone", &e))?;
        let now = self.clock.now();
        let pan_hash = self
            .keys
            .keyed_hash(HashDomain::Pan, pan.expose_secret().as_bytes())?;
        let new_id = self.new_card_id()?;
        let pan_sealed = self.keys.seal(
            PURPOSE_PAN,
            new_id.as_bytes(),
            pan.expose_secret().as_bytes(),
        )?;
        let last4 = pan.last4().to_owned();
        let channel = req.channel;
        let ttl = self.settings.activation_ttl_secs;
        let code = match channel {
            Channel::App => Some(self.new_activation_code()?),
            Channel::Sms => None,
        };
        let code_hash = match &code {
            Some(c) => Some(self.code_hash(&phone, c)?),
            None => None,
        };
        let job_phone = phone.clone();
        let (card_id, old_phone) = self
            .writer
            .run(move |c| {
                let existing: Option<(String, String)> = c
                    .prepare_cached("SELECT id, phone FROM cards WHERE pan_hash = ?1")?
                    .query_row([&pan_hash[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let mut old_phone = None;
                let card_id = match existing {
                    Some((id, phone)) => {
                        if phone != job_phone {
                            old_phone = Some(phone);
                        }
                        // Re-enrollment (card and card PIN at an ATM) lifts
                        // a block of its dynamic PINs, escalated or not.
                        c.execute(
                            "UPDATE cards SET phone = ?2, updated_at = ?3, failures = 0, blocked_until = 0 \
                             WHERE id = ?1",
                            params![id, job_phone, now as i64],
                        )?;
                        id
                    }
                    None => {
                        c.execute(
                            "INSERT INTO cards (id, pan_hash, pan_sealed, last4, phone, created_at, updated_at) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                            params![new_id, &pan_hash[..], pan_sealed, last4, job_phone, now as i64],
                        )?;
                        new_id
                    }
                };
                // Card and card PIN at an ATM: the block, its escalation
                // and the failure window start afresh.
                c.execute("DELETE FROM verify_blocks WHERE pan_hash = ?1", [&pan_hash[..]])?;
                c.execute("DELETE FROM verify_failures WHERE pan_hash = ?1", [&pan_hash[..]])?;
                c.execute("DELETE FROM probe_failures WHERE pan_hash = ?1", [&pan_hash[..]])?;
                match code_hash {
                    Some(hash) => {
                        c.execute(
                            "UPDATE activation_codes SET state = 'superseded', closed_at = ?2 \
                             WHERE card_id = ?1 AND state = 'pending'",
                            params![card_id, now as i64],
                        )?;
                        // A fresh guessing budget only when no other code
                        // of this phone is still live: otherwise another
                        // card's pending code would get it too.
                        c.execute(
                            "DELETE FROM activation_failures WHERE phone = ?1 AND NOT EXISTS \
                             (SELECT 1 FROM activation_codes WHERE phone = ?1 \
                              AND state = 'pending' AND expires_at > ?2)",
                            params![&job_phone, now as i64],
                        )?;
                        c.execute(
                            "INSERT INTO activation_codes (card_id, phone, code_hash, state, created_at, expires_at) \
                             VALUES (?1, ?2, ?3, 'pending', ?4, ?5)",
                            params![card_id, job_phone, &hash[..], now as i64, (now + ttl) as i64],
                        )?;
                    }
                    None => {
                        c.execute(
                            "UPDATE cards SET sms_enabled = 1 WHERE id = ?1",
                            [&card_id],
                        )?;
                    }
                }
                c.execute(
                    "INSERT INTO events (at, card_id, phone, kind, detail) VALUES (?1, ?2, ?3, 'enrolled', ?4)",
                    params![now as i64, card_id, job_phone, if code_hash.is_some() { "app" } else { "sms" }],
                )?;
                Ok((card_id, old_phone))
            })
            .await?;
        self.metrics
            .enrollments
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(card_id = %card_id, channel = ?channel, "enrolled");
        let grouped;
        // Two-channel codes: the ATM shows the head, the SMS carries the
        // tail (with the check digit).
        let atm_digits = match (&code, self.settings.activation_code_split) {
            (Some(_), true) => self.settings.activation_atm_digits,
            _ => 0,
        };
        let message = match &code {
            Some(code) => {
                grouped = Zeroizing::new(if atm_digits > 0 {
                    code[atm_digits..].to_owned()
                } else {
                    pooya_protocol::ids::format_activation_code(code)
                });
                Message::ActivationCode {
                    code: &grouped,
                    minutes: ttl.div_ceil(60),
                    last4: pan.last4(),
                    split: atm_digits > 0,
                }
            }
            None => Message::SmsChannelEnabled {
                last4: pan.last4(),
                short_code: &self.settings.sms_short_code,
            },
        };
        self.send_sms(&phone, message).await?;
        if let Some(old) = old_phone {
            // The previous number learns that the card moved; a failure here
            // does not undo the enrollment.
            let _ = self
                .send_sms(&old, Message::PhoneChanged { last4: pan.last4() })
                .await;
        }
        Ok(EnrollmentResponse {
            card_id,
            channel,
            masked_pan: pan.masked(),
            activation_expires_at: code.as_ref().map(|_| now + ttl),
            activation_code_atm_part: code
                .as_ref()
                .filter(|_| atm_digits > 0)
                .map(|c| c[..atm_digits].to_owned()),
        })
    }

    /// `POST /v1/activations`, activation v2 (RFC 9180 HPKE base mode with
    /// DHKEM(P-256), RFC 7748 §6.1 X25519, RFC 5869 HKDF, RFC 8032
    /// Ed25519; docs/protocol.md, "Activation").
    ///
    /// The request is opened with the issuer's activation key first: one
    /// that does not open is refused (`not_sealed_to_issuer`) and writes
    /// nothing. A well-sealed guess for a phone with no live activation code
    /// writes no row of its own either (only the one-row stranger counter),
    /// and gets the same answer, after the same work, as a wrong code for a
    /// phone that has one.
    pub(crate) async fn activate(
        self: &Arc<Self>,
        req: SealedActivationRequest,
    ) -> Result<ActivationResponse, ApiError> {
        let enc: [u8; ENC_LEN] = decode_hex_array("enc", &req.enc)
            .map_err(|e| ApiError::from_protocol("not_sealed_to_issuer", &e))?;
        let sealed = hex::decode(&req.sealed)
            .map_err(|_| ApiError::bad_request("not_sealed_to_issuer", "sealed is not hex"))?;
        let opened = open_request(&self.activation_key, &enc, &sealed).map_err(|e| match e {
            ProtocolError::InvalidField { .. } => ApiError::bad_request(
                "invalid_request",
                "the sealed request is not the expected JSON",
            ),
            _ => ApiError::bad_request(
                "not_sealed_to_issuer",
                "the activation request is not sealed to this issuer's activation key",
            ),
        })?;
        let phone = normalize_phone(&opened.phone)
            .map_err(|e| ApiError::from_protocol("invalid_phone", &e))?;
        let code = Zeroizing::new(
            normalize_activation_code(&opened.code)
                .map_err(|e| ApiError::from_protocol("invalid_code", &e))?,
        );
        let device_key: [u8; 32] = decode_hex_array("device_public_key", &opened.device_public_key)
            .map_err(|e| ApiError::from_protocol("invalid_device_key", &e))?;
        let label = pooya_protocol::normalize_device_label(&opened.device_label).map_err(|_| {
            ApiError::bad_request(
                "invalid_device_label",
                "device_label must be 1 to 64 letters, digits, spaces, ZWNJ or - _ . ' + # /",
            )
        })?;
        drop(opened);
        // Key agreement before the code is looked at, so its failure says
        // nothing about the code.
        let eph = EphemeralPrivateKey::generate(&X25519, &self.rng)
            .map_err(|_| IssuerError::Crypto("ephemeral key"))?;
        let eph_public = eph
            .compute_public_key()
            .map_err(|_| IssuerError::Crypto("ephemeral public key"))?
            .as_ref()
            .to_vec();
        let shared: Zeroizing<[u8; 32]> =
            agreement::agree_ephemeral(eph, &UnparsedPublicKey::new(&X25519, device_key), |ss| {
                let mut out = Zeroizing::new([0u8; 32]);
                if ss.len() == 32 {
                    out.copy_from_slice(ss);
                }
                out
            })
            .map_err(|_| {
                ApiError::bad_request(
                    "invalid_device_key",
                    "device_public_key is not a usable X25519 public key",
                )
            })?;
        let code_hash = self.code_hash(&phone, &code)?;
        let now = self.clock.now();
        let this = Arc::clone(self);
        let job = ActivationJob {
            enc,
            sealed,
            phone,
            code,
            code_hash,
            device_key,
            label,
            eph_public,
            shared,
            now,
        };
        let outcome = self.writer.run(move |c| this.activate_job(c, &job)).await?;
        self.metrics.activation(outcome.is_ok());
        match outcome {
            Ok((resp, notice)) => {
                tracing::info!(card_id = %resp.card_id, "activated");
                // The card's registered phone learns of every activation,
                // so one it did not make is noticed (after the answer's
                // commit; a failure to send does not undo it).
                let _ = self
                    .send_sms(
                        &notice.phone,
                        Message::CardActivated {
                            last4: &resp.last4,
                            device_label: &notice.label,
                            at: now,
                        },
                    )
                    .await;
                Ok(resp)
            }
            Err(refusal) => {
                match refusal {
                    Refusal::Burned => {
                        self.metrics
                            .burns
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!("activation codes burned after repeated wrong guesses");
                    }
                    Refusal::NoLiveCode => {
                        tracing::debug!("activation guess for a phone with no live code");
                    }
                    Refusal::WrongCode => {}
                }
                Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "activation_refused",
                    "the phone number or the activation code is wrong, expired or already used",
                ))
            }
        }
    }

    /// The activation's write job. `Ok(Err(refusal))` is a refusal whose
    /// count (if any) is still committed.
    fn activate_job(
        &self,
        c: &Connection,
        job: &ActivationJob,
    ) -> Result<Result<(ActivationResponse, ActivatedNotice), Refusal>, IssuerError> {
        let (phone, now) = (job.phone.as_str(), job.now);
        let max = i64::from(self.settings.activation_max_failures);
        let live: i64 = c
            .prepare_cached(
                "SELECT COUNT(*) FROM activation_codes \
                 WHERE phone = ?1 AND state = 'pending' AND expires_at > ?2",
            )?
            .query_row(params![phone, now as i64], |r| r.get(0))?;
        let failures: i64 = c
            .prepare_cached("SELECT failures FROM activation_failures WHERE phone = ?1")?
            .query_row([phone], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        // The card's registered phone (told of the activation) comes with
        // the code.
        let found: Option<(i64, String, Vec<u8>, String)> = if failures >= max {
            None
        } else {
            c.prepare_cached(
                "SELECT a.id, a.card_id, c.pan_sealed, c.phone FROM activation_codes a \
                 JOIN cards c ON c.id = a.card_id \
                 WHERE a.code_hash = ?1 AND a.phone = ?2 AND a.state = 'pending' AND a.expires_at > ?3",
            )?
            .query_row(params![&job.code_hash[..], phone, now as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?
        };
        let Some((code_id, card_id, pan_sealed, registered)) = found else {
            if live == 0 {
                // Nobody's code to guess at: one counter row for all such
                // guesses, so the work (one write) matches a counted guess
                // and strangers add no rows.
                c.execute(
                    "INSERT INTO activation_strangers (id, guesses, updated_at) VALUES (1, 1, ?1) \
                     ON CONFLICT (id) DO UPDATE SET guesses = guesses + 1, updated_at = ?1",
                    [now as i64],
                )?;
                return Ok(Err(Refusal::NoLiveCode));
            }
            let failures = failures + 1;
            c.execute(
                "INSERT INTO activation_failures (phone, failures, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (phone) DO UPDATE SET failures = ?2, updated_at = ?3",
                params![phone, failures, now as i64],
            )?;
            if failures == max {
                c.execute(
                    "UPDATE activation_codes SET state = 'burned', closed_at = ?2 \
                     WHERE phone = ?1 AND state = 'pending'",
                    params![phone, now as i64],
                )?;
                c.execute(
                    "INSERT INTO events (at, phone, kind, detail) VALUES (?1, ?2, 'activation_burned', '')",
                    params![now as i64, phone],
                )?;
                return Ok(Err(Refusal::Burned));
            }
            return Ok(Err(Refusal::WrongCode));
        };
        let pan_bytes = self
            .keys
            .open(PURPOSE_PAN, card_id.as_bytes(), &pan_sealed)?;
        let pan_text = Zeroizing::new(
            String::from_utf8(pan_bytes.to_vec()).map_err(|_| IssuerError::Crypto("sealed PAN"))?,
        );
        let pan = Pan::parse(&pan_text)?;
        let masked = pan.masked();
        let bank_name = self.bank_name(&pan);
        let policies = self.settings.policies.clone();
        let transcript = ActivationTranscript {
            enc: &job.enc,
            sealed: &job.sealed,
            phone,
            code: &job.code,
            device_public_key: &job.device_key,
            device_label: &job.label,
            issuer_ephemeral_public_key: &job.eph_public,
            card_id: &card_id,
            masked_pan: &masked,
            last4: pan.last4(),
            bank_name: &bank_name,
            policies: &policies,
            server_time: now,
        };
        let bytes = transcript.to_bytes();
        let seed = derive_card_seed(&job.shared[..], &bytes);
        let signature = self.signing_key.sign(&bytes);
        let seed_sealed = self
            .keys
            .seal(PURPOSE_SEED, card_id.as_bytes(), seed.expose_secret())?;
        c.execute(
            "UPDATE activation_codes SET state = 'used', closed_at = ?2 WHERE id = ?1",
            params![code_id, now as i64],
        )?;
        c.execute(
            "UPDATE activation_codes SET state = 'superseded', closed_at = ?2 \
             WHERE card_id = ?1 AND state = 'pending'",
            params![card_id, now as i64],
        )?;
        c.execute(
            "UPDATE cards SET seed_sealed = ?2, seed_generation = seed_generation + 1, \
             device_label = ?3, device_public_key = ?4, activated_at = ?5, \
             drift_first = 0, drift_second = 0, failures = 0, updated_at = ?5 WHERE id = ?1",
            params![
                card_id,
                seed_sealed,
                job.label,
                &job.device_key[..],
                now as i64
            ],
        )?;
        c.execute("DELETE FROM used_steps WHERE card_id = ?1", [&card_id])?;
        c.execute("DELETE FROM activation_failures WHERE phone = ?1", [phone])?;
        c.execute(
            "INSERT INTO events (at, card_id, phone, kind, detail) VALUES (?1, ?2, ?3, 'activated', ?4)",
            params![now as i64, card_id, phone, job.label],
        )?;
        Ok(Ok((
            ActivationResponse {
                card_id: card_id.clone(),
                masked_pan: masked.clone(),
                last4: pan.last4().to_owned(),
                bank_name,
                policies,
                server_time: now,
                issuer_ephemeral_public_key: hex::encode(&job.eph_public),
                signature: hex::encode(signature.as_ref()),
            },
            ActivatedNotice {
                phone: registered,
                label: job.label.clone(),
            },
        )))
    }

    /// `POST /v1/verify`.
    pub(crate) async fn verify(
        self: &Arc<Self>,
        req: VerifyRequest,
    ) -> Result<VerifyResponse, ApiError> {
        let pan = Pan::parse(&req.pan).map_err(|e| ApiError::from_protocol("invalid_pan", &e))?;
        let code = normalize_code(&req.code)?;
        let payee = match &req.payee {
            None => None,
            Some(p) => Some(
                normalize_payee(p)
                    .map_err(|e| ApiError::from_protocol("invalid_payee", &e))?
                    .to_owned(),
            ),
        };
        match req.kind {
            VerifyKind::First if payee.is_some() => {
                return Err(ApiError::bad_request(
                    "invalid_payee",
                    "payee is only for second PINs",
                ));
            }
            VerifyKind::Second if req.amount == 0 => {
                return Err(ApiError::bad_request(
                    "invalid_amount",
                    "amount must be a positive number of Rials",
                ));
            }
            _ => {}
        }
        let now = self.clock.now();
        let pan_hash = self
            .keys
            .keyed_hash(HashDomain::Pan, pan.expose_secret().as_bytes())?;
        let rules = Lockout::from_settings(&self.settings);
        let card = self.readers.with(|c| load_card(c, &pan_hash))?;
        let Some(card) = card else {
            return self
                .verify_unknown(pan_hash, &req, &code, payee.as_deref(), now, rules)
                .await;
        };
        if card.blocked_until > now as i64 {
            return Ok(self.count(verdict(VerifyResult::Blocked, "too_many_failures", None)));
        }
        // One-time codes sent by SMS (SMS version, Harim) are second PINs.
        // A card with the app needs no look-up for codes of another length
        // (the app's second PINs have 8 digits by default), which keeps the
        // app's verification path as it was.
        let one_time = match req.kind {
            VerifyKind::Second
                if card.seed_sealed.is_none() || code.len() == ONE_TIME_CODE_DIGITS =>
            {
                Some(self.check_one_time(&card.id, &code, req.amount, payee.as_deref(), now)?)
            }
            VerifyKind::First | VerifyKind::Second => None,
        };
        let app_matched = match card.seed_sealed.as_deref() {
            Some(sealed) => {
                self.match_app_code(sealed, &card, &req, &code, payee.as_deref(), now)?
            }
            // No app activated: only one-time codes, if any were sent.
            None if one_time.is_some_and(|o| o.any) => None,
            None => {
                // Nothing can match: the answer, the work and the failure
                // count of a wrong code, so the gateway cannot tell.
                self.dummy_app_work(&req, &code, payee.as_deref(), now)?;
                self.not_enrolled("no app and no recent one-time PIN");
                None
            }
        };
        let settle = match (app_matched, one_time.map(|o| o.matched)) {
            (Some(v), _) => Spend::Step(SpentStep {
                kind: v.kind,
                step: v.step,
                drift: v.drift.clamp(
                    -self.settings.max_drift_steps,
                    self.settings.max_drift_steps,
                ),
            }),
            (None, Some(OneTimeMatch::Spend { id, kind })) => Spend::OneTime { id, kind },
            (None, Some(OneTimeMatch::Replayed)) => Spend::Replayed,
            (None, _) => Spend::Nothing,
        };
        // Dynamic linking (PSD2 RTS Art. 5): where required, a payment
        // naming a payee takes only a PIN bound to it (the app's
        // transaction-bound PIN, a Harim PIN). A cap-bound PIN or an
        // SMS-version PIN that matched is spent like any accepted code (so
        // whoever captured it cannot use it anywhere after this) but the
        // answer is a refusal, `dynamic_linking_required`: the customer
        // uses the bound PIN for this payment.
        let linking = payee.is_some() && self.settings.dynamic_linking_required(req.amount);
        let unlinked = linking
            && matches!(
                settle,
                Spend::Step(SpentStep { kind, .. }) | Spend::OneTime { kind, .. }
                    if kind != PinKind::Transaction
            );
        let card_id = card.id.clone();
        let generation = card.seed_generation;
        let (resp, notice) = self
            .writer
            .run(move |c| settle_verification(c, &card_id, generation, settle, now as i64, rules))
            .await?;
        let resp = if unlinked && resp.result == VerifyResult::Accepted {
            self.metrics
                .unlinked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            verdict(VerifyResult::Rejected, "dynamic_linking_required", None)
        } else {
            resp
        };
        if let Some(n) = notice {
            self.metrics
                .blocks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                card_id = %card.id,
                until_lifted = n.block.until_lifted(),
                cause = n.block.cause.as_str(),
                "card blocked after repeated failures"
            );
            // One SMS per block (at most ESCALATE_AFTER_BLOCKS a day), sent
            // after the answer: the block is committed whether or not it
            // goes out, and the answer does not wait for the SMS centre.
            let minutes = self.settings.lockout_secs.div_ceil(60);
            let message = if n.block.until_lifted() {
                Message::CardBlockedUntilLifted { last4: &n.last4 }
            } else if n.block.next_until_lifted {
                Message::CardBlockedLastWarning {
                    last4: &n.last4,
                    minutes,
                }
            } else {
                Message::CardBlocked {
                    last4: &n.last4,
                    minutes,
                }
            };
            self.queue_sms(&n.phone, message);
        }
        Ok(self.count(resp))
    }

    /// A verification for a card number the bank does not know: the same
    /// answers as for a known card with a wrong code (`rejected`
    /// `wrong_code`, then `blocked` `too_many_failures`), after the same
    /// work (a seed opened, the app's candidates computed, one-time codes
    /// looked up, a write job), counted and blocked per PAN keyed hash by
    /// the same rules. Only metrics and logs say `not_enrolled`.
    async fn verify_unknown(
        self: &Arc<Self>,
        pan_hash: [u8; 32],
        req: &VerifyRequest,
        code: &str,
        payee: Option<&str>,
        now: u64,
        rules: Lockout,
    ) -> Result<VerifyResponse, ApiError> {
        let blocked_until = self.readers.with(|c| probe_blocked_until(c, &pan_hash))?;
        if blocked_until > now as i64 {
            return Ok(self.count(verdict(VerifyResult::Blocked, "too_many_failures", None)));
        }
        if req.kind == VerifyKind::Second && code.len() == ONE_TIME_CODE_DIGITS {
            self.check_one_time(DUMMY_CARD_ID, code, req.amount, payee, now)?;
        }
        self.dummy_app_work(req, code, payee, now)?;
        self.not_enrolled("unknown card number");
        let (resp, blocked) = self
            .writer
            .run(move |c| settle_unknown(c, &pan_hash, now as i64, rules))
            .await?;
        if blocked {
            tracing::warn!("an unknown card number was blocked after repeated failures");
        }
        Ok(self.count(resp))
    }

    /// The app's work for a verification with nothing to match: a random
    /// seed (sealed at start) opened and its candidates computed; the
    /// result is ignored.
    fn dummy_app_work(
        &self,
        req: &VerifyRequest,
        code: &str,
        payee: Option<&str>,
        now: u64,
    ) -> Result<(), ApiError> {
        let card = CardRow {
            id: DUMMY_CARD_ID.to_owned(),
            seed_sealed: None,
            seed_generation: 0,
            drift_first: 0,
            drift_second: 0,
            blocked_until: 0,
        };
        self.match_app_code(&self.dummy_seed_sealed, &card, req, code, payee, now)?;
        Ok(())
    }

    /// Counts and logs a verification answered `wrong_code` because
    /// nothing could match (the precise reason, `not_enrolled`, is for
    /// operators only).
    fn not_enrolled(&self, why: &'static str) {
        self.metrics
            .not_enrolled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(
            reason = "not_enrolled",
            why,
            "verification with nothing to match"
        );
    }

    /// `POST /v1/cards/unblock` (ops): lifts a block of a card number's
    /// dynamic PINs, escalated or not, and forgets its recent blocks and
    /// failures. For a card number the bank does not know, its probe
    /// counters are cleared and the answer is 404 `card_not_found`.
    pub(crate) async fn unblock(&self, req: UnblockRequest) -> Result<UnblockResponse, ApiError> {
        let pan = Pan::parse(&req.pan).map_err(|e| ApiError::from_protocol("invalid_pan", &e))?;
        let pan_hash = self
            .keys
            .keyed_hash(HashDomain::Pan, pan.expose_secret().as_bytes())?;
        let now = self.clock.now() as i64;
        let card_id = self
            .writer
            .run(move |c| {
                c.execute("DELETE FROM verify_blocks WHERE pan_hash = ?1", [&pan_hash[..]])?;
                c.execute("DELETE FROM verify_failures WHERE pan_hash = ?1", [&pan_hash[..]])?;
                c.execute("DELETE FROM probe_failures WHERE pan_hash = ?1", [&pan_hash[..]])?;
                let id: Option<(String, i64)> = c
                    .query_row(
                        "SELECT id, blocked_until FROM cards WHERE pan_hash = ?1",
                        [&pan_hash[..]],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let Some((id, blocked_until)) = id else {
                    return Ok(None);
                };
                c.execute(
                    "UPDATE cards SET failures = 0, blocked_until = 0 WHERE id = ?1",
                    [&id],
                )?;
                c.execute(
                    "INSERT INTO events (at, card_id, kind, detail) VALUES (?1, ?2, 'unblocked', ?3)",
                    params![
                        now,
                        id,
                        if blocked_until > now { "was blocked" } else { "was not blocked" }
                    ],
                )?;
                Ok(Some((id, blocked_until > now)))
            })
            .await?;
        match card_id {
            Some((card_id, was_blocked)) => {
                tracing::info!(card_id = %card_id, was_blocked, "dynamic PINs unblocked by ops");
                Ok(UnblockResponse {
                    card_id,
                    was_blocked,
                })
            }
            None => Err(ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "card_not_found",
                "no card with this number is enrolled",
            )),
        }
    }

    /// The app's candidates for a verification (`pooya_protocol::verify`,
    /// each in constant time): the matched PIN, if any.
    fn match_app_code(
        &self,
        sealed: &[u8],
        card: &CardRow,
        req: &VerifyRequest,
        code: &str,
        payee: Option<&str>,
        now: u64,
    ) -> Result<Option<Verified>, ApiError> {
        let seed_bytes = self.keys.open(PURPOSE_SEED, card.id.as_bytes(), sealed)?;
        let seed = CardSeed::from_slice(&seed_bytes)?;
        let keys = seed.derive_keys();
        let policies = &self.settings.policies;
        let matched: Option<Verified> = match req.kind {
            VerifyKind::First => accepted(verify(
                &keys,
                policies,
                Claim::First,
                code,
                now,
                card.drift_first,
            )?),
            VerifyKind::Second => {
                // Both are always computed, so the work does not tell which
                // one matched.
                let tx = match &payee {
                    Some(p) => accepted(verify(
                        &keys,
                        policies,
                        Claim::Transaction {
                            amount: req.amount,
                            payee: p,
                        },
                        code,
                        now,
                        card.drift_second,
                    )?),
                    None => None,
                };
                let cap = accepted(verify(
                    &keys,
                    policies,
                    Claim::Second { amount: req.amount },
                    code,
                    now,
                    card.drift_second,
                )?);
                tx.or(cap)
            }
        };
        Ok(matched)
    }

    fn count(&self, resp: VerifyResponse) -> VerifyResponse {
        self.metrics.verify(match resp.result {
            VerifyResult::Accepted => VerifyCount::Accepted,
            VerifyResult::Rejected => VerifyCount::Rejected,
            VerifyResult::Blocked => VerifyCount::Blocked,
        });
        resp
    }

    /// `GET /v1/sms/outbox`.
    pub(crate) fn outbox(&self, phone: Option<&str>) -> Result<Vec<OutboxEntry>, ApiError> {
        let phone = phone
            .map(normalize_phone)
            .transpose()
            .map_err(|e| ApiError::from_protocol("invalid_phone", &e))?;
        Ok(self
            .readers
            .with(|c| read_outbox_with(c, self.keys.as_ref(), phone.as_deref()))?)
    }

    /// `GET /healthz`: the database answers and the writer runs.
    pub(crate) async fn health(&self) -> Result<(), IssuerError> {
        self.readers
            .with(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))?;
        self.writer.run(|_| Ok(())).await
    }
}

/// What an activation's write job needs, moved into it.
struct ActivationJob {
    enc: [u8; ENC_LEN],
    sealed: Vec<u8>,
    phone: String,
    code: Zeroizing<String>,
    code_hash: [u8; 32],
    device_key: [u8; 32],
    label: String,
    eph_public: Vec<u8>,
    shared: Zeroizing<[u8; 32]>,
    now: u64,
}

/// Why an activation was refused (all answer `activation_refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A wrong code for a phone with a live code: counted.
    WrongCode,
    /// The guess that spent the phone's budget: its live codes are burned.
    Burned,
    /// No live code for this phone: nothing to guess at, nothing counted
    /// per phone.
    NoLiveCode,
}

/// Who is told of an activation, and the device it was for.
struct ActivatedNotice {
    phone: String,
    label: String,
}

fn accepted(o: Outcome) -> Option<Verified> {
    match o {
        Outcome::Accepted(v) => Some(v),
        Outcome::Rejected { .. } => None,
    }
}

fn verdict(result: VerifyResult, reason: &str, matched: Option<PinKind>) -> VerifyResponse {
    VerifyResponse {
        result,
        reason: reason.to_owned(),
        matched,
    }
}

/// A code as typed: ASCII or Persian digits, spaces allowed, at most 16.
fn normalize_code(text: &str) -> Result<Zeroizing<String>, ApiError> {
    let compact = Zeroizing::new(text.chars().filter(|c| *c != ' ').collect::<String>());
    let digits = normalize_digits(&compact).map(Zeroizing::new);
    match digits {
        Some(d) if !d.is_empty() && d.len() <= MAX_CODE_LEN => Ok(d),
        _ => Err(ApiError::bad_request(
            "invalid_code",
            "code must be 1 to 16 digits",
        )),
    }
}

/// What a verification's write job settles.
#[derive(Debug, Clone, Copy)]
enum Spend {
    /// Nothing matched: a failure.
    Nothing,
    /// An app code matched: spend its (card, kind, step).
    Step(SpentStep),
    /// A pending one-time code matched: spend it.
    OneTime { id: i64, kind: PinKind },
    /// A one-time code already spent matched: a failure (`replayed`).
    Replayed,
}

struct CardRow {
    id: String,
    seed_sealed: Option<Vec<u8>>,
    seed_generation: i64,
    drift_first: i64,
    drift_second: i64,
    blocked_until: i64,
}

fn load_card(c: &Connection, pan_hash: &[u8; 32]) -> Result<Option<CardRow>, IssuerError> {
    Ok(c.prepare_cached(
        "SELECT id, seed_sealed, seed_generation, drift_first, drift_second, blocked_until \
         FROM cards WHERE pan_hash = ?1",
    )?
    .query_row([&pan_hash[..]], |r| {
        Ok(CardRow {
            id: r.get(0)?,
            seed_sealed: r.get(1)?,
            seed_generation: r.get(2)?,
            drift_first: r.get(3)?,
            drift_second: r.get(4)?,
            blocked_until: r.get(5)?,
        })
    })
    .optional()?)
}

/// The high-water mark a PIN kind is kept under (RFC 6238 §5.2): one per
/// kind. Cap-bound and transaction-bound second PINs use the same key and
/// steps but are different one-time passwords (different OCRA questions),
/// so one of each may pay in the same step (docs/issuer.md, "High-water
/// marks").
fn mark_key(kind: PinKind) -> &'static str {
    kind.as_str()
}

/// A matched code to spend.
#[derive(Debug, Clone, Copy)]
struct SpentStep {
    kind: PinKind,
    step: u64,
    drift: i64,
}

/// The lockout rules, from the settings (RFC 4226 §7.3, PSD2 RTS Art. 4;
/// docs/issuer.md, "Failure window").
#[derive(Debug, Clone, Copy)]
struct Lockout {
    /// Consecutive failures that block.
    max_failures: i64,
    /// How long a block lasts, unless it escalates.
    lockout_secs: i64,
    /// Failures within `window_secs` that block, acceptances or not.
    window_max: i64,
    /// The sliding window of `window_max`.
    window_secs: i64,
}

impl Lockout {
    fn from_settings(s: &Settings) -> Self {
        Self {
            max_failures: i64::from(s.max_failures),
            lockout_secs: s.lockout_secs as i64,
            window_max: i64::from(s.failure_window_max),
            window_secs: s.failure_window_secs as i64,
        }
    }
}

/// A card number's lockout state before a failure, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LockState {
    /// Failures since the last acceptance or block (`cards.failures`,
    /// `probe_failures.failures`).
    consecutive: i64,
    /// When the failures counted since the last block happened
    /// (`verify_failures`); acceptances do not remove them.
    failures_at: Vec<i64>,
    /// When the card number's recent blocks began (`verify_blocks`).
    blocks_at: Vec<i64>,
}

/// Which rule placed a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockCause {
    /// `max_failures` in a row.
    Consecutive,
    /// `failure_window_max` within `failure_window_secs`.
    Window,
}

impl BlockCause {
    fn as_str(self) -> &'static str {
        match self {
            Self::Consecutive => "consecutive failures",
            Self::Window => "failures within the window",
        }
    }
}

/// A block to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    /// `blocked_until`: `now + lockout_secs`, or [`BLOCKED_UNTIL_LIFTED`].
    until: i64,
    cause: BlockCause,
    /// The next block within [`ESCALATION_WINDOW_SECS`] lasts until lifted:
    /// the customer is warned now (PSD2 RTS Art. 4).
    next_until_lifted: bool,
}

impl Block {
    fn until_lifted(&self) -> bool {
        self.until == BLOCKED_UNTIL_LIFTED
    }
}

/// What a counted failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureSettlement {
    /// Count it: `consecutive` is stored and a failure row is added at
    /// `now`.
    Count { consecutive: i64 },
    /// Block the card number's dynamic PINs: the consecutive count and the
    /// window's rows are cleared (the block consumed them) and a block row
    /// is added at `now`.
    Block(Block),
}

/// Settles one counted failure (`wrong_code`, `replayed`) of a card number,
/// known or not, from its state, the time and the rules: a pure decision
/// that storage applies in the same write job.
///
/// Two rules block: `max_failures` consecutive failures (RFC 4226 §7.3),
/// and `window_max` failures within the last `window_secs` whatever
/// acceptances came between (PSD2 RTS Art. 4: an accepted payment resets
/// only the consecutive count). The [`ESCALATE_AFTER_BLOCKS`]-th block
/// within [`ESCALATION_WINDOW_SECS`] lasts until lifted; the one before it
/// warns the customer.
fn settle_failure(state: &LockState, now: i64, rules: Lockout) -> FailureSettlement {
    let consecutive = state.consecutive.saturating_add(1);
    let in_window = state
        .failures_at
        .iter()
        .filter(|&&at| at > now - rules.window_secs)
        .count() as i64
        + 1;
    let cause = if consecutive >= rules.max_failures {
        BlockCause::Consecutive
    } else if in_window >= rules.window_max {
        BlockCause::Window
    } else {
        return FailureSettlement::Count { consecutive };
    };
    let blocks = state
        .blocks_at
        .iter()
        .filter(|&&at| at > now - ESCALATION_WINDOW_SECS)
        .count() as i64
        + 1;
    let until_lifted = blocks >= ESCALATE_AFTER_BLOCKS;
    FailureSettlement::Block(Block {
        until: if until_lifted {
            BLOCKED_UNTIL_LIFTED
        } else {
            now.saturating_add(rules.lockout_secs)
        },
        cause,
        next_until_lifted: !until_lifted && blocks + 1 >= ESCALATE_AFTER_BLOCKS,
    })
}

/// Reads what [`settle_failure`] needs besides the consecutive count.
fn load_lock_state(
    c: &Connection,
    pan_hash: &[u8],
    consecutive: i64,
    now: i64,
    rules: Lockout,
) -> Result<LockState, IssuerError> {
    let times = |sql: &str, since: i64| -> Result<Vec<i64>, IssuerError> {
        let mut stmt = c.prepare_cached(sql)?;
        let rows = stmt.query_map(params![pan_hash, since], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<i64>, _>>()?)
    };
    Ok(LockState {
        consecutive,
        failures_at: times(
            "SELECT at FROM verify_failures WHERE pan_hash = ?1 AND at > ?2",
            now - rules.window_secs,
        )?,
        blocks_at: times(
            "SELECT at FROM verify_blocks WHERE pan_hash = ?1 AND at > ?2",
            now - ESCALATION_WINDOW_SECS,
        )?,
    })
}

/// Applies a [`FailureSettlement`] to the rows kept by PAN keyed hash
/// (`verify_failures`, `verify_blocks`); the caller stores the consecutive
/// count and `blocked_until` where the card number's state lives.
fn apply_failure(
    c: &Connection,
    pan_hash: &[u8],
    now: i64,
    settlement: FailureSettlement,
) -> Result<(), IssuerError> {
    match settlement {
        FailureSettlement::Count { .. } => {
            c.prepare_cached("INSERT INTO verify_failures (pan_hash, at) VALUES (?1, ?2)")?
                .execute(params![pan_hash, now])?;
        }
        FailureSettlement::Block(_) => {
            c.prepare_cached("DELETE FROM verify_failures WHERE pan_hash = ?1")?
                .execute([pan_hash])?;
            c.prepare_cached("INSERT INTO verify_blocks (pan_hash, at) VALUES (?1, ?2)")?
                .execute(params![pan_hash, now])?;
        }
    }
    Ok(())
}

struct BlockNotice {
    phone: String,
    last4: String,
    block: Block,
}

fn probe_blocked_until(c: &Connection, pan_hash: &[u8; 32]) -> Result<i64, IssuerError> {
    Ok(
        c.prepare_cached("SELECT blocked_until FROM probe_failures WHERE pan_hash = ?1")?
            .query_row([&pan_hash[..]], |r| r.get(0))
            .optional()?
            .unwrap_or(0),
    )
}

/// The write job of a verification for an unknown card number: a failure,
/// counted and blocked as a known card's (`settle_verification`, by the
/// same [`settle_failure`]). The flag says a block began.
fn settle_unknown(
    c: &Connection,
    pan_hash: &[u8; 32],
    now: i64,
    rules: Lockout,
) -> Result<(VerifyResponse, bool), IssuerError> {
    let (failures, blocked_until): (i64, i64) = c
        .prepare_cached("SELECT failures, blocked_until FROM probe_failures WHERE pan_hash = ?1")?
        .query_row([&pan_hash[..]], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, 0));
    if blocked_until > now {
        return Ok((
            verdict(VerifyResult::Blocked, "too_many_failures", None),
            false,
        ));
    }
    let state = load_lock_state(c, &pan_hash[..], failures, now, rules)?;
    let settlement = settle_failure(&state, now, rules);
    apply_failure(c, &pan_hash[..], now, settlement)?;
    let (failures, blocked_until) = match settlement {
        FailureSettlement::Count { consecutive } => (consecutive, 0),
        FailureSettlement::Block(b) => (0, b.until),
    };
    c.prepare_cached(
        "INSERT INTO probe_failures (pan_hash, failures, blocked_until, updated_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (pan_hash) DO UPDATE \
         SET failures = ?2, blocked_until = ?3, updated_at = ?4",
    )?
    .execute(params![&pan_hash[..], failures, blocked_until, now])?;
    Ok((
        verdict(VerifyResult::Rejected, "wrong_code", None),
        blocked_until > now,
    ))
}

/// The verification's write job: decides against the committed state.
/// A blocked card stays blocked; a matched step is accepted only above the
/// card's high-water mark for its key (RFC 6238 §5.2); a code refused for
/// dynamic linking changes nothing; failures count up to a block
/// ([`settle_failure`]; RFC 4226 §7.3, PSD2 RTS Art. 4).
fn settle_verification(
    c: &Connection,
    card_id: &str,
    generation: i64,
    spent: Spend,
    now: i64,
    rules: Lockout,
) -> Result<(VerifyResponse, Option<BlockNotice>), IssuerError> {
    type Row = (i64, i64, i64, i64, i64, String, String, Vec<u8>);
    let row: Option<Row> = c
        .prepare_cached(
            "SELECT failures, blocked_until, seed_generation, drift_first, drift_second, phone, last4, \
             pan_hash FROM cards WHERE id = ?1",
        )?
        .query_row([card_id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .optional()?;
    let Some((failures, blocked_until, gen_now, drift_first, drift_second, phone, last4, pan_hash)) =
        row
    else {
        // Cards are never deleted; answered as any failure would be.
        return Ok((verdict(VerifyResult::Rejected, "wrong_code", None), None));
    };
    if blocked_until > now {
        return Ok((
            verdict(VerifyResult::Blocked, "too_many_failures", None),
            None,
        ));
    }
    if gen_now != generation && matches!(spent, Spend::Step(_)) {
        // Re-activated while this code was checked against the old seed.
        return Ok((verdict(VerifyResult::Rejected, "wrong_code", None), None));
    }
    let reason = match spent {
        Spend::OneTime { id, kind } => match spend_one_time(c, id, now)? {
            None => {
                if failures != 0 {
                    c.prepare_cached("UPDATE cards SET failures = 0 WHERE id = ?1")?
                        .execute([card_id])?;
                }
                return Ok((verdict(VerifyResult::Accepted, "ok", Some(kind)), None));
            }
            Some(reason) => reason,
        },
        Spend::Replayed => "replayed",
        Spend::Step(s) => {
            let key = mark_key(s.kind);
            let mark: Option<(i64, i64)> = c
                .prepare_cached(
                    "SELECT generation, step FROM step_marks WHERE card_id = ?1 AND key = ?2",
                )?
                .query_row(params![card_id, key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let step = i64::try_from(s.step).unwrap_or(i64::MAX);
            let above_mark = match mark {
                // A mark of an older seed is no mark (RFC 6238 §5.2 is per
                // key).
                Some((g, m)) if g == gen_now => step > m,
                _ => true,
            };
            if above_mark {
                c.prepare_cached(
                    "INSERT INTO step_marks (card_id, key, generation, step) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (card_id, key) DO UPDATE SET generation = ?3, step = ?4",
                )?
                .execute(params![card_id, key, gen_now, step])?;
                let old_drift = if s.kind == PinKind::First {
                    drift_first
                } else {
                    drift_second
                };
                if failures != 0 || old_drift != s.drift {
                    let sql = if s.kind == PinKind::First {
                        "UPDATE cards SET failures = 0, drift_first = ?2 WHERE id = ?1"
                    } else {
                        "UPDATE cards SET failures = 0, drift_second = ?2 WHERE id = ?1"
                    };
                    c.prepare_cached(sql)?.execute(params![card_id, s.drift])?;
                }
                return Ok((verdict(VerifyResult::Accepted, "ok", Some(s.kind)), None));
            }
            "replayed"
        }
        Spend::Nothing => "wrong_code",
    };
    let state = load_lock_state(c, &pan_hash, failures, now, rules)?;
    let settlement = settle_failure(&state, now, rules);
    apply_failure(c, &pan_hash, now, settlement)?;
    match settlement {
        FailureSettlement::Count { consecutive } => {
            c.prepare_cached("UPDATE cards SET failures = ?2 WHERE id = ?1")?
                .execute(params![card_id, consecutive])?;
            Ok((verdict(VerifyResult::Rejected, reason, None), None))
        }
        FailureSettlement::Block(block) => {
            c.prepare_cached("UPDATE cards SET failures = 0, blocked_until = ?2 WHERE id = ?1")?
                .execute(params![card_id, block.until])?;
            c.prepare_cached(
                "INSERT INTO events (at, card_id, kind, detail) VALUES (?1, ?2, 'blocked', ?3)",
            )?
            .execute(params![
                now,
                card_id,
                if block.until_lifted() {
                    format!(
                        "until lifted (ops unblock or re-enrollment); {}",
                        block.cause.as_str()
                    )
                } else {
                    format!("until {}; {}", block.until, block.cause.as_str())
                }
            ])?;
            Ok((
                verdict(VerifyResult::Rejected, reason, None),
                Some(BlockNotice {
                    phone,
                    last4,
                    block,
                }),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const NOW: i64 = 1_800_000_000;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join(DB_FILE)).unwrap();
        (dir, conn)
    }

    fn rows(c: &Connection, table: &str) -> i64 {
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn activation_failures_outlive_every_pending_code() {
        let (_dir, c) = db();
        // Two days idle (a 7-day code may still be pending) and just past
        // the longest lifetime.
        for (phone, at) in [
            ("+989120000001", NOW - 2 * 24 * 3600),
            ("+989120000002", NOW - MAX_ACTIVATION_TTL_SECS as i64 - 1),
        ] {
            c.execute(
                "INSERT INTO activation_failures (phone, failures, updated_at) VALUES (?1, 4, ?2)",
                params![phone, at],
            )
            .unwrap();
        }
        housekeeping(Arc::new(ManualClock::new(NOW as u64)))(&c).unwrap();
        let kept: String = c
            .query_row("SELECT phone FROM activation_failures", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, "+989120000001");
        assert_eq!(rows(&c, "activation_failures"), 1);
    }

    const RULES: Lockout = Lockout {
        max_failures: 5,
        lockout_secs: 900,
        window_max: 10,
        window_secs: 24 * 3600,
    };

    fn state(consecutive: i64, failures_at: &[i64], blocks_at: &[i64]) -> LockState {
        LockState {
            consecutive,
            failures_at: failures_at.to_vec(),
            blocks_at: blocks_at.to_vec(),
        }
    }

    fn block(until: i64, cause: BlockCause, next_until_lifted: bool) -> FailureSettlement {
        FailureSettlement::Block(Block {
            until,
            cause,
            next_until_lifted,
        })
    }

    #[test]
    fn failures_settle_by_both_rules_and_escalate() {
        let hour = 3600;
        let day = 24 * hour;
        // Nine failures over the last day, acceptances between them (the
        // consecutive count is 0), one of them just outside the window.
        let nine: Vec<i64> = (1..=9).map(|i| NOW - i * 2 * hour).collect();
        let mut nine_one_old = nine.clone();
        nine_one_old[8] = NOW - day;
        use BlockCause::{Consecutive, Window};
        let cases: Vec<(&str, LockState, FailureSettlement)> = vec![
            (
                "first failure",
                state(0, &[], &[]),
                FailureSettlement::Count { consecutive: 1 },
            ),
            (
                "fourth in a row",
                state(3, &[NOW - 3, NOW - 2, NOW - 1], &[]),
                FailureSettlement::Count { consecutive: 4 },
            ),
            (
                "fifth in a row",
                state(4, &[NOW - 4, NOW - 3, NOW - 2, NOW - 1], &[]),
                block(NOW + 900, Consecutive, false),
            ),
            (
                "tenth in a day, payments between",
                state(0, &nine, &[]),
                block(NOW + 900, Window, false),
            ),
            (
                "the oldest of ten left the window",
                state(0, &nine_one_old, &[]),
                FailureSettlement::Count { consecutive: 1 },
            ),
            (
                "eight in the window, three in a row",
                state(3, &nine[..8], &[]),
                FailureSettlement::Count { consecutive: 4 },
            ),
            (
                "second block of the day warns",
                state(4, &[], &[NOW - hour]),
                block(NOW + 900, Consecutive, true),
            ),
            (
                "second block, the first a day old",
                state(4, &[], &[NOW - day]),
                block(NOW + 900, Consecutive, false),
            ),
            (
                "third block of the day lasts",
                state(4, &[], &[NOW - 2 * hour, NOW - hour]),
                block(BLOCKED_UNTIL_LIFTED, Consecutive, false),
            ),
            (
                "third block by the window lasts",
                state(0, &nine, &[NOW - 20 * hour, NOW - hour]),
                block(BLOCKED_UNTIL_LIFTED, Window, false),
            ),
            (
                "one of three blocks a day old",
                state(4, &[], &[NOW - day, NOW - hour]),
                block(NOW + 900, Consecutive, true),
            ),
        ];
        for (name, st, want) in cases {
            assert_eq!(settle_failure(&st, NOW, RULES), want, "{name}");
        }
        // A one-failure window blocks at once; a one-hour window forgets.
        let strict = Lockout {
            window_max: 1,
            ..RULES
        };
        assert_eq!(
            settle_failure(&state(0, &[], &[]), NOW, strict),
            block(NOW + 900, Window, false)
        );
        let hourly = Lockout {
            window_secs: hour,
            ..RULES
        };
        assert_eq!(
            settle_failure(&state(0, &nine, &[]), NOW, hourly),
            FailureSettlement::Count { consecutive: 1 }
        );
    }

    #[test]
    fn failures_are_stored_cleared_by_a_block_and_pruned() {
        let (_dir, c) = db();
        let pan = [7u8; 32];
        for at in [NOW - 10, NOW - 5] {
            apply_failure(&c, &pan, at, FailureSettlement::Count { consecutive: 1 }).unwrap();
        }
        let st = load_lock_state(&c, &pan, 2, NOW, RULES).unwrap();
        assert_eq!(st, state(2, &[NOW - 10, NOW - 5], &[]));
        apply_failure(&c, &pan, NOW, block(NOW + 900, BlockCause::Window, false)).unwrap();
        let st = load_lock_state(&c, &pan, 0, NOW, RULES).unwrap();
        assert_eq!(st, state(0, &[], &[NOW]));
        // Rows past the longest allowed window are pruned, newer ones kept.
        let limit = MAX_FAILURE_WINDOW_SECS as i64;
        for at in [NOW - limit, NOW - limit + 1] {
            apply_failure(&c, &pan, at, FailureSettlement::Count { consecutive: 1 }).unwrap();
        }
        housekeeping(Arc::new(ManualClock::new(NOW as u64)))(&c).unwrap();
        let kept: Vec<i64> = c
            .prepare("SELECT at FROM verify_failures")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(kept, vec![NOW - limit + 1]);
    }

    #[test]
    fn request_debug_hides_the_card_number() {
        let pan = "6104337700000001";
        let e = EnrollmentRequest {
            pan: pan.into(),
            phone: "09121234567".into(),
            channel: Channel::App,
        };
        let u = UnblockRequest { pan: pan.into() };
        for text in [format!("{e:?}"), format!("{e:#?}"), format!("{u:?}")] {
            assert!(!text.contains(pan), "{text}");
            assert!(!text.contains("0000000"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
        assert!(format!("{e:?}").contains("App"));
        // The ATM's part of a two-channel code is a secret until spent.
        let r = EnrollmentResponse {
            card_id: "crd_1".into(),
            channel: Channel::App,
            masked_pan: "6104 33•• •••• 0001".into(),
            activation_expires_at: Some(1),
            activation_code_atm_part: Some("98765".into()),
        };
        let text = format!("{r:?}");
        assert!(
            !text.contains("98765") && text.contains("<redacted>"),
            "{text}"
        );
    }

    #[test]
    fn codes_normalise() {
        assert_eq!(&*normalize_code("۱۲۳ ۴۵۶").unwrap(), "123456");
        assert_eq!(normalize_code("").unwrap_err().code, "invalid_code");
        assert_eq!(normalize_code("12a4").unwrap_err().code, "invalid_code");
        assert_eq!(
            normalize_code(&"1".repeat(17)).unwrap_err().code,
            "invalid_code"
        );
    }
}
