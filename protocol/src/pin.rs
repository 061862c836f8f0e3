//! The three Pooya PIN kinds, their policies, generation and verification.
//!
//! | kind | algorithm | default |
//! |---|---|---|
//! | first (ATM, POS) | TOTP (RFC 6238), HMAC-SHA256 | 6 digits, 60 s |
//! | second (card not present) | OCRA (RFC 6287) `OCRA-1:HOTP-SHA256-8:QN16-T1M`, Q = cap tier | 8 digits, 60 s |
//! | transaction-bound second | OCRA `OCRA-1:HOTP-SHA256-8:QH64-T1M`, Q = SHA-256(type, amount, payee) | 8 digits, 60 s |

use core::fmt;

use ring::{digest, hmac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::ProtocolError;
use crate::amount::CapLadder;
use crate::hotp::{HashAlgorithm, truncate_number};
use crate::ocra::{OcraInput, OcraSuite, QuestionFormat};
use crate::payment::TxType;
use crate::secret::{CardKeys, PinKey};
use crate::totp::{TOTP_DIGITS, totp};

/// Which dynamic PIN a code is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinKind {
    /// First dynamic PIN: ATM and POS.
    First,
    /// Second dynamic PIN bound to an amount cap: online payments,
    /// card-to-card, bills.
    Second,
    /// Second dynamic PIN bound to one exact amount and payee.
    Transaction,
}

impl PinKind {
    /// The stable name (`first`, `second`, `transaction`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Second => "second",
            Self::Transaction => "transaction",
        }
    }
}

impl fmt::Display for PinKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Allowed time steps, in seconds.
pub const STEP_RANGE: core::ops::RangeInclusive<u64> = 30..=300;
/// Allowed digits of OCRA-based (second) PINs.
pub const OCRA_PIN_DIGITS: core::ops::RangeInclusive<u32> = 6..=10;
/// Largest verification window, in steps either side.
pub const MAX_WINDOW: u32 = 2;
/// Longest payee identifier, in bytes (ASCII characters).
pub const MAX_PAYEE_LEN: usize = 64;
/// Largest cap tier a `QN16` question can carry.
pub const MAX_TIER: u64 = 9_999_999_999_999_999;

/// Digits, time step and verification window of one PIN kind.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinPolicy {
    /// Digits of each code.
    pub digits: u32,
    /// Seconds per time step.
    pub step: u64,
    /// Steps accepted either side of the verifier's current step.
    pub window: u32,
}

/// The PIN policies and cap ladder an issuer hands a card at activation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    /// First dynamic PIN (TOTP).
    pub first: PinPolicy,
    /// Second dynamic PIN, cap-bound and transaction-bound (OCRA).
    pub second: PinPolicy,
    /// The cap tiers, in Rials.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<u64>))]
    pub cap_ladder: CapLadder,
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            first: PinPolicy {
                digits: 6,
                step: 60,
                window: 1,
            },
            second: PinPolicy {
                digits: 8,
                step: 60,
                window: 1,
            },
            cap_ladder: CapLadder::default(),
        }
    }
}

impl Policies {
    /// Checks the bounds in docs/protocol.md: first PIN 6–8 digits, second
    /// 6–10, steps 30–300 s expressible as an OCRA `T` (30–59 s or whole
    /// minutes), window at most 2, tiers at most [`MAX_TIER`].
    ///
    /// # Errors
    /// [`ProtocolError::InvalidPolicy`] naming the broken bound.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let bad = |s: &str| Err(ProtocolError::InvalidPolicy(s.to_owned()));
        if !TOTP_DIGITS.contains(&self.first.digits) {
            return bad("first PIN digits must be 6 to 8");
        }
        if !OCRA_PIN_DIGITS.contains(&self.second.digits) {
            return bad("second PIN digits must be 6 to 10");
        }
        for p in [&self.first, &self.second] {
            if !STEP_RANGE.contains(&p.step) || (p.step >= 60 && p.step % 60 != 0) {
                return bad("step must be 30 to 59 s or 1 to 5 whole minutes");
            }
            if p.window > MAX_WINDOW {
                return bad("window must be at most 2 steps");
            }
        }
        if self.cap_ladder.max() > MAX_TIER {
            return bad("cap tier too large");
        }
        Ok(())
    }

    /// The OCRA suite of cap-bound second PINs.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidStep`] or [`ProtocolError::InvalidSuite`]
    /// for a policy that [`Policies::validate`] would refuse.
    pub fn second_suite(&self) -> Result<OcraSuite, ProtocolError> {
        OcraSuite::build(
            HashAlgorithm::Sha256,
            self.second.digits,
            QuestionFormat::Numeric,
            16,
            self.second.step,
        )
    }

    /// The OCRA suite of transaction-bound second PINs.
    ///
    /// # Errors
    /// As [`Policies::second_suite`].
    pub fn transaction_suite(&self) -> Result<OcraSuite, ProtocolError> {
        OcraSuite::build(
            HashAlgorithm::Sha256,
            self.second.digits,
            QuestionFormat::Hex,
            64,
            self.second.step,
        )
    }

    /// The policy of a PIN kind.
    pub fn policy(&self, kind: PinKind) -> &PinPolicy {
        match kind {
            PinKind::First => &self.first,
            PinKind::Second | PinKind::Transaction => &self.second,
        }
    }

    /// How many codes a verification of `kind` tries at most (all tiers for
    /// a second PIN, since a small amount is covered by every tier).
    pub fn max_candidates(&self, kind: PinKind) -> u64 {
        let steps = 2 * u64::from(self.policy(kind).window) + 1;
        match kind {
            PinKind::Second => steps * self.cap_ladder.tiers().len() as u64,
            PinKind::First | PinKind::Transaction => steps,
        }
    }
}

/// A generated PIN and when it is valid (times in the issuer's clock).
#[derive(Clone, PartialEq, Eq)]
pub struct Pin {
    /// The code, `digits` characters, leading zeros kept.
    pub code: String,
    /// The time step it belongs to.
    pub step: u64,
    /// First second of its step (Unix time).
    pub valid_from: u64,
    /// First second after its step.
    pub valid_until: u64,
    /// The cap tier it is bound to (second PINs only).
    pub cap: Option<u64>,
}

impl Pin {
    /// Seconds left in the step at `time`.
    pub fn seconds_left(&self, time: u64) -> u64 {
        self.valid_until.saturating_sub(time)
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pin")
            .field("code", &"<redacted>")
            .field("step", &self.step)
            .field("valid_from", &self.valid_from)
            .field("valid_until", &self.valid_until)
            .field("cap", &self.cap)
            .finish()
    }
}

fn window_of(step_len: u64, time: u64) -> Result<(u64, u64, u64), ProtocolError> {
    let step = time
        .checked_div(step_len)
        .ok_or(ProtocolError::InvalidStep(step_len))?;
    let from = step
        .checked_mul(step_len)
        .ok_or(ProtocolError::TimeOutOfRange)?;
    let until = from
        .checked_add(step_len)
        .ok_or(ProtocolError::TimeOutOfRange)?;
    Ok((step, from, until))
}

/// Checks a payee identifier (docs/protocol.md, "Transaction-bound PIN";
/// docs/security.md, "Merchant names"): surrounding ASCII spaces are
/// trimmed, and what is left must be plain ASCII,
/// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`. No spaces, controls, bidirectional
/// overrides (Unicode UAX #9 §2) or look-alike letters from other scripts
/// (UTS #39 §4) can hide in an identifier that is bound into a PIN and
/// shown to a customer.
///
/// # Errors
/// [`ProtocolError::InvalidPayee`] naming the broken rule.
pub fn normalize_payee(payee: &str) -> Result<&str, ProtocolError> {
    let p = payee.trim_matches(' ');
    let mut bytes = p.bytes();
    let Some(first) = bytes.next() else {
        return Err(ProtocolError::InvalidPayee("empty"));
    };
    if p.len() > MAX_PAYEE_LEN {
        return Err(ProtocolError::InvalidPayee("longer than 64 bytes"));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(ProtocolError::InvalidPayee(
            "must start with an ASCII letter or digit",
        ));
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(ProtocolError::InvalidPayee(
            "only ASCII letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    Ok(p)
}

/// The domain label of version 2 of the transaction question, the one
/// that binds the transaction type (docs/protocol.md, "Transaction-bound
/// PIN"). Version 1 (`pooya/v1/tx`, amount and payee only) is retired:
/// nothing computes or accepts it.
pub const TX_QUESTION_LABEL: &str = "pooya/v2/tx";

/// What a transaction-bound PIN is bound to (Central Bank of Iran rule of
/// 1399/10/08: the type, the exact amount and the payee; PSD2 RTS Art. 5
/// dynamic linking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transaction<'a> {
    /// The transaction type.
    pub tx_type: TxType,
    /// The exact amount in Rials (positive).
    pub amount: u64,
    /// The payee id ([`normalize_payee`]; surrounding spaces are trimmed).
    pub payee: &'a str,
}

impl<'a> Transaction<'a> {
    /// A transaction of `tx_type` for `amount` Rials to `payee`.
    pub fn new(tx_type: TxType, amount: u64, payee: &'a str) -> Self {
        Self {
            tx_type,
            amount,
            payee,
        }
    }
}

/// The transaction question, version 2 (docs/protocol.md,
/// "Transaction-bound PIN"): the upper-case hex of
/// SHA-256(`pooya/v2/tx` || 0x00 || type name (`purchase`, `transfer`,
/// `bill`) || 0x00 || amount as 8 bytes big-endian || payee UTF-8), the
/// 64 hex digits of a `QH64` question (RFC 6287 §5.1).
///
/// # Errors
/// [`ProtocolError::InvalidPayee`], or [`ProtocolError::InvalidAmount`]
/// for a zero amount.
pub fn transaction_question(tx: &Transaction<'_>) -> Result<String, ProtocolError> {
    if tx.amount == 0 {
        return Err(crate::AmountError::Zero.into());
    }
    let payee = normalize_payee(tx.payee)?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(TX_QUESTION_LABEL.as_bytes());
    ctx.update(&[0]);
    ctx.update(tx.tx_type.as_str().as_bytes());
    ctx.update(&[0]);
    ctx.update(&tx.amount.to_be_bytes());
    ctx.update(payee.as_bytes());
    Ok(hex::encode_upper(ctx.finish().as_ref()))
}

/// The first dynamic PIN at `time` (issuer time, Unix seconds).
///
/// # Errors
/// [`ProtocolError`] for a policy outside the bounds.
pub fn first_pin(keys: &CardKeys, policies: &Policies, time: u64) -> Result<Pin, ProtocolError> {
    let p = &policies.first;
    let (step, valid_from, valid_until) = window_of(p.step, time)?;
    let code = totp(
        keys.first.expose_secret(),
        time,
        p.step,
        p.digits,
        HashAlgorithm::Sha256,
    )?;
    Ok(Pin {
        code,
        step,
        valid_from,
        valid_until,
        cap: None,
    })
}

/// The second dynamic PIN bound to the cap tier `cap` at `time`.
///
/// # Errors
/// [`ProtocolError::InvalidAmount`]-style [`ProtocolError::InvalidField`]
/// when `cap` is not a tier of the ladder; others for a bad policy.
pub fn second_pin(
    keys: &CardKeys,
    policies: &Policies,
    cap: u64,
    time: u64,
) -> Result<Pin, ProtocolError> {
    if !policies.cap_ladder.contains(cap) {
        return Err(ProtocolError::InvalidField {
            field: "cap",
            reason: "not a tier of the cap ladder",
        });
    }
    let suite = policies.second_suite()?;
    time_bound_ocra(
        &suite,
        &keys.second,
        &cap.to_string(),
        policies.second.step,
        time,
        Some(cap),
    )
}

/// The second PIN bound to exactly the type, amount and payee of `tx` at
/// `time` (PSD2 RTS Art. 5 dynamic linking; the question is
/// [`transaction_question`]).
///
/// # Errors
/// [`ProtocolError::InvalidPayee`], a zero amount, or a bad policy.
pub fn transaction_pin(
    keys: &CardKeys,
    policies: &Policies,
    tx: &Transaction<'_>,
    time: u64,
) -> Result<Pin, ProtocolError> {
    let suite = policies.transaction_suite()?;
    let question = transaction_question(tx)?;
    time_bound_ocra(
        &suite,
        &keys.tx,
        &question,
        policies.second.step,
        time,
        None,
    )
}

/// An OCRA code (RFC 6287 §5.2) for a time-based suite at `time`, with the
/// validity window of its step.
fn time_bound_ocra(
    suite: &OcraSuite,
    key: &PinKey,
    question: &str,
    step_len: u64,
    time: u64,
    cap: Option<u64>,
) -> Result<Pin, ProtocolError> {
    let (step, valid_from, valid_until) = window_of(step_len, time)?;
    let input = OcraInput {
        question,
        timestep: Some(step),
        ..OcraInput::default()
    };
    let code = crate::ocra::ocra(suite, key.expose_secret(), &input)?;
    Ok(Pin {
        code,
        step,
        valid_from,
        valid_until,
        cap,
    })
}

/// What a code is claimed to authorise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim<'a> {
    /// A first PIN (ATM/POS).
    First,
    /// A cap-bound second PIN for a payment of `amount` Rials.
    Second {
        /// The payment amount.
        amount: u64,
    },
    /// A transaction-bound second PIN for exactly this transaction.
    Transaction(Transaction<'a>),
}

impl Claim<'_> {
    /// The PIN kind claimed.
    pub fn kind(&self) -> PinKind {
        match self {
            Self::First => PinKind::First,
            Self::Second { .. } => PinKind::Second,
            Self::Transaction(_) => PinKind::Transaction,
        }
    }
}

/// A successful verification: which step (and tier) matched, so the caller
/// can refuse a second use of (card, kind, step) (RFC 6238 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The PIN kind.
    pub kind: PinKind,
    /// The matched time step.
    pub step: u64,
    /// The matched step minus the verifier's current step.
    pub drift: i64,
    /// The cap tier of a matched second PIN.
    pub tier: Option<u64>,
    /// How many candidates were computed.
    pub candidates: u32,
}

/// The result of a verification that ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// One candidate matched.
    Accepted(Verified),
    /// No candidate matched (or the code was malformed, or no tier covers
    /// the amount). `candidates` is how many were tried.
    Rejected {
        /// Candidates computed.
        candidates: u32,
    },
}

/// One HMAC a verification needs: `HMAC-algorithm(card key of kind,
/// message)`, the message being a TOTP counter (RFC 6238 §4, RFC 4226 §5.2)
/// or an OCRA data input (RFC 6287 §5.1). Not secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Whose key: the first, second or transaction key of the card.
    pub key: PinKind,
    /// The HMAC's hash function.
    pub algorithm: HashAlgorithm,
    /// The HMAC's message.
    pub message: Vec<u8>,
    step: u64,
    tier: Option<u64>,
}

/// Everything a verification computes, without the card's keys: the
/// [`Candidate`] HMACs to ask whoever holds the keys for (an HSM can),
/// and [`decide`](VerificationPlan::decide) to settle from their results.
#[derive(Debug, Clone)]
pub struct VerificationPlan {
    kind: PinKind,
    now_step: u64,
    digits: u32,
    candidates: Vec<Candidate>,
}

/// Plans the verification of a code for `claim` at issuer time `time`:
/// every step within the policy's window around the current step shifted
/// by `drift` steps (the card's tracked clock drift), and for a second PIN
/// every cap tier at or above the amount.
///
/// # Errors
/// [`ProtocolError`] for a bad policy, a zero amount or a bad payee.
pub fn plan_verification(
    policies: &Policies,
    claim: Claim<'_>,
    time: u64,
    drift: i64,
) -> Result<VerificationPlan, ProtocolError> {
    let kind = claim.kind();
    let policy = policies.policy(kind);
    if policy.step == 0 {
        return Err(ProtocolError::InvalidStep(0));
    }
    let now_step = time / policy.step;
    let center = now_step
        .checked_add_signed(drift)
        .ok_or(ProtocolError::TimeOutOfRange)?;
    let w = u64::from(policy.window);
    let lo = center.saturating_sub(w);
    let hi = center.checked_add(w).ok_or(ProtocolError::TimeOutOfRange)?;
    let mut candidates = Vec::new();
    let digits;
    match claim {
        Claim::First => {
            if !TOTP_DIGITS.contains(&policy.digits) {
                return Err(ProtocolError::InvalidDigits(policy.digits));
            }
            digits = policy.digits;
            for step in lo..=hi {
                step.checked_mul(policy.step)
                    .ok_or(ProtocolError::TimeOutOfRange)?;
                candidates.push(Candidate {
                    key: PinKind::First,
                    algorithm: HashAlgorithm::Sha256,
                    message: step.to_be_bytes().to_vec(),
                    step,
                    tier: None,
                });
            }
        }
        Claim::Second { amount } => {
            if amount == 0 {
                return Err(crate::AmountError::Zero.into());
            }
            let suite = policies.second_suite()?;
            digits = suite.digits();
            for &tier in policies.cap_ladder.tiers_covering(amount) {
                ocra_messages(&suite, &tier.to_string(), lo, hi, |message, step| {
                    candidates.push(Candidate {
                        key: PinKind::Second,
                        algorithm: suite.algorithm(),
                        message,
                        step,
                        tier: Some(tier),
                    });
                })?;
            }
        }
        Claim::Transaction(tx) => {
            let suite = policies.transaction_suite()?;
            digits = suite.digits();
            let question = transaction_question(&tx)?;
            ocra_messages(&suite, &question, lo, hi, |message, step| {
                candidates.push(Candidate {
                    key: PinKind::Transaction,
                    algorithm: suite.algorithm(),
                    message,
                    step,
                    tier: None,
                });
            })?;
        }
    }
    Ok(VerificationPlan {
        kind,
        now_step,
        digits,
        candidates,
    })
}

impl VerificationPlan {
    /// The HMACs to compute, in order.
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// Settles `code` against the HMAC results of
    /// [`candidates`](Self::candidates), in their order: each is truncated
    /// (RFC 4226 §5.3) and compared in constant time, all of them whatever
    /// matches, so the work does not depend on where a match is. A code
    /// that is not exactly the policy's digits never matches.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidField`] (`macs`) when the number of results
    /// is not the number of candidates.
    pub fn decide<T: AsRef<[u8]>>(&self, code: &str, macs: &[T]) -> Result<Outcome, ProtocolError> {
        if macs.len() != self.candidates.len() {
            return Err(ProtocolError::InvalidField {
                field: "macs",
                reason: "one result per candidate",
            });
        }
        let well_formed =
            code.len() == self.digits as usize && code.bytes().all(|b| b.is_ascii_digit());
        let typed: u64 = if well_formed {
            code.parse().unwrap_or(u64::MAX)
        } else {
            u64::MAX
        };
        let mut matched: Option<(u64, Option<u64>)> = None;
        for (c, mac) in self.candidates.iter().zip(macs) {
            let value = truncate_number(mac.as_ref(), self.digits);
            let equal: bool = value.ct_eq(&typed).into();
            if equal && matched.is_none() {
                matched = Some((c.step, c.tier));
            }
        }
        let candidates = u32::try_from(self.candidates.len()).unwrap_or(u32::MAX);
        Ok(match (well_formed, matched) {
            (true, Some((step, tier))) => Outcome::Accepted(Verified {
                kind: self.kind,
                step,
                drift: step as i64 - self.now_step as i64,
                tier,
                candidates,
            }),
            _ => Outcome::Rejected { candidates },
        })
    }
}

/// Verifies `code` for `claim` at issuer time `time` with the card's keys
/// at hand: [`plan_verification`], every candidate's HMAC, then
/// [`VerificationPlan::decide`].
///
/// # Errors
/// [`ProtocolError`] for a bad policy, a zero amount or a bad payee. A
/// wrong code is not an error: it is [`Outcome::Rejected`].
pub fn verify(
    keys: &CardKeys,
    policies: &Policies,
    claim: Claim<'_>,
    code: &str,
    time: u64,
    drift: i64,
) -> Result<Outcome, ProtocolError> {
    let plan = plan_verification(policies, claim, time, drift)?;
    let macs: Vec<hmac::Tag> = plan
        .candidates()
        .iter()
        .map(|c| {
            let key = match c.key {
                PinKind::First => &keys.first,
                PinKind::Second => &keys.second,
                PinKind::Transaction => &keys.tx,
            };
            hmac::sign(
                &hmac::Key::new(c.algorithm.hmac(), key.expose_secret()),
                &c.message,
            )
        })
        .collect();
    plan.decide(code, &macs)
}

/// Calls `each(message, step)` with the OCRA data input (RFC 6287 §5.1)
/// of `question` at every step of `lo..=hi`. The message is built once and
/// only its trailing `T` is rewritten per step.
fn ocra_messages(
    suite: &OcraSuite,
    question: &str,
    lo: u64,
    hi: u64,
    mut each: impl FnMut(Vec<u8>, u64),
) -> Result<(), ProtocolError> {
    let mut msg = suite.message(&OcraInput {
        question,
        timestep: Some(lo),
        ..OcraInput::default()
    })?;
    for step in lo..=hi {
        set_timestep(&mut msg, step);
        each(msg.clone(), step);
    }
    Ok(())
}

/// Overwrites the trailing 8-byte `T` of an OCRA message built for a
/// time-based suite (RFC 6287 §5.1: `T` is the last data input).
fn set_timestep(msg: &mut [u8], step: u64) {
    let len = msg.len();
    if len >= 8 {
        msg[len - 8..].copy_from_slice(&step.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::CardSeed;

    fn keys() -> CardKeys {
        CardSeed::from_bytes(core::array::from_fn(|i| i as u8)).derive_keys()
    }

    #[test]
    fn default_policies_are_valid_and_suites_documented() {
        let p = Policies::default();
        p.validate().unwrap();
        assert_eq!(
            p.second_suite().unwrap().as_str(),
            "OCRA-1:HOTP-SHA256-8:QN16-T1M"
        );
        assert_eq!(
            p.transaction_suite().unwrap().as_str(),
            "OCRA-1:HOTP-SHA256-8:QH64-T1M"
        );
        assert_eq!(p.max_candidates(PinKind::First), 3);
        assert_eq!(p.max_candidates(PinKind::Second), 18);
        assert_eq!(p.max_candidates(PinKind::Transaction), 3);
    }

    #[test]
    fn policy_bounds() {
        let mut p = Policies::default();
        p.first.digits = 9;
        assert!(p.validate().is_err());
        let mut p = Policies::default();
        p.second.step = 90;
        assert!(p.validate().is_err());
        let mut p = Policies::default();
        p.second.window = 3;
        assert!(p.validate().is_err());
        let mut p = Policies::default();
        p.second.digits = 10;
        p.first.step = 30;
        p.second.step = 300;
        p.validate().unwrap();
    }

    #[test]
    fn second_pin_round_trip_and_cap() {
        let k = keys();
        let p = Policies::default();
        let t = 1_700_000_000;
        let pin = second_pin(&k, &p, 20_000_000, t).unwrap();
        assert_eq!(pin.code.len(), 8);
        assert_eq!(pin.valid_until - pin.valid_from, 60);
        let ok = verify(
            &k,
            &p,
            Claim::Second { amount: 15_000_000 },
            &pin.code,
            t + 30,
            0,
        )
        .unwrap();
        match ok {
            Outcome::Accepted(v) => {
                assert_eq!(v.tier, Some(20_000_000));
                assert_eq!(v.step, pin.step);
            }
            other => panic!("{other:?}"),
        }
        // Above the cap: only higher tiers are tried, none matches.
        let no = verify(
            &k,
            &p,
            Claim::Second { amount: 20_000_001 },
            &pin.code,
            t,
            0,
        )
        .unwrap();
        assert!(matches!(no, Outcome::Rejected { .. }));
        // Out of the window.
        let no = verify(&k, &p, Claim::Second { amount: 1 }, &pin.code, t + 180, 0).unwrap();
        assert!(matches!(no, Outcome::Rejected { .. }));
        // Drift brings it back.
        let ok = verify(&k, &p, Claim::Second { amount: 1 }, &pin.code, t + 180, -3).unwrap();
        assert!(matches!(ok, Outcome::Accepted(v) if v.drift == -3));
        assert!(second_pin(&k, &p, 12_345, t).is_err());
    }

    #[test]
    fn transaction_pin_is_linked() {
        let k = keys();
        let p = Policies::default();
        let t = 1_700_000_000;
        let tx = Transaction::new(TxType::Purchase, 1_250_000, "shop-42");
        let pin = transaction_pin(&k, &p, &tx, t).unwrap();
        let v = |tx_type, amount, payee| {
            verify(
                &k,
                &p,
                Claim::Transaction(Transaction::new(tx_type, amount, payee)),
                &pin.code,
                t,
                0,
            )
            .unwrap()
        };
        use TxType::{Bill, Purchase, Transfer};
        assert!(matches!(
            v(Purchase, 1_250_000, "shop-42"),
            Outcome::Accepted(_)
        ));
        assert!(matches!(
            v(Purchase, 1_250_000, " shop-42 "),
            Outcome::Accepted(_)
        ));
        assert!(matches!(
            v(Purchase, 1_250_001, "shop-42"),
            Outcome::Rejected { .. }
        ));
        assert!(matches!(
            v(Purchase, 1_250_000, "shop-43"),
            Outcome::Rejected { .. }
        ));
        // The same amount and payee as another type is another question.
        assert!(matches!(
            v(Transfer, 1_250_000, "shop-42"),
            Outcome::Rejected { .. }
        ));
        assert!(matches!(
            v(Bill, 1_250_000, "shop-42"),
            Outcome::Rejected { .. }
        ));
        // Never a first or second PIN.
        let second = verify(&k, &p, Claim::Second { amount: 1 }, &pin.code, t, 0).unwrap();
        assert!(matches!(second, Outcome::Rejected { .. }));
    }

    #[test]
    fn transaction_question_binds_each_type() {
        let q = |t| transaction_question(&Transaction::new(t, 1_250_000, "IR-SHOP-42")).unwrap();
        let all: Vec<String> = TxType::ALL.into_iter().map(q).collect();
        assert_eq!(all.len(), 3);
        assert!(all[0] != all[1] && all[1] != all[2] && all[0] != all[2]);
        // The label, NUL, type, NUL, amount, payee: an independent
        // encoding of the same bytes gives the same hash.
        let mut bytes = b"pooya/v2/tx\0transfer\0".to_vec();
        bytes.extend_from_slice(&1_250_000u64.to_be_bytes());
        bytes.extend_from_slice(b"IR-SHOP-42");
        let want = hex::encode_upper(digest::digest(&digest::SHA256, &bytes).as_ref());
        assert_eq!(all[1], want);
        assert_eq!(
            transaction_question(&Transaction::new(TxType::Bill, 0, "IR-SHOP-42"))
                .unwrap_err()
                .code(),
            "invalid_amount"
        );
        assert_eq!(
            transaction_question(&Transaction::new(TxType::Bill, 1, "shop one"))
                .unwrap_err()
                .code(),
            "invalid_payee"
        );
    }

    #[test]
    fn first_pin_round_trip() {
        let k = keys();
        let p = Policies::default();
        let t = 1_700_000_000;
        let pin = first_pin(&k, &p, t).unwrap();
        assert_eq!(pin.code.len(), 6);
        assert!(
            matches!(verify(&k, &p, Claim::First, &pin.code, t + 60, 0).unwrap(), Outcome::Accepted(v) if v.drift == -1)
        );
        assert!(matches!(
            verify(&k, &p, Claim::First, &pin.code, t + 120, 0).unwrap(),
            Outcome::Rejected { candidates: 3 }
        ));
    }

    #[test]
    fn malformed_codes_rejected_after_full_work() {
        let k = keys();
        let p = Policies::default();
        for code in ["", "1234567", "123456789", "1234567a", "۱۲۳۴۵۶۷۸"] {
            let out = verify(&k, &p, Claim::Second { amount: 1 }, code, 1_700_000_000, 0).unwrap();
            assert_eq!(out, Outcome::Rejected { candidates: 18 }, "{code}");
        }
    }

    #[test]
    fn payee_ids_are_plain_ascii() {
        for (payee, want) in [
            ("IR-SHOP-42", "IR-SHOP-42"),
            (" shop.1_a ", "shop.1_a"),
            ("S", "S"),
            ("9", "9"),
        ] {
            assert_eq!(normalize_payee(payee).unwrap(), want, "{payee:?}");
        }
        assert_eq!(normalize_payee(&"a".repeat(64)).unwrap().len(), 64);
        for bad in [
            "",
            "  ",
            "shop\u{202E}1",
            "shop\u{2066}1",
            "shop one",
            "shop\t1",
            "فروشگاه",
            "Digik\u{0430}la",
            "-shop",
            ".shop",
            "_shop",
            "shop/1",
            "shop:1",
            "shop\u{200B}",
            &"a".repeat(65),
        ] {
            assert_eq!(
                normalize_payee(bad).map_err(|e| e.code()),
                Err("invalid_payee"),
                "{bad:?}"
            );
        }
    }
}
