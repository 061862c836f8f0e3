//! A card's whole life (issue 13, item 2; docs/issuer.md, "A card's whole
//! life"): the ATM's and the bank's state changes of a card's app, and the
//! device's own requests (removal, status) proved with the card's device
//! key (docs/protocol.md, "Card requests").

use pooya_protocol::card_request::{
    self, AppStatus, CardAction, CardRequest, CardStatusAnswer, answer_signing_input,
    not_found_signing_input, parse_proof, proof_input,
};
use pooya_protocol::{HashAlgorithm, Pan};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::keys::{CardKey, HashDomain, MacRequest};
use crate::rules::Transition;
use crate::service::Issuer;
use crate::store::{CardRef, CardStatus, StatusCause, StatusOutcome};
use crate::{Field, ServiceError};

/// The longest card id a device request may name.
const MAX_CARD_ID_LEN: usize = 64;

/// `POST /v1/cards/{deactivate,suspend,resume,revoke}` body.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Deserialize, Serialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct CardStatusRequest {
    /// The card number.
    pub pan: String,
}

impl std::fmt::Debug for CardStatusRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardStatusRequest")
            .field("pan", &"<redacted>")
            .finish()
    }
}

/// The answer of a state change.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CardStatusResponse {
    /// The issuer's card id.
    pub card_id: String,
    /// The state before.
    pub previous: CardStatus,
    /// The state now.
    pub status: CardStatus,
    /// Whether this request changed it (false: it was already so; no
    /// event, no SMS).
    pub changed: bool,
}

impl From<&StatusOutcome> for CardStatusResponse {
    fn from(o: &StatusOutcome) -> Self {
        Self {
            card_id: o.card_id.clone(),
            previous: o.previous,
            status: o.status(),
            changed: matches!(o.transition, Transition::Change(_)),
        }
    }
}

fn app_status(s: CardStatus) -> AppStatus {
    match s {
        CardStatus::Active => AppStatus::Active,
        CardStatus::Suspended => AppStatus::Suspended,
        CardStatus::Revoked => AppStatus::Revoked,
    }
}

impl Issuer {
    /// Applies a state change to the card `req.pan` names, for `cause`:
    /// `POST /v1/cards/deactivate` (atm, [`StatusCause::AtmDeactivation`])
    /// and `POST /v1/cards/{suspend,resume,revoke}` (ops).
    ///
    /// # Errors
    /// `invalid_pan`, `card_not_found`, `card_revoked` (suspending or
    /// resuming a revoked card), a storage failure.
    pub async fn change_card_status(
        &self,
        req: CardStatusRequest,
        cause: StatusCause,
    ) -> Result<CardStatusResponse, ServiceError> {
        let pan = Pan::parse(&req.pan).map_err(|e| ServiceError::protocol(Field::Pan, &e))?;
        let pan_hash = self
            .keys
            .keyed_hash(HashDomain::Pan, pan.expose_secret().as_bytes())?;
        let outcome = self
            .store
            .change_card_status(CardRef::Pan(pan_hash), cause, self.at())
            .await?
            .ok_or(ServiceError::CardNotFound)?;
        self.after_change(&outcome, cause)?;
        Ok(CardStatusResponse::from(&outcome))
    }

    fn at(&self) -> i64 {
        i64::try_from(self.now()).unwrap_or(i64::MAX)
    }

    fn after_change(&self, o: &StatusOutcome, cause: StatusCause) -> Result<(), ServiceError> {
        match o.transition {
            Transition::Refused => Err(ServiceError::CardRevoked),
            Transition::Unchanged => Ok(()),
            Transition::Change(to) => {
                // Its notice was queued with it.
                self.wake_outbox();
                tracing::info!(
                    card_id = %o.card_id,
                    cause = cause.as_str(),
                    from = o.previous.as_str(),
                    to = to.as_str(),
                    "card app state changed"
                );
                Ok(())
            }
        }
    }

    /// A device's request about its card (`POST /v1/cards/remove`,
    /// `POST /v1/cards/status`; docs/protocol.md, "Card requests"): the
    /// proof must be the HMAC under the card's current device key, computed
    /// where the card's keys live ([`crate::KeyProvider::card_macs`]), and
    /// the time within [`card_request::MAX_REQUEST_SKEW_SECS`] of the
    /// bank's clock. A proof from another seed (the card was activated on
    /// another device since) is answered `other_device` and changes
    /// nothing. A removal revokes the card's app (event
    /// `removed_on_phone`, an SMS to the customer); the answer is the state
    /// after. Every answer is signed through the key provider
    /// ([`crate::KeyProvider::sign`], the issuer's Ed25519 key, RFC 8032)
    /// over [`answer_signing_input`]: the action, card id, status and the
    /// request's own time and proof (docs/protocol.md, "Signed card
    /// answers"), so the phone takes no state a network made up or
    /// replayed.
    ///
    /// # Errors
    /// `invalid_card_id`, `invalid_proof`, `stale_request`,
    /// `card_not_found` (no such card, or no app activated), a storage or
    /// key provider failure.
    pub async fn card_request(
        &self,
        action: CardAction,
        req: CardRequest,
    ) -> Result<CardStatusAnswer, ServiceError> {
        if req.card_id.is_empty()
            || req.card_id.len() > MAX_CARD_ID_LEN
            || !req.card_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ServiceError::invalid(
                Field::CardId,
                "card_id must be 1 to 64 visible ASCII characters",
            ));
        }
        let proof =
            parse_proof(&req.proof).map_err(|e| ServiceError::protocol(Field::Proof, &e))?;
        if !card_request::fresh(req.time, self.now()) {
            return Err(ServiceError::StaleRequest);
        }
        // A card the bank does not know, or one without an app, is
        // answered signed too: the phone ends a pending removal only on
        // the bank's word.
        let not_found = || -> ServiceError {
            let input = not_found_signing_input(action, &req.card_id, req.time, &proof);
            match self.keys.sign(&self.signing_key, &input) {
                Ok(sig) => ServiceError::CardNotFoundSigned {
                    signature: hex::encode(sig),
                },
                Err(e) => e.into(),
            }
        };
        let Some(card) = self.store.card_by_id(&req.card_id).await? else {
            return Err(not_found());
        };
        let Some(sealed) = card.seed_sealed.as_deref() else {
            return Err(not_found());
        };
        let input = proof_input(action, &card.id, req.time);
        let macs = self.keys.card_macs(
            &card.id,
            sealed,
            &[MacRequest {
                key: CardKey::Device,
                algorithm: HashAlgorithm::Sha256,
                message: &input,
            }],
        )?;
        let good = macs
            .first()
            .is_some_and(|m| bool::from(m.as_slice().ct_eq(&proof[..])));
        let answer = |status| -> Result<CardStatusAnswer, ServiceError> {
            let input = answer_signing_input(action, &card.id, status, req.time, &proof);
            let signature = self.keys.sign(&self.signing_key, &input)?;
            Ok(CardStatusAnswer {
                card_id: card.id.clone(),
                status,
                signature: hex::encode(signature),
            })
        };
        if !good {
            return answer(AppStatus::OtherDevice);
        }
        match action {
            CardAction::Status => answer(app_status(card.status)),
            CardAction::Remove => {
                let cause = StatusCause::RemovedOnPhone;
                let outcome = self
                    .store
                    .change_card_status(CardRef::Id(card.id.clone()), cause, self.at())
                    .await?
                    .ok_or_else(not_found)?;
                self.after_change(&outcome, cause)?;
                answer(app_status(outcome.status()))
            }
        }
    }
}
