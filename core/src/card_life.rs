//! A card's life on the phone (issue 13, item 2; docs/phone.md, "A card's
//! life on the phone"): removing a card tells the bank, a removal the
//! bank could not hear is kept and retried, and a sync learns each card's
//! state (active, suspended, revoked, moved to another device), so the
//! phone never shows a PIN the bank will refuse.
//!
//! The network work is sans-I/O: each request is prepared as a plain
//! [`PreparedCardRequest`] (URL and JSON body), the host's transport
//! posts it, and a `finish_*` call checks the answer; [`Phone::remove_card`]
//! and [`Phone::sync`] run both over the [`crate::hooks::Transport`] hook.
//! Every answer the phone acts on is signed by the issuer's pinned key
//! over the request it answers (docs/protocol.md, "Signed card answers").

use pooya_protocol::card_request::{
    self, AppStatus, CardAction, CardRequest, CardStatusAnswer, answer_signing_input,
};

use crate::hooks::{HostError, HttpResponse};
use crate::phone::TimeSync;
use crate::vault::{CardId, CardState, PendingRemovalId};
use crate::{CoreError, Phone, activation};

/// Path of the removal route.
pub const CARD_REMOVE_PATH: &str = "/v1/cards/remove";
/// Path of the status route.
pub const CARD_STATUS_PATH: &str = "/v1/cards/status";
/// The largest card answer read.
const MAX_CARD_ANSWER_BYTES: usize = 4096;

/// What a prepared card request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardRequestTarget {
    /// A card in the vault (a status request).
    Card(CardId),
    /// A removal kept in the vault until the bank is told.
    PendingRemoval(PendingRemovalId),
}

/// A card request ready for the host's transport: POST `body` (JSON) to
/// `url`, then hand the answer to [`Phone::finish_card_status`] or
/// [`Phone::finish_remove_card`]. The rest is what checking the answer
/// needs; nothing in it is secret (the proof is sent as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCardRequest {
    /// `{base_url}/v1/cards/remove` or `{base_url}/v1/cards/status`.
    pub url: String,
    /// The JSON body ([`CardRequest`]).
    pub body: Vec<u8>,
    /// Removal or status.
    pub action: CardAction,
    /// What it is about.
    pub target: CardRequestTarget,
    /// The issuer profile's name.
    pub issuer: String,
    /// The issuer's card id.
    pub issuer_card_id: String,
    /// The bank time the request names, Unix seconds.
    pub time: u64,
    /// The request's proof ([`card_request::proof`]).
    pub proof: [u8; 32],
}

/// Whether the bank heard of a removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankNotice {
    /// The bank answered, signed, with the card's state after the removal:
    /// `Revoked`, or `OtherDevice` when the card was activated on another
    /// device since (the removal cannot touch that one).
    Told(AppStatus),
    /// The bank answered 404 `card_not_found`, signed over this request:
    /// it no longer knows the card (or its app), so there is nothing left
    /// to stop. Counts as told. An unsigned one keeps the removal
    /// `Pending` (a network could make it up).
    Forgotten,
    /// The bank was not told: no answer, a 5xx, a refusal such as
    /// `stale_request`, or an answer that failed its checks (`reason`).
    /// The removal is kept in the vault and retried at the next
    /// [`Phone::sync`] of its issuer.
    Pending {
        /// Why, with its stable code.
        reason: CoreError,
    },
}

impl BankNotice {
    /// Whether the bank knows (told or forgotten): nothing is pending.
    pub fn told(&self) -> bool {
        !matches!(self, Self::Pending { .. })
    }
}

/// What removing a card (or retrying a pending removal) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRemoval {
    /// The pending removal the request was for (gone unless `notice` is
    /// [`BankNotice::Pending`]).
    pub pending_id: PendingRemovalId,
    /// The issuer profile's name.
    pub issuer: String,
    /// The issuer's card id.
    pub issuer_card_id: String,
    /// Whether the bank heard.
    pub notice: BankNotice,
}

/// One card's state at a sync.
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "SyncedCardInfo")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncedCard {
    /// Local id.
    pub card_id: CardId,
    /// The state before (active before the first sync).
    pub previous: AppStatus,
    /// The state the bank signed now.
    pub status: AppStatus,
    /// The bank time of the answer.
    pub checked_at: u64,
}

/// What [`Phone::sync`] did, in order: the time, the pending removals, the
/// cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSync {
    /// The signed time sync done first.
    pub time: TimeSync,
    /// Each pending removal of the issuer tried, with what the bank said.
    pub removals: Vec<CardRemoval>,
    /// Each card of the issuer with the state the bank signed.
    pub cards: Vec<SyncedCard>,
    /// Cards the bank answered 404 `card_not_found` for: their state is
    /// left as it was (an unsigned answer changes nothing).
    pub unknown_cards: Vec<CardId>,
}

/// What a checked card answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardAnswer {
    /// The signed state of the card's app.
    State(AppStatus),
    /// The bank signed that it does not know the card (404
    /// `card_not_found` with a signature over
    /// [`card_request::not_found_signing_input`]).
    Unknown,
}

/// The part of a 404 `card_not_found` body the phone reads: the bank's
/// signature (other fields are the error's code and message).
#[derive(serde::Deserialize)]
struct NotFoundBody {
    error: String,
    #[serde(default)]
    signature: Option<String>,
}

/// Checks a card answer against the request it answers (docs/protocol.md,
/// "Signed card answers"): a 2xx status, the JSON of [`CardStatusAnswer`]
/// with a 64-byte signature, the pinned key's Ed25519 signature (RFC 8032
/// §5.1.7) over [`answer_signing_input`] built from the request (action,
/// card id, time, proof) and the answer's status, and the card id; or a
/// 404 `card_not_found` signed over [`card_request::not_found_signing_input`]
/// of the request.
///
/// # Errors
/// [`CoreError::IssuerError`] for another status or code,
/// [`CoreError::BadResponse`] (an unsigned `card_not_found` among them),
/// [`CoreError::BadSignature`] (a made-up, edited or replayed answer).
pub fn check_card_answer(
    pinned_key: &[u8; 32],
    request: &PreparedCardRequest,
    status: u16,
    body: &[u8],
) -> Result<CardAnswer, CoreError> {
    use ring::signature::{ED25519, UnparsedPublicKey};
    if body.len() > MAX_CARD_ANSWER_BYTES {
        return Err(CoreError::BadResponse("answer too large"));
    }
    let verify = |input: &[u8], signature: &str| {
        let sig = pooya_protocol::wire::decode_hex_array::<64>("signature", signature)
            .map_err(|_| CoreError::BadResponse("signature is not 64 bytes of hex"))?;
        UnparsedPublicKey::new(&ED25519, pinned_key)
            .verify(input, &sig)
            .map_err(|_| CoreError::BadSignature)
    };
    if status == 404
        && let Ok(nf) = serde_json::from_slice::<NotFoundBody>(body)
        && nf.error == card_request::NOT_FOUND_OUTCOME
    {
        let signature = nf
            .signature
            .ok_or(CoreError::BadResponse("card_not_found is not signed"))?;
        let input = card_request::not_found_signing_input(
            request.action,
            &request.issuer_card_id,
            request.time,
            &request.proof,
        );
        verify(&input, &signature)?;
        return Ok(CardAnswer::Unknown);
    }
    activation::check_status(status, body)?;
    let answer: CardStatusAnswer = serde_json::from_slice(body)
        .map_err(|_| CoreError::BadResponse("not the expected JSON"))?;
    let input = answer_signing_input(
        request.action,
        &request.issuer_card_id,
        answer.status,
        request.time,
        &request.proof,
    );
    verify(&input, &answer.signature)?;
    if answer.card_id != request.issuer_card_id {
        return Err(CoreError::BadResponse("the answer names another card"));
    }
    Ok(CardAnswer::State(answer.status))
}

/// The error a PIN of a card in `status` is refused with, if any.
fn refusal(status: AppStatus) -> Option<CoreError> {
    match status {
        AppStatus::Active => None,
        AppStatus::Suspended => Some(CoreError::CardSuspended),
        AppStatus::Revoked => Some(CoreError::CardRevoked),
        AppStatus::OtherDevice => Some(CoreError::CardOnOtherDevice),
    }
}

/// The error of a card the bank does not know.
fn not_found() -> CoreError {
    CoreError::IssuerError {
        status: 404,
        code: card_request::NOT_FOUND_OUTCOME.to_owned(),
    }
}

/// Whether an error means the bank does not know the card.
fn is_not_found(e: &CoreError) -> bool {
    matches!(e, CoreError::IssuerError { status: 404, code } if code == card_request::NOT_FOUND_OUTCOME)
}

impl Phone {
    /// Refuses a PIN of card `id` unless its last signed state is active.
    pub(crate) fn refuse_unless_active(&mut self, id: CardId) -> Result<(), CoreError> {
        match self.vault.card_state(id)?.and_then(|s| refusal(s.status)) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn card_request(
        &mut self,
        action: CardAction,
        target: CardRequestTarget,
        issuer: &str,
        issuer_card_id: &str,
        device_key: &pooya_protocol::PinKey,
    ) -> Result<PreparedCardRequest, CoreError> {
        let base_url = self.vault.issuer(issuer)?.base_url;
        let time = self.issuer_time(issuer)?;
        let proof = card_request::proof(device_key, action, issuer_card_id, time);
        let body = serde_json::to_vec(&CardRequest {
            card_id: issuer_card_id.to_owned(),
            time,
            proof: hex::encode(proof),
        })
        .map_err(|_| CoreError::BadResponse("request"))?;
        let path = match action {
            CardAction::Remove => CARD_REMOVE_PATH,
            CardAction::Status => CARD_STATUS_PATH,
        };
        Ok(PreparedCardRequest {
            url: format!("{base_url}{path}"),
            body,
            action,
            target,
            issuer: issuer.to_owned(),
            issuer_card_id: issuer_card_id.to_owned(),
            time,
            proof,
        })
    }

    fn post(&self, request: &PreparedCardRequest) -> Result<HttpResponse, HostError> {
        self.transport
            .post_json(&request.url, &request.body, self.timeout_ms)
    }

    /// Removes card `id` from this phone after the password and prepares
    /// telling the bank: in one transaction the card is deleted and a
    /// pending removal stored (issuer, issuer card id and the card's
    /// derived device key, sealed; never the seed), so the removal
    /// survives a crash or a lost network. Send the request and give the
    /// answer to [`Phone::finish_remove_card`]; until then the removal is
    /// pending and [`Phone::sync`] retries it.
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`],
    /// [`CoreError::IssuerNotFound`], the password errors of
    /// [`crate::Vault::unlock_with_password`]; storage errors. On any error
    /// nothing changed.
    pub fn prepare_remove_card(
        &mut self,
        id: CardId,
        password: &str,
    ) -> Result<PreparedCardRequest, CoreError> {
        let card = self.vault.card(id)?;
        let device_key = self.vault.card_secret(id)?.seed.device_key();
        // Everything that can fail but the password comes before the
        // removal: once the card is gone, the request must be sendable.
        let mut prepared = self.card_request(
            CardAction::Remove,
            CardRequestTarget::PendingRemoval(0),
            &card.issuer,
            &card.issuer_card_id,
            &device_key,
        )?;
        let pending = self.vault.remove_card_pending(
            id,
            password,
            &card.issuer,
            &card.issuer_card_id,
            &device_key,
        )?;
        prepared.target = CardRequestTarget::PendingRemoval(pending);
        Ok(prepared)
    }

    /// Takes the transport's answer (or its failure) to a removal request
    /// ([`Phone::prepare_remove_card`] or [`Phone::prepare_pending_removals`]):
    /// a signed answer (a state, or the signed 404 `card_not_found`) ends
    /// the pending removal; anything else keeps it (see [`BankNotice`]).
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::IssuerNotFound`], storage
    /// errors. The bank's failures are not errors: they are
    /// [`BankNotice::Pending`].
    pub fn finish_remove_card(
        &mut self,
        request: &PreparedCardRequest,
        answer: Result<HttpResponse, HostError>,
    ) -> Result<CardRemoval, CoreError> {
        let CardRequestTarget::PendingRemoval(pending_id) = request.target else {
            return Err(CoreError::InvalidField {
                field: "request",
                reason: "not a removal request",
            });
        };
        let key = self.vault.issuer(&request.issuer)?.public_key;
        let checked = answer
            .map_err(|e| CoreError::Network(e.message))
            .and_then(|a| check_card_answer(&key, request, a.status, &a.body));
        let notice = match checked {
            Ok(CardAnswer::State(status)) => BankNotice::Told(status),
            Ok(CardAnswer::Unknown) => BankNotice::Forgotten,
            Err(reason) => BankNotice::Pending { reason },
        };
        if notice.told() {
            self.vault.drop_pending_removal(pending_id)?;
        }
        Ok(CardRemoval {
            pending_id,
            issuer: request.issuer.clone(),
            issuer_card_id: request.issuer_card_id.clone(),
            notice,
        })
    }

    pub(crate) fn remove_card_and_tell(
        &mut self,
        id: CardId,
        password: &str,
    ) -> Result<CardRemoval, CoreError> {
        let request = self.prepare_remove_card(id, password)?;
        let answer = self.post(&request);
        self.finish_remove_card(&request, answer)
    }

    /// The removal requests of `issuer`'s pending removals, oldest first,
    /// each to be answered through [`Phone::finish_remove_card`].
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::IssuerNotFound`], storage
    /// errors.
    pub fn prepare_pending_removals(
        &mut self,
        issuer: &str,
    ) -> Result<Vec<PreparedCardRequest>, CoreError> {
        let pending = self.vault.pending_removals()?;
        pending
            .iter()
            .filter(|p| p.issuer == issuer)
            .map(|p| {
                self.card_request(
                    CardAction::Remove,
                    CardRequestTarget::PendingRemoval(p.id),
                    &p.issuer,
                    &p.issuer_card_id,
                    &p.device_key,
                )
            })
            .collect()
    }

    /// Every pending removal (issuer, issuer card id, when), oldest first;
    /// the device keys stay in the vault.
    ///
    /// # Errors
    /// [`CoreError::Locked`], storage errors.
    pub fn pending_removals(
        &mut self,
    ) -> Result<Vec<(PendingRemovalId, String, String)>, CoreError> {
        Ok(self
            .vault
            .pending_removals()?
            .into_iter()
            .map(|p| (p.id, p.issuer.clone(), p.issuer_card_id.clone()))
            .collect())
    }

    /// Prepares asking the bank card `id`'s state (`POST
    /// /v1/cards/status`, proved with its device key, at the bank time
    /// the phone knows); answer with [`Phone::finish_card_status`].
    ///
    /// # Errors
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`],
    /// [`CoreError::IssuerNotFound`].
    pub fn prepare_card_status(&mut self, id: CardId) -> Result<PreparedCardRequest, CoreError> {
        let card = self.vault.card(id)?;
        let device_key = self.vault.card_secret(id)?.seed.device_key();
        self.card_request(
            CardAction::Status,
            CardRequestTarget::Card(id),
            &card.issuer,
            &card.issuer_card_id,
            &device_key,
        )
    }

    /// Takes the transport's answer to a status request: checks it
    /// ([`check_card_answer`]) and records the signed state, so PINs of a
    /// card that is not active are refused from now on and a card active
    /// again gives PINs again.
    ///
    /// # Errors
    /// [`CoreError::Network`], [`CoreError::IssuerError`] (404
    /// `card_not_found`, 400 `stale_request`: sync the time first),
    /// [`CoreError::BadResponse`], [`CoreError::BadSignature`]; then
    /// [`CoreError::Locked`], [`CoreError::CardNotFound`], storage errors.
    /// On any error the state is unchanged.
    pub fn finish_card_status(
        &mut self,
        request: &PreparedCardRequest,
        answer: Result<HttpResponse, HostError>,
    ) -> Result<SyncedCard, CoreError> {
        let CardRequestTarget::Card(card_id) = request.target else {
            return Err(CoreError::InvalidField {
                field: "request",
                reason: "not a status request",
            });
        };
        let key = self.vault.issuer(&request.issuer)?.public_key;
        let answer = answer.map_err(|e| CoreError::Network(e.message))?;
        let CardAnswer::State(status) =
            check_card_answer(&key, request, answer.status, &answer.body)?
        else {
            return Err(not_found());
        };
        let previous = self
            .vault
            .card_state(card_id)?
            .map_or(AppStatus::Active, |s| s.status);
        let state = CardState {
            status,
            checked_at: request.time,
        };
        self.vault.set_card_state(card_id, &state)?;
        Ok(SyncedCard {
            card_id,
            previous,
            status,
            checked_at: request.time,
        })
    }

    /// The cards a sync of `issuer` asks the bank about, in the order
    /// added (the last of [`Phone::sync`]'s steps: one status request
    /// each, answered through [`Phone::finish_sync_card`]).
    ///
    /// # Errors
    /// [`CoreError::Locked`], storage errors.
    pub fn sync_card_ids(&mut self, issuer: &str) -> Result<Vec<CardId>, CoreError> {
        Ok(self
            .vault
            .cards()?
            .into_iter()
            .filter(|c| c.issuer == issuer)
            .map(|c| c.id)
            .collect())
    }

    /// [`Phone::finish_card_status`] as a sync counts it: `None` when the
    /// bank does not know the card (404 `card_not_found`; the card goes
    /// in [`CardSync::unknown_cards`] and its state is left as it was).
    ///
    /// # Errors
    /// The other errors of [`Phone::finish_card_status`].
    pub fn finish_sync_card(
        &mut self,
        request: &PreparedCardRequest,
        answer: Result<HttpResponse, HostError>,
    ) -> Result<Option<SyncedCard>, CoreError> {
        match self.finish_card_status(request, answer) {
            Ok(c) => Ok(Some(c)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Everything the phone learns from `issuer` when online, in this
    /// order: the signed time ([`Phone::sync_time`]; the card requests
    /// name the bank time, so it comes first), then each pending removal of
    /// the issuer, then each of its cards' state. [`Phone::sync_time`]
    /// alone does only the first.
    ///
    /// # Errors
    /// The errors of [`Phone::sync_time`] (nothing else is tried then);
    /// the errors of [`Phone::finish_card_status`] but 404
    /// `card_not_found` (the card is listed in
    /// [`CardSync::unknown_cards`]); a forged or replayed answer is
    /// [`CoreError::BadSignature`] and changes nothing. A removal the bank
    /// does not hear stays pending and is no error.
    pub fn sync(&mut self, issuer: &str) -> Result<CardSync, CoreError> {
        let time = self.sync_time(issuer)?;
        let mut removals = Vec::new();
        for request in self.prepare_pending_removals(issuer)? {
            let answer = self.post(&request);
            removals.push(self.finish_remove_card(&request, answer)?);
        }
        let mut cards = Vec::new();
        let mut unknown_cards = Vec::new();
        for id in self.sync_card_ids(issuer)? {
            let request = self.prepare_card_status(id)?;
            let answer = self.post(&request);
            match self.finish_sync_card(&request, answer)? {
                Some(c) => cards.push(c),
                None => unknown_cards.push(id),
            }
        }
        Ok(CardSync {
            time,
            removals,
            cards,
            unknown_cards,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use pooya_protocol::{CardSeed, Pan, Policies};
    use ring::signature::{Ed25519KeyPair, KeyPair};

    use super::*;
    use crate::KdfParams;
    use crate::hooks::Transport;
    use crate::testing::{ManualClock, MemoryKeystore};
    use crate::vault::{IssuerProfile, NewCard, Vault, VaultConfig};

    const T0: u64 = 1_800_000_000;
    const PASSWORD: &str = "card life 1379";

    /// How the test bank behaves.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Mode {
        /// Answers as a bank does.
        Up,
        /// No answer (connection refused).
        Down,
        /// 503.
        Unavailable,
        /// Card answers signed by another key.
        ForeignKey,
        /// Card answers replayed: the first answer it signed for a card,
        /// whatever is asked now.
        Replay,
        /// A network in the middle answers every card request 404
        /// `card_not_found`, unsigned (the bank never sees it).
        MadeUpNotFound,
    }

    /// A bank in memory that answers `/v1/time` and the card requests
    /// like the issuer: it checks the proof under each card's device key
    /// and signs its answers with its Ed25519 key.
    struct TestBank {
        key: Ed25519KeyPair,
        clock: Arc<ManualClock>,
        /// Card id -> (seed, state).
        cards: Mutex<HashMap<String, (CardSeed, AppStatus)>>,
        mode: Mutex<Mode>,
        first_answers: Mutex<HashMap<String, Vec<u8>>>,
        removals: Mutex<Vec<String>>,
    }

    impl TestBank {
        fn new(clock: Arc<ManualClock>) -> Arc<Self> {
            Arc::new(Self {
                key: Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap(),
                clock,
                cards: Mutex::new(HashMap::new()),
                mode: Mutex::new(Mode::Up),
                first_answers: Mutex::new(HashMap::new()),
                removals: Mutex::new(Vec::new()),
            })
        }
        fn set_mode(&self, m: Mode) {
            *self.mode.lock().unwrap() = m;
        }
        fn set_status(&self, card: &str, s: AppStatus) {
            self.cards.lock().unwrap().get_mut(card).unwrap().1 = s;
        }
        fn status(&self, card: &str) -> AppStatus {
            self.cards.lock().unwrap()[card].1
        }
        fn public_key(&self) -> [u8; 32] {
            self.key.public_key().as_ref().try_into().unwrap()
        }
        fn json(status: u16, v: serde_json::Value) -> HttpResponse {
            HttpResponse {
                status,
                body: serde_json::to_vec(&v).unwrap(),
            }
        }
    }

    impl Transport for TestBank {
        fn post_json(&self, url: &str, body: &[u8], _t: u64) -> Result<HttpResponse, HostError> {
            use crate::hooks::Clock as _;
            let mode = *self.mode.lock().unwrap();
            match mode {
                Mode::Down => return Err(HostError::new("connection refused")),
                Mode::Unavailable => {
                    return Ok(Self::json(503, serde_json::json!({"error": "unavailable"})));
                }
                _ => {}
            }
            let now = self.clock.now_unix();
            if url.ends_with("/v1/time") {
                let req: pooya_protocol::time::TimeRequest = serde_json::from_slice(body).unwrap();
                let nonce = hex::decode(&req.nonce).unwrap();
                let sig = self
                    .key
                    .sign(&pooya_protocol::time::time_signing_input(&nonce, now));
                return Ok(Self::json(
                    200,
                    serde_json::json!({"nonce": req.nonce, "server_time": now,
                                       "signature": hex::encode(sig.as_ref())}),
                ));
            }
            let action = if url.ends_with(CARD_REMOVE_PATH) {
                CardAction::Remove
            } else {
                CardAction::Status
            };
            let req: CardRequest = serde_json::from_slice(body).unwrap();
            if !card_request::fresh(req.time, now) {
                return Ok(Self::json(
                    400,
                    serde_json::json!({"error": "stale_request"}),
                ));
            }
            if mode == Mode::MadeUpNotFound {
                return Ok(Self::json(
                    404,
                    serde_json::json!({"error": "card_not_found", "message": "no such card"}),
                ));
            }
            let sent = card_request::parse_proof(&req.proof).unwrap();
            let mut cards = self.cards.lock().unwrap();
            let Some((seed, state)) = cards.get_mut(&req.card_id) else {
                // Signed over the request, as the issuer does.
                let input =
                    card_request::not_found_signing_input(action, &req.card_id, req.time, &sent);
                let sig = match mode {
                    Mode::ForeignKey => Ed25519KeyPair::from_seed_unchecked(&[1; 32])
                        .unwrap()
                        .sign(&input),
                    _ => self.key.sign(&input),
                };
                return Ok(Self::json(
                    404,
                    serde_json::json!({"error": "card_not_found", "message": "no such card",
                                       "signature": hex::encode(sig.as_ref())}),
                ));
            };
            let proof = card_request::proof(&seed.device_key(), action, &req.card_id, req.time);
            let status = if hex::encode(proof) != req.proof {
                AppStatus::OtherDevice
            } else {
                if action == CardAction::Remove {
                    *state = AppStatus::Revoked;
                    self.removals.lock().unwrap().push(req.card_id.clone());
                }
                *state
            };
            // Signed over the request's own proof, as the issuer does.
            let input = answer_signing_input(action, &req.card_id, status, req.time, &sent);
            let sig = match mode {
                Mode::ForeignKey => Ed25519KeyPair::from_seed_unchecked(&[1; 32])
                    .unwrap()
                    .sign(&input),
                _ => self.key.sign(&input),
            };
            let answer = serde_json::to_vec(&serde_json::json!({
                "card_id": req.card_id, "status": status, "signature": hex::encode(sig.as_ref())
            }))
            .unwrap();
            let mut first = self.first_answers.lock().unwrap();
            let first = first.entry(req.card_id.clone()).or_insert(answer.clone());
            Ok(HttpResponse {
                status: 200,
                body: if mode == Mode::Replay {
                    first.clone()
                } else {
                    answer
                },
            })
        }
    }

    struct Setup {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        keystore: Arc<MemoryKeystore>,
        clock: Arc<ManualClock>,
        bank: Arc<TestBank>,
    }

    impl Setup {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let clock = Arc::new(ManualClock::new(T0));
            Self {
                path: dir.path().join("vault.db"),
                _dir: dir,
                keystore: Arc::new(MemoryKeystore::new()),
                bank: TestBank::new(clock.clone()),
                clock,
            }
        }

        /// A phone with the bank's profile and cards `ids` (issuer card
        /// ids `crd_{i}`), each known to the bank as active.
        fn phone(&self, ids: &[u8]) -> (Phone, Vec<CardId>) {
            let mut vault = Vault::create(
                &self.path,
                PASSWORD,
                self.keystore.clone(),
                None,
                self.clock.clone(),
                VaultConfig::with_kdf(KdfParams::FLOOR),
            )
            .unwrap();
            vault
                .add_issuer(&IssuerProfile {
                    name: "bank".into(),
                    base_url: "http://127.0.0.1:9".into(),
                    public_key: self.bank.public_key(),
                    activation_key: None,
                    time_offset_secs: 0,
                    time_anchor: None,
                })
                .unwrap();
            let mut local = Vec::new();
            for &i in ids {
                let policies = Policies::default();
                let cap = policies.cap_ladder.tiers()[0];
                let pan = Pan::parse(&format!("610433000000{i:04}")).unwrap_or_else(|_| {
                    // Not a Luhn-valid number: find the check digit.
                    (0..10)
                        .find_map(|d| Pan::parse(&format!("610433000000{i:03}{d}")).ok())
                        .unwrap()
                });
                let card = NewCard::from_pan(
                    "bank",
                    &format!("crd_{i}"),
                    &format!("card {i}"),
                    &pan,
                    policies,
                    cap,
                    CardSeed::from_bytes([i; 32]),
                );
                local.push(vault.add_card(&card).unwrap());
                self.bank.cards.lock().unwrap().insert(
                    format!("crd_{i}"),
                    (CardSeed::from_bytes([i; 32]), AppStatus::Active),
                );
            }
            (
                Phone::new(vault, self.bank.clone(), "test phone").unwrap(),
                local,
            )
        }

        fn reopen(&self) -> Phone {
            let mut vault = Vault::open(
                &self.path,
                self.keystore.clone(),
                None,
                self.clock.clone(),
                VaultConfig::with_kdf(KdfParams::FLOOR),
            )
            .unwrap();
            vault.unlock_with_password(PASSWORD).unwrap();
            Phone::new(vault, self.bank.clone(), "test phone").unwrap()
        }
    }

    #[test]
    fn removing_online_tells_the_bank_with_a_signed_answer() {
        let s = Setup::new();
        let (mut phone, ids) = s.phone(&[1, 2]);
        let r = phone.remove_card(ids[0], PASSWORD).unwrap();
        assert_eq!(r.notice, BankNotice::Told(AppStatus::Revoked));
        assert_eq!(r.issuer_card_id, "crd_1");
        assert_eq!(s.bank.status("crd_1"), AppStatus::Revoked);
        assert_eq!(s.bank.status("crd_2"), AppStatus::Active);
        assert!(phone.pending_removals().unwrap().is_empty());
        assert_eq!(phone.cards().unwrap().len(), 1);
        // The password is asked again; a wrong one removes nothing.
        assert_eq!(
            phone
                .remove_card(ids[1], "wrong password 1")
                .unwrap_err()
                .code(),
            "wrong_password"
        );
        assert_eq!(phone.cards().unwrap().len(), 1);
        assert!(phone.pending_removals().unwrap().is_empty());
    }

    #[test]
    fn a_removal_the_bank_cannot_hear_is_kept_across_a_reopen_and_sent_at_the_next_sync() {
        let s = Setup::new();
        let (mut phone, ids) = s.phone(&[1, 2]);
        for (mode, code) in [(Mode::Down, "network"), (Mode::Unavailable, "issuer_error")] {
            s.bank.set_mode(mode);
            let id = if mode == Mode::Down { ids[0] } else { ids[1] };
            let r = phone.remove_card(id, PASSWORD).unwrap();
            match &r.notice {
                BankNotice::Pending { reason } => assert_eq!(reason.code(), code),
                other => panic!("{other:?}"),
            }
            assert!(!r.notice.told());
        }
        assert!(phone.cards().unwrap().is_empty(), "removed locally at once");
        assert_eq!(s.bank.status("crd_1"), AppStatus::Active);
        let pending = phone.pending_removals().unwrap();
        assert_eq!(
            pending.iter().map(|p| p.2.as_str()).collect::<Vec<_>>(),
            ["crd_1", "crd_2"]
        );
        // The vault keeps the device key, never the seed.
        let kept = phone.vault.pending_removals().unwrap();
        assert_eq!(
            kept[0].device_key.expose_secret(),
            CardSeed::from_bytes([1; 32]).device_key().expose_secret()
        );
        drop(phone);

        // Reopened, still offline: the sync fails at the time, nothing is lost.
        s.bank.set_mode(Mode::Down);
        let mut phone = s.reopen();
        assert_eq!(phone.sync("bank").unwrap_err().code(), "network");
        assert_eq!(phone.pending_removals().unwrap().len(), 2);

        // Back online: the sync tells the bank; nothing pending after.
        s.bank.set_mode(Mode::Up);
        let sync = phone.sync("bank").unwrap();
        assert_eq!(sync.removals.len(), 2);
        assert!(
            sync.removals
                .iter()
                .all(|r| r.notice == BankNotice::Told(AppStatus::Revoked))
        );
        assert_eq!(s.bank.status("crd_1"), AppStatus::Revoked);
        assert_eq!(s.bank.status("crd_2"), AppStatus::Revoked);
        assert!(phone.pending_removals().unwrap().is_empty());
        assert!(phone.sync("bank").unwrap().removals.is_empty());
    }

    #[test]
    fn a_made_up_card_not_found_keeps_the_removal_pending() {
        // The network cannot end a removal by saying the bank does not
        // know the card: the bank signs that answer too.
        let s = Setup::new();
        let (mut phone, ids) = s.phone(&[1]);
        s.bank.set_mode(Mode::MadeUpNotFound);
        let r = phone.remove_card(ids[0], PASSWORD).unwrap();
        assert!(
            matches!(
                &r.notice,
                BankNotice::Pending {
                    reason: CoreError::BadResponse(_)
                }
            ),
            "{:?}",
            r.notice
        );
        assert_eq!(phone.pending_removals().unwrap().len(), 1);
        // Nor with a signature of another key.
        s.bank.set_mode(Mode::ForeignKey);
        s.bank.cards.lock().unwrap().remove("crd_1");
        let sync = phone.sync("bank").unwrap();
        assert!(
            matches!(
                &sync.removals[0].notice,
                BankNotice::Pending {
                    reason: CoreError::BadSignature
                }
            ),
            "{:?}",
            sync.removals[0].notice
        );
        assert_eq!(phone.pending_removals().unwrap().len(), 1);
        // The bank's own signed answer ends it.
        s.bank.set_mode(Mode::Up);
        let sync = phone.sync("bank").unwrap();
        assert_eq!(sync.removals[0].notice, BankNotice::Forgotten);
        assert!(phone.pending_removals().unwrap().is_empty());
    }

    #[test]
    fn a_signed_card_not_found_is_good_for_its_own_request_only() {
        let s = Setup::new();
        let (mut phone, ids) = s.phone(&[1]);
        s.bank.cards.lock().unwrap().remove("crd_1");
        let key = s.bank.public_key();
        let request = phone.prepare_card_status(ids[0]).unwrap();
        let body = phone.post(&request).unwrap().body;
        assert_eq!(
            check_card_answer(&key, &request, 404, &body),
            Ok(CardAnswer::Unknown)
        );
        // The same answer for a later request, or for the removal (the
        // other action), does not verify.
        s.clock.advance(1);
        let later = phone.prepare_card_status(ids[0]).unwrap();
        assert_eq!(
            check_card_answer(&key, &later, 404, &body),
            Err(CoreError::BadSignature)
        );
        let removal = phone.prepare_remove_card(ids[0], PASSWORD).unwrap();
        assert_eq!(
            check_card_answer(&key, &removal, 404, &body),
            Err(CoreError::BadSignature)
        );
    }

    #[test]
    fn a_bank_that_forgot_the_card_counts_as_told() {
        let s = Setup::new();
        let (mut phone, ids) = s.phone(&[1]);
        s.bank.cards.lock().unwrap().remove("crd_1");
        let r = phone.remove_card(ids[0], PASSWORD).unwrap();
        assert_eq!(r.notice, BankNotice::Forgotten);
        assert!(r.notice.told());
        assert!(phone.pending_removals().unwrap().is_empty());
    }

    #[test]
    fn sync_records_each_state_and_pins_follow_it() {
        let s = Setup::new();
        let (mut phone, ids) = s.phone(&[1, 2, 3]);
        assert_eq!(phone.card(ids[0]).unwrap().app_status, AppStatus::Active);
        assert_eq!(phone.card(ids[0]).unwrap().status_checked_at, None);
        s.bank.set_status("crd_1", AppStatus::Suspended);
        s.bank.set_status("crd_2", AppStatus::Revoked);
        // Card 3 activated on another phone since: its seed changed.
        s.bank.cards.lock().unwrap().get_mut("crd_3").unwrap().0 = CardSeed::from_bytes([33; 32]);
        let sync = phone.sync("bank").unwrap();
        let got: Vec<(AppStatus, AppStatus)> =
            sync.cards.iter().map(|c| (c.previous, c.status)).collect();
        assert_eq!(
            got,
            [
                (AppStatus::Active, AppStatus::Suspended),
                (AppStatus::Active, AppStatus::Revoked),
                (AppStatus::Active, AppStatus::OtherDevice),
            ]
        );
        let views = phone.cards().unwrap();
        assert_eq!(views[1].app_status, AppStatus::Revoked);
        assert_eq!(views[1].status_checked_at, Some(T0));
        for (id, code) in [
            (ids[0], "card_suspended"),
            (ids[1], "card_revoked"),
            (ids[2], "card_on_other_device"),
        ] {
            assert_eq!(phone.first_pin(id).unwrap_err().code(), code);
            assert_eq!(phone.second_pin(id, None).unwrap_err().code(), code);
        }
        // Resumed: a later sync makes card 1 active again, PINs come back.
        s.bank.set_status("crd_1", AppStatus::Active);
        s.clock.advance(60);
        let sync = phone.sync("bank").unwrap();
        assert_eq!(
            (sync.cards[0].previous, sync.cards[0].status),
            (AppStatus::Suspended, AppStatus::Active)
        );
        assert!(phone.first_pin(ids[0]).is_ok());
        // The states survive a reopen.
        drop(phone);
        let mut phone = s.reopen();
        assert_eq!(phone.first_pin(ids[1]).unwrap_err().code(), "card_revoked");
        assert!(phone.first_pin(ids[0]).is_ok());
        // An unknown card is listed, its state left alone.
        s.bank.cards.lock().unwrap().remove("crd_2");
        let sync = phone.sync("bank").unwrap();
        assert_eq!(sync.unknown_cards, [ids[1]]);
        assert_eq!(phone.card(ids[1]).unwrap().app_status, AppStatus::Revoked);
    }

    #[test]
    fn forged_and_replayed_answers_are_refused_and_change_nothing() {
        let s = Setup::new();
        let (mut phone, ids) = s.phone(&[1]);
        // A first answer the network records: active.
        phone.sync("bank").unwrap();
        s.bank.set_status("crd_1", AppStatus::Suspended);
        s.clock.advance(60);
        // Replayed to a later request: refused, the card is still active.
        s.bank.set_mode(Mode::Replay);
        assert_eq!(phone.sync("bank").unwrap_err(), CoreError::BadSignature);
        // A "revoked" signed by another key: refused.
        s.bank.set_status("crd_1", AppStatus::Revoked);
        s.bank.set_mode(Mode::ForeignKey);
        let request = phone.prepare_card_status(ids[0]).unwrap();
        let answer = s.bank.post_json(&request.url, &request.body, 1000);
        assert_eq!(
            phone.finish_card_status(&request, answer).unwrap_err(),
            CoreError::BadSignature
        );
        assert_eq!(phone.card(ids[0]).unwrap().app_status, AppStatus::Active);
        assert!(phone.first_pin(ids[0]).is_ok());
        // An answer edited to another status fails too.
        s.bank.set_mode(Mode::Up);
        let request = phone.prepare_card_status(ids[0]).unwrap();
        let mut answer = s.bank.post_json(&request.url, &request.body, 1000).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(v["status"], "revoked");
        v["status"] = "active".into();
        answer.body = serde_json::to_vec(&v).unwrap();
        assert_eq!(
            phone.finish_card_status(&request, Ok(answer)).unwrap_err(),
            CoreError::BadSignature
        );
        // A forged removal answer leaves the removal pending.
        s.bank.set_mode(Mode::ForeignKey);
        let r = phone.remove_card(ids[0], PASSWORD).unwrap();
        assert_eq!(
            r.notice,
            BankNotice::Pending {
                reason: CoreError::BadSignature
            }
        );
        assert_eq!(phone.pending_removals().unwrap().len(), 1);
    }

    #[test]
    fn requests_carry_a_proof_under_the_device_key_at_bank_time() {
        let s = Setup::new();
        let (mut phone, ids) = s.phone(&[1]);
        let r = phone.prepare_card_status(ids[0]).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9/v1/cards/status");
        let body: CardRequest = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body.card_id, "crd_1");
        assert_eq!(body.time, T0);
        let want = card_request::proof(
            &CardSeed::from_bytes([1; 32]).device_key(),
            CardAction::Status,
            "crd_1",
            T0,
        );
        assert_eq!(body.proof, hex::encode(want));
        assert_eq!(r.proof, want);
        // A status request's answer cannot finish a removal, nor the reverse.
        assert_eq!(
            phone
                .finish_remove_card(&r, Err(HostError::new("x")))
                .unwrap_err()
                .code(),
            "invalid_field"
        );
    }
}
