//! [`Phone`]: the customer's side of Pooya in one object: the vault plus
//! the network hook. Activate cards with the SMS code, list and manage
//! them, set caps, and read PINs offline (docs/phone.md).
//!
//! Every returned type is a plain record without secrets (PIN codes are
//! the only codes that leave, and only on request), so the FFI crate can
//! mirror them one to one.

use std::sync::Arc;

use pooya_protocol::{
    Language, PaymentView, PinKind, Transaction, TxType, bank_for_bin, normalize_activation_code,
    normalize_digits,
};

use crate::CoreError;
use crate::activation::{self, ACTIVATION_PATH, DEFAULT_TIMEOUT_MS};
use crate::bank_time::{self, BankTime, TIME_PATH, TimeAnchor};
use crate::hooks::{BootTime, HttpResponse, Transport};
use crate::pins::{self, CapChange, PinView};
use crate::vault::{CardId, IssuerProfile, NewCard, Vault, check_label};
pub use crate::views::{AddedCard, CardView, IssuerView, TimeSync};

/// The phone: a [`Vault`] and the host's [`Transport`]. Everything but
/// [`Phone::add_card`] works offline.
pub struct Phone {
    pub(crate) vault: Vault,
    pub(crate) transport: Arc<dyn Transport>,
    device_label: String,
    pub(crate) timeout_ms: u64,
    /// Issuer time offsets and boot-clock anchors read this session, so a
    /// PIN does not unseal the issuer profile every time. Cleared whenever
    /// a profile may change.
    offsets: std::collections::HashMap<String, (i64, Option<TimeAnchor>)>,
}

impl core::fmt::Debug for Phone {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Phone")
            .field("vault", &self.vault)
            .field("device_label", &self.device_label)
            .finish_non_exhaustive()
    }
}

// ---- sans-IO network steps (issue 13, item 6) -------------------------

/// The wall and boot clocks read together (see [`crate::hooks::Clock`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockReading {
    /// The wall clock, Unix seconds.
    pub wall_unix: u64,
    /// The boot clock, if the host has one.
    pub boot: Option<BootTime>,
}

/// What a prepared network step asks the host to send: POST `body`
/// (JSON) to `url`, giving up after `timeout_ms`. `before` is the clocks
/// read just before sending, which the finish step measures against.
/// Holds no secret: the body is what goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Where to POST.
    pub url: String,
    /// The JSON body.
    pub body: Vec<u8>,
    /// How long to wait for the answer, milliseconds.
    pub timeout_ms: u64,
    /// The clocks before sending.
    pub before: ClockReading,
}

/// A card activation between [`Phone::prepare_add_card`] and
/// [`Phone::finish_add_card`]: the exchange to send, and what the answer
/// is checked against (the activation code and the device's X25519 key,
/// both wiped on drop; the issuer profile as read). `Send`, so an async
/// host can await its transport with it; `Debug` shows the exchange only.
pub struct AddCardRequest {
    /// What to send.
    pub exchange: Exchange,
    label: Option<String>,
    profile: IssuerProfile,
    prepared: activation::Prepared,
}

impl core::fmt::Debug for AddCardRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AddCardRequest")
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

/// A time sync between [`Phone::prepare_sync_time`] and
/// [`Phone::finish_sync_time`]: the exchange and the nonce the answer
/// must be signed for (not secret: it is in the body).
#[derive(Debug)]
pub struct TimeSyncRequest {
    /// What to send.
    pub exchange: Exchange,
    profile: IssuerProfile,
    nonce: [u8; TIME_NONCE_LEN],
}

// ---- end of sans-IO network steps -------------------------------------

/// The largest `/v1/time` answer read.
const MAX_TIME_ANSWER_BYTES: usize = 4096;
/// Bytes of a time sync's nonce.
const TIME_NONCE_LEN: usize = 16;
/// How far the wall clock may disagree with the boot clock before the
/// host is advised to sync, when no card of the issuer names a step.
const DEFAULT_TOLERANCE_SECS: u64 = 30;

impl Phone {
    /// A phone over `vault` (locked or not). `device_label` names this
    /// device to the bank's operators and in the customer's activation
    /// notice, e.g. "Pixel 8" or the computer's name: the rule of
    /// [`pooya_protocol::normalize_device_label`] (letters, digits, spaces,
    /// ZWNJ and `- _ . ' + # /`, 1–64 characters), which the issuer applies
    /// too.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] (`device_label`).
    pub fn new(
        vault: Vault,
        transport: Arc<dyn Transport>,
        device_label: &str,
    ) -> Result<Self, CoreError> {
        let label = pooya_protocol::normalize_device_label(device_label).map_err(|_| {
            CoreError::InvalidField {
                field: "device_label",
                reason: "must be 1 to 64 letters, digits, spaces or - _ . ' + # /",
            }
        })?;
        Ok(Self {
            vault,
            transport,
            device_label: label,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            offsets: std::collections::HashMap::new(),
        })
    }

    /// The vault (status, lock, unlock, biometrics, password change).
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The vault, mutably.
    pub fn vault_mut(&mut self) -> &mut Vault {
        self.offsets.clear();
        &mut self.vault
    }

    /// Gives the vault back.
    pub fn into_vault(self) -> Vault {
        self.vault
    }

    /// Sets how long an activation waits for the bank (default
    /// [`DEFAULT_TIMEOUT_MS`], at least 1 s).
    pub fn set_timeout_ms(&mut self, timeout_ms: u64) {
        self.timeout_ms = timeout_ms.max(1_000);
    }

    /// Sets the customer's mobile number, once (the number registered at
    /// the ATM). Returns it normalised (`+989…`).
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::Protocol`] for a number that is
    /// not an Iranian mobile number, [`CoreError::PhoneAlreadySet`].
    pub fn set_phone_number(&mut self, phone: &str) -> Result<String, CoreError> {
        self.vault.set_phone(phone)
    }

    /// The phone number, if set.
    ///
    /// # Errors
    /// [`CoreError::Locked`].
    pub fn phone_number(&mut self) -> Result<Option<String>, CoreError> {
        self.vault.phone()
    }

    /// Stores an issuer profile: a unique `name`, the API's `base_url`
    /// (`https://`, or `http://` on a loopback address), the issuer's
    /// Ed25519 public key as 64 hex digits, which every activation answer
    /// must be signed with, and its activation key (P-256, SEC1
    /// uncompressed) as 130 hex digits, which every activation request is
    /// sealed to. Both come from the bank (`pooya-issuer init --json`).
    /// A profile of that name stored before activation v2 (no activation
    /// key) with the same Ed25519 key is upgraded in place.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::InvalidField`] (`public_key`,
    /// `activation_key`, `name`, `base_url`), [`CoreError::IssuerExists`].
    pub fn add_issuer(
        &mut self,
        name: &str,
        base_url: &str,
        public_key_hex: &str,
        activation_key_hex: &str,
    ) -> Result<IssuerView, CoreError> {
        self.offsets.clear();
        let activation_key = hex::decode(activation_key_hex.trim())
            .ok()
            .and_then(|k| pooya_protocol::activation::check_activation_key(&k).ok())
            .ok_or(CoreError::InvalidField {
                field: "activation_key",
                reason: "must be 130 hex digits (a P-256 public key, SEC1 uncompressed)",
            })?;
        let key = hex::decode(public_key_hex.trim())
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or(CoreError::InvalidField {
                field: "public_key",
                reason: "must be 64 hex digits (an Ed25519 public key)",
            })?;
        let mut profile = IssuerProfile {
            name: name.trim().to_owned(),
            base_url: base_url.trim().trim_end_matches('/').to_owned(),
            public_key: key,
            activation_key: Some(activation_key.to_vec()),
            time_offset_secs: 0,
            time_anchor: None,
        };
        // A profile stored before activation v2 (no activation key) of the
        // same bank, same signing key, is upgraded in place, keeping its
        // clock offset; any other profile of that name stays as it is.
        match self.vault.issuer(&profile.name) {
            Ok(old) if old.activation_key.is_none() && old.public_key == profile.public_key => {
                profile.time_offset_secs = old.time_offset_secs;
                profile.time_anchor = old.time_anchor;
                self.vault.update_issuer(&profile)?;
            }
            _ => self.vault.add_issuer(&profile)?,
        }
        Ok(profile.into())
    }

    /// Every issuer profile, in the order added.
    ///
    /// # Errors
    /// [`CoreError::Locked`].
    pub fn issuers(&mut self) -> Result<Vec<IssuerView>, CoreError> {
        Ok(self
            .vault
            .issuers()?
            .into_iter()
            .map(IssuerView::from)
            .collect())
    }

    /// Activates a card with the code the bank sent by SMS and stores it.
    ///
    /// The code may have Persian or Arabic-Indic digits, spaces and dashes;
    /// its check digit is verified before any network call. The phone then
    /// makes a fresh X25519 key, seals the request to the issuer's pinned
    /// activation key (HPKE, RFC 9180), posts it to
    /// `{base_url}/v1/activations`, checks the answer (status, JSON,
    /// signature against the pinned key, policies, server time; see
    /// [`crate::activation`]), derives the card seed and stores the card
    /// and the issuer's new time offset in one transaction. The new card's
    /// cap is the smallest tier. `label` defaults to the bank's name and
    /// the last four digits. Activating a card already in the vault again
    /// replaces it (keeping its label unless a new one is given, and its
    /// cap when the new ladder has that tier).
    ///
    /// # Errors
    /// [`CoreError::InvalidActivationCode`] (no network call was made),
    /// [`CoreError::Locked`], [`CoreError::PhoneNotSet`],
    /// [`CoreError::IssuerNotFound`], [`CoreError::InvalidField`] (label),
    /// [`CoreError::ActivationKeyMissing`], [`CoreError::Network`], [`CoreError::ActivationRefused`],
    /// [`CoreError::IssuerError`], [`CoreError::BadResponse`],
    /// [`CoreError::BadSignature`], [`CoreError::PolicyRefused`],
    /// [`CoreError::ServerTimeImplausible`]; storage errors. On any error
    /// nothing is stored.
    pub fn add_card(
        &mut self,
        issuer: &str,
        code: &str,
        label: Option<&str>,
    ) -> Result<AddedCard, CoreError> {
        let request = self.prepare_add_card(issuer, code, label)?;
        let answer = self.send(&request.exchange)?;
        let after = self.clock_reading();
        self.finish_add_card(request, answer, after)
    }

    /// [`Phone::add_card`]'s first step, without I/O: checks the code,
    /// the label, the phone number and the issuer profile, seals the
    /// request and reads the clocks just before sending. Hand
    /// [`AddCardRequest::exchange`] to a transport, then the answer to
    /// [`Phone::finish_add_card`]. Dropping the request instead stores
    /// nothing (the bank may have spent the code by then).
    ///
    /// # Errors
    /// As [`Phone::add_card`] before the network:
    /// [`CoreError::InvalidActivationCode`], [`CoreError::Locked`],
    /// [`CoreError::PhoneNotSet`], [`CoreError::IssuerNotFound`],
    /// [`CoreError::InvalidField`] (label),
    /// [`CoreError::ActivationKeyMissing`].
    pub fn prepare_add_card(
        &mut self,
        issuer: &str,
        code: &str,
        label: Option<&str>,
    ) -> Result<AddCardRequest, CoreError> {
        self.offsets.clear();
        let code = zeroize::Zeroizing::new(normalize_activation_code(code).map_err(|e| {
            CoreError::InvalidActivationCode(match e {
                pooya_protocol::ProtocolError::InvalidField { reason, .. } => reason,
                _ => "not an activation code",
            })
        })?);
        if let Some(l) = label {
            check_label(l)?;
        }
        let phone = self.vault.phone()?.ok_or(CoreError::PhoneNotSet)?;
        let profile = self.vault.issuer(issuer)?;

        let activation_key = profile
            .activation_key
            .clone()
            .ok_or(CoreError::ActivationKeyMissing)?;
        let mut prepared = activation::prepare(&phone, &code, &self.device_label, &activation_key)?;
        let url = format!("{}{ACTIVATION_PATH}", profile.base_url);
        Ok(AddCardRequest {
            exchange: Exchange {
                url,
                body: std::mem::take(&mut prepared.body),
                timeout_ms: self.timeout_ms,
                before: self.clock_reading(),
            },
            label: label.map(|l| l.trim().to_owned()),
            profile,
            prepared,
        })
    }

    /// [`Phone::add_card`]'s last step, without I/O: checks the issuer's
    /// `answer` to `request` (see [`crate::activation`]) with the clocks
    /// read `after` it arrived, derives the card seed and stores the card
    /// and the issuer's new time offset in one transaction.
    ///
    /// # Errors
    /// As [`Phone::add_card`] after the network: [`CoreError::Locked`],
    /// [`CoreError::ActivationRefused`], [`CoreError::IssuerError`],
    /// [`CoreError::BadResponse`], [`CoreError::BadSignature`],
    /// [`CoreError::PolicyRefused`], [`CoreError::ServerTimeImplausible`];
    /// storage errors. On any error nothing is stored.
    pub fn finish_add_card(
        &mut self,
        request: AddCardRequest,
        answer: HttpResponse,
        after: ClockReading,
    ) -> Result<AddedCard, CoreError> {
        self.offsets.clear();
        let AddCardRequest {
            exchange,
            label,
            mut profile,
            prepared,
        } = request;
        let (sent_at, boot_before) = (exchange.before.wall_unix, exchange.before.boot);
        let (received_at, boot_after) = (after.wall_unix, after.boot);
        // The issuer read its clock somewhere between sending and
        // receiving: the midpoint halves the error a slow network makes.
        let phone_time = sent_at + received_at.saturating_sub(sent_at) / 2;
        let got = activation::check_answer(
            prepared,
            &profile.public_key,
            answer.status,
            &answer.body,
            phone_time,
        )?;

        let offset =
            i64::try_from(i128::from(got.server_time) - i128::from(phone_time)).map_err(|_| {
                CoreError::ServerTimeImplausible {
                    skew_secs: i64::MAX,
                }
            })?;
        let existing = self
            .vault
            .cards()?
            .into_iter()
            .find(|c| c.issuer == profile.name && c.issuer_card_id == got.card_id);
        let ladder = &got.policies.cap_ladder;
        let cap = existing
            .as_ref()
            .map(|c| c.cap)
            .filter(|c| ladder.contains(*c))
            .unwrap_or_else(|| pins::default_cap(ladder));
        let label = match (label, &existing) {
            (Some(l), _) => l,
            (None, Some(old)) => old.label.clone(),
            (None, None) => default_label(&got.masked_pan, &got.bank_name, &got.last4),
        };
        let card = NewCard {
            issuer: profile.name.clone(),
            issuer_card_id: got.card_id,
            label,
            masked_pan: got.masked_pan,
            last4: got.last4,
            bank_name: got.bank_name,
            policies: got.policies,
            cap,
            seed: got.seed,
        };
        profile.time_offset_secs = offset;
        // The activation answer signs its server time for this fresh
        // request: as good a time sync as `/v1/time`.
        profile.time_anchor = bank_time::measure(
            got.server_time,
            sent_at,
            received_at,
            boot_before.as_ref(),
            boot_after.as_ref(),
        )
        .1;
        let replaced = existing.map(|c| c.id);
        let id = self.vault.store_card(&card, replaced, Some(&profile))?;
        Ok(AddedCard {
            card: self.card(id)?,
            replaced,
            time_offset_secs: offset,
        })
    }

    /// The wall and boot clocks now (what the prepare steps take before
    /// sending and the finish steps after the answer).
    pub fn clock_reading(&self) -> ClockReading {
        ClockReading {
            wall_unix: self.vault.now_unix(),
            boot: self.vault.boot_time(),
        }
    }

    /// Sends a prepared exchange through the synchronous [`Transport`].
    fn send(&self, exchange: &Exchange) -> Result<HttpResponse, CoreError> {
        self.transport
            .post_json(&exchange.url, &exchange.body, exchange.timeout_ms)
            .map_err(|e| CoreError::Network(e.message))
    }

    /// Every card, in the order added.
    ///
    /// # Errors
    /// [`CoreError::Locked`].
    pub fn cards(&mut self) -> Result<Vec<CardView>, CoreError> {
        Ok(self
            .vault
            .cards()?
            .into_iter()
            .map(CardView::from_record)
            .collect())
    }

    /// One card.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`].
    pub fn card(&mut self, id: CardId) -> Result<CardView, CoreError> {
        self.vault.card(id).map(CardView::from_record)
    }

    /// Finds a card by what a person types: its last four digits (ASCII or
    /// Persian), or its local id. Four digits are matched against the last
    /// four first; when no card ends in them they are taken as an id.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`],
    /// [`CoreError::AmbiguousCard`] when several cards end in the digits.
    pub fn find_card(&mut self, selector: &str) -> Result<CardView, CoreError> {
        let digits = normalize_digits(selector.trim()).ok_or(CoreError::CardNotFound)?;
        if digits.is_empty() {
            return Err(CoreError::CardNotFound);
        }
        let cards = self.cards()?;
        if digits.len() == 4 {
            let mut matching = cards.iter().filter(|c| c.last4 == digits);
            if let Some(first) = matching.next() {
                if matching.next().is_some() {
                    return Err(CoreError::AmbiguousCard);
                }
                return Ok(first.clone());
            }
        }
        let id: CardId = digits.parse().map_err(|_| CoreError::CardNotFound)?;
        cards
            .into_iter()
            .find(|c| c.id == id)
            .ok_or(CoreError::CardNotFound)
    }

    /// Renames a card.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::InvalidField`] (label),
    /// [`CoreError::CardNotFound`].
    pub fn rename_card(&mut self, id: CardId, label: &str) -> Result<CardView, CoreError> {
        self.vault.rename_card(id, label.trim())?;
        self.card(id)
    }

    /// Removes a card from this phone and tells the bank
    /// ([`Phone::prepare_remove_card`] and [`Phone::finish_remove_card`]
    /// over the transport; core/src/card_life.rs). Needs the password
    /// again. The result says whether the bank was told; if not, the
    /// removal is kept and retried at the next [`Phone::sync`].
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`],
    /// [`CoreError::IssuerNotFound`], the password errors of
    /// [`Vault::unlock_with_password`]; storage errors. A bank that cannot
    /// be reached is no error: see [`crate::card_life::BankNotice`].
    pub fn remove_card(
        &mut self,
        id: CardId,
        password: &str,
    ) -> Result<crate::card_life::CardRemoval, CoreError> {
        self.remove_card_and_tell(id, password)
    }

    /// Sets a card's cap from an amount in Rials: the largest tier of its
    /// ladder not above `amount` (the caller is told through
    /// [`CapChange::rounded_down`]). Lowering is free; raising needs the
    /// password (`password` is not checked when lowering).
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`],
    /// [`CoreError::CapBelowLowestTier`], [`CoreError::PasswordRequired`]
    /// when raising without a password, the password errors of
    /// [`Vault::unlock_with_password`].
    pub fn set_cap(
        &mut self,
        id: CardId,
        amount: u64,
        password: Option<&str>,
    ) -> Result<CapChange, CoreError> {
        let card = self.vault.card(id)?;
        let cap = pins::tier_for(&card.policies.cap_ladder, amount)?;
        if cap != card.cap {
            self.vault.set_cap(id, cap, password)?;
        }
        Ok(CapChange {
            card_id: id,
            previous: card.cap,
            requested: amount,
            cap,
        })
    }

    /// The issuer-corrected time for a card's issuer (docs/phone.md, "Time
    /// that stays right"): the last signed sync plus the boot clock's
    /// progress while the device has not restarted, else the phone's clock
    /// plus the last measured offset.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::IssuerNotFound`].
    pub fn issuer_time(&mut self, issuer: &str) -> Result<u64, CoreError> {
        Ok(self.bank_time(issuer, DEFAULT_TOLERANCE_SECS)?.time)
    }

    /// The bank time of `issuer` with where it came from and whether the
    /// host should sync: the wall clock disagrees with the boot clock by
    /// more than one PIN step of the issuer's cards (the smallest first-PIN
    /// step, 30 s without cards), or the device restarted since the last
    /// sync so the wall clock is all there is.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::IssuerNotFound`].
    pub fn time_status(&mut self, issuer: &str) -> Result<BankTime, CoreError> {
        let step = self
            .vault
            .cards()?
            .iter()
            .filter(|c| c.issuer == issuer)
            .map(|c| c.policies.first.step)
            .min()
            .unwrap_or(DEFAULT_TOLERANCE_SECS);
        self.bank_time(issuer, step)
    }

    fn bank_time(&mut self, issuer: &str, tolerance_secs: u64) -> Result<BankTime, CoreError> {
        let (offset, anchor) = match self.offsets.get(issuer) {
            // Cached values are only used while the vault is unlocked.
            Some(o) if self.vault.is_unlocked() => o.clone(),
            _ => {
                let p = self.vault.issuer(issuer)?;
                let o = (p.time_offset_secs, p.time_anchor);
                self.offsets.insert(issuer.to_owned(), o.clone());
                o
            }
        };
        Ok(bank_time::bank_time(
            offset,
            anchor.as_ref(),
            self.vault.now_unix(),
            self.vault.boot_time().as_ref(),
            tolerance_secs,
        ))
    }

    /// Syncs the phone's idea of `issuer`'s time: posts a fresh 16-byte
    /// nonce to `{base_url}/v1/time` through the transport hook, checks
    /// the answer's Ed25519 signature (RFC 8032 §5.1.7) over
    /// [`pooya_protocol::time::time_signing_input`] against the pinned key
    /// and the nonce, and stores the new offset and the boot-clock anchor
    /// in the issuer profile. Any signed time is taken, however far from
    /// the wall clock: a wrong wall clock is what this repairs.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::IssuerNotFound`],
    /// [`CoreError::Network`], [`CoreError::IssuerError`],
    /// [`CoreError::BadResponse`], [`CoreError::BadSignature`] (also for an
    /// answer to another nonce); storage errors. On any error nothing is
    /// stored.
    pub fn sync_time(&mut self, issuer: &str) -> Result<TimeSync, CoreError> {
        let request = self.prepare_sync_time(issuer)?;
        let answer = self.send(&request.exchange)?;
        let after = self.clock_reading();
        self.finish_sync_time(request, answer, after)
    }

    /// [`Phone::sync_time`]'s first step, without I/O: a fresh nonce, the
    /// request to `{base_url}/v1/time` and the clocks just before sending.
    /// Dropping the request instead changes nothing.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::IssuerNotFound`];
    /// [`CoreError::Storage`] if the system random generator fails.
    pub fn prepare_sync_time(&mut self, issuer: &str) -> Result<TimeSyncRequest, CoreError> {
        use ring::rand::SecureRandom as _;
        self.offsets.clear();
        let profile = self.vault.issuer(issuer)?;
        let mut nonce = [0u8; TIME_NONCE_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CoreError::Storage("no randomness".into()))?;
        let body = serde_json::to_vec(&pooya_protocol::time::TimeRequest {
            nonce: hex::encode(nonce),
        })
        .map_err(|_| CoreError::BadResponse("request"))?;
        let url = format!("{}{TIME_PATH}", profile.base_url);
        Ok(TimeSyncRequest {
            exchange: Exchange {
                url,
                body,
                timeout_ms: self.timeout_ms,
                before: self.clock_reading(),
            },
            profile,
            nonce,
        })
    }

    /// [`Phone::sync_time`]'s last step, without I/O: checks the signed
    /// `answer` to `request` and stores the offset and boot-clock anchor
    /// measured between the clocks read before sending and `after`.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::IssuerError`],
    /// [`CoreError::BadResponse`], [`CoreError::BadSignature`]; storage
    /// errors. On any error nothing is stored.
    pub fn finish_sync_time(
        &mut self,
        request: TimeSyncRequest,
        answer: HttpResponse,
        after: ClockReading,
    ) -> Result<TimeSync, CoreError> {
        self.offsets.clear();
        let TimeSyncRequest {
            exchange,
            mut profile,
            nonce,
        } = request;
        let server_time =
            check_time_answer(&profile.public_key, &nonce, answer.status, &answer.body)?;
        let (offset, anchor) = bank_time::measure(
            server_time,
            exchange.before.wall_unix,
            after.wall_unix,
            exchange.before.boot.as_ref(),
            after.boot.as_ref(),
        );
        let previous = profile.time_offset_secs;
        let boot_anchored = anchor.is_some();
        profile.time_offset_secs = offset;
        profile.time_anchor = anchor;
        self.vault.update_issuer(&profile)?;
        Ok(TimeSync {
            issuer: profile.name,
            server_time,
            time_offset_secs: offset,
            previous_offset_secs: previous,
            boot_anchored,
        })
    }

    fn secret_and_time(
        &mut self,
        id: CardId,
    ) -> Result<(crate::vault::CardSecret, u64), CoreError> {
        let secret = self.vault.card_secret(id)?;
        // Issue 13: no PIN the bank would refuse (core/src/card_life.rs).
        self.refuse_unless_active(id)?;
        let time = self.issuer_time(&secret.issuer)?;
        Ok((secret, time))
    }

    /// The first dynamic PIN (ATM, POS) now. Offline.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`].
    pub fn first_pin(&mut self, id: CardId) -> Result<PinView, CoreError> {
        let (s, t) = self.secret_and_time(id)?;
        pins::first_pin(&s, t)
    }

    /// The second dynamic PIN (online payments, card-to-card, bills) now,
    /// bound to `cap` limited to the card's cap and rounded down to a tier
    /// (the card's cap when `None`). Offline.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`],
    /// [`CoreError::CapBelowLowestTier`].
    pub fn second_pin(&mut self, id: CardId, cap: Option<u64>) -> Result<PinView, CoreError> {
        let (s, t) = self.secret_and_time(id)?;
        pins::second_pin(&s, cap, t)
    }

    /// The second dynamic PIN bound to exactly a transaction of `tx_type`
    /// for `amount` Rials to `payee` now (docs/phone.md, "PINs"). Offline.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`],
    /// [`CoreError::AmountAboveCap`], [`CoreError::Protocol`] for a zero
    /// amount or a bad payee.
    pub fn transaction_pin(
        &mut self,
        id: CardId,
        tx_type: TxType,
        amount: u64,
        payee: &str,
    ) -> Result<PinView, CoreError> {
        let (s, t) = self.secret_and_time(id)?;
        pins::transaction_pin(&s, &Transaction::new(tx_type, amount, payee), t)
    }

    // Issue 13, payment QR codes.
    /// What the app shows for a scanned payment request URI (`pooya:pay?…`)
    /// before the customer picks it up with card `id`: amount in Persian
    /// and Latin digits, payee, type and time left, in the bank time of
    /// the card's issuer. Offline.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`],
    /// [`CoreError::InvalidPaymentRequest`] (the parser's code),
    /// [`CoreError::PaymentRequestExpired`].
    pub fn payment_view(
        &mut self,
        id: CardId,
        uri: &str,
        lang: Language,
    ) -> Result<PaymentView, CoreError> {
        let (_, t) = self.secret_and_time(id)?;
        pins::payment_view(uri, lang, t)
    }

    /// The transaction-bound PIN of card `id` for exactly a scanned
    /// payment request (its type, amount and payee id), if it has not
    /// expired. Offline.
    ///
    /// # Errors
    /// As [`Phone::payment_view`]; [`CoreError::AmountAboveCap`].
    pub fn payment_pin(&mut self, id: CardId, uri: &str) -> Result<PinView, CoreError> {
        let (s, t) = self.secret_and_time(id)?;
        pins::payment_pin(&s, uri, t)
    }

    /// A PIN of `kind` for a card: shorthand for the three calls above
    /// (`tx` only for [`PinKind::Transaction`], `cap` only for
    /// [`PinKind::Second`]).
    ///
    /// # Errors
    /// As the three calls; [`CoreError::InvalidField`] when a transaction
    /// PIN lacks its amount or payee.
    pub fn pin(
        &mut self,
        id: CardId,
        kind: PinKind,
        cap: Option<u64>,
        tx: Option<Transaction<'_>>,
    ) -> Result<PinView, CoreError> {
        match kind {
            PinKind::First => self.first_pin(id),
            PinKind::Second => self.second_pin(id, cap),
            PinKind::Transaction => {
                let tx = tx.ok_or(CoreError::InvalidField {
                    field: "transaction",
                    reason: "a transaction PIN needs the type, amount and payee",
                })?;
                self.transaction_pin(id, tx.tx_type, tx.amount, tx.payee)
            }
        }
    }
}

/// "Bank Mellat 1234" from the BIN table, else the issuer's bank name.
fn default_label(masked_pan: &str, bank_name: &str, last4: &str) -> String {
    let bin: String = masked_pan
        .chars()
        .filter(char::is_ascii_digit)
        .take(6)
        .collect();
    let bank = bank_for_bin(&bin).map_or(bank_name, |b| b.name_en);
    let bank: String = bank.chars().take(50).collect();
    let bank = bank.trim();
    if bank.is_empty() {
        format!("Card {last4}")
    } else {
        format!("{bank} {last4}")
    }
}

/// Checks a `/v1/time` answer: a 2xx status, the JSON of
/// [`pooya_protocol::time::TimeAnswer`], our nonce, and the Ed25519
/// signature of the pinned key over the signing input. Returns the signed
/// time.
fn check_time_answer(
    pinned_key: &[u8; 32],
    nonce: &[u8],
    status: u16,
    body: &[u8],
) -> Result<u64, CoreError> {
    use ring::signature::{ED25519, UnparsedPublicKey};
    if body.len() > MAX_TIME_ANSWER_BYTES {
        return Err(CoreError::BadResponse("answer too large"));
    }
    activation::check_status(status, body)?;
    let answer: pooya_protocol::time::TimeAnswer = serde_json::from_slice(body)
        .map_err(|_| CoreError::BadResponse("not the expected JSON"))?;
    let sig = pooya_protocol::wire::decode_hex_array::<64>("signature", &answer.signature)
        .map_err(|_| CoreError::BadResponse("signature is not 64 bytes of hex"))?;
    // The signature covers the nonce the phone sent, so an answer to
    // another request (a replay) fails here even if its echo were edited.
    UnparsedPublicKey::new(&ED25519, pinned_key)
        .verify(
            &pooya_protocol::time::time_signing_input(nonce, answer.server_time),
            &sig,
        )
        .map_err(|_| CoreError::BadSignature)?;
    // Signed for our nonce, but echoing another: a broken or meddling
    // answer all the same.
    if answer.nonce != hex::encode(nonce) {
        return Err(CoreError::BadResponse("the answer echoes another nonce"));
    }
    Ok(answer.server_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(
            default_label("6104 33•• •••• 0001", "x", "0001"),
            "Bank Mellat 0001"
        );
        assert_eq!(
            default_label("1111 11•• •••• 0001", "Pooya Bank", "0001"),
            "Pooya Bank 0001"
        );
        assert_eq!(
            default_label("1111 11•• •••• 0001", "", "0001"),
            "Card 0001"
        );
        let long = "x".repeat(200);
        assert!(check_label(&default_label("1111 11•• •••• 0001", &long, "0001")).is_ok());
    }
}
