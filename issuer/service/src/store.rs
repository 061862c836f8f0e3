//! The issuer's storage, as one trait with one method per atomic
//! operation (docs/architecture.md, "Issuer layers").
//!
//! Every method that changes state is one transaction, committed durably
//! (SQLite `synchronous = FULL`, PostgreSQL `synchronous_commit = on`)
//! before it returns, so an answer never runs ahead of the disk. Decisions
//! are not made here: a method that must decide inside its transaction
//! (settling a verification, counting a failure) loads the typed state,
//! calls the pure function of [`crate::rules`] and applies its result. So
//! every backend decides alike, and the conformance suite
//! (`pooya-issuer-conformance`) checks that each applies the decisions
//! alike, under concurrency too: every rule that must hold across
//! processes (once-only spending, high-water marks, failure counts and
//! blocks, escalation, rate limits, activation budgets) holds in the
//! database, never in one process's memory.
//!
//! Times are Unix seconds as `i64`; hashes are the keyed hashes of
//! [`crate::keys::HashDomain`]; sealed values are opened only by the
//! service, never by a store.

use async_trait::async_trait;
use pooya_protocol::PinKind;
use serde::{Deserialize, Serialize};

use crate::IssuerError;
use crate::merchants::Merchant;
use crate::outbox::{NewSms, Notice};
use crate::roles::Role;
use crate::rules::{Lockout, OtpLimits, SettleDecision};

/// A 32-byte keyed hash (HMAC-SHA256).
pub type Hash = [u8; 32];

/// The storage of an issuer: SQLite (`pooya-issuer-sqlite`) or PostgreSQL
/// (`pooya-issuer-postgres`). Errors are [`IssuerError::Storage`] (a
/// database failure, logged and answered 500) or
/// [`IssuerError::Unavailable`] (shutting down, 503).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name for logs and metrics (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;

    // ----- set-up -------------------------------------------------------

    /// A value of the `meta` table (sealed keys, the canary, the public
    /// key).
    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, IssuerError>;

    /// Stores `entries` unless the first key has a value already, and
    /// returns the values stored (these or the earlier ones, in order):
    /// two nodes starting at once agree on one set. An event of `event`
    /// kind is logged when they are stored.
    async fn put_meta_once(
        &self,
        entries: Vec<(&'static str, Vec<u8>)>,
        event: &'static str,
        at: i64,
    ) -> Result<Vec<Vec<u8>>, IssuerError>;

    /// Initialises an empty database: its `meta` entries and API tokens
    /// (by keyed hash), in one transaction.
    ///
    /// # Errors
    /// [`IssuerError::AlreadyInitialized`] when the first entry's key has
    /// a value already.
    async fn initialize(
        &self,
        meta: Vec<(&'static str, Vec<u8>)>,
        tokens: Vec<(Hash, Role)>,
        at: i64,
    ) -> Result<(), IssuerError>;

    /// The tokens not revoked.
    async fn tokens(&self) -> Result<Vec<(Hash, Role)>, IssuerError>;

    // ----- enrollment ---------------------------------------------------

    /// Enrolls a card at an ATM (card and card PIN): creates it or moves it
    /// to `phone`, lifts its blocks and forgets its failures, and for the
    /// app stores a new activation code (superseding the card's pending
    /// ones) or for the SMS version enables it; queues `message` to the
    /// phone, and `phone_changed` to the previous phone if it was another.
    async fn enroll(&self, e: Enrollment) -> Result<Enrolled, IssuerError>;

    // ----- activation ---------------------------------------------------

    /// Reads what an activation guess is checked against: whether `phone`
    /// has a live code, its failure count, and the pending code with this
    /// hash, if any (with its card's sealed PAN and registered phone).
    async fn activation_lookup(
        &self,
        phone: &str,
        code_hash: Hash,
        now: i64,
    ) -> Result<ActivationLookup, IssuerError>;

    /// Spends the activation code and activates its card, if the code is
    /// still pending and live and the phone's failures are below
    /// `max_failures` (a guess counted meanwhile may have burned it):
    /// false when not, and then nothing is written.
    async fn complete_activation(&self, a: ActivationWrite) -> Result<bool, IssuerError>;

    /// Counts a wrong activation code for a phone with a live code; the
    /// count that reaches `max_failures` burns the phone's pending codes.
    async fn count_activation_failure(
        &self,
        phone: &str,
        now: i64,
        max_failures: u32,
    ) -> Result<ActivationFailure, IssuerError>;

    /// Counts a guess for a phone with no live code (one row for all).
    async fn count_activation_stranger(&self, now: i64) -> Result<(), IssuerError>;

    // ----- verification -------------------------------------------------

    /// The card a verification is checked against, by PAN hash.
    async fn card_by_pan(&self, pan_hash: Hash) -> Result<Option<CardState>, IssuerError>;

    /// Until when an unknown card number's dynamic PINs are blocked (0:
    /// not blocked).
    async fn probe_blocked_until(&self, pan_hash: Hash) -> Result<i64, IssuerError>;

    /// The card's one-time codes created after `since`.
    async fn one_time_codes(
        &self,
        card_id: &str,
        since: i64,
    ) -> Result<Vec<OneTimeCodeRow>, IssuerError>;

    /// Settles a verification of a known card: locks the card, loads its
    /// [`crate::rules::SettleInput`], decides with
    /// [`crate::rules::decide_settlement`] and applies the decision; a
    /// block queues its notice to the card's phone.
    async fn settle_verification(&self, s: Settlement) -> Result<SettleDecision, IssuerError>;

    /// Settles a failure of an unknown card number (counted and blocked by
    /// PAN hash as a known card's, by [`crate::rules::settle_failure`]);
    /// true when a block began.
    async fn settle_unknown(
        &self,
        pan_hash: Hash,
        now: i64,
        rules: Lockout,
    ) -> Result<UnknownSettled, IssuerError>;

    // ----- one-time codes (SMS version, Harim) --------------------------

    /// The SMS-enabled card of `phone` with these last four digits (the
    /// most recently enrolled).
    async fn sms_card(&self, phone: &str, last4: &str) -> Result<Option<CodeCard>, IssuerError>;

    /// A card's id, phone and last four digits, by PAN hash.
    async fn harim_card(&self, pan_hash: Hash) -> Result<Option<CodeCard>, IssuerError>;

    /// Issues a one-time code if every subject's rate limit allows
    /// ([`crate::rules::otp_retry_after`] over the sends of the last hour):
    /// stores the code (superseding the card's pending codes of the
    /// channel), counts the send per subject and queues `message`. When
    /// limited, nothing is stored; with `wait_reply`, the phone is told to
    /// wait if its reply limit allows.
    async fn issue_one_time_code(&self, i: IssueCode) -> Result<Issued, IssuerError>;

    /// Counts a reply without a code (help) against the phone's hourly
    /// limit and queues it; false (and nothing queued) past the limit.
    async fn reply_without_code(
        &self,
        phone: &str,
        now: i64,
        max_per_hour: u32,
        message: NewSms,
    ) -> Result<bool, IssuerError>;

    // ----- operations ---------------------------------------------------

    /// Lifts a card number's block and forgets its failures and blocks;
    /// `None` for a card number the bank does not know (its probe counters
    /// are cleared all the same).
    async fn unblock(&self, pan_hash: Hash, now: i64) -> Result<Option<Unblocked>, IssuerError>;

    // ----- a card's whole life (issue 13, item 2) -------------------------

    /// The card a device request names, by the issuer's card id.
    async fn card_by_id(&self, card_id: &str) -> Result<Option<CardState>, IssuerError>;

    /// Changes a card's app state for `cause`, in one transaction: loads
    /// the state, decides with [`crate::rules::status_transition`], and on
    /// a change stores the new state, records the event (`cause`'s name,
    /// `from -> to`) and queues the customer's notice
    /// ([`Notice::AppStatusChanged`]) to the card's phone. `None` for a
    /// card the bank does not know.
    async fn change_card_status(
        &self,
        card: CardRef,
        cause: StatusCause,
        now: i64,
    ) -> Result<Option<StatusOutcome>, IssuerError>;

    /// Registers or renames a merchant.
    async fn put_merchant(
        &self,
        payee_id: &str,
        name: &str,
        now: i64,
    ) -> Result<(Stored, Merchant), IssuerError>;

    /// A registered merchant.
    async fn merchant(&self, payee_id: &str) -> Result<Option<Merchant>, IssuerError>;

    // ----- the SMS outbox -----------------------------------------------

    /// Claims up to `limit` messages due at `now` (pending, or sending with
    /// an expired lease), oldest first, leasing them until
    /// `now + lease_secs`; concurrent claimers never get the same message
    /// (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
    async fn claim_messages(
        &self,
        now: i64,
        limit: u32,
        lease_secs: i64,
    ) -> Result<Vec<QueuedSms>, IssuerError>;

    /// Records a delivery and wipes the payload.
    async fn message_delivered(
        &self,
        id: i64,
        now: i64,
        gateway_ref: Option<String>,
    ) -> Result<(), IssuerError>;

    /// Records a failed attempt: retried at `retry_at`, or given up
    /// (`failed`, payload wiped) when `None`.
    async fn message_failed(
        &self,
        id: i64,
        retry_at: Option<i64>,
        error: &str,
    ) -> Result<(), IssuerError>;

    /// How many messages wait, and how many were given up.
    async fn outbox_counts(&self) -> Result<OutboxCounts, IssuerError>;

    /// Records a delivery report of the SMS gateway against the outbox
    /// message `message_id` ([`crate::outbox::Sms::message_id`]); `false`,
    /// recording nothing, when no such message is in the outbox (unknown,
    /// or pruned).
    async fn record_delivery_report(
        &self,
        message_id: &str,
        report: DeliveryReport,
        at: i64,
    ) -> Result<bool, IssuerError>;

    /// The delivery reports of a message, in the order recorded.
    async fn delivery_reports(
        &self,
        message_id: &str,
    ) -> Result<Vec<(DeliveryReport, i64)>, IssuerError>;

    /// Appends a message the development recorder "delivered" (body
    /// sealed to its recipient).
    async fn record_dev_sms(&self, sms: DevSms) -> Result<(), IssuerError>;

    /// The development recorder's messages, oldest first: the newest
    /// `limit`, for one phone or all.
    async fn dev_sms(&self, phone: Option<&str>, limit: u32) -> Result<Vec<DevSms>, IssuerError>;

    // ----- key rotation (docs/issuer.md, "Key rotation") -----------------

    /// Up to `limit` values of `kind` whose row key sorts after `after`
    /// (`""` from the start), in row-key order. Values of the kind that are
    /// absent or not sealed (a wiped or plain outbox payload, a card not
    /// activated) are left out.
    async fn sealed_values(
        &self,
        kind: SealedKind,
        after: &str,
        limit: u32,
    ) -> Result<Vec<SealedValue>, IssuerError>;

    /// Replaces one sealed value if it is still `old` (compare and swap, so
    /// a value changed meanwhile by the service is never overwritten);
    /// whether it was replaced.
    async fn replace_sealed(
        &self,
        kind: SealedKind,
        key: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, IssuerError>;

    /// Sets a `meta` value, overwriting it, with an event of `event_kind`.
    async fn set_meta(
        &self,
        key: &str,
        value: Vec<u8>,
        event_kind: &'static str,
        at: i64,
    ) -> Result<(), IssuerError>;

    // ----- health and housekeeping --------------------------------------

    /// The database answers and takes writes.
    async fn health(&self) -> Result<(), IssuerError>;

    /// Deletes what no rule looks at any more: failures past the longest
    /// window, blocks past escalation, rate-limit rows past the hour, old
    /// codes, delivered messages past a day.
    async fn prune(&self, now: i64) -> Result<(), IssuerError>;

    /// Stops the store's own threads and connections (at shutdown; a
    /// blocking call).
    fn close(&self) {}

    /// Counters for `/metrics`: (name, help, value).
    fn stats(&self) -> Vec<(&'static str, &'static str, u64)> {
        Vec::new()
    }
}

/// Where a value sealed under the master key is kept; key rotation visits
/// each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedKind {
    /// `meta` values (the canary and, with the file provider, the sealed
    /// signing and activation keys); row key: the meta key, context empty.
    Meta,
    /// A card's sealed PAN; row key and context: the card id.
    CardPan,
    /// A card's sealed PIN keys (`seed_sealed`); row key and context: the
    /// card id.
    CardKeys,
    /// A sealed outbox payload not yet delivered; row key: the outbox row
    /// id, context: the message id.
    OutboxPayload,
    /// A development recorder body; row key: its row id, context: the
    /// recipient.
    DevSmsBody,
}

impl SealedKind {
    /// Every kind, in the order rotation visits them.
    pub const ALL: [SealedKind; 5] = [
        SealedKind::Meta,
        SealedKind::CardPan,
        SealedKind::CardKeys,
        SealedKind::OutboxPayload,
        SealedKind::DevSmsBody,
    ];

    /// The stable name, for logs and the rotation report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Meta => "meta",
            Self::CardPan => "card_pan",
            Self::CardKeys => "card_keys",
            Self::OutboxPayload => "outbox_payload",
            Self::DevSmsBody => "dev_sms_body",
        }
    }
}

/// One sealed value, with the row key to replace it by and the
/// associated-data context it was sealed with.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedValue {
    /// The row key (see [`SealedKind`]); integer ids as decimal text.
    pub key: String,
    /// The context the value was sealed with.
    pub context: Vec<u8>,
    /// The sealed bytes.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedValue")
            .field("key", &self.key)
            .field("len", &self.sealed.len())
            .finish_non_exhaustive()
    }
}

/// How the customer gets dynamic PINs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The phone app (activation code by SMS).
    App,
    /// The SMS version (one-time PINs by SMS).
    Sms,
}

/// An enrollment to store.
#[derive(Debug)]
pub struct Enrollment {
    /// The PAN's keyed hash.
    pub pan_hash: Hash,
    /// The card id to use if the card is new.
    pub new_card_id: String,
    /// The PAN sealed to `new_card_id` (used only if the card is new).
    pub pan_sealed: Vec<u8>,
    /// Its last four digits.
    pub last4: String,
    /// The normalised phone.
    pub phone: String,
    /// `App` with the code to store, or `Sms`.
    pub code: Option<NewActivationCode>,
    /// The message to `phone` (the code, or "SMS version enabled").
    pub message: NewSms,
    /// The notice to the previous phone, if the card moves (its recipient
    /// is filled by the store).
    pub phone_changed: Notice,
    /// Unix seconds.
    pub now: i64,
}

/// An activation code to store (by keyed hash over phone and code).
#[derive(Debug, Clone, Copy)]
pub struct NewActivationCode {
    /// The code's keyed hash.
    pub hash: Hash,
    /// When it expires.
    pub expires_at: i64,
}

/// What [`Store::enroll`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// The card's id (new or existing).
    pub card_id: String,
    /// The card was enrolled for another phone before.
    pub moved_from_another_phone: bool,
}

/// What an activation guess is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationLookup {
    /// The phone has at least one pending, unexpired code.
    pub live_code: bool,
    /// Wrong guesses counted for the phone.
    pub failures: u32,
    /// The pending, unexpired code with the guessed hash.
    pub found: Option<PendingActivation>,
}

/// A pending activation code that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingActivation {
    /// The code's row.
    pub code_id: i64,
    /// Its card.
    pub card_id: String,
    /// The card's PAN, sealed to `card_id`.
    pub pan_sealed: Vec<u8>,
    /// The card's registered phone.
    pub registered_phone: String,
}

/// An activation to complete.
#[derive(Debug)]
pub struct ActivationWrite {
    /// The code's row.
    pub code_id: i64,
    /// Its card.
    pub card_id: String,
    /// The phone the code was sent to.
    pub phone: String,
    /// The new seed, sealed to the card.
    pub seed_sealed: Vec<u8>,
    /// The device's label.
    pub device_label: String,
    /// The device's X25519 public key.
    pub device_public_key: [u8; 32],
    /// The phone's failures must be below this.
    pub max_failures: u32,
    /// The activation notice to the card's registered phone.
    pub notice: NewSms,
    /// Unix seconds.
    pub now: i64,
}

/// What counting a wrong activation code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationFailure {
    /// Counted, below the budget.
    Counted,
    /// This guess spent the budget: the phone's pending codes are burned.
    Burned,
    /// The budget was spent already.
    OverBudget,
}

/// The state of a card's app (its dynamic PINs from the phone); the SMS
/// version does not depend on it. Stored as [`CardStatus::as_str`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    /// App PINs work.
    Active,
    /// App PINs refused until resumed.
    Suspended,
    /// App PINs refused until the card is activated again (at an ATM).
    Revoked,
}

impl CardStatus {
    /// Every state.
    pub const ALL: [CardStatus; 3] = [Self::Active, Self::Suspended, Self::Revoked];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Why a card's app state changes: who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusCause {
    /// `POST /v1/cards/deactivate` (atm): the customer at an ATM, a lost
    /// phone. Revokes.
    AtmDeactivation,
    /// `POST /v1/cards/suspend` (ops).
    OpsSuspend,
    /// `POST /v1/cards/resume` (ops).
    OpsResume,
    /// `POST /v1/cards/revoke` (ops).
    OpsRevoke,
    /// `POST /v1/cards/remove`: the customer removed the card on the phone
    /// (proved with the card's device key). Revokes.
    RemovedOnPhone,
}

impl StatusCause {
    /// Every cause.
    pub const ALL: [StatusCause; 5] = [
        Self::AtmDeactivation,
        Self::OpsSuspend,
        Self::OpsResume,
        Self::OpsRevoke,
        Self::RemovedOnPhone,
    ];

    /// The stable name, also the event's kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AtmDeactivation => "deactivated_at_atm",
            Self::OpsSuspend => "suspended",
            Self::OpsResume => "resumed",
            Self::OpsRevoke => "revoked",
            Self::RemovedOnPhone => "removed_on_phone",
        }
    }

    /// The state it asks for.
    pub fn target(self) -> CardStatus {
        match self {
            Self::OpsSuspend => CardStatus::Suspended,
            Self::OpsResume => CardStatus::Active,
            Self::AtmDeactivation | Self::OpsRevoke | Self::RemovedOnPhone => CardStatus::Revoked,
        }
    }
}

/// Which card a status change names.
#[derive(Clone, PartialEq, Eq)]
pub enum CardRef {
    /// By card-number hash (the ATM, operations).
    Pan(Hash),
    /// By the issuer's card id (the device).
    Id(String),
}

impl std::fmt::Debug for CardRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pan(_) => f.write_str("CardRef::Pan(<hash>)"),
            Self::Id(id) => f.debug_tuple("CardRef::Id").field(id).finish(),
        }
    }
}

/// What a status change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOutcome {
    /// The card's id.
    pub card_id: String,
    /// The state before.
    pub previous: CardStatus,
    /// The decision applied.
    pub transition: crate::rules::Transition,
}

impl StatusOutcome {
    /// The state after.
    pub fn status(&self) -> CardStatus {
        match self.transition {
            crate::rules::Transition::Change(to) => to,
            crate::rules::Transition::Unchanged | crate::rules::Transition::Refused => {
                self.previous
            }
        }
    }
}

/// A card as verification sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardState {
    /// The card's id.
    pub id: String,
    /// The app's seed, sealed to the card (none before activation).
    pub seed_sealed: Option<Vec<u8>>,
    /// Activations so far (the seed's generation).
    pub seed_generation: i64,
    /// The learnt clock drift of first PINs, in steps.
    pub drift_first: i64,
    /// The learnt clock drift of second PINs, in steps.
    pub drift_second: i64,
    /// Until when its dynamic PINs are blocked.
    pub blocked_until: i64,
    /// Its app's state.
    pub status: CardStatus,
}

/// The state of a one-time code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeState {
    /// Waiting to be used.
    Pending,
    /// Spent.
    Used,
    /// Replaced by a newer code of the same card and channel.
    Superseded,
}

impl CodeState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Used => "used",
            Self::Superseded => "superseded",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Used, Self::Superseded]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A channel of one-time codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeChannel {
    /// The SMS version: the customer texts the short code.
    Sms,
    /// Harim: a payment page asks for a PIN for one payment.
    Harim,
}

impl CodeChannel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Harim => "harim",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Sms, Self::Harim]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// The PIN kind a code of this channel is answered as.
    pub fn pin_kind(self) -> PinKind {
        match self {
            Self::Sms => PinKind::Second,
            Self::Harim => PinKind::Transaction,
        }
    }
}

/// A one-time code as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeCodeRow {
    /// Its row.
    pub id: i64,
    /// Its channel.
    pub channel: CodeChannel,
    /// The keyed hash over card, channel, binding and code.
    pub code_hash: Hash,
    /// Its state.
    pub state: CodeState,
    /// When it expires.
    pub expires_at: i64,
}

/// What a verification spends, decided before its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Nothing matched: a failure (`wrong_code`).
    Nothing,
    /// An app PIN matched.
    Step {
        /// Its kind (its high-water mark).
        kind: PinKind,
        /// Its time step.
        step: u64,
        /// The clock drift it showed, clamped.
        drift: i64,
    },
    /// A pending one-time code matched: spend it.
    OneTime {
        /// The code's row.
        id: i64,
        /// `Second` (SMS version) or `Transaction` (Harim).
        kind: PinKind,
    },
    /// A spent one-time code matched: a failure (`replayed`).
    Replayed,
}

/// A verification of a known card to settle.
#[derive(Debug, Clone)]
pub struct Settlement {
    /// The card.
    pub card_id: String,
    /// The seed generation the code was checked against.
    pub generation: i64,
    /// What matched.
    pub spend: Spend,
    /// Unix seconds.
    pub now: i64,
    /// The lockout rules.
    pub rules: Lockout,
}

/// What settling an unknown card number's failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownSettled {
    /// Already blocked: nothing counted.
    Blocked,
    /// Counted.
    Counted,
    /// Counted, and a block began.
    BlockedNow,
}

/// A card one-time codes go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeCard {
    /// The card's id.
    pub id: String,
    /// Its PAN's keyed hash (a rate-limit subject).
    pub pan_hash: Hash,
    /// Its registered phone.
    pub phone: String,
    /// Its last four digits.
    pub last4: String,
}

/// A one-time code to issue.
#[derive(Debug)]
pub struct IssueCode {
    /// Its channel.
    pub channel: CodeChannel,
    /// The card to store it for; `None` for an unknown card number
    /// (Harim): the limits are checked and counted, nothing stored or sent.
    pub card_id: Option<String>,
    /// The rate-limit subjects: the PAN hash, and the phone when known.
    pub subjects: Vec<Vec<u8>>,
    /// The code's keyed hash.
    pub code_hash: Hash,
    /// When it expires.
    pub expires_at: i64,
    /// The limits.
    pub limits: OtpLimits,
    /// The message carrying the code (none for an unknown card).
    pub message: Option<NewSms>,
    /// When limited: tell this phone to wait, within this many replies an
    /// hour (the SMS version).
    pub wait_reply: Option<(String, u32)>,
    /// Unix seconds.
    pub now: i64,
}

/// What [`Store::issue_one_time_code`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    /// Stored and queued.
    Issued,
    /// Rate limited for this many seconds; `told_to_wait` when a "please
    /// wait" reply was queued.
    Limited {
        /// Seconds until a request can succeed.
        retry_after_secs: u64,
        /// A wait reply was queued.
        told_to_wait: bool,
    },
}

/// What an unblock found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unblocked {
    /// The card's id.
    pub card_id: String,
    /// It was blocked until now.
    pub was_blocked: bool,
}

/// Whether a merchant `PUT` made a new merchant or renamed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// 201.
    Created,
    /// 200.
    Updated,
}

/// A queued message, claimed for delivery.
#[derive(Debug, Clone)]
pub struct QueuedSms {
    /// Its row (delivery order).
    pub id: i64,
    /// Its random id, the sealed payload's context.
    pub message_id: String,
    /// The recipient.
    pub to: String,
    /// What it says.
    pub kind: crate::outbox::NoticeKind,
    /// The notice's JSON, sealed when it holds a code.
    pub payload: Vec<u8>,
    /// `payload` is sealed.
    pub sealed: bool,
    /// Attempts before this one.
    pub attempts: u32,
    /// When it was queued.
    pub created_at: i64,
}

/// The outbox's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting or being sent.
    pub pending: u64,
    /// Given up after every retry.
    pub failed: u64,
}

/// What an SMS gateway reports about a message it took (Kannel's
/// `dlr-mask` bits, docs/issuer.md "Kannel"): one report per event, several
/// per message (handed to the operator, then delivered to the phone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryReport {
    /// Delivered to the phone.
    Delivered,
    /// The phone could not be reached: not delivered, final.
    Failed,
    /// Waiting in the operator's SMS centre (the phone is off or out of
    /// reach); a final report follows.
    Buffered,
    /// Handed to the operator's SMS centre.
    SmscSubmitted,
    /// Refused by the operator's SMS centre.
    SmscRejected,
}

impl DeliveryReport {
    /// Every report, in the order of [`DeliveryReport::as_str`]'s table.
    pub const ALL: [DeliveryReport; 5] = [
        Self::Delivered,
        Self::Failed,
        Self::Buffered,
        Self::SmscSubmitted,
        Self::SmscRejected,
    ];

    /// The stored name (`sms_delivery_reports.report`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Buffered => "buffered",
            Self::SmscSubmitted => "smsc_submitted",
            Self::SmscRejected => "smsc_rejected",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A message the development recorder kept.
#[derive(Clone, PartialEq, Eq)]
pub struct DevSms {
    /// The recipient.
    pub to: String,
    /// The sender shown.
    pub from: String,
    /// The rendered text, sealed to `to`.
    pub body_sealed: Vec<u8>,
    /// When it was delivered.
    pub created_at: i64,
}

impl std::fmt::Debug for DevSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevSms")
            .field("to", &self.to)
            .field("from", &self.from)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}
