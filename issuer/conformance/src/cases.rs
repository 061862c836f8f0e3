//! The cases, one `pub async fn` each, every one on a fresh store.

use std::sync::Arc;

use pooya_issuer_service::outbox::{Notice, NoticeKind};
use pooya_issuer_service::rules::{
    BLOCKED_UNTIL_LIFTED, Block, BlockCause, FailureSettlement, Reason, SettleDecision,
};
use pooya_issuer_service::store::{
    ActivationFailure, CodeChannel, CodeState, DevSms, IssueCode, Issued, OutboxCounts, SealedKind,
    Settlement, Spend, Stored, UnknownSettled,
};
use pooya_issuer_service::{IssuerError, Role, Store};
use pooya_protocol::PinKind;

use crate::fixtures::*;

// ----- set-up -----------------------------------------------------------

/// `initialize` on an initialised store is refused with
/// `already_initialized` and changes nothing.
pub async fn initialize_twice_is_refused(store: Arc<dyn Store>) {
    let meta = vec![("canary", vec![1, 2, 3]), ("public_key", vec![4; 32])];
    store
        .initialize(meta, vec![(hash(1), Role::Atm)], NOW)
        .await
        .expect("first initialize");
    let again = store
        .initialize(
            vec![("canary", vec![9]), ("public_key", vec![9])],
            vec![(hash(2), Role::Ops)],
            NOW + 1,
        )
        .await;
    match again {
        Err(e) => assert_eq!(e.code(), "already_initialized", "{e}"),
        Ok(()) => panic!("a second initialize must be refused"),
    }
    assert_eq!(
        store.meta("canary").await.expect("meta"),
        Some(vec![1, 2, 3])
    );
    assert_eq!(
        store.tokens().await.expect("tokens"),
        vec![(hash(1), Role::Atm)]
    );
}

/// `put_meta_once` stores its entries once: a second call (another node
/// starting) gets the first call's values back.
pub async fn put_meta_once_keeps_the_first(store: Arc<dyn Store>) {
    let first = store
        .put_meta_once(
            vec![
                ("activation_key", vec![1; 8]),
                ("activation_pub", vec![2; 4]),
            ],
            "activation_key_created",
            NOW,
        )
        .await
        .expect("put_meta_once");
    assert_eq!(first, vec![vec![1; 8], vec![2; 4]]);
    let second = store
        .put_meta_once(
            vec![
                ("activation_key", vec![7; 8]),
                ("activation_pub", vec![8; 4]),
            ],
            "activation_key_created",
            NOW + 1,
        )
        .await
        .expect("put_meta_once again");
    assert_eq!(second, first, "the first values win");
    assert_eq!(
        store.meta("activation_pub").await.expect("meta"),
        Some(vec![2; 4])
    );
    assert_eq!(store.meta("missing").await.expect("meta"), None);
}

/// Tokens and meta entries come back as stored; the backend has a name.
pub async fn tokens_and_meta_round_trip(store: Arc<dyn Store>) {
    assert!(!store.backend().is_empty());
    assert_eq!(store.tokens().await.expect("tokens"), vec![]);
    let tokens: Vec<_> = Role::ALL
        .iter()
        .enumerate()
        .map(|(i, r)| (hash(10 + i as u8), *r))
        .collect();
    let blob: Vec<u8> = (0..=255).collect();
    store
        .initialize(vec![("sealed_master", blob.clone())], tokens.clone(), NOW)
        .await
        .expect("initialize");
    let mut got = store.tokens().await.expect("tokens");
    got.sort_by_key(|(h, _)| *h);
    assert_eq!(got, tokens);
    assert_eq!(store.meta("sealed_master").await.expect("meta"), Some(blob));
}

// ----- enrollment ---------------------------------------------------------

/// A new card is created with its id, and its message is queued to the
/// phone with its payload and sealed flag intact.
pub async fn enroll_a_new_card(store: Arc<dyn Store>) {
    let e = enroll(&store, app_enrollment(1, PHONE_A, 50, NOW)).await;
    assert_eq!(e.card_id, "card_1_50");
    assert!(!e.moved_from_another_phone);
    let card = store
        .card_by_pan(hash(1))
        .await
        .expect("card_by_pan")
        .expect("the card");
    assert_eq!(card.id, "card_1_50");
    assert_eq!(card.seed_sealed, None);
    assert_eq!(card.seed_generation, 0);
    assert_eq!(card.blocked_until, 0);
    assert_eq!(store.card_by_pan(hash(2)).await.expect("card_by_pan"), None);
    let harim = store
        .harim_card(hash(1))
        .await
        .expect("harim_card")
        .expect("the card");
    assert_eq!(
        (
            harim.id.as_str(),
            harim.phone.as_str(),
            harim.last4.as_str()
        ),
        ("card_1_50", PHONE_A, "6001")
    );
    assert_eq!(harim.pan_hash, hash(1));
    let queued = claim_all(&store, NOW).await;
    assert_eq!(queued.len(), 1);
    let m = &queued[0];
    assert_eq!(
        (
            m.to.as_str(),
            m.kind,
            m.sealed,
            m.payload.as_slice(),
            m.attempts,
            m.created_at
        ),
        (
            PHONE_A,
            NoticeKind::ActivationCode,
            true,
            &[0xC0, 1, 50][..],
            0,
            NOW
        )
    );
    let lookup = store
        .activation_lookup(PHONE_A, hash(50), NOW + 1)
        .await
        .expect("activation_lookup");
    let found = lookup.found.expect("the code");
    assert!(lookup.live_code);
    assert_eq!(found.card_id, "card_1_50");
    assert_eq!(found.pan_sealed, vec![0xA0, 1, 50]);
    assert_eq!(found.registered_phone, PHONE_A);
}

/// Enrolling the same card number again for the same phone keeps the
/// card, supersedes its pending code and notifies nobody else.
pub async fn reenroll_to_the_same_phone(store: Arc<dyn Store>) {
    let first = enroll(&store, app_enrollment(1, PHONE_A, 50, NOW)).await;
    let again = enroll(&store, app_enrollment(1, PHONE_A, 51, NOW + 10)).await;
    assert_eq!(again.card_id, first.card_id, "the card keeps its id");
    assert!(!again.moved_from_another_phone);
    let old = store
        .activation_lookup(PHONE_A, hash(50), NOW + 11)
        .await
        .expect("lookup");
    assert_eq!(old.found, None, "the earlier code is superseded");
    assert!(old.live_code, "the new code is live");
    let new = store
        .activation_lookup(PHONE_A, hash(51), NOW + 11)
        .await
        .expect("lookup");
    assert_eq!(new.found.map(|f| f.card_id), Some(first.card_id));
    assert_eq!(
        kinds_to(&store, NOW + 10, PHONE_A).await,
        vec![NoticeKind::ActivationCode, NoticeKind::ActivationCode]
    );
}

/// Enrolling the card for another phone moves it there and queues
/// `phone_changed` to the old phone, in the same transaction.
pub async fn reenroll_to_another_phone_notifies_the_old(store: Arc<dyn Store>) {
    let first = enroll(&store, app_enrollment(1, PHONE_A, 50, NOW)).await;
    let moved = enroll(&store, app_enrollment(1, PHONE_B, 51, NOW + 10)).await;
    assert_eq!(moved.card_id, first.card_id);
    assert!(moved.moved_from_another_phone);
    let harim = store
        .harim_card(hash(1))
        .await
        .expect("harim_card")
        .expect("the card");
    assert_eq!(harim.phone, PHONE_B);
    let queued = claim_all(&store, NOW + 10).await;
    let summary: Vec<_> = queued.iter().map(|m| (m.to.as_str(), m.kind)).collect();
    assert_eq!(
        summary,
        vec![
            (PHONE_A, NoticeKind::ActivationCode),
            (PHONE_B, NoticeKind::ActivationCode),
            (PHONE_A, NoticeKind::PhoneChanged),
        ]
    );
    let notice: Notice = serde_json_notice(&queued[2].payload);
    assert_eq!(notice, Notice::PhoneChanged { last4: last4(1) });
    assert!(!queued[2].sealed);
    // The old phone's code no longer activates.
    let old = store
        .activation_lookup(PHONE_A, hash(50), NOW + 11)
        .await
        .expect("lookup");
    assert_eq!(old.found, None);
    assert!(!old.live_code);
}

fn serde_json_notice(payload: &[u8]) -> Notice {
    serde_json::from_slice(payload).expect("a plain notice's JSON")
}

/// An SMS-version enrollment enables the card for `sms_card`, found by
/// phone and last four digits, and stores no activation code.
pub async fn sms_version_cards(store: Arc<dyn Store>) {
    assert_eq!(
        store.sms_card(PHONE_A, "6001").await.expect("sms_card"),
        None
    );
    enroll(&store, app_enrollment(1, PHONE_A, 50, NOW)).await;
    assert_eq!(
        store.sms_card(PHONE_A, "6001").await.expect("sms_card"),
        None,
        "an app enrollment does not enable the SMS version"
    );
    let e = enroll(&store, sms_enrollment(1, PHONE_A, NOW + 5)).await;
    let card = store
        .sms_card(PHONE_A, "6001")
        .await
        .expect("sms_card")
        .expect("the SMS card");
    assert_eq!(card.id, e.card_id);
    assert_eq!(card.pan_hash, hash(1));
    assert_eq!(
        store.sms_card(PHONE_B, "6001").await.expect("sms_card"),
        None
    );
    assert_eq!(
        store.sms_card(PHONE_A, "6002").await.expect("sms_card"),
        None
    );
    assert_eq!(
        kinds_to(&store, NOW + 5, PHONE_A).await,
        vec![NoticeKind::ActivationCode, NoticeKind::SmsChannelEnabled]
    );
}

// ----- activation -----------------------------------------------------------

/// A matched code completes once: the seed is stored, the generation goes
/// up by one, the notice is queued; the same code again, or an expired
/// one, is refused and writes nothing.
pub async fn activation_completes_once_and_bumps_the_generation(store: Arc<dyn Store>) {
    enroll(&store, app_enrollment(1, PHONE_A, 50, NOW)).await;
    let lookup = store
        .activation_lookup(PHONE_A, hash(50), NOW + 1)
        .await
        .expect("lookup");
    assert_eq!(lookup.failures, 0);
    let found = lookup.found.expect("found");
    let write = || activation_write(found.code_id, &found.card_id, PHONE_A, &[0x5E, 1], NOW + 2);
    assert!(store.complete_activation(write()).await.expect("complete"));
    let card = store
        .card_by_pan(hash(1))
        .await
        .expect("card")
        .expect("card");
    assert_eq!(card.seed_sealed, Some(vec![0x5E, 1]));
    assert_eq!(card.seed_generation, 1);
    assert!(
        !store
            .complete_activation(write())
            .await
            .expect("complete again"),
        "a used code does not activate twice"
    );
    assert_eq!(generation(&store, 1).await, 1);
    let after = store
        .activation_lookup(PHONE_A, hash(50), NOW + 3)
        .await
        .expect("lookup");
    assert_eq!(after.found, None);
    assert!(!after.live_code);
    // Enrolled and activated again: generation 2. A code past its expiry
    // is neither found nor completed.
    enroll(&store, app_enrollment(1, PHONE_A, 51, NOW + 10)).await;
    let late = NOW + 10 + 600;
    let expired = store
        .activation_lookup(PHONE_A, hash(51), late)
        .await
        .expect("lookup");
    assert_eq!(expired.found, None);
    assert!(!expired.live_code);
    let live = store
        .activation_lookup(PHONE_A, hash(51), NOW + 11)
        .await
        .expect("lookup")
        .found
        .expect("found");
    assert!(
        !store
            .complete_activation(activation_write(
                live.code_id,
                &live.card_id,
                PHONE_A,
                &[3],
                late
            ))
            .await
            .expect("complete expired"),
        "an expired code does not activate"
    );
    assert_eq!(generation(&store, 1).await, 1);
    assert!(
        store
            .complete_activation(activation_write(
                live.code_id,
                &live.card_id,
                PHONE_A,
                &[4],
                NOW + 12
            ))
            .await
            .expect("complete")
    );
    let card = store
        .card_by_pan(hash(1))
        .await
        .expect("card")
        .expect("card");
    assert_eq!((card.seed_generation, card.seed_sealed), (2, Some(vec![4])));
    let kinds = kinds_to(&store, NOW + 12, PHONE_A).await;
    assert_eq!(
        kinds,
        vec![
            NoticeKind::ActivationCode,
            NoticeKind::CardActivated,
            NoticeKind::ActivationCode,
            NoticeKind::CardActivated,
        ]
    );
}

/// Wrong guesses are counted per phone: `Counted` below the budget,
/// `Burned` exactly at it (the pending codes die), `OverBudget` after;
/// a burned code no longer completes. Strangers' guesses touch no phone.
pub async fn activation_failures_burn_at_the_budget(store: Arc<dyn Store>) {
    enroll(&store, app_enrollment(1, PHONE_A, 50, NOW)).await;
    store
        .count_activation_stranger(NOW)
        .await
        .expect("stranger");
    store
        .count_activation_stranger(NOW + 1)
        .await
        .expect("stranger");
    let found = store
        .activation_lookup(PHONE_A, hash(50), NOW + 1)
        .await
        .expect("lookup")
        .found
        .expect("found");
    for i in 1..MAX_ACTIVATION_FAILURES {
        let f = store
            .count_activation_failure(PHONE_A, NOW + i64::from(i), MAX_ACTIVATION_FAILURES)
            .await
            .expect("count");
        assert_eq!(f, ActivationFailure::Counted, "guess {i}");
        let l = store
            .activation_lookup(PHONE_A, hash(50), NOW + 10)
            .await
            .expect("lookup");
        assert_eq!(l.failures, i);
        assert!(l.live_code);
    }
    assert_eq!(
        store
            .count_activation_failure(PHONE_A, NOW + 20, MAX_ACTIVATION_FAILURES)
            .await
            .expect("count"),
        ActivationFailure::Burned
    );
    for t in [21, 22] {
        assert_eq!(
            store
                .count_activation_failure(PHONE_A, NOW + t, MAX_ACTIVATION_FAILURES)
                .await
                .expect("count"),
            ActivationFailure::OverBudget
        );
    }
    let l = store
        .activation_lookup(PHONE_A, hash(50), NOW + 30)
        .await
        .expect("lookup");
    assert!(!l.live_code, "burned codes are not live");
    assert_eq!(l.found, None);
    assert!(l.failures >= MAX_ACTIVATION_FAILURES);
    assert!(
        !store
            .complete_activation(activation_write(
                found.code_id,
                &found.card_id,
                PHONE_A,
                &[1],
                NOW + 30
            ))
            .await
            .expect("complete"),
        "a burned code does not activate"
    );
    assert_eq!(generation(&store, 1).await, 0);
    let other = store
        .activation_lookup(PHONE_B, hash(50), NOW + 30)
        .await
        .expect("lookup");
    assert_eq!((other.live_code, other.failures), (false, 0));
}

// ----- verification -----------------------------------------------------------

fn step(kind: PinKind, step: u64, drift: i64) -> Spend {
    Spend::Step { kind, step, drift }
}

fn settlement(card_id: &str, generation: i64, spend: Spend, now: i64) -> Settlement {
    Settlement {
        card_id: card_id.to_owned(),
        generation,
        spend,
        now,
        rules: RULES,
    }
}

async fn settle(store: &Arc<dyn Store>, s: Settlement) -> SettleDecision {
    store
        .settle_verification(s)
        .await
        .expect("settle_verification")
}

fn counted(reason: Reason, consecutive: i64) -> SettleDecision {
    SettleDecision::Rejected {
        reason,
        failure: Some(FailureSettlement::Count { consecutive }),
    }
}

/// A step is accepted above its kind's mark (and the drift stored), a
/// replay at or below it is refused and counted; kinds keep their own
/// marks; an acceptance resets the consecutive count.
pub async fn steps_are_accepted_above_the_mark(store: Arc<dyn Store>) {
    let card = enrolled_and_activated(&store, 1, PHONE_A, 50, NOW).await;
    let g = generation(&store, 1).await;
    assert_eq!(
        settle(
            &store,
            settlement(&card, g, step(PinKind::First, 100, 1), NOW)
        )
        .await,
        SettleDecision::Accepted(PinKind::First)
    );
    let c = store
        .card_by_pan(hash(1))
        .await
        .expect("card")
        .expect("card");
    assert_eq!((c.drift_first, c.drift_second), (1, 0));
    assert_eq!(
        settle(
            &store,
            settlement(&card, g, step(PinKind::First, 100, 1), NOW + 1)
        )
        .await,
        counted(Reason::Replayed, 1)
    );
    assert_eq!(
        settle(
            &store,
            settlement(&card, g, step(PinKind::First, 99, 0), NOW + 2)
        )
        .await,
        counted(Reason::Replayed, 2)
    );
    // The second PIN's mark is its own.
    assert_eq!(
        settle(
            &store,
            settlement(&card, g, step(PinKind::Second, 100, -1), NOW + 3)
        )
        .await,
        SettleDecision::Accepted(PinKind::Second)
    );
    let c = store
        .card_by_pan(hash(1))
        .await
        .expect("card")
        .expect("card");
    assert_eq!((c.drift_first, c.drift_second), (1, -1));
    assert_eq!(
        settle(
            &store,
            settlement(&card, g, step(PinKind::First, 101, 0), NOW + 4)
        )
        .await,
        SettleDecision::Accepted(PinKind::First)
    );
    // The acceptance reset the consecutive count.
    assert_eq!(
        settle(&store, settlement(&card, g, Spend::Nothing, NOW + 5)).await,
        counted(Reason::WrongCode, 1)
    );
}

/// A mark set under an older seed generation is no mark; a code checked
/// against an older generation is refused uncounted.
pub async fn marks_of_an_older_generation(store: Arc<dyn Store>) {
    let card = enrolled_and_activated(&store, 1, PHONE_A, 50, NOW).await;
    assert_eq!(generation(&store, 1).await, 1);
    assert_eq!(
        settle(
            &store,
            settlement(&card, 1, step(PinKind::First, 500, 0), NOW)
        )
        .await,
        SettleDecision::Accepted(PinKind::First)
    );
    enroll(&store, app_enrollment(1, PHONE_A, 51, NOW + 10)).await;
    activate(&store, PHONE_A, 51, NOW + 11).await;
    assert_eq!(generation(&store, 1).await, 2);
    assert_eq!(
        settle(
            &store,
            settlement(&card, 1, step(PinKind::First, 600, 0), NOW + 12)
        )
        .await,
        SettleDecision::Rejected {
            reason: Reason::WrongCode,
            failure: None
        },
        "checked against the old seed"
    );
    assert_eq!(
        settle(
            &store,
            settlement(&card, 2, step(PinKind::First, 400, 0), NOW + 13)
        )
        .await,
        SettleDecision::Accepted(PinKind::First),
        "the old seed's mark does not hold the new seed"
    );
    assert_eq!(
        settle(
            &store,
            settlement(&card, 2, step(PinKind::First, 400, 0), NOW + 14)
        )
        .await,
        counted(Reason::Replayed, 1),
        "the new mark holds"
    );
}

/// Five consecutive failures block for `lockout_secs`, queue exactly one
/// `card_blocked` notice to the card's phone, and the card answers
/// `Blocked` (nothing counted) until the block ends.
pub async fn five_failures_block_with_one_notice(store: Arc<dyn Store>) {
    let card = enrolled_and_activated(&store, 1, PHONE_A, 50, NOW).await;
    let _ = claim_all(&store, NOW).await;
    for i in 1..5 {
        assert_eq!(
            settle(&store, settlement(&card, 1, Spend::Nothing, NOW + i)).await,
            counted(Reason::WrongCode, i)
        );
    }
    let blocked_at = NOW + 5;
    assert_eq!(
        settle(&store, settlement(&card, 1, Spend::Replayed, blocked_at)).await,
        SettleDecision::Rejected {
            reason: Reason::Replayed,
            failure: Some(FailureSettlement::Block(Block {
                until: blocked_at + 900,
                cause: BlockCause::Consecutive,
                next_until_lifted: false,
            })),
        }
    );
    let c = store
        .card_by_pan(hash(1))
        .await
        .expect("card")
        .expect("card");
    assert_eq!(c.blocked_until, blocked_at + 900);
    for t in [blocked_at + 1, blocked_at + 899] {
        assert_eq!(
            settle(&store, settlement(&card, 1, step(PinKind::First, 9, 0), t)).await,
            SettleDecision::Blocked,
            "a good code while blocked"
        );
    }
    let queued = claim_all(&store, blocked_at + 900).await;
    let summary: Vec<_> = queued.iter().map(|m| (m.to.as_str(), m.kind)).collect();
    assert_eq!(summary, vec![(PHONE_A, NoticeKind::CardBlocked)]);
    assert_eq!(
        serde_json_notice(&queued[0].payload),
        Notice::CardBlocked {
            last4: last4(1),
            minutes: 15
        }
    );
    // The block ended: the count starts afresh.
    assert_eq!(
        settle(
            &store,
            settlement(&card, 1, step(PinKind::First, 9, 0), blocked_at + 900)
        )
        .await,
        SettleDecision::Accepted(PinKind::First)
    );
}

/// Ten failures within the window block although acceptances between
/// them reset the consecutive count (PSD2 RTS Art. 4).
pub async fn failures_within_the_window_block_across_acceptances(store: Arc<dyn Store>) {
    let card = enrolled_and_activated(&store, 1, PHONE_A, 50, NOW).await;
    let mut t = NOW;
    let mut next_step = 1_000u64;
    for round in 0..3 {
        let failures = if round < 2 { 4 } else { 1 };
        for i in 1..=failures {
            t += 60;
            assert_eq!(
                settle(&store, settlement(&card, 1, Spend::Nothing, t)).await,
                counted(Reason::WrongCode, i)
            );
        }
        t += 60;
        next_step += 1;
        assert_eq!(
            settle(
                &store,
                settlement(&card, 1, step(PinKind::Second, next_step, 0), t)
            )
            .await,
            SettleDecision::Accepted(PinKind::Second)
        );
    }
    // Nine failures so far; the tenth within the day blocks.
    t += 60;
    assert_eq!(
        settle(&store, settlement(&card, 1, Spend::Nothing, t)).await,
        SettleDecision::Rejected {
            reason: Reason::WrongCode,
            failure: Some(FailureSettlement::Block(Block {
                until: t + 900,
                cause: BlockCause::Window,
                next_until_lifted: false,
            })),
        }
    );
}

/// Blocks `n` times in a row, each after the previous one ended; returns
/// the decisions of the blocking failures.
async fn block_times(
    store: &Arc<dyn Store>,
    card: &str,
    mut t: i64,
    n: usize,
) -> Vec<SettleDecision> {
    let mut out = Vec::new();
    for _ in 0..n {
        for _ in 0..4 {
            settle(store, settlement(card, 1, Spend::Nothing, t)).await;
            t += 1;
        }
        out.push(settle(store, settlement(card, 1, Spend::Nothing, t)).await);
        t += 901;
    }
    out
}

/// The third block within a day lasts until lifted (the second warns),
/// and survives every later time.
pub async fn third_block_within_a_day_lasts_until_lifted(store: Arc<dyn Store>) {
    let card = enrolled_and_activated(&store, 1, PHONE_A, 50, NOW).await;
    let _ = claim_all(&store, NOW).await;
    let blocks: Vec<Option<Block>> = block_times(&store, &card, NOW, 3)
        .await
        .iter()
        .map(SettleDecision::block)
        .collect();
    let b: Vec<(bool, bool)> = blocks
        .iter()
        .map(|b| {
            let b = b.expect("each fifth failure blocks");
            (b.until_lifted(), b.next_until_lifted)
        })
        .collect();
    assert_eq!(b, vec![(false, false), (false, true), (true, false)]);
    let c = store
        .card_by_pan(hash(1))
        .await
        .expect("card")
        .expect("card");
    assert_eq!(c.blocked_until, BLOCKED_UNTIL_LIFTED);
    assert_eq!(
        settle(
            &store,
            settlement(&card, 1, step(PinKind::First, 5, 0), NOW + 30 * 86_400)
        )
        .await,
        SettleDecision::Blocked
    );
    assert_eq!(
        kinds_to(&store, NOW + 3_000, PHONE_A).await,
        vec![
            NoticeKind::CardBlocked,
            NoticeKind::CardBlockedLastWarning,
            NoticeKind::CardBlockedUntilLifted,
        ]
    );
    // Blocks a day apart do not escalate.
    let other = enrolled_and_activated(&store, 2, PHONE_B, 60, NOW).await;
    for t in [NOW, NOW + 86_401, NOW + 2 * 86_402] {
        let d = block_times(&store, &other, t, 1).await;
        let b = d[0].block().expect("blocks");
        assert!(!b.until_lifted() && !b.next_until_lifted, "block at {t}");
    }
}

fn issue(
    card_id: Option<&str>,
    channel: CodeChannel,
    code: u8,
    phone: &str,
    now: i64,
) -> IssueCode {
    IssueCode {
        channel,
        card_id: card_id.map(str::to_owned),
        subjects: vec![hash(1).to_vec(), phone.as_bytes().to_vec()],
        code_hash: hash(code),
        expires_at: now + 300,
        limits: LIMITS,
        message: card_id.map(|_| sealed(NoticeKind::SmsPin, phone, &[0xD0, code])),
        wait_reply: Some((phone.to_owned(), 2)),
        now,
    }
}

/// A pending one-time code is accepted once and its state becomes
/// `used`; the same code again is refused as replayed.
pub async fn one_time_code_is_spent_once(store: Arc<dyn Store>) {
    let card = enroll(&store, sms_enrollment(1, PHONE_A, NOW))
        .await
        .card_id;
    assert_eq!(
        store
            .issue_one_time_code(issue(Some(&card), CodeChannel::Sms, 70, PHONE_A, NOW))
            .await
            .expect("issue"),
        Issued::Issued
    );
    let codes = store.one_time_codes(&card, NOW - 1).await.expect("codes");
    assert_eq!(codes.len(), 1);
    let code = &codes[0];
    assert_eq!(
        (code.channel, code.code_hash, code.state, code.expires_at),
        (CodeChannel::Sms, hash(70), CodeState::Pending, NOW + 300)
    );
    assert_eq!(
        store.one_time_codes(&card, NOW).await.expect("codes"),
        vec![],
        "only codes created after `since`"
    );
    let spend = Spend::OneTime {
        id: code.id,
        kind: PinKind::Second,
    };
    assert_eq!(
        settle(&store, settlement(&card, 0, spend, NOW + 10)).await,
        SettleDecision::Accepted(PinKind::Second)
    );
    assert_eq!(
        settle(&store, settlement(&card, 0, spend, NOW + 11)).await,
        counted(Reason::Replayed, 1)
    );
    let codes = store.one_time_codes(&card, NOW - 1).await.expect("codes");
    assert_eq!(codes[0].state, CodeState::Used);
    // An expired code is refused as wrong.
    let t = NOW + 120;
    store
        .issue_one_time_code(issue(Some(&card), CodeChannel::Sms, 71, PHONE_A, t))
        .await
        .expect("issue");
    let id = store.one_time_codes(&card, t - 1).await.expect("codes")[0].id;
    assert_eq!(
        settle(
            &store,
            settlement(
                &card,
                0,
                Spend::OneTime {
                    id,
                    kind: PinKind::Second
                },
                t + 300
            )
        )
        .await,
        counted(Reason::WrongCode, 2)
    );
    let sms: Vec<_> = claim_all(&store, t)
        .await
        .into_iter()
        .filter(|m| m.kind == NoticeKind::SmsPin)
        .map(|m| (m.to, m.sealed, m.payload))
        .collect();
    assert_eq!(
        sms,
        vec![
            (PHONE_A.to_owned(), true, vec![0xD0, 70]),
            (PHONE_A.to_owned(), true, vec![0xD0, 71]),
        ]
    );
}

/// An unknown card number's failures are counted by PAN hash and block
/// as a known card's; while blocked nothing is counted.
pub async fn unknown_card_numbers_are_counted_and_blocked(store: Arc<dyn Store>) {
    let pan = hash(99);
    assert_eq!(store.probe_blocked_until(pan).await.expect("probe"), 0);
    for i in 1..5 {
        assert_eq!(
            store
                .settle_unknown(pan, NOW + i, RULES)
                .await
                .expect("settle_unknown"),
            UnknownSettled::Counted
        );
    }
    assert_eq!(
        store
            .settle_unknown(hash(98), NOW + 5, RULES)
            .await
            .expect("settle_unknown"),
        UnknownSettled::Counted,
        "another number has its own count"
    );
    assert_eq!(
        store
            .settle_unknown(pan, NOW + 5, RULES)
            .await
            .expect("settle_unknown"),
        UnknownSettled::BlockedNow
    );
    assert_eq!(
        store.probe_blocked_until(pan).await.expect("probe"),
        NOW + 905
    );
    assert_eq!(
        store
            .settle_unknown(pan, NOW + 904, RULES)
            .await
            .expect("settle_unknown"),
        UnknownSettled::Blocked
    );
    assert_eq!(
        store.probe_blocked_until(pan).await.expect("probe"),
        NOW + 905
    );
    assert_eq!(
        store
            .settle_unknown(pan, NOW + 905, RULES)
            .await
            .expect("settle_unknown"),
        UnknownSettled::Counted,
        "the block ended"
    );
    assert_eq!(store.probe_blocked_until(hash(98)).await.expect("probe"), 0);
    // Probes queue no message: there is no phone to tell.
    assert_eq!(claim_all(&store, NOW + 1_000).await.len(), 0);
}

// ----- one-time codes -------------------------------------------------------

/// Codes go at most a minute apart and five an hour per subject; when
/// limited nothing is stored, and a "please wait" reply is queued only
/// within the reply limit.
pub async fn one_time_codes_are_rate_limited(store: Arc<dyn Store>) {
    let card = enroll(&store, sms_enrollment(1, PHONE_A, NOW))
        .await
        .card_id;
    let _ = claim_all(&store, NOW).await;
    let issue_at = |code: u8, t: i64| issue(Some(&card), CodeChannel::Sms, code, PHONE_A, t);
    assert_eq!(
        store
            .issue_one_time_code(issue_at(1, NOW))
            .await
            .expect("issue"),
        Issued::Issued
    );
    let limited = |secs: u64, told: bool| Issued::Limited {
        retry_after_secs: secs,
        told_to_wait: told,
    };
    assert_eq!(
        store
            .issue_one_time_code(issue_at(2, NOW + 10))
            .await
            .expect("issue"),
        limited(50, true)
    );
    assert_eq!(
        store
            .issue_one_time_code(issue_at(3, NOW + 20))
            .await
            .expect("issue"),
        limited(40, true)
    );
    assert_eq!(
        store
            .issue_one_time_code(issue_at(4, NOW + 30))
            .await
            .expect("issue"),
        limited(30, false),
        "past the reply limit: no more wait replies"
    );
    let codes = store.one_time_codes(&card, NOW - 1).await.expect("codes");
    assert_eq!(codes.len(), 1, "limited requests store nothing");
    let queued = claim_all(&store, NOW + 30).await;
    let kinds: Vec<_> = queued.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        vec![NoticeKind::SmsPin, NoticeKind::SmsWait, NoticeKind::SmsWait]
    );
    assert_eq!(
        serde_json_notice(&queued[1].payload),
        Notice::SmsWait { seconds: 50 }
    );
    // Four more a minute apart make five this hour; the sixth waits for
    // the first to leave the hour.
    for i in 1..5 {
        assert_eq!(
            store
                .issue_one_time_code(issue_at(10 + i as u8, NOW + 60 * i))
                .await
                .expect("issue"),
            Issued::Issued,
            "code {i}"
        );
    }
    let t = NOW + 300;
    let Issued::Limited {
        retry_after_secs, ..
    } = store
        .issue_one_time_code(issue_at(20, t))
        .await
        .expect("issue")
    else {
        panic!("the sixth code in an hour is limited");
    };
    assert_eq!(retry_after_secs, 3_300);
    assert_eq!(
        store
            .issue_one_time_code(issue_at(21, NOW + 3_600))
            .await
            .expect("issue"),
        Issued::Issued,
        "the first left the hour"
    );
    // Other subjects are not limited by these sends.
    let mut other = issue(None, CodeChannel::Harim, 30, PHONE_B, NOW + 3_601);
    other.subjects = vec![hash(2).to_vec()];
    other.wait_reply = None;
    assert_eq!(
        store.issue_one_time_code(other).await.expect("issue"),
        Issued::Issued
    );
    // An unknown card number (Harim) is counted, never stored or sent.
    let mut again = issue(None, CodeChannel::Harim, 31, PHONE_B, NOW + 3_605);
    again.subjects = vec![hash(2).to_vec()];
    again.wait_reply = None;
    assert_eq!(
        store.issue_one_time_code(again).await.expect("issue"),
        limited(56, false)
    );
    let harim: Vec<_> = claim_all(&store, NOW + 4_000)
        .await
        .into_iter()
        .filter(|m| m.to == PHONE_B)
        .collect();
    assert_eq!(harim.len(), 0);
}

/// A new code supersedes the card's pending codes of its channel only.
pub async fn one_time_codes_supersede_pending_ones(store: Arc<dyn Store>) {
    let card = enroll(&store, sms_enrollment(1, PHONE_A, NOW))
        .await
        .card_id;
    let mut harim = issue(Some(&card), CodeChannel::Harim, 40, PHONE_A, NOW);
    harim.subjects = vec![b"harim-subject".to_vec()];
    assert_eq!(
        store.issue_one_time_code(harim).await.expect("issue"),
        Issued::Issued
    );
    for (code, t) in [(41, NOW + 1), (42, NOW + 100)] {
        assert_eq!(
            store
                .issue_one_time_code(issue(Some(&card), CodeChannel::Sms, code, PHONE_A, t))
                .await
                .expect("issue"),
            Issued::Issued
        );
    }
    let mut codes = store.one_time_codes(&card, 0).await.expect("codes");
    codes.sort_by_key(|c| c.id);
    let states: Vec<_> = codes
        .iter()
        .map(|c| (c.code_hash, c.channel, c.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (hash(40), CodeChannel::Harim, CodeState::Pending),
            (hash(41), CodeChannel::Sms, CodeState::Superseded),
            (hash(42), CodeChannel::Sms, CodeState::Pending),
        ]
    );
    assert_eq!(
        settle(
            &store,
            settlement(
                &card,
                0,
                Spend::OneTime {
                    id: codes[1].id,
                    kind: PinKind::Second
                },
                NOW + 101
            )
        )
        .await,
        counted(Reason::WrongCode, 1),
        "a superseded code is refused"
    );
    assert_eq!(
        settle(
            &store,
            settlement(
                &card,
                0,
                Spend::OneTime {
                    id: codes[0].id,
                    kind: PinKind::Transaction
                },
                NOW + 102
            )
        )
        .await,
        SettleDecision::Accepted(PinKind::Transaction)
    );
}

/// Replies without a code are queued within the phone's hourly limit and
/// refused (nothing queued) past it.
pub async fn replies_without_code_are_limited(store: Arc<dyn Store>) {
    let help = |phone: &str| {
        plain(
            Notice::SmsHelp {
                short_code: "30003303".into(),
            },
            phone,
        )
    };
    for i in 0..3 {
        assert!(
            store
                .reply_without_code(PHONE_A, NOW + i, 3, help(PHONE_A))
                .await
                .expect("reply"),
            "reply {i}"
        );
    }
    assert!(
        !store
            .reply_without_code(PHONE_A, NOW + 10, 3, help(PHONE_A))
            .await
            .expect("reply")
    );
    assert!(
        store
            .reply_without_code(PHONE_B, NOW + 10, 3, help(PHONE_B))
            .await
            .expect("reply"),
        "another phone has its own limit"
    );
    assert!(
        store
            .reply_without_code(PHONE_A, NOW + 3_600, 3, help(PHONE_A))
            .await
            .expect("reply"),
        "the first reply left the hour"
    );
    let queued = claim_all(&store, NOW + 3_600).await;
    let to: Vec<_> = queued.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(to, vec![PHONE_A, PHONE_A, PHONE_A, PHONE_B, PHONE_A]);
    assert!(queued.iter().all(|m| m.kind == NoticeKind::SmsHelp));
}

// ----- operations -------------------------------------------------------------

/// Unblocking a known card lifts its block (even until-lifted) and
/// forgets its failures; an unknown number answers `None` and its probe
/// block is lifted all the same.
pub async fn unblock_known_and_unknown(store: Arc<dyn Store>) {
    let card = enrolled_and_activated(&store, 1, PHONE_A, 50, NOW).await;
    let blocks = block_times(&store, &card, NOW, 3).await;
    assert!(blocks[2].block().expect("blocked").until_lifted());
    let t = NOW + 10_000;
    let u = store
        .unblock(hash(1), t)
        .await
        .expect("unblock")
        .expect("known");
    assert_eq!((u.card_id.as_str(), u.was_blocked), (card.as_str(), true));
    let c = store
        .card_by_pan(hash(1))
        .await
        .expect("card")
        .expect("card");
    assert!(c.blocked_until <= t);
    assert_eq!(
        settle(&store, settlement(&card, 1, Spend::Nothing, t + 1)).await,
        counted(Reason::WrongCode, 1),
        "failures were forgotten"
    );
    // The escalation was forgotten too: the next block is a first one.
    for i in 2..5 {
        assert_eq!(
            settle(&store, settlement(&card, 1, Spend::Nothing, t + i)).await,
            counted(Reason::WrongCode, i)
        );
    }
    let next = settle(&store, settlement(&card, 1, Spend::Nothing, t + 5)).await;
    let b = next.block().expect("the fifth failure blocks");
    assert!(!b.until_lifted() && !b.next_until_lifted, "{b:?}");
    let u = store
        .unblock(hash(1), t + 10)
        .await
        .expect("unblock")
        .expect("known");
    assert!(u.was_blocked);
    let u = store
        .unblock(hash(1), t + 11)
        .await
        .expect("unblock")
        .expect("known");
    assert!(!u.was_blocked, "not blocked any more");
    // An unknown card number.
    for i in 0..5 {
        store
            .settle_unknown(hash(99), NOW + i, RULES)
            .await
            .expect("settle_unknown");
    }
    assert_eq!(
        store.probe_blocked_until(hash(99)).await.expect("probe"),
        NOW + 904
    );
    assert_eq!(
        store.unblock(hash(99), NOW + 10).await.expect("unblock"),
        None
    );
    assert_eq!(store.probe_blocked_until(hash(99)).await.expect("probe"), 0);
    assert_eq!(
        store
            .settle_unknown(hash(99), NOW + 11, RULES)
            .await
            .expect("settle_unknown"),
        UnknownSettled::Counted
    );
}

/// A merchant `PUT` creates, then renames keeping `created_at`.
pub async fn merchants_created_then_updated(store: Arc<dyn Store>) {
    assert_eq!(store.merchant("shop-1").await.expect("merchant"), None);
    let (stored, m) = store
        .put_merchant("shop-1", "کتاب‌فروشی", NOW)
        .await
        .expect("put");
    assert_eq!(stored, Stored::Created);
    let now = u64::try_from(NOW).unwrap_or(0);
    assert_eq!(
        (
            m.payee_id.as_str(),
            m.name.as_str(),
            m.created_at,
            m.updated_at
        ),
        ("shop-1", "کتاب‌فروشی", now, now)
    );
    let (stored, m) = store
        .put_merchant("shop-1", "Book Shop", NOW + 60)
        .await
        .expect("put");
    assert_eq!(stored, Stored::Updated);
    assert_eq!(
        (m.name.as_str(), m.created_at, m.updated_at),
        ("Book Shop", now, now + 60)
    );
    assert_eq!(store.merchant("shop-1").await.expect("merchant"), Some(m));
    assert_eq!(store.merchant("shop-2").await.expect("merchant"), None);
}

// ----- the SMS outbox -----------------------------------------------------------

async fn queue_help(store: &Arc<dyn Store>, to: &str, at: i64) {
    let m = plain(
        Notice::SmsHelp {
            short_code: "30003303".into(),
        },
        to,
    );
    assert!(
        store
            .reply_without_code(to, at, 1_000, m)
            .await
            .expect("queue")
    );
}

/// Messages are claimed oldest first, at most `limit`; a claimed message
/// is not claimed again before its lease ends, and is after.
pub async fn outbox_claims_oldest_first_under_a_lease(store: Arc<dyn Store>) {
    for i in 0..3 {
        queue_help(&store, PHONE_A, NOW + i).await;
    }
    assert_eq!(
        store.outbox_counts().await.expect("counts"),
        OutboxCounts {
            pending: 3,
            failed: 0
        }
    );
    assert_eq!(
        store
            .claim_messages(NOW - 1, 10, 60)
            .await
            .expect("claim")
            .len(),
        0,
        "not due before it was queued"
    );
    let first = store.claim_messages(NOW + 5, 2, 60).await.expect("claim");
    let created: Vec<_> = first.iter().map(|m| m.created_at).collect();
    assert_eq!(created, vec![NOW, NOW + 1]);
    assert!(first[0].id < first[1].id);
    let second = store.claim_messages(NOW + 6, 10, 60).await.expect("claim");
    assert_eq!(
        second.iter().map(|m| m.created_at).collect::<Vec<_>>(),
        vec![NOW + 2]
    );
    assert_eq!(
        store
            .claim_messages(NOW + 64, 10, 60)
            .await
            .expect("claim")
            .len(),
        0
    );
    assert_eq!(
        store.outbox_counts().await.expect("counts").pending,
        3,
        "claimed messages still wait"
    );
    let again = store.claim_messages(NOW + 65, 10, 60).await.expect("claim");
    assert_eq!(
        again.iter().map(|m| m.id).collect::<Vec<_>>(),
        first.iter().map(|m| m.id).collect::<Vec<_>>(),
        "an expired lease frees the message"
    );
    assert_eq!(
        again
            .iter()
            .map(|m| (&m.message_id, m.attempts))
            .collect::<Vec<_>>(),
        first.iter().map(|m| (&m.message_id, 0)).collect::<Vec<_>>()
    );
}

/// A delivered message is never claimed again and no longer waits.
pub async fn outbox_delivered_is_never_claimed_again(store: Arc<dyn Store>) {
    queue_help(&store, PHONE_A, NOW).await;
    queue_help(&store, PHONE_B, NOW).await;
    let claimed = store.claim_messages(NOW, 10, 60).await.expect("claim");
    store
        .message_delivered(claimed[0].id, NOW + 1, Some("gw-1".into()))
        .await
        .expect("delivered");
    store
        .message_delivered(claimed[1].id, NOW + 1, None)
        .await
        .expect("delivered");
    assert_eq!(
        store.outbox_counts().await.expect("counts"),
        OutboxCounts {
            pending: 0,
            failed: 0
        }
    );
    for t in [NOW + 61, NOW + 86_000] {
        assert_eq!(
            store.claim_messages(t, 10, 60).await.expect("claim").len(),
            0
        );
    }
}

/// Delivery reports are recorded against the message they name, in order;
/// a report for no message of the outbox is recorded nowhere (`false`),
/// and a message's reports go when it is pruned.
pub async fn delivery_reports_are_kept_with_their_message(store: Arc<dyn Store>) {
    use pooya_issuer_service::store::DeliveryReport;
    queue_help(&store, PHONE_A, NOW).await;
    queue_help(&store, PHONE_B, NOW).await;
    let claimed = store.claim_messages(NOW, 10, 60).await.expect("claim");
    let (a, b) = (claimed[0].message_id.clone(), claimed[1].message_id.clone());
    store
        .message_delivered(claimed[0].id, NOW + 1, None)
        .await
        .expect("delivered");
    for (report, at) in [
        (DeliveryReport::SmscSubmitted, NOW + 1),
        (DeliveryReport::Buffered, NOW + 2),
        (DeliveryReport::Delivered, NOW + 3),
    ] {
        assert!(
            store
                .record_delivery_report(&a, report, at)
                .await
                .expect("report")
        );
    }
    assert!(
        !store
            .record_delivery_report(
                "msg_00000000000000000000000000000000",
                DeliveryReport::Delivered,
                NOW
            )
            .await
            .expect("report")
    );
    assert_eq!(
        store.delivery_reports(&a).await.expect("reports"),
        vec![
            (DeliveryReport::SmscSubmitted, NOW + 1),
            (DeliveryReport::Buffered, NOW + 2),
            (DeliveryReport::Delivered, NOW + 3),
        ]
    );
    assert_eq!(store.delivery_reports(&b).await.expect("reports"), vec![]);
    assert_eq!(
        store
            .delivery_reports("msg_00000000000000000000000000000000")
            .await
            .expect("reports"),
        vec![]
    );
    // A report does not change the message's delivery state.
    assert_eq!(store.outbox_counts().await.expect("counts").pending, 1);
    // Pruned with its message: later reports for it are unknown.
    store.prune(NOW + 3 * 86_400).await.expect("prune");
    assert_eq!(store.delivery_reports(&a).await.expect("reports"), vec![]);
    assert!(
        !store
            .record_delivery_report(&a, DeliveryReport::Delivered, NOW + 3 * 86_400)
            .await
            .expect("report")
    );
}

/// A failed attempt with `retry_at` reappears only at that time with one
/// more attempt; given up (`None`) it is never claimed and counted failed.
pub async fn outbox_failed_is_retried_then_given_up(store: Arc<dyn Store>) {
    queue_help(&store, PHONE_A, NOW).await;
    let m = store
        .claim_messages(NOW, 10, 60)
        .await
        .expect("claim")
        .remove(0);
    store
        .message_failed(m.id, Some(NOW + 100), "gateway timeout")
        .await
        .expect("failed");
    assert_eq!(store.outbox_counts().await.expect("counts").pending, 1);
    assert_eq!(
        store
            .claim_messages(NOW + 99, 10, 60)
            .await
            .expect("claim")
            .len(),
        0
    );
    let retried = store
        .claim_messages(NOW + 100, 10, 60)
        .await
        .expect("claim");
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].id, retried[0].attempts), (m.id, 1));
    assert_eq!(retried[0].payload, m.payload);
    store
        .message_failed(m.id, None, "gave up")
        .await
        .expect("failed");
    assert_eq!(
        store.outbox_counts().await.expect("counts"),
        OutboxCounts {
            pending: 0,
            failed: 1
        }
    );
    assert_eq!(
        store
            .claim_messages(NOW + 86_000, 10, 60)
            .await
            .expect("claim")
            .len(),
        0
    );
}

/// The development recorder's messages come back oldest first, the newest
/// `limit`, for one phone or all.
pub async fn dev_sms_round_trip(store: Arc<dyn Store>) {
    let row = |to: &str, n: u8| DevSms {
        to: to.to_owned(),
        from: "30003303".into(),
        body_sealed: vec![0xB0, n],
        created_at: NOW + i64::from(n),
    };
    assert_eq!(store.dev_sms(None, 10).await.expect("dev_sms"), vec![]);
    for (to, n) in [(PHONE_A, 1), (PHONE_B, 2), (PHONE_A, 3), (PHONE_A, 4)] {
        store.record_dev_sms(row(to, n)).await.expect("record");
    }
    assert_eq!(
        store.dev_sms(Some(PHONE_A), 2).await.expect("dev_sms"),
        vec![row(PHONE_A, 3), row(PHONE_A, 4)]
    );
    assert_eq!(
        store.dev_sms(None, 10).await.expect("dev_sms"),
        vec![
            row(PHONE_A, 1),
            row(PHONE_B, 2),
            row(PHONE_A, 3),
            row(PHONE_A, 4)
        ]
    );
    assert_eq!(
        store.dev_sms(Some(PHONE_B), 10).await.expect("dev_sms"),
        vec![row(PHONE_B, 2)]
    );
    assert_eq!(
        store
            .dev_sms(Some("+989120000000"), 10)
            .await
            .expect("dev_sms"),
        vec![]
    );
}

// ----- health and housekeeping ------------------------------------------------

/// `prune` keeps what a rule still looks at (waiting messages however
/// old, live codes, blocks, the hour's sends, the escalation day, an
/// activation budget in use) and removes old codes and messages given up
/// long ago.
pub async fn prune_removes_old_rows_and_keeps_live_state(store: Arc<dyn Store>) {
    let day = 86_400;
    // Two old messages: one given up, one still waiting.
    queue_help(&store, PHONE_B, NOW).await;
    queue_help(&store, PHONE_B, NOW).await;
    let first = store.claim_messages(NOW, 1, 60).await.expect("claim");
    store
        .message_failed(first[0].id, None, "gave up")
        .await
        .expect("failed");
    // A card blocked until lifted; a card with a code sent now.
    let blocked = enrolled_and_activated(&store, 1, PHONE_A, 50, NOW).await;
    block_times(&store, &blocked, NOW, 3).await;
    let card = enroll(&store, sms_enrollment(2, PHONE_B, NOW))
        .await
        .card_id;
    let mut old_code = issue(Some(&card), CodeChannel::Sms, 80, PHONE_B, NOW);
    old_code.subjects = vec![b"s-old".to_vec()];
    store.issue_one_time_code(old_code).await.expect("issue");
    // A phone halfway through its activation budget.
    enroll(&store, app_enrollment(3, PHONE_A, 52, NOW + 3 * day)).await;
    for i in 0..2 {
        store
            .count_activation_failure(PHONE_A, NOW + 3 * day + i, MAX_ACTIVATION_FAILURES)
            .await
            .expect("count");
    }
    // A fresh code and a send within the hour.
    let t = NOW + 3 * day + 10;
    let mut fresh = issue(Some(&card), CodeChannel::Harim, 81, PHONE_B, t);
    fresh.subjects = vec![b"s-new".to_vec()];
    store.issue_one_time_code(fresh).await.expect("issue");
    let counts = store.outbox_counts().await.expect("counts");
    assert_eq!(counts.failed, 1);
    let pending_before = counts.pending;

    store.prune(t + 30).await.expect("prune");

    let codes = store.one_time_codes(&card, 0).await.expect("codes");
    assert_eq!(
        codes.iter().map(|c| c.code_hash).collect::<Vec<_>>(),
        vec![hash(81)],
        "the code expired days ago is gone, the live one stays"
    );
    let counts = store.outbox_counts().await.expect("counts");
    assert_eq!(
        counts,
        OutboxCounts {
            pending: pending_before,
            failed: 0
        },
        "waiting messages stay; the one given up days ago goes"
    );
    let c = store
        .card_by_pan(hash(1))
        .await
        .expect("card")
        .expect("card");
    assert_eq!(
        c.blocked_until, BLOCKED_UNTIL_LIFTED,
        "a block until lifted stays"
    );
    let l = store
        .activation_lookup(PHONE_A, hash(52), t + 30)
        .await
        .expect("lookup");
    assert_eq!(
        (l.live_code, l.failures),
        (true, 2),
        "the budget in use stays"
    );
    let mut again = issue(Some(&card), CodeChannel::Harim, 82, PHONE_B, t + 40);
    again.subjects = vec![b"s-new".to_vec()];
    again.wait_reply = None;
    assert_eq!(
        store.issue_one_time_code(again).await.expect("issue"),
        Issued::Limited {
            retry_after_secs: 20,
            told_to_wait: false
        },
        "the hour's sends stay"
    );
    // The escalation day stays: a card blocked once, pruned, blocked
    // again warns that the next block lasts.
    let other = enrolled_and_activated(&store, 4, PHONE_B, 53, t).await;
    block_times(&store, &other, t, 1).await;
    store.prune(t + 2_000).await.expect("prune");
    let second = block_times(&store, &other, t + 2_000, 1).await;
    assert!(second[0].block().expect("blocked").next_until_lifted);
}

/// An unknown card number's block until lifted (the third within a
/// day) lasts until an ops unblock, however long the number stays idle:
/// `prune` removes only what no rule looks at, and
/// `probe_blocked_until` still looks at this.
pub async fn prune_keeps_an_unknown_numbers_lasting_block(store: Arc<dyn Store>) {
    let pan = hash(99);
    let mut t = NOW;
    for _ in 0..3 {
        for _ in 0..5 {
            store
                .settle_unknown(pan, t, RULES)
                .await
                .expect("settle_unknown");
            t += 1;
        }
        t += 901;
    }
    assert_eq!(
        store.probe_blocked_until(pan).await.expect("probe"),
        BLOCKED_UNTIL_LIFTED
    );
    let later = NOW + 90 * 86_400;
    store.prune(later).await.expect("prune");
    assert_eq!(
        store.probe_blocked_until(pan).await.expect("probe"),
        BLOCKED_UNTIL_LIFTED,
        "prune lifted a block that lasts until an ops unblock"
    );
    assert_eq!(
        store
            .settle_unknown(pan, later + 1, RULES)
            .await
            .expect("settle_unknown"),
        UnknownSettled::Blocked
    );
}

/// The store answers and takes writes.
pub async fn health_is_ok(store: Arc<dyn Store>) {
    store.health().await.expect("health");
    store.prune(NOW).await.expect("prune of an empty store");
    store.health().await.expect("health");
    let _: Vec<(&str, &str, u64)> = store.stats();
}

// ----- concurrency --------------------------------------------------------------

const CONCURRENT: usize = 32;

async fn spawn_all<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, IssuerError>> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.expect("task").expect("store call"));
    }
    out
}

/// Concurrent settlements of one valid step: exactly one is accepted, the
/// others are counted replays.
pub async fn concurrent_settlements_of_one_step_accept_once(store: Arc<dyn Store>) {
    let card = enrolled_and_activated(&store, 1, PHONE_A, 50, NOW).await;
    let decisions = spawn_all(CONCURRENT, |_| {
        let (store, card) = (Arc::clone(&store), card.clone());
        async move {
            store
                .settle_verification(Settlement {
                    rules: LENIENT,
                    ..settlement(&card, 1, step(PinKind::First, 777, 0), NOW + 1)
                })
                .await
        }
    })
    .await;
    let accepted = decisions
        .iter()
        .filter(|d| **d == SettleDecision::Accepted(PinKind::First))
        .count();
    assert_eq!(accepted, 1, "{decisions:?}");
    let mut counts: Vec<i64> = decisions
        .iter()
        .filter_map(|d| match d {
            SettleDecision::Rejected {
                reason: Reason::Replayed,
                failure: Some(FailureSettlement::Count { consecutive }),
            } => Some(*consecutive),
            _ => None,
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..CONCURRENT as i64).collect::<Vec<_>>(),
        "{decisions:?}"
    );
}

/// Concurrent spends of one one-time code: exactly one is accepted.
pub async fn concurrent_spends_of_one_code_accept_once(store: Arc<dyn Store>) {
    let card = enroll(&store, sms_enrollment(1, PHONE_A, NOW))
        .await
        .card_id;
    store
        .issue_one_time_code(issue(Some(&card), CodeChannel::Sms, 70, PHONE_A, NOW))
        .await
        .expect("issue");
    let id = store.one_time_codes(&card, 0).await.expect("codes")[0].id;
    let decisions = spawn_all(CONCURRENT, |_| {
        let (store, card) = (Arc::clone(&store), card.clone());
        async move {
            store
                .settle_verification(Settlement {
                    rules: LENIENT,
                    ..settlement(
                        &card,
                        0,
                        Spend::OneTime {
                            id,
                            kind: PinKind::Second,
                        },
                        NOW + 1,
                    )
                })
                .await
        }
    })
    .await;
    let accepted = decisions
        .iter()
        .filter(|d| **d == SettleDecision::Accepted(PinKind::Second))
        .count();
    let replayed = decisions
        .iter()
        .filter(|d| {
            matches!(
                d,
                SettleDecision::Rejected {
                    reason: Reason::Replayed,
                    ..
                }
            )
        })
        .count();
    assert_eq!((accepted, replayed), (1, CONCURRENT - 1), "{decisions:?}");
}

/// Concurrent wrong codes: exactly four counted, one block with one
/// notice, the rest answered blocked.
pub async fn concurrent_failures_block_once(store: Arc<dyn Store>) {
    let card = enrolled_and_activated(&store, 1, PHONE_A, 50, NOW).await;
    let _ = claim_all(&store, NOW).await;
    let decisions = spawn_all(CONCURRENT, |_| {
        let (store, card) = (Arc::clone(&store), card.clone());
        async move {
            store
                .settle_verification(settlement(&card, 1, Spend::Nothing, NOW + 1))
                .await
        }
    })
    .await;
    let blocks = decisions.iter().filter(|d| d.block().is_some()).count();
    let blocked = decisions
        .iter()
        .filter(|d| **d == SettleDecision::Blocked)
        .count();
    let mut counts: Vec<i64> = decisions
        .iter()
        .filter_map(|d| match d {
            SettleDecision::Rejected {
                failure: Some(FailureSettlement::Count { consecutive }),
                ..
            } => Some(*consecutive),
            _ => None,
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(
        (counts, blocks, blocked),
        (vec![1, 2, 3, 4], 1, CONCURRENT - 5),
        "{decisions:?}"
    );
    assert_eq!(
        kinds_to(&store, NOW + 1, PHONE_A).await,
        vec![NoticeKind::CardBlocked],
        "exactly one block notice"
    );
}

/// Concurrent wrong activation guesses: exactly one burns the budget.
pub async fn concurrent_activation_failures_burn_once(store: Arc<dyn Store>) {
    enroll(&store, app_enrollment(1, PHONE_A, 50, NOW)).await;
    let results = spawn_all(CONCURRENT, |i| {
        let store = Arc::clone(&store);
        async move {
            store
                .count_activation_failure(PHONE_A, NOW + 1 + i as i64 % 3, MAX_ACTIVATION_FAILURES)
                .await
        }
    })
    .await;
    let n = |want: ActivationFailure| results.iter().filter(|r| **r == want).count();
    let max = MAX_ACTIVATION_FAILURES as usize;
    assert_eq!(
        (
            n(ActivationFailure::Counted),
            n(ActivationFailure::Burned),
            n(ActivationFailure::OverBudget)
        ),
        (max - 1, 1, CONCURRENT - max),
        "{results:?}"
    );
}

/// Concurrent claimers never get the same message, and together get all.
pub async fn concurrent_claims_never_share_a_message(store: Arc<dyn Store>) {
    for i in 0..40 {
        queue_help(&store, PHONE_A, NOW + i % 4).await;
    }
    let claims = spawn_all(8, |_| {
        let store = Arc::clone(&store);
        async move { store.claim_messages(NOW + 10, 7, 60).await }
    })
    .await;
    let mut ids: Vec<i64> = claims.iter().flatten().map(|m| m.id).collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "a message was claimed twice");
    assert_eq!(total, 40);
    for c in &claims {
        assert!(c.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    }
}

// ----- key rotation -------------------------------------------------------------

/// Rotation's view of the store: every sealed value of each kind, in
/// row-key order and pages, with the context it was sealed with; what is
/// wiped or not sealed is left out; a replacement happens only over the
/// value read (compare and swap); `set_meta` overwrites.
pub async fn sealed_values_page_and_replace_by_compare_and_swap(store: Arc<dyn Store>) {
    let all = |kind: SealedKind| {
        let store = Arc::clone(&store);
        async move {
            store
                .sealed_values(kind, "", 100)
                .await
                .expect("sealed_values")
        }
    };
    store
        .put_meta_once(vec![("key_canary", vec![0xCA, 1])], "test", NOW)
        .await
        .expect("put_meta_once");
    enroll(&store, app_enrollment(1, PHONE_A, 50, NOW)).await;
    enroll(&store, app_enrollment(2, PHONE_B, 51, NOW)).await;
    activate(&store, PHONE_A, 50, NOW).await;
    for n in [1u8, 2] {
        store
            .record_dev_sms(DevSms {
                to: if n == 1 { PHONE_A } else { PHONE_B }.to_owned(),
                from: "30003303".into(),
                body_sealed: vec![0xB0, n],
                created_at: NOW,
            })
            .await
            .expect("record_dev_sms");
    }

    let meta = all(SealedKind::Meta).await;
    let canary = meta.iter().find(|v| v.key == "key_canary").expect("canary");
    assert_eq!(
        (canary.context.as_slice(), canary.sealed.as_slice()),
        (&b""[..], &[0xCA, 1][..])
    );

    let pans = all(SealedKind::CardPan).await;
    let rows: Vec<(&str, &[u8], &[u8])> = pans
        .iter()
        .map(|v| (v.key.as_str(), v.context.as_slice(), v.sealed.as_slice()))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("card_1_50", &b"card_1_50"[..], &[0xA0, 1, 50][..]),
            ("card_2_51", &b"card_2_51"[..], &[0xA0, 2, 51][..]),
        ]
    );
    // Pages of one, by row key.
    let p1 = store
        .sealed_values(SealedKind::CardPan, "", 1)
        .await
        .expect("page");
    assert_eq!(p1.len(), 1);
    assert_eq!(p1[0].key, "card_1_50");
    let p2 = store
        .sealed_values(SealedKind::CardPan, &p1[0].key, 1)
        .await
        .expect("page");
    assert_eq!(
        p2.iter().map(|v| v.key.as_str()).collect::<Vec<_>>(),
        vec!["card_2_51"]
    );
    assert!(
        store
            .sealed_values(SealedKind::CardPan, "card_2_51", 1)
            .await
            .expect("page")
            .is_empty()
    );

    // Only the activated card has keys.
    let keys = all(SealedKind::CardKeys).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].key.as_str(), keys[0].sealed.as_slice()),
        ("card_1_50", &[0x5E, 50][..])
    );

    // The two sealed activation-code messages (the activation notice is
    // plain); the context is the message id.
    let out = all(SealedKind::OutboxPayload).await;
    let sealed: Vec<&[u8]> = out.iter().map(|v| v.sealed.as_slice()).collect();
    assert_eq!(sealed, vec![&[0xC0, 1, 50][..], &[0xC0, 2, 51][..]]);
    let after_first = store
        .sealed_values(SealedKind::OutboxPayload, &out[0].key, 100)
        .await
        .expect("page");
    assert_eq!(after_first, vec![out[1].clone()]);
    let claimed = claim_all(&store, NOW).await;
    for v in &out {
        assert!(
            claimed
                .iter()
                .any(|q| q.message_id.as_bytes() == v.context.as_slice()),
            "the context of an outbox payload is its message id"
        );
    }
    let first: i64 = out[0].key.parse().expect("an outbox row key is a row id");
    let second: i64 = out[1].key.parse().expect("an outbox row key is a row id");
    assert!(first < second);
    // claim_all recorded every message delivered: payloads are wiped, so
    // nothing is left to reseal.
    assert!(all(SealedKind::OutboxPayload).await.is_empty());

    let dev = all(SealedKind::DevSmsBody).await;
    let rows: Vec<(&[u8], &[u8])> = dev
        .iter()
        .map(|v| (v.context.as_slice(), v.sealed.as_slice()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (PHONE_A.as_bytes(), &[0xB0, 1][..]),
            (PHONE_B.as_bytes(), &[0xB0, 2][..])
        ]
    );

    // Compare and swap, for every kind that has a value.
    for (kind, v) in [
        (SealedKind::Meta, canary.clone()),
        (SealedKind::CardPan, pans[0].clone()),
        (SealedKind::CardKeys, keys[0].clone()),
        (SealedKind::DevSmsBody, dev[1].clone()),
    ] {
        assert!(
            !store
                .replace_sealed(kind, &v.key, &[0xEE], &[0xFF, 1])
                .await
                .expect("replace_sealed"),
            "{kind:?}: a value that changed is not replaced"
        );
        assert!(
            store
                .replace_sealed(kind, &v.key, &v.sealed, &[0xFF, 2])
                .await
                .expect("replace_sealed"),
            "{kind:?}"
        );
        let now = all(kind).await;
        let got = now.iter().find(|x| x.key == v.key).expect("still there");
        assert_eq!(got.sealed, vec![0xFF, 2], "{kind:?}");
        assert!(
            !store
                .replace_sealed(kind, &v.key, &v.sealed, &[0xFF, 3])
                .await
                .expect("replace_sealed"),
            "{kind:?}: a second swap over the old value does nothing"
        );
    }
    assert_eq!(
        store
            .card_by_pan(hash(1))
            .await
            .expect("card_by_pan")
            .expect("card")
            .seed_sealed,
        Some(vec![0xFF, 2]),
        "the card's keys are what verification reads"
    );
    assert!(
        !store
            .replace_sealed(SealedKind::CardPan, "no_such_card", &[0xA0], &[0xFF])
            .await
            .expect("replace_sealed")
    );

    store
        .set_meta("master_key_version", vec![0, 0, 0, 2], "test", NOW)
        .await
        .expect("set_meta");
    store
        .set_meta("master_key_version", vec![0, 0, 0, 3], "test", NOW)
        .await
        .expect("set_meta");
    assert_eq!(
        store.meta("master_key_version").await.expect("meta"),
        Some(vec![0, 0, 0, 3])
    );
}
