//! The issuer's decisions as pure functions over typed state: no clock,
//! no storage, no keys. Stores call them inside their transactions
//! (docs/issuer.md, "Failure window", "High-water marks", "One-time PINs";
//! docs/architecture.md, "Issuer layers"), and the tests below check them
//! as tables of cases at fixed times.

use pooya_protocol::PinKind;

use crate::settings::Settings;
use crate::store::{CardStatus, CodeState, Spend, StatusCause};

/// Blocks of a card number's dynamic PINs within
/// [`ESCALATION_WINDOW_SECS`] after which the block lasts until an ops
/// unblock or a re-enrollment.
pub const ESCALATE_AFTER_BLOCKS: i64 = 3;
/// The window of [`ESCALATE_AFTER_BLOCKS`]: 24 hours.
pub const ESCALATION_WINDOW_SECS: i64 = 24 * 3600;
/// `blocked_until` of a block that lasts until it is lifted.
pub const BLOCKED_UNTIL_LIFTED: i64 = i64::MAX;
/// One hour, the window of the hourly limits.
pub const HOUR: i64 = 3600;

/// Why a verification was answered as it was (`reason` in
/// `/v1/verify`'s answer; docs/issuer.md, "Verification").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Accepted.
    Ok,
    /// Nothing matched (also: unknown card, no app, expired code).
    WrongCode,
    /// The code's step or one-time code was spent before.
    Replayed,
    /// The card number's dynamic PINs are blocked.
    TooManyFailures,
    /// A payment naming a payee takes only a PIN bound to it.
    DynamicLinkingRequired,
    /// The card's app is suspended by the bank: its app PINs are refused
    /// (SMS-version codes still work).
    CardSuspended,
    /// The card's app activation is over (lost phone, the bank, removed
    /// on the phone): its app PINs are refused until it is activated
    /// again (SMS-version codes still work).
    CardRevoked,
}

impl Reason {
    /// The stable wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::WrongCode => "wrong_code",
            Self::Replayed => "replayed",
            Self::TooManyFailures => "too_many_failures",
            Self::DynamicLinkingRequired => "dynamic_linking_required",
            Self::CardSuspended => "card_suspended",
            Self::CardRevoked => "card_revoked",
        }
    }
}

/// What a card's app state change does (docs/issuer.md, "A card's
/// whole life").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// Move to this state: store it, record the event, tell the customer.
    Change(CardStatus),
    /// Already there: nothing is stored, recorded or sent.
    Unchanged,
    /// Not allowed from this state (a revoked card is not resumed or
    /// suspended: it needs a new activation).
    Refused,
}

/// The transition `cause` makes from `from`: revoking is allowed from
/// any state and final until a new activation; suspending and resuming
/// only move between active and suspended.
pub fn status_transition(from: CardStatus, cause: StatusCause) -> Transition {
    let to = cause.target();
    match (from, to) {
        (a, b) if a == b => Transition::Unchanged,
        (CardStatus::Revoked, _) => Transition::Refused,
        (_, to) => Transition::Change(to),
    }
}

/// The lockout rules, from the settings (RFC 4226 §7.3, PSD2 RTS Art. 4;
/// docs/issuer.md, "Failure window").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Consecutive failures that block.
    pub max_failures: i64,
    /// How long a block lasts, unless it escalates.
    pub lockout_secs: i64,
    /// Failures within `window_secs` that block, acceptances or not.
    pub window_max: i64,
    /// The sliding window of `window_max`.
    pub window_secs: i64,
}

impl Lockout {
    /// The rules of these settings.
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            max_failures: i64::from(s.max_failures),
            lockout_secs: i64::try_from(s.lockout_secs).unwrap_or(i64::MAX),
            window_max: i64::from(s.failure_window_max),
            window_secs: i64::try_from(s.failure_window_secs).unwrap_or(i64::MAX),
        }
    }
}

/// A card number's lockout state before a failure, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockState {
    /// Failures since the last acceptance or block (`cards.failures`,
    /// `probe_failures.failures`).
    pub consecutive: i64,
    /// When the failures counted since the last block happened
    /// (`verify_failures`, those within the window); acceptances do not
    /// remove them.
    pub failures_at: Vec<i64>,
    /// When the card number's recent blocks began (`verify_blocks`, those
    /// within [`ESCALATION_WINDOW_SECS`]).
    pub blocks_at: Vec<i64>,
}

/// Which rule placed a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockCause {
    /// `max_failures` in a row.
    Consecutive,
    /// `failure_window_max` within `failure_window_secs`.
    Window,
}

impl BlockCause {
    /// For logs and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consecutive => "consecutive failures",
            Self::Window => "failures within the window",
        }
    }
}

/// A block to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// `blocked_until`: `now + lockout_secs`, or [`BLOCKED_UNTIL_LIFTED`].
    pub until: i64,
    /// The rule that placed it.
    pub cause: BlockCause,
    /// The next block within [`ESCALATION_WINDOW_SECS`] lasts until lifted:
    /// the customer is warned now (PSD2 RTS Art. 4).
    pub next_until_lifted: bool,
}

impl Block {
    /// It lasts until an ops unblock or a re-enrollment.
    pub fn until_lifted(&self) -> bool {
        self.until == BLOCKED_UNTIL_LIFTED
    }

    /// The audit trail's words for it.
    pub fn audit_detail(&self) -> String {
        if self.until_lifted() {
            format!(
                "until lifted (ops unblock or re-enrollment); {}",
                self.cause.as_str()
            )
        } else {
            format!("until {}; {}", self.until, self.cause.as_str())
        }
    }
}

/// What a counted failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureSettlement {
    /// Count it: `consecutive` is stored and a failure row is added at
    /// `now`.
    Count {
        /// The new consecutive count.
        consecutive: i64,
    },
    /// Block the card number's dynamic PINs: the consecutive count and the
    /// window's rows are cleared (the block consumed them) and a block row
    /// is added at `now`.
    Block(Block),
}

/// Settles one counted failure (`wrong_code`, `replayed`) of a card number,
/// known or not, from its state, the time and the rules.
///
/// Two rules block: `max_failures` consecutive failures (RFC 4226 §7.3),
/// and `window_max` failures within the last `window_secs` whatever
/// acceptances came between (PSD2 RTS Art. 4: an accepted payment resets
/// only the consecutive count). The [`ESCALATE_AFTER_BLOCKS`]-th block
/// within [`ESCALATION_WINDOW_SECS`] lasts until lifted; the one before it
/// warns the customer.
pub fn settle_failure(state: &LockState, now: i64, rules: Lockout) -> FailureSettlement {
    let consecutive = state.consecutive.saturating_add(1);
    let in_window = state
        .failures_at
        .iter()
        .filter(|&&at| at > now.saturating_sub(rules.window_secs))
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

/// A card's verification state, as locked by the settling transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardLock {
    /// Consecutive failures.
    pub failures: i64,
    /// Until when its dynamic PINs are blocked.
    pub blocked_until: i64,
    /// Its seed generation now.
    pub generation: i64,
    /// The stored drift of first PINs.
    pub drift_first: i64,
    /// The stored drift of second (and transaction) PINs.
    pub drift_second: i64,
}

/// A high-water mark (RFC 6238 §5.2): the highest step accepted for a
/// card and PIN kind, under one seed generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The seed generation it was set under.
    pub generation: i64,
    /// The step.
    pub step: i64,
}

/// A one-time code's state, as locked by the settling transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneTimeState {
    /// Its state.
    pub state: CodeState,
    /// When it expires.
    pub expires_at: i64,
}

/// What the settling transaction read before deciding a spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendInput {
    /// The card.
    pub card: CardLock,
    /// The seed generation the code was checked against.
    pub checked_generation: i64,
    /// What matched.
    pub spend: Spend,
    /// The mark of the matched step's kind (`Spend::Step` only).
    pub mark: Option<Mark>,
    /// The matched one-time code (`Spend::OneTime` only); `None` when its
    /// row is gone.
    pub one_time: Option<OneTimeState>,
    /// Unix seconds.
    pub now: i64,
}

/// What to write when a code is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// An app PIN: raise the kind's mark to `step` (under the card's
    /// generation), store the drift of its key, reset the failures.
    Step {
        /// Its kind.
        kind: PinKind,
        /// The new mark.
        step: i64,
        /// The new drift of its key (first, or second and transaction).
        drift: i64,
    },
    /// A one-time code: spend it, reset the failures.
    OneTime {
        /// The code's row.
        id: i64,
        /// Its kind.
        kind: PinKind,
    },
}

impl Acceptance {
    /// The PIN kind answered as `matched`.
    pub fn kind(&self) -> PinKind {
        match self {
            Self::Step { kind, .. } | Self::OneTime { kind, .. } => *kind,
        }
    }
}

/// The spend decision of a verification, before any failure is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendDecision {
    /// Blocked already: nothing is written.
    Blocked,
    /// Accepted: apply the acceptance.
    Accept(Acceptance),
    /// Refused without counting (the card was activated again while the
    /// code was checked against the old seed).
    RefuseUncounted(Reason),
    /// Refused and counted as a failure ([`settle_failure`]).
    RefuseCounted(Reason),
}

/// Decides a verification's spend against the locked state: a blocked
/// card stays blocked; an app PIN is accepted only above its kind's mark
/// under the current seed (RFC 6238 §5.2; a mark of an older generation is
/// no mark); a one-time code only while pending and unexpired (spent once,
/// RFC 4226 §7.5).
pub fn decide_spend(input: &SpendInput) -> SpendDecision {
    let card = &input.card;
    if card.blocked_until > input.now {
        return SpendDecision::Blocked;
    }
    match input.spend {
        Spend::Nothing => SpendDecision::RefuseCounted(Reason::WrongCode),
        Spend::Replayed => SpendDecision::RefuseCounted(Reason::Replayed),
        Spend::Step { .. } if input.checked_generation != card.generation => {
            SpendDecision::RefuseUncounted(Reason::WrongCode)
        }
        Spend::Step { kind, step, drift } => {
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            let above = match input.mark {
                Some(m) if m.generation == card.generation => step > m.step,
                _ => true,
            };
            if above {
                SpendDecision::Accept(Acceptance::Step { kind, step, drift })
            } else {
                SpendDecision::RefuseCounted(Reason::Replayed)
            }
        }
        Spend::OneTime { id, kind } => match input.one_time {
            Some(OneTimeState {
                state: CodeState::Pending,
                expires_at,
            }) if expires_at > input.now => SpendDecision::Accept(Acceptance::OneTime { id, kind }),
            Some(OneTimeState {
                state: CodeState::Used,
                ..
            }) => SpendDecision::RefuseCounted(Reason::Replayed),
            _ => SpendDecision::RefuseCounted(Reason::WrongCode),
        },
    }
}

/// A settled verification: the answer and, for a counted failure, what the
/// failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleDecision {
    /// Blocked already.
    Blocked,
    /// Accepted as this kind.
    Accepted(PinKind),
    /// Refused; `failure` is `None` when not counted.
    Rejected {
        /// Why.
        reason: Reason,
        /// What the counted failure did.
        failure: Option<FailureSettlement>,
    },
}

impl SettleDecision {
    /// The block this settlement began, if any.
    pub fn block(&self) -> Option<Block> {
        match self {
            Self::Rejected {
                failure: Some(FailureSettlement::Block(b)),
                ..
            } => Some(*b),
            _ => None,
        }
    }
}

/// The rate limits of one-time codes (docs/issuer.md, "One-time PINs").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpLimits {
    /// Seconds between two codes for a subject.
    pub min_interval: i64,
    /// Codes per subject per hour.
    pub per_hour: i64,
}

impl OtpLimits {
    /// The limits of these settings.
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            min_interval: i64::try_from(s.otp_min_interval_secs).unwrap_or(i64::MAX),
            per_hour: i64::from(s.otp_max_per_hour),
        }
    }
}

/// A subject's sends within the last hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendHistory {
    /// How many.
    pub count: i64,
    /// The first.
    pub first: Option<i64>,
    /// The last.
    pub last: Option<i64>,
}

/// How long until a new code may go to every subject, or `None` when it
/// may go now: at most `per_hour` an hour and `min_interval` apart.
pub fn otp_retry_after(histories: &[SendHistory], now: i64, limits: OtpLimits) -> Option<u64> {
    let mut wait = 0i64;
    for h in histories {
        if h.count >= limits.per_hour
            && let Some(first) = h.first
        {
            wait = wait.max(first + HOUR - now);
        }
        if let Some(last) = h.last
            && now - last < limits.min_interval
        {
            wait = wait.max(last + limits.min_interval - now);
        }
    }
    (wait > 0).then_some(wait as u64)
}

/// Which pending activation outcome a guess has, before it is counted
/// (docs/issuer.md, "Activation").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationGuess {
    /// The code matched a pending one and the budget is not spent: try to
    /// complete it.
    Complete,
    /// Wrong for a phone with a live code: count it.
    Count,
    /// The budget is spent: refuse without looking further.
    OverBudget,
    /// No live code for this phone: count it as a stranger's.
    Stranger,
}

/// Decides what to do with an activation guess.
pub fn decide_activation(
    live_code: bool,
    failures: u32,
    matched: bool,
    max_failures: u32,
) -> ActivationGuess {
    if !live_code {
        ActivationGuess::Stranger
    } else if failures >= max_failures {
        ActivationGuess::OverBudget
    } else if matched {
        ActivationGuess::Complete
    } else {
        ActivationGuess::Count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_transitions() {
        use CardStatus::{Active, Revoked, Suspended};
        use StatusCause::*;
        let cases: &[(CardStatus, StatusCause, Transition)] = &[
            (Active, OpsSuspend, Transition::Change(Suspended)),
            (Active, OpsResume, Transition::Unchanged),
            (Active, OpsRevoke, Transition::Change(Revoked)),
            (Active, AtmDeactivation, Transition::Change(Revoked)),
            (Active, RemovedOnPhone, Transition::Change(Revoked)),
            (Suspended, OpsSuspend, Transition::Unchanged),
            (Suspended, OpsResume, Transition::Change(Active)),
            (Suspended, OpsRevoke, Transition::Change(Revoked)),
            (Suspended, AtmDeactivation, Transition::Change(Revoked)),
            (Suspended, RemovedOnPhone, Transition::Change(Revoked)),
            (Revoked, OpsSuspend, Transition::Refused),
            (Revoked, OpsResume, Transition::Refused),
            (Revoked, OpsRevoke, Transition::Unchanged),
            (Revoked, AtmDeactivation, Transition::Unchanged),
            (Revoked, RemovedOnPhone, Transition::Unchanged),
        ];
        assert_eq!(cases.len(), CardStatus::ALL.len() * StatusCause::ALL.len());
        for (from, cause, want) in cases {
            assert_eq!(
                status_transition(*from, *cause),
                *want,
                "{from:?} {cause:?}"
            );
        }
    }

    const NOW: i64 = 1_800_000_000;

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

    fn card(blocked_until: i64, generation: i64) -> CardLock {
        CardLock {
            failures: 2,
            blocked_until,
            generation,
            drift_first: 0,
            drift_second: 0,
        }
    }

    fn input(
        card: CardLock,
        checked_generation: i64,
        spend: Spend,
        mark: Option<Mark>,
        one_time: Option<OneTimeState>,
    ) -> SpendInput {
        SpendInput {
            card,
            checked_generation,
            spend,
            mark,
            one_time,
            now: NOW,
        }
    }

    #[test]
    fn spends_are_decided_against_the_locked_state() {
        let step = |s: u64| Spend::Step {
            kind: PinKind::First,
            step: s,
            drift: 1,
        };
        let mark = |generation: i64, step: i64| Some(Mark { generation, step });
        let code = |state: CodeState, expires_at: i64| Some(OneTimeState { state, expires_at });
        let one_time = Spend::OneTime {
            id: 7,
            kind: PinKind::Transaction,
        };
        use SpendDecision::*;
        let accept_step = |s: i64| {
            Accept(Acceptance::Step {
                kind: PinKind::First,
                step: s,
                drift: 1,
            })
        };
        let cases: Vec<(&str, SpendInput, SpendDecision)> = vec![
            (
                "blocked stays blocked, even for a good code",
                input(card(NOW + 1, 1), 1, step(10), None, None),
                Blocked,
            ),
            (
                "a block that ended is no block",
                input(card(NOW, 1), 1, step(10), None, None),
                accept_step(10),
            ),
            (
                "nothing matched",
                input(card(0, 1), 1, Spend::Nothing, None, None),
                RefuseCounted(Reason::WrongCode),
            ),
            (
                "first step of a card",
                input(card(0, 1), 1, step(10), None, None),
                accept_step(10),
            ),
            (
                "above the mark",
                input(card(0, 1), 1, step(11), mark(1, 10), None),
                accept_step(11),
            ),
            (
                "at the mark",
                input(card(0, 1), 1, step(10), mark(1, 10), None),
                RefuseCounted(Reason::Replayed),
            ),
            (
                "below the mark",
                input(card(0, 1), 1, step(9), mark(1, 10), None),
                RefuseCounted(Reason::Replayed),
            ),
            (
                "a mark of the old seed is no mark",
                input(card(0, 2), 2, step(9), mark(1, 10), None),
                accept_step(9),
            ),
            (
                "activated again while checked",
                input(card(0, 2), 1, step(11), None, None),
                RefuseUncounted(Reason::WrongCode),
            ),
            (
                "a pending one-time code",
                input(
                    card(0, 1),
                    0,
                    one_time,
                    None,
                    code(CodeState::Pending, NOW + 1),
                ),
                Accept(Acceptance::OneTime {
                    id: 7,
                    kind: PinKind::Transaction,
                }),
            ),
            (
                "a one-time code expired meanwhile",
                input(card(0, 1), 1, one_time, None, code(CodeState::Pending, NOW)),
                RefuseCounted(Reason::WrongCode),
            ),
            (
                "a one-time code spent meanwhile",
                input(
                    card(0, 1),
                    1,
                    one_time,
                    None,
                    code(CodeState::Used, NOW + 1),
                ),
                RefuseCounted(Reason::Replayed),
            ),
            (
                "a one-time code superseded meanwhile",
                input(
                    card(0, 1),
                    1,
                    one_time,
                    None,
                    code(CodeState::Superseded, NOW + 1),
                ),
                RefuseCounted(Reason::WrongCode),
            ),
            (
                "a one-time code pruned meanwhile",
                input(card(0, 1), 1, one_time, None, None),
                RefuseCounted(Reason::WrongCode),
            ),
            (
                "a spent one-time code matched",
                input(card(0, 1), 1, Spend::Replayed, None, None),
                RefuseCounted(Reason::Replayed),
            ),
        ];
        for (name, i, want) in cases {
            assert_eq!(decide_spend(&i), want, "{name}");
        }
    }

    #[test]
    fn one_time_rate_limits() {
        let limits = OtpLimits {
            min_interval: 60,
            per_hour: 5,
        };
        let h = |count: i64, first: i64, last: i64| SendHistory {
            count,
            first: Some(first),
            last: Some(last),
        };
        let cases: Vec<(&str, Vec<SendHistory>, Option<u64>)> = vec![
            ("never sent", vec![SendHistory::default()], None),
            ("a minute ago", vec![h(1, NOW - 60, NOW - 60)], None),
            ("ten seconds ago", vec![h(1, NOW - 10, NOW - 10)], Some(50)),
            (
                "five this hour",
                vec![h(5, NOW - 3000, NOW - 100)],
                Some(600),
            ),
            (
                "the longest wait of all subjects",
                vec![h(1, NOW - 10, NOW - 10), h(5, NOW - 3500, NOW - 70)],
                Some(100),
            ),
            ("no subjects", vec![], None),
        ];
        for (name, hist, want) in cases {
            assert_eq!(otp_retry_after(&hist, NOW, limits), want, "{name}");
        }
    }

    #[test]
    fn activation_guesses() {
        use ActivationGuess::*;
        for (live, failures, matched, want) in [
            (false, 0, false, Stranger),
            (false, 9, true, Stranger),
            (true, 0, true, Complete),
            (true, 4, true, Complete),
            (true, 5, true, OverBudget),
            (true, 0, false, Count),
            (true, 4, false, Count),
            (true, 5, false, OverBudget),
        ] {
            assert_eq!(
                decide_activation(live, failures, matched, 5),
                want,
                "{live} {failures} {matched}"
            );
        }
    }
}
