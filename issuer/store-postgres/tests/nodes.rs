//! What only PostgreSQL can show: two stores with two pools on one
//! database, as two nodes would be, keep the rules that must hold across
//! processes (once-only steps, failure counts and blocks, one block
//! notice, outbox claims), migrate once when they start together, and
//! refuse a schema from a newer build.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use pooya_issuer_postgres::{PostgresOptions, PostgresStore, latest_version};
use pooya_issuer_service::outbox::{NewSms, Notice, NoticeKind};
use pooya_issuer_service::rules::{FailureSettlement, Lockout, Reason, SettleDecision};
use pooya_issuer_service::store::{Enrollment, Settlement, Spend, Store};
use pooya_protocol::PinKind;
use pooya_testpg::TestPostgres;

const NOW: i64 = 1_800_000_000;
const PHONE: &str = "+989120000001";
const RULES: Lockout = Lockout {
    max_failures: 5,
    lockout_secs: 900,
    window_max: 20,
    window_secs: 3600,
};

fn fresh() -> String {
    TestPostgres::shared().unwrap().fresh_database().unwrap()
}

fn options() -> PostgresOptions {
    PostgresOptions {
        pool_size: 8,
        // Hundreds of requests queue for eight connections on a shared
        // 2-core machine.
        timeout: Duration::from_secs(120),
        tls_ca: None,
    }
}

/// Two nodes: two stores, two pools, one database.
async fn two_nodes(url: &str) -> (Arc<PostgresStore>, Arc<PostgresStore>) {
    let a = PostgresStore::connect(url, options()).await.unwrap();
    let b = PostgresStore::connect(url, options()).await.unwrap();
    (Arc::new(a), Arc::new(b))
}

async fn sql(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

fn sms(n: u32) -> NewSms {
    NewSms {
        message_id: format!("msg_{n:032x}"),
        to: PHONE.to_owned(),
        kind: NoticeKind::SmsChannelEnabled,
        payload: b"{}".to_vec(),
        sealed: false,
    }
}

/// Enrolls a card for the SMS version (seed generation 0) and returns its
/// id.
async fn enroll(store: &PostgresStore) -> String {
    store
        .enroll(Enrollment {
            pan_hash: [7; 32],
            new_card_id: "card_nodes".to_owned(),
            pan_sealed: vec![1, 2, 3],
            last4: "1234".to_owned(),
            phone: PHONE.to_owned(),
            code: None,
            message: sms(0),
            phone_changed: Notice::PhoneChanged {
                last4: "1234".to_owned(),
            },
            now: NOW,
        })
        .await
        .unwrap()
        .card_id
}

/// Settles `n` verifications of `spend` at once, alternating nodes.
async fn settle_many(
    a: &Arc<PostgresStore>,
    b: &Arc<PostgresStore>,
    card: &str,
    spend: Spend,
    n: usize,
) -> Vec<SettleDecision> {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let store = Arc::clone(if i % 2 == 0 { a } else { b });
        let s = Settlement {
            card_id: card.to_owned(),
            generation: 0,
            spend,
            now: NOW + 1,
            rules: RULES,
        };
        tasks.push(tokio::spawn(
            async move { store.settle_verification(s).await },
        ));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap().unwrap());
    }
    out
}

async fn block_notices(url: &str) -> i64 {
    sql(url)
        .await
        .query_one(
            "SELECT count(*) FROM sms_outbox WHERE kind IN \
             ('card_blocked', 'card_blocked_last_warning', 'card_blocked_until_lifted')",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_verifications_of_one_step_over_two_nodes_accept_exactly_one() {
    let url = fresh();
    let (a, b) = two_nodes(&url).await;
    let card = enroll(&a).await;
    let step = Spend::Step {
        kind: PinKind::Second,
        step: 60_000_000,
        drift: 0,
    };
    let decisions = settle_many(&a, &b, &card, step, 200).await;
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
                    failure: Some(_)
                }
            )
        })
        .count();
    let blocked = decisions
        .iter()
        .filter(|d| **d == SettleDecision::Blocked)
        .count();
    assert_eq!(accepted, 1, "{decisions:?}");
    // Every other one is a counted replay until the fifth blocks the card.
    assert_eq!(replayed, 5, "{decisions:?}");
    assert_eq!(blocked, 194, "{decisions:?}");
    let mark: i64 = sql(&url)
        .await
        .query_one(
            "SELECT step FROM step_marks WHERE card_id = $1 AND key = 'second'",
            &[&card],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(mark, 60_000_000);
    assert_eq!(block_notices(&url).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_wrong_codes_over_two_nodes_count_five_then_block_with_one_notice() {
    let url = fresh();
    let (a, b) = two_nodes(&url).await;
    let card = enroll(&a).await;
    let decisions = settle_many(&a, &b, &card, Spend::Nothing, 1000).await;
    let counted = decisions
        .iter()
        .filter(|d| {
            matches!(
                d,
                SettleDecision::Rejected {
                    reason: Reason::WrongCode,
                    failure: Some(FailureSettlement::Count { .. })
                }
            )
        })
        .count();
    let blocking: Vec<_> = decisions.iter().filter_map(SettleDecision::block).collect();
    let blocked = decisions
        .iter()
        .filter(|d| **d == SettleDecision::Blocked)
        .count();
    // Four counted, the fifth blocks; every later one finds the block.
    assert_eq!(counted, 4, "{decisions:?}");
    assert_eq!(blocking.len(), 1, "{decisions:?}");
    assert_eq!(blocking[0].until, NOW + 1 + RULES.lockout_secs);
    assert_eq!(blocked, 995);
    assert_eq!(block_notices(&url).await, 1);
    let c = sql(&url).await;
    let (failures, until): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT failures, blocked_until FROM cards WHERE id = $1",
                &[&card],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((failures, until), (0, NOW + 1 + RULES.lockout_secs));
    let blocks: i64 = c
        .query_one("SELECT count(*) FROM verify_blocks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(blocks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_claiming_at_once_never_get_the_same_message() {
    let url = fresh();
    let (a, b) = two_nodes(&url).await;
    let c = sql(&url).await;
    for n in 1..=300u32 {
        c.execute(
            "INSERT INTO sms_outbox (message_id, to_phone, kind, payload, sealed, state, \
             next_attempt_at, created_at) VALUES ($1, $2, 'sms_help', '\\x7b7d', FALSE, \
             'pending', $3, $3)",
            &[&format!("msg_{n:032x}"), &PHONE, &NOW],
        )
        .await
        .unwrap();
    }
    let claimer = |store: Arc<PostgresStore>| {
        tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let got = store.claim_messages(NOW, 7, 60).await.unwrap();
                if got.is_empty() {
                    break ids;
                }
                ids.extend(got.into_iter().map(|q| q.id));
            }
        })
    };
    let tasks: Vec<_> = [&a, &b, &a, &b]
        .into_iter()
        .map(|s| claimer(Arc::clone(s)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 300, "a message was claimed twice or lost");
    assert_eq!(unique.len(), 300);
    // Leased: nothing is due again before the lease ends, all of it after.
    assert!(
        a.claim_messages(NOW + 59, 1000, 60)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        b.claim_messages(NOW + 60, 1000, 60).await.unwrap().len(),
        300
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_apply_each_migration_once() {
    let url = fresh();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            PostgresStore::connect(&url, options()).await.map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let rows = sql(&url)
        .await
        .query("SELECT version FROM schema_version", &[])
        .await
        .unwrap();
    let versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, vec![latest_version()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_a_newer_build_is_refused() {
    let url = fresh();
    drop(PostgresStore::connect(&url, options()).await.unwrap());
    sql(&url)
        .await
        .execute(
            "UPDATE schema_version SET version = $1",
            &[&(latest_version() + 1)],
        )
        .await
        .unwrap();
    let err = PostgresStore::connect(&url, options()).await.unwrap_err();
    assert_eq!(err.code(), "schema_too_new");
    assert_eq!(
        err,
        pooya_issuer_service::IssuerError::SchemaTooNew {
            found: latest_version() + 1,
            supported: latest_version(),
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_bad_urls_are_refused_as_settings() {
    for url in [
        "postgres://u@127.0.0.1/db?sslmode=require",
        "postgres://u@127.0.0.1:notaport/db",
    ] {
        let err = PostgresStore::connect(url, options()).await.unwrap_err();
        assert_eq!(err.code(), "invalid_settings", "{url}: {err}");
    }
    let err = PostgresStore::connect(
        &fresh(),
        PostgresOptions {
            pool_size: 0,
            ..options()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "invalid_settings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_code_requests_over_two_nodes_issue_one_and_tell_to_wait_within_the_reply_limit()
{
    use pooya_issuer_service::rules::OtpLimits;
    use pooya_issuer_service::store::{CodeChannel, IssueCode, Issued};
    let url = fresh();
    let (a, b) = two_nodes(&url).await;
    let card = enroll(&a).await;
    let mut tasks = Vec::new();
    for n in 0..100u32 {
        let store = Arc::clone(if n % 2 == 0 { &a } else { &b });
        let i = IssueCode {
            channel: CodeChannel::Sms,
            card_id: Some(card.clone()),
            subjects: vec![vec![7; 32], PHONE.as_bytes().to_vec()],
            code_hash: [u8::try_from(n).unwrap(); 32],
            expires_at: NOW + 120,
            limits: OtpLimits {
                min_interval: 60,
                per_hour: 5,
            },
            message: Some(sms(1000 + n)),
            wait_reply: Some((PHONE.to_owned(), 3)),
            now: NOW,
        };
        tasks.push(tokio::spawn(
            async move { store.issue_one_time_code(i).await },
        ));
    }
    let mut issued = 0;
    let mut told = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Issued::Issued => issued += 1,
            Issued::Limited {
                retry_after_secs,
                told_to_wait,
            } => {
                assert_eq!(retry_after_secs, 60);
                told += usize::from(told_to_wait);
            }
        }
    }
    assert_eq!(issued, 1);
    assert_eq!(told, 3);
    let c = sql(&url).await;
    let count = |q: &'static str| {
        let c = &c;
        async move { c.query_one(q, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        count("SELECT count(*) FROM one_time_codes WHERE state = 'pending'").await,
        1
    );
    assert_eq!(count("SELECT count(*) FROM otp_sends").await, 2);
    assert_eq!(count("SELECT count(*) FROM sms_replies").await, 3);
    assert_eq!(
        count("SELECT count(*) FROM sms_outbox WHERE kind = 'sms_wait'").await,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_error_names_its_sqlstate_but_no_value_and_rolls_back() {
    use pooya_issuer_service::Role;
    let url = fresh();
    let store = PostgresStore::connect(&url, options()).await.unwrap();
    // The same token hash twice: a unique violation whose DETAIL would
    // quote the hash.
    let hash = [0xab; 32];
    let err = store
        .initialize(
            vec![("canary", vec![1, 2, 3])],
            vec![(hash, Role::Atm), (hash, Role::Ops)],
            NOW,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "storage");
    let text = err.to_string();
    assert!(text.contains("SQLSTATE 23505"), "{text}");
    assert!(!text.to_lowercase().contains("abab"), "{text}");
    // Nothing of the transaction stays.
    assert_eq!(store.meta("canary").await.unwrap(), None);
    assert!(store.tokens().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_card_numbers_failures_over_two_nodes_block_it_once() {
    use pooya_issuer_service::store::UnknownSettled;
    let url = fresh();
    let (a, b) = two_nodes(&url).await;
    let mut tasks = Vec::new();
    for n in 0..400 {
        let store = Arc::clone(if n % 2 == 0 { &a } else { &b });
        tasks.push(tokio::spawn(async move {
            store.settle_unknown([9; 32], NOW, RULES).await
        }));
    }
    let (mut counted, mut blocked_now, mut blocked) = (0, 0, 0);
    for t in tasks {
        match t.await.unwrap().unwrap() {
            UnknownSettled::Counted => counted += 1,
            UnknownSettled::BlockedNow => blocked_now += 1,
            UnknownSettled::Blocked => blocked += 1,
        }
    }
    assert_eq!((counted, blocked_now, blocked), (4, 1, 395));
    assert_eq!(
        a.probe_blocked_until([9; 32]).await.unwrap(),
        NOW + RULES.lockout_secs
    );
}
