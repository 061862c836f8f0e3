//! `pooya card remove`, `pooya card status` and `pooya sync` against a
//! real issuer on 127.0.0.1 (issue 13, item 2): the removal tells the bank
//! (or says it did not, and the next sync does), and a sync shows the
//! ATM's deactivation in `card list` and `card status`, and PINs are
//! refused with the stable code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use pooya_issuer::{InitOptions, ServerConfig};
use pooya_protocol::ids;
use serde_json::{Value, json};

const PHONE: &str = "09121234567";
const PASSWORD: &str = "test password 1379\n";

/// Runs `pooya --json --password-stdin ARGS`; `(success, stdout JSON)`.
fn pooya(vault: &Path, args: &[&str]) -> (bool, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pooya"))
        .arg("--vault")
        .arg(vault)
        .args(args)
        .args(["--json", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    // With --json an error is JSON on standard output too.
    let text = out.stdout;
    let v = serde_json::from_slice(&text).unwrap_or_else(|_| {
        panic!("{args:?}: {}", String::from_utf8_lossy(&text));
    });
    (out.status.success(), v)
}

fn ok(vault: &Path, args: &[&str]) -> Value {
    let (success, v) = pooya(vault, args);
    assert!(success, "{args:?}: {v}");
    v
}

fn pan(n: u32) -> String {
    let payload = format!("61043300000{n:04}");
    format!("{payload}{}", ids::luhn_check_digit(&payload))
}

#[test]
fn remove_says_whether_the_bank_heard_and_sync_shows_the_atm_deactivation() {
    let bank_dir = tempfile::tempdir().unwrap();
    let init = pooya_issuer::init(bank_dir.path(), &InitOptions::default()).unwrap();
    let server = pooya_issuer::spawn_on_thread(ServerConfig::new(bank_dir.path())).unwrap();
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post = |path: &str, token: &str, body: &Value| -> Value {
        let mut r = http
            .post(format!("{}{path}", server.base_url()))
            .header("Authorization", format!("Bearer {token}"))
            .send_json(body)
            .unwrap();
        assert_eq!(r.status().as_u16() / 100, 2);
        r.body_mut().read_json().unwrap()
    };
    let enroll = |pan: &str| {
        post(
            "/v1/enrollments",
            init.tokens.atm.expose_secret(),
            &json!({"pan": pan, "phone": PHONE, "channel": "app"}),
        );
        let sms = pooya_issuer::read_outbox(bank_dir.path(), Some(PHONE)).unwrap();
        pooya_issuer::messages::find_activation_code(&sms.last().unwrap().body).unwrap()
    };

    let phone_dir = tempfile::tempdir().unwrap();
    let v = phone_dir.path().join("vault.db");
    ok(&v, &["init", "--phone", PHONE, "--kdf", "floor"]);
    let issuer_args = |url: &str| {
        vec![
            "issuer".to_owned(),
            "add".to_owned(),
            "bank".to_owned(),
            "--url".to_owned(),
            url.to_owned(),
            "--public-key".to_owned(),
            server.issuer_public_key().to_owned(),
            "--activation-key".to_owned(),
            server.activation_public_key().to_owned(),
        ]
    };
    let args = issuer_args(&server.base_url());
    ok(&v, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let (pa, pb) = (pan(601), pan(602));
    let a = ok(&v, &["card", "add", &enroll(&pa)]);
    let b = ok(&v, &["card", "add", &enroll(&pb)]);
    let (a4, b4) = (
        a["last4"].as_str().unwrap().to_owned(),
        b["last4"].as_str().unwrap().to_owned(),
    );
    assert_eq!(a["app_status"], "active");

    // Online removal: the bank was told.
    let removed = ok(&v, &["card", "remove", &a4]);
    assert_eq!(removed["bank_told"], true, "{removed}");
    assert_eq!(removed["bank_status"], "revoked", "{removed}");

    // The ATM deactivates card B; the sync shows it, PINs are refused.
    post(
        "/v1/cards/deactivate",
        init.tokens.atm.expose_secret(),
        &json!({"pan": pb}),
    );
    let synced = ok(&v, &["sync", "bank"]);
    assert_eq!(synced["cards"][0]["app_status"], "revoked", "{synced}");
    assert_eq!(synced["cards"][0]["previous"], "active", "{synced}");
    let list = ok(&v, &["card", "list"]);
    assert_eq!(list[0]["app_status"], "revoked", "{list}");
    let status = ok(&v, &["card", "status"]);
    assert_eq!(status["cards"][0]["app_status"], "revoked", "{status}");
    assert!(status["cards"][0]["status_checked_at"].is_u64(), "{status}");
    let (success, err) = pooya(&v, &["pin", "first", &b4]);
    assert!(!success);
    assert_eq!(err["error"], "card_revoked", "{err}");

    // Removal with the bank unreachable: not told, kept pending (core and
    // e2e tests cover the retry), and a sync says why it cannot run.
    server.shutdown().unwrap();
    let removed = ok(&v, &["card", "remove", &b4]);
    assert_eq!(removed["bank_told"], false, "{removed}");
    assert_eq!(removed["pending"], true, "{removed}");
    assert_eq!(removed["reason"], "network", "{removed}");
    let status = ok(&v, &["card", "status"]);
    assert_eq!(status["pending_removals"].as_array().unwrap().len(), 1);
    let (success, err) = pooya(&v, &["sync"]);
    assert!(!success, "the bank is down: {err}");
    assert_eq!(err["error"], "network", "{err}");
}
