//! What the trait cannot show of the SQLite outbox: a delivered or given
//! up message's payload is wiped from the file (docs/issuer.md, "SMS
//! delivery": bodies that hold codes are wiped once delivered).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pooya_issuer_service::Store;
use pooya_issuer_service::outbox::{NewSms, NoticeKind, new_message_id};
use pooya_issuer_sqlite::{SqliteOptions, SqliteStore};

const NOW: i64 = 1_800_000_000;

fn sealed(to: &str, n: u8) -> NewSms {
    NewSms {
        message_id: new_message_id().unwrap(),
        to: to.to_owned(),
        kind: NoticeKind::SmsPin,
        payload: vec![0xD0, n],
        sealed: true,
    }
}

fn payloads(path: &std::path::Path) -> Vec<(i64, Option<Vec<u8>>)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut stmt = c
        .prepare("SELECT id, payload FROM sms_outbox ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_and_given_up_payloads_are_wiped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issuer.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    for n in 1..=3 {
        assert!(
            store
                .reply_without_code("+989121111111", NOW, 10, sealed("+989121111111", n))
                .await
                .unwrap()
        );
    }
    let claimed = store.claim_messages(NOW, 10, 60).await.unwrap();
    assert_eq!(claimed.len(), 3);
    store
        .message_delivered(claimed[0].id, NOW + 1, Some("gw".into()))
        .await
        .unwrap();
    store
        .message_failed(claimed[1].id, None, "gave up")
        .await
        .unwrap();
    store
        .message_failed(claimed[2].id, Some(NOW + 60), "timeout")
        .await
        .unwrap();
    let rows = payloads(&path);
    assert_eq!(
        rows,
        vec![
            (claimed[0].id, None),
            (claimed[1].id, None),
            (claimed[2].id, Some(vec![0xD0, 3])),
        ],
        "only the message still to be retried keeps its payload"
    );
    store.close();
}
