//! Fixed times, rules and builders of the cases.

use std::sync::Arc;

use pooya_issuer_service::Store;
use pooya_issuer_service::outbox::{NewSms, Notice, NoticeKind, new_message_id};
use pooya_issuer_service::rules::{Lockout, OtpLimits};
use pooya_issuer_service::store::{
    ActivationWrite, Enrolled, Enrollment, Hash, NewActivationCode, QueuedSms,
};

/// The cases' "now": 2027-01-15, Unix seconds.
pub const NOW: i64 = 1_800_000_000;

/// The lockout rules of the cases: the defaults of docs/issuer.md
/// ("Failure window"): 5 in a row, 15 minutes, 10 within a day.
pub const RULES: Lockout = Lockout {
    max_failures: 5,
    lockout_secs: 900,
    window_max: 10,
    window_secs: 24 * 3600,
};

/// Rules under which no failure blocks (the concurrency cases count
/// replays without reaching a block).
pub(crate) const LENIENT: Lockout = Lockout {
    max_failures: 1_000,
    lockout_secs: 900,
    window_max: 1_000,
    window_secs: 24 * 3600,
};

/// One-time code limits of the cases: a minute apart, five an hour.
pub(crate) const LIMITS: OtpLimits = OtpLimits {
    min_interval: 60,
    per_hour: 5,
};

/// The activation budget of the cases.
pub(crate) const MAX_ACTIVATION_FAILURES: u32 = 5;

pub(crate) const PHONE_A: &str = "+989121111111";
pub(crate) const PHONE_B: &str = "+989122222222";

/// A distinct keyed hash per `n`.
pub(crate) fn hash(n: u8) -> Hash {
    let mut h = [0x5a; 32];
    h[0] = n;
    h[31] = n.wrapping_mul(7);
    h
}

pub(crate) fn last4(pan: u8) -> String {
    format!("{:04}", 6000 + u16::from(pan))
}

/// A notice that holds no code, as a message.
pub(crate) fn plain(notice: Notice, to: &str) -> NewSms {
    notice.plain_to(to).expect("a plain notice")
}

/// A message the store must treat as opaque sealed bytes.
pub(crate) fn sealed(kind: NoticeKind, to: &str, payload: &[u8]) -> NewSms {
    NewSms {
        message_id: new_message_id().expect("a message id"),
        to: to.to_owned(),
        kind,
        payload: payload.to_vec(),
        sealed: true,
    }
}

/// An app enrollment of card `pan` for `phone`, its activation code hashed
/// as `hash(code)` and live for ten minutes.
pub(crate) fn app_enrollment(pan: u8, phone: &str, code: u8, now: i64) -> Enrollment {
    Enrollment {
        pan_hash: hash(pan),
        new_card_id: format!("card_{pan}_{code}"),
        pan_sealed: vec![0xA0, pan, code],
        last4: last4(pan),
        phone: phone.to_owned(),
        code: Some(NewActivationCode {
            hash: hash(code),
            expires_at: now + 600,
        }),
        message: sealed(NoticeKind::ActivationCode, phone, &[0xC0, pan, code]),
        phone_changed: Notice::PhoneChanged { last4: last4(pan) },
        now,
    }
}

/// An SMS-version enrollment of card `pan` for `phone`.
pub(crate) fn sms_enrollment(pan: u8, phone: &str, now: i64) -> Enrollment {
    Enrollment {
        code: None,
        message: plain(
            Notice::SmsChannelEnabled {
                last4: last4(pan),
                short_code: "30003303".into(),
            },
            phone,
        ),
        ..app_enrollment(pan, phone, 0, now)
    }
}

pub(crate) async fn enroll(store: &Arc<dyn Store>, e: Enrollment) -> Enrolled {
    store.enroll(e).await.expect("enroll")
}

/// Enrolls card `pan` for `phone` and activates it with code `code` at
/// `now`: its seed generation is then 1 (or one more than before).
pub(crate) async fn enrolled_and_activated(
    store: &Arc<dyn Store>,
    pan: u8,
    phone: &str,
    code: u8,
    now: i64,
) -> String {
    let card = enroll(store, app_enrollment(pan, phone, code, now)).await;
    activate(store, phone, code, now).await;
    card.card_id
}

pub(crate) fn activation_write(
    code_id: i64,
    card_id: &str,
    phone: &str,
    seed: &[u8],
    now: i64,
) -> ActivationWrite {
    ActivationWrite {
        code_id,
        card_id: card_id.to_owned(),
        phone: phone.to_owned(),
        seed_sealed: seed.to_vec(),
        device_label: "Pixel 9".into(),
        device_public_key: [9; 32],
        max_failures: MAX_ACTIVATION_FAILURES,
        notice: plain(
            Notice::CardActivated {
                last4: "0000".into(),
                device_label: "Pixel 9".into(),
                at: u64::try_from(now).unwrap_or(0),
            },
            phone,
        ),
        now,
    }
}

/// Looks the code up and completes the activation; panics unless both
/// succeed.
pub(crate) async fn activate(store: &Arc<dyn Store>, phone: &str, code: u8, now: i64) {
    let lookup = store
        .activation_lookup(phone, hash(code), now)
        .await
        .expect("activation_lookup");
    let found = lookup.found.expect("the pending code is found");
    let done = store
        .complete_activation(activation_write(
            found.code_id,
            &found.card_id,
            phone,
            &[0x5E, code],
            now,
        ))
        .await
        .expect("complete_activation");
    assert!(done, "a pending, live code activates");
}

/// Claims every message due at `at` and records each delivered, so none
/// comes back in a later claim.
pub(crate) async fn claim_all(store: &Arc<dyn Store>, at: i64) -> Vec<QueuedSms> {
    let claimed = store
        .claim_messages(at, 1_000, 60)
        .await
        .expect("claim_messages");
    for m in &claimed {
        store
            .message_delivered(m.id, at, None)
            .await
            .expect("message_delivered");
    }
    claimed
}

/// The kinds of the messages due at `at` to `to`, oldest first (claimed
/// and delivered).
pub(crate) async fn kinds_to(store: &Arc<dyn Store>, at: i64, to: &str) -> Vec<NoticeKind> {
    claim_all(store, at)
        .await
        .into_iter()
        .filter(|m| m.to == to)
        .map(|m| m.kind)
        .collect()
}

/// The card's generation now.
pub(crate) async fn generation(store: &Arc<dyn Store>, pan: u8) -> i64 {
    store
        .card_by_pan(hash(pan))
        .await
        .expect("card_by_pan")
        .expect("the card exists")
        .seed_generation
}
