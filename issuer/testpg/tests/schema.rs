//! The issuer's PostgreSQL schema (issuer/store-postgres/migrations/) on a
//! real server: it applies in one transaction, has the tables of SQLite's
//! final schema plus the outbox, and its constraints refuse what SQLite's
//! refuse.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pooya_testpg::TestPostgres;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

const INITIAL: &str = include_str!("../../store-postgres/migrations/001_initial.sql");

/// A fresh database with 001 applied, in one transaction as the runner
/// will apply it.
async fn migrated() -> Client {
    let url = TestPostgres::shared().unwrap().fresh_database().unwrap();
    let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(INITIAL).await.unwrap();
    tx.commit().await.unwrap();
    client
}

/// Runs `sql` and returns the SQLSTATE it failed with.
async fn refused(client: &Client, sql: &str) -> SqlState {
    let err = client
        .batch_execute(sql)
        .await
        .err()
        .unwrap_or_else(|| panic!("accepted: {sql}"));
    err.code()
        .unwrap_or_else(|| panic!("no SQLSTATE for {sql}: {err:?}"))
        .clone()
}

const CARD: &str = "INSERT INTO cards (id, pan_hash, pan_sealed, last4, phone, created_at, updated_at) \
                    VALUES ('card_1', '\\x01', '\\x02', '1234', '+989120000000', 1, 1)";

fn outbox(message_id: &str, kind: &str, state: &str) -> String {
    format!(
        "INSERT INTO sms_outbox (message_id, to_phone, kind, payload, sealed, state, next_attempt_at, created_at) \
         VALUES ('{message_id}', '+989120000000', '{kind}', '\\x00', TRUE, '{state}', 10, 10)"
    )
}

#[tokio::test]
async fn the_tables_are_sqlites_final_ones_plus_the_outbox() {
    let client = migrated().await;
    let rows = client
        .query(
            "SELECT table_name::TEXT FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY table_name",
            &[],
        )
        .await
        .unwrap();
    let tables: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let mut expected = vec![
        "activation_codes",
        "activation_failures",
        "activation_strangers",
        "api_tokens",
        "cards",
        "dev_sms_log",
        "events",
        "merchants",
        "meta",
        "one_time_codes",
        "otp_sends",
        "probe_failures",
        "schema_version",
        "sms_outbox",
        "sms_replies",
        "step_marks",
        "verify_blocks",
        "verify_failures",
    ];
    expected.sort_unstable();
    assert_eq!(tables, expected, "used_steps is replaced by step_marks");
    // The runner writes the version; the migration does not.
    let versions = client
        .query("SELECT version FROM schema_version", &[])
        .await
        .unwrap();
    assert!(versions.is_empty());
}

#[tokio::test]
async fn the_types_are_postgres_ones() {
    let client = migrated().await;
    let rows = client
        .query(
            "SELECT table_name::TEXT, column_name::TEXT, data_type::TEXT, is_identity::TEXT \
             FROM information_schema.columns WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap();
    let column = |table: &str, name: &str| -> (String, String) {
        rows.iter()
            .find(|r| r.get::<_, String>(0) == table && r.get::<_, String>(1) == name)
            .map(|r| (r.get(2), r.get(3)))
            .unwrap_or_else(|| panic!("no column {table}.{name}"))
    };
    assert_eq!(column("cards", "sms_enabled").0, "boolean");
    assert_eq!(column("cards", "seed_sealed").0, "bytea");
    assert_eq!(column("cards", "blocked_until").0, "bigint");
    assert_eq!(column("sms_outbox", "sealed").0, "boolean");
    assert_eq!(column("sms_outbox", "payload").0, "bytea");
    for table in [
        "activation_codes",
        "one_time_codes",
        "events",
        "sms_outbox",
        "dev_sms_log",
    ] {
        assert_eq!(
            column(table, "id"),
            ("bigint".to_owned(), "YES".to_owned()),
            "{table}.id"
        );
    }
    // No INTEGER (32-bit) column is left from SQLite's INTEGER.
    let narrow: Vec<String> = rows
        .iter()
        .filter(|r| r.get::<_, String>(2) == "integer")
        .map(|r| format!("{}.{}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    assert!(narrow.is_empty(), "{narrow:?}");
}

#[tokio::test]
async fn the_constraints_refuse_what_sqlites_refuse() {
    let client = migrated().await;
    client.batch_execute(CARD).await.unwrap();
    let row = client
        .query_one("SELECT sms_enabled FROM cards WHERE id = 'card_1'", &[])
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0), "the SMS channel starts off");
    assert_eq!(
        refused(&client, &CARD.replace("card_1", "card_2")).await,
        SqlState::UNIQUE_VIOLATION,
        "one card per PAN"
    );

    // One-time codes: a known channel, a known card.
    let code = |card: &str, channel: &str| {
        format!(
            "INSERT INTO one_time_codes (card_id, channel, code_hash, state, created_at, expires_at) \
             VALUES ('{card}', '{channel}', '\\x03', 'pending', 1, 2)"
        )
    };
    client.batch_execute(&code("card_1", "sms")).await.unwrap();
    client
        .batch_execute(&code("card_1", "harim"))
        .await
        .unwrap();
    assert_eq!(
        refused(&client, &code("card_1", "email")).await,
        SqlState::CHECK_VIOLATION,
        "unknown channel"
    );
    assert_eq!(
        refused(&client, &code("card_unknown", "sms")).await,
        SqlState::FOREIGN_KEY_VIOLATION,
        "code of an unknown card"
    );
    assert_eq!(
        refused(
            &client,
            "INSERT INTO otp_sends (channel, subject, at) VALUES ('fax', '\\x01', 1)"
        )
        .await,
        SqlState::CHECK_VIOLATION
    );

    // Activation codes: a known card and state.
    let activation = |card: &str, state: &str| {
        format!(
            "INSERT INTO activation_codes (card_id, phone, code_hash, state, created_at, expires_at) \
             VALUES ('{card}', '+989120000000', '\\x04', '{state}', 1, 2)"
        )
    };
    client
        .batch_execute(&activation("card_1", "pending"))
        .await
        .unwrap();
    assert_eq!(
        refused(&client, &activation("card_unknown", "pending")).await,
        SqlState::FOREIGN_KEY_VIOLATION
    );
    assert_eq!(
        refused(&client, &activation("card_1", "expired")).await,
        SqlState::CHECK_VIOLATION
    );
    // Identity ids are the database's, never the caller's.
    assert_eq!(
        refused(
            &client,
            "INSERT INTO activation_codes (id, card_id, phone, code_hash, state, created_at, expires_at) \
             VALUES (99, 'card_1', '+989120000000', '\\x04', 'pending', 1, 2)"
        )
        .await,
        SqlState::GENERATED_ALWAYS
    );

    // Step marks: three kinds, one mark per card and kind.
    let mark = |key: &str| {
        format!(
            "INSERT INTO step_marks (card_id, key, generation, step) VALUES ('card_1', '{key}', 0, 100)"
        )
    };
    for key in ["first", "second", "transaction"] {
        client.batch_execute(&mark(key)).await.unwrap();
    }
    assert_eq!(
        refused(&client, &mark("third")).await,
        SqlState::CHECK_VIOLATION
    );
    assert_eq!(
        refused(&client, &mark("first")).await,
        SqlState::UNIQUE_VIOLATION
    );

    // API token roles; the stranger counter is one row.
    assert_eq!(
        refused(
            &client,
            "INSERT INTO api_tokens (token_hash, role, created_at) VALUES ('\\x05', 'admin', 1)"
        )
        .await,
        SqlState::CHECK_VIOLATION
    );
    client
        .batch_execute(
            "INSERT INTO activation_strangers (id, guesses, updated_at) VALUES (1, 0, 1)",
        )
        .await
        .unwrap();
    assert_eq!(
        refused(
            &client,
            "INSERT INTO activation_strangers (id, guesses, updated_at) VALUES (2, 0, 1)"
        )
        .await,
        SqlState::CHECK_VIOLATION
    );
}

#[tokio::test]
async fn the_outbox_refuses_unknown_states_kinds_and_repeated_ids() {
    let client = migrated().await;
    let id = "msg_00112233445566778899aabbccddeeff";
    client
        .batch_execute(&outbox(id, "sms_pin", "pending"))
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT id, attempts, lease_until IS NULL FROM sms_outbox",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1, "the first message is first");
    assert_eq!(row.get::<_, i64>(1), 0);
    assert!(row.get::<_, bool>(2));

    assert_eq!(
        refused(&client, &outbox("msg_2", "sms_pin", "lost")).await,
        SqlState::CHECK_VIOLATION,
        "outbox state"
    );
    assert_eq!(
        refused(&client, &outbox("msg_2", "newsletter", "pending")).await,
        SqlState::CHECK_VIOLATION,
        "outbox kind"
    );
    assert_eq!(
        refused(&client, &outbox(id, "sms_pin", "pending")).await,
        SqlState::UNIQUE_VIOLATION,
        "message ids are unique"
    );
    for (n, state) in ["sending", "delivered", "failed"].iter().enumerate() {
        client
            .batch_execute(&outbox(&format!("msg_s{n}"), "harim_pin", state))
            .await
            .unwrap();
    }
    // Delivered messages are wiped: the payload may be NULL.
    client
        .batch_execute(&format!(
            "UPDATE sms_outbox SET payload = NULL, state = 'delivered' WHERE message_id = '{id}'"
        ))
        .await
        .unwrap();

    // The claim query's index exists.
    let index = client
        .query_one(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'sms_outbox' \
             AND indexname = 'sms_outbox_by_state'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        index
            .get::<_, String>(0)
            .ends_with("(state, next_attempt_at, id)"),
        "{}",
        index.get::<_, String>(0)
    );

    client
        .batch_execute(
            "INSERT INTO dev_sms_log (to_phone, sender, body_sealed, created_at) \
             VALUES ('+989120000000', '30003303', '\\x06', 1)",
        )
        .await
        .unwrap();
    assert_eq!(
        refused(
            &client,
            "INSERT INTO dev_sms_log (to_phone, sender, created_at) VALUES ('+98', 'x', 1)"
        )
        .await,
        SqlState::NOT_NULL_VIOLATION,
        "the recorder keeps sealed bodies"
    );
}
