//! Verification of dynamic PINs (`POST /v1/verify`; docs/issuer.md,
//! "Verification") and the ops unblock.

use pooya_protocol::pin::normalize_payee;
use pooya_protocol::wire::{VerifyKind, VerifyRequest, VerifyResponse, VerifyResult};
use pooya_protocol::{
    Claim, Outcome, Pan, PinKind, Transaction, Verified, normalize_digits, plan_verification,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Field, ServiceError};
use crate::keys::{HashDomain, MacRequest};
use crate::metrics::VerifyCount;
use crate::one_time::{ONE_TIME_CODE_DIGITS, OneTimeMatch};
use crate::rules::{Lockout, Reason, SettleDecision};
use crate::service::{DUMMY_CARD_ID, Issuer};
use crate::store::{CardState, CardStatus, Settlement, Spend, UnknownSettled};

/// Longest code accepted for verification, in digits.
const MAX_CODE_LEN: usize = 16;

/// `POST /v1/cards/unblock` body (ops). The card number is wiped on drop.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UnblockResponse {
    /// The issuer's card id.
    pub card_id: String,
    /// Its dynamic PINs were blocked until now.
    pub was_blocked: bool,
}

fn accepted(o: Outcome) -> Option<Verified> {
    match o {
        Outcome::Accepted(v) => Some(v),
        Outcome::Rejected { .. } => None,
    }
}

fn verdict(result: VerifyResult, reason: Reason, matched: Option<PinKind>) -> VerifyResponse {
    VerifyResponse {
        result,
        reason: reason.as_str().to_owned(),
        matched,
    }
}

/// The answer of a settled verification.
fn answer(d: &SettleDecision) -> VerifyResponse {
    match d {
        SettleDecision::Blocked => verdict(VerifyResult::Blocked, Reason::TooManyFailures, None),
        SettleDecision::Accepted(kind) => verdict(VerifyResult::Accepted, Reason::Ok, Some(*kind)),
        SettleDecision::Rejected { reason, .. } => verdict(VerifyResult::Rejected, *reason, None),
    }
}

/// The transaction a verification names, when it names a payee (its type
/// is then present: [`Issuer::verify`] refuses a payee without one).
fn bound<'a>(req: &VerifyRequest, payee: Option<&'a str>) -> Option<Transaction<'a>> {
    match (payee, req.tx_type) {
        (Some(p), Some(t)) => Some(Transaction::new(t, req.amount, p)),
        _ => None,
    }
}

/// A code as typed: ASCII or Persian digits, spaces allowed, at most 16.
pub(crate) fn normalize_code(text: &str) -> Result<Zeroizing<String>, ServiceError> {
    let compact = Zeroizing::new(text.chars().filter(|c| *c != ' ').collect::<String>());
    let digits = normalize_digits(&compact).map(Zeroizing::new);
    match digits {
        Some(d) if !d.is_empty() && d.len() <= MAX_CODE_LEN => Ok(d),
        _ => Err(ServiceError::invalid(
            Field::Code,
            "code must be 1 to 16 digits",
        )),
    }
}

impl Issuer {
    /// `POST /v1/verify`: the candidates are computed first (constant
    /// time, no lock held), then the store settles the spend against the
    /// committed state in one transaction.
    ///
    /// # Errors
    /// `invalid_pan`, `invalid_code`, `invalid_payee`, `invalid_amount`,
    /// or a storage failure; a stored seed that does not open or parse is
    /// an internal failure (500).
    pub async fn verify(&self, req: VerifyRequest) -> Result<VerifyResponse, ServiceError> {
        let pan = Pan::parse(&req.pan).map_err(|e| ServiceError::protocol(Field::Pan, &e))?;
        let code = normalize_code(&req.code)?;
        let payee = match &req.payee {
            None => None,
            Some(p) => Some(
                normalize_payee(p)
                    .map_err(|e| ServiceError::protocol(Field::Payee, &e))?
                    .to_owned(),
            ),
        };
        match req.kind {
            VerifyKind::First if payee.is_some() => {
                return Err(ServiceError::invalid(
                    Field::Payee,
                    "payee is only for second PINs",
                ));
            }
            VerifyKind::First if req.tx_type.is_some() => {
                return Err(ServiceError::invalid(
                    Field::TxType,
                    "type is only for second PINs with a payee",
                ));
            }
            VerifyKind::Second if payee.is_some() && req.tx_type.is_none() => {
                return Err(ServiceError::invalid(
                    Field::TxTypeMissing,
                    "type (purchase, transfer or bill) is required with a payee",
                ));
            }
            VerifyKind::Second if payee.is_none() && req.tx_type.is_some() => {
                return Err(ServiceError::invalid(
                    Field::TxType,
                    "type is only for payments with a payee",
                ));
            }
            VerifyKind::Second if req.amount == 0 => {
                return Err(ServiceError::invalid(
                    Field::Amount,
                    "amount must be a positive number of Rials",
                ));
            }
            _ => {}
        }
        let now = self.now();
        let at = i64::try_from(now).unwrap_or(i64::MAX);
        let pan_hash = self
            .keys
            .keyed_hash(HashDomain::Pan, pan.expose_secret().as_bytes())?;
        let rules = Lockout::from_settings(&self.settings);
        let Some(card) = self.store.card_by_pan(pan_hash).await? else {
            return self
                .verify_unknown(pan_hash, &req, &code, payee.as_deref(), now, rules)
                .await;
        };
        if card.blocked_until > at {
            return Ok(self.count(verdict(
                VerifyResult::Blocked,
                Reason::TooManyFailures,
                None,
            )));
        }
        // A card whose app is suspended or revoked (docs/issuer.md, "A
        // card's whole life"): its app PINs are refused at once with the
        // reason; its one-time codes (SMS version, Harim) still work, and a
        // code that matches nothing still counts as a failure.
        let app_off = match card.status {
            CardStatus::Active => None,
            CardStatus::Suspended => Some(Reason::CardSuspended),
            CardStatus::Revoked => Some(Reason::CardRevoked),
        };
        // One-time codes sent by SMS (SMS version, Harim) are second PINs.
        // A card with the app needs no look-up for codes of another length
        // (the app's second PINs have 8 digits by default), which keeps the
        // app's verification path as it was.
        let one_time = match req.kind {
            VerifyKind::Second
                if card.seed_sealed.is_none()
                    || app_off.is_some()
                    || code.len() == ONE_TIME_CODE_DIGITS =>
            {
                Some(
                    self.check_one_time(&card.id, &code, bound(&req, payee.as_deref()), now)
                        .await?,
                )
            }
            VerifyKind::First | VerifyKind::Second => None,
        };
        let app_matched = match card.seed_sealed.as_deref() {
            Some(_) if app_off.is_some() => None,
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
        let spend = match (app_matched, one_time.map(|o| o.matched)) {
            (Some(v), _) => Spend::Step {
                kind: v.kind,
                step: v.step,
                drift: v.drift.clamp(
                    -self.settings.max_drift_steps,
                    self.settings.max_drift_steps,
                ),
            },
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
                spend,
                Spend::Step { kind, .. } | Spend::OneTime { kind, .. }
                    if kind != PinKind::Transaction
            );
        let decision = self
            .store
            .settle_verification(Settlement {
                card_id: card.id.clone(),
                generation: card.seed_generation,
                spend,
                now: at,
                rules,
            })
            .await?;
        let resp = match decision {
            SettleDecision::Accepted(_) if unlinked => {
                self.metrics
                    .unlinked
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                verdict(VerifyResult::Rejected, Reason::DynamicLinkingRequired, None)
            }
            // The app is off and nothing else matched: say why.
            SettleDecision::Rejected {
                reason: Reason::WrongCode,
                ..
            } if app_off.is_some() => verdict(
                VerifyResult::Rejected,
                app_off.unwrap_or(Reason::WrongCode),
                None,
            ),
            d => answer(&d),
        };
        if let Some(block) = decision.block() {
            // Its notice (one per block, at most ESCALATE_AFTER_BLOCKS a
            // day) was queued with it.
            self.wake_outbox();
            self.metrics
                .blocks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                card_id = %card.id,
                until_lifted = block.until_lifted(),
                cause = block.cause.as_str(),
                "card blocked after repeated failures"
            );
        }
        Ok(self.count(resp))
    }

    /// A verification for a card number the bank does not know: the same
    /// answers as for a known card with a wrong code (`rejected`
    /// `wrong_code`, then `blocked` `too_many_failures`), after the same
    /// work (a seed opened, the app's candidates computed, one-time codes
    /// looked up, a write), counted and blocked per PAN keyed hash by the
    /// same rules. Only metrics and logs say `not_enrolled`.
    async fn verify_unknown(
        &self,
        pan_hash: [u8; 32],
        req: &VerifyRequest,
        code: &str,
        payee: Option<&str>,
        now: u64,
        rules: Lockout,
    ) -> Result<VerifyResponse, ServiceError> {
        let at = i64::try_from(now).unwrap_or(i64::MAX);
        if self.store.probe_blocked_until(pan_hash).await? > at {
            return Ok(self.count(verdict(
                VerifyResult::Blocked,
                Reason::TooManyFailures,
                None,
            )));
        }
        if req.kind == VerifyKind::Second && code.len() == ONE_TIME_CODE_DIGITS {
            self.check_one_time(DUMMY_CARD_ID, code, bound(req, payee), now)
                .await?;
        }
        self.dummy_app_work(req, code, payee, now)?;
        self.not_enrolled("unknown card number");
        let settled = self.store.settle_unknown(pan_hash, at, rules).await?;
        let resp = match settled {
            UnknownSettled::Blocked => {
                verdict(VerifyResult::Blocked, Reason::TooManyFailures, None)
            }
            UnknownSettled::Counted => verdict(VerifyResult::Rejected, Reason::WrongCode, None),
            UnknownSettled::BlockedNow => {
                tracing::warn!("an unknown card number was blocked after repeated failures");
                verdict(VerifyResult::Rejected, Reason::WrongCode, None)
            }
        };
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
    ) -> Result<(), ServiceError> {
        let card = CardState {
            id: DUMMY_CARD_ID.to_owned(),
            seed_sealed: None,
            seed_generation: 0,
            drift_first: 0,
            drift_second: 0,
            blocked_until: 0,
            status: CardStatus::Active,
        };
        self.match_app_code(&self.dummy_card_keys, &card, req, code, payee, now)?;
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

    /// The app's candidates for a verification (`pooya_protocol::verify`,
    /// each in constant time): the matched PIN, if any. A stored seed that
    /// does not open or parse is an internal failure, never the client's.
    fn match_app_code(
        &self,
        sealed: &[u8],
        card: &CardState,
        req: &VerifyRequest,
        code: &str,
        payee: Option<&str>,
        now: u64,
    ) -> Result<Option<Verified>, ServiceError> {
        let matched: Option<Verified> = match req.kind {
            VerifyKind::First => self
                .check_claims(sealed, card, &[Claim::First], code, now, card.drift_first)?
                .into_iter()
                .find_map(accepted),
            VerifyKind::Second => {
                // Both are always computed, in one request to the key
                // provider, so the work does not tell which one matched;
                // the transaction-bound PIN is preferred.
                let mut claims = Vec::with_capacity(2);
                if let (Some(p), Some(tx_type)) = (&payee, req.tx_type) {
                    claims.push(Claim::Transaction(Transaction::new(tx_type, req.amount, p)));
                }
                claims.push(Claim::Second { amount: req.amount });
                self.check_claims(sealed, card, &claims, code, now, card.drift_second)?
                    .into_iter()
                    .find_map(accepted)
            }
        };
        Ok(matched)
    }

    /// The claims' candidates (`pooya_protocol::plan_verification`), their
    /// HMACs computed by the key provider where the card's keys live (one
    /// call for all of them: one round trip to an HSM), and each claim's
    /// decision, in order.
    fn check_claims(
        &self,
        sealed: &[u8],
        card: &CardState,
        claims: &[Claim<'_>],
        code: &str,
        now: u64,
        drift: i64,
    ) -> Result<Vec<Outcome>, ServiceError> {
        let plans = claims
            .iter()
            .map(|c| plan_verification(&self.settings.policies, *c, now, drift))
            .collect::<Result<Vec<_>, _>>()?;
        let requests: Vec<MacRequest<'_>> = plans
            .iter()
            .flat_map(|p| p.candidates())
            .map(|c| MacRequest {
                key: c.key.into(),
                algorithm: c.algorithm,
                message: &c.message,
            })
            .collect();
        let macs = self.keys.card_macs(&card.id, sealed, &requests)?;
        let mut rest: &[Vec<u8>] = &macs;
        let mut outcomes = Vec::with_capacity(plans.len());
        for plan in &plans {
            let n = plan.candidates().len().min(rest.len());
            let (mine, tail) = rest.split_at(n);
            outcomes.push(plan.decide(code, mine)?);
            rest = tail;
        }
        Ok(outcomes)
    }

    fn count(&self, resp: VerifyResponse) -> VerifyResponse {
        self.metrics.verify(match resp.result {
            VerifyResult::Accepted => VerifyCount::Accepted,
            VerifyResult::Rejected => VerifyCount::Rejected,
            VerifyResult::Blocked => VerifyCount::Blocked,
        });
        resp
    }

    /// `POST /v1/cards/unblock` (ops): lifts a block of a card number's
    /// dynamic PINs, escalated or not, and forgets its recent blocks and
    /// failures. For a card number the bank does not know, its probe
    /// counters are cleared and the answer is `card_not_found`.
    ///
    /// # Errors
    /// `invalid_pan`, `card_not_found`, or a storage failure.
    pub async fn unblock(&self, req: UnblockRequest) -> Result<UnblockResponse, ServiceError> {
        let pan = Pan::parse(&req.pan).map_err(|e| ServiceError::protocol(Field::Pan, &e))?;
        let pan_hash = self
            .keys
            .keyed_hash(HashDomain::Pan, pan.expose_secret().as_bytes())?;
        let at = i64::try_from(self.now()).unwrap_or(i64::MAX);
        match self.store.unblock(pan_hash, at).await? {
            Some(u) => {
                tracing::info!(card_id = %u.card_id, was_blocked = u.was_blocked, "dynamic PINs unblocked by ops");
                Ok(UnblockResponse {
                    card_id: u.card_id,
                    was_blocked: u.was_blocked,
                })
            }
            None => Err(ServiceError::CardNotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_debug_hides_the_card_number() {
        let pan = "6104337700000001";
        let u = UnblockRequest { pan: pan.into() };
        let text = format!("{u:?}");
        assert!(!text.contains(pan) && text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn codes_normalise() {
        assert_eq!(&*normalize_code("۱۲۳ ۴۵۶").unwrap(), "123456");
        assert_eq!(normalize_code("").unwrap_err().code(), "invalid_code");
        assert_eq!(normalize_code("12a4").unwrap_err().code(), "invalid_code");
        assert_eq!(
            normalize_code(&"1".repeat(17)).unwrap_err().code(),
            "invalid_code"
        );
    }
}
