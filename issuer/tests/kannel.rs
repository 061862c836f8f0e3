//! SMS through a real Kannel (docs/issuer.md, "Kannel"): a `pooya-issuer
//! serve` process with `sms.sender = "kannel"` beside a throwaway
//! bearerbox, smsbox and fakesmsc (`pooya-testkannel`). The customer's
//! phone is fakesmsc: it receives the activation code and one-time PINs,
//! and texts the short code. Delivery reports come back through the
//! `dlr-url`; an outage of the gateway delays messages, loses none and
//! sends none twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use pooya_issuer::Language;
use pooya_issuer::messages::{Message, find_activation_code, find_one_time_code};
use pooya_testkannel::{TestKannel, USERNAME};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_pooya-issuer");
const SECRET: &str = "kannel-gateway-secret-0123456789abcdef";
/// The recipient as the issuer hands it to Kannel.
const TO: &str = "+989121234567";
const WAIT: Duration = Duration::from_secs(15);

/// A `serve` process (and its standard output, kept open: it prints
/// after the first line), killed on drop.
struct Serve(
    Child,
    #[allow(dead_code)] BufReader<std::process::ChildStdout>,
);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A test card number whose last four digits are `0001`.
fn card_ending_0001() -> String {
    (1..10_000u64)
        .map(|k| pan(k * 1000))
        .find(|p| p.ends_with("0001"))
        .unwrap()
}

fn db(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        data.join("issuer.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

/// Waits until every message of the outbox has its two reports
/// (smsc_submitted, delivered) and returns (kind, reports) rows.
fn wait_reports(data: &Path, messages: usize) -> Vec<(String, String)> {
    let start = Instant::now();
    loop {
        let c = db(data);
        let mut st = c
            .prepare(
                "SELECT o.kind, group_concat(r.report, ',') FROM sms_outbox o \
                 LEFT JOIN (SELECT * FROM sms_delivery_reports ORDER BY report) r \
                 USING (message_id) GROUP BY o.id ORDER BY o.id",
            )
            .unwrap();
        let rows: Vec<(String, String)> = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        if rows.len() == messages && rows.iter().all(|(_, r)| r == "delivered,smsc_submitted") {
            return rows;
        }
        assert!(start.elapsed() < WAIT, "delivery reports: {rows:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metric(client: &Client, ops: &str, line: &str) -> bool {
    client.get("/metrics", Some(ops)).body.contains(line)
}

#[test]
fn sms_through_a_real_kannel() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = pooya_issuer::init(&data, &pooya_issuer::InitOptions::default()).unwrap();
    let token = |r: pooya_issuer::Role| init.tokens.get(r).expose_secret().to_owned();
    let (atm, gateway, ops) = (
        token(pooya_issuer::Role::Atm),
        token(pooya_issuer::Role::Gateway),
        token(pooya_issuer::Role::Ops),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let kannel = TestKannel::start(&format!(
        "{base}/v1/sms/kannel/inbound?secret={SECRET}&from=%p&to=%P&text=%a&coding=%c&charset=%C"
    ))
    .unwrap();
    let secret_file = dir.path().join("gateway-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let settings = dir.path().join("settings.json");
    std::fs::write(
        &settings,
        json!({"sms": {"sender": "kannel", "poll_interval_ms": 100, "kannel": {
            "sendsms_url": kannel.sendsms_url(),
            "username": USERNAME,
            "password_file": kannel.password_file(),
            "public_base_url": base,
            "gateway_secret_file": secret_file,
            "timeout_ms": 2000
        }}})
        .to_string(),
    )
    .unwrap();
    let log_path = dir.path().join("serve.log");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(&settings)
        .arg("--data")
        .arg(&data)
        // Everything, the HTTP client's request lines asked for too.
        .env("RUST_LOG", "trace,ureq=trace,ureq_proto=trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    let serve = Serve(child, stdout);
    assert!(
        line.starts_with("listening on "),
        "{line}{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    let client = Client::new(&base);

    // The app: the activation code arrives at the phone.
    let app_card = pan(7);
    let a = client.post(
        "/v1/enrollments",
        Some(&atm),
        &json!({"pan": app_card, "phone": PHONE, "channel": "app"}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let got = kannel.wait_messages(TO, 1, WAIT).unwrap();
    assert_eq!(got[0].from, "30003303");
    let text = got[0].ucs2_text().unwrap();
    let code = find_activation_code(&text).unwrap_or_else(|| panic!("{text}"));
    let pinned = Pinned::of(&init);
    let (status, card) = Phone::new().activate(&client, PHONE, &code, &pinned);
    assert_eq!(status, 201);
    assert!(card.is_some());
    let got = kannel.wait_messages(TO, 2, WAIT).unwrap(); // "card activated"

    // The SMS version: "۰۰۰۱" texted to the short code brings a PIN.
    let sms_card = card_ending_0001();
    let a = client.post(
        "/v1/enrollments",
        Some(&atm),
        &json!({"pan": sms_card, "phone": PHONE, "channel": "sms"}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    kannel.wait_messages(TO, got.len() + 1, WAIT).unwrap();
    let before = now();
    kannel.send_mo("09121234567", "30003303", "۰۰۰۱").unwrap();
    let got = kannel.wait_messages(TO, 4, WAIT).unwrap();
    let after = now();
    let text = got[3].ucs2_text().unwrap();
    let pin = find_one_time_code(&text).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(pin.len(), 7);
    // Byte for byte what the issuer composed (its expiry is some second
    // between the text and the answer, plus the 120 s lifetime).
    let composed: Vec<String> = (before..=after)
        .map(|t| {
            Message::SmsPin {
                code: &pin,
                last4: "0001",
                minutes: 2,
                expires_at: t + 120,
            }
            .render(Language::Fa)
        })
        .collect();
    assert!(
        composed.contains(&text),
        "{text:?} is not one of {composed:?}"
    );
    let v = client.post(
        "/v1/verify",
        Some(&gateway),
        &json!({"pan": sms_card, "code": pin, "amount": 1000, "kind": "second"}),
    );
    assert_eq!(v.json()["result"], "accepted", "{}", v.body);

    // Harim: the PIN a payment page asks for arrives the same way.
    let body = serde_json::to_vec(&json!({"name": "فروشگاه پویا"})).unwrap();
    let m = client.raw(
        "PUT",
        "/v1/merchants/shop-1",
        Some(&ops),
        Some("application/json"),
        Some(&body),
    );
    assert_eq!(m.status, 201, "{}", m.body);
    let h = client.post(
        "/v1/otp-requests",
        Some(&gateway),
        &json!({"pan": sms_card, "amount": 250_000, "payee_id": "shop-1", "type": "purchase"}),
    );
    assert_eq!(h.status, 202, "{}", h.body);
    let got = kannel.wait_messages(TO, 5, WAIT).unwrap();
    let text = got[4].ucs2_text().unwrap();
    assert!(text.contains("فروشگاه پویا"), "{text}");
    let harim = find_one_time_code(&text).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(harim.len(), 7);

    // Every message has its reports from Kannel: handed to the SMS centre
    // and delivered to the phone.
    let rows = wait_reports(&data, 5);
    let kinds: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "activation_code",
            "card_activated",
            "sms_channel_enabled",
            "sms_pin",
            "harim_pin"
        ]
    );
    assert!(metric(
        &client,
        &ops,
        "pooya_issuer_sms_delivery_reports_total{report=\"delivered\"} 5\n"
    ));

    // What Kannel's routes refuse and take.
    let msg_id: String = db(&data)
        .query_row(
            "SELECT message_id FROM sms_outbox ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let forged = client.get(
        &format!("/v1/sms/kannel/dlr?msg={msg_id}&type=1&tag=00000000000000000000000000000000"),
        None,
    );
    assert_eq!(
        (forged.status, forged.error_code().as_str()),
        (401, "unauthorized")
    );
    let wrong = client.get(
        "/v1/sms/kannel/inbound?secret=kannel-gateway-secret-0123456789abcdeX&from=0912&to=30003303&text=0001",
        None,
    );
    assert_eq!(
        (wrong.status, wrong.error_code().as_str()),
        (401, "unauthorized")
    );
    let undecodable = client.get(
        "/v1/sms/kannel/inbound?secret=wrong&from=0912&to=30003303&text=%FF",
        None,
    );
    assert_eq!(undecodable.status, 401, "{}", undecodable.body);
    let garbled = client.get(
        &format!("/v1/sms/kannel/inbound?secret={SECRET}&from=0912&to=30003303&text=%FF"),
        None,
    );
    assert_eq!(
        (garbled.status, garbled.error_code().as_str()),
        (400, "invalid_text")
    );
    let bad = client.get("/v1/sms/kannel/dlr?msg=x&type=3&tag=y", None);
    assert_eq!(
        (bad.status, bad.error_code().as_str()),
        (400, "invalid_report")
    );
    // A report for a message the outbox does not hold: 200, counted.
    let unknown = "msg_ffffffffffffffffffffffffffffffff";
    let tag = pooya_issuer_kannel::GatewaySecret::new(zeroize::Zeroizing::new(SECRET.into()))
        .dlr_tag(unknown);
    let a = client.get(
        &format!("/v1/sms/kannel/dlr?msg={unknown}&type=1&tag={tag}"),
        None,
    );
    assert_eq!((a.status, a.body.as_str()), (200, ""));
    assert!(metric(
        &client,
        &ops,
        "pooya_issuer_sms_delivery_reports_unknown_total 1\n"
    ));

    // An outage: messages wait and are retried, then all arrive once.
    kannel.stop();
    for n in [11u64, 12] {
        let a = client.post(
            "/v1/enrollments",
            Some(&atm),
            &json!({"pan": pan(n), "phone": PHONE, "channel": "sms"}),
        );
        assert_eq!(a.status, 201, "{}", a.body);
    }
    let start = Instant::now();
    loop {
        let failed: i64 = db(&data)
            .query_row(
                "SELECT count(*) FROM sms_outbox WHERE state = 'pending' AND attempts >= 1 \
                 AND last_error = 'sms_failed'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if failed == 2 {
            break;
        }
        assert!(start.elapsed() < WAIT, "no failed attempt recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(metric(
        &client,
        &ops,
        "pooya_issuer_sms_outbox_messages{state=\"pending\"} 2\n"
    ));
    kannel.start_again().unwrap();
    let got = kannel.wait_messages(TO, 7, WAIT).unwrap();
    wait_reports(&data, 7);
    // None twice: a moment later still seven, and the outbox is empty.
    std::thread::sleep(Duration::from_millis(500));
    let got_later = kannel.messages();
    assert_eq!(got_later.len(), 7, "{got_later:?}");
    assert_eq!(got, got_later);
    for (m, n) in got[5..].iter().zip([11u64, 12]) {
        let last4 = pooya_issuer::messages::persian_digits(&pan(n)[12..]);
        assert!(m.ucs2_text().unwrap().contains(&last4), "{m:?}");
    }
    assert!(metric(
        &client,
        &ops,
        "pooya_issuer_sms_outbox_messages{state=\"pending\"} 0\n"
    ));

    // The log (at trace) never shows the secret, the password or a code.
    drop(serve);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("Kannel took the message"),
        "the log is not at trace"
    );
    assert!(
        log.contains("Kannel sendsms failed"),
        "the outage is not in the log"
    );
    for (what, s) in [
        ("gateway secret", SECRET),
        ("password", pooya_testkannel::PASSWORD),
        ("activation code", code.as_str()),
        ("PIN", pin.as_str()),
        ("Harim PIN", harim.as_str()),
    ] {
        let leaks: Vec<&str> = log
            .lines()
            .filter_map(|l| l.find(s).map(|i| &l[..i]))
            .collect();
        assert!(
            leaks.is_empty(),
            "the {what} is in the log, after: {leaks:#?}"
        );
    }
}

/// `serve` with a Kannel sender whose secrets cannot be read, or whose
/// gateway secret is weak, does not start, and says which setting.
#[test]
fn serve_refuses_unreadable_or_weak_kannel_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    pooya_issuer::init(&data, &pooya_issuer::InitOptions::default()).unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "pw\n").unwrap();
    let weak = dir.path().join("weak");
    std::fs::write(&weak, "short\n").unwrap();
    for (secret_file, expected) in [
        (dir.path().join("missing"), "sms.kannel.gateway_secret_file"),
        (weak, "the gateway secret must be at least 32 characters"),
    ] {
        let settings = dir.path().join("settings.json");
        std::fs::write(
            &settings,
            json!({"sms": {"sender": "kannel", "kannel": {
                "sendsms_url": "http://127.0.0.1:9/cgi-bin/sendsms",
                "username": USERNAME,
                "password_file": password,
                "public_base_url": "http://127.0.0.1:8080",
                "gateway_secret_file": secret_file
            }}})
            .to_string(),
        )
        .unwrap();
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&settings)
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error [invalid_settings]"), "{err}");
        assert!(err.contains(expected), "{err}");
    }
}
